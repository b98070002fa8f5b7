"""Prices: which tariff applies to a use, and what the use costs.

A use is priced by the tariff in force on the day it started (in the site's
time zone), when it is recorded; it keeps that price (decision 15). Every
sum is in integer minor units, rounded half up once per use."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from doorkeep.billing.models import RATE_SCALE, LaundryPrice, Tariff

MINOR_PER_UNIT = 100
WH_PER_KWH = 1000


def divide(numerator: int, denominator: int) -> int:
    """``numerator / denominator`` rounded half up (away from zero for halves)."""
    if numerator < 0:
        return -divide(-numerator, denominator)
    return (2 * numerator + denominator) // (2 * denominator)


def energy_price(energy_wh: int, rate: int) -> int:
    """Minor units for ``energy_wh`` at ``rate`` (ten-thousandths of the
    currency per kWh)."""
    return divide(energy_wh * rate * MINOR_PER_UNIT, WH_PER_KWH * RATE_SCALE)


def money(amount: int, currency: str) -> str:
    """``CHF 1'234.50`` / ``EUR 1,234.50``: how people read an amount here."""
    sign = "-" if amount < 0 else ""
    units, cents = divmod(abs(amount), MINOR_PER_UNIT)
    grouped = f"{units:,}".replace(",", "'" if currency == "CHF" else ",")
    return f"{currency} {sign}{grouped}.{cents:02d}"


def rate_text(rate: int) -> str:
    """A rate per kWh for people: 2735 -> ``0.2735``."""
    units, rest = divmod(rate, RATE_SCALE)
    return f"{units}.{rest:04d}"


def tariff_on(tariffs: list[Tariff], day: date) -> Tariff | None:
    for tariff in tariffs:
        if tariff.covers(day):
            return tariff
    return None


def tariffs_of(property_id: int) -> list[Tariff]:
    return list(
        Tariff.objects.filter(property_id=property_id)
        .prefetch_related("laundry_prices")
        .order_by("valid_from")
    )


@dataclass(frozen=True)
class Price:
    amount: int
    detail: dict[str, Any]


def _is_high(tariff: Tariff, moment: datetime) -> bool:
    start, end = tariff.high_start, tariff.high_end
    if start is None or end is None:
        return True
    if str(moment.isoweekday()) not in tariff.high_days:
        return False
    now = moment.time()
    if start <= end:
        return start <= now < end
    return now >= start or now < end  # hours over midnight


def _high_share(tariff: Tariff, start: datetime, end: datetime, zone: ZoneInfo) -> float:
    """The share of ``start``..``end`` in high-tariff hours, read in the site's
    zone. The energy is taken to flow evenly over the session (a session's
    meter readings are not all kept at a fine enough step to do better)."""
    if end <= start:
        return 1.0 if _is_high(tariff, start.astimezone(zone)) else 0.0
    local, stop = start.astimezone(zone), end.astimezone(zone)
    high = 0.0
    cursor = local
    while cursor < stop:
        # The next boundary: the next full quarter of an hour, or the stop.
        step = cursor.replace(second=0, microsecond=0) + timedelta(minutes=15 - cursor.minute % 15)
        upto = min(step, stop)
        if _is_high(tariff, cursor):
            high += (upto - cursor).total_seconds()
        cursor = upto
    return high / (stop - local).total_seconds()


def price_charging(
    tariff: Tariff | None, energy_wh: int, start: datetime, end: datetime | None, zone: ZoneInfo
) -> Price:
    if tariff is None:
        return Price(0, {"tariff": None})
    low = tariff.charging_low_rate
    if low is None or tariff.high_start is None or tariff.high_end is None:
        amount = energy_price(energy_wh, tariff.charging_rate)
        return Price(amount, {"rate": tariff.charging_rate, "energy_wh": energy_wh})
    share = _high_share(tariff, start, end or start, zone)
    high_wh = round(energy_wh * share)
    low_wh = energy_wh - high_wh
    amount = divide(
        (high_wh * tariff.charging_rate + low_wh * low) * MINOR_PER_UNIT, WH_PER_KWH * RATE_SCALE
    )
    return Price(
        amount,
        {"rate": tariff.charging_rate, "low_rate": low, "high_wh": high_wh, "low_wh": low_wh},
    )


def laundry_price_for(tariff: Tariff, machine_id: int, program: str) -> tuple[int, int]:
    """(per cycle, per kWh) for a machine and program: a price for that program
    on that machine, else for the machine, else for the program, else the
    tariff's own."""
    prices: list[LaundryPrice] = list(tariff.laundry_prices.all())
    for match in (
        lambda p: p.machine_id == machine_id and p.program == program,
        lambda p: p.machine_id == machine_id and p.program == "",
        lambda p: p.machine_id is None and p.program == program,
    ):
        for price in prices:
            if match(price):
                return price.cycle_price, price.rate
    return tariff.laundry_cycle_price, tariff.laundry_rate


def price_cycle(tariff: Tariff | None, machine_id: int, program: str, energy_wh: int) -> Price:
    if tariff is None:
        return Price(0, {"tariff": None})
    per_cycle, rate = laundry_price_for(tariff, machine_id, program)
    amount = per_cycle + energy_price(energy_wh, rate)
    return Price(amount, {"cycle_price": per_cycle, "rate": rate, "energy_wh": energy_wh})


def vat_included(amount: int, vat_rate: int) -> int:
    """The VAT inside a price that includes it: amount * rate / (1 + rate)."""
    return divide(amount * vat_rate, 10_000 + vat_rate)


def local_day(moment: datetime, zone: ZoneInfo) -> date:
    return moment.astimezone(zone).date()


def month_bounds(month: date, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """The first moment of ``month`` and of the next, in the site's zone."""
    first = month.replace(day=1)
    following = (first + timedelta(days=32)).replace(day=1)
    return (
        datetime.combine(first, time.min, tzinfo=zone),
        datetime.combine(following, time.min, tzinfo=zone),
    )
