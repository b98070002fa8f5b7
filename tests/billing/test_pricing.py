"""Prices of uses: rounding, high and low tariff hours, laundry prices by
machine and program, the VAT inside a price."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo

from doorkeep.billing import pricing
from doorkeep.billing.models import Tariff

ZURICH = ZoneInfo("Europe/Zurich")


def tariff(**kwargs: object) -> Tariff:
    values: dict[str, object] = {
        "valid_from": date(2026, 1, 1),
        "currency": "CHF",
        "vat_rate": 810,
        "charging_rate": 3500,
        "high_days": "12345",
    }
    values.update(kwargs)
    return Tariff(**values)


def test_rounding_is_half_up_once_per_use() -> None:
    assert pricing.divide(5, 10) == 1
    assert pricing.divide(4, 10) == 0
    assert pricing.divide(-5, 10) == -1
    # 1,234 Wh at 0.3500 per kWh is 0.4319 -> 43 cents; 1,243 Wh -> 0.43505 -> 44.
    assert pricing.energy_price(1234, 3500) == 43
    assert pricing.energy_price(1243, 3500) == 44


def test_money_reads_as_people_write_it() -> None:
    assert pricing.money(123450, "CHF") == "CHF 1'234.50"
    assert pricing.money(123450, "EUR") == "EUR 1,234.50"
    assert pricing.money(-5, "EUR") == "EUR -0.05"
    assert pricing.rate_text(2735) == "0.2735"


def test_one_rate_without_low_tariff_hours() -> None:
    start = datetime(2026, 3, 2, 18, 0, tzinfo=ZURICH)  # a Monday
    price = pricing.price_charging(tariff(), 10_000, start, start.replace(hour=22), ZURICH)
    assert price.amount == 350


def test_a_session_over_the_end_of_high_tariff_hours_is_split_by_time() -> None:
    t = tariff(charging_low_rate=2500, high_start=time(7), high_end=time(20))
    start = datetime(2026, 3, 2, 18, 0, tzinfo=ZURICH)  # Monday 18:00-22:00: half high
    price = pricing.price_charging(t, 10_000, start, start.replace(hour=22), ZURICH)
    assert price.detail["high_wh"] == 5000 and price.detail["low_wh"] == 5000
    assert price.amount == 175 + 125
    # The same on a Saturday is all low tariff.
    saturday = datetime(2026, 3, 7, 18, 0, tzinfo=ZURICH)
    assert (
        pricing.price_charging(t, 10_000, saturday, saturday.replace(hour=22), ZURICH).amount == 250
    )


def test_high_hours_are_read_in_the_sites_zone() -> None:
    t = tariff(charging_low_rate=2500, high_start=time(7), high_end=time(20))
    # 05:30-06:30 UTC in winter is 06:30-07:30 in Zurich: half low, half high.
    start = datetime(2026, 1, 5, 5, 30, tzinfo=UTC)
    end = datetime(2026, 1, 5, 6, 30, tzinfo=UTC)
    price = pricing.price_charging(t, 2_000, start, end, ZURICH)
    assert price.detail["high_wh"] == 1000
    assert price.amount == 35 + 25


def test_vat_inside_a_price_that_includes_it() -> None:
    assert pricing.vat_included(10_810, 810) == 810
    assert pricing.vat_included(1000, 0) == 0


def test_month_bounds_are_local_midnights() -> None:
    start, end = pricing.month_bounds(date(2026, 3, 1), ZURICH)
    assert start == datetime(2026, 3, 1, tzinfo=ZURICH)
    assert end == datetime(2026, 4, 1, tzinfo=ZURICH)
    assert end.utcoffset() != start.utcoffset()  # summer time began in between
