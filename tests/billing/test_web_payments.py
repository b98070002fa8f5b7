"""Payments in the web UI: an organization's bank files (for its lock
owners) and the platform's (for the operator), uploading one and reading
its report, and marking an invoice as paid with a note."""

from __future__ import annotations

import html

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.template.loader import render_to_string
from django.urls import reverse

from doorkeep.billing.models import BankFile, InvoiceStatus, Payment, PaymentOutcome
from doorkeep.web.views.payments import invoice_url

from .camt_samples import (
    QR_MATCHED,
    QR_OVERPAID,
    QR_PARTIAL,
    QR_UNKNOWN,
    invoice,
    issuer,
    make_operator,
    sample,
)


def text(response):
    return html.unescape(response.content.decode())


def upload(client, url, data, name="camt054.xml"):
    return client.post(url, {"file": SimpleUploadedFile(name, data, content_type="text/xml")})


@pytest.fixture
def alice(world):
    return world.client(world.alice)


@pytest.fixture
def bob(world):
    return world.client(world.bob)


@pytest.fixture
def charlie(world):
    return world.client(world.charlie)


@pytest.fixture
def operator(world):
    return world.client(make_operator())


@pytest.fixture
def invoices(world):
    chf = issuer()
    return {
        "matched": invoice(world.prop, reference=QR_MATCHED, total=12050, by=chf),
        "partial": invoice(world.prop, reference=QR_PARTIAL, total=8000, by=chf, person="Sanne"),
        "overpaid": invoice(world.prop, reference=QR_OVERPAID, total=10000, by=chf, person="L"),
    }


@pytest.fixture
def files_url(world):
    return reverse("web:bank_files", kwargs={"org_id": world.org.pk})


@pytest.fixture
def upload_url(world):
    return reverse("web:upload_bank_file", kwargs={"org_id": world.org.pk})


# --- bank files ---------------------------------------------------------------------------------


def test_the_owner_sees_the_upload_form_and_the_imports(world, alice, files_url):
    response = alice.get(files_url)

    assert response.status_code == 200
    page = text(response)
    assert "Bank files" in page
    assert 'enctype="multipart/form-data"' in page
    assert "No bank file uploaded yet." in page


def test_uploading_a_file_shows_its_report(world, alice, invoices, files_url, upload_url):
    response = upload(alice, upload_url, sample("camt054_chf_qr.xml"))

    bank_file = BankFile.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("web:bank_file", args=[bank_file.pk])
    report = alice.get(response["Location"], follow=True)
    page = text(report)
    assert "1 matched, 1 partly paid, 1 overpaid, 2 unknown, 0 already applied" in page
    for label in ("Matched", "Partly paid", "Overpaid", "Unknown reference"):
        assert label in page
    assert invoices["matched"].number in page
    assert QR_UNKNOWN in page
    assert "Hans Muster" in page
    assert "CHF 120.50" in page
    invoices["matched"].refresh_from_db()
    assert invoices["matched"].status == InvoiceStatus.PAID
    listing = text(alice.get(files_url))
    assert "camt054.xml" in listing


def test_the_same_file_again_reports_everything_as_already_applied(
    world, alice, invoices, upload_url
):
    upload(alice, upload_url, sample("camt054_chf_qr.xml"))

    response = upload(alice, upload_url, sample("camt054_chf_qr.xml"), name="again.xml")

    page = text(alice.get(response["Location"]))
    assert "0 matched, 0 partly paid, 0 overpaid, 0 unknown, 5 already applied" in page
    assert page.count("Already applied") >= 5
    assert Payment.objects.count() == 5


def test_a_file_that_is_not_camt_is_refused_on_the_form(world, alice, invoices, upload_url):
    response = upload(alice, upload_url, sample("pain001.xml"), name="order.xml")

    assert response.status_code == 422
    page = text(response)
    assert "payment order (pain.001)" in page
    assert 'class="field-error"' in page
    assert not BankFile.objects.exists()


def test_a_cut_off_file_is_refused_on_the_form(world, alice, invoices, upload_url):
    response = upload(alice, upload_url, sample("camt054_chf_qr.xml")[:2000])

    assert response.status_code == 422
    assert "cut off" in text(response)
    assert not Payment.objects.exists()


def test_an_upload_without_a_file_is_refused(world, alice, upload_url):
    response = alice.post(upload_url, {})

    assert response.status_code == 400
    assert "field-error" in text(response)


