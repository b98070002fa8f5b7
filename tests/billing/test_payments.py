"""Paying invoices from the bank's files, and by hand: a credit is matched by
its reference, exactly, partly or more than paid, or kept as unknown; an
invoice paid in full is paid, with its event and webhook; nothing is
applied twice; an owner's file pays only their organization's invoices;
marking as paid carries a note and its author."""

from __future__ import annotations

from datetime import date

import pytest

from doorkeep.accounts.models import Membership, Role
from doorkeep.billing import camt, payments
from doorkeep.billing.camt import BankFileError
from doorkeep.billing.models import (
    BankFile,
    InvoiceKind,
    InvoiceStatus,
    Payment,
    PaymentOutcome,
)
from doorkeep.core.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from doorkeep.events.models import Event, EventKind
from doorkeep.notify.models import OutboxMessage, WebhookEvent
from doorkeep.notify.services import create_endpoint
from doorkeep.properties.services import create_property

from .camt_samples import (
    QR_MATCHED,
    QR_OVERLAP,
    QR_OVERPAID,
    QR_PARTIAL,
    QR_PENDING,
    QR_SPACED,
    QR_UNKNOWN,
    RF_MATCHED,
    invoice,
    issuer,
    make_operator,
    sample,
)


@pytest.fixture
def operator(world):
    return make_operator()


@pytest.fixture
def alices(world):
    """Alice's open invoices, one for each credit of camt054_chf_qr.xml."""
    chf = issuer()
    return {
        "matched": invoice(world.prop, reference=QR_MATCHED, total=12050, by=chf),
        "partial": invoice(
            world.prop, reference=QR_PARTIAL, total=8000, by=chf, person="Sanne de Vries"
        ),
        "overpaid": invoice(
            world.prop, reference=QR_OVERPAID, total=10000, by=chf, person="Lucas Janssen"
        ),
        "spaced": invoice(world.prop, reference=QR_SPACED, total=6430, by=chf, person="Noah"),
    }


def fresh(row):
    row.refresh_from_db()
    return row


def outcomes(bank_file):
    return [(r["reference"], r["outcome"]) for r in bank_file.report["rows"]]


def webhooks(event_type=WebhookEvent.INVOICE_PAID):
    return list(OutboxMessage.objects.filter(event_type=event_type).order_by("pk"))


# --- matching ---------------------------------------------------------------------------------


def test_each_credit_is_matched_partly_paid_overpaid_or_unknown(world, operator, alices):
    bank_file = payments.import_bank_file(
        operator, sample("camt054_chf_qr.xml"), "camt054.xml", organization_id=None
    )

    assert outcomes(bank_file) == [
        (QR_MATCHED, "matched"),
        (QR_PARTIAL, "partial"),
        (QR_OVERPAID, "overpaid"),
        (QR_UNKNOWN, "unknown"),
        (QR_SPACED, "matched"),
    ]
    counts = bank_file.report["counts"]
    assert counts == {
        "credits": 5,
        "matched": 2,
        "partial": 1,
        "overpaid": 1,
        "unknown": 1,
        "already_applied": 0,
        "debits": 1,
        "not_booked": 1,
    }
    assert bank_file.report["totals"]["CHF"]["matched"] == 12050 + 6430
    assert bank_file.message_type == "camt.054"
    assert bank_file.filename == "camt054.xml"
    rows = {r["reference"]: r for r in bank_file.report["rows"]}
    assert rows[QR_MATCHED]["invoice"] == alices["matched"].number
    assert rows[QR_UNKNOWN]["invoice"] is None


