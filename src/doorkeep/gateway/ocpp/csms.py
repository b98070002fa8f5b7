"""The gateway's central system (CSMS) for charging stations: OCPP 1.6J and
2.0.1 on ws://HOST:PORT/ocpp/{charge_point_id}, beside the locks.

- The handshake: HTTP Basic authentication (OCPP security profiles 1 and 2)
  checked before the upgrade (``check_request``: 401 for an unknown id or a
  wrong password, alike), and the subprotocol, ocpp1.6 or ocpp2.0.1, chosen
  per connection (``select_subprotocol``: 400 when the station offers
  neither).
- The conversation: the ``ocpp`` library's ChargePoint of the negotiated
  version (v16.py, v201.py), its schema validation on. This module gives
  both what they share: each message read here (a malformed frame answered
  with the CALLERROR the specification names, a flooding station
  throttled), the station's local authorization list kept in step
  (``sync``), and the commands that web workers send (``command``).
- Business rules stay in doorkeep.chargers: handlers translate each OCPP
  version to its calls (in the gateway's database threads) and back."""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import json
import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http import HTTPStatus
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

from ocpp.exceptions import OCPPError
from websockets.asyncio.server import ServerConnection
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed, NegotiationError
from websockets.http11 import Request, Response
from websockets.typing import Subprotocol

from doorkeep.chargers import lists, reports
from doorkeep.chargers.reports import StationRefused, StationSession
from doorkeep.gateway.ocpp import answers

if TYPE_CHECKING:
    from doorkeep.gateway.ocpp.common import StationPoint
    from doorkeep.gateway.server import Gateway

log = logging.getLogger("doorkeep.gateway.ocpp")

PATH = "/ocpp/"
SUBPROTOCOLS = (Subprotocol("ocpp2.0.1"), Subprotocol("ocpp1.6"))
VERSION_OF = {"ocpp1.6": "1.6", "ocpp2.0.1": "2.0.1"}
HEARTBEAT_INTERVAL = 300  # seconds, told to stations at boot
BOOT_WAIT = 3.0  # seconds to wait for a BootNotification before the first list sync
RESPONSE_TIMEOUT = 10.0  # seconds a station has to answer the platform's calls
MESSAGES_PER_SECOND = 20  # sustained, per station
BURST = 60
MAX_IN_FLIGHT = 8  # a station's calls handled at once; beyond, its frames wait to be read
MAX_DROPPED = 100  # messages refused for flooding before the connection is closed
REMOTE_START_WINDOW = 180.0  # seconds between a remote start and the start it causes
RECHECK = 300.0  # seconds between checks that a station's list still holds (the calendar)


def is_station_path(path: str) -> bool:
    return urlsplit(path).path.startswith(PATH)


def charge_point_id(path: str) -> str:
    return unquote(urlsplit(path).path[len(PATH) :]).strip("/")


def _basic(headers: Headers) -> tuple[str, str] | None:
    value = headers.get("Authorization", "")
    scheme, _, encoded = value.partition(" ")
    if scheme.lower() != "basic" or not encoded:
        return None
    try:
        user, sep, password = (
            base64.b64decode(encoded.strip(), validate=True).decode().partition(":")
        )
    except (binascii.Error, UnicodeDecodeError):
        return None
    return (user, password) if sep else None


def _refuse(connection: ServerConnection, status: HTTPStatus, text: str) -> Response:
    response = connection.respond(status, text + "\n")
    if status == HTTPStatus.UNAUTHORIZED:
        response.headers["WWW-Authenticate"] = 'Basic realm="Doorkeep charging stations"'
    return response


async def check_request(
    gateway: Gateway, connection: ServerConnection, request: Request
) -> Response | None:
    """Before the upgrade: the station's id and password (Basic). The answer
    does not say which was wrong; the gateway's log and the station's event
    log do."""
    cp_id = charge_point_id(request.path)
    peer = _peer(connection)
    offered = {
        p.strip()
        for value in request.headers.get_all("Sec-WebSocket-Protocol")
        for p in value.split(",")
    }
    if not offered & {str(p) for p in SUBPROTOCOLS}:
        log.info("refused station %r from %s: no OCPP subprotocol offered", cp_id[:48], peer)
        return _refuse(
            connection, HTTPStatus.BAD_REQUEST, "Offer the subprotocol ocpp1.6 or ocpp2.0.1."
        )
    given = _basic(request.headers)
    if not cp_id or given is None:
        log.info("refused station %r from %s: no Basic authentication", cp_id[:48], peer)
        return _refuse(connection, HTTPStatus.UNAUTHORIZED, "Authentication required.")
    user, password = given
    if user != cp_id:
        log.info("refused station %r from %s: user %r is not its id", cp_id[:48], peer, user[:48])
        return _refuse(connection, HTTPStatus.UNAUTHORIZED, "Unknown station or wrong password.")
    try:
        session = await gateway.db(reports.authenticate, cp_id, password, peer=peer)
    except StationRefused:
        return _refuse(connection, HTTPStatus.UNAUTHORIZED, "Unknown station or wrong password.")
    connection.doorkeep_station = session  # type: ignore[attr-defined]
    return None


