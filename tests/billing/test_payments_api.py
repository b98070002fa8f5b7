"""Payments in the API: a bank file uploaded as multipart form data answers
its report; the files uploaded before; an invoice's payments; marking an
invoice as paid. Refusals are JSON errors with a code and a message, and
another organization's objects answer 404."""

from __future__ import annotations

import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from doorkeep.billing.models import BankFile, InvoiceStatus, Payment

from .camt_samples import (
    QR_MATCHED,
    QR_PARTIAL,
    QR_UNKNOWN,
    invoice,
    issuer,
    make_operator,
    sample,
)

URL = "/api/v1/bank-files"


def error_of(response, status, code=None):
    assert response.status_code == status, (response.status_code, response.content[:500])
    body = response.json()
    assert body["message"].strip(), body
    if code is not None:
        assert body["code"] == code, body
    return body


def upload(client, data, name="camt054.xml", query=""):
    return client.post(
        URL + query, {"file": SimpleUploadedFile(name, data, content_type="application/xml")}
    )


def mark(client, invoice_id, note):
    return client.post(
        f"/api/v1/invoices/{invoice_id}/mark-paid",
        json.dumps({"note": note}),
        content_type="application/json",
    )


@pytest.fixture
def alice(world):
    return world.bearer(world.alice)


@pytest.fixture
def charlie(world):
    return world.bearer(world.charlie)


@pytest.fixture
def bob(world):
    return world.bearer(world.bob)


@pytest.fixture
def operator(world):
    user = make_operator()
    return world.bearer(user)


@pytest.fixture
def open_invoices(world):
    chf = issuer()
    return (
        invoice(world.prop, reference=QR_MATCHED, total=12050, by=chf),
        invoice(world.prop, reference=QR_PARTIAL, total=8000, by=chf, person="Sanne"),
    )


def test_an_owners_upload_answers_the_report(world, alice, open_invoices):
    response = upload(alice, sample("camt054_chf_qr.xml"), query=f"?organization_id={world.org.pk}")

    assert response.status_code == 201, response.content
    body = response.json()
    assert body["organization_id"] == world.org.pk
    assert body["filename"] == "camt054.xml"
    assert body["message_type"] == "camt.054"
    assert body["uploaded_by"] == "Alice Owner"
    assert body["counts"]["matched"] == 1
    assert body["counts"]["partial"] == 1
    assert body["counts"]["unknown"] == 3
    rows = {r["reference"]: r for r in body["report"]["rows"]}
    assert rows[QR_MATCHED]["invoice"] == open_invoices[0].number
    assert rows[QR_MATCHED]["amount"] == 12050
    assert rows[QR_MATCHED]["booked_on"] == "2026-02-03"
    assert rows[QR_UNKNOWN]["invoice_id"] is None
    assert body["report"]["counts"]["debits"] == 1


def test_an_owner_of_one_organization_may_leave_it_out(world, alice, open_invoices):
    response = upload(alice, sample("camt054_chf_qr.xml"))

    assert response.status_code == 201, response.content
    assert response.json()["organization_id"] == world.org.pk


def test_the_same_file_twice_is_applied_once(world, alice, open_invoices):
    upload(alice, sample("camt054_chf_qr.xml"))
    response = upload(alice, sample("camt054_chf_qr.xml"))

    assert response.status_code == 201
    counts = response.json()["counts"]
    assert counts["already_applied"] == 5
    assert counts["matched"] == counts["partial"] == counts["unknown"] == 0
    open_invoices[1].refresh_from_db()
    assert open_invoices[1].paid == 5000


def test_the_operator_uploads_for_every_organization(world, operator, open_invoices):
    charlies = invoice(world.charlie_prop, reference=QR_UNKNOWN, total=3500)

    response = upload(operator, sample("camt054_chf_qr.xml"))

    assert response.status_code == 201, response.content
    assert response.json()["organization_id"] is None
    charlies.refresh_from_db()
    assert charlies.status == InvoiceStatus.PAID


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"Reference;Amount\n", "not_xml"),
        (sample("camt054_chf_qr.xml")[:3000], "truncated"),
        (sample("pain001.xml"), "not_camt"),
        (b'<?xml version="1.0"?><!DOCTYPE a [<!ENTITY b "c">]><a>&b;</a>', "doctype"),
    ],
)
def test_a_file_that_is_not_a_readable_camt_is_refused_with_the_reason(
    world, alice, open_invoices, data, reason
):
    body = error_of(upload(alice, data), 422, "bank_file_refused")

    assert body["details"]["reason"] == reason
    assert not BankFile.objects.exists()
    assert not Payment.objects.exists()


