"""Laundry machines in the API: a site's machines and their live state,
registering them (the device secret is in the answer once), changing and
removing them, a new secret, the cycles of a site and of a machine, the
machines a resident may use, and a resident's start from the portal.

Machines and cycles are for the site's lock owners, building managers and
read-only collaborators; changes for owners and managers (a plain member
gets 403 with the reason, anyone outside the organization 404). A start
answers once the machine said yes, or with an error saying why not:
`laundry_refused` (403), `machine_busy`, `machine_out_of_order`,
`machine_rejected` (409), `machine_offline` (503), `machine_timeout` (504)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from django.db.models import QuerySet
from django.http import HttpRequest
from ninja import Query, Router, Schema, Status
from pydantic import Field

from doorkeep.api.util import actor
from doorkeep.gateway.api import ErrorOut
from doorkeep.laundry import services
from doorkeep.laundry.models import Cycle, Machine

router = Router(tags=["laundry machines"])

Id = Annotated[int, Field(ge=1, le=2**63 - 1)]

ERRORS: dict[int, type[Schema]] = {400: ErrorOut, 403: ErrorOut, 404: ErrorOut, 409: ErrorOut}
START_ERRORS: dict[int, type[Schema]] = {**ERRORS, 503: ErrorOut, 504: ErrorOut}


# --- schemas ----------------------------------------------------------------------------------


class ListStateOut(Schema):
    state: str = Field(
        description="synced: the controller holds the platform's list of badges; pending: a "
        "newer list is on its way (or it is offline); failed: the last push was not acknowledged"
    )
    list_version: int
    acked_version: int
    last_push_at: datetime | None
    last_error: str


class MachineStatusOut(Schema):
    state: str = Field(description="free, running, out_of_order, or offline")
    reported_state: str = Field(description="What the controller last reported")
    state_at: datetime | None
    online: bool
    programs: list[str] = Field(description="The programs it offers, as it reported them")
    firmware: str
    connected_at: datetime | None
    last_seen_at: datetime | None
    clock_offset_ms: int | None
    list: ListStateOut


class MachineOut(Schema):
    id: int
    property_id: int
    serial: str = Field(description="The controller's serial number")
    kind: str = Field(description="washer or dryer")
    name: str
    label: str = Field(description="The name, or the serial when it has none")
    created_at: datetime
    secret_set_at: datetime
    gateway_url: str = Field(description="The address the controller connects to")
    status: MachineStatusOut


class MachineCreatedOut(MachineOut):
    secret: str = Field(description="The controller's device secret, shown only this once")


class MachineIn(Schema):
    serial: str = Field(max_length=64, description="4 to 32 letters, digits and dashes")
    kind: str = Field(default="washer", description="washer or dryer")
    name: str = Field(default="", max_length=100)


class MachinePatch(Schema):
    name: str | None = Field(default=None, max_length=100)
    kind: str | None = Field(default=None, description="washer or dryer")


class SecretOut(Schema):
    secret: str = Field(description="The new device secret, shown only this once")
    gateway_url: str
    note: str


class CycleOut(Schema):
    id: int
    property_id: int
    machine_id: int
    machine: str
    seq: int = Field(description="The controller's own number for the cycle")
    program: str
    badge_id: int | None
    tag: str = Field(description="The UID of the badge that released the machine")
    person_id: int | None
    person: str | None
    unit_id: int | None
    unit: str | None = Field(description="The unit the person lived in that day")
    remote: bool = Field(description="Started from the portal")
    started_at: datetime | None
    ended_at: datetime | None
    running: bool
    energy_wh: int | None
    review: str = Field(
        description="Why it needs a look, else empty: end_without_start, not_authorized"
    )


class CycleQuery(Schema):
    since: datetime | None = Field(None, description="Started from this moment (inclusive)")
    until: datetime | None = Field(None, description="Started before this moment")
    limit: int = Field(100, ge=1, le=1000)
    offset: int = Field(0, ge=0)


class MyMachineOut(Schema):
    id: int
    property_id: int
    site: str
    kind: str
    label: str
    state: str = Field(description="free, running, out_of_order, or offline")
    programs: list[str]


class StartIn(Schema):
    machine_id: Id
    program: str = Field(
        default="", max_length=40, description="One of its programs; empty: the machine's default"
    )


class StartOut(Schema):
    machine_id: int
    request_id: str = Field(description="The start's id; the cycle that follows is yours")
    program: str


# --- helpers -----------------------------------------------------------------------------------


def machine_out(machine: Machine) -> dict[str, Any]:
    return {
        "id": machine.pk,
        "property_id": machine.property_id,
        "serial": machine.serial,
        "kind": machine.kind,
        "name": machine.name,
        "label": machine.label,
        "created_at": machine.created_at,
        "secret_set_at": machine.secret_set_at,
        "gateway_url": services.gateway_url(),
        "status": services.machine_status(machine),
    }


def cycle_out(cycle: Cycle) -> dict[str, Any]:
    return {
        "id": cycle.pk,
        "property_id": cycle.property_id,
        "machine_id": cycle.machine_id,
        "machine": cycle.machine.label,
        "seq": cycle.seq,
        "program": cycle.program,
        "badge_id": cycle.badge_id,
        "tag": cycle.tag,
        "person_id": cycle.person_id,
        "person": cycle.person.name if cycle.person else None,
        "unit_id": cycle.unit_id,
        "unit": cycle.unit.label if cycle.unit else None,
        "remote": cycle.remote,
        "started_at": cycle.started_at,
        "ended_at": cycle.ended_at,
        "running": cycle.started_at is not None and cycle.ended_at is None,
        "energy_wh": cycle.energy_wh,
        "review": cycle.review,
    }


def _aware(moment: datetime | None) -> datetime | None:
    if moment is not None and moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment


def _page(rows: QuerySet[Cycle], query: CycleQuery) -> list[dict[str, Any]]:
    return [cycle_out(c) for c in rows[query.offset : query.offset + query.limit]]


# --- machines ---------------------------------------------------------------------------------


@router.get(
    "properties/{property_id}/machines",
    response=list[MachineOut],
    summary="A site's laundry machines",
)
def list_machines(request: HttpRequest, property_id: int) -> list[dict[str, Any]]:
    """Each with its live state (`status.state`: free, running, out_of_order
    or offline) and its controller's connection and list of badges. Removed
    machines are not listed."""
    return [machine_out(m) for m in services.machines_of_site(actor(request), property_id)]


@router.post(
    "properties/{property_id}/machines",
    response={201: MachineCreatedOut, **ERRORS},
    summary="Register a laundry machine",
)
def register_machine(
    request: HttpRequest, property_id: int, body: MachineIn
) -> Status[dict[str, Any]]:
    """By its controller's serial. The answer holds the device secret, shown
    only this once: enter it in the controller (docs/protocol/laundry-v1.md).
    Errors: `invalid_serial`, `invalid_kind`, `name_too_long` (400),
    `machine_exists` (409)."""
    spec = services.MachineSpec(serial=body.serial, kind=body.kind, name=body.name)
    machine, secret = services.register_machine(actor(request), property_id, spec)
    return Status(201, {**machine_out(machine), "secret": secret})


@router.get("machines/{machine_id}", response=MachineOut, summary="A laundry machine, live")
def get_machine(request: HttpRequest, machine_id: int) -> dict[str, Any]:
    return machine_out(services.get_machine(actor(request), machine_id))


@router.patch(
    "machines/{machine_id}",
    response={200: MachineOut, **ERRORS},
    summary="Rename a laundry machine, or say what it is",
)
def change_machine(request: HttpRequest, machine_id: int, body: MachinePatch) -> dict[str, Any]:
    """A field left out keeps its value. Errors: `invalid_kind`,
    `name_too_long` (400)."""
    given = body.model_fields_set
    machine = services.change_machine(
        actor(request),
        machine_id,
        name=body.name if "name" in given else None,
        kind=body.kind if "kind" in given and body.kind is not None else None,
    )
    return machine_out(machine)


@router.delete("machines/{machine_id}", response={204: None}, summary="Remove a laundry machine")
def remove_machine(request: HttpRequest, machine_id: int) -> Status[None]:
    """It is no longer listed, its connection is closed and new ones are
    refused; its cycles are kept."""
    services.remove_machine(actor(request), machine_id)
    return Status(204, None)


@router.post(
    "machines/{machine_id}/secret",
    response={200: SecretOut, **ERRORS},
    summary="Issue a new device secret for a laundry machine",
)
def rotate_secret(request: HttpRequest, machine_id: int) -> dict[str, Any]:
    """The controller's connection is closed at once and only the new secret
    is accepted from then on. Shown only in this answer."""
    secret = services.rotate_secret(actor(request), machine_id)
    return {
        "secret": secret,
        "gateway_url": services.gateway_url(),
        "note": "shown once; the controller needs it to connect again",
    }


# --- cycles -----------------------------------------------------------------------------------


@router.get(
    "machines/{machine_id}/cycles", response=list[CycleOut], summary="A laundry machine's cycles"
)
def machine_cycles(
    request: HttpRequest, machine_id: int, query: Query[CycleQuery]
) -> list[dict[str, Any]]:
    """Newest first (a removed machine's too)."""
    rows = services.cycles(
        actor(request),
        machine_id=machine_id,
        since=_aware(query.since),
        until=_aware(query.until),
    )
    return _page(rows, query)


@router.get(
    "properties/{property_id}/cycles",
    response=list[CycleOut],
    summary="A site's laundry cycles",
)
def site_cycles(
    request: HttpRequest, property_id: int, query: Query[CycleQuery]
) -> list[dict[str, Any]]:
    """Newest first, of every machine of the site (removed ones too), each
    with whom it belongs to (the badge's holder, or who started it from the
    portal) and their unit that day, its program and energy."""
    rows = services.cycles(
        actor(request),
        property_id=property_id,
        since=_aware(query.since),
        until=_aware(query.until),
    )
    return _page(rows, query)


# --- a resident --------------------------------------------------------------------------------


@router.get("me/machines", response=list[MyMachineOut], summary="The laundry machines I may use")
def my_machines(request: HttpRequest) -> list[dict[str, Any]]:
    """The machines of the sites where you live today, with their state."""
    return [
        {
            "id": machine.pk,
            "property_id": site.prop.pk,
            "site": site.prop.name,
            "kind": machine.kind,
            "label": machine.label,
            "state": services.live_state(machine),
            "programs": list(machine.programs or []),
        }
        for site in services.machines_for_resident(actor(request))
        for machine in site.machines
    ]


@router.get("me/cycles", response=list[CycleOut], summary="My laundry cycles")
def my_cycles(request: HttpRequest, query: Query[CycleQuery]) -> list[dict[str, Any]]:
    """The cycles started with your badges or by you from the portal, at
    every site, newest first."""
    return _page(services.my_cycles(actor(request)), query)


@router.post(
    "me/laundry",
    response={200: StartOut, **START_ERRORS},
    summary="Start a laundry machine",
)
def start_machine(request: HttpRequest, body: StartIn) -> dict[str, Any]:
    """For a resident of the machine's site (404 for anyone else): the
    machine is asked to start, if the site's rule lets your badge use it now
    and it is free. Errors: `laundry_refused` (403, the reason in
    `details.reason`: `badge_lost`, `platform_badges_only`…), `no_badge`,
    `machine_busy`, `machine_out_of_order`, `machine_rejected` (409),
    `invalid_program` (400), `machine_offline` (503), `machine_timeout` (504)."""
    answer = services.start_machine(actor(request), body.machine_id, program=body.program)
    return {
        "machine_id": body.machine_id,
        "request_id": answer.request_id,
        "program": answer.program,
    }