def test_an_invoice_paid_in_full_is_paid_and_one_paid_in_part_stays_open(world, operator, alices):
    payments.import_bank_file(operator, sample("camt054_chf_qr.xml"), "", organization_id=None)

    matched, partial, overpaid = (fresh(alices[k]) for k in ("matched", "partial", "overpaid"))
    assert (matched.status, matched.paid) == (InvoiceStatus.PAID, 12050)
    assert matched.paid_at is not None
    assert (partial.status, partial.paid, partial.open_amount) == (InvoiceStatus.OPEN, 5000, 3000)
    assert partial.paid_at is None
    assert (overpaid.status, overpaid.paid, overpaid.open_amount) == (
        InvoiceStatus.PAID,
        13115,
        -3115,
    )


def test_every_credit_is_kept_as_a_payment_the_unknown_one_too(world, operator, alices):
    bank_file = payments.import_bank_file(
        operator, sample("camt054_chf_qr.xml"), "", organization_id=None
    )

    stored = Payment.objects.filter(bank_file=bank_file)
    assert stored.count() == 5
    unknown = stored.get(outcome=PaymentOutcome.UNKNOWN)
    assert (unknown.invoice, unknown.amount, unknown.debtor) == (None, 3500, "Hans Muster")
    assert unknown.reference == QR_UNKNOWN
    assert unknown.booked_on == date(2026, 2, 3)
    partial = stored.get(outcome=PaymentOutcome.PARTIAL)
    assert partial.invoice == alices["partial"]
    assert partial.organization_id == world.org.pk
    assert partial.key.endswith("/20260203001234002")


def test_becoming_paid_is_an_event_and_a_webhook_a_partial_payment_neither(world, operator, alices):
    create_endpoint(world.alice, world.org.pk, url="https://hooks.alice.example/doorkeep")

    payments.import_bank_file(operator, sample("camt054_chf_qr.xml"), "", organization_id=None)

    paid_events = Event.objects.filter(kind=EventKind.INVOICE_PAID, organization=world.org)
    assert sorted(e.data["invoice_id"] for e in paid_events) == sorted(
        alices[k].pk for k in ("matched", "overpaid", "spaced")
    )
    sent = webhooks()
    assert len(sent) == 3
    body = next(
        m.payload for m in sent if m.payload["data"]["invoice"]["id"] == alices["matched"].pk
    )
    assert body["type"] == "invoice.paid"
    data = body["data"]["invoice"]
    assert (data["number"], data["total"], data["currency"]) == (
        alices["matched"].number,
        12050,
        "CHF",
    )
    assert data["paid_at"] == fresh(alices["matched"]).paid_at.isoformat()
    assert body["data"]["payment"]["outcome"] == "matched"


def test_the_import_is_an_event_of_the_platform_for_the_operator(world, operator, alices):
    bank_file = payments.import_bank_file(
        operator, sample("camt054_chf_qr.xml"), "feb.xml", organization_id=None
    )

    event = Event.objects.get(kind=EventKind.BANK_FILE_IMPORTED)
    assert event.organization.is_platform
    assert event.actor == operator
    assert event.data["bank_file_id"] == bank_file.pk
    assert "2 matched" in event.summary


def test_a_partial_payment_is_completed_by_a_second_file(world, operator, alices):
    create_endpoint(world.alice, world.org.pk, url="https://hooks.alice.example/doorkeep")
    payments.import_bank_file(operator, sample("camt054_chf_qr.xml"), "", organization_id=None)
    assert fresh(alices["partial"]).status == InvoiceStatus.OPEN
    before = len(webhooks())

    rest = payments.import_bank_file(
        operator, sample("camt054_chf_rest.xml"), "", organization_id=None
    )

    assert outcomes(rest) == [(QR_PARTIAL, "matched")]
    partial = fresh(alices["partial"])
    assert (partial.status, partial.paid, partial.open_amount) == (InvoiceStatus.PAID, 8000, 0)
    assert len(webhooks()) == before + 1
    assert Payment.objects.filter(invoice=partial).count() == 2


