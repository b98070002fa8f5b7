"""Units, parking spaces, residents and the site's billing settings in the
API. Changes are for lock owners and building managers (policy action
MANAGE_RESIDENTS); the lists are also for read-only collaborators
(VIEW_RESIDENTS). The residents list is personal data, so a plain member
gets 403 and anyone outside the organization 404."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal

from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext as _
from ninja import Router, Schema, Status
from ninja.params import functions as param
from pydantic import Field

from doorkeep import policy
from doorkeep.api.util import actor
from doorkeep.core.errors import Conflict, InvalidInput
from doorkeep.properties.models import BillingMode, Property
from doorkeep.properties.services import get_property
from doorkeep.residents import selectors, services
from doorkeep.residents.models import ParkingSpace, Residency, Unit

router = Router(tags=["residents"])

Id = Annotated[int, Field(ge=1, le=2**63 - 1)]


class UnitOut(Schema):
    id: int
    property_id: int
    label: str
    created_at: datetime


class UnitIn(Schema):
    label: str = Field(min_length=1, max_length=40, description="As on the door: A-12, 3rd left")


class ParkingSpaceOut(Schema):
    id: int
    property_id: int
    number: str
    unit_id: int | None = Field(description="The unit the space belongs to; null: shared")
    unit: str | None
    station_serial: str = Field(description="The charging station at the space, if any")


class ParkingSpaceIn(Schema):
    number: str = Field(min_length=1, max_length=20)
    unit_id: Id | None = Field(
        default=None, description="A unit of this site: the space is private to its residents"
    )
    station_serial: str = Field(default="", max_length=40)


class ResidentOut(Schema):
    id: int = Field(description="The residency's id (PATCH /residents/{id})")
    property_id: int
    unit_id: int
    unit: str
    person_id: int
    name: str
    email: str
    has_account: bool = Field(description="The person has a Doorkeep account (for the portal)")
    move_in: date
    move_out: date | None = Field(description="The last day lived there; null: lives there")


class ResidentIn(Schema):
    name: str = Field(default="", max_length=150)
    email: str = Field(max_length=254)
    unit_id: Id | None = Field(default=None, description="The unit, by id …")
    unit: str = Field(default="", max_length=40, description="… or by its label")
    move_in: date
    move_out: date | None = None


class ResidencyPatch(Schema):
    move_in: date | None = None
    move_out: date | None = Field(
        default=None, description="null: lives there still; left out: unchanged"
    )


class ImportIn(Schema):
    csv: str = Field(
        max_length=2_000_000,
        description="Lines `name, email, unit, move_in` (comma, semicolon or tab; "
        "a header line with those names is skipped)",
    )
    add_missing_units: bool = Field(
        default=False, description="Add units the file names that do not exist (else refused)"
    )


class ImportOut(Schema):
    imported: int
    units_added: list[str]


class BillingOut(Schema):
    property_id: int
    billing_mode: str = Field(description="billing_and_payments or individual_statements")
    currency: str
    extra_badge_price_minor: int = Field(description="In cents of the currency")


class BillingIn(Schema):
    billing_mode: Literal["billing_and_payments", "individual_statements"] | None = None
    currency: Literal["CHF", "EUR"] | None = None
    extra_badge_price_minor: int | None = Field(default=None, ge=0, le=100_000)
    confirm: bool = Field(
        default=False, description="Needed to change the billing mode (see the 409 answer)"
    )


def unit_out(unit: Unit) -> dict[str, Any]:
    return {
        "id": unit.pk,
        "property_id": unit.property_id,
        "label": unit.label,
        "created_at": unit.created_at,
    }


def space_out(space: ParkingSpace) -> dict[str, Any]:
    return {
        "id": space.pk,
        "property_id": space.property_id,
        "number": space.number,
        "unit_id": space.unit_id,
        "unit": space.unit.label if space.unit else None,
        "station_serial": space.station_serial,
    }


def resident_out(residency: Residency) -> dict[str, Any]:
    return {
        "id": residency.pk,
        "property_id": residency.unit.property_id,
        "unit_id": residency.unit_id,
        "unit": residency.unit.label,
        "person_id": residency.person_id,
        "name": residency.person.name,
        "email": residency.person.email,
        "has_account": residency.person.user_id is not None,
        "move_in": residency.move_in,
        "move_out": residency.move_out,
    }


def billing_out(prop: Property) -> dict[str, Any]:
    return {
        "property_id": prop.pk,
        "billing_mode": prop.billing_mode,
        "currency": prop.currency,
        "extra_badge_price_minor": prop.extra_badge_price_minor,
    }


def _site(
    request: HttpRequest, property_id: int, action: policy.Action = policy.Action.MANAGE_RESIDENTS
) -> Property:
    return get_property(actor(request), property_id, action)


VIEW = policy.Action.VIEW_RESIDENTS


# --- units and parking spaces ------------------------------------------------------------


@router.get("properties/{property_id}/units", response=list[UnitOut], summary="A site's units")
def list_units(request: HttpRequest, property_id: int) -> list[dict[str, Any]]:
    return [unit_out(u) for u in Unit.objects.filter(property=_site(request, property_id, VIEW))]


@router.post("properties/{property_id}/units", response={201: UnitOut}, summary="Add a unit")
def add_unit(request: HttpRequest, property_id: int, body: UnitIn) -> Status[dict[str, Any]]:
    """Errors: `unit_exists` (409)."""
    return Status(201, unit_out(services.add_unit(actor(request), property_id, body.label)))


@router.get(
    "properties/{property_id}/parking-spaces",
    response=list[ParkingSpaceOut],
    summary="A site's parking spaces",
)
def list_spaces(request: HttpRequest, property_id: int) -> list[dict[str, Any]]:
    spaces = ParkingSpace.objects.filter(property=_site(request, property_id, VIEW))
    return [space_out(s) for s in spaces.select_related("unit")]


@router.post(
    "properties/{property_id}/parking-spaces",
    response={201: ParkingSpaceOut},
    summary="Add a parking space",
)
def add_space(
    request: HttpRequest, property_id: int, body: ParkingSpaceIn
) -> Status[dict[str, Any]]:
    """A space with a `unit_id` is private to that unit's residents (its
    charging station serves only them). Errors: `unit_not_found` (404: not a
    unit of this site), `parking_space_exists` (409)."""
    space = services.add_parking_space(
        actor(request),
        property_id,
        body.number,
        unit_id=body.unit_id,
        station_serial=body.station_serial,
    )
    return Status(201, space_out(space))


# --- residents -------------------------------------------------------------------------


@router.get(
    "properties/{property_id}/residents", response=list[ResidentOut], summary="A site's residents"
)
def list_residents(
    request: HttpRequest,
    property_id: int,
    on: date | None = None,
    everyone: bool = param.Query(False, alias="all"),
) -> list[dict[str, Any]]:
    """The residents on a day (`on`; default today at the site), or with
    `all=true` every residency, past and future ones too."""
    prop = _site(request, property_id, VIEW)
    rows: QuerySet[Residency]
    if everyone:
        rows = Residency.objects.filter(unit__property=prop).select_related("unit", "person")
    else:
        rows = selectors.residencies_on(prop, on or services.site_today(prop))
    return [resident_out(r) for r in rows.order_by("unit__label", "move_in", "id")]


@router.post(
    "properties/{property_id}/residents", response={201: ResidentOut}, summary="Add a resident"
)
def add_resident(
    request: HttpRequest, property_id: int, body: ResidentIn
) -> Status[dict[str, Any]]:
    """A person (found or added by email address, linked to the account with
    that address) living in a unit, named by `unit_id` or `unit` (its label),
    from `move_in` to `move_out` (the last day; null: lives there). Errors:
    `unit_not_found` (404), `residency_overlaps` (409), `invalid_dates`,
    `email_required`, `invalid_email` (400)."""
    _site(request, property_id)  # an outsider is told 404 before anything about the body
    if body.unit_id is None and not body.unit.strip():
        raise InvalidInput(_("Say which unit: unit_id or unit."), code="unit_required")
    spec = services.ResidentSpec(
        name=body.name,
        email=body.email,
        move_in=body.move_in,
        unit_id=body.unit_id,
        unit_label=body.unit,
        move_out=body.move_out,
    )
    return Status(201, resident_out(services.add_resident(actor(request), property_id, spec)))


@router.patch("residents/{residency_id}", response=ResidentOut, summary="Change move-in or out")
def change_resident(
    request: HttpRequest, residency_id: int, body: ResidencyPatch
) -> dict[str, Any]:
    """Set the move-out date (null: lives there still) or the move-in date; a
    field left out keeps its value. Errors: `invalid_dates` (400),
    `residency_overlaps` (409)."""
    user = actor(request)
    if "move_out" in body.model_fields_set:
        move_out = body.move_out
    else:
        move_out = services.get_residency(user, residency_id).move_out
    residency = services.change_residency(
        user, residency_id, move_in=body.move_in, move_out=move_out
    )
    return resident_out(residency)


@router.post(
    "properties/{property_id}/residents/import",
    response=ImportOut,
    summary="Import residents from CSV",
)
def import_residents(request: HttpRequest, property_id: int, body: ImportIn) -> dict[str, Any]:
    """Every line is checked first: when one is wrong nothing is imported and
    the answer is 400 `import_refused` with `details.errors`, a list of
    `{line, message}`. Also `empty_import`, `import_too_large` (400)."""
    result = services.import_residents(
        actor(request), property_id, body.csv, add_missing_units=body.add_missing_units
    )
    return {"imported": len(result.imported), "units_added": result.units_added}


# --- billing -------------------------------------------------------------------------------


@router.get(
    "properties/{property_id}/billing", response=BillingOut, summary="The site's billing settings"
)
def get_billing(request: HttpRequest, property_id: int) -> dict[str, Any]:
    return billing_out(_site(request, property_id, VIEW))


@router.put(
    "properties/{property_id}/billing", response=BillingOut, summary="Set the billing settings"
)
def put_billing(request: HttpRequest, property_id: int, body: BillingIn) -> dict[str, Any]:
    """The billing mode (R47), the currency and the price of an extra badge
    (R44); a field left out keeps its value. Changing the billing mode needs
    `"confirm": true`: without it nothing changes and the answer is 409
    `confirm_billing_mode`, whose `details.badges_stopping` lists the badges
    that would stop working on the site's laundry machines and charging
    stations (`id`, `uid`, `person`)."""
    user = actor(request)
    with transaction.atomic():
        prop = _site(request, property_id)
        if body.billing_mode is not None and body.billing_mode != prop.billing_mode:
            change = services.set_billing_mode(
                user, property_id, body.billing_mode, confirm=body.confirm
            )
            if not change.changed:
                raise _confirm_first(change)
        if body.currency is not None or body.extra_badge_price_minor is not None:
            price = body.extra_badge_price_minor
            services.set_badge_price(
                user,
                property_id,
                currency=body.currency or prop.currency,
                price_minor=prop.extra_badge_price_minor if price is None else price,
            )
        prop.refresh_from_db()
    return billing_out(prop)


def _confirm_first(change: services.ModeChange) -> Conflict:
    stopping = [{"id": b.pk, "uid": b.uid, "person": b.person.name} for b in change.badges_stopping]
    return Conflict(
        _(
            "Changing the billing mode to “%(mode)s” needs confirming (send confirm: true). "
            "Badges that would stop working on the site's laundry machines and charging "
            "stations: %(n)d."
        )
        % {"mode": BillingMode(change.mode).label, "n": len(stopping)},
        code="confirm_billing_mode",
        billing_mode=change.mode,
        badges_stopping=stopping,
    )
