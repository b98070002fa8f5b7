"""Charging stations at a site, as their owner and managers keep them, and
the commands sent to them: registered with a password shown once, changed,
given a new password, removed; Reset, UnlockConnector, ChangeAvailability,
remote start and stop. And a resident's own start and stop from the portal.

Changes are for the site's lock owners and building managers (policy
action MANAGE_STATIONS); reading is in ``chargers.selectors`` (its
functions are importable from here too). Every change and every command is
an event in the site's log: a command with the station's answer, or why it
got none (offline: 503, no answer in time: 504, refused: 409, each a domain
error with a message for people).

A new password takes effect at the station's next connection: the one open
when it changes goes on until the station reconnects (the gateway keeps no
way to drop a station's connection from here). The same holds for a removed
station, which is refused from its next connection on."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from doorkeep import policy
from doorkeep.accounts.models import User
from doorkeep.badges.access import decide_equipment
from doorkeep.badges.models import Badge, BadgeStatus
from doorkeep.chargers import lists
from doorkeep.chargers.models import CHARGE_POINT_ID, ChargingSession, OcppVersion, Station
from doorkeep.chargers.selectors import (
    energy_so_far,
    get_station,
    my_sessions,
    ocpp_url,
    sessions,
    sessions_csv,
    station_status,
    stations_of_site,
    statuses,
)
from doorkeep.core import registration
from doorkeep.core.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from doorkeep.events.models import DenyReason, EventKind
from doorkeep.events.services import record
from doorkeep.gateway.routing import (
    STATION_TIMEOUT,
    StationOffline,
    StationRejected,
    StationTimeout,
    send_station_command,
)
from doorkeep.keys.credentials import normalize_tag
from doorkeep.keys.models import Person
from doorkeep.properties.models import Property
from doorkeep.properties.services import get_property
from doorkeep.residents.models import ParkingSpace, Residency
from doorkeep.residents.services import site_today

__all__ = [
    "ACTIONS",
    "CommandAnswer",
    "StationSpec",
    "change_station",
    "energy_so_far",
    "get_station",
    "my_sessions",
    "new_password",
    "ocpp_url",
    "register_station",
    "remove_station",
    "rotate_password",
    "send_command",
    "sessions",
    "sessions_csv",
    "start_charging",
    "station_status",
    "stations_of_site",
    "statuses",
    "stop_charging",
]

MANAGE = policy.Action.MANAGE_STATIONS
PASSWORD_BYTES = 18  # 24 URL-safe characters
MAX_CONNECTOR = 999


def new_password() -> str:
    """A station's password: 24 random URL-safe characters (no colon, so it
    fits HTTP Basic authentication as it is)."""
    return secrets.token_urlsafe(PASSWORD_BYTES)


# --- registering and changing -----------------------------------------------------------------


@dataclass
class StationSpec:
    charge_point_id: str  # as the station is set up to dial: ws://…/ocpp/{charge_point_id}
    name: str = ""
    parking_space: str = ""  # the number of the space it stands at, or
    parking_space_id: int | None = None  # the space by its id


def _charge_point_id(value: str) -> str:
    clean = value.strip()
    if not CHARGE_POINT_ID.fullmatch(clean):
        raise InvalidInput(
            _(
                "A charge point id is up to 48 letters, digits, dots, dashes and underscores, "
                "beginning with a letter or a digit; it is the last part of the address the "
                "station dials (…/ocpp/CP-1)."
            ),
            code="invalid_charge_point_id",
            field="charge_point_id",
        )
    return clean


def _name(value: str) -> str:
    clean = " ".join(value.split())
    if len(clean) > 100:
        raise InvalidInput(
            _("A station's name is at most 100 characters."), code="name_too_long", field="name"
        )
    return clean


def _space(prop: Property, number: str, space_id: int | None) -> ParkingSpace | None:
    """A parking space of this site, by id or number; None for neither."""
    spaces = ParkingSpace.objects.filter(property=prop).select_related("unit")
    if space_id is not None:
        space = spaces.filter(pk=space_id).first()
        shown = str(space_id)
    elif number.strip():
        shown = " ".join(number.split())
        space = spaces.filter(number=shown).first()
    else:
        return None
    if space is None:
        raise NotFound(
            _("Parking space %(number)s is not a space of this site.") % {"number": shown},
            code="parking_space_not_found",
        )
    return space


def _where(space: ParkingSpace | None) -> str:
    if space is None:
        return _("shared, at no parking space")
    if space.unit is not None:
        return _("at parking space %(number)s, private to %(unit)s") % {
            "number": space.number,
            "unit": space.unit.label,
        }
    return _("at parking space %(number)s, shared") % {"number": space.number}


def register_station(actor: User, property_id: int, spec: StationSpec) -> tuple[Station, str]:
    """Register a charging station at a site: returns it and its password,
    which is shown only this once (stored as a digest). A charge point id
    that a removed station of the same organization had is that station
    back, with a new password and its old sessions."""
    prop = get_property(actor, property_id, MANAGE)
    cp_id = _charge_point_id(spec.charge_point_id)
    name = _name(spec.name)
    space = _space(prop, spec.parking_space, spec.parking_space_id)
    return _register(actor, prop, cp_id, name, space)


def register_installed(actor: User, space: ParkingSpace, serial: str) -> str | None:
    """The installation workflow's last step (installations.services.complete,
    by the platform operator or the owner): the station installed at
    ``space`` is registered with its serial as its charge point id. Returns
    its password (shown once), or None when a station of the site already
    has that id or the serial is not a valid charge point id (the owner then
    registers it by hand)."""
    if not CHARGE_POINT_ID.fullmatch(serial):
        return None
    prop = space.property
    if (
        Station.objects.filter(charge_point_id=serial)
        .exclude(removed_at__isnull=False, organization_id=prop.organization_id)
        .exists()
    ):
        return None
    _station, password = _register(actor, prop, serial, "", space)
    return password


def _register(
    actor: User, prop: Property, cp_id: str, name: str, space: ParkingSpace | None
) -> tuple[Station, str]:
    password = new_password()
    taken = Conflict(
        _("A charging station with the id %(id)s is registered already.") % {"id": cp_id},
        code="station_exists",
        field="charge_point_id",
    )
    with transaction.atomic():
        station = registration.claim(
            Station,
            {"charge_point_id": cp_id},
            organization_id=prop.organization_id,
            taken=taken,
            create=lambda: Station.objects.create(
                organization_id=prop.organization_id,
                property=prop,
                parking_space=space,
                charge_point_id=cp_id,
                name=name,
                password_digest=Station.digest_of(password),
            ),
            bring_back=lambda found: _bring_back(found, prop, name, space, password),
        )
        record(
            EventKind.STATION_REGISTERED,
            organization_id=prop.organization_id,
            property_id=prop.pk,
            station_id=station.pk,
            actor=actor,
            summary=_("Charging station %(station)s registered, %(where)s")
            % {"station": station.label, "where": _where(space)},
            data={"charge_point_id": cp_id, "parking_space": space.number if space else None},
        )
    return station, password


def _bring_back(
    station: Station, prop: Property, name: str, space: ParkingSpace | None, password: str
) -> None:
    """A removed station registered again: in use again, with what it holds
    unknown (it gets the whole list at its next connection)."""
    station.property, station.parking_space, station.name = prop, space, name
    station.password_digest, station.password_set_at = Station.digest_of(password), timezone.now()
    registration.relist(station)


def _locked(actor: User, station_id: int) -> Station:
    """The station, for a change by its site's owner or managers, locked
    until the transaction ends."""
    get_station(actor, station_id, MANAGE)
    return (
        Station.objects.select_for_update(of=("self",))
        .select_related("property", "parking_space__unit")
        .get(pk=station_id)
    )


def change_station(
    actor: User,
    station_id: int,
    *,
    name: str | None = None,
    parking_space: str | None = None,
    parking_space_id: int | None = None,
) -> Station:
    """Rename a station, or move it to another parking space (``parking_space``
    by number, "" for none; or ``parking_space_id``). None leaves a field as it
    is. Moving it to or from a private space changes who may charge there:
    its list of badges is brought up to date."""
    with transaction.atomic():
        station = _locked(actor, station_id)
        before = {"name": station.name, "parking_space": station.parking_space_id}
        if name is not None:
            station.name = _name(name)
        if parking_space_id is not None or parking_space is not None:
            station.parking_space = _space(station.property, parking_space or "", parking_space_id)
        after = {"name": station.name, "parking_space": station.parking_space_id}
        if after == before:
            return station
        station.save(update_fields=["name", "parking_space"])
        moved = after["parking_space"] != before["parking_space"]
        if moved:
            lists.changed(station_ids=[station.pk])
        changes = []
        if after["name"] != before["name"]:
            changes.append(_("named %(name)s") % {"name": station.name or station.charge_point_id})
        if moved:
            changes.append(_where(station.parking_space))
        record(
            EventKind.STATION_CHANGED,
            organization_id=station.organization_id,
            property_id=station.property_id,
            station_id=station.pk,
            actor=actor,
            summary=_("Charging station %(station)s changed: %(changes)s")
            % {"station": station.charge_point_id, "changes": "; ".join(changes)},
            data={"before": before, "after": after},
        )
    if moved:
        station.refresh_from_db(fields=["list_version"])
    return station


def rotate_password(actor: User, station_id: int) -> str:
    """A new password for the station, shown only this once. The station's
    current connection is closed after the commit (what a password is
    replaced for: whoever holds the old one is out at once); it connects
    again with the new one."""
    password = new_password()
    with transaction.atomic():
        station = _locked(actor, station_id)
        station.password_digest = Station.digest_of(password)
        station.password_set_at = timezone.now()
        station.save(update_fields=["password_digest", "password_set_at"])
        _drop_after_commit(station.pk, "new password")
        record(
            EventKind.STATION_PASSWORD_ROTATED,
            organization_id=station.organization_id,
            property_id=station.property_id,
            station_id=station.pk,
            actor=actor,
            summary=_("A new password was issued for charging station %(station)s")
            % {"station": station.label},
        )
    return password


def remove_station(actor: User, station_id: int) -> Station:
    """Take a station out of use: it is no longer listed, its current
    connection is closed after the commit and new ones are refused. Its
    sessions are billing records and are kept, as is the station's row they
    refer to."""
    with transaction.atomic():
        station = _locked(actor, station_id)
        station.removed_at = timezone.now()
        station.save(update_fields=["removed_at"])
        _drop_after_commit(station.pk, "removed")
        record(
            EventKind.STATION_REMOVED,
            organization_id=station.organization_id,
            property_id=station.property_id,
            station_id=station.pk,
            actor=actor,
            summary=_("Charging station %(station)s removed") % {"station": station.label},
            data={"charge_point_id": station.charge_point_id},
        )
    return station


def _drop_after_commit(station_id: int, reason: str) -> None:
    from doorkeep.gateway.routing import drop_station

    transaction.on_commit(lambda: drop_station(station_id, reason))


# --- commands ---------------------------------------------------------------------------------

ACTIONS = ("reset", "unlock_connector", "change_availability", "remote_start", "remote_stop")
_ARGS = {
    "reset": {"hard"},
    "unlock_connector": {"connector"},
    "change_availability": {"connector", "available"},
    "remote_start": {"id_tag", "connector"},
    "remote_stop": {"transaction_id", "session_id"},
}
# The answers (of either OCPP version) that mean the station does it.
DONE = frozenset({"Accepted", "Scheduled", "Unlocked"})


@dataclass(frozen=True)
class CommandAnswer:
    action: str
    status: str  # the station's answer: Accepted, Rejected, Unlocked, Scheduled...
    args: dict[str, Any]

    @property
    def accepted(self) -> bool:
        return self.status in DONE


def _label(action: str, args: dict[str, Any]) -> str:
    labels = {
        "reset": _("Hard reset") if args.get("hard") else _("Reset"),
        "unlock_connector": _("Unlock connector"),
        "change_availability": (
            _("Make available") if args.get("available") else _("Make unavailable")
        ),
        "remote_start": _("Remote start"),
        "remote_stop": _("Remote stop"),
    }
    return labels.get(action, action)


def _connector(value: Any, *, lowest: int, default: int) -> int:
    if value is None:
        return default
    number = value if isinstance(value, int) and not isinstance(value, bool) else None
    if number is None or not lowest <= number <= MAX_CONNECTOR:
        raise InvalidInput(
            _("A connector is a number from %(low)d to %(high)d.")
            % {"low": lowest, "high": MAX_CONNECTOR},
            code="invalid_connector",
            field="connector",
        )
    return number


def _flag(value: Any, field: str, *, default: bool | None = None) -> bool:
    if value is None and default is not None:
        return default
    if not isinstance(value, bool):
        raise InvalidInput(
            _("%(field)s is true or false.") % {"field": field}, code="invalid", field=field
        )
    return value


def _transaction(station: Station, args: dict[str, Any]) -> tuple[str, ChargingSession | None]:
    """The transaction a remote stop names: by the session's id (one running
    on this station) or by the station's transaction id."""
    session_id, given = args.get("session_id"), args.get("transaction_id")
    if (session_id is None) == (given is None):
        raise InvalidInput(
            _("Name the session to stop: session_id or transaction_id (one of them)."),
            code="transaction_required",
            field="session_id",
        )
    if session_id is not None:
        session = (
            ChargingSession.objects.filter(pk=session_id, station=station)
            .select_related("person")
            .first()
            if isinstance(session_id, int) and not isinstance(session_id, bool)
            else None
        )
        if session is None:
            raise NotFound(
                _("This station has no charging session %(id)s.") % {"id": session_id},
                code="charging_session_not_found",
            )
        if not session.running:
            raise Conflict(
                _("This charging session has stopped already."), code="session_not_running"
            )
        return session.transaction_id, session
    text = str(given).strip()
    numeric = station.ocpp_version != OcppVersion.V201
    if not text or len(text) > 36 or (numeric and not text.isdecimal()):
        raise InvalidInput(
            _("A transaction id of OCPP 1.6 is a number (as the station gave it).")
            if numeric
            else _("A transaction id is 1 to 36 characters (as the station gave it)."),
            code="invalid_transaction_id",
            field="transaction_id",
        )
    return text, None