def test_the_same_file_again_applies_nothing(world, operator, alices):
    data = sample("camt054_chf_qr.xml")
    payments.import_bank_file(operator, data, "", organization_id=None)
    state = [(i.pk, i.paid, i.status) for i in (fresh(v) for v in alices.values())]
    events = Event.objects.filter(kind=EventKind.INVOICE_PAID).count()

    again = payments.import_bank_file(operator, data, "again.xml", organization_id=None)

    assert [(i.pk, i.paid, i.status) for i in (fresh(v) for v in alices.values())] == state
    assert {r["outcome"] for r in again.report["rows"]} == {"already_applied"}
    assert again.report["counts"]["already_applied"] == 5
    assert again.report["counts"]["matched"] == 0
    assert Payment.objects.count() == 5
    assert Event.objects.filter(kind=EventKind.INVOICE_PAID).count() == events
    assert BankFile.objects.count() == 2  # the second upload is on record, with its report
    rows = {r["reference"]: r for r in again.report["rows"]}
    assert rows[QR_MATCHED]["invoice"] == alices["matched"].number


def test_a_file_that_overlaps_an_earlier_one_applies_only_what_is_new(world, operator, alices):
    later = invoice(world.prop, reference=QR_OVERLAP, total=7000, person="Emma Weber")
    payments.import_bank_file(operator, sample("camt054_chf_qr.xml"), "", organization_id=None)

    overlap = payments.import_bank_file(
        operator, sample("camt054_chf_overlap.xml"), "", organization_id=None
    )

    assert outcomes(overlap) == [(QR_UNKNOWN, "already_applied"), (QR_OVERLAP, "matched")]
    assert fresh(later).status == InvoiceStatus.PAID
    assert Payment.objects.filter(reference=QR_UNKNOWN).count() == 1


def test_an_unknown_payment_is_matched_by_a_later_upload_once_its_invoice_exists(
    world, operator, alices
):
    payments.import_bank_file(operator, sample("camt054_chf_qr.xml"), "", organization_id=None)
    late = invoice(world.prop, reference=QR_UNKNOWN, total=3500, person="Hans Muster")

    again = payments.import_bank_file(
        operator, sample("camt054_chf_qr.xml"), "", organization_id=None
    )

    rows = {r["reference"]: r["outcome"] for r in again.report["rows"]}
    assert rows[QR_UNKNOWN] == "matched"
    assert again.report["counts"]["already_applied"] == 4
    assert (fresh(late).status, fresh(late).paid) == (InvoiceStatus.PAID, 3500)
    payment = Payment.objects.get(reference=QR_UNKNOWN)
    assert (payment.invoice, payment.outcome, payment.bank_file) == (late, "matched", again)
    third = payments.import_bank_file(
        operator, sample("camt054_chf_qr.xml"), "", organization_id=None
    )
    assert third.report["counts"]["already_applied"] == 5
    assert fresh(late).paid == 3500


def test_a_pending_credit_pays_nothing(world, operator, alices):
    pending = invoice(world.prop, reference=QR_PENDING, total=9900)

    payments.import_bank_file(operator, sample("camt054_chf_qr.xml"), "", organization_id=None)

    assert (fresh(pending).paid, fresh(pending).status) == (0, InvoiceStatus.OPEN)


def test_a_eur_statement_pays_an_invoice_with_a_creditor_reference(world, operator):
    eur = invoice(world.prop, reference=RF_MATCHED, total=25000, currency="EUR")

    bank_file = payments.import_bank_file(
        operator, sample("camt053_eur_rf.xml"), "", organization_id=None
    )

    assert outcomes(bank_file) == [(RF_MATCHED, "matched"), ("", "unknown")]
    assert fresh(eur).status == InvoiceStatus.PAID
    assert bank_file.report["totals"]["EUR"]["unknown"] == 8000


