"""Consumption charts as inline SVG drawn on the server
(web/consumption/_chart.html): a stacked bar per month or per day, charging
at the bottom, then laundry (and extra badges, for the cost), on an axis
with round steps. A month's bar is a link to its days. No script, no style
attribute: the geometry is in the SVG's attributes, the colours in
static/consumption.css, and every figure in the bars' titles and in the
table beside the chart.

Numbers reach the template as text: a float rendered by a template would be
localized ("12,5" in French), which SVG does not read."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal

from django.utils.formats import date_format, number_format
from django.utils.translation import gettext as _

from doorkeep.billing.consumption import Period, Row
from doorkeep.billing.models import UseKind
from doorkeep.billing.pricing import MINOR_PER_UNIT, money

WIDTH, HEIGHT = 720, 250
LEFT, RIGHT, TOP, BOTTOM = 56, 8, 12, 44
TICKS = 4
DAY_LABELS = frozenset({1, 5, 10, 15, 20, 25})

ENERGY_KINDS = (UseKind.CHARGING, UseKind.LAUNDRY)
COST_KINDS = (UseKind.CHARGING, UseKind.LAUNDRY, UseKind.BADGE)


def _n(value: float) -> str:
    return f"{value:.2f}".rstrip("0").rstrip(".")


@dataclass
class Segment:
    kind: str
    x: str
    y: str
    width: str
    height: str
    title: str


@dataclass
class Bar:
    key: str  # "2026-03" or "2026-03-14"
    title: str  # the month or day, and its total
    href: str  # "" when the bar leads nowhere
    slot_x: str
    slot_width: str
    label_x: str
    label: str
    sublabel: str  # the year, under January and the first month
    total: str  # the value, for tests and screen readers
    segments: list[Segment] = field(default_factory=list)


@dataclass
class Tick:
    y: str
    label: str


@dataclass
class Legend:
    kind: str
    label: str


@dataclass
class Chart:
    id: str
    title: str
    unit: str  # "kWh", "CHF"
    measure: str  # "energy" or "cost"
    bars: list[Bar]
    ticks: list[Tick]
    legend: list[Legend]
    empty: bool
    width: int = WIDTH
    height: int = HEIGHT
    left: str = str(LEFT)
    right: str = str(WIDTH - RIGHT)
    tick_x: str = str(LEFT - 6)
    label_y: str = str(HEIGHT - BOTTOM + 18)
    sublabel_y: str = str(HEIGHT - BOTTOM + 37)
    baseline: str = str(HEIGHT - BOTTOM)


def nice_scale(largest: float) -> tuple[float, float]:
    """(top of the axis, step) for values up to ``largest``: at most TICKS
    steps of 1, 2, 2.5 or 5 times a power of ten."""
    if largest <= 0:
        return 1.0, 0.25
    raw = largest / TICKS
    power = 10.0 ** math.floor(math.log10(raw))
    step = power * 10
    for factor in (1, 2, 2.5, 5, 10):
        if factor * power * TICKS >= largest:
            step = factor * power
            break
    return step * math.ceil(largest / step - 1e-9), step


def _decimals(step: float) -> int:
    for places in range(4):
        if abs(round(step, places) - step) < 1e-9:
            return places
    return 3


def _kinds(measure: str) -> tuple[str, ...]:
    return ENERGY_KINDS if measure == "energy" else COST_KINDS


def value_of(row: Row, kind: str, measure: str, currency: str) -> float:
    """A kind's part of a row: kWh, or units of the currency."""
    if measure == "energy":
        return row.usage(kind).energy_wh / 1000
    return row.cost(currency).of(kind) / MINOR_PER_UNIT


def text_of(row: Row, kind: str | None, measure: str, currency: str) -> str:
    """A kind's part of a row (None: the whole row) as people read it."""
    if measure == "energy":
        wh = row.usage(kind).energy_wh if kind else row.energy_wh
        return _("%(energy)s kWh") % {"energy": number_format(Decimal(wh) / 1000, 1)}
    cost = row.cost(currency)
    return money(cost.of(kind) if kind else cost.total, currency)


