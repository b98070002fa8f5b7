"""Reading charging stations and charging sessions, with the right to read
them: a site's stations and their live state (for the station page, which
refreshes itself, and the API), and sessions per station, per site and per
resident, with their CSV export.

Stations and sessions are for the site's lock owners, building managers and
read-only collaborators (policy action VIEW_STATIONS): the sessions name
residents. Another organization's station or session does not exist for the
caller (404). A resident reads their own sessions (``my_sessions``)."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db.models import Q, QuerySet
from django.db.models.functions import Coalesce
from django.utils.translation import gettext as _

from doorkeep import policy
from doorkeep.accounts.models import User
from doorkeep.chargers.models import ChargingSession, Connector, Station
from doorkeep.core.errors import InvalidInput, NotFound, PermissionDenied
from doorkeep.core.text import csv_cell
from doorkeep.keys.models import Person
from doorkeep.properties.models import zone_of
from doorkeep.properties.services import get_property

VIEW = policy.Action.VIEW_STATIONS

_SESSION_RELATED = ("station", "person", "unit", "badge", "property")


def get_station(
    actor: User,
    station_id: int,
    action: policy.Action = VIEW,
    *,
    removed: bool = False,
) -> Station:
    """A station of a site the caller may ``action`` on. A removed station is
    not found unless ``removed`` (its sessions are still read through it).
    Another organization's station, or one of a site a collaborator is not
    scoped to, is not found (404); a member whose role does not allow the
    action is refused (403)."""
    station = (
        Station.objects.select_related("property", "parking_space__unit")
        .filter(pk=station_id)
        .first()
    )
    if (
        station is None
        or (station.removed_at is not None and not removed)
        or policy.role_in(actor, station.organization_id, station.property_id) is None
    ):
        raise NotFound(_("Charging station not found."), code="station_not_found")
    if not policy.can(actor, action, station.organization_id, station.property_id):
        raise PermissionDenied(policy.denial(action))
    return station


def stations_of_site(actor: User, property_id: int) -> list[Station]:
    """The site's stations (not the removed ones), by name."""
    prop = get_property(actor, property_id, VIEW)
    return list(
        Station.objects.filter(property=prop, removed_at__isnull=True).select_related(
            "property", "parking_space__unit"
        )
    )


# --- live state ---------------------------------------------------------------------------


def energy_so_far(session: ChargingSession) -> int | None:
    """Wh charged up to the last reading (the stop's, once stopped), as
    chargers.reports settles it with every message (None when the meter went
    backwards: not guessed)."""
    return session.energy_wh


def _running(session: ChargingSession) -> dict[str, Any]:
    return {
        "id": session.pk,
        "transaction_id": session.transaction_id,
        "person_id": session.person_id,
        "person": session.person.name if session.person else None,
        "unit": session.unit.label if session.unit else None,
        "started_at": session.started_at,
        "energy_wh": energy_so_far(session),
        "power_w": session.power_w,
        "remote": session.remote,
    }


def statuses(stations: Iterable[Station]) -> dict[int, dict[str, Any]]:
    """``station_status`` of many stations, in two queries (their connectors
    and their running sessions), by station id."""
    stations = list(stations)
    ids = [s.pk for s in stations]
    connectors: dict[int, list[Connector]] = {}
    for connector in Connector.objects.filter(station_id__in=ids).order_by("station_id", "number"):
        connectors.setdefault(connector.station_id, []).append(connector)
    running: dict[tuple[int, int], ChargingSession] = {}
    for session in (
        ChargingSession.objects.filter(
            station_id__in=ids, stopped_at__isnull=True, started_at__isnull=False
        )
        .select_related("person", "unit")
        .order_by("started_at", "pk")
    ):
        running[(session.station_id, session.connector)] = session  # the latest wins
    return {s.pk: _status(s, connectors.get(s.pk, []), running) for s in stations}


def _status(
    station: Station,
    connectors: list[Connector],
    running: dict[tuple[int, int], ChargingSession],
) -> dict[str, Any]:
    rows: dict[int, dict[str, Any]] = {
        c.number: {
            "number": c.number,
            "status": c.status,
            "error_code": c.error_code,
            "updated_at": c.updated_at,
            "session": None,
        }
        for c in connectors
    }
    for (station_id, number), session in running.items():
        if station_id != station.pk:
            continue
        # A session on a connector the station never reported a status of.
        row = rows.setdefault(
            number,
            {"number": number, "status": "", "error_code": "", "updated_at": None, "session": None},
        )
        row["session"] = _running(session)
    return {
        "online": station.online,
        "connected_at": station.connected_at,
        "last_seen_at": station.last_seen_at,
        "last_heartbeat_at": station.last_heartbeat_at,
        "last_boot_at": station.last_boot_at,
        "ocpp_version": station.ocpp_version,
        "vendor": station.vendor,
        "model": station.model,
        "serial_number": station.serial_number,
        "firmware": station.firmware,
        "connectors": [rows[n] for n in sorted(rows)],
        "local_list": {
            "state": str(station.sync_state),
            "list_version": station.list_version,
            "acked_version": station.acked_version,
            "last_push_at": station.last_push_at,
            "last_error": station.last_error,
        },
    }


