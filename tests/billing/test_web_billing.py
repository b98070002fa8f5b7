"""Billing in the web UI (web/views/billing.py): a site's billing settings,
its tariffs (prices typed as decimals, the services' refusals on the form),
its billing runs (draft, draft again, discard, finalize with a
confirmation; a month not over; an individual-statements site's note), its
invoices, an invoice's page (lines, totals, status, payments, credit notes,
the PDF, a credit note), and the resident portal's invoices. Owners and
managers change, read-only collaborators look, a plain member is told why
not, an outsider and another resident find nothing (billing_world.py
describes the site)."""

from __future__ import annotations

import html
import re
from datetime import date
from typing import Any

import pytest

from billing.billing_world import IBAN, NOW, Biller, build, february, local
from doorkeep.billing import runs
from doorkeep.billing.models import (
    BillingRun,
    Invoice,
    InvoiceKind,
    Issuer,
    LaundryPrice,
    RunStatus,
    SiteBilling,
    Tariff,
)
from doorkeep.notify.models import OutboxMessage
from doorkeep.residents.services import set_billing_mode

FEB = date(2026, 2, 1)
_CSRF = re.compile(r'<input type="hidden" name="csrfmiddlewaretoken" value="[^"]*">')


def text(response: Any) -> str:
    """The page as text, without its CSRF tokens."""
    return _CSRF.sub("", html.unescape(response.content.decode()))


@pytest.fixture
def b(world: Any, time_machine: Any) -> Biller:
    time_machine.move_to(NOW, tick=False)
    return build(world)


@pytest.fixture
def alice(b: Biller) -> Any:
    return b.world.client(b.world.alice)


def finalized(b: Biller) -> BillingRun:
    february(b)
    return runs.finalize_run(b.world.alice, runs.draft_run(b.world.alice, b.prop.pk, FEB).pk)


def tariff_form(**fields: str) -> dict[str, str]:
    data = {
        "valid_from": "2026-04-01",
        "vat_rate": "8.1",
        "charging_rate": "0.35",
        "laundry_cycle_price": "2.50",
        "extra_badge_price": "15.00",
        "laundry-TOTAL_FORMS": "3",
        "laundry-INITIAL_FORMS": "0",
        "laundry-MIN_NUM_FORMS": "0",
        "laundry-MAX_NUM_FORMS": "50",
    }
    data.update(fields)
    return data


# --- the way in -------------------------------------------------------------------------------


def test_the_sites_page_links_to_its_billing_for_those_who_may_see_it(b, alice):
    page = text(alice.get(f"/properties/{b.prop.pk}/"))
    bobs = text(b.world.client(b.world.bob).get(f"/properties/{b.prop.pk}/"))

    assert f'href="/properties/{b.prop.pk}/billing/"' in page
    assert 'id="billing-link"' not in bobs


def test_the_billing_page_shows_who_invoices_and_the_tariff_in_force(b, alice):
    page = text(alice.get(f"/properties/{b.prop.pk}/billing/"))

    assert "Billing and payments" in page
    assert "Alice Locks AG" in page
    assert "CHF 0.3500 per kWh" in page and "CHF 2.50 per cycle" in page and "8.1 %" in page
    for href in ("tariffs/", "billing-runs/", "invoices/"):
        assert f'href="/properties/{b.prop.pk}/{href}"' in page
    assert f'action="/properties/{b.prop.pk}/billing/issuer/#issuer"' in page


def test_choosing_the_days_to_pay_and_an_issuer(b, alice):
    response = alice.post(
        f"/properties/{b.prop.pk}/billing/issuer/", {"issuer": b.issuer.pk, "payment_days": "14"}
    )

    assert response.status_code == 302
    assert SiteBilling.objects.get(property=b.prop).payment_days == 14
    assert "invoices give 14 days to pay" in text(alice.get(response["Location"]))


def test_days_to_pay_out_of_range_are_refused_on_the_form(b, alice):
    response = alice.post(
        f"/properties/{b.prop.pk}/billing/issuer/", {"issuer": b.issuer.pk, "payment_days": "0"}
    )

    assert response.status_code == 400
    assert "Days to pay are between 1 and 120." in text(response)
    assert SiteBilling.objects.get(property=b.prop).payment_days == 30