def test_a_member_is_told_why_and_an_outsider_finds_nothing(
    world, bob, charlie, files_url, upload_url
):
    refused = bob.get(files_url)
    assert refused.status_code == 403
    assert "owner" in text(refused)
    assert upload(bob, upload_url, sample("camt054_chf_qr.xml")).status_code == 403

    assert charlie.get(files_url).status_code == 404
    assert upload(charlie, upload_url, sample("camt054_chf_qr.xml")).status_code == 404
    assert not BankFile.objects.exists()


def test_another_organizations_report_is_404(world, alice, charlie, invoices, upload_url):
    upload(alice, upload_url, sample("camt054_chf_qr.xml"))
    bank_file = BankFile.objects.get()

    response = charlie.get(reverse("web:bank_file", args=[bank_file.pk]))

    assert response.status_code == 404
    assert "Hans Muster" not in text(response)


def test_the_operator_uploads_for_the_platform(world, operator, alice, invoices):
    charlies = invoice(world.charlie_prop, reference=QR_UNKNOWN, total=3500)
    page = operator.get(reverse("web:operator_bank_files"))
    assert page.status_code == 200

    response = upload(
        operator, reverse("web:operator_upload_bank_file"), sample("camt054_chf_qr.xml")
    )

    assert response.status_code == 302
    charlies.refresh_from_db()
    assert charlies.status == InvoiceStatus.PAID
    listing = text(operator.get(reverse("web:operator_bank_files")))
    assert "camt054.xml" in listing
    assert alice.get(reverse("web:operator_bank_files")).status_code == 404
    assert (
        upload(alice, reverse("web:operator_upload_bank_file"), sample("camt054_chf_qr.xml"))
    ).status_code == 404


# --- marking as paid ----------------------------------------------------------------------------


def test_marking_as_paid_goes_back_to_the_invoice(world, alice, invoices):
    target = invoices["partial"]

    response = alice.post(
        reverse("web:invoice-mark-paid", args=[target.pk]), {"note": "Paid in cash"}
    )

    assert response.status_code == 302
    expected = invoice_url(target.pk) or reverse("web:invoice-mark-paid", args=[target.pk])
    assert response["Location"] == expected
    target.refresh_from_db()
    assert target.status == InvoiceStatus.PAID
    manual = Payment.objects.get(invoice=target)
    assert (manual.outcome, manual.note, manual.created_by) == (
        PaymentOutcome.MANUAL,
        "Paid in cash",
        world.alice,
    )


def test_the_mark_paid_page_shows_the_payments_and_the_form(world, alice, invoices):
    url = reverse("web:invoice-mark-paid", args=[invoices["partial"].pk])
    alice.post(url, {"note": "Half in cash"})

    page = text(alice.get(url))

    assert "Half in cash" in page
    assert "Marked as paid" in page
    assert "Alice Owner" in page
    assert 'name="note"' not in page  # paid now: no form


def test_marking_as_paid_without_a_note_is_refused_on_the_form(world, alice, invoices):
    url = reverse("web:invoice-mark-paid", args=[invoices["matched"].pk])

    blank = alice.post(url, {"note": "   "})
    missing = alice.post(url, {})

    assert blank.status_code == 400
    assert "a note is required" in text(blank)
    assert missing.status_code == 400
    assert "field-error" in text(missing)
    invoices["matched"].refresh_from_db()
    assert invoices["matched"].status == InvoiceStatus.OPEN


def test_marking_a_paid_invoice_again_says_it_is_paid(world, alice, invoices):
    url = reverse("web:invoice-mark-paid", args=[invoices["matched"].pk])
    alice.post(url, {"note": "cash"})

    again = alice.post(url, {"note": "cash again"})

    assert again.status_code == 409
    assert "paid already" in text(again)
    assert Payment.objects.count() == 1


def test_marking_as_paid_is_refused_to_a_member_and_hidden_from_an_outsider(
    world, bob, charlie, invoices
):
    url = reverse("web:invoice-mark-paid", args=[invoices["matched"].pk])

    assert bob.post(url, {"note": "cash"}).status_code == 403
    assert charlie.post(url, {"note": "cash"}).status_code == 404
    assert charlie.get(url).status_code == 404
    assert not Payment.objects.exists()


def test_the_form_include_posts_to_the_mark_paid_view(world, invoices):
    target = invoices["matched"]

    snippet = render_to_string("web/billing/payment_form.html", {"invoice": target})

    assert f'action="{reverse("web:invoice-mark-paid", args=[target.pk])}"' in snippet
    assert 'name="note"' in snippet
    assert "required" in snippet
