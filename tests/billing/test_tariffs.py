"""Tariffs (billing/services.py, priced by billing/pricing.py through
billing/usage.py): what a tariff refuses (a negative price, overlapping
dates, a start in the past), how a new tariff closes the open-ended one,
that a started tariff stays, and what a use costs: high and low tariff
hours, a laundry price of its own by machine, then program, then the
tariff's, and a past use keeping its price when a new tariff starts
(billing_world.py describes the site)."""

from __future__ import annotations

from datetime import date, time, timedelta
from typing import Any

import pytest

from billing.billing_world import NOW, Biller, build, charge, local, machine_at, wash
from doorkeep.billing import services
from doorkeep.billing.models import LaundryPrice, Tariff, Use
from doorkeep.core.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from doorkeep.events.models import Event, EventKind
from doorkeep.properties.models import Property

TODAY = date(2026, 3, 10)
TOMORROW = date(2026, 3, 11)  # the first day a new tariff may start


@pytest.fixture
def b(world: Any, time_machine: Any) -> Biller:
    time_machine.move_to(NOW, tick=False)
    return build(world)


def spec(start: date, end: date | None = None, **prices: Any) -> services.TariffSpec:
    prices.setdefault("vat_rate", 810)
    return services.TariffSpec(valid_from=start, valid_until=end, **prices)


def starts(b: Biller) -> list[tuple[date, date | None]]:
    return list(
        Tariff.objects.filter(property=b.prop)
        .order_by("valid_from")
        .values_list("valid_from", "valid_until")
    )


# --- what a tariff refuses --------------------------------------------------------------------


@pytest.mark.parametrize(
    "prices",
    [
        {"charging_rate": -1},
        {"laundry_cycle_price": -250},
        {"monthly_fee": -1},
        {"extra_badge_price": -1500},
        {"charging_low_rate": -10, "high_start": time(7), "high_end": time(19)},
    ],
)
def test_a_negative_price_is_refused_and_nothing_is_added(b, prices):
    with pytest.raises(InvalidInput) as refused:
        services.create_tariff(b.world.alice, b.prop.pk, spec(TOMORROW, **prices))

    assert refused.value.code == "negative_price"
    assert "cannot be negative" in refused.value.message
    assert Tariff.objects.filter(property=b.prop).count() == 1


def test_a_negative_laundry_price_of_its_own_is_refused(b):
    item = services.LaundryPriceSpec(machine_id=b.washer.pk, cycle_price=-1)

    with pytest.raises(InvalidInput) as refused:
        services.create_tariff(
            b.world.alice, b.prop.pk, spec(TOMORROW, laundry_prices=[item], laundry_cycle_price=250)
        )

    assert refused.value.code == "negative_price"
    assert not LaundryPrice.objects.exists()


def test_a_typed_negative_amount_is_refused_by_the_parser_with_the_fields_name():
    with pytest.raises(InvalidInput) as refused:
        services.parse_amount("-0.35", "Charging, per kWh", scale=10_000)

    assert refused.value.code == "negative_price"
    assert refused.value.message == "Charging, per kWh cannot be negative."
    assert services.parse_amount("0.35", "x", scale=10_000) == 3500
    assert services.parse_amount("2.50", "x") == 250
    assert services.parse_amount("8.1", "x") == 810


@pytest.mark.parametrize(
    ("text", "code"), [("abc", "bad_amount"), ("0.355", "bad_amount"), ("NaN", "bad_amount")]
)
def test_an_amount_that_is_not_one_is_refused(text, code):
    with pytest.raises(InvalidInput) as refused:
        services.parse_amount(text, "The price", scale=100)

    assert refused.value.code == code


def test_overlapping_dates_are_refused_with_the_tariff_they_overlap(b):
    services.create_tariff(
        b.world.alice, b.prop.pk, spec(date(2026, 4, 1), date(2026, 4, 30), charging_rate=4000)
    )

    with pytest.raises(Conflict) as refused:
        services.create_tariff(
            b.world.alice, b.prop.pk, spec(date(2026, 4, 15), date(2026, 5, 15), charging_rate=1)
        )

    assert refused.value.code == "tariff_overlap"
    assert "2026-04-01" in refused.value.message and "2026-04-30" in refused.value.message
    assert starts(b) == [
        (date(2026, 1, 1), date(2026, 3, 31)),
        (date(2026, 4, 1), date(2026, 4, 30)),
    ]


def test_two_tariffs_cannot_start_on_the_same_day(b):
    services.create_tariff(b.world.alice, b.prop.pk, spec(date(2026, 4, 1)))

    with pytest.raises(Conflict) as refused:
        services.create_tariff(b.world.alice, b.prop.pk, spec(date(2026, 4, 1)))

    assert refused.value.code == "tariff_overlap"


def test_a_start_in_the_past_is_refused_for_people(b):
    for day in (TODAY - timedelta(days=1), TODAY):  # today's use has its price already
        with pytest.raises(InvalidInput) as refused:
            services.create_tariff(b.world.alice, b.prop.pk, spec(day))

        assert refused.value.code == "tariff_in_past"
        assert "2026-03-11" in refused.value.message
    assert starts(b) == [(date(2026, 1, 1), None)]


