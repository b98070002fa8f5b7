"""Consumption in the API (R40): energy and cost month by month
(`?year=YYYY`, or the last 12 months), a month's days with its uses, and
CSV of either (`….csv`, a line per use); for yourself (`me/…`, every site
where you live or lived, or one with `?property_id=`), and for a site, a
unit and one resident of a site.

A site's, a unit's and a resident's consumption are for the site's lock
owners, building managers and read-only collaborators (a plain member gets
403 with the reason, anyone outside the organization 404). Costs are per
currency, never added across currencies. A month that is not YYYY-MM or
not 01-12, or a year outside 2000-2100, is refused with 422."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any

from django.http import HttpRequest, StreamingHttpResponse
from ninja import Query, Router, Schema
from pydantic import Field

from doorkeep.api.util import actor
from doorkeep.billing import consumption as selectors
from doorkeep.billing.consumption import Group, Period, Row, Scope
from doorkeep.billing.models import Use
from doorkeep.billing.pricing import money
from doorkeep.gateway.api import ErrorOut

router = Router(tags=["consumption"])

ERRORS: dict[int, type[Schema]] = {403: ErrorOut, 404: ErrorOut, 422: ErrorOut}
Month = Annotated[str, Field(pattern=r"^\d{4}-\d{2}$", description="YYYY-MM, such as 2026-03")]
CSV_CHUNK = 2000


# --- schemas ----------------------------------------------------------------------------------


class UsageOut(Schema):
    uses: int
    energy_wh: int = Field(description="In Wh (extra badges: 0)")


class CostOut(Schema):
    currency: str
    charging: int = Field(description="Minor units (cents), VAT included")
    laundry: int
    badge: int = Field(description="Extra badges")
    total: int
    total_text: str = Field(description='As people read it: "CHF 12.30"')


class FiguresOut(Schema):
    uses: int
    energy_wh: int
    charging: UsageOut
    laundry: UsageOut
    badge: UsageOut
    costs: list[CostOut] = Field(description="One per currency used; never added together")


class MonthOut(FiguresOut):
    month: str = Field(description="YYYY-MM")


class DayOut(FiguresOut):
    day: date = Field(description="The site's local day")


class GroupOut(FiguresOut):
    id: int | None = Field(description="The unit's or the person's id; null: not known")
    name: str


class MonthsOut(Schema):
    year: int | None = Field(description="null: the last 12 months")
    first_month: str
    last_month: str
    currencies: list[str]
    months: list[MonthOut]
    total: FiguresOut


class UseOut(Schema):
    id: int
    kind: str = Field(description="charging, laundry or badge")
    label: str = Field(description="The station, or the machine and program, or the badge")
    property_id: int
    site: str
    unit_id: int | None
    unit: str | None = Field(description="Where the person lived that day")
    person_id: int | None
    person: str | None
    day: date
    started_at: datetime
    ended_at: datetime | None
    energy_wh: int
    amount: int = Field(description="Minor units, VAT included")
    currency: str
    amount_text: str


class MonthDetailOut(Schema):
    month: str
    currencies: list[str]
    days: list[DayOut]
    total: FiguresOut
    uses_count: int = Field(description="Every use of the month")
    uses: list[UseOut] = Field(description="In the order they started, from `offset`")
    units: list[GroupOut] | None = Field(description="A site's: the figures of each unit")
    residents: list[GroupOut] | None = Field(description="A site's: the figures of each resident")


class UsesPage(Schema):
    limit: int = Field(500, ge=1, le=5000, description="Uses in the answer")
    offset: int = Field(0, ge=0)


# --- rendering ---------------------------------------------------------------------------------


def _figures(row: Row) -> dict[str, Any]:
    return {
        "uses": row.uses,
        "energy_wh": row.energy_wh,
        **{
            kind: {"uses": row.usage(kind).uses, "energy_wh": row.usage(kind).energy_wh}
            for kind in selectors.KINDS
        },
        "costs": [
            {
                "currency": cost.currency,
                "charging": cost.charging,
                "laundry": cost.laundry,
                "badge": cost.badge,
                "total": cost.total,
                "total_text": money(cost.total, cost.currency),
            }
            for cost in row.costs.values()
        ],
    }


def _months(period: Period) -> dict[str, Any]:
    return {
        "year": period.year,
        "first_month": f"{period.start:%Y-%m}",
        "last_month": f"{selectors.previous_month(period.end):%Y-%m}",
        "currencies": period.currencies,
        "months": [{"month": f"{row.start:%Y-%m}", **_figures(row)} for row in period.rows],
        "total": _figures(period.total),
    }


def _use(use: Use) -> dict[str, Any]:
    return {
        "id": use.pk,
        "kind": use.kind,
        "label": use.label,
        "property_id": use.property_id,
        "site": use.property.name,
        "unit_id": use.unit_id,
        "unit": use.unit.label if use.unit else None,
        "person_id": use.person_id,
        "person": use.person.name if use.person else None,
        "day": use.day,
        "started_at": use.started_at,
        "ended_at": use.ended_at,
        "energy_wh": use.energy_wh,
        "amount": use.amount,
        "currency": use.currency,
        "amount_text": money(use.amount, use.currency),
    }


def _groups(groups: list[Group]) -> list[dict[str, Any]]:
    return [{"id": g.key, "name": g.name, **_figures(g.row)} for g in groups]


def _months_answer(scope: Scope, year: int | None) -> dict[str, Any]:
    return _months(selectors.months(scope, year))


def _month_answer(scope: Scope, month_text: str, page: UsesPage) -> dict[str, Any]:
    month = selectors.parse_month(month_text)
    period = selectors.days(scope, month)
    start, end = period.start, period.end
    rows = selectors.uses(scope, start, end)[page.offset : page.offset + page.limit]
    site = scope.kind == "site"
    return {
        "month": f"{month:%Y-%m}",
        "currencies": period.currencies,
        "days": [{"day": row.start, **_figures(row)} for row in period.rows],
        "total": _figures(period.total),
        "uses_count": period.total.uses,
        "uses": [_use(use) for use in rows],
        "units": _groups(selectors.by_unit(scope, start, end)) if site else None,
        "residents": _groups(selectors.by_resident(scope, start, end)) if site else None,
    }


def _csv(rows: Any, name: str) -> StreamingHttpResponse:
    response = StreamingHttpResponse(
        selectors.uses_csv(rows.iterator(chunk_size=CSV_CHUNK)),
        content_type="text/csv; charset=utf-8",
    )
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


def _year_csv(scope: Scope, year: int | None, stem: str) -> StreamingHttpResponse:
    if year is not None:
        selectors.check_year(year)
    start, end = selectors.months_span(scope.today, year)
    period = (
        str(year) if year is not None else f"{start:%Y-%m}-to-{selectors.previous_month(end):%Y-%m}"
    )
    return _csv(selectors.uses(scope, start, end), f"{stem}-{period}.csv")


def _month_csv(scope: Scope, month_text: str, stem: str) -> StreamingHttpResponse:
    month = selectors.parse_month(month_text)
    rows = selectors.uses(scope, month, selectors.next_month(month))
    return _csv(rows, f"{stem}-{month:%Y-%m}.csv")


CSV_DOC = (
    "A line per use, in the order they started. Columns: id, day (the site's), kind, label, "
    "site, unit, person, started_local, ended_local (ISO 8601 with the site's offset), "
    "energy_kwh (three decimals), amount (VAT included, two decimals), currency."
)


# --- yourself ------------------------------------------------------------------------------------
# The .csv paths come first: `{month}` would take "2026-03.csv" too.


@router.get("me/consumption.csv", summary="My consumption as CSV", description=CSV_DOC)
def my_consumption_csv(
    request: HttpRequest, year: int | None = None, property_id: int | None = None
) -> StreamingHttpResponse:
    scope = selectors.mine(actor(request), property_id)
    return _year_csv(scope, year, "doorkeep-my-consumption")


@router.get("me/consumption/{month}.csv", summary="My consumption of a month as CSV")
def my_month_csv(
    request: HttpRequest, month: Month, property_id: int | None = None
) -> StreamingHttpResponse:
    scope = selectors.mine(actor(request), property_id)
    return _month_csv(scope, month, "doorkeep-my-consumption")


@router.get(
    "me/consumption",
    response={200: MonthsOut, **ERRORS},
    summary="My consumption, month by month",
)
def my_consumption(
    request: HttpRequest, year: int | None = None, property_id: int | None = None
) -> dict[str, Any]:
    """The uses started with your badges or your phone, summed per month:
    energy and uses per kind, cost per currency. `year`: YYYY (left out: the
    last 12 months, this month included); `property_id`: one site where you
    live or lived (left out: every site)."""
    return _months_answer(selectors.mine(actor(request), property_id), year)


@router.get(
    "me/consumption/{month}",
    response={200: MonthDetailOut, **ERRORS},
    summary="My consumption of a month: its days and uses",
)
def my_month(
    request: HttpRequest,
    month: Month,
    page: Query[UsesPage],
    property_id: int | None = None,
) -> dict[str, Any]:
    return _month_answer(selectors.mine(actor(request), property_id), month, page)


# --- a site --------------------------------------------------------------------------------------


@router.get("properties/{property_id}/consumption.csv", summary="A site's consumption as CSV")
def site_consumption_csv(
    request: HttpRequest, property_id: int, year: int | None = None
) -> StreamingHttpResponse:
    scope = selectors.of_site(actor(request), property_id)
    return _year_csv(scope, year, f"doorkeep-property-{property_id}-consumption")


@router.get(
    "properties/{property_id}/consumption/{month}.csv",
    summary="A site's consumption of a month as CSV",
)
def site_month_csv(request: HttpRequest, property_id: int, month: Month) -> StreamingHttpResponse:
    scope = selectors.of_site(actor(request), property_id)
    return _month_csv(scope, month, f"doorkeep-property-{property_id}-consumption")


@router.get(
    "properties/{property_id}/consumption",
    response={200: MonthsOut, **ERRORS},
    summary="A site's consumption, month by month",
)
def site_consumption(
    request: HttpRequest, property_id: int, year: int | None = None
) -> dict[str, Any]:
    return _months_answer(selectors.of_site(actor(request), property_id), year)


@router.get(
    "properties/{property_id}/consumption/{month}",
    response={200: MonthDetailOut, **ERRORS},
    summary="A site's consumption of a month: days, uses, units and residents",
)
def site_month(
    request: HttpRequest, property_id: int, month: Month, page: Query[UsesPage]
) -> dict[str, Any]:
    """With the figures of each unit (`units`) and each resident (`residents`)."""
    return _month_answer(selectors.of_site(actor(request), property_id), month, page)


# --- a unit --------------------------------------------------------------------------------------


@router.get("units/{unit_id}/consumption.csv", summary="A unit's consumption as CSV")
def unit_consumption_csv(
    request: HttpRequest, unit_id: int, year: int | None = None
) -> StreamingHttpResponse:
    scope = selectors.of_unit(actor(request), unit_id)
    return _year_csv(scope, year, f"doorkeep-unit-{unit_id}-consumption")


@router.get("units/{unit_id}/consumption/{month}.csv", summary="A unit's month as CSV")
def unit_month_csv(request: HttpRequest, unit_id: int, month: Month) -> StreamingHttpResponse:
    scope = selectors.of_unit(actor(request), unit_id)
    return _month_csv(scope, month, f"doorkeep-unit-{unit_id}-consumption")


@router.get(
    "units/{unit_id}/consumption",
    response={200: MonthsOut, **ERRORS},
    summary="A unit's consumption, month by month",
)
def unit_consumption(request: HttpRequest, unit_id: int, year: int | None = None) -> dict[str, Any]:
    """The uses of the people who lived in the unit, on the days they lived there."""
    return _months_answer(selectors.of_unit(actor(request), unit_id), year)


@router.get(
    "units/{unit_id}/consumption/{month}",
    response={200: MonthDetailOut, **ERRORS},
    summary="A unit's consumption of a month",
)
def unit_month(
    request: HttpRequest, unit_id: int, month: Month, page: Query[UsesPage]
) -> dict[str, Any]:
    return _month_answer(selectors.of_unit(actor(request), unit_id), month, page)


# --- a resident of a site ----------------------------------------------------------------------


@router.get(
    "properties/{property_id}/residents/{person_id}/consumption.csv",
    summary="A resident's consumption at a site as CSV",
)
def resident_consumption_csv(
    request: HttpRequest, property_id: int, person_id: int, year: int | None = None
) -> StreamingHttpResponse:
    scope = selectors.of_resident(actor(request), property_id, person_id)
    return _year_csv(scope, year, f"doorkeep-resident-{person_id}-consumption")


@router.get(
    "properties/{property_id}/residents/{person_id}/consumption/{month}.csv",
    summary="A resident's month at a site as CSV",
)
def resident_month_csv(
    request: HttpRequest, property_id: int, person_id: int, month: Month
) -> StreamingHttpResponse:
    scope = selectors.of_resident(actor(request), property_id, person_id)
    return _month_csv(scope, month, f"doorkeep-resident-{person_id}-consumption")


@router.get(
    "properties/{property_id}/residents/{person_id}/consumption",
    response={200: MonthsOut, **ERRORS},
    summary="A resident's consumption at a site, month by month",
)
def resident_consumption(
    request: HttpRequest, property_id: int, person_id: int, year: int | None = None
) -> dict[str, Any]:
    """`person_id` is the resident's `person_id` (GET …/residents)."""
    return _months_answer(selectors.of_resident(actor(request), property_id, person_id), year)


@router.get(
    "properties/{property_id}/residents/{person_id}/consumption/{month}",
    response={200: MonthDetailOut, **ERRORS},
    summary="A resident's consumption at a site in a month",
)
def resident_month(
    request: HttpRequest, property_id: int, person_id: int, month: Month, page: Query[UsesPage]
) -> dict[str, Any]:
    return _month_answer(selectors.of_resident(actor(request), property_id, person_id), month, page)