def test_the_owner_adds_her_organization_as_issuer_and_it_is_chosen(b, alice):
    response = alice.post(
        f"/properties/{b.prop.pk}/billing/issuers/add/",
        {
            "name": "Canal House Billing",
            "postcode": "8001",
            "city": "Zürich",
            "country": "CH",
            "account": IBAN,
            "currency": "CHF",
        },
    )

    assert response.status_code == 302
    issuer = Issuer.objects.get(name="Canal House Billing")
    assert issuer.organization_id == b.world.org.pk
    assert SiteBilling.objects.get(property=b.prop).issuer_id == issuer.pk


def test_a_wrong_iban_is_refused_on_the_form_and_nothing_is_added(b, alice):
    response = alice.post(
        f"/properties/{b.prop.pk}/billing/issuers/add/",
        {
            "name": "Typo AG",
            "postcode": "8001",
            "city": "Zürich",
            "country": "CH",
            "account": "CH93 0076 2011 6238 5295 8",
            "currency": "CHF",
        },
    )

    assert response.status_code == 400
    assert "is not a valid IBAN" in text(response)
    assert not Issuer.objects.filter(name="Typo AG").exists()


def test_a_manager_sees_the_settings_but_only_the_owner_chooses_who_invoices(b):
    manager = b.world.client(b.manager)

    page = text(manager.get(f"/properties/{b.prop.pk}/billing/"))
    refused = manager.post(
        f"/properties/{b.prop.pk}/billing/issuer/", {"issuer": b.issuer.pk, "payment_days": "10"}
    )

    assert "Only the owner or the platform operator chooses who invoices." in page
    assert refused.status_code == 403
    assert "Only the owner or the platform operator" in text(refused)
    assert SiteBilling.objects.get(property=b.prop).payment_days == 30


# --- tariffs ----------------------------------------------------------------------------------


def test_the_tariffs_page_marks_the_tariff_in_force(b, alice):
    Tariff.objects.create(
        property=b.prop, valid_from=date(2026, 6, 1), currency="CHF", vat_rate=810
    )
    Tariff.objects.filter(pk=b.tariff.pk).update(valid_until=date(2026, 5, 31))

    page = text(alice.get(f"/properties/{b.prop.pk}/tariffs/"))

    current = page[page.index(f'id="tariff-{b.tariff.pk}"') :]
    assert "From 2026-01-01 to 2026-05-31" in current and "In force" in current[:400]
    assert "From 2026-06-01, no end date" in page and "Upcoming" in page
    assert page.count("Remove tariff") == 1  # only the one that has not started