def kind_labels() -> dict[str, str]:
    return {
        UseKind.CHARGING: _("Charging"),
        UseKind.LAUNDRY: _("Laundry"),
        UseKind.BADGE: _("Extra badges"),
    }


def _when(period: Period, row: Row) -> tuple[str, str, str, str]:
    """(key, title, label, sublabel) of a row's bar."""
    assert row.start is not None
    if period.step == "month":
        first = row.start == period.start
        return (
            row.start.strftime("%Y-%m"),
            date_format(row.start, "F Y"),
            date_format(row.start, "M"),
            str(row.start.year) if first or row.start.month == 1 else "",
        )
    last = (period.end - period.start).days
    shown = row.start.day in DAY_LABELS or row.start.day == last
    return (
        row.start.isoformat(),
        date_format(row.start, "l j F Y"),
        str(row.start.day) if shown else "",
        "",
    )


def chart(
    period: Period,
    *,
    measure: str,
    currency: str = "",
    href: Callable[[Row], str] | None = None,
    chart_id: str = "chart",
) -> Chart:
    """The chart of a period's rows: energy (kWh) or cost in ``currency``."""
    kinds = _kinds(measure)
    labels = kind_labels()
    unit = _("kWh") if measure == "energy" else currency
    largest = max(
        (sum(value_of(row, kind, measure, currency) for kind in kinds) for row in period.rows),
        default=0.0,
    )
    top, step = nice_scale(largest)
    plot_h = HEIGHT - TOP - BOTTOM
    plot_w = WIDTH - LEFT - RIGHT
    slot = plot_w / max(1, len(period.rows))
    width = max(2.0, slot * 0.66)

    def y_of(value: float) -> float:
        return TOP + plot_h * (1 - value / top)

    bars: list[Bar] = []
    for index, row in enumerate(period.rows):
        key, when, label, sublabel = _when(period, row)
        slot_x = LEFT + index * slot
        x = slot_x + (slot - width) / 2
        total = text_of(row, None, measure, currency)
        bar = Bar(
            key=key,
            title=f"{when}: {total}",
            href=href(row) if href else "",
            slot_x=_n(slot_x),
            slot_width=_n(slot),
            label_x=_n(slot_x + slot / 2),
            label=label,
            sublabel=sublabel,
            total=total,
        )
        base = 0.0
        for kind in kinds:
            value = value_of(row, kind, measure, currency)
            if value <= 0:
                continue
            low, high = y_of(base), y_of(base + value)
            base += value
            bar.segments.append(
                Segment(
                    kind=str(kind),
                    x=_n(x),
                    y=_n(high),
                    width=_n(width),
                    height=_n(max(0.5, low - high)),
                    title=f"{when} · {labels[kind]}: {text_of(row, kind, measure, currency)}",
                )
            )
        bars.append(bar)
    places = _decimals(step)
    ticks = [
        Tick(_n(y_of(step * n)), number_format(Decimal(str(round(step * n, places))), places))
        for n in range(round(top / step) + 1)
    ]
    if measure == "energy":
        title = (
            _("Energy per month, in kWh") if period.step == "month" else _("Energy per day, in kWh")
        )
    elif period.step == "month":
        title = _("Cost per month, in %(currency)s") % {"currency": currency}
    else:
        title = _("Cost per day, in %(currency)s") % {"currency": currency}
    return Chart(
        id=chart_id,
        title=title,
        unit=unit,
        measure=measure,
        bars=bars,
        ticks=ticks,
        legend=[Legend(str(kind), labels[kind]) for kind in kinds],
        empty=largest <= 0,
    )


def charts(
    period: Period,
    *,
    measure: str,
    fallback_currency: str,
    href: Callable[[Row], str] | None = None,
    prefix: str = "chart",
) -> list[Chart]:
    """One energy chart; or a cost chart per currency of the period (never
    one sum of two currencies), one in ``fallback_currency`` when it has none."""
    if measure == "energy":
        return [chart(period, measure="energy", href=href, chart_id=f"{prefix}-energy")]
    currencies = period.currencies or [fallback_currency]
    return [
        chart(
            period,
            measure="cost",
            currency=currency,
            href=href,
            chart_id=f"{prefix}-{currency.lower()}",
        )
        for currency in currencies
    ]