def select_subprotocol(connection: ServerConnection, offered: Any) -> Subprotocol | None:
    """Locks speak no subprotocol; a station the first of ocpp2.0.1 and
    ocpp1.6 it offers."""
    request = connection.request
    if request is None or not is_station_path(request.path):
        return None
    for choice in offered:
        if choice in SUBPROTOCOLS:
            return Subprotocol(choice)
    raise NegotiationError("offer the subprotocol ocpp1.6 or ocpp2.0.1")


def _peer(ws: ServerConnection) -> str:
    with contextlib.suppress(Exception):
        host, port = ws.remote_address[:2]
        return f"{host}:{port}"
    return "?"


# --- one station's connection ----------------------------------------------------------


@dataclass
class StationLink:
    ws: ServerConnection
    session: StationSession
    version: str
    peer: str
    opened_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    point: StationPoint | None = None
    acked_version: int = -1  # -1: what the station holds is not known
    acked: dict[str, str] = field(default_factory=dict)
    booted: asyncio.Event = field(default_factory=asyncio.Event)
    sync_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    tokens: float = BURST
    refilled: float = field(default_factory=time.monotonic)
    dropped: int = 0  # messages refused for flooding since the station last calmed down
    list_supported: bool = True
    seen_at: float = 0.0  # when its last_seen_at was last written (monotonic)
    ready: bool = False  # the first sync knows what list the station holds
    busy: int = 0  # its calls being handled (each in its own task)
    place: reports.Place | None = None  # its site and parking space, once read (answers.py)
    label: str = ""
    # Badges the platform asked the station to start charging for, and when
    # (monotonic): the start that follows is marked as started remotely.
    remote_starts: dict[str, float] = field(default_factory=dict)

    def started_remotely(self, id_tag: str) -> bool:
        """Whether a start for ``id_tag`` follows a remote start of the last
        REMOTE_START_WINDOW seconds (each remote start marks one start)."""
        asked = self.remote_starts.pop(id_tag.upper(), None)
        return asked is not None and time.monotonic() - asked < REMOTE_START_WINDOW

    @property
    def station_id(self) -> int:
        return self.session.station_id

    def allow(self) -> bool:
        now = time.monotonic()
        self.tokens = min(BURST, self.tokens + (now - self.refilled) * MESSAGES_PER_SECOND)
        self.refilled = now
        if self.tokens >= BURST:
            self.dropped = 0  # calm again: only a flood that goes on is closed
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True


async def serve_station(gateway: Gateway, ws: ServerConnection) -> None:
    """A station's connection, from the upgrade to its end."""
    from doorkeep.gateway.ocpp.v16 import StationPoint16
    from doorkeep.gateway.ocpp.v201 import StationPoint201

    session: StationSession | None = getattr(ws, "doorkeep_station", None)
    if session is None or ws.subprotocol is None:  # pragma: no cover - checked in the handshake
        await ws.close(1008, "not authenticated")
        return
    version = VERSION_OF[str(ws.subprotocol)]
    link = StationLink(ws, session, version, _peer(ws))
    kind = StationPoint16 if version == "1.6" else StationPoint201
    link.point = kind(session.charge_point_id, ws, gateway, link)
    previous = gateway.stations.get(session.station_id)
    gateway.stations[session.station_id] = link
    if previous is not None:
        gateway.spawn(_close(previous.ws, 4009, "connected again"))
    try:
        # Written in turn with the station's other connection rows (its older
        # connection's goodbye waits behind this), as locks' are.
        await gateway.device_row(
            _row_key(session.station_id),
            reports.connected,
            session,
            gateway=gateway.id,
            url=gateway.public_url or "",
            version=version,
            at=link.opened_at,
        )
        log.info(
            "station %s connected from %s (OCPP %s)", session.charge_point_id, link.peer, version
        )
        gateway.spawn(_first_sync(gateway, link), name="station-first-sync")
        async for raw in ws:
            await receive(gateway, link, raw)
    except ConnectionClosed:
        pass
    finally:
        if gateway.stations.get(session.station_id) is link:
            del gateway.stations[session.station_id]
        with contextlib.suppress(Exception):
            await gateway.device_row(
                _row_key(session.station_id),
                reports.disconnected,
                session,
                gateway=gateway.id,
                connected_at=link.opened_at,
            )
        log.info("station %s disconnected", session.charge_point_id)


def _row_key(station_id: int) -> int:
    """The key of a station's turn in ``Gateway.device_row`` (by lock id):
    negative, so that it is never a lock's."""
    return -station_id