def test_today_counts_in_the_sites_time_zone(b, time_machine):
    # 23:30 UTC on 10 March is already 11 March in Zurich.
    time_machine.move_to(local("2026-03-11 00:30"), tick=False)

    with pytest.raises(InvalidInput) as refused:
        services.create_tariff(b.world.alice, b.prop.pk, spec(date(2026, 3, 11)))

    assert refused.value.code == "tariff_in_past"
    services.create_tariff(b.world.alice, b.prop.pk, spec(date(2026, 3, 12)))


def test_an_end_before_the_start_and_a_low_price_without_hours_are_refused(b):
    with pytest.raises(InvalidInput) as before:
        services.create_tariff(b.world.alice, b.prop.pk, spec(date(2026, 5, 2), date(2026, 5, 1)))
    with pytest.raises(InvalidInput) as no_hours:
        services.create_tariff(
            b.world.alice, b.prop.pk, spec(date(2026, 5, 1), charging_low_rate=2000)
        )
    with pytest.raises(InvalidInput) as vat:
        services.create_tariff(b.world.alice, b.prop.pk, spec(date(2026, 5, 1), vat_rate=8100))

    assert (before.value.code, no_hours.value.code, vat.value.code) == (
        "bad_dates",
        "bad_hours",
        "bad_vat_rate",
    )


def test_a_machine_of_another_site_is_not_found(b):
    other = Property.objects.get(pk=b.world.charlie_prop.pk)
    theirs = machine_at(other, "WM-CHARLIE", "Charlie's washer")
    item = services.LaundryPriceSpec(machine_id=theirs.pk, cycle_price=100)

    with pytest.raises(NotFound):
        services.create_tariff(b.world.alice, b.prop.pk, spec(TOMORROW, laundry_prices=[item]))


# --- who may ----------------------------------------------------------------------------------


def test_a_plain_member_may_neither_add_nor_read_tariffs_and_an_outsider_finds_nothing(b):
    with pytest.raises(PermissionDenied) as member:
        services.create_tariff(b.world.bob, b.prop.pk, spec(TOMORROW))
    with pytest.raises(PermissionDenied):
        services.tariffs(b.world.bob, b.prop.pk)
    with pytest.raises(NotFound):
        services.create_tariff(b.world.charlie, b.prop.pk, spec(TOMORROW))
    with pytest.raises(NotFound):
        services.tariffs(b.world.charlie, b.prop.pk)

    assert "change tariffs" in member.value.message


def test_a_manager_adds_tariffs_and_a_read_only_collaborator_only_reads_them(b):
    services.create_tariff(b.manager, b.prop.pk, spec(date(2026, 4, 1)))

    assert len(services.tariffs(b.reader, b.prop.pk)) == 2
    with pytest.raises(PermissionDenied):
        services.create_tariff(b.reader, b.prop.pk, spec(date(2026, 5, 1)))


# --- a tariff's dates -------------------------------------------------------------------------


def test_the_open_ended_tariff_ends_the_day_before_the_next_one_starts(b):
    new = services.create_tariff(
        b.world.alice, b.prop.pk, spec(date(2026, 4, 1), charging_rate=4000)
    )

    assert starts(b) == [(date(2026, 1, 1), date(2026, 3, 31)), (date(2026, 4, 1), None)]
    assert new.currency == "CHF"
    event = Event.objects.filter(kind=EventKind.TARIFF_CHANGED).latest("id")
    assert event.actor_id == b.world.alice.pk
    assert "2026-04-01" in event.summary


def test_a_tariff_from_tomorrow_sets_the_extra_badge_price_on_its_first_day(b, time_machine):
    services.create_tariff(b.world.alice, b.prop.pk, spec(TOMORROW, extra_badge_price=2000))
    assert starts(b) == [(date(2026, 1, 1), TODAY), (TOMORROW, None)]
    services.sync_badge_prices()
    b.prop.refresh_from_db()
    assert b.prop.extra_badge_price_minor != 2000  # not yet

    time_machine.move_to(local("2026-03-11 00:30"), tick=False)
    services.sync_badge_prices()
    b.prop.refresh_from_db()
    assert b.prop.extra_badge_price_minor == 2000


def test_a_started_tariff_cannot_be_removed(b):
    with pytest.raises(Conflict) as refused:
        services.delete_tariff(b.world.alice, b.tariff.pk)

    assert refused.value.code == "tariff_started"
    assert Tariff.objects.filter(pk=b.tariff.pk).exists()


def test_a_future_tariff_is_removed_and_the_one_before_runs_on(b):
    future = services.create_tariff(b.world.alice, b.prop.pk, spec(date(2026, 4, 1)))

    services.delete_tariff(b.world.alice, future.pk)

    assert starts(b) == [(date(2026, 1, 1), None)]