def _command_args(
    station: Station, action: str, args: dict[str, Any]
) -> tuple[dict[str, Any], ChargingSession | None]:
    """The command's arguments, checked here so that the station is asked
    only what it can take (its answer then is about the station, not the
    request): what the gateway sends, and the session a remote stop names."""
    if action not in ACTIONS:
        raise InvalidInput(
            _("Unknown command %(action)s; one of: %(actions)s.")
            % {"action": action[:40], "actions": ", ".join(ACTIONS)},
            code="unknown_command",
            field="action",
        )
    given = {k: v for k, v in args.items() if v is not None}
    extra = sorted(set(given) - _ARGS[action])
    if extra:
        raise InvalidInput(
            _("%(action)s takes no %(args)s.") % {"action": action, "args": ", ".join(extra)},
            code="unexpected_argument",
            field=extra[0],
        )
    if action == "reset":
        return {"hard": _flag(given.get("hard"), "hard", default=False)}, None
    if action == "unlock_connector":
        return {"connector": _connector(given.get("connector"), lowest=1, default=1)}, None
    if action == "change_availability":
        return {
            "connector": _connector(given.get("connector"), lowest=0, default=0),
            "available": _flag(given.get("available"), "available"),
        }, None
    if action == "remote_start":
        if not isinstance(given.get("id_tag"), str):
            raise InvalidInput(
                _("Say which badge starts the session: id_tag, its UID."),
                code="id_tag_required",
                field="id_tag",
            )
        uid = normalize_tag(given["id_tag"])
        # The one rule, as for a badge presented at the station: a manager
        # does not start a charge the badge could not start itself (a lost
        # badge, another unit's at a private station), billed to its holder.
        decision = decide_equipment(station.property, uid, space=station.parking_space)
        if not decision.allowed:
            raise Conflict(
                _("This badge may not charge here: %(reason)s.")
                % {"reason": DenyReason(decision.reason).label},
                code="charging_refused",
                field="id_tag",
            )
        return {
            "id_tag": uid,
            "connector": _connector(given.get("connector"), lowest=1, default=1),
        }, None
    transaction_id, session = _transaction(station, given)
    return {"transaction_id": transaction_id}, session