async def drop(gateway: Gateway, station_id: int, reason: str) -> bool:
    """Close the station's connection held here (its password was replaced,
    or it was removed): it must authenticate again. Whether one was held."""
    link = gateway.stations.get(station_id)
    if link is None:
        return False
    log.info("closing station %s: %s", link.session.charge_point_id, reason)
    await _close(link.ws, 4003, reason)
    return True


async def _close(ws: ServerConnection, code: int, reason: str) -> None:
    with contextlib.suppress(Exception):
        await ws.close(code, reason)


async def receive(gateway: Gateway, link: StationLink, raw: str | bytes) -> None:
    """One frame from the station. Answers to the platform's calls go to the
    call waiting for them; a call is handled in its own task, so that a slow
    one (a database write) never holds the answers the platform waits for.
    Each frame counts against the station's budget: over it, a call is
    answered GenericError, and a station that goes on is closed (4008)."""
    point = link.point
    assert point is not None
    text = raw if isinstance(raw, str) else raw.decode("utf-8", "replace")
    message = _parsed(text)
    unique_id = _unique_id(message)
    is_call = isinstance(message, list) and bool(message) and message[0] == 2
    # The answer to the call the platform waits for is never dropped for
    # flooding (the platform asked for it); any other answer is (common.py).
    expected = (
        not is_call
        and isinstance(raw, str)
        and unique_id is not None
        and unique_id in point.awaiting
    )
    if not expected and not link.allow():
        link.dropped += 1
        if link.dropped > MAX_DROPPED:
            log.warning("closing station %s: flooding", link.session.charge_point_id)
            await _close(link.ws, 4008, "too many messages")
            return
        if unique_id is not None and is_call:
            await point.send_error(unique_id, "GenericError", "Too many messages: slow down")
        return
    if isinstance(raw, bytes):
        await point.send_error(
            unique_id or "-1", point.malformed_code, "OCPP-J messages are text frames"
        )
        return
    if is_call and link.busy < MAX_IN_FLIGHT:
        link.busy += 1
        gateway.spawn(_handle(link, point, raw), name="ocpp-call")
    else:  # an answer, or more calls in hand than a station needs: read no more meanwhile
        await point.route_message(raw)


async def _handle(link: StationLink, point: StationPoint, raw: str) -> None:
    try:
        await point.route_message(raw)
    finally:
        link.busy -= 1


def _parsed(raw: str) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        return None


def _unique_id(message: Any) -> str | None:
    if isinstance(message, list) and len(message) > 1 and isinstance(message[1], str):
        return message[1][:36]
    return None


# --- the local authorization list -----------------------------------------------------------


Current = tuple[int, dict[str, lists.ListEntry]]  # a station's list version, and its list


def _current(station_id: int) -> Current:
    from doorkeep.chargers.models import Station

    station = Station.objects.select_related("property", "parking_space").get(pk=station_id)
    return station.list_version, lists.entries(station)


def _current_many(station_ids: list[int]) -> dict[int, Current]:
    """The lists of many stations, each list worked out once for all the
    stations of a site (and parking space): a notice names every station of
    the site where a badge changed, and they share one list."""
    from doorkeep.chargers.models import Station

    found: dict[int, Current] = {}
    shared: dict[tuple[int, int | None], dict[str, lists.ListEntry]] = {}
    stations = Station.objects.select_related("property", "parking_space").filter(
        pk__in=station_ids
    )
    for station in stations:
        key = (station.property_id, station.parking_space_id)
        if key not in shared:
            shared[key] = lists.entries(station)
        found[station.pk] = (station.list_version, shared[key])
    return found


