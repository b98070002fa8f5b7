"""Charging stations in the API: a site's stations and their live state,
registering them (the password is in the answer once), commands, charging
sessions per station, per site and per resident (JSON and CSV), and a
resident's own start and stop.

Stations and sessions are for the site's lock owners, building managers and
read-only collaborators; changes and commands for owners and managers (a
plain member gets 403 with the reason, anyone outside the organization
404). A command answers with the station's own answer, or an error saying
why there is none: `station_offline` (503), `station_timeout` (504),
`station_rejected` (409)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from ninja import Query, Router, Schema, Status
from pydantic import Field

from doorkeep.api.util import actor
from doorkeep.chargers import selectors, services
from doorkeep.chargers.models import ChargingSession, Station
from doorkeep.gateway.api import ErrorOut

router = Router(tags=["charging stations"])

Id = Annotated[int, Field(ge=1, le=2**63 - 1)]
Connector = Annotated[int, Field(ge=0, le=services.MAX_CONNECTOR)]

ERRORS: dict[int, type[Schema]] = {400: ErrorOut, 403: ErrorOut, 404: ErrorOut, 409: ErrorOut}
COMMAND_ERRORS: dict[int, type[Schema]] = {**ERRORS, 503: ErrorOut, 504: ErrorOut}


# --- schemas ----------------------------------------------------------------------------------


class RunningOut(Schema):
    id: int = Field(description="The charging session's id")
    transaction_id: str
    person_id: int | None
    person: str | None
    unit: str | None
    started_at: datetime | None
    energy_wh: int | None = Field(description="Charged so far, in Wh (from the last reading)")
    power_w: int | None = Field(description="The last power the station reported, in W")
    remote: bool = Field(description="Started from the platform (portal or command)")


class ConnectorOut(Schema):
    number: int = Field(description="1.6 connectorId or 2.0.1 EVSE id; 0 is the whole station")
    status: str = Field(description="As the station reported it: Available, Charging, Faulted…")
    error_code: str
    updated_at: datetime | None
    session: RunningOut | None = Field(description="The session running on it")


class LocalListOut(Schema):
    state: str = Field(
        description="synced: the station holds the platform's list of badges; pending: a newer "
        "list is on its way (or the station is offline); failed: the last update was not taken"
    )
    list_version: int = Field(description="The version of the list on the platform")
    acked_version: int = Field(description="The version the station acknowledged")
    last_push_at: datetime | None
    last_error: str


class StationStatusOut(Schema):
    online: bool
    connected_at: datetime | None
    last_seen_at: datetime | None
    last_heartbeat_at: datetime | None
    last_boot_at: datetime | None
    ocpp_version: str = Field(description="1.6 or 2.0.1, as negotiated at its last connection")
    vendor: str
    model: str
    serial_number: str
    firmware: str
    connectors: list[ConnectorOut]
    local_list: LocalListOut


class StationOut(Schema):
    id: int
    property_id: int
    charge_point_id: str = Field(description="The last part of the address it dials")
    name: str
    label: str = Field(description="The name, or the charge point id when it has none")
    parking_space_id: int | None
    parking_space: str | None = Field(description="The space's number; null: at none")
    private: bool = Field(description="At a unit's parking space: only its residents charge")
    unit: str | None = Field(description="The unit the station is private to")
    ocpp_url: str = Field(description="ws:// or wss:// address to set in the station")
    created_at: datetime
    password_set_at: datetime
    status: StationStatusOut


class StationCreatedOut(StationOut):
    password: str = Field(description="The station's password, shown only this once")


class StationIn(Schema):
    charge_point_id: str = Field(
        max_length=100, description="Up to 48 letters, digits, dots, dashes and underscores"
    )
    name: str = Field(default="", max_length=100)
    parking_space: str = Field(
        default="", max_length=20, description="The number of the space it stands at, if any"
    )
    parking_space_id: Id | None = Field(default=None, description="Or the space by its id")


class StationPatch(Schema):
    name: str | None = Field(default=None, max_length=100)
    parking_space: str | None = Field(
        default=None,
        max_length=20,
        description="The space's number; null or empty: at no space; left out: unchanged",
    )
    parking_space_id: Id | None = Field(default=None, description="Or the space by its id")


class PasswordOut(Schema):
    password: str = Field(description="The station's new password, shown only this once")
    ocpp_url: str
    note: str


class CommandIn(Schema):
    action: Literal[
        "reset", "unlock_connector", "change_availability", "remote_start", "remote_stop"
    ]
    hard: bool | None = Field(default=None, description="reset: a hard reset (default soft)")
    connector: Connector | None = Field(
        default=None,
        description="unlock_connector, remote_start (default 1); change_availability "
        "(default 0: the whole station)",
    )
    available: bool | None = Field(default=None, description="change_availability")
    id_tag: str | None = Field(
        default=None, max_length=40, description="remote_start: the badge's UID"
    )
    session_id: Id | None = Field(default=None, description="remote_stop: the session …")
    transaction_id: str | None = Field(
        default=None, max_length=36, description="… or the station's transaction id"
    )


class CommandOut(Schema):
    station_id: int
    action: str
    status: str = Field(
        description="The station's answer: Accepted, Rejected, Scheduled, Unlocked, "
        "UnlockFailed, NotSupported…"
    )
    accepted: bool = Field(description="The station does it (Accepted, Scheduled, Unlocked)")


class SessionOut(Schema):
    id: int
    property_id: int
    station_id: int
    station: str
    charge_point_id: str
    connector: int
    transaction_id: str
    id_tag: str = Field(description="The badge UID the station sent")
    badge_id: int | None
    person_id: int | None
    person: str | None
    unit_id: int | None
    unit: str | None = Field(description="The unit the person lived in that day")
    started_at: datetime | None
    stopped_at: datetime | None
    running: bool
    meter_start_wh: int | None
    meter_stop_wh: int | None
    energy_wh: int | None = Field(description="Charged, in Wh (so far, while it runs)")
    power_w: int | None
    stop_reason: str
    review: str = Field(
        description="Why it needs a look, else empty: stop_without_start, meter_backwards, "
        "not_authorized"
    )
    remote: bool


class StartIn(Schema):
    station_id: Id
    connector: Annotated[int, Field(ge=1, le=services.MAX_CONNECTOR)] = 1


class StartOut(Schema):
    station_id: int
    connector: int
    status: str = Field(description="The station's answer: Accepted or Rejected")
    accepted: bool


class StopOut(Schema):
    session_id: int
    status: str = Field(description="The station's answer: Accepted or Rejected")
    accepted: bool


class SessionQuery(Schema):
    since: datetime | None = Field(None, description="Started from this moment (inclusive)")
    until: datetime | None = Field(None, description="Started before this moment")
    limit: int = Field(100, ge=1, le=1000)
    offset: int = Field(0, ge=0)


# --- helpers -----------------------------------------------------------------------------------


def station_out(station: Station, status: dict[str, Any] | None = None) -> dict[str, Any]:
    space = station.parking_space
    return {
        "id": station.pk,
        "property_id": station.property_id,
        "charge_point_id": station.charge_point_id,
        "name": station.name,
        "label": station.label,
        "parking_space_id": station.parking_space_id,
        "parking_space": space.number if space else None,
        "private": station.private,
        "unit": space.unit.label if space and space.unit else None,
        "ocpp_url": selectors.ocpp_url(station),
        "created_at": station.created_at,
        "password_set_at": station.password_set_at,
        "status": status if status is not None else selectors.station_status(station),
    }


def session_out(session: ChargingSession) -> dict[str, Any]:
    return {
        "id": session.pk,
        "property_id": session.property_id,
        "station_id": session.station_id,
        "station": session.station.label,
        "charge_point_id": session.station.charge_point_id,
        "connector": session.connector,
        "transaction_id": session.transaction_id,
        "id_tag": session.id_tag,
        "badge_id": session.badge_id,
        "person_id": session.person_id,
        "person": session.person.name if session.person else None,
        "unit_id": session.unit_id,
        "unit": session.unit.label if session.unit else None,
        "started_at": session.started_at,
        "stopped_at": session.stopped_at,
        "running": session.running,
        "meter_start_wh": session.meter_start_wh,
        "meter_stop_wh": session.meter_stop_wh,
        "energy_wh": selectors.energy_so_far(session),
        "power_w": session.power_w,
        "stop_reason": session.stop_reason,
        "review": session.review,
        "remote": session.remote,
    }


def _aware(moment: datetime | None) -> datetime | None:
    if moment is not None and moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment


def _page(rows: QuerySet[ChargingSession], query: SessionQuery) -> list[dict[str, Any]]:
    return [session_out(s) for s in rows[query.offset : query.offset + query.limit]]


def _csv(rows: QuerySet[ChargingSession], name: str) -> HttpResponse:
    response = HttpResponse(selectors.sessions_csv(rows), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


def _site_sessions(
    request: HttpRequest,
    property_id: int,
    since: datetime | None,
    until: datetime | None,
    person: int | None,
) -> QuerySet[ChargingSession]:
    return selectors.sessions(
        actor(request),
        property_id=property_id,
        person=person,
        since=_aware(since),
        until=_aware(until),
    )


# --- stations ---------------------------------------------------------------------------------


@router.get(
    "properties/{property_id}/stations",
    response=list[StationOut],
    summary="A site's charging stations",
)
def list_stations(request: HttpRequest, property_id: int) -> list[dict[str, Any]]:
    """Each with its live state (online, connectors and the sessions running
    on them, the list of badges it holds). Removed stations are not listed."""
    stations = services.stations_of_site(actor(request), property_id)
    states = selectors.statuses(stations)
    return [station_out(s, states[s.pk]) for s in stations]


@router.post(
    "properties/{property_id}/stations",
    response={201: StationCreatedOut, **ERRORS},
    summary="Register a charging station",
)
def register_station(
    request: HttpRequest, property_id: int, body: StationIn
) -> Status[dict[str, Any]]:
    """The answer holds the station's password, shown only this once: set it
    in the station with `ocpp_url` (HTTP Basic authentication, the charge
    point id as the user). At a parking space of a unit the station is
    private to its residents. Errors: `invalid_charge_point_id`,
    `name_too_long` (400), `parking_space_not_found` (404), `station_exists`
    (409)."""
    spec = services.StationSpec(
        charge_point_id=body.charge_point_id,
        name=body.name,
        parking_space=body.parking_space,
        parking_space_id=body.parking_space_id,
    )
    station, password = services.register_station(actor(request), property_id, spec)
    return Status(201, {**station_out(station), "password": password})


@router.get("stations/{station_id}", response=StationOut, summary="A charging station, live")
def get_station(request: HttpRequest, station_id: int) -> dict[str, Any]:
    """Its live state, for a page that refreshes itself: online, the last
    heartbeat, vendor, model and firmware, each connector's status with the
    session running on it (energy so far, power), and `local_list.state`."""
    return station_out(services.get_station(actor(request), station_id))


@router.patch(
    "stations/{station_id}",
    response={200: StationOut, **ERRORS},
    summary="Rename or move a charging station",
)
def change_station(request: HttpRequest, station_id: int, body: StationPatch) -> dict[str, Any]:
    """A field left out keeps its value; `parking_space` null or empty moves
    it to no space (shared by the site's residents). Moving it to or from a
    private space changes who may charge there, and the station's list of
    badges with it. Errors: `parking_space_not_found` (404)."""
    given = body.model_fields_set
    space_id = body.parking_space_id if "parking_space_id" in given else None
    space = (body.parking_space or "") if "parking_space" in given else None
    station = services.change_station(
        actor(request),
        station_id,
        name=body.name if "name" in given else None,
        parking_space=space,
        parking_space_id=space_id,
    )
    return station_out(station)


@router.delete("stations/{station_id}", response={204: None}, summary="Remove a charging station")
def remove_station(request: HttpRequest, station_id: int) -> Status[None]:
    """It is no longer listed and its connections are refused (from its next
    one on); its sessions are kept (GET …/charging-sessions)."""
    services.remove_station(actor(request), station_id)
    return Status(204, None)


@router.post(
    "stations/{station_id}/password",
    response={200: PasswordOut, **ERRORS},
    summary="Issue a new station password",
)
def rotate_password(request: HttpRequest, station_id: int) -> dict[str, Any]:
    """The old password is refused from the station's next connection on
    (the connection open now goes on until the station reconnects). Shown
    only in this answer."""
    user = actor(request)
    password = services.rotate_password(user, station_id)
    station = services.get_station(user, station_id)
    return {
        "password": password,
        "ocpp_url": selectors.ocpp_url(station),
        "note": "shown once; the station needs it at its next connection",
    }


@router.post(
    "stations/{station_id}/commands",
    response={200: CommandOut, **COMMAND_ERRORS},
    summary="Send a command to a charging station",
)
def send_command(request: HttpRequest, station_id: int, body: CommandIn) -> dict[str, Any]:
    """`{"action": "reset", "hard": false}`, `{"action": "unlock_connector",
    "connector": 1}`, `{"action": "change_availability", "connector": 0,
    "available": false}`, `{"action": "remote_start", "id_tag": "04A1B2C3",
    "connector": 1}`, `{"action": "remote_stop", "session_id": 12}` (or
    `"transaction_id"`). Answers the station's own answer (`status`); each
    command is in the event log. Errors: `station_offline` (503),
    `station_timeout` (504), `station_rejected` (409: the station refused
    the message itself), `unexpected_argument`, `invalid_connector`,
    `invalid_tag`, `transaction_required`, `invalid_transaction_id` (400),
    `charging_session_not_found` (404), `session_not_running` (409)."""
    args = body.model_dump(exclude={"action"}, exclude_none=True)
    answer = services.send_command(actor(request), station_id, body.action, **args)
    return {
        "station_id": station_id,
        "action": answer.action,
        "status": answer.status,
        "accepted": answer.accepted,
    }


# --- sessions ---------------------------------------------------------------------------------


@router.get(
    "stations/{station_id}/sessions",
    response=list[SessionOut],
    summary="A station's charging sessions",
)
def station_sessions(
    request: HttpRequest, station_id: int, query: Query[SessionQuery]
) -> list[dict[str, Any]]:
    """Newest first (a removed station's too)."""
    rows = selectors.sessions(
        actor(request), station_id=station_id, since=_aware(query.since), until=_aware(query.until)
    )
    return _page(rows, query)


@router.get("stations/{station_id}/sessions.csv", summary="A station's charging sessions as CSV")
def station_sessions_csv(
    request: HttpRequest,
    station_id: int,
    since: datetime | None = None,
    until: datetime | None = None,
) -> HttpResponse:
    rows = selectors.sessions(
        actor(request), station_id=station_id, since=_aware(since), until=_aware(until)
    )
    return _csv(rows, f"doorkeep-station-{station_id}-sessions.csv")


@router.get(
    "properties/{property_id}/charging-sessions",
    response=list[SessionOut],
    summary="A site's charging sessions",
)
def site_sessions(
    request: HttpRequest,
    property_id: int,
    query: Query[SessionQuery],
    person_id: int | None = None,
) -> list[dict[str, Any]]:
    """Newest first, of every station of the site (removed ones too);
    `person_id` keeps one resident's."""
    return _page(_site_sessions(request, property_id, query.since, query.until, person_id), query)


@router.get(
    "properties/{property_id}/charging-sessions.csv",
    summary="A site's charging sessions as CSV",
)
def site_sessions_csv(
    request: HttpRequest,
    property_id: int,
    since: datetime | None = None,
    until: datetime | None = None,
    person_id: int | None = None,
) -> HttpResponse:
    """Columns: id, station, connector, transaction, badge_uid, person, unit,
    started_utc, started_local, stopped_utc, stopped_local (ISO 8601; local:
    the site's time zone), energy_kwh (three decimals), stop_reason, review."""
    rows = _site_sessions(request, property_id, since, until, person_id)
    return _csv(rows, f"doorkeep-property-{property_id}-charging-sessions.csv")


# --- a resident --------------------------------------------------------------------------------


@router.get("me/charging-sessions", response=list[SessionOut], summary="My charging sessions")
def my_sessions(request: HttpRequest, query: Query[SessionQuery]) -> list[dict[str, Any]]:
    """The sessions started with your badges, at every site, newest first."""
    rows = selectors.my_sessions(
        actor(request), since=_aware(query.since), until=_aware(query.until)
    )
    return _page(rows, query)


@router.get("me/charging-sessions.csv", summary="My charging sessions as CSV")
def my_sessions_csv(
    request: HttpRequest, since: datetime | None = None, until: datetime | None = None
) -> HttpResponse:
    rows = selectors.my_sessions(actor(request), since=_aware(since), until=_aware(until))
    return _csv(rows, "doorkeep-my-charging-sessions.csv")


@router.post(
    "me/charging",
    response={200: StartOut, **COMMAND_ERRORS},
    summary="Start charging with my badge",
)
def start_charging(request: HttpRequest, body: StartIn) -> dict[str, Any]:
    """For a resident of the station's site (404 for anyone else): the
    station is asked to start a session with your badge, if it may charge
    there now. Errors: `charging_refused` (403, the reason in
    `details.reason`: `badge_lost`, `not_their_space`…), `no_badge`,
    `connector_busy` (409), `station_offline` (503), `station_timeout` (504)."""
    answer = services.start_charging(actor(request), body.station_id, body.connector)
    return {
        "station_id": body.station_id,
        "connector": body.connector,
        "status": answer.status,
        "accepted": answer.accepted,
    }


@router.post(
    "me/charging-sessions/{session_id}/stop",
    response={200: StopOut, **COMMAND_ERRORS},
    summary="Stop my charging session",
)
def stop_charging(request: HttpRequest, session_id: int) -> dict[str, Any]:
    """Only your own running session (another person's answers 404). Errors:
    `session_not_running` (409), `station_offline` (503), `station_timeout`
    (504)."""
    answer = services.stop_charging(actor(request), session_id)
    return {"session_id": session_id, "status": answer.status, "accepted": answer.accepted}