def send_command(
    actor: User,
    station_id: int,
    action: str,
    *,
    timeout: float = STATION_TIMEOUT,
    **args: Any,
) -> CommandAnswer:
    """Send a command to a station, for its site's owner or managers, and
    wait for its answer (at most ``timeout`` seconds): reset (hard: bool),
    unlock_connector (connector), change_availability (connector, 0 for the
    whole station; available: bool), remote_start (id_tag, connector),
    remote_stop (session_id, or the station's transaction_id). Returns the
    station's answer; raises StationOffline (503), StationTimeout (504) or
    StationRejected (409). Each command is an event, answered or not."""
    station = get_station(actor, station_id, MANAGE)
    clean, session = _command_args(station, action, args)
    return _send(
        actor,
        station,
        action,
        clean,
        timeout=timeout,
        person=session.person if session else None,
        session=session,
    )


def _send(
    actor: User,
    station: Station,
    action: str,
    args: dict[str, Any],
    *,
    timeout: float,
    person: Person | None = None,
    session: ChargingSession | None = None,
    portal: bool = False,
) -> CommandAnswer:
    """Send, and record the command with the station's answer or the error."""
    label = _label(action, args)
    data: dict[str, Any] = {
        "action": action,
        "args": {**args, **({"session_id": session.pk} if session else {})},
        **({"portal": True} if portal else {}),
    }

    def log(reason: str, outcome: str, more: dict[str, Any]) -> None:
        record(
            EventKind.STATION_COMMAND,
            organization_id=station.organization_id,
            property_id=station.property_id,
            station_id=station.pk,
            actor=actor,
            person=person,
            reason=reason,
            summary=_("%(command)s to %(station)s: %(outcome)s")
            % {"command": label, "station": station.label, "outcome": outcome},
            data={**data, **more},
        )

    try:
        status = send_station_command(station.pk, action, args, timeout=timeout)
    except (StationOffline, StationTimeout, StationRejected) as exc:
        log(exc.code, exc.message, {"error": exc.code})
        raise
    log("", status or "?", {"status": status})
    return CommandAnswer(action, status, args)


