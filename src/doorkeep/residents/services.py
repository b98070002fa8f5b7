"""Units, parking spaces, residents and the site's billing settings.

Owners and building managers keep the residents list (policy action
MANAGE_RESIDENTS). Every change is an event in the site's log."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from datetime import date
from typing import TYPE_CHECKING

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.dateparse import parse_date
from django.utils.translation import gettext as _

from doorkeep import policy
from doorkeep.accounts.models import User
from doorkeep.core.errors import Conflict, InvalidInput, NotFound
from doorkeep.events.models import EventKind
from doorkeep.events.services import record
from doorkeep.keys.models import Person
from doorkeep.keys.services import HolderSpec, person_for
from doorkeep.properties.models import BillingMode, Currency, Property, zone_of
from doorkeep.properties.services import get_property
from doorkeep.residents.models import ParkingSpace, Residency, Unit

if TYPE_CHECKING:
    from doorkeep.badges.models import Badge

MAX_IMPORT_LINES = 5000


def site_today(prop: Property) -> date:
    """Today in the site's time zone: residency days are the site's days."""
    return timezone.now().astimezone(zone_of(prop)).date()


def _equipment_learns(prop: Property) -> None:
    """Who lives at the site, or how it bills, changed: the local lists of the
    site's charging stations and laundry machines may change (their versions
    rise in this transaction)."""
    from doorkeep.chargers.lists import changed
    from doorkeep.laundry import lists as laundry_lists

    changed(property_ids=[prop.pk])
    laundry_lists.changed(property_ids=[prop.pk])


def _site(actor: User, property_id: int) -> Property:
    return get_property(actor, property_id, policy.Action.MANAGE_RESIDENTS)


def _label(value: str, what: str, limit: int) -> str:
    clean = " ".join(value.split())
    if not clean:
        raise InvalidInput(_("%(what)s is required.") % {"what": what}, code="required")
    if len(clean) > limit:
        raise InvalidInput(
            _("%(what)s is at most %(n)d characters.") % {"what": what, "n": limit},
            code="too_long",
        )
    return clean


def add_unit(actor: User, property_id: int, label: str) -> Unit:
    prop = _site(actor, property_id)
    clean = _label(label, _("A unit's label"), 40)
    try:
        with transaction.atomic():
            unit = Unit.objects.create(property=prop, label=clean)
            record(
                EventKind.UNIT_ADDED,
                organization_id=prop.organization_id,
                property_id=prop.pk,
                actor=actor,
                summary=_("Unit %(label)s added") % {"label": clean},
            )
    except IntegrityError:
        raise Conflict(
            _("This site already has a unit %(label)s.") % {"label": clean}, code="unit_exists"
        ) from None
    return unit


def get_unit(prop: Property, unit_id: int | None = None, label: str = "") -> Unit:
    """A unit of this site, by id or label; a unit of another site is not found."""
    units = Unit.objects.filter(property=prop)
    unit = units.filter(pk=unit_id).first() if unit_id is not None else None
    if unit_id is None and label:
        unit = units.filter(label=" ".join(label.split())).first()
    if unit is None:
        raise NotFound(
            _("%(unit)s is not a unit of this site.") % {"unit": label or unit_id},
            code="unit_not_found",
        )
    return unit


def add_parking_space(
    actor: User,
    property_id: int,
    number: str,
    *,
    unit_id: int | None = None,
    station_serial: str = "",
) -> ParkingSpace:
    """A numbered space; with a unit it is private to that unit's residents."""
    prop = _site(actor, property_id)
    clean = _label(number, _("A parking space's number"), 20)
    unit = get_unit(prop, unit_id) if unit_id is not None else None
    serial = station_serial.strip().upper()[:40]
    try:
        with transaction.atomic():
            space = ParkingSpace.objects.create(
                property=prop, number=clean, unit=unit, station_serial=serial
            )
            record(
                EventKind.PARKING_SPACE_ADDED,
                organization_id=prop.organization_id,
                property_id=prop.pk,
                actor=actor,
                summary=_("Parking space %(number)s added") % {"number": clean},
            )
    except IntegrityError:
        raise Conflict(
            _("This site already has a parking space %(number)s.") % {"number": clean},
            code="parking_space_exists",
        ) from None
    return space