def test_a_plain_member_cannot_remove_a_future_tariff(b):
    future = services.create_tariff(b.world.alice, b.prop.pk, spec(date(2026, 4, 1)))

    with pytest.raises(PermissionDenied):
        services.delete_tariff(b.world.bob, future.pk)
    with pytest.raises(NotFound):
        services.delete_tariff(b.world.charlie, future.pk)

    assert Tariff.objects.filter(pk=future.pk).exists()


# --- what a use costs -------------------------------------------------------------------------


@pytest.fixture
def peak(b: Biller) -> Tariff:
    """From 11 March: CHF 0.40 per kWh 07:00-19:00 Monday to Friday, 0.20 otherwise."""
    return services.create_tariff(
        b.world.alice,
        b.prop.pk,
        spec(
            date(2026, 3, 11),
            charging_rate=4000,
            charging_low_rate=2000,
            high_start=time(7),
            high_end=time(19),
            high_days="12345",
        ),
    )


def test_charging_across_the_end_of_the_high_tariff_is_split_by_time(b, peak, time_machine):
    time_machine.move_to(local("2026-03-12 23:00"), tick=False)

    # Thursday 18:00-20:00 in Zurich: one hour high, one low; 10 kWh spread evenly.
    use = charge(b.station, b.rosa_person, b.a12, local("2026-03-12 18:00"), 10_000)

    assert (use.pricing["high_wh"], use.pricing["low_wh"]) == (5_000, 5_000)
    assert use.amount == 300  # 5 kWh x 0.40 + 5 kWh x 0.20
    assert (use.tariff_id, use.vat_rate, use.currency) == (peak.pk, 810, "CHF")


def test_charging_at_the_weekend_is_all_low_tariff_and_on_a_weekday_noon_all_high(
    b, peak, time_machine
):
    time_machine.move_to(local("2026-03-16 23:00"), tick=False)

    saturday = charge(b.station, b.rosa_person, b.a12, local("2026-03-14 10:00"), 10_000)
    monday = charge(b.station, b.rosa_person, b.a12, local("2026-03-16 11:00"), 10_000)

    assert saturday.amount == 200
    assert monday.amount == 400


def test_without_low_tariff_hours_one_price_applies_at_every_hour(b):
    night = charge(b.station, b.rosa_person, b.a12, local("2026-03-02 01:00"), 12_345)

    assert night.amount == 432  # 12.345 kWh x 0.35 = 4.32075


def test_a_laundry_price_is_the_machines_program_then_the_machine_then_the_program(b):
    prices = [
        services.LaundryPriceSpec(machine_id=b.washer.pk, cycle_price=300),
        services.LaundryPriceSpec(program="Eco 40", cycle_price=200),
        services.LaundryPriceSpec(machine_id=b.washer.pk, program="Eco 40", cycle_price=350),
        services.LaundryPriceSpec(machine_id=b.dryer.pk, cycle_price=100, rate=5000),
    ]
    services.create_tariff(
        b.world.alice,
        b.prop.pk,
        spec(TOMORROW, laundry_cycle_price=250, laundry_prices=prices),
    )
    at = local("2026-03-11 14:00")

    def price(machine: Any, program: str, wh: int = 0) -> int:
        return wash(machine, b.rosa_person, b.a12, at, program=program, wh=wh).amount

    assert price(b.washer, "Eco 40") == 350  # that program on that machine
    assert price(b.washer, "Hot 90") == 300  # that machine
    assert price(b.dryer, "Eco 40") == 100 + 0  # that machine (before the program)
    assert price(b.dryer, "Eco 40", wh=2_000) == 100 + 100  # plus 2 kWh x 0.50
    other = machine_at(b.prop, "WM-0003", "Washer 2")
    assert price(other, "Eco 40") == 200  # that program
    assert price(other, "Hot 90") == 250  # the tariff's


def test_a_past_use_keeps_its_price_when_a_new_tariff_starts(b, time_machine):
    before = charge(b.station, b.rosa_person, b.a12, local("2026-03-10 08:00"), 10_000)
    services.create_tariff(b.world.alice, b.prop.pk, spec(date(2026, 3, 11), charging_rate=9000))
    time_machine.move_to(local("2026-03-11 20:00"), tick=False)

    after = charge(b.station, b.rosa_person, b.a12, local("2026-03-11 08:00"), 10_000)
    late = charge(b.station, b.rosa_person, b.a12, local("2026-03-09 08:00"), 10_000)

    before.refresh_from_db()
    assert before.amount == 350 and before.tariff_id == b.tariff.pk
    assert after.amount == 900
    # Uploaded late, a use is priced by the tariff of the day it started.
    assert late.amount == 350 and late.tariff_id == b.tariff.pk
    assert Use.objects.filter(amount=350).count() == 2


def test_a_day_without_a_tariff_is_recorded_at_no_cost(b):
    use = charge(b.station, b.rosa_person, b.a12, local("2025-12-31 20:00"), 10_000)

    assert (use.amount, use.tariff_id) == (0, None)