# --- a resident, from the portal --------------------------------------------------------------


def _refusal(reason: str, station: Station) -> str:
    """Why a resident's badge does not start charging here, in their words."""
    space = station.parking_space
    messages: dict[str, str] = {
        DenyReason.BADGE_LOST: _(
            "Your badge was reported lost, so it starts no charging. Ask for a new one in the "
            "portal, or have the owner switch it on again if you found it."
        ),
        DenyReason.CREDENTIAL_DEACTIVATED: _("Your badge is switched off."),
        DenyReason.UNKNOWN_CREDENTIAL: _("Your badge is not active yet."),
        DenyReason.NOT_A_RESIDENT: _("You are not a resident of this site today."),
        DenyReason.MOVED_OUT: _("You are no longer a resident of this site."),
        DenyReason.PLATFORM_BADGES_ONLY: _(
            "This site's charging stations take only badges issued by the platform; ask for "
            "one in the portal."
        ),
        DenyReason.NOT_THEIR_SPACE: _(
            "This station is private to parking space %(number)s: only its unit's residents "
            "charge there."
        )
        % {"number": space.number if space else "?"},
    }
    return messages.get(reason, _("Your badge cannot start charging here."))


def _resident_at(actor: User, station: Station) -> Person:
    """The person the account is at the station's site, living there today;
    otherwise the station does not exist for them."""
    residency = (
        Residency.objects.on(site_today(station.property))
        .filter(unit__property_id=station.property_id, person__user=actor)
        .select_related("person")
        .first()
    )
    if residency is None:
        raise NotFound(_("Charging station not found."), code="station_not_found")
    return residency.person