@dataclass
class ResidentSpec:
    name: str
    email: str
    move_in: date
    unit_id: int | None = None
    unit_label: str = ""
    move_out: date | None = None


def _check_dates(move_in: date, move_out: date | None) -> None:
    if move_out is not None and move_out < move_in:
        raise InvalidInput(
            _("The move-out date cannot be before the move-in date."), code="invalid_dates"
        )


def _overlapping(unit: Unit, person: Person, spec: ResidentSpec, exclude: int | None) -> bool:
    rows = Residency.objects.filter(unit=unit, person=person)
    if exclude is not None:
        rows = rows.exclude(pk=exclude)
    for other in rows:
        ends_before = spec.move_out is not None and spec.move_out < other.move_in
        starts_after = other.move_out is not None and spec.move_in > other.move_out
        if not (ends_before or starts_after):
            return True
    return False


def _add(actor: User, prop: Property, spec: ResidentSpec, unit: Unit) -> Residency:
    _check_dates(spec.move_in, spec.move_out)
    if not spec.email.strip():
        raise InvalidInput(_("A resident needs an email address."), code="email_required")
    person = person_for(prop.organization_id, HolderSpec(name=spec.name, email=spec.email))
    if spec.name.strip() and person.name != spec.name.strip() and person.name == person.email:
        person.name = spec.name.strip()[:150]
        person.save(update_fields=["name"])
    if _overlapping(unit, person, spec, None):
        raise Conflict(
            _("%(name)s already lives in %(unit)s at those dates.")
            % {"name": person.name, "unit": unit.label},
            code="residency_overlaps",
        )
    return Residency.objects.create(
        unit=unit, person=person, move_in=spec.move_in, move_out=spec.move_out, created_by=actor
    )


def add_resident(actor: User, property_id: int, spec: ResidentSpec) -> Residency:
    prop = _site(actor, property_id)
    unit = get_unit(prop, spec.unit_id, spec.unit_label)
    with transaction.atomic():
        residency = _add(actor, prop, spec, unit)
        record(
            EventKind.RESIDENT_ADDED,
            organization_id=prop.organization_id,
            property_id=prop.pk,
            person=residency.person,
            actor=actor,
            summary=_("%(name)s lives in %(unit)s from %(day)s")
            % {"name": residency.person.name, "unit": unit.label, "day": spec.move_in.isoformat()},
        )
        _equipment_learns(prop)
    return residency


def get_residency(
    actor: User, residency_id: int, action: policy.Action = policy.Action.MANAGE_RESIDENTS
) -> Residency:
    residency = (
        Residency.objects.select_related("unit__property", "person").filter(pk=residency_id).first()
    )
    if residency is None:
        raise NotFound(_("Resident not found."), code="resident_not_found")
    policy.require(
        actor,
        action,
        residency.unit.property.organization_id,
        what=_("Resident"),
        property_id=residency.unit.property_id,
    )
    return residency


def change_residency(
    actor: User, residency_id: int, *, move_in: date | None = None, move_out: date | None
) -> Residency:
    """Set the move-out date (None: lives there still), and the move-in date."""
    with transaction.atomic():
        residency = get_residency(actor, residency_id)
        start = move_in or residency.move_in
        _check_dates(start, move_out)
        spec = ResidentSpec(name="", email="", move_in=start, move_out=move_out)
        if _overlapping(residency.unit, residency.person, spec, residency.pk):
            raise Conflict(
                _("%(name)s already lives in %(unit)s at those dates.")
                % {"name": residency.person.name, "unit": residency.unit.label},
                code="residency_overlaps",
            )
        residency.move_in, residency.move_out = start, move_out
        residency.save(update_fields=["move_in", "move_out"])
        prop = residency.unit.property
        record(
            EventKind.RESIDENT_CHANGED,
            organization_id=prop.organization_id,
            property_id=prop.pk,
            person=residency.person,
            actor=actor,
            summary=_("%(name)s in %(unit)s: %(start)s to %(end)s")
            % {
                "name": residency.person.name,
                "unit": residency.unit.label,
                "start": start.isoformat(),
                "end": move_out.isoformat() if move_out else "…",
            },
        )
        _equipment_learns(prop)
    return residency


# --- import from CSV -------------------------------------------------------------------------


