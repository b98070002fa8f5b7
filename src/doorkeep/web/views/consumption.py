"""Consumption in the web UI (R40): a resident's own in the portal, and a
site's, a unit's and one resident's for the site's lock owners, building
managers and read-only collaborators.

A period's page (the last 12 months, or a year) shows a stacked bar per
month, cost or energy (a link switches, no script), beside a table with the
same figures; a month's bar or row opens the month's page: a bar per day
and the list of uses with their prices (for a site, a table per unit and
per resident too). Either period downloads as CSV, a line per use. The
selectors (billing/consumption.py) check who may read what: a resident
finds only their own uses, a plain member is told why not, an outsider
finds nothing."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils.formats import date_format, number_format
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET

from doorkeep.billing import consumption as selectors
from doorkeep.billing.consumption import Period, Row, Scope
from doorkeep.billing.models import Use
from doorkeep.billing.pricing import money
from doorkeep.core.errors import NotFound
from doorkeep.properties.models import zone_of
from doorkeep.web import consumption_charts as charts
from doorkeep.web.views.common import current_user, page_view

MEASURES = ("cost", "energy")
USES_SHOWN = 500  # on a month's page; the CSV has them all
CSV_CHUNK = 2000


# --- where a scope's pages are --------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """The URL names' stem of a scope's pages, their arguments, and the
    query every link keeps (the portal's site)."""

    stem: str
    kwargs: dict[str, int] = field(default_factory=dict)
    query: dict[str, Any] = field(default_factory=dict)

    def url(self, page: str = "", month: date | None = None, **query: Any) -> str:
        name = "web:" + self.stem + (f"_{page}" if page else "")
        kwargs: dict[str, Any] = dict(self.kwargs)
        if month is not None:
            kwargs["month"] = month.strftime("%Y-%m")
        params = {k: v for k, v in {**self.query, **query}.items() if v not in (None, "")}
        return reverse(name, kwargs=kwargs) + (f"?{urlencode(params)}" if params else "")


@dataclass
class Frame:
    """What every page of a scope shows around its figures."""

    scope: Scope
    target: Target
    heading: str
    crumbs: list[tuple[str, str]]  # (label, link) before the page itself
    nav: str
    csv_name: str  # "doorkeep-unit-4-consumption"

    @property
    def currency(self) -> str:
        prop = self.scope.prop or next(iter(self.scope.sites), None)
        return prop.currency if prop is not None else "EUR"


def _portal_frame(request: HttpRequest) -> Frame:
    raw = request.GET.get("site", "").strip()
    if raw and not (raw.isdigit() and len(raw) <= 18):  # no site has such an id
        raise NotFound(_("Property not found."))
    scope = selectors.mine(current_user(request), int(raw) if raw else None)
    heading = _("My consumption")
    if scope.prop is not None:
        heading = _("My consumption at %(site)s") % {"site": scope.prop.name}
    return Frame(
        scope,
        Target("portal_consumption", query={"site": scope.prop.pk if scope.prop else None}),
        heading,
        [(_("My home"), reverse("web:portal"))],
        "portal",
        "doorkeep-my-consumption",
    )


def _site_crumbs(scope: Scope) -> list[tuple[str, str]]:
    assert scope.prop is not None
    return [
        (_("Locks"), reverse("web:dashboard")),
        (scope.prop.name, reverse("web:property", kwargs={"property_id": scope.prop.pk})),
    ]


def _site_frame(request: HttpRequest, property_id: int) -> Frame:
    scope = selectors.of_site(current_user(request), property_id)
    assert scope.prop is not None
    return Frame(
        scope,
        Target("site_consumption", {"property_id": property_id}),
        _("Consumption · %(site)s") % {"site": scope.prop.name},
        _site_crumbs(scope),
        "locks",
        f"doorkeep-property-{property_id}-consumption",
    )


def _unit_frame(request: HttpRequest, property_id: int, unit_id: int) -> Frame:
    scope = selectors.of_unit(current_user(request), unit_id)
    assert scope.prop is not None and scope.unit is not None
    if scope.prop.pk != property_id:
        raise NotFound(_("Unit not found."), code="unit_not_found")
    site = Target("site_consumption", {"property_id": property_id})
    return Frame(
        scope,
        Target("unit_consumption", {"property_id": property_id, "unit_id": unit_id}),
        _("Consumption of unit %(unit)s · %(site)s")
        % {"unit": scope.unit.label, "site": scope.prop.name},
        [*_site_crumbs(scope), (_("Consumption"), site.url())],
        "locks",
        f"doorkeep-unit-{unit_id}-consumption",
    )


def _resident_frame(request: HttpRequest, property_id: int, person_id: int) -> Frame:
    scope = selectors.of_resident(current_user(request), property_id, person_id)
    assert scope.prop is not None and scope.person is not None
    site = Target("site_consumption", {"property_id": property_id})
    return Frame(
        scope,
        Target("resident_consumption", {"property_id": property_id, "person_id": person_id}),
        _("Consumption of %(name)s · %(site)s")
        % {"name": scope.person.name, "site": scope.prop.name},
        [*_site_crumbs(scope), (_("Consumption"), site.url())],
        "locks",
        f"doorkeep-resident-{person_id}-consumption",
    )


# --- figures as the tables show them ------------------------------------------------------------


@dataclass
class Line:
    """A row of a figures table, as text."""

    key: str
    label: str
    href: str
    uses: int
    charging_kwh: str
    laundry_kwh: str
    total_kwh: str
    charging: list[str]  # a cost per currency
    laundry: list[str]
    badge: list[str]
    total: list[str]


def _kwh(wh: int) -> str:
    return number_format(Decimal(wh) / 1000, 1) if wh else "—"


def _costs(row: Row, currencies: list[str], kind: str | None) -> list[str]:
    shown = []
    for currency in currencies:
        cost = row.costs.get(currency)
        if cost is None:  # nothing used in that currency
            continue
        amount = cost.of(kind) if kind else cost.total
        if amount or kind is None:
            shown.append(money(amount, currency))
    return shown or ["—"]


def _line(key: str, label: str, href: str, row: Row, currencies: list[str]) -> Line:
    return Line(
        key=key,
        label=label,
        href=href,
        uses=row.uses,
        charging_kwh=_kwh(row.charging.energy_wh),
        laundry_kwh=_kwh(row.laundry.energy_wh),
        total_kwh=_kwh(row.energy_wh),
        charging=_costs(row, currencies, "charging"),
        laundry=_costs(row, currencies, "laundry"),
        badge=_costs(row, currencies, "badge"),
        total=_costs(row, currencies, None),
    )


@dataclass
class UseLine:
    use: Use
    when: str
    kind: str
    site: str
    unit: str
    person: str
    energy: str
    price: str


def _use_lines(rows: list[Use]) -> list[UseLine]:
    zones: dict[int, Any] = {}
    lines = []
    for use in rows:
        zone = zones.get(use.property_id)
        if zone is None:
            zone = zones[use.property_id] = zone_of(use.property)
        lines.append(
            UseLine(
                use=use,
                when=date_format(use.started_at.astimezone(zone), "D j M, H:i"),
                kind=use.get_kind_display(),
                site=use.property.name,
                unit=use.unit.label if use.unit else "—",
                person=use.person.name if use.person else "—",
                energy=(
                    _("%(energy)s kWh")
                    % {"energy": number_format(Decimal(use.energy_wh) / 1000, 3)}
                    if use.energy_wh
                    else "—"
                ),
                price=money(use.amount, use.currency),
            )
        )
    return lines


@dataclass
class SummaryLine:
    kind: str  # "" for the total
    label: str
    uses: int
    energy: str
    cost: list[str]


def _summary(row: Row, currencies: list[str]) -> list[SummaryLine]:
    """A period's figures per kind of use, then its total (a month's page)."""
    labels = charts.kind_labels()
    lines = [
        SummaryLine(
            str(kind),
            labels[kind],
            row.usage(kind).uses,
            _kwh(row.usage(kind).energy_wh),
            _costs(row, currencies, kind),
        )
        for kind in selectors.KINDS
    ]
    lines.append(
        SummaryLine("", _("Total"), row.uses, _kwh(row.energy_wh), _costs(row, currencies, None))
    )
    return lines


def _measure(request: HttpRequest) -> str:
    measure = request.GET.get("show", "cost")
    return measure if measure in MEASURES else "cost"


# --- pages --------------------------------------------------------------------------------------


def _period_label(period: Period) -> str:
    if period.year is not None:
        return str(period.year)
    return _("the last 12 months")


def _months_page(request: HttpRequest, frame: Frame) -> HttpResponse:
    year = selectors.parse_year(request.GET.get("year"))
    measure = _measure(request)
    scope, target = frame.scope, frame.target
    period = selectors.months(scope, year)

    def month_url(row: Row) -> str:
        assert row.start is not None
        return target.url("month", row.start, show=measure)

    lines = [
        _line(
            row.start.strftime("%Y-%m"),
            date_format(row.start, "M Y"),
            month_url(row),
            row,
            period.currencies,
        )
        for row in period.rows
        if row.start is not None
    ]
    shown_year = year if year is not None else scope.today.year
    return render(
        request,
        "web/consumption/months.html",
        {
            "frame": frame,
            "nav": frame.nav,
            "period": period,
            "period_label": _period_label(period),
            "measure": measure,
            "charts": charts.charts(
                period, measure=measure, fallback_currency=frame.currency, href=month_url
            ),
            "lines": lines,
            "total": _line("total", _("Total"), "", period.total, period.currencies),
            "currencies": period.currencies,
            "links": {
                "cost": target.url(year=year, show="cost"),
                "energy": target.url(year=year, show="energy"),
                "last12": target.url(show=measure),
                "previous": target.url(year=shown_year - 1, show=measure),
                "this": target.url(year=scope.today.year, show=measure),
                "next": target.url(year=shown_year + 1, show=measure)
                if year is not None and year < scope.today.year
                else "",
                "csv": target.url("csv", year=year),
            },
            "shown_year": shown_year,
            "previous_year": shown_year - 1,
            "next_year": shown_year + 1,
            "sites": _site_links(frame, year, measure),
            "kinds": charts.kind_labels(),
        },
    )


def _site_links(frame: Frame, year: int | None, measure: str) -> list[tuple[str, str, bool]]:
    """The portal's choice of site, for a resident of more than one."""
    scope = frame.scope
    if scope.kind != "me" or len(scope.sites) < 2:
        return []
    every = Target(frame.target.stem)
    links = [(_("Every site"), every.url(year=year, show=measure), scope.prop is None)]
    for prop in scope.sites:
        here = Target(frame.target.stem, query={"site": prop.pk})
        links.append((prop.name, here.url(year=year, show=measure), scope.prop == prop))
    return links


def _month_page(request: HttpRequest, frame: Frame, month_text: str) -> HttpResponse:
    month = selectors.parse_month(month_text)
    measure = _measure(request)
    scope, target = frame.scope, frame.target
    period = selectors.days(scope, month)
    start, end = period.start, period.end
    listed = list(selectors.uses(scope, start, end)[:USES_SHOWN])
    units: list[Line] = []
    residents: list[Line] = []
    if scope.kind == "site":
        units = _group_lines(selectors.by_unit(scope, start, end), frame, month, "unit", measure)
        residents = _group_lines(
            selectors.by_resident(scope, start, end), frame, month, "resident", measure
        )
    previous, following = selectors.previous_month(month), selectors.next_month(month)
    return render(
        request,
        "web/consumption/month.html",
        {
            "frame": frame,
            "nav": frame.nav,
            "month": month,
            "period": period,
            "measure": measure,
            "charts": charts.charts(
                period, measure=measure, fallback_currency=frame.currency, prefix="days"
            ),
            "summary": _summary(period.total, period.currencies),
            "uses": _use_lines(listed),
            "uses_count": period.total.uses,
            "uses_shown": USES_SHOWN,
            "units": units,
            "residents": residents,
            "show_site": scope.kind == "me" and scope.prop is None,
            "show_unit": scope.kind in ("site", "resident"),
            "show_person": scope.kind in ("site", "unit"),
            "links": {
                "cost": target.url("month", month, show="cost"),
                "energy": target.url("month", month, show="energy"),
                "year": target.url(year=month.year, show=measure),
                "previous": target.url("month", previous, show=measure),
                "next": target.url("month", following, show=measure)
                if following <= scope.today
                else "",
                "csv": target.url("month_csv", month),
            },
            "previous": previous,
            "following": following,
            "currencies": period.currencies,
            "zone": zone_of(scope.prop).key if scope.prop else "",
            "kinds": charts.kind_labels(),
        },
    )


def _group_lines(
    groups: list[selectors.Group], frame: Frame, month: date, kind: str, measure: str
) -> list[Line]:
    assert frame.scope.prop is not None
    site = frame.scope.prop.pk
    lines = []
    currencies = sorted({c for g in groups for c in g.row.costs})
    for group in groups:
        href = ""
        if group.key is not None:
            if kind == "unit":
                target = Target("unit_consumption", {"property_id": site, "unit_id": group.key})
            else:
                target = Target(
                    "resident_consumption", {"property_id": site, "person_id": group.key}
                )
            href = target.url("month", month, show=measure)
        label = group.name or (_("No unit known") if kind == "unit" else _("No resident known"))
        lines.append(_line(f"{kind}-{group.key or 0}", label, href, group.row, currencies))
    return lines


def _csv(frame: Frame, rows: Any, period: str) -> StreamingHttpResponse:
    response = StreamingHttpResponse(
        selectors.uses_csv(rows.iterator(chunk_size=CSV_CHUNK)),
        content_type="text/csv; charset=utf-8",
    )
    response["Content-Disposition"] = f'attachment; filename="{frame.csv_name}-{period}.csv"'
    return response


def _months_csv(request: HttpRequest, frame: Frame) -> StreamingHttpResponse:
    year = selectors.parse_year(request.GET.get("year"))
    start, end = selectors.months_span(frame.scope.today, year)
    name = (
        str(year) if year is not None else f"{start:%Y-%m}-to-{selectors.previous_month(end):%Y-%m}"
    )
    return _csv(frame, selectors.uses(frame.scope, start, end), name)


def _month_csv(frame: Frame, month_text: str) -> StreamingHttpResponse:
    month = selectors.parse_month(month_text)
    rows = selectors.uses(frame.scope, month, selectors.next_month(month))
    return _csv(frame, rows, f"{month:%Y-%m}")


# --- the views ----------------------------------------------------------------------------------


@require_GET
@page_view
def portal_consumption(request: HttpRequest) -> HttpResponse:
    return _months_page(request, _portal_frame(request))


@require_GET
@page_view
def portal_consumption_month(request: HttpRequest, month: str) -> HttpResponse:
    return _month_page(request, _portal_frame(request), month)


@require_GET
@page_view
def portal_consumption_csv(request: HttpRequest) -> StreamingHttpResponse:
    return _months_csv(request, _portal_frame(request))


@require_GET
@page_view
def portal_consumption_month_csv(request: HttpRequest, month: str) -> StreamingHttpResponse:
    return _month_csv(_portal_frame(request), month)


@require_GET
@page_view
def site_consumption(request: HttpRequest, property_id: int) -> HttpResponse:
    return _months_page(request, _site_frame(request, property_id))


@require_GET
@page_view
def site_consumption_month(request: HttpRequest, property_id: int, month: str) -> HttpResponse:
    return _month_page(request, _site_frame(request, property_id), month)


@require_GET
@page_view
def site_consumption_csv(request: HttpRequest, property_id: int) -> StreamingHttpResponse:
    return _months_csv(request, _site_frame(request, property_id))


@require_GET
@page_view
def site_consumption_month_csv(
    request: HttpRequest, property_id: int, month: str
) -> StreamingHttpResponse:
    return _month_csv(_site_frame(request, property_id), month)


@require_GET
@page_view
def unit_consumption(request: HttpRequest, property_id: int, unit_id: int) -> HttpResponse:
    return _months_page(request, _unit_frame(request, property_id, unit_id))


@require_GET
@page_view
def unit_consumption_month(
    request: HttpRequest, property_id: int, unit_id: int, month: str
) -> HttpResponse:
    return _month_page(request, _unit_frame(request, property_id, unit_id), month)


@require_GET
@page_view
def unit_consumption_csv(
    request: HttpRequest, property_id: int, unit_id: int
) -> StreamingHttpResponse:
    return _months_csv(request, _unit_frame(request, property_id, unit_id))


@require_GET
@page_view
def unit_consumption_month_csv(
    request: HttpRequest, property_id: int, unit_id: int, month: str
) -> StreamingHttpResponse:
    return _month_csv(_unit_frame(request, property_id, unit_id), month)


@require_GET
@page_view
def resident_consumption(request: HttpRequest, property_id: int, person_id: int) -> HttpResponse:
    return _months_page(request, _resident_frame(request, property_id, person_id))


@require_GET
@page_view
def resident_consumption_month(
    request: HttpRequest, property_id: int, person_id: int, month: str
) -> HttpResponse:
    return _month_page(request, _resident_frame(request, property_id, person_id), month)


@require_GET
@page_view
def resident_consumption_csv(
    request: HttpRequest, property_id: int, person_id: int
) -> StreamingHttpResponse:
    return _months_csv(request, _resident_frame(request, property_id, person_id))


@require_GET
@page_view
def resident_consumption_month_csv(
    request: HttpRequest, property_id: int, person_id: int, month: str
) -> StreamingHttpResponse:
    return _month_csv(_resident_frame(request, property_id, person_id), month)
