"""Charging-station installations in the API (R49): the resident asks, the
owner's side decides and hands the work to the platform, the platform
schedules it and records the installed station. Each person lists the
installations they may follow."""

from __future__ import annotations

from datetime import date, datetime

from django.http import HttpRequest
from ninja import Router, Schema, Status
from pydantic import Field

from doorkeep.api.util import actor
from doorkeep.installations import hooks, services
from doorkeep.installations.models import Installation

router = Router(tags=["installations"])


class ElectricianOut(Schema):
    name: str
    company: str
    email: str
    phone: str


class InstallationOut(Schema):
    id: int
    status: str = Field(
        description="requested, approved, declined, organizing, coordinating, scheduled, "
        "installed or cancelled"
    )
    property_id: int
    property: str
    parking_space: str
    person: str
    wished_power_kw: float
    notes: str
    decline_reason: str
    electrician: ElectricianOut | None
    scheduled_for: date | None
    station_serial: str
    station_password: str | None = Field(
        None,
        description="When the installed station was registered at this step: its password, "
        "shown only in this answer (configure the station with it)",
    )
    created_at: datetime
    decided_at: datetime | None
    handed_at: datetime | None
    scheduled_at: datetime | None
    installed_at: datetime | None
    cancelled_at: datetime | None


class InstallationIn(Schema):
    property_id: int = Field(ge=1, le=2**63 - 1)
    parking_space: str = Field(min_length=1, max_length=20)
    wished_power_kw: float = Field(description="For example 11 (kW)")
    notes: str = Field(default="", max_length=500)


class DecisionIn(Schema):
    approve: bool
    reason: str = Field(default="", max_length=300, description="Required when declining")


class ElectricianIn(Schema):
    name: str = Field(max_length=150)
    company: str = Field(default="", max_length=150)
    email: str = Field(default="", max_length=254)
    phone: str = Field(default="", max_length=40)


class HandOverIn(Schema):
    electrician: ElectricianIn | None = Field(
        default=None,
        description="The owner's own electrician, for the platform to coordinate with; "
        "none: the platform organizes the installation",
    )


class ScheduleIn(Schema):
    day: date


class InstalledIn(Schema):
    station_serial: str = Field(min_length=1, max_length=40)


def out(item: Installation) -> dict[str, object]:
    body = hooks.data(item)
    return {
        **{k: getattr(item, k) for k in ("id", "status", "property_id", "notes")},
        "property": item.property.name,
        "parking_space": item.parking_space.number,
        "person": item.person.name,
        "wished_power_kw": item.wished_power_w / 1000,
        "decline_reason": item.decline_reason,
        "electrician": body["electrician"],
        "scheduled_for": item.scheduled_for,
        "station_serial": item.station_serial,
        "station_password": getattr(item, "station_password", None),
        **{
            k: getattr(item, k)
            for k in (
                "created_at",
                "decided_at",
                "handed_at",
                "scheduled_at",
                "installed_at",
                "cancelled_at",
            )
        },
    }


@router.get("installations", response=list[InstallationOut], summary="Installations I follow")
def list_installations(
    request: HttpRequest, property_id: int | None = None
) -> list[dict[str, object]]:
    rows = services.visible_to(actor(request))
    if property_id is not None:
        rows = rows.filter(property_id=property_id)
    return [out(item) for item in rows[:500]]


@router.post("installations", response={201: InstallationOut}, summary="Ask for a charging station")
def request_installation(request: HttpRequest, body: InstallationIn) -> Status[dict[str, object]]:
    item = services.request_installation(
        actor(request),
        body.property_id,
        parking_space=body.parking_space,
        wished_power_kw=body.wished_power_kw,
        notes=body.notes,
    )
    return Status(201, out(item))


@router.get("installations/{installation_id}", response=InstallationOut, summary="One installation")
def get_installation(request: HttpRequest, installation_id: int) -> dict[str, object]:
    return out(services.get_installation(actor(request), installation_id))


@router.post(
    "installations/{installation_id}/decision",
    response=InstallationOut,
    summary="Approve or decline (owner, building manager)",
)
def decide(request: HttpRequest, installation_id: int, body: DecisionIn) -> dict[str, object]:
    return out(
        services.decide(actor(request), installation_id, approve=body.approve, reason=body.reason)
    )


@router.post(
    "installations/{installation_id}/hand-over",
    response=InstallationOut,
    summary="Ask the platform to organize it, or to coordinate with your electrician",
)
def hand_over(request: HttpRequest, installation_id: int, body: HandOverIn) -> dict[str, object]:
    who = services.Electrician(**body.electrician.model_dump()) if body.electrician else None
    return out(services.hand_over(actor(request), installation_id, electrician=who))


@router.post(
    "installations/{installation_id}/schedule",
    response=InstallationOut,
    summary="Set the installation day (platform operator or owner)",
)
def schedule(request: HttpRequest, installation_id: int, body: ScheduleIn) -> dict[str, object]:
    return out(services.schedule(actor(request), installation_id, body.day))


@router.post(
    "installations/{installation_id}/installed",
    response=InstallationOut,
    summary="Record the installed station (platform operator or owner)",
)
def installed(request: HttpRequest, installation_id: int, body: InstalledIn) -> dict[str, object]:
    return out(
        services.complete(actor(request), installation_id, station_serial=body.station_serial)
    )


@router.post("installations/{installation_id}/cancel", response=InstallationOut, summary="Cancel")
def cancel(request: HttpRequest, installation_id: int) -> dict[str, object]:
    return out(services.cancel(actor(request), installation_id))