def test_a_tariff_is_added_with_prices_typed_as_decimals(b, alice):
    response = alice.post(
        f"/properties/{b.prop.pk}/tariffs/add/",
        tariff_form(
            charging_rate="0.4",
            charging_low_rate="0.2",
            high_start="07:00",
            high_end="19:00",
            high_days=["1", "2", "3", "4", "5"],
            monthly_fee="10",
            monthly_fee_label="Service charge",
            **{
                "laundry-0-machine": str(b.washer.pk),
                "laundry-0-cycle_price": "3.00",
                "laundry-1-program": "Eco 40",
                "laundry-1-cycle_price": "2.00",
                "laundry-1-rate": "0.05",
            },
        ),
    )

    assert response.status_code == 302, text(response)[:3000]
    tariff = Tariff.objects.get(valid_from=date(2026, 4, 1))
    assert (tariff.vat_rate, tariff.charging_rate, tariff.charging_low_rate) == (810, 4000, 2000)
    assert (tariff.laundry_cycle_price, tariff.monthly_fee, tariff.extra_badge_price) == (
        250,
        1000,
        1500,
    )
    assert tariff.high_days == "12345" and tariff.monthly_fee_label == "Service charge"
    assert sorted(
        LaundryPrice.objects.filter(tariff=tariff).values_list(
            "machine_id", "program", "cycle_price", "rate"
        ),
        key=str,
    ) == sorted([(b.washer.pk, "", 300, 0), (None, "Eco 40", 200, 500)], key=str)
    b.tariff.refresh_from_db()
    assert b.tariff.valid_until == date(2026, 3, 31)
    assert "The tariff from 2026-04-01 is added." in text(alice.get(response["Location"]))


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"charging_rate": "-0.35"}, "Charging, per kWh cannot be negative."),
        ({"laundry_cycle_price": "-2.50"}, "Laundry, per cycle cannot be negative."),
        ({"laundry-0-cycle_price": "-1"}, "Per cycle cannot be negative."),
        ({"charging_rate": "zero"}, "zero is not an amount."),
        ({"valid_from": "2026-03-01"}, "A tariff starts tomorrow (2026-03-11) at the earliest"),
        ({"valid_until": "2026-03-31"}, "cannot end (2026-03-31) before it starts (2026-04-01)"),
        ({"charging_low_rate": "0.2"}, "A low-tariff price needs the high-tariff hours"),
        ({"laundry-0-cycle_price": "1.00"}, "names a machine, a program, or both"),
    ],
)
def test_a_wrong_tariff_is_shown_again_with_what_is_wrong(b, alice, fields, message):
    response = alice.post(f"/properties/{b.prop.pk}/tariffs/add/", tariff_form(**fields))

    assert response.status_code == 400
    page = text(response)
    assert message in page
    assert 'value="2.50"' in page or fields.get("laundry_cycle_price")  # what was typed stays
    assert Tariff.objects.count() == 1


def test_overlapping_dates_are_refused_on_the_form(b, alice):
    Tariff.objects.create(
        property=b.prop,
        valid_from=date(2026, 4, 10),
        valid_until=date(2026, 4, 20),
        currency="CHF",
        vat_rate=810,
    )

    response = alice.post(
        f"/properties/{b.prop.pk}/tariffs/add/", tariff_form(valid_until="2026-04-15")
    )

    assert response.status_code == 409
    assert "These dates overlap the tariff from 2026-04-10 to 2026-04-20." in text(response)


def test_a_future_tariff_is_removed_after_confirming(b, alice):
    future = Tariff.objects.create(
        property=b.prop, valid_from=date(2026, 6, 1), currency="CHF", vat_rate=810
    )

    unconfirmed = alice.post(f"/tariffs/{future.pk}/delete/", {})
    confirmed = alice.post(f"/tariffs/{future.pk}/delete/", {"confirm": "on"})

    assert unconfirmed.status_code == 400
    assert "Tick the box to confirm" in text(unconfirmed)
    assert confirmed.status_code == 302
    assert not Tariff.objects.filter(pk=future.pk).exists()


def test_a_started_tariff_cannot_be_removed_from_the_page(b, alice):
    response = alice.post(f"/tariffs/{b.tariff.pk}/delete/", {"confirm": "on"})

    assert response.status_code == 409
    assert "This tariff has started" in text(response)
    assert Tariff.objects.filter(pk=b.tariff.pk).exists()


def test_a_read_only_collaborator_reads_tariffs_and_a_plain_member_is_told_why_not(b):
    reader = b.world.client(b.reader)
    bob = b.world.client(b.world.bob)

    page = reader.get(f"/properties/{b.prop.pk}/tariffs/")
    added = reader.post(f"/properties/{b.prop.pk}/tariffs/add/", tariff_form())
    bobs = bob.get(f"/properties/{b.prop.pk}/tariffs/")

    assert page.status_code == 200 and "Add a tariff" not in text(page)
    assert added.status_code == 403 and "can change tariffs" in text(added)
    assert bobs.status_code == 403
    assert "read-only collaborators can see the consumption, invoices" in text(bobs)
    assert Tariff.objects.count() == 1


# --- billing runs -----------------------------------------------------------------------------


def test_the_runs_page_offers_last_month(b, alice):
    page = text(alice.get(f"/properties/{b.prop.pk}/billing-runs/"))

    assert 'name="month" value="2026-02"' in page
    assert "No billing run yet." in page