def test_an_upload_without_a_file_says_where_the_file_goes(alice):
    body = error_of(alice.post(URL, {}), 422, "file_required")

    assert body["details"]["field"] == "file"


def test_an_outsider_is_refused_before_the_file_is_looked_at(world, charlie):
    response = charlie.post(
        f"{URL}?organization_id={world.org.pk}", "{}", content_type="application/json"
    )

    error_of(response, 404)


def test_a_member_without_the_role_gets_403_and_an_outsider_404(world, bob, charlie):
    query = f"?organization_id={world.org.pk}"

    body = error_of(upload(bob, sample("camt054_chf_qr.xml"), query=query), 403, "forbidden")
    assert "owner" in body["message"]
    error_of(upload(charlie, sample("camt054_chf_qr.xml"), query=query), 404)
    assert not BankFile.objects.exists()


def test_bank_files_are_listed_and_read_by_their_organization_only(world, alice, charlie):
    created = upload(alice, sample("camt054_chf_rest.xml")).json()

    listed = alice.get(URL)
    assert [f["id"] for f in listed.json()] == [created["id"]]
    assert listed.json()[0]["counts"]["unknown"] == 1
    one = alice.get(f"{URL}/{created['id']}")
    assert one.status_code == 200
    assert one.json()["report"]["rows"][0]["reference"] == QR_PARTIAL
    assert len(one.json()["digest"]) == 64

    assert charlie.get(URL).json() == []
    error_of(charlie.get(f"{URL}/{created['id']}"), 404)


def test_an_unknown_bank_file_is_404_and_an_id_beyond_64_bits_422(alice):
    error_of(alice.get(f"{URL}/999999"), 404)
    error_of(alice.get(f"{URL}/{2**70}"), 422)  # the API's contract (docs/api.md)


# --- marking as paid ---------------------------------------------------------------------------


def test_marking_an_invoice_as_paid(world, alice, open_invoices):
    target = open_invoices[1]

    response = mark(alice, target.pk, "Paid in cash at the office")

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["invoice"]["status"] == "paid"
    assert body["invoice"]["open_amount"] == 0
    assert body["payment"]["outcome"] == "manual"
    assert body["payment"]["amount"] == 8000
    assert body["payment"]["note"] == "Paid in cash at the office"
    assert body["payment"]["created_by"] == "Alice Owner"
    payments = alice.get(f"/api/v1/invoices/{target.pk}/payments").json()
    assert [(p["outcome"], p["amount"]) for p in payments] == [("manual", 8000)]


def test_marking_as_paid_needs_a_note(world, alice, open_invoices):
    body = error_of(mark(alice, open_invoices[0].pk, "  "), 400, "note_required")

    assert body["details"]["field"] == "note"


def test_marking_a_paid_invoice_again_is_a_conflict(world, alice, open_invoices):
    mark(alice, open_invoices[0].pk, "cash")

    error_of(mark(alice, open_invoices[0].pk, "cash again"), 409, "already_paid")
    assert Payment.objects.count() == 1


def test_a_draft_cannot_be_marked_as_paid(world, alice):
    draft = invoice(world.prop, reference="", total=1000, status=InvoiceStatus.DRAFT)

    error_of(mark(alice, draft.pk, "cash"), 409, "invoice_draft")


def test_another_organizations_invoice_is_404(world, charlie, bob, open_invoices):
    error_of(mark(charlie, open_invoices[0].pk, "mine now"), 404)
    error_of(charlie.get(f"/api/v1/invoices/{open_invoices[0].pk}/payments"), 404)
    error_of(mark(bob, open_invoices[0].pk, "cash"), 403)
    open_invoices[0].refresh_from_db()
    assert open_invoices[0].status == InvoiceStatus.OPEN