def test_a_payment_in_another_currency_than_its_invoice_is_not_applied(world, operator):
    chf = invoice(world.prop, reference=RF_MATCHED, total=25000, currency="CHF")

    bank_file = payments.import_bank_file(
        operator, sample("camt053_eur_rf.xml"), "", organization_id=None
    )

    row = bank_file.report["rows"][0]
    assert row["outcome"] == "unknown"
    assert "CHF" in row["note"]
    assert fresh(chf).paid == 0


def test_what_a_credit_note_took_off_counts_as_paid(world, operator):
    credited = invoice(world.prop, reference=QR_MATCHED, total=15000, credited=2950)

    bank_file = payments.import_bank_file(
        operator, sample("camt054_chf_qr.xml"), "", organization_id=None
    )

    assert outcomes(bank_file)[0] == (QR_MATCHED, "matched")
    assert fresh(credited).status == InvoiceStatus.PAID


def test_drafts_credit_notes_and_credited_invoices_are_never_matched(world, operator):
    invoice(world.prop, reference=QR_MATCHED, total=12050, status=InvoiceStatus.DRAFT)
    invoice(world.prop, reference=QR_PARTIAL, total=5000, kind=InvoiceKind.CREDIT_NOTE)
    invoice(world.prop, reference=QR_OVERPAID, total=13115, status=InvoiceStatus.CREDITED)

    bank_file = payments.import_bank_file(
        operator, sample("camt054_chf_qr.xml"), "", organization_id=None
    )

    assert bank_file.report["counts"]["unknown"] == 5


def test_a_payment_of_an_invoice_paid_already_is_overpaid(world, operator):
    paid = invoice(world.prop, reference=QR_MATCHED, total=12050, status=InvoiceStatus.PAID)
    paid.paid = 12050
    paid.save()

    bank_file = payments.import_bank_file(
        operator, sample("camt054_chf_qr.xml"), "", organization_id=None
    )

    assert outcomes(bank_file)[0] == (QR_MATCHED, "overpaid")
    assert fresh(paid).paid == 24100


def test_a_refused_file_changes_nothing(world, operator, alices):
    data = sample("camt054_chf_qr.xml").replace(b'Ccy="CHF">64.30', b'Ccy="USD">64.30')

    with pytest.raises(BankFileError) as caught:
        payments.import_bank_file(operator, data, "", organization_id=None)

    assert "USD" in caught.value.message
    assert BankFile.objects.count() == 0
    assert Payment.objects.count() == 0
    assert fresh(alices["matched"]).paid == 0
    assert not Event.objects.filter(kind=EventKind.BANK_FILE_IMPORTED).exists()


def test_a_cut_off_file_changes_nothing(world, operator, alices):
    data = sample("camt054_chf_qr.xml")

    with pytest.raises(BankFileError):
        payments.import_bank_file(operator, data[:-200], "", organization_id=None)

    assert Payment.objects.count() == 0


# --- who uploads, whose invoices ---------------------------------------------------------------


def test_an_owners_file_pays_their_organizations_invoices_only(world, alices):
    charlies = invoice(world.charlie_prop, reference=QR_UNKNOWN, total=3500, person="Hans")

    bank_file = payments.import_bank_file(
        world.alice, sample("camt054_chf_qr.xml"), "", organization_id=world.org.pk
    )

    assert bank_file.organization == world.org
    rows = {r["reference"]: r for r in bank_file.report["rows"]}
    assert rows[QR_MATCHED]["outcome"] == "matched"
    assert rows[QR_UNKNOWN]["outcome"] == "unknown"
    assert rows[QR_UNKNOWN]["note"] == ""  # says nothing of Charlie's invoice
    assert fresh(charlies).paid == 0
    event = Event.objects.get(kind=EventKind.BANK_FILE_IMPORTED)
    assert event.organization == world.org


def test_the_operators_file_pays_every_organizations_invoices(world, operator, alices):
    charlies = invoice(world.charlie_prop, reference=QR_UNKNOWN, total=3500, person="Hans")

    payments.import_bank_file(operator, sample("camt054_chf_qr.xml"), "", organization_id=None)

    assert fresh(charlies).status == InvoiceStatus.PAID
    assert fresh(alices["matched"]).status == InvoiceStatus.PAID
    assert Event.objects.get(kind=EventKind.INVOICE_PAID, organization=world.charlie_org)


