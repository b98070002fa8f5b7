"""Consumption (R40): the energy and the cost of the record of use, month
by month and day by day, for a resident (their own, at every site where
they live or lived), for a unit, for one resident of a site and for a whole
site; with the list of a period's uses and its CSV.

Everything is read from ``billing.Use``. A use's ``day`` is the local day of
its start in the site's time zone, so a month is a range of days: no time
zone arithmetic in SQL. Each figure set is one aggregate query grouped by
day (months are added up from their days), kind and currency. Costs are summed
per currency and never added across currencies: a resident's portal may
span a site in CHF and one in EUR. A use belongs to the person whose badge
or phone started it and to the unit they lived in that day (set when it was
recorded), so a person who moved keeps their uses and each unit keeps its own.

Who reads what: a person reads their own uses (``mine``); a site's, a
unit's and a resident's consumption are for the site's lock owners,
building managers and read-only collaborators (policy action VIEW_BILLING).
A plain member is refused (403); another organization's site, unit or
person does not exist for the caller (404)."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from django.db.models import Count, Q, QuerySet, Sum
from django.utils import timezone
from django.utils.translation import gettext as _

from doorkeep import policy
from doorkeep.accounts.models import User
from doorkeep.billing.models import Use, UseKind
from doorkeep.billing.pricing import MINOR_PER_UNIT
from doorkeep.core.errors import NotFound, PermissionDenied, Unprocessable
from doorkeep.core.text import csv_cell
from doorkeep.keys.models import Person
from doorkeep.properties.models import Property, zone_of
from doorkeep.properties.services import get_property
from doorkeep.residents.models import Residency, Unit

VIEW = policy.Action.VIEW_BILLING
KINDS: tuple[str, ...] = (UseKind.CHARGING, UseKind.LAUNDRY, UseKind.BADGE)
MIN_YEAR, MAX_YEAR = 2000, 2100
_MONTH = re.compile(r"(\d{4})-(\d{2})")
_RELATED = ("property", "unit", "person")


# --- what a view covers ---------------------------------------------------------------------


@dataclass(frozen=True)
class Scope:
    """The uses a consumption view covers, and the day it is today there
    (at the site; for a resident's own, at the site where they live)."""

    kind: str  # "me", "site", "unit" or "resident"
    uses: QuerySet[Use]
    today: date
    prop: Property | None = None  # None: a resident's own, at every site
    unit: Unit | None = None
    person: Person | None = None
    sites: list[Property] = field(default_factory=list)  # a resident's homes, newest first


def _today(prop: Property | None) -> date:
    return timezone.now().astimezone(zone_of(prop)).date()


def mine(actor: User, property_id: int | None = None) -> Scope:
    """The uses of the persons the account is (one per organization), at
    every site or at one site where one of them lives or lived (another
    site is not found)."""
    # The account's persons first (one per organization, a short list): the
    # uses are then read through their (person, day) index alone.
    people = list(Person.objects.filter(user=actor).order_by().values_list("pk", flat=True))
    uses = Use.objects.filter(person_id__in=people)
    homes = Residency.objects.filter(person__user=actor).select_related("unit__property")
    sites: dict[int, Property] = {}
    for residency in homes.order_by("-move_in", "-id"):
        sites.setdefault(residency.unit.property_id, residency.unit.property)
    prop: Property | None = None
    if property_id is not None:
        prop = sites.get(property_id)
        if prop is None and uses.filter(property_id=property_id).exists():
            prop = Property.objects.get(pk=property_id)
        if prop is None:
            raise NotFound(_("Property not found."))
        uses = uses.filter(property_id=prop.pk)
    home = prop or next(iter(sites.values()), None)
    return Scope("me", uses, _today(home), prop, sites=list(sites.values()))


def of_site(actor: User, property_id: int) -> Scope:
    prop = get_property(actor, property_id, VIEW)
    return Scope("site", Use.objects.filter(property_id=prop.pk), _today(prop), prop)


def of_unit(actor: User, unit_id: int) -> Scope:
    """A unit's uses: those of the people who lived in it, on the days they
    lived there."""
    unit = Unit.objects.select_related("property").filter(pk=unit_id).first()
    if (
        unit is None
        or policy.role_in(actor, unit.property.organization_id, unit.property_id) is None
    ):
        raise NotFound(_("Unit not found."), code="unit_not_found")
    if not policy.can(actor, VIEW, unit.property.organization_id, unit.property_id):
        raise PermissionDenied(policy.denial(VIEW))
    prop = unit.property
    uses = Use.objects.filter(unit_id=unit.pk, property_id=prop.pk)
    return Scope("unit", uses, _today(prop), prop, unit=unit)


def of_resident(actor: User, property_id: int, person_id: int) -> Scope:
    """One person's uses at a site where they live or lived (or used its
    equipment); anyone else is not found."""
    prop = get_property(actor, property_id, VIEW)
    person = (
        Person.objects.filter(pk=person_id, organization_id=prop.organization_id)
        .filter(
            Q(residencies__unit__property_id=prop.pk)
            | Q(
                pk__in=Use.objects.filter(property_id=prop.pk, person_id=person_id).values("person")
            )
        )
        .first()
    )
    if person is None:
        raise NotFound(_("Resident not found."), code="resident_not_found")
    uses = Use.objects.filter(person_id=person.pk, property_id=prop.pk)
    return Scope("resident", uses, _today(prop), prop, person=person)


# --- periods --------------------------------------------------------------------------------


def check_year(year: int) -> int:
    if not MIN_YEAR <= year <= MAX_YEAR:
        raise Unprocessable(
            _("The year must be between %(first)d and %(last)d.")
            % {"first": MIN_YEAR, "last": MAX_YEAR},
            code="invalid_year",
            field="year",
        )
    return year


def parse_year(text: str | None) -> int | None:
    """A year from a query string ("" or None: the last 12 months)."""
    if text is None or not text.strip():
        return None
    if not text.strip().isdigit():
        raise Unprocessable(
            _("The year is written with four digits, such as 2026."),
            code="invalid_year",
            field="year",
        )
    return check_year(int(text.strip()[:6]))


def parse_month(text: str) -> date:
    """ "2026-03" -> 1 March 2026; anything else is refused with a message."""
    found = _MONTH.fullmatch(text.strip())
    if found is None:
        raise Unprocessable(
            _("A month is written YYYY-MM, such as 2026-03."), code="invalid_month", field="month"
        )
    year, month = int(found[1]), int(found[2])
    if not 1 <= month <= 12:
        raise Unprocessable(
            _("%(value)s is not a month: months go from 01 to 12.") % {"value": text.strip()},
            code="invalid_month",
            field="month",
        )
    check_year(year)
    return date(year, month, 1)


def next_month(month: date) -> date:
    return (month.replace(day=1) + timedelta(days=32)).replace(day=1)


def previous_month(month: date) -> date:
    return (month.replace(day=1) - timedelta(days=1)).replace(day=1)


def months_span(today: date, year: int | None) -> tuple[date, date]:
    """[first day, first day after) of a year, or of the last 12 months
    (this month included)."""
    if year is not None:
        return date(year, 1, 1), date(year + 1, 1, 1)
    end = next_month(today)
    return date(end.year - 1, end.month, 1), end


# --- figures --------------------------------------------------------------------------------


@dataclass
class Usage:
    uses: int = 0
    energy_wh: int = 0


@dataclass
class Cost:
    """What a period cost in one currency, per kind (minor units, VAT included)."""

    currency: str
    charging: int = 0
    laundry: int = 0
    badge: int = 0

    @property
    def total(self) -> int:
        return self.charging + self.laundry + self.badge

    def of(self, kind: str) -> int:
        return int(getattr(self, kind))


@dataclass
class Row:
    """The figures of a month, a day, a unit or a resident."""

    start: date | None = None  # the month's first day, or the day
    charging: Usage = field(default_factory=Usage)
    laundry: Usage = field(default_factory=Usage)
    badge: Usage = field(default_factory=Usage)
    costs: dict[str, Cost] = field(default_factory=dict)  # by currency, in order

    def usage(self, kind: str) -> Usage:
        return getattr(self, kind)

    @property
    def uses(self) -> int:
        return sum(self.usage(kind).uses for kind in KINDS)

    @property
    def energy_wh(self) -> int:
        return sum(self.usage(kind).energy_wh for kind in KINDS)

    def cost(self, currency: str) -> Cost:
        return self.costs.get(currency) or Cost(currency)

    def add(self, kind: str, currency: str, uses: int, energy_wh: int, amount: int) -> None:
        if kind not in KINDS:
            return
        usage = self.usage(kind)
        usage.uses += uses
        usage.energy_wh += energy_wh
        cost = self.costs.get(currency)
        if cost is None:
            cost = self.costs[currency] = Cost(currency)
        setattr(cost, kind, getattr(cost, kind) + amount)

    def add_row(self, other: Row) -> None:
        for kind in KINDS:
            usage, more = self.usage(kind), other.usage(kind)
            usage.uses += more.uses
            usage.energy_wh += more.energy_wh
        for currency, cost in other.costs.items():
            mine = self.costs.get(currency) or self.costs.setdefault(currency, Cost(currency))
            for kind in KINDS:
                setattr(mine, kind, mine.of(kind) + cost.of(kind))

    def sort_costs(self) -> None:
        self.costs = dict(sorted(self.costs.items()))


@dataclass
class Period:
    """A period's figures: a row per month (``step`` "month") or per day
    ("day"), each of them, empty ones too; the total; the currencies
    used, in order."""

    step: str
    start: date
    end: date  # the first day after
    rows: list[Row]
    total: Row
    currencies: list[str]
    year: int | None = None  # None: the last 12 months (or one month)


def _sums(rows: QuerySet[Use], *group: str) -> Iterator[tuple[Any, ...]]:
    """(group values..., kind, currency, uses, Wh, amount) rows, in one query."""
    return iter(
        rows.values(*group, "kind", "currency")
        .annotate(n=Count("id"), wh=Sum("energy_wh"), amount=Sum("amount"))
        .order_by()
        .values_list(*group, "kind", "currency", "n", "wh", "amount")
    )


def _period(step: str, start: date, end: date, found: dict[date, Row], year: int | None) -> Period:
    rows: list[Row] = []
    total = Row(start)
    cursor = start
    while cursor < end:
        row = found.get(cursor) or Row(cursor)
        row.sort_costs()
        rows.append(row)
        total.add_row(row)
        cursor = next_month(cursor) if step == "month" else cursor + timedelta(days=1)
    total.sort_costs()
    return Period(step, start, end, rows, total, list(total.costs), year)


def months(scope: Scope, year: int | None = None) -> Period:
    """A row per month of ``year`` (None: of the last 12 months), in one
    query. It groups by day (at most 366 days x 3 kinds x the currencies),
    and the days are added up into months here: on SQLite that is faster
    than TruncMonth, a Python function called for every use."""
    if year is not None:
        check_year(year)
    start, end = months_span(scope.today, year)
    found: dict[date, Row] = {}
    for day, kind, currency, n, wh, amount in _sums(
        scope.uses.filter(day__gte=start, day__lt=end), "day"
    ):
        month = day.replace(day=1)
        row = found.get(month)
        if row is None:
            row = found[month] = Row(month)
        row.add(kind, currency, n, wh or 0, amount or 0)
    return _period("month", start, end, found, year)


def days(scope: Scope, month: date) -> Period:
    """A row per day of ``month``, in one query."""
    start, end = month.replace(day=1), next_month(month)
    found: dict[date, Row] = {}
    for day, kind, currency, n, wh, amount in _sums(
        scope.uses.filter(day__gte=start, day__lt=end), "day"
    ):
        row = found.get(day)
        if row is None:
            row = found[day] = Row(day)
        row.add(kind, currency, n, wh or 0, amount or 0)
    return _period("day", start, end, found, None)


@dataclass
class Group:
    """A unit's or a resident's figures in a period (``key`` None: uses with
    no unit or person known)."""

    key: int | None
    name: str
    row: Row


def _groups(rows: QuerySet[Use], key: str, name: str) -> list[Group]:
    found: dict[int | None, Group] = {}
    for ident, label, kind, currency, n, wh, amount in _sums(rows, key, name):
        group = found.get(ident)
        if group is None:
            group = found[ident] = Group(ident, label or "", Row())
        group.row.add(kind, currency, n, wh or 0, amount or 0)
    groups = sorted(found.values(), key=lambda g: (g.key is None, g.name.casefold(), g.key or 0))
    for group in groups:
        group.row.sort_costs()
    return groups


def _span(scope: Scope, start: date, end: date) -> QuerySet[Use]:
    return scope.uses.filter(day__gte=start, day__lt=end)


def by_unit(scope: Scope, start: date, end: date) -> list[Group]:
    """The figures of each unit in [start, end), by label, in one query."""
    return _groups(_span(scope, start, end), "unit_id", "unit__label")


def by_resident(scope: Scope, start: date, end: date) -> list[Group]:
    """The figures of each resident in [start, end), by name, in one query."""
    return _groups(_span(scope, start, end), "person_id", "person__name")


def uses(scope: Scope, start: date, end: date) -> QuerySet[Use]:
    """The uses of [start, end), in the order they started."""
    return _span(scope, start, end).select_related(*_RELATED).order_by("started_at", "id")


# --- CSV ------------------------------------------------------------------------------------

CSV_COLUMNS = (
    "id",
    "day",
    "kind",
    "label",
    "site",
    "unit",
    "person",
    "started_local",
    "ended_local",
    "energy_kwh",
    "amount",
    "currency",
)


def kwh(wh: int) -> str:
    """Watt-hours as kWh with three decimals, exactly ("12.345")."""
    sign, wh = ("-", -wh) if wh < 0 else ("", wh)
    return f"{sign}{wh // 1000}.{wh % 1000:03d}"


def decimal(amount: int) -> str:
    """Minor units as a decimal amount ("12.30"), exactly."""
    sign, amount = ("-", -amount) if amount < 0 else ("", amount)
    return f"{sign}{amount // MINOR_PER_UNIT}.{amount % MINOR_PER_UNIT:02d}"


def _line(values: Iterable[Any]) -> str:
    out = io.StringIO()
    csv.writer(out).writerow(values)
    return out.getvalue()


def uses_csv(rows: Iterable[Use]) -> Iterator[str]:
    """Uses as CSV lines, the header first (CSV_COLUMNS): the local day and
    times at the site (ISO 8601 with the offset), energy in kWh with three
    decimals and the amount (VAT included) exact from the stored integers;
    text cells guarded against spreadsheet formulas. For streaming."""
    yield _line(CSV_COLUMNS)
    zones: dict[int, Any] = {}
    for use in rows:
        zone = zones.get(use.property_id)
        if zone is None:
            zone = zones[use.property_id] = zone_of(use.property)
        yield _line(
            [
                use.pk,
                use.day.isoformat(),
                use.kind,
                csv_cell(use.label),
                csv_cell(use.property.name),
                csv_cell(use.unit.label) if use.unit else "",
                csv_cell(use.person.name) if use.person else "",
                use.started_at.astimezone(zone).isoformat(),
                use.ended_at.astimezone(zone).isoformat() if use.ended_at else "",
                kwh(use.energy_wh),
                decimal(use.amount),
                use.currency,
            ]
        )