def station_status(station: Station) -> dict[str, Any]:
    """What the station page and GET /stations/{id} show of a station now:
    online or not, its last heartbeat, what it said of itself at boot, each
    connector's state with the session running on it (who, since when, the
    energy so far in Wh, the power in W), and whether it holds the
    platform's list of badges (``local_list.state`` synced, pending or failed)."""
    return statuses([station])[station.pk]


def ocpp_url(station: Station) -> str:
    """The address the station dials (its charge point id last), from the
    gateway's public URL (GATEWAY_URL) or its host and port."""
    base = str(getattr(settings, "GATEWAY_PUBLIC_URL", "") or "").rstrip("/")
    if not base:
        base = f"ws://{settings.GATEWAY_HOST}:{settings.GATEWAY_PORT}"
    elif base.startswith("http://"):
        base = "ws://" + base[len("http://") :]
    elif base.startswith("https://"):
        base = "wss://" + base[len("https://") :]
    return f"{base}/ocpp/{station.charge_point_id}"


# --- sessions ----------------------------------------------------------------------------


def _newest_first(rows: QuerySet[ChargingSession]) -> QuerySet[ChargingSession]:
    # A session whose start never arrived is placed by its stop (the same order
    # on every database, where NULLs would sort differently).
    return rows.order_by(Coalesce("started_at", "stopped_at", "created_at").desc(), "-pk")


def _between(
    rows: QuerySet[ChargingSession], since: datetime | None, until: datetime | None
) -> QuerySet[ChargingSession]:
    """Sessions that started in [since, until) (or, with no known start,
    stopped then)."""
    if since is not None:
        rows = rows.filter(
            Q(started_at__gte=since) | Q(started_at__isnull=True, stopped_at__gte=since)
        )
    if until is not None:
        rows = rows.filter(
            Q(started_at__lt=until) | Q(started_at__isnull=True, stopped_at__lt=until)
        )
    return rows


def sessions(
    actor: User,
    *,
    property_id: int | None = None,
    station_id: int | None = None,
    person: Person | int | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> QuerySet[ChargingSession]:
    """The charging sessions of a site or of one station (a removed one too:
    sessions are billing records), newest first, optionally of one person and
    started in [since, until). For the site's lock owners, building managers
    and read-only collaborators."""
    if station_id is not None:
        station = get_station(actor, station_id, removed=True)
        if property_id is not None and property_id != station.property_id:
            raise NotFound(_("Charging station not found."), code="station_not_found")
        # Only the sessions of the site it is at now: a station moved from
        # another site of the organization keeps those under that site.
        rows = ChargingSession.objects.filter(station=station, property_id=station.property_id)
    elif property_id is not None:
        prop = get_property(actor, property_id, VIEW)
        rows = ChargingSession.objects.filter(property=prop)
    else:
        raise InvalidInput(_("Name a site or a station."), code="site_required")
    if person is not None:
        rows = rows.filter(person_id=person.pk if isinstance(person, Person) else person)
    if since is not None and until is not None and until <= since:
        raise InvalidInput(
            _("The end of the period must come after its start."), code="invalid_period"
        )
    return _newest_first(_between(rows, since, until)).select_related(*_SESSION_RELATED)


def my_sessions(
    actor: User, *, since: datetime | None = None, until: datetime | None = None
) -> QuerySet[ChargingSession]:
    """The sessions charged with the badges of the persons the account is
    (one per organization), at every site, newest first."""
    rows = ChargingSession.objects.filter(person__user=actor)
    return _newest_first(_between(rows, since, until)).select_related(*_SESSION_RELATED)


CSV_COLUMNS = (
    "id",
    "station",
    "connector",
    "transaction",
    "badge_uid",
    "person",
    "unit",
    "started_utc",
    "started_local",
    "stopped_utc",
    "stopped_local",
    "energy_kwh",
    "stop_reason",
    "review",
)


def kwh(wh: int | None) -> str:
    """Watt-hours as kWh with three decimals, exactly ("12.345"), or ""."""
    if wh is None:
        return ""
    sign, wh = ("-", -wh) if wh < 0 else ("", wh)
    return f"{sign}{wh // 1000}.{wh % 1000:03d}"


def _times(moment: datetime | None, session: ChargingSession) -> tuple[str, str]:
    """The moment in UTC and at the site (ISO 8601, with its offset)."""
    if moment is None:
        return "", ""
    utc = moment.astimezone(zone_of(None)).isoformat().replace("+00:00", "Z")
    return utc, moment.astimezone(zone_of(session.property)).isoformat()


def sessions_csv(rows: Iterable[ChargingSession]) -> str:
    """Sessions as CSV text, a header line first (CSV_COLUMNS): times in UTC
    and in the site's time zone, energy in kWh with three decimals (exact
    from the stored Wh), the review flag's code when the session needs a
    look."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    for s in rows:
        started = _times(s.started_at, s)
        stopped = _times(s.stopped_at, s)
        writer.writerow(
            [
                s.pk,
                csv_cell(s.station.label),
                s.connector,
                csv_cell(s.transaction_id),
                s.badge.uid if s.badge else csv_cell(s.id_tag),
                csv_cell(s.person.name) if s.person else "",
                csv_cell(s.unit.label) if s.unit else "",
                *started,
                *stopped,
                kwh(s.energy_wh),
                csv_cell(s.stop_reason),
                s.review,
            ]
        )
    return out.getvalue()