async def _first_sync(gateway: Gateway, link: StationLink) -> None:
    """After the boot (or BOOT_WAIT, for a station that reconnected without
    booting): what list does it hold? The one it acknowledged here before,
    if its version says so; else it gets the whole list."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(link.booted.wait(), BOOT_WAIT)
    point = link.point
    assert point is not None
    try:
        held = await point.local_list_version()
    except Exception as exc:
        log.info("station %s did not give its list version: %s", link.session.charge_point_id, exc)
        held = None
    if held is not None and held == link.session.acked_version and held > 0:
        link.acked_version, link.acked = held, dict(link.session.acked_entries)
    link.ready = True
    await sync(gateway, link)


async def sync(
    gateway: Gateway, link: StationLink, *, full: bool = False, current: Current | None = None
) -> None:
    """Bring the station's list in step with the platform's: the difference
    from what it acknowledged, or the whole list (``full``, or when what it
    holds is not known). Before the first sync knows what the station holds,
    there is nothing to do: that sync reads the list after any change
    announced so far. ``current``: the list as read for a notice (read again
    if the station acknowledged a newer version meanwhile)."""
    if not link.ready or not link.list_supported or link.point is None:
        return
    async with link.sync_lock:
        if current is None or current[0] < link.acked_version:
            current = await gateway.db(_current, link.station_id)
        version, listed = current
        changed, removed = lists.difference(link.acked, listed)
        whole = full or link.acked_version < 0
        if not whole and not changed and not removed and version <= link.acked_version:
            return
        if (whole or changed or removed) and version <= link.acked_version:
            # The list changed with the calendar, not by a recorded change.
            version = await gateway.db(lists.raise_version, link.station_id, version)
        try:
            status = await link.point.send_local_list(
                version,
                list(listed.values()) if whole else changed,
                [] if whole else removed,
                whole=whole,
            )
        except OCPPError as exc:  # a CALLERROR
            if exc.code in ("NotImplemented", "NotSupported"):
                link.list_supported = False
                await _failed(gateway, link, "the station keeps no local list")
            else:
                await _failed(gateway, link, f"the station refused the list update: {exc.code}")
            return
        except Exception as exc:  # a timeout, the connection closed
            why = str(exc) or type(exc).__name__
            await _failed(gateway, link, f"no answer to the list update: {why}")
            return
        if status == "Accepted":
            link.acked_version, link.acked = version, lists.snapshot(listed)
            await gateway.db(lists.acknowledged, link.station_id, version, link.acked)
        elif status == "NotSupported":
            link.list_supported = False
            await _failed(gateway, link, "the station keeps no local list")
        elif not whole:  # Failed or VersionMismatch: start again from nothing
            link.acked_version, link.acked = -1, {}
        else:
            await _failed(gateway, link, f"the station refused the list: {status}")
            return
    if status not in ("Accepted", "NotSupported") and not whole:
        await sync(gateway, link)  # what it holds is unknown now: the whole list


async def _failed(gateway: Gateway, link: StationLink, error: str) -> None:
    log.info("station %s: %s", link.session.charge_point_id, error)
    with contextlib.suppress(Exception):
        await gateway.db(lists.push_failed, link.station_id, error)


def changed(gateway: Gateway, station_ids: list[int]) -> list[int]:
    """A notice: these stations' lists changed. Syncs those held here (in the
    background); returns those that are not."""
    held = [station_id for station_id in station_ids if station_id in gateway.stations]
    answers.forget(gateway, held)
    if held:
        gateway.spawn(_sync_many(gateway, held), name="station-sync")
    return [station_id for station_id in station_ids if station_id not in gateway.stations]


async def _sync_many(gateway: Gateway, station_ids: list[int]) -> None:
    """The stations of a notice: their lists read in one database call (read
    one station at a time, the lists of a site's 1,000 stations took seconds
    of database work: bench/chargers.py), then each synced."""
    try:
        current = await gateway.db(_current_many, station_ids)
    except Exception as exc:  # each sync reads its own list then
        log.warning("could not read the lists of %d stations: %s", len(station_ids), exc)
        current = {}
    for station_id in station_ids:
        link = gateway.stations.get(station_id)
        if link is not None:
            gateway.spawn(sync(gateway, link, current=current.get(station_id)), name="station-sync")


async def recheck(gateway: Gateway) -> None:
    """Every RECHECK seconds: the lists of the stations held here, against the
    calendar (a resident's first or last day)."""
    while True:
        await asyncio.sleep(RECHECK)
        answers.forget(gateway, list(gateway.stations))
        for link in list(gateway.stations.values()):
            with contextlib.suppress(Exception):
                await sync(gateway, link)


# --- commands from web workers ------------------------------------------------------------

COMMANDS = ("reset", "unlock_connector", "change_availability", "remote_start", "remote_stop")


async def command(
    gateway: Gateway, station_id: int, action: str, args: dict[str, Any], timeout: float
) -> dict[str, Any]:
    """A command to a station held here: {"ok": true, "status": ...} with the
    station's answer, or {"ok": false, "error": "offline" | "timeout" |
    "rejected" | "bad command", ...}."""
    link = gateway.stations.get(station_id)
    if link is None or link.point is None:
        return {"ok": False, "error": "offline"}
    if action not in COMMANDS:
        return {"ok": False, "error": "bad command"}
    if action == "remote_start" and isinstance(args.get("id_tag"), str):
        link.remote_starts[args["id_tag"].upper()] = time.monotonic()
    try:
        async with asyncio.timeout(timeout):
            status = await link.point.command(action, args)
    except TimeoutError:
        return {"ok": False, "error": "timeout"}
    except ConnectionClosed:
        return {"ok": False, "error": "offline"}
    except (ValueError, TypeError, KeyError) as exc:
        return {"ok": False, "error": "bad command", "reason": str(exc)[:200]}
    except Exception as exc:
        return {"ok": False, "error": "rejected", "reason": str(exc)[:200]}
    return {"ok": True, "status": status}
