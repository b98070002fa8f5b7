"""Edges found by a review: a forged bank file from another organization
cannot swallow a credit; use collected through statements is never
invoiced; a credit note that leaves nothing to pay settles the invoice and
no reminder follows; bad months and an issuer in another currency are
refused with a message; the extra-badge price follows the tariff in force;
a credit note's VAT is the credited share of the invoice's."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest

from billing.billing_world import NOW, Biller, build, february, local, wash
from doorkeep.billing import camt, payments, runs, services
from doorkeep.billing.models import Invoice, InvoiceStatus, Payment, Use
from doorkeep.core.errors import InvalidInput
from doorkeep.properties.models import BillingMode, Property
from doorkeep.residents.services import set_billing_mode


@pytest.fixture
def b(world: Any, time_machine: Any) -> Biller:
    time_machine.move_to(NOW, tick=False)
    return build(world)


def finalized_february(b: Biller) -> list[Invoice]:
    february(b)
    run = runs.finalize_run(b.world.alice, runs.draft_run(b.world.alice, b.prop.pk, "2026-02").pk)
    return list(Invoice.objects.filter(run=run).order_by("pk"))


def test_a_forged_file_from_another_organization_does_not_swallow_the_credit(b: Biller) -> None:
    rosa = next(i for i in finalized_february(b) if i.person_id == b.rosa_person.pk)
    real = camt.demo_bank_file([rosa])
    # Charlie uploads the very same credit first (the same bank reference): it
    # is not his to apply, and it stays his row.
    payments.import_bank_file(
        b.world.charlie, real, "forged.xml", organization_id=b.world.charlie_org.pk
    )
    assert Invoice.objects.get(pk=rosa.pk).paid == 0
    report = payments.import_bank_file(
        b.world.alice, real, "real.xml", organization_id=b.world.org.pk
    )
    assert [r["outcome"] for r in report.report["rows"]] == ["matched"]
    rosa.refresh_from_db()
    assert rosa.status == InvoiceStatus.PAID and rosa.paid == rosa.total
    assert Payment.objects.filter(organization=b.world.charlie_org, invoice=None).count() == 1


def test_use_collected_through_statements_is_never_invoiced(b: Biller) -> None:
    set_billing_mode(b.world.alice, b.prop.pk, BillingMode.INDIVIDUAL_STATEMENTS, confirm=True)
    collected = wash(b.washer, b.rosa_person, b.a12, local("2026-01-20 10:00"))
    assert collected.by_statement
    set_billing_mode(b.world.alice, b.prop.pk, BillingMode.BILLING_AND_PAYMENTS, confirm=True)
    billed = wash(b.washer, b.rosa_person, b.a12, local("2026-02-20 10:00"))
    run = runs.draft_run(b.world.alice, b.prop.pk, "2026-02")
    assert list(Use.objects.filter(invoice_line__invoice__run=run)) == [billed]


def test_a_credit_note_that_leaves_nothing_to_pay_settles_the_invoice(
    b: Biller, time_machine: Any
) -> None:
    rosa = next(i for i in finalized_february(b) if i.person_id == b.rosa_person.pk)
    Invoice.objects.filter(pk=rosa.pk).update(paid=rosa.total - 100)
    runs.credit_invoice(b.world.alice, rosa.pk, reason="One cycle was not hers", amount=100)
    rosa.refresh_from_db()
    assert rosa.open_amount == 0 and rosa.status == InvoiceStatus.PAID
    time_machine.move_to(NOW + timedelta(days=60), tick=False)
    runs.send_reminders()
    assert Invoice.objects.get(pk=rosa.pk).reminded_at is None  # Bruno's, overdue, is reminded


def test_a_credit_notes_vat_is_the_credited_share(b: Biller) -> None:
    rosa = next(i for i in finalized_february(b) if i.person_id == b.rosa_person.pk)
    note = runs.credit_invoice(b.world.alice, rosa.pk, reason="Goodwill", amount=rosa.total // 2)
    assert note.vat == round(rosa.vat * (rosa.total // 2) / rosa.total)


@pytest.mark.parametrize("month", ["9999-12", "0001-01", "2026-13", "١٢٣٤-05", "2026-1"])
def test_a_month_out_of_range_is_refused_with_a_message(b: Biller, month: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        runs.draft_run(b.world.alice, b.prop.pk, month)
    assert refused.value.code == "bad_month"
    page = b.world.client(b.world.alice).get(f"/properties/{b.prop.pk}/statements/?month={month}")
    assert page.status_code in (400, 409)  # a billing site has no statements: either says why


def test_an_issuer_in_another_currency_is_refused_when_drafting(b: Biller) -> None:
    february(b)
    Property.objects.filter(pk=b.prop.pk).update(currency="EUR")
    with pytest.raises(InvalidInput) as refused:
        runs.draft_run(b.world.alice, b.prop.pk, "2026-02")
    assert refused.value.code == "bad_currency"


def test_an_issuer_whose_name_a_qr_bill_cannot_carry_is_refused(b: Biller) -> None:
    spec = services.IssuerSpec("Αθηνά ΑΕ", "8001", "Zurich", "CH4431999123000889012", "CHF")
    with pytest.raises(InvalidInput) as refused:
        services.create_issuer(b.world.alice, spec, organization_id=b.world.org.pk)
    assert refused.value.code == "bad_issuer"


def test_a_tariff_cannot_start_today(b: Biller) -> None:
    spec = services.TariffSpec(valid_from=date(2026, 3, 10))
    with pytest.raises(InvalidInput) as refused:
        services.create_tariff(b.world.alice, b.prop.pk, spec)
    assert refused.value.code == "tariff_in_past"


def test_the_extra_badge_price_follows_the_tariff_in_force(b: Biller, time_machine: Any) -> None:
    services.create_tariff(
        b.world.alice,
        b.prop.pk,
        services.TariffSpec(valid_from=date(2026, 4, 1), extra_badge_price=2500),
    )
    services.sync_badge_prices()  # not yet: the tariff starts in April
    assert Property.objects.get(pk=b.prop.pk).extra_badge_price_minor != 2500
    time_machine.move_to(NOW + timedelta(days=30), tick=False)
    assert services.sync_badge_prices() == 1
    assert Property.objects.get(pk=b.prop.pk).extra_badge_price_minor == 2500