def test_drafting_a_month_shows_the_run_with_its_invoices(b, alice):
    february(b)

    response = alice.post(f"/properties/{b.prop.pk}/billing-runs/draft/", {"month": "2026-02"})

    run = BillingRun.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/billing-runs/{run.pk}/"
    page = text(alice.get(response["Location"]))
    assert "2026-02 is drafted: 2 invoices." in page
    assert "Rosa Resident" in page and "A-12" in page and "CHF 7.75" in page
    assert "Bruno Neighbour" in page and "CHF 2.50" in page
    assert "CHF 10.25" in page  # the run's total
    assert "CHF 0.58" in page  # Rosa's VAT
    assert "Finalize and send" in page and "Discard draft" in page and "Draft again" in page


def test_a_month_not_over_yet_is_refused_on_the_form(b, alice):
    response = alice.post(f"/properties/{b.prop.pk}/billing-runs/draft/", {"month": "2026-03"})

    assert response.status_code == 400
    assert "2026-03 is not over yet: it can be billed from 2026-04-01." in text(response)
    assert not BillingRun.objects.exists()


def test_drafting_a_finalized_month_again_says_a_correction_is_a_credit_note(b, alice):
    finalized(b)

    response = alice.post(f"/properties/{b.prop.pk}/billing-runs/draft/", {"month": "2026-02"})

    assert response.status_code == 409
    page = text(response)
    assert 'id="page-error">The run of 2026-02 is finalized; a correction is a credit note.' in page
    assert page.count("a correction is a credit note") == 1  # at the top, not on the form too


def test_a_site_without_an_issuer_is_asked_to_choose_one_first(b, alice):
    SiteBilling.objects.filter(property=b.prop).delete()

    page = text(alice.get(f"/properties/{b.prop.pk}/billing-runs/"))
    drafted = alice.post(f"/properties/{b.prop.pk}/billing-runs/draft/", {"month": "2026-02"})

    assert "Choose who invoices for this site before billing it." in page
    assert drafted.status_code == 400
    assert "Choose who invoices for Canal House (its issuer) before billing it." in text(drafted)


def test_an_individual_statements_site_gets_a_note_instead_of_runs(b, alice):
    set_billing_mode(b.world.alice, b.prop.pk, "individual_statements", confirm=True)

    page = alice.get(f"/properties/{b.prop.pk}/billing-runs/")
    drafted = alice.post(f"/properties/{b.prop.pk}/billing-runs/draft/", {"month": "2026-02"})

    assert 'id="statements-note"' in text(page)
    assert f'href="/properties/{b.prop.pk}/statements/"' in text(page)
    assert "Draft month" not in text(page)
    assert drafted.status_code == 409
    assert "uses individual statements" in text(drafted)


def test_drafting_again_and_discarding_a_draft(b, alice):
    february(b)
    run = runs.draft_run(b.world.alice, b.prop.pk, FEB)
    from billing.billing_world import wash

    wash(b.dryer, b.bruno_person, b.b3, local("2026-02-27 21:00"))

    again = alice.post(f"/billing-runs/{run.pk}/draft/")
    assert again.status_code == 302
    assert Invoice.objects.get(run=run, person=b.bruno_person).total == 500

    discarded = alice.post(f"/billing-runs/{run.pk}/discard/")
    assert discarded.status_code == 302
    assert discarded["Location"] == f"/properties/{b.prop.pk}/billing-runs/"
    assert not BillingRun.objects.exists()


