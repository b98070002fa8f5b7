"""The demo, tried as issue 14's "done" asks: Sanne's portal shows her
consumption as bars and her invoices; an invoice's PDF carries its QR-bill;
the operator uploads the demo's camt.054 and last month's open invoices are
paid (again: nothing applied twice); the studios' owner downloads
statements."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from doorkeep.accounts.models import User
from doorkeep.billing import payments
from doorkeep.billing.models import BillingRun, Invoice, InvoiceStatus
from doorkeep.demo import OWNER, load_demo
from doorkeep.properties.models import BillingMode, Property

pytestmark = pytest.mark.django_db


def signed_in(email: str) -> Client:
    client = Client()
    client.force_login(User.objects.get(email=email))
    return client


def test_the_demo_bills_shows_and_collects(tmp_path: Any, settings: Any) -> None:
    settings.DATA_DIR = tmp_path  # where the demo writes its bank file
    assert load_demo()
    sanne = signed_in("sanne.de.vries@example.com")
    page = sanne.get("/portal/consumption/")
    assert page.status_code == 200 and b"<rect" in page.content
    invoices = sanne.get("/portal/invoices/")
    mine = Invoice.objects.filter(person__user__email="sanne.de.vries@example.com")
    assert mine.count() == 2
    for invoice in mine:
        assert invoice.number.encode() in invoices.content
    pdf = sanne.get(f"/portal/invoices/{mine.first().pk}/pdf/")
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")

    overdue = Invoice.objects.filter(reminded_at__isnull=False)
    assert overdue.count() == 1 and overdue.get().status == InvoiceStatus.OPEN
    last = BillingRun.objects.order_by("-month").first()
    assert last is not None
    still_open = list(Invoice.objects.filter(run=last, status=InvoiceStatus.OPEN))
    assert still_open and Invoice.objects.filter(run=last, status=InvoiceStatus.PAID).exists()
    data = (tmp_path / "demo" / "camt054-demo.xml").read_bytes()
    operator = User.objects.get(email="operator@demo.doorkeep.test")
    report = payments.import_bank_file(operator, data, "camt054-demo.xml", organization_id=None)
    assert {row["outcome"] for row in report.report["rows"]} == {"matched"}
    assert not Invoice.objects.filter(run=last, status=InvoiceStatus.OPEN).exists()
    again = payments.import_bank_file(operator, data, "camt054-demo.xml", organization_id=None)
    assert {row["outcome"] for row in again.report["rows"]} == {"already_applied"}

    studios = Property.objects.get(
        billing_mode=BillingMode.INDIVIDUAL_STATEMENTS, machines__isnull=False
    )
    owner = signed_in(OWNER)
    statements = owner.get(f"/properties/{studios.pk}/statements/")
    assert statements.status_code == 200
    assert b".pdf" in statements.content