def test_an_owner_scoped_to_one_site_pays_only_that_sites_invoices(world):
    other_site = create_property(world.alice, world.org.pk, name="Harbour Loft")
    here = invoice(world.prop, reference=QR_MATCHED, total=12050)
    there = invoice(other_site, reference=QR_PARTIAL, total=5000)
    Membership.objects.filter(user=world.bob).update(role=Role.LOCK_OWNER, property=world.prop)

    bank_file = payments.import_bank_file(
        world.bob, sample("camt054_chf_qr.xml"), "", organization_id=world.org.pk
    )

    assert fresh(here).status == InvoiceStatus.PAID
    assert fresh(there).paid == 0
    assert outcomes(bank_file)[1] == (QR_PARTIAL, "unknown")


def test_a_member_without_the_role_is_told_why_and_an_outsider_finds_nothing(world, alices):
    data = sample("camt054_chf_qr.xml")

    with pytest.raises(PermissionDenied):
        payments.import_bank_file(world.bob, data, "", organization_id=world.org.pk)
    with pytest.raises(NotFound):
        payments.import_bank_file(world.charlie, data, "", organization_id=world.org.pk)
    with pytest.raises(NotFound):  # only the operator uploads for every organization
        payments.import_bank_file(world.alice, data, "", organization_id=None)

    assert Payment.objects.count() == 0


def test_a_refused_upload_reads_no_file(world):
    with pytest.raises(NotFound):
        payments.import_bank_file(world.charlie, b"not even xml", "", organization_id=world.org.pk)


def test_bank_files_are_listed_for_who_may_see_them(world, operator, alices):
    mine = payments.import_bank_file(
        world.alice, sample("camt054_chf_rest.xml"), "", organization_id=world.org.pk
    )
    platform = payments.import_bank_file(
        operator, sample("camt054_chf_qr.xml"), "", organization_id=None
    )

    assert list(payments.bank_files(world.alice)) == [mine]
    assert list(payments.bank_files(world.charlie)) == []
    assert list(payments.bank_files(world.bob)) == []
    assert set(payments.bank_files(operator)) == {mine, platform}
    assert list(payments.bank_files(operator, organization_id=0)) == [platform]
    assert payments.get_bank_file(world.alice, mine.pk) == mine
    with pytest.raises(NotFound):
        payments.get_bank_file(world.alice, platform.pk)
    with pytest.raises(NotFound):
        payments.get_bank_file(world.charlie, mine.pk)


# --- marking as paid by hand -------------------------------------------------------------------


def test_marking_as_paid_records_the_note_and_its_author(world, alices):
    create_endpoint(world.alice, world.org.pk, url="https://hooks.alice.example/doorkeep")
    partial = alices["partial"]
    partial.paid = 5000
    partial.save()

    marked = payments.mark_paid(world.alice, partial.pk, note="  Paid the rest in cash \n")

    assert (marked.status, marked.paid) == (InvoiceStatus.PAID, 8000)
    assert marked.paid_at is not None
    manual = Payment.objects.get(invoice=partial, outcome=PaymentOutcome.MANUAL)
    assert (manual.amount, manual.note, manual.created_by) == (
        3000,
        "Paid the rest in cash",
        world.alice,
    )
    assert manual.key is None
    event = Event.objects.get(kind=EventKind.INVOICE_PAID)
    assert (event.actor, event.reason) == (world.alice, "manual")
    (hook,) = webhooks()
    assert hook.payload["data"]["payment"]["outcome"] == "manual"