def test_finalizing_needs_the_confirmation_then_numbers_and_sends(b, alice):
    february(b)
    run = runs.draft_run(b.world.alice, b.prop.pk, FEB)

    unconfirmed = alice.post(f"/billing-runs/{run.pk}/finalize/", {})
    assert unconfirmed.status_code == 400
    assert "Tick the box to confirm that the run is to be finalized." in text(unconfirmed)
    run.refresh_from_db()
    assert run.status == RunStatus.DRAFT

    done = alice.post(f"/billing-runs/{run.pk}/finalize/", {"confirm": "on"})

    assert done.status_code == 302
    page = text(alice.get(done["Location"]))
    assert "2026-02 is finalized: 2 invoices are numbered and on their way." in page
    assert "RE-000001" in page and "RE-000002" in page
    assert "2026-03-10 13:00" in page  # finalized at 12:00 UTC, shown in Zurich's time
    assert "Finalize and send" not in page and "Draft again" not in page
    assert OutboxMessage.objects.filter(channel="email").count() == 2


def test_a_manager_drafts_but_only_the_owner_finalizes(b):
    february(b)
    manager = b.world.client(b.manager)
    manager.post(f"/properties/{b.prop.pk}/billing-runs/draft/", {"month": "2026-02"})
    run = BillingRun.objects.get()

    page = text(manager.get(f"/billing-runs/{run.pk}/"))
    refused = manager.post(f"/billing-runs/{run.pk}/finalize/", {"confirm": "on"})

    assert "Finalize and send" not in page and "Draft again" in page
    assert refused.status_code == 403
    assert "Only the owner or the platform operator" in text(refused)
    run.refresh_from_db()
    assert run.status == RunStatus.DRAFT


def test_the_operator_finalizes_a_billing_site_of_any_organization(b):
    february(b)
    run = runs.draft_run(b.world.alice, b.prop.pk, FEB)
    operator = b.world.client(b.operator)

    assert "Finalize and send" in text(operator.get(f"/billing-runs/{run.pk}/"))
    assert operator.post(f"/billing-runs/{run.pk}/finalize/", {"confirm": "on"}).status_code == 302
    run.refresh_from_db()
    assert run.status == RunStatus.FINALIZED


# --- invoices ---------------------------------------------------------------------------------


def test_a_sites_invoices_are_listed_and_filtered(b, alice, time_machine):
    run = finalized(b)
    bruno = Invoice.objects.get(run=run, person=b.bruno_person)
    Invoice.objects.filter(pk=bruno.pk).update(status="paid", paid=bruno.total)
    url = f"/properties/{b.prop.pk}/invoices/"

    every = text(alice.get(url))
    paid = text(alice.get(url + "?status=paid"))
    time_machine.move_to(local("2026-04-10 09:00"), tick=False)
    alice = b.world.client(b.world.alice)  # signed in again: a month has passed
    overdue = text(alice.get(url + "?status=overdue&month=2026-02"))
    wrong = alice.get(url + "?month=soon")

    assert "RE-000001" in every and "RE-000002" in every
    assert "RE-000002" in paid and "RE-000001" not in paid
    assert "RE-000001" in overdue and "Overdue" in overdue and "RE-000002" not in overdue
    assert wrong.status_code == 400 and "Enter a month as YYYY-MM" in text(wrong)


def test_an_invoices_page_has_its_lines_totals_status_and_pdf(b, alice):
    rosa = Invoice.objects.get(run=finalized(b), person=b.rosa_person)

    page = text(alice.get(f"/invoices/{rosa.pk}/"))
    pdf = alice.get(f"/invoices/{rosa.pk}/pdf/")

    assert "Invoice RE-000001" in page
    ref = rosa.reference  # a QR reference (27 digits), grouped in fives from the right
    assert ref[:2] + " " + " ".join(ref[i : i + 5] for i in range(2, 27, 5)) in page
    assert "Charging: 2 sessions" in page and "15.00 kWh" in page and "CHF 5.25" in page
    assert "Laundry: 1 cycle" in page
    assert "CHF 7.75" in page and "CHF 0.58" in page and "8.1 %" in page
    assert 'id="invoice-status">Open<' in page.replace("\n", "")
    assert "No payment received yet." in page
    assert f'href="/invoices/{rosa.pk}/pdf/"' in page
    assert "Issue a credit note" in page
    assert pdf.status_code == 200 and pdf["Content-Type"] == "application/pdf"
    assert pdf["Content-Disposition"] == 'attachment; filename="RE-000001.pdf"'
    assert pdf.content == bytes(rosa.pdf)