def _badge_of(person: Person) -> Badge:
    """The person's badge that speaks for them: an active one, else the one
    reported lost, else any (the refusal then says why)."""
    badges = Badge.objects.filter(person=person).order_by("-pk")
    badge = (
        badges.filter(status=BadgeStatus.ACTIVE).first()
        or badges.filter(status=BadgeStatus.LOST).first()
        or badges.first()
    )
    if badge is None:
        raise Conflict(
            _("You have no badge yet: charging starts with one. Ask for it in the portal."),
            code="no_badge",
        )
    return badge


def start_charging(
    actor: User, station_id: int, connector: int = 1, *, timeout: float = STATION_TIMEOUT
) -> CommandAnswer:
    """A resident starts charging from the portal: the station is asked to
    start a session with their badge (RemoteStartTransaction /
    RequestStartTransaction), if the site's one equipment rule lets that
    badge charge there now. A refusal says why (403 ``charging_refused``,
    its reason in ``details``) and is an event, as at the station."""
    station = (
        Station.objects.select_related("property", "parking_space__unit")
        .filter(pk=station_id, removed_at__isnull=True)
        .first()
    )
    if station is None:
        raise NotFound(_("Charging station not found."), code="station_not_found")
    person = _resident_at(actor, station)
    number = _connector(connector, lowest=1, default=1)
    badge = _badge_of(person)
    decision = decide_equipment(station.property, badge.uid, space=station.parking_space)
    if not decision.allowed:
        record(
            EventKind.CHARGING_REFUSED,
            organization_id=station.organization_id,
            property_id=station.property_id,
            station_id=station.pk,
            person=person,
            actor=actor,
            reason=decision.reason,
            credential_kind="tag",
            summary=_("%(station)s: %(name)s could not start charging from the portal")
            % {"station": station.label, "name": person.name},
            data={"id_tag": badge.uid, "asked": "portal"},
        )
        raise PermissionDenied(
            _refusal(decision.reason, station), code="charging_refused", reason=decision.reason
        )
    if ChargingSession.objects.filter(
        station=station, connector=number, stopped_at__isnull=True, started_at__isnull=False
    ).exists():
        raise Conflict(
            _("Connector %(n)d is in use: a session is running on it.") % {"n": number},
            code="connector_busy",
        )
    args = {"id_tag": badge.uid, "connector": number}
    return _send(actor, station, "remote_start", args, timeout=timeout, person=person, portal=True)


def stop_charging(
    actor: User, session_id: int, *, timeout: float = STATION_TIMEOUT
) -> CommandAnswer:
    """A resident stops their own running session from the portal
    (RemoteStopTransaction / RequestStopTransaction). Another person's
    session does not exist for them (404)."""
    session = (
        ChargingSession.objects.select_related("station__property", "person")
        .filter(pk=session_id, person__user=actor)
        .first()
    )
    if session is None:
        raise NotFound(_("Charging session not found."), code="charging_session_not_found")
    if not session.running:
        raise Conflict(_("This charging session has stopped already."), code="session_not_running")
    args = {"transaction_id": session.transaction_id}
    return _send(
        actor,
        session.station,
        "remote_stop",
        args,
        timeout=timeout,
        person=session.person,
        session=session,
        portal=True,
    )