@dataclass
class ImportResult:
    imported: list[Residency] = field(default_factory=list)
    units_added: list[str] = field(default_factory=list)


COLUMNS = ("name", "email", "unit", "move_in")


def csv_rows(text: str, columns: tuple[str, ...] = COLUMNS) -> list[tuple[int, list[str]]]:
    """The non-empty lines of a CSV text (comma, semicolon or tab), numbered
    from 1, their cells stripped; a first line naming ``columns`` is a header
    and left out."""
    sample = text[:2048]
    try:
        dialect: type[csv.Dialect] | csv.Dialect = csv.Sniffer().sniff(sample, delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    try:  # any line ending (a CR alone too: spreadsheets on a Mac)
        lines = [
            (number, [cell.strip() for cell in row])
            for number, row in enumerate(
                csv.reader(io.StringIO(text, newline=None), dialect), start=1
            )
            if any(cell.strip() for cell in row)
        ]
    except csv.Error:  # a field beyond the csv module's limit (128 KiB)
        raise InvalidInput(
            _("The text cannot be read as CSV lines; check that it is a CSV file."),
            code="invalid_csv",
        ) from None
    width = len(columns)
    if lines and [c.lower().replace("-", "_") for c in lines[0][1][:width]] == list(columns):
        lines = lines[1:]  # the header
    return lines


def import_residents(
    actor: User, property_id: int, text: str, *, add_missing_units: bool = False
) -> ImportResult:
    """Import residents from CSV lines ``name, email, unit, move_in`` (a header
    line with those names is skipped; comma, semicolon or tab). Every line is
    checked first; when one is wrong nothing is imported and the error names
    each wrong line. Units that do not exist are refused, or added with
    ``add_missing_units``."""
    prop = _site(actor, property_id)
    lines = csv_rows(text.lstrip("\ufeff"))
    if not lines:
        raise InvalidInput(_("The file has no residents in it."), code="empty_import")
    if len(lines) > MAX_IMPORT_LINES:
        raise InvalidInput(
            _("At most %(n)d lines can be imported at once.") % {"n": MAX_IMPORT_LINES},
            code="import_too_large",
        )
    units = {u.label: u for u in Unit.objects.filter(property=prop)}
    errors: list[dict[str, object]] = []
    specs: list[tuple[int, ResidentSpec]] = []
    seen: set[tuple[str, str]] = set()
    for number, cells in lines:
        problem = ""
        if len(cells) < 4:
            problem = _("expected 4 columns (name, email, unit, move-in), found %(n)d") % {
                "n": len(cells)
            }
        else:
            name, email, unit, moved = cells[:4]
            try:
                day = parse_date(moved) if moved else None
            except ValueError:  # well formed but no such day (2026-02-30)
                day = None
            email = email.lower()
            if not _is_email(email):
                problem = _("%(email)s is not an email address") % {"email": email or "''"}
            elif len(name) > 150:
                problem = _("the name is longer than 150 characters")
            elif not unit or len(unit) > 40:
                problem = _("the unit is missing or longer than 40 characters")
            elif unit not in units and not add_missing_units:
                problem = _("%(unit)s is not a unit of this site") % {"unit": unit}
            elif day is None:
                problem = _("the move-in date %(value)s is not a date like 2026-01-31") % {
                    "value": moved or "''"
                }
            elif (email, unit) in seen:
                problem = _("%(email)s is listed twice for %(unit)s") % {
                    "email": email,
                    "unit": unit,
                }
            else:
                seen.add((email, unit))
                specs.append(
                    (number, ResidentSpec(name=name, email=email, move_in=day, unit_label=unit))
                )
        if problem:
            errors.append({"line": number, "message": problem})
    if errors:
        raise InvalidInput(describe_errors(errors), code="import_refused", errors=errors)
    result = ImportResult()
    with transaction.atomic():
        for number, spec in specs:
            unit_obj = units.get(spec.unit_label)
            if unit_obj is None:  # get_or_create: someone may add it at the same moment
                unit_obj, made = Unit.objects.get_or_create(property=prop, label=spec.unit_label)
                units[spec.unit_label] = unit_obj
                if made:
                    result.units_added.append(spec.unit_label)
            try:
                result.imported.append(_add(actor, prop, spec, unit_obj))
            except (Conflict, InvalidInput) as exc:
                transaction.set_rollback(True)
                errors = [{"line": number, "message": exc.message}]
                raise InvalidInput(
                    describe_errors(errors), code="import_refused", errors=errors
                ) from None
        record(
            EventKind.RESIDENTS_IMPORTED,
            organization_id=prop.organization_id,
            property_id=prop.pk,
            actor=actor,
            summary=_("%(n)d residents imported") % {"n": len(result.imported)},
            data={"units_added": result.units_added},
        )
        _equipment_learns(prop)
    return result


def _is_email(value: str) -> bool:
    try:
        validate_email(value)
    except ValidationError:
        return False
    return True


def describe_errors(errors: list[dict[str, object]]) -> str:
    """The message of an import refused for its wrong lines (the first ten named)."""
    shown = "; ".join(
        _("line %(line)s: %(message)s") % {"line": e["line"], "message": e["message"]}
        for e in errors[:10]
    )
    more = len(errors) - 10
    if more > 0:
        shown += " " + _("(and %(n)d more)") % {"n": more}
    return _("Nothing was imported. %(errors)s") % {"errors": shown}


# --- the site's billing settings ---------------------------------------------------------


@dataclass
class ModeChange:
    """What changing the billing mode does: the badges that stop working on
    the site's laundry machines and charging stations (none are deleted)."""

    mode: str
    changed: bool
    badges_stopping: list[Badge] = field(default_factory=list)


def set_billing_mode(actor: User, property_id: int, mode: str, *, confirm: bool) -> ModeChange:
    """Change the site's billing mode (R47). Without ``confirm`` nothing is
    changed: the answer lists the badges that would stop working for laundry
    and charging (third-party badges, in a billing-and-payments site)."""
    from doorkeep.badges.selectors import third_party_badges_of_residents

    if mode not in BillingMode.values:
        raise InvalidInput(
            _("The billing mode is billing_and_payments or individual_statements."),
            code="invalid_billing_mode",
        )
    with transaction.atomic():
        prop = _site(actor, property_id)
        prop = Property.objects.select_for_update().get(pk=prop.pk)
        stopping = (
            third_party_badges_of_residents(prop)
            if mode == BillingMode.BILLING_AND_PAYMENTS and prop.billing_mode != mode
            else []
        )
        stopping = list(stopping)
        change = ModeChange(mode, False, stopping)
        if not confirm or prop.billing_mode == mode:
            return change
        before = prop.billing_mode
        prop.billing_mode = mode
        prop.save(update_fields=["billing_mode"])
        record(
            EventKind.BILLING_MODE_CHANGED,
            organization_id=prop.organization_id,
            property_id=prop.pk,
            actor=actor,
            summary=_("Billing mode: %(before)s → %(after)s")
            % {
                "before": BillingMode(before).label,
                "after": BillingMode(mode).label,
            },
            data={"before": before, "after": mode, "badges_stopping": len(stopping)},
        )
        _equipment_learns(prop)
        change.changed = True
    return change


def set_badge_price(actor: User, property_id: int, *, currency: str, price_minor: int) -> Property:
    """The site's currency and the price of an extra badge (R44)."""
    if currency not in Currency.values:
        raise InvalidInput(_("The currency is CHF or EUR."), code="invalid_currency")
    if not 0 <= price_minor <= 100_000:
        raise InvalidInput(
            _("The price of a badge is between 0 and 1,000.00."), code="invalid_price"
        )
    prop = _site(actor, property_id)
    if (prop.currency, prop.extra_badge_price_minor) == (currency, price_minor):
        return prop
    before = f"{prop.currency} {prop.extra_badge_price_minor / 100:.2f}"
    prop.currency, prop.extra_badge_price_minor = currency, price_minor
    with transaction.atomic():
        prop.save(update_fields=["currency", "extra_badge_price_minor"])
        record(
            EventKind.BADGE_PRICE_CHANGED,
            organization_id=prop.organization_id,
            property_id=prop.pk,
            actor=actor,
            summary=_("Price of an extra badge: %(before)s → %(after)s")
            % {"before": before, "after": f"{currency} {price_minor / 100:.2f}"},
            data={"currency": currency, "price_minor": price_minor},
        )
    return prop