def test_a_credit_note_is_issued_from_the_invoices_page(b, alice):
    rosa = Invoice.objects.get(run=finalized(b), person=b.rosa_person)

    response = alice.post(
        f"/invoices/{rosa.pk}/credit/", {"amount": "1.75", "reason": "Charged twice"}
    )

    assert response.status_code == 302
    note = Invoice.objects.get(kind=InvoiceKind.CREDIT_NOTE)
    assert (note.total, note.number, note.note) == (175, "RE-000003", "Charged twice")
    page = text(alice.get(response["Location"]))
    assert "Credit note RE-000003 for CHF 1.75 is issued and sent." in page
    assert "CHF 6.00" in page  # still to pay
    assert 'class="badge status-revoked invoice-issued">Issued<' in page  # a credit note's status


def test_an_open_invoice_can_be_marked_as_paid_and_then_lists_the_payment(b, alice):
    from doorkeep.billing import payments

    rosa = Invoice.objects.get(run=finalized(b), person=b.rosa_person)
    page = text(alice.get(f"/invoices/{rosa.pk}/"))
    assert f'action="/invoices/{rosa.pk}/mark-paid/"' in page

    payments.mark_paid(b.world.alice, rosa.pk, note="Paid in cash at the office")

    page = text(alice.get(f"/invoices/{rosa.pk}/"))
    assert 'id="invoice-status">Paid<' in page
    assert "CHF 7.75" in page and "Paid in cash at the office" in page
    assert "mark-paid" not in page  # nothing left to mark
    assert "CHF 0.00" in page  # still to pay


@pytest.mark.parametrize(
    ("data", "status", "message"),
    [
        ({"amount": "", "reason": ""}, 400, "Say why the invoice is credited."),
        ({"amount": "-1", "reason": "Minus"}, 400, "Amount (optional) cannot be negative."),
        ({"amount": "8.00", "reason": "Too much"}, 400, "at most CHF 7.75"),
    ],
)
def test_a_wrong_credit_note_is_shown_again_with_what_is_wrong(b, alice, data, status, message):
    rosa = Invoice.objects.get(run=finalized(b), person=b.rosa_person)

    response = alice.post(f"/invoices/{rosa.pk}/credit/", data)

    assert response.status_code == status
    assert message in text(response)
    assert not Invoice.objects.filter(kind=InvoiceKind.CREDIT_NOTE).exists()


def test_a_manager_reads_an_invoice_but_cannot_credit_it(b):
    rosa = Invoice.objects.get(run=finalized(b), person=b.rosa_person)
    manager = b.world.client(b.manager)

    page = text(manager.get(f"/invoices/{rosa.pk}/"))
    refused = manager.post(f"/invoices/{rosa.pk}/credit/", {"reason": "Goodwill"})

    assert "RE-000001" in page and "Issue a credit note" not in page
    assert "Mark as paid" not in page
    assert refused.status_code == 403
    assert not Invoice.objects.filter(kind=InvoiceKind.CREDIT_NOTE).exists()


# --- the resident portal ----------------------------------------------------------------------


def test_the_portal_links_to_the_residents_invoices(b):
    rosa = b.world.client(b.rosa)

    assert 'href="/portal/invoices/"' in text(rosa.get("/portal/"))


def test_a_resident_reads_her_invoices_and_downloads_the_pdf(b):
    run = finalized(b)
    mine = Invoice.objects.get(run=run, person=b.rosa_person)
    rosa = b.world.client(b.rosa)

    listed = text(rosa.get("/portal/invoices/"))
    page = text(rosa.get(f"/portal/invoices/{mine.pk}/"))
    pdf = rosa.get(f"/portal/invoices/{mine.pk}/pdf/")

    assert "RE-000001" in listed and "RE-000002" not in listed and "Canal House" in listed
    assert "CHF 7.75" in page and "Charging: 2 sessions" in page
    assert "Issue a credit note" not in page and "Mark as paid" not in page
    assert f'href="/portal/invoices/{mine.pk}/pdf/"' in page
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
    assert 'filename="RE-000001.pdf"' in pdf["Content-Disposition"]
    # The page of the site's staff sends her to her own (the link in the email is that one).
    assert rosa.get(f"/invoices/{mine.pk}/")["Location"] == f"/portal/invoices/{mine.pk}/"