def test_the_operator_may_mark_any_invoice_as_paid(world, operator):
    charlies = invoice(world.charlie_prop, reference=QR_MATCHED, total=1000)

    payments.mark_paid(operator, charlies.pk, note="Paid at the desk")

    assert fresh(charlies).status == InvoiceStatus.PAID


@pytest.mark.parametrize("note", ["", "   \n "])
def test_marking_as_paid_needs_a_note(world, alices, note):
    with pytest.raises(InvalidInput) as caught:
        payments.mark_paid(world.alice, alices["matched"].pk, note=note)

    assert caught.value.code == "note_required"
    assert fresh(alices["matched"]).status == InvoiceStatus.OPEN
    assert not Payment.objects.exists()


def test_a_note_too_long_is_refused(world, alices):
    with pytest.raises(InvalidInput) as caught:
        payments.mark_paid(world.alice, alices["matched"].pk, note="x" * 301)

    assert caught.value.code == "note_too_long"


@pytest.mark.parametrize(
    ("status", "kind", "code"),
    [
        (InvoiceStatus.DRAFT, InvoiceKind.INVOICE, "invoice_draft"),
        (InvoiceStatus.OPEN, InvoiceKind.CREDIT_NOTE, "credit_note"),
        (InvoiceStatus.PAID, InvoiceKind.INVOICE, "already_paid"),
        (InvoiceStatus.CREDITED, InvoiceKind.INVOICE, "invoice_credited"),
    ],
)
def test_marking_as_paid_is_refused_for_what_cannot_be_paid(world, status, kind, code):
    row = invoice(world.prop, reference=QR_MATCHED, total=1000, status=status, kind=kind)

    with pytest.raises(Conflict) as caught:
        payments.mark_paid(world.alice, row.pk, note="cash")

    assert caught.value.code == code
    assert caught.value.message
    assert not Payment.objects.exists()


def test_marking_as_paid_is_for_the_owner_only(world, alices):
    with pytest.raises(PermissionDenied):
        payments.mark_paid(world.bob, alices["matched"].pk, note="cash")
    with pytest.raises(NotFound):
        payments.mark_paid(world.charlie, alices["matched"].pk, note="cash")
    with pytest.raises(NotFound):
        payments.mark_paid(world.alice, 2**40, note="cash")

    assert fresh(alices["matched"]).status == InvoiceStatus.OPEN


def test_an_invoice_marked_paid_by_hand_then_in_a_bank_file_is_overpaid(world, operator, alices):
    payments.mark_paid(world.alice, alices["matched"].pk, note="cash")

    bank_file = payments.import_bank_file(
        operator, sample("camt054_chf_qr.xml"), "", organization_id=None
    )

    assert outcomes(bank_file)[0] == (QR_MATCHED, "overpaid")
    assert (
        len(
            Event.objects.filter(kind=EventKind.INVOICE_PAID, data__invoice_id=alices["matched"].pk)
        )
        == 1
    )


def test_payments_of_an_invoice_are_listed_oldest_first(world, operator, alices):
    payments.import_bank_file(operator, sample("camt054_chf_qr.xml"), "", organization_id=None)
    payments.mark_paid(world.alice, alices["partial"].pk, note="rest in cash")

    found = payments.payments_of(world.alice, alices["partial"].pk)

    assert [(p.outcome, p.amount) for p in found] == [("partial", 5000), ("manual", 3000)]
    with pytest.raises(NotFound):
        payments.payments_of(world.charlie, alices["partial"].pk)


# --- the demo's file ---------------------------------------------------------------------------


def test_the_demo_file_pays_the_open_invoices_when_uploaded(world, operator, alices):
    data = camt.demo_bank_file([alices["matched"], alices["partial"]])

    bank_file = payments.import_bank_file(operator, data, "demo.xml", organization_id=None)

    assert bank_file.report["counts"]["matched"] == 2
    assert fresh(alices["matched"]).status == InvoiceStatus.PAID
    assert fresh(alices["partial"]).status == InvoiceStatus.PAID
