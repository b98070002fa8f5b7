"""Billing runs and invoices (billing/runs.py): a run is refused for a month
not over and in an individual-statements site; a draft has one invoice per
resident with its lines and VAT, drafting again gives the same and bills no
use twice, two runs never share a use, a use uploaded late is billed by the
next run; finalizing numbers without gaps per issuer (two sites sharing
one), a credit note takes the next number and lowers what is open, a
finalized invoice never changes; one reminder after the due date; the
automatic finalizing from the 5th; emails through the outbox, one test
delivering them to a real SMTP server (billing_world.py describes the site)."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from billing.billing_world import (
    NOW,
    Biller,
    base_tariff,
    build,
    charge,
    february,
    local,
    make_site,
    resident,
    station_at,
    wash,
)
from doorkeep.accounts.services import create_user
from doorkeep.billing import runs, services
from doorkeep.billing.models import (
    BillingRun,
    Invoice,
    InvoiceKind,
    InvoiceLine,
    InvoiceStatus,
    RunStatus,
    Use,
)
from doorkeep.core.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from doorkeep.events.models import Event, EventKind
from doorkeep.notify import outbox
from doorkeep.notify.models import OutboxMessage
from doorkeep.residents.services import add_unit, set_billing_mode

FEB = date(2026, 2, 1)


@pytest.fixture
def b(world: Any, time_machine: Any) -> Biller:
    time_machine.move_to(NOW, tick=False)
    return build(world)


def invoice_of(run: BillingRun, who: Any) -> Invoice:
    return Invoice.objects.get(run=run, person=who)


def lines_of(invoice: Invoice) -> list[tuple[str, str, str, int, int]]:
    return list(
        InvoiceLine.objects.filter(invoice=invoice)
        .order_by("position")
        .values_list("kind", "description", "quantity", "amount", "vat_rate")
    )


def billed_in(run: BillingRun) -> set[int]:
    return set(Use.objects.filter(invoice_line__invoice__run=run).values_list("pk", flat=True))


# --- what a run refuses -----------------------------------------------------------------------


def test_a_month_that_is_not_over_is_refused(b):
    february(b)

    with pytest.raises(InvalidInput) as refused:
        runs.draft_run(b.world.alice, b.prop.pk, "2026-03")

    assert refused.value.code == "month_not_over"
    assert "2026-03 is not over yet" in refused.value.message
    assert "2026-04-01" in refused.value.message
    assert not BillingRun.objects.exists()


def test_the_month_ends_at_midnight_in_the_sites_time_zone(b, time_machine):
    time_machine.move_to(local("2026-02-28 23:59"), tick=False)
    with pytest.raises(InvalidInput):
        runs.draft_run(b.world.alice, b.prop.pk, "2026-02")

    time_machine.move_to(local("2026-03-01 00:00"), tick=False)  # 23:00 UTC on 28 February
    assert runs.draft_run(b.world.alice, b.prop.pk, "2026-02").status == RunStatus.DRAFT


@pytest.mark.parametrize("month", ["2026-13", "Feb", "", "2026/02"])
def test_a_month_not_written_as_one_is_refused(b, month):
    with pytest.raises(InvalidInput) as refused:
        runs.draft_run(b.world.alice, b.prop.pk, month)

    assert refused.value.code == "bad_month"


def test_an_individual_statements_site_is_refused_and_told_about_statements(b):
    set_billing_mode(b.world.alice, b.prop.pk, "individual_statements", confirm=True)
    february(b)

    with pytest.raises(Conflict) as refused:
        runs.draft_run(b.world.alice, b.prop.pk, FEB)

    assert refused.value.code == "not_a_billing_site"
    assert "statements" in refused.value.message
    assert not Invoice.objects.exists()


def test_a_site_without_an_issuer_is_asked_to_choose_one(b):
    other = make_site(b.world.alice, b.world.org.pk, "Harbour Lofts")

    with pytest.raises(InvalidInput) as refused:
        runs.draft_run(b.world.alice, other.pk, FEB)

    assert refused.value.code == "no_issuer"


def test_who_may_draft_finalize_and_read_a_run(b):
    february(b)
    with pytest.raises(PermissionDenied):
        runs.draft_run(b.world.bob, b.prop.pk, FEB)
    with pytest.raises(PermissionDenied):
        runs.draft_run(b.reader, b.prop.pk, FEB)
    with pytest.raises(NotFound):
        runs.draft_run(b.world.charlie, b.prop.pk, FEB)

    run = runs.draft_run(b.manager, b.prop.pk, FEB)

    assert runs.get_run(b.reader, run.pk) == run
    with pytest.raises(PermissionDenied):
        runs.get_run(b.world.bob, run.pk)
    with pytest.raises(NotFound):
        runs.get_run(b.world.charlie, run.pk)
    with pytest.raises(PermissionDenied):
        runs.finalize_run(b.manager, run.pk)  # managers draft; the owner finalizes
    with pytest.raises(NotFound):
        runs.discard_run(b.world.charlie, run.pk)
    assert runs.finalize_run(b.operator, run.pk).status == RunStatus.FINALIZED


# --- a draft ----------------------------------------------------------------------------------


def test_a_draft_has_one_invoice_per_resident_with_lines_vat_and_total(b):
    uses = february(b)

    run = runs.draft_run(b.world.alice, b.prop.pk, FEB)

    assert (run.month, run.status, run.created_by_id) == (FEB, RunStatus.DRAFT, b.world.alice.pk)
    assert Invoice.objects.filter(run=run).count() == 2
    rosa = invoice_of(run, b.rosa_person)
    assert (rosa.total, rosa.vat, rosa.currency) == (775, 58, "CHF")  # 7.75 x 8.1/108.1
    assert (rosa.status, rosa.number, rosa.seq, rosa.unit_id) == ("draft", "", None, b.a12.pk)
    assert (rosa.issuer_id, rosa.month) == (b.issuer.pk, FEB)
    assert lines_of(rosa) == [
        ("charging", "Charging: 2 sessions", "15.00 kWh", 525, 810),
        ("laundry", "Laundry: 1 cycle", "1", 250, 810),
    ]
    bruno = invoice_of(run, b.bruno_person)
    assert (bruno.total, bruno.vat) == (250, 19)
    assert billed_in(run) == {u.pk for u in uses.values()}
    assert runs.display_status(rosa) == "draft"
    assert Event.objects.filter(kind=EventKind.BILLING_RUN_DRAFTED).count() == 1
    assert OutboxMessage.objects.count() == 0  # nothing is sent for a draft


def test_the_monthly_fee_is_billed_to_every_resident_of_the_month(b, time_machine):
    services.create_tariff(
        b.world.alice,
        b.prop.pk,
        services.TariffSpec(
            valid_from=date(2026, 3, 11),
            vat_rate=810,
            monthly_fee=1000,
            monthly_fee_label="Service charge",
        ),
    )
    wash(b.washer, b.rosa_person, b.a12, local("2026-03-03 10:00"))  # Bruno: no use in March
    time_machine.move_to(local("2026-04-02 09:00"), tick=False)

    run = runs.draft_run(b.world.alice, b.prop.pk, "2026-03")

    rosa, bruno = invoice_of(run, b.rosa_person), invoice_of(run, b.bruno_person)
    assert lines_of(bruno) == [("fee", "Service charge", "1", 1000, 810)]
    assert [line[0] for line in lines_of(rosa)] == ["laundry", "fee"]
    assert (rosa.total, bruno.total) == (1250, 1000)


def test_drafting_again_gives_the_same_totals_and_bills_no_use_twice(b):
    uses = february(b)
    first = runs.draft_run(b.world.alice, b.prop.pk, FEB)
    before = sorted(Invoice.objects.filter(run=first).values_list("person_id", "total", "vat"))

    again = runs.draft_run(b.world.alice, b.prop.pk, FEB)
    runs.draft_run(b.world.alice, b.prop.pk, FEB)

    assert again.pk == first.pk
    assert BillingRun.objects.count() == 1
    after = sorted(Invoice.objects.filter(run=first).values_list("person_id", "total", "vat"))
    assert after == before
    assert Invoice.objects.count() == 2
    assert InvoiceLine.objects.count() == 3
    assert Use.objects.filter(invoice_line__isnull=False).count() == len(uses)
    assert billed_in(first) == {u.pk for u in uses.values()}


def test_drafting_again_takes_in_a_use_recorded_since(b):
    february(b)
    run = runs.draft_run(b.world.alice, b.prop.pk, FEB)
    late = wash(b.dryer, b.bruno_person, b.b3, local("2026-02-27 21:00"))

    runs.draft_run(b.world.alice, b.prop.pk, FEB)

    assert invoice_of(run, b.bruno_person).total == 500
    assert late.pk in billed_in(run)


def test_two_runs_never_share_a_use(b, time_machine):
    january = charge(b.station, b.rosa_person, b.a12, local("2026-01-20 19:00"), 20_000)
    feb = february(b)

    jan_run = runs.draft_run(b.world.alice, b.prop.pk, "2026-01")
    feb_run = runs.draft_run(b.world.alice, b.prop.pk, "2026-02")
    runs.draft_run(b.world.alice, b.prop.pk, "2026-01")  # again: takes nothing of February

    assert billed_in(jan_run) == {january.pk}
    assert billed_in(feb_run) == {u.pk for u in feb.values()}
    assert not billed_in(jan_run) & billed_in(feb_run)


def test_the_month_drafted_first_takes_the_earlier_uses_not_billed_yet(b):
    january = charge(b.station, b.rosa_person, b.a12, local("2026-01-20 19:00"), 20_000)
    february(b)

    feb_run = runs.draft_run(b.world.alice, b.prop.pk, "2026-02")
    jan_run = runs.draft_run(b.world.alice, b.prop.pk, "2026-01")

    assert january.pk in billed_in(feb_run)
    assert billed_in(jan_run) == set()
    assert not Invoice.objects.filter(run=jan_run).exists()


def test_a_use_uploaded_late_for_a_finalized_month_is_billed_by_the_next_run(b, time_machine):
    february(b)
    feb_run = runs.draft_run(b.world.alice, b.prop.pk, FEB)
    runs.finalize_run(b.world.alice, feb_run.pk)
    # A cycle of 27 February, uploaded by its controller in March.
    late = wash(b.dryer, b.bruno_person, b.b3, local("2026-02-27 21:00"))
    march = wash(b.washer, b.bruno_person, b.b3, local("2026-03-05 09:00"))
    time_machine.move_to(local("2026-04-01 08:00"), tick=False)

    mar_run = runs.draft_run(b.world.alice, b.prop.pk, "2026-03")

    assert late.pk not in billed_in(feb_run)
    assert billed_in(mar_run) == {late.pk, march.pk}
    assert invoice_of(feb_run, b.bruno_person).total == 250
    assert invoice_of(mar_run, b.bruno_person).total == 500


def test_a_discarded_draft_gives_its_uses_back(b):
    uses = february(b)
    run = runs.draft_run(b.world.alice, b.prop.pk, FEB)

    runs.discard_run(b.world.alice, run.pk)

    assert not BillingRun.objects.exists() and not Invoice.objects.exists()
    assert Use.objects.filter(invoice_line__isnull=True).count() == len(uses)
    again = runs.draft_run(b.world.alice, b.prop.pk, FEB)
    assert billed_in(again) == {u.pk for u in uses.values()}


# --- finalizing -------------------------------------------------------------------------------


def test_finalizing_numbers_dates_renders_and_sends_every_invoice(b):
    february(b)
    run = runs.draft_run(b.world.alice, b.prop.pk, FEB)

    done = runs.finalize_run(b.world.alice, run.pk)

    assert (done.status, done.finalized_by_id) == (RunStatus.FINALIZED, b.world.alice.pk)
    invoices = list(Invoice.objects.filter(run=run).order_by("seq"))
    # Numbered by unit: A-12 (Rosa), then B-3 (Bruno).
    assert [(i.person_id, i.seq, i.number) for i in invoices] == [
        (b.rosa_person.pk, 1, "RE-000001"),
        (b.bruno_person.pk, 2, "RE-000002"),
    ]
    for invoice in invoices:
        assert invoice.status == InvoiceStatus.OPEN
        assert (invoice.issued_on, invoice.due_on) == (date(2026, 3, 10), date(2026, 4, 9))
        assert bytes(invoice.pdf).startswith(b"%PDF")
        assert len(invoice.reference) == 27 and invoice.reference.isdigit()  # QR reference
        assert invoice.emailed_at is not None
        assert runs.display_status(invoice) == "open"
    mails = OutboxMessage.objects.filter(channel="email").order_by("pk")
    assert [(m.payload["to"], m.payload["subject"], m.payload["invoice_id"]) for m in mails] == [
        ("rosa@example.com", "Invoice RE-000001", invoices[0].pk),
        ("bruno@example.com", "Invoice RE-000002", invoices[1].pk),
    ]
    assert "CHF 7.75" in mails[0].payload["body"]
    assert mails[0].payload["url"].endswith(f"/portal/invoices/{invoices[0].pk}/")
    assert Event.objects.filter(kind=EventKind.BILLING_RUN_FINALIZED).count() == 1


def test_numbers_have_no_gaps_per_issuer_across_two_sites_sharing_it(b, time_machine):
    lofts = make_site(b.world.alice, b.world.org.pk, "Harbour Lofts")
    base_tariff(lofts)
    services.set_site_billing(b.world.alice, lofts.pk, b.issuer.pk)
    loft = add_unit(b.world.alice, lofts.pk, "L-1")
    lena = resident(b.world.alice, lofts, create_user("lena@example.com", "pw-long-enough"), loft)
    lofts_station = station_at(lofts, "CP-LOFTS-1")
    february(b)
    charge(lofts_station, lena, loft, local("2026-02-10 20:00"), 8_000)

    canal = runs.draft_run(b.world.alice, b.prop.pk, FEB)
    harbour = runs.draft_run(b.world.alice, lofts.pk, FEB)
    runs.finalize_run(b.world.alice, harbour.pk)
    runs.finalize_run(b.world.alice, canal.pk)
    # March: a credit note and a later run take the next numbers.
    note = runs.credit_invoice(
        b.world.alice, invoice_of(harbour, lena).pk, reason="Meter read twice", amount=100
    )
    charge(lofts_station, lena, loft, local("2026-03-02 20:00"), 8_000)
    time_machine.move_to(local("2026-04-02 09:00"), tick=False)
    march = runs.finalize_run(b.world.alice, runs.draft_run(b.world.alice, lofts.pk, "2026-03").pk)

    seqs = list(
        Invoice.objects.filter(issuer=b.issuer).order_by("seq").values_list("seq", flat=True)
    )
    assert seqs == [1, 2, 3, 4, 5]
    assert invoice_of(harbour, lena).seq == 1
    assert note.seq == 4
    assert invoice_of(march, lena).seq == 5
    b.issuer.refresh_from_db()
    assert b.issuer.next_number == 6


def test_a_run_with_nothing_to_bill_takes_no_number(b):
    run = runs.draft_run(b.world.alice, b.prop.pk, FEB)

    runs.finalize_run(b.world.alice, run.pk)

    b.issuer.refresh_from_db()
    assert b.issuer.next_number == 1
    assert not Invoice.objects.exists()


def test_a_finalized_invoice_never_changes(b):
    february(b)
    run = runs.draft_run(b.world.alice, b.prop.pk, FEB)
    runs.finalize_run(b.world.alice, run.pk)
    before = list(
        Invoice.objects.order_by("pk").values_list("pk", "number", "total", "vat", "status", "pdf")
    )
    wash(b.dryer, b.bruno_person, b.b3, local("2026-02-27 21:00"))

    with pytest.raises(Conflict) as redraft:
        runs.draft_run(b.world.alice, b.prop.pk, FEB)
    with pytest.raises(Conflict) as refinalize:
        runs.finalize_run(b.world.alice, run.pk)
    with pytest.raises(Conflict) as discard:
        runs.discard_run(b.world.alice, run.pk)

    assert redraft.value.code == refinalize.value.code == discard.value.code == "run_finalized"
    assert "credit note" in redraft.value.message
    after = list(
        Invoice.objects.order_by("pk").values_list("pk", "number", "total", "vat", "status", "pdf")
    )
    assert after == before
    assert InvoiceLine.objects.count() == 3


# --- credit notes -----------------------------------------------------------------------------


@pytest.fixture
def finalized(b: Biller) -> BillingRun:
    february(b)
    run = runs.draft_run(b.world.alice, b.prop.pk, FEB)
    return runs.finalize_run(b.world.alice, run.pk)


def test_a_credit_note_is_numbered_in_the_same_sequence_and_lowers_what_is_open(b, finalized):
    rosa = invoice_of(finalized, b.rosa_person)

    note = runs.credit_invoice(
        b.world.alice, rosa.pk, reason="Session 3 Feb charged twice", amount=350
    )

    rosa.refresh_from_db()
    assert (note.kind, note.seq, note.number, note.credits_id) == (
        InvoiceKind.CREDIT_NOTE,
        3,
        "RE-000003",
        rosa.pk,
    )
    assert (note.total, note.vat, note.note) == (350, 26, "Session 3 Feb charged twice")
    assert bytes(note.pdf).startswith(b"%PDF")
    assert (rosa.credited, rosa.open_amount, rosa.status) == (350, 425, InvoiceStatus.OPEN)
    assert lines_of(note) == [
        ("credit", "Credit on invoice RE-000001: Session 3 Feb charged twice", "", 350, 810)
    ]
    mail = OutboxMessage.objects.filter(payload__invoice_id=note.pk).get()
    assert mail.payload["subject"] == "Credit note RE-000003"
    assert Event.objects.filter(kind=EventKind.INVOICE_CREDITED).count() == 1


def test_a_credit_note_without_an_amount_credits_all_that_is_left(b, finalized):
    rosa = invoice_of(finalized, b.rosa_person)
    runs.credit_invoice(b.world.alice, rosa.pk, reason="Partly wrong", amount=75)

    rest = runs.credit_invoice(b.world.alice, rosa.pk, reason="All wrong")

    rosa.refresh_from_db()
    assert rest.total == 700
    assert (rosa.credited, rosa.open_amount, rosa.status) == (775, 0, InvoiceStatus.CREDITED)
    assert runs.display_status(rosa) == "credited"


@pytest.mark.parametrize(
    ("amount", "reason", "code"),
    [(776, "Too much", "bad_amount"), (0, "Nothing", "bad_amount"), (-5, "Minus", "bad_amount")],
)
def test_a_credit_note_for_nothing_or_more_than_is_left_is_refused(
    b, finalized, amount, reason, code
):
    rosa = invoice_of(finalized, b.rosa_person)

    with pytest.raises(InvalidInput) as refused:
        runs.credit_invoice(b.world.alice, rosa.pk, reason=reason, amount=amount)

    assert refused.value.code == code
    assert "CHF 7.75" in refused.value.message
    assert not Invoice.objects.filter(kind=InvoiceKind.CREDIT_NOTE).exists()
    b.issuer.refresh_from_db()
    assert b.issuer.next_number == 3  # no number was used up


def test_a_credit_note_needs_a_reason_and_a_finalized_invoice(b):
    february(b)
    run = runs.draft_run(b.world.alice, b.prop.pk, FEB)
    draft = invoice_of(run, b.rosa_person)

    with pytest.raises(Conflict) as of_draft:
        runs.credit_invoice(b.world.alice, draft.pk, reason="Why not")
    runs.finalize_run(b.world.alice, run.pk)
    with pytest.raises(InvalidInput) as no_reason:
        runs.credit_invoice(b.world.alice, draft.pk, reason="   ")

    assert (of_draft.value.code, no_reason.value.code) == ("not_creditable", "missing_reason")


def test_only_the_owner_and_the_operator_issue_credit_notes(b, finalized):
    rosa = invoice_of(finalized, b.rosa_person)

    for who in (b.manager, b.reader, b.rosa):
        with pytest.raises(PermissionDenied):
            runs.credit_invoice(who, rosa.pk, reason="Mine", amount=1)
    for who in (b.world.charlie, b.bruno):
        with pytest.raises(NotFound):
            runs.credit_invoice(who, rosa.pk, reason="Mine", amount=1)

    assert runs.credit_invoice(b.operator, rosa.pk, reason="Goodwill", amount=1).seq == 3


# --- who reads an invoice ---------------------------------------------------------------------


def test_a_resident_reads_their_own_finalized_invoices_only(b):
    february(b)
    run = runs.draft_run(b.world.alice, b.prop.pk, FEB)
    rosa, bruno = invoice_of(run, b.rosa_person), invoice_of(run, b.bruno_person)

    with pytest.raises(NotFound):
        runs.get_invoice(b.rosa, rosa.pk)  # a draft is not theirs to see yet
    assert runs.my_invoices(b.rosa) == []
    runs.finalize_run(b.world.alice, run.pk)

    assert runs.get_invoice(b.rosa, rosa.pk) == rosa
    assert runs.my_invoices(b.rosa) == [rosa]
    with pytest.raises(NotFound):
        runs.get_invoice(b.rosa, bruno.pk)
    with pytest.raises(NotFound):
        runs.get_invoice(b.world.charlie, bruno.pk)
    assert runs.get_invoice(b.reader, bruno.pk) == bruno


# --- reminders and the automatic finalizing ---------------------------------------------------


def test_one_reminder_is_sent_after_the_due_date_for_what_is_still_open(b, finalized):
    rosa, bruno = invoice_of(finalized, b.rosa_person), invoice_of(finalized, b.bruno_person)
    Invoice.objects.filter(pk=bruno.pk).update(status=InvoiceStatus.PAID, paid=bruno.total)
    runs.credit_invoice(b.world.alice, rosa.pk, reason="Goodwill", amount=100)
    OutboxMessage.objects.all().delete()

    assert runs.send_reminders(local("2026-04-09 23:00")) == 0  # due that day: not yet
    sent = runs.send_reminders(local("2026-04-10 08:00"))
    again = runs.send_reminders(local("2026-04-11 08:00"))

    assert (sent, again) == (1, 0)
    (mail,) = OutboxMessage.objects.all()
    assert mail.payload["to"] == "rosa@example.com"
    assert mail.payload["subject"] == "Reminder: invoice RE-000001"
    assert "CHF 6.75 is still open" in mail.payload["body"]
    rosa.refresh_from_db()
    assert rosa.reminded_at is not None
    assert runs.display_status(rosa, date(2026, 4, 10)) == "overdue"
    assert runs.display_status(rosa, date(2026, 4, 9)) == "open"
    assert Event.objects.filter(kind=EventKind.INVOICE_REMINDED).count() == 1


def test_last_months_run_is_finalized_automatically_from_the_fifth(b, time_machine):
    wash(b.washer, b.rosa_person, b.a12, local("2026-03-20 10:00"))
    draft = runs.draft_run(b.world.alice, b.prop.pk, FEB)  # February, drafted and forgotten

    time_machine.move_to(local("2026-04-04 23:00"), tick=False)
    assert runs.finalize_due() == []
    time_machine.move_to(local("2026-04-05 00:30"), tick=False)
    done = runs.finalize_due()
    again = runs.finalize_due()

    march = BillingRun.objects.get(property=b.prop, month=date(2026, 3, 1))
    assert done == [march.pk] and again == []
    assert march.status == RunStatus.FINALIZED and march.finalized_by is None
    assert invoice_of(march, b.rosa_person).number == "RE-000001"
    draft.refresh_from_db()
    assert draft.status == RunStatus.DRAFT  # only last month's run is finalized
    assert OutboxMessage.objects.filter(payload__to="rosa@example.com").count() == 1


def test_the_automatic_finalizing_skips_an_individual_statements_site(b, time_machine):
    wash(b.washer, b.rosa_person, b.a12, local("2026-03-20 10:00"))
    set_billing_mode(b.world.alice, b.prop.pk, "individual_statements", confirm=True)
    time_machine.move_to(local("2026-04-06 09:00"), tick=False)

    assert runs.finalize_due() == []
    assert not BillingRun.objects.exists()


# --- email, for real --------------------------------------------------------------------------


def test_the_invoice_reaches_the_resident_by_email_with_its_pdf(b, finalized, smtp):
    delivered = outbox.deliver_due()

    assert delivered == 2
    mail = smtp.last_to("rosa@example.com")
    assert "Invoice RE-000001" in mail["Subject"]
    body = mail.get_body(preferencelist=("plain",)).get_content()
    assert "CHF 7.75" in body and "2026-04-09" in body
    (attachment,) = list(mail.iter_attachments())
    assert attachment.get_filename() == "RE-000001.pdf"
    assert attachment.get_content_type() == "application/pdf"
    rosa = invoice_of(finalized, b.rosa_person)
    assert attachment.get_content() == bytes(rosa.pdf)
    assert smtp.last_to("bruno@example.com")["Subject"].endswith("Invoice RE-000002")