def test_another_residents_invoice_is_not_found(b):
    run = finalized(b)
    bruno = Invoice.objects.get(run=run, person=b.bruno_person)
    rosa = b.world.client(b.rosa)

    for url in (
        f"/portal/invoices/{bruno.pk}/",
        f"/portal/invoices/{bruno.pk}/pdf/",
        f"/invoices/{bruno.pk}/",
        f"/invoices/{bruno.pk}/pdf/",
    ):
        response = rosa.get(url)
        assert response.status_code == 404, url
        assert "Bruno" not in text(response)


def test_a_draft_is_not_in_the_portal_yet(b):
    february(b)
    run = runs.draft_run(b.world.alice, b.prop.pk, FEB)
    draft = Invoice.objects.get(run=run, person=b.rosa_person)
    rosa = b.world.client(b.rosa)

    assert "No invoices yet." in text(rosa.get("/portal/invoices/"))
    assert rosa.get(f"/portal/invoices/{draft.pk}/").status_code == 404


# --- an outsider ------------------------------------------------------------------------------


def test_an_outsider_finds_nothing_on_any_billing_page(b):
    run = finalized(b)
    rosa = Invoice.objects.get(run=run, person=b.rosa_person)
    future = Tariff.objects.create(
        property=b.prop, valid_from=date(2026, 6, 1), currency="CHF", vat_rate=810
    )
    charlie = b.world.client(b.world.charlie)
    p = b.prop.pk
    gets = [
        f"/properties/{p}/billing/",
        f"/properties/{p}/tariffs/",
        f"/properties/{p}/billing-runs/",
        f"/properties/{p}/invoices/",
        f"/billing-runs/{run.pk}/",
        f"/invoices/{rosa.pk}/",
        f"/invoices/{rosa.pk}/pdf/",
        f"/portal/invoices/{rosa.pk}/",
        f"/portal/invoices/{rosa.pk}/pdf/",
    ]
    posts = [
        (f"/properties/{p}/billing/issuer/", {"issuer": b.issuer.pk, "payment_days": "5"}),
        (f"/properties/{p}/billing/issuers/add/", {"name": "x"}),
        (f"/properties/{p}/tariffs/add/", tariff_form()),
        (f"/tariffs/{future.pk}/delete/", {"confirm": "on"}),
        (f"/properties/{p}/billing-runs/draft/", {"month": "2026-01"}),
        (f"/billing-runs/{run.pk}/draft/", {}),
        (f"/billing-runs/{run.pk}/discard/", {}),
        (f"/billing-runs/{run.pk}/finalize/", {"confirm": "on"}),
        (f"/invoices/{rosa.pk}/credit/", {"reason": "Mine"}),
    ]

    for url in gets:
        response = charlie.get(url)
        assert response.status_code == 404, url
        assert "Canal House" not in text(response) and "Rosa" not in text(response), url
    for url, data in posts:
        assert charlie.post(url, data).status_code == 404, url
    assert Tariff.objects.filter(pk=future.pk).exists()
    assert SiteBilling.objects.get(property=b.prop).payment_days == 30
    assert not Invoice.objects.filter(kind=InvoiceKind.CREDIT_NOTE).exists()
    assert BillingRun.objects.count() == 1


def test_a_plain_member_is_told_why_on_every_billing_page(b):
    run = finalized(b)
    bob = b.world.client(b.world.bob)
    p = b.prop.pk

    for url in (
        f"/properties/{p}/billing/",
        f"/properties/{p}/tariffs/",
        f"/properties/{p}/billing-runs/",
        f"/properties/{p}/invoices/",
        f"/billing-runs/{run.pk}/",
    ):
        response = bob.get(url)
        assert response.status_code == 403, url
        assert "can see the consumption, invoices and statements of a site" in text(response)
