"""How a web worker reaches the gateway that holds a lock's connection.

- ``direct`` (default, no extra service): each gateway records its internal
  URL on the lock's Device row when the lock connects; a web worker calls
  that URL. Works across machines as long as gateways are reachable. Each
  web thread keeps one internal WebSocket open to each gateway it talks to
  (``/internal/ws``) and remembers which gateway holds a lock for a few
  seconds (asking again when that gateway says it does not hold it).
- ``redis``: gateways register the locks they hold in Redis and listen on
  their own channel; web workers publish commands there and wait for the reply
  on a list. Select with DOORKEEP_GATEWAY_ROUTING=redis and REDIS_URL.

Both give the same answers: ok, or a LockOffline / LockTimeout / LockRefused
domain error. A gateway asked to unlock a lock another gateway holds forwards
the command the same way.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import socket
import ssl
import threading
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, NamedTuple

from django.conf import settings
from django.db import connection
from django.utils.translation import gettext as _
from websockets.asyncio.client import connect as connect_async
from websockets.client import ClientProtocol
from websockets.exceptions import ConnectionClosed, ConnectionClosedError, WebSocketException
from websockets.frames import Frame, Opcode
from websockets.protocol import State
from websockets.uri import parse_uri

from doorkeep.core import logs, metrics
from doorkeep.core.errors import DomainError, InvalidInput

if TYPE_CHECKING:
    from doorkeep.gateway.server import Gateway
    from doorkeep.gateway.services import Holder
    from doorkeep.gateway.syncing import Hint

log = logging.getLogger("doorkeep.gateway")

MAX_UNLOCK_TIMEOUT = 30.0  # seconds; longer requests are cut to this
HOLDER_TTL = 5.0  # seconds a web worker trusts what it read of a lock's gateway
MAX_HOLDERS = 10_000  # lock -> gateway entries remembered per process
LINK_TIMEOUT = 3.0  # seconds to open an internal link, and to send on one


class LockOffline(DomainError):
    status = 503
    code = "lock_offline"


class LockTimeout(DomainError):
    status = 504
    code = "lock_timeout"


class LockRefused(DomainError):
    status = 409
    code = "lock_refused"


def _backend() -> str:
    return str(getattr(settings, "DOORKEEP_GATEWAY_ROUTING", "direct"))


def _prefix() -> str:
    """The start of every Redis key and channel name (one Redis can serve
    several installations, or test runs, side by side)."""
    return str(getattr(settings, "DOORKEEP_GATEWAY_REDIS_PREFIX", "doorkeep"))


def lock_key(lock_id: int) -> str:
    return f"{_prefix()}:lock:{lock_id}"


def gateway_channel(gateway_id: str) -> str:
    return f"{_prefix()}:gateway:{gateway_id}"


def _redis() -> Any:
    import redis

    # Longer than the longest unlock wait, which blocks on BLPOP.
    return redis.Redis.from_url(
        settings.REDIS_URL, socket_timeout=MAX_UNLOCK_TIMEOUT + 5, socket_connect_timeout=3
    )


_redis_client: Any = None


def _client() -> Any:
    global _redis_client
    if _redis_client is None:
        _redis_client = _redis()
    return _redis_client


def _answer(result: dict[str, Any]) -> dict[str, Any]:
    if result.get("ok"):
        return result
    error = result.get("error")
    if error == "timeout":
        raise LockTimeout(_("The lock did not answer in time. Try again, or check the lock."))
    if error == "refused":
        raise LockRefused(
            _("The lock refused to open: %(reason)s") % {"reason": result.get("reason") or "?"}
        )
    raise LockOffline(_("The lock is offline: it is not connected to the platform right now."))


def internal_base(url: str) -> str:
    """The HTTP base of a gateway's internal URL (a ws:// or wss:// address
    given by mistake is the same host and port)."""
    url = url.rstrip("/")
    if url.startswith("ws://"):
        return "http://" + url[len("ws://") :]
    if url.startswith("wss://"):
        return "https://" + url[len("wss://") :]
    return url


def clamp_timeout(timeout: float) -> float:
    if timeout != timeout or timeout <= 0:  # NaN or not positive
        return 1.0
    return min(float(timeout), MAX_UNLOCK_TIMEOUT)


def send_unlock(lock_id: int, request_id: str, *, timeout: float) -> dict[str, Any]:
    """Ask the lock to open; returns when it acknowledged. Raises LockOffline,
    LockTimeout or LockRefused."""
    started = time.perf_counter()
    answer = deliver_unlock(lock_id, request_id, timeout)
    metrics.observe_unlock(started, answer)
    return _answer(answer)


def deliver_unlock(
    lock_id: int, request_id: str, timeout: float, *, not_via: str = ""
) -> dict[str, Any]:
    """The raw answer of the gateway holding the lock: {"ok": true} or
    {"ok": false, "error": "offline" | "timeout" | "refused", ...}. ``not_via``
    names a gateway that must not be asked (the one forwarding)."""
    timeout = clamp_timeout(timeout)
    if _backend() == "redis":
        try:
            return _redis_unlock(lock_id, request_id, timeout, not_via=not_via)
        except Exception as exc:  # Redis down or unreachable: nobody can reach the lock
            log.warning("cannot route the unlock of lock %s through Redis: %s", lock_id, exc)
            return {"ok": False, "error": "offline"}
    command = {"op": "unlock", "lock": lock_id, "request": request_id, "timeout": timeout}
    command["trace"] = logs.current_request_id()  # the gateway logs with it (core/logs.py)
    return _direct(lock_id, command, timeout + 2, not_via=not_via)


class Change(NamedTuple):
    """A lock whose list changed: the version the change produced and the keys
    whose entries it touched, when the caller knows them (else None: anything
    may have changed)."""

    lock: int
    keys: tuple[int, ...] | None = None
    version: int | None = None


def notice_item(change: Change) -> dict[str, Any]:
    """One lock of a notice: ``{"lock": 7, "keys": [12, 13], "version": 42}``,
    or ``{"lock": 7}`` when anything may have changed."""
    item: dict[str, Any] = {"lock": int(change.lock)}
    if change.keys is not None and change.version is not None:
        item["keys"], item["version"] = [int(k) for k in change.keys], int(change.version)
    return item


def changed_command(changes: Iterable[Change]) -> dict[str, Any]:
    """The notice that the lists of these locks changed, one to each gateway
    naming the locks it holds: ``{"op": "changed_many", "changes": [item, ...]}``.
    (Gateways still take the older notice of one lock, ``{"op": "changed",
    "lock": 7, "keys": [...], "version": 42}``.)"""
    return {"op": "changed_many", "changes": [notice_item(change) for change in changes]}


def notice_hint(item: dict[str, Any]) -> Hint | None:
    """(version, key ids) of one lock of a notice that names its keys, else None."""
    keys, version = item.get("keys"), item.get("version")
    if not isinstance(keys, list) or isinstance(version, bool) or not isinstance(version, int):
        return None
    if not all(isinstance(k, int) and not isinstance(k, bool) for k in keys):
        return None
    return version, tuple(keys)


def notice_changes(command: dict[str, Any]) -> list[tuple[int, Hint | None]]:
    """The locks a notice names, each with its hint (``notice_hint``): of a
    "changed_many" notice, or of the older "changed" notice of one lock.
    Raises ValueError for anything else."""
    if command.get("op") == "changed":
        items = [command]
    elif command.get("op") == "changed_many" and isinstance(command.get("changes"), list):
        items = command["changes"]
    else:
        raise ValueError("not a notice")
    found = []
    for item in items:
        if not isinstance(item, dict):
            raise ValueError("a notice names each lock in an object")
        lock = item.get("lock")
        if isinstance(lock, bool) or not isinstance(lock, int):
            raise ValueError("a notice names each lock by its id")
        found.append((lock, notice_hint(item)))
    return found


def notify_changed(
    lock_id: int, *, keys: list[int] | tuple[int, ...] | None = None, version: int | None = None
) -> None:
    """``notify_changed_many`` of one lock."""
    notify_changed_many([Change(lock_id, None if keys is None else tuple(keys), version)])


def notify_changed_many(changes: Iterable[Change]) -> None:
    """Tell the gateways holding these locks that their lists changed (after
    the commit): one notice to each gateway, naming the locks it holds, each
    with the keys that changed and the version the change produced when the
    caller knows them. Returns once each gateway took its notice (it answers
    at once, before it pushes anything). Best effort: gateways also poll, so
    a lost notice only delays the pushes."""
    every = list(changes)
    # In parts: a notice must stay well inside a gateway's frame limit (1 MiB)
    # with up to MAX_NOTICE_KEYS keys named per lock.
    for start in range(0, len(every), NOTICE_PART):
        part = every[start : start + NOTICE_PART]
        try:
            if _backend() == "redis":
                _redis_notify(part)
            else:
                _direct_notify(part)
        except Exception as exc:
            log.info(
                "could not notify the gateways of a change to %d lock(s) (the first %s): %s",
                len(part),
                part[0].lock,
                exc,
            )


NOTICE_PART = 500  # locks a notice names at most


def _redis_notify(changes: list[Change]) -> None:
    """Who holds each lock, in one MGET; one message on each holder's channel."""
    client = _client()
    names = client.mget([lock_key(change.lock) for change in changes])
    by_gateway: dict[str, list[Change]] = {}
    for change, name in zip(changes, names, strict=True):
        if name:
            by_gateway.setdefault(_text(name), []).append(change)
    for gateway, its in by_gateway.items():
        client.publish(gateway_channel(gateway), json.dumps(changed_command(its)))


NOTICE_WAIT = 2.0  # seconds a web worker waits for a gateway to take a notice


def _direct_notify(changes: list[Change]) -> None:
    """Who holds each lock, in one query (or remembered); one notice to each
    holder on this thread's link to it. A gateway that answers that it does
    not hold some of the locks (they went, or moved, since we looked) makes us
    look again and tell the new holders; so does one we cannot reach."""
    holders = holders_of(change.lock for change in changes)
    for attempt in range(2):
        groups: dict[tuple[str, str], list[Change]] = {}
        for change in changes:
            holder = holders.get(change.lock)
            if holder is not None:
                groups.setdefault(holder, []).append(change)
        again: list[Change] = []
        moved: dict[int, tuple[str, str]] = {}  # lock -> the gateway that said it does not hold it
        for holder, its in groups.items():
            try:
                reply = _ask(holder[1], changed_command(its), NOTICE_WAIT)
            except TimeoutError:
                log.info("gateway %s took no notice of %d lock(s) in time", holder[0], len(its))
                continue  # its watch round catches up
            except _Unreachable as exc:
                log.info("gateway %s took no notice of %d lock(s): %s", holder[0], len(its), exc)
                for change in its:
                    _holders.pop(change.lock, None)
                again.extend(its)  # a new link, perhaps a new holder
                continue
            if not reply.get("ok"):
                log.info("gateway %s refused a notice: %s", holder[0], reply.get("error"))
                continue
            gone = set(reply.get("not_held") or ())
            for change in its:
                if change.lock in gone:
                    _holders.pop(change.lock, None)
                    moved[change.lock] = holder
                    again.append(change)
        if attempt or not again:
            return
        fresh = holders_of((change.lock for change in again), fresh=True)
        # A lock its gateway no longer holds is told again only if another holds it now.
        changes = [c for c in again if c.lock not in moved or fresh.get(c.lock) != moved[c.lock]]
        holders = fresh


# --- charging stations: the Station row names the gateway holding it ------------------------


class StationOffline(DomainError):
    status = 503
    code = "station_offline"


class StationTimeout(DomainError):
    status = 504
    code = "station_timeout"


class StationRejected(DomainError):
    status = 409
    code = "station_rejected"


def _station_holders(station_ids: Iterable[int]) -> dict[int, tuple[str, str]]:
    from doorkeep.chargers.models import Station

    return {
        pk: (gateway, url)
        for pk, gateway, url in Station.objects.filter(
            pk__in=list(station_ids), online=True
        ).values_list("pk", "gateway", "gateway_url")
        if gateway
    }


def notify_stations(station_ids: Iterable[int]) -> None:
    """Tell the gateways holding these stations that their lists changed (after
    the commit): one notice to each. Best effort, as for locks: each gateway
    also rechecks its stations' lists."""
    groups: dict[tuple[str, str], list[int]] = {}
    for station, holder in _station_holders(station_ids).items():
        groups.setdefault(holder, []).append(station)
    for (gateway, url), ids in groups.items():
        for start in range(0, len(ids), NOTICE_PART):
            notice = {"op": "stations_changed", "stations": ids[start : start + NOTICE_PART]}
            try:
                if _backend() == "redis":
                    _client().publish(gateway_channel(gateway), json.dumps(notice))
                else:
                    _ask(url, notice, NOTICE_WAIT)
            except Exception as exc:
                log.info("could not notify gateway %s of %d station(s): %s", gateway, len(ids), exc)


def drop_station(station_id: int, reason: str) -> None:
    """Have the gateway holding the station close its connection (its
    password was replaced, or it was removed): it must authenticate again.
    Best effort: a gateway that cannot be told keeps it until it reconnects."""
    holder = _station_holders([station_id]).get(station_id)
    if holder is None:
        return
    command = {"op": "station_drop", "station": station_id, "reason": reason}
    try:
        if _backend() == "redis":
            _client().publish(gateway_channel(holder[0]), json.dumps(command))
        else:
            _ask(holder[1], command, NOTICE_WAIT)
    except Exception as exc:
        log.warning("could not have station %s disconnected: %s", station_id, exc)


STATION_TIMEOUT = 10.0  # seconds a station has to answer a command


def send_station_command(
    station_id: int, action: str, args: dict[str, Any], *, timeout: float = STATION_TIMEOUT
) -> str:
    """A command to a charging station, through the gateway holding it.
    Returns the station's answer (its status: Accepted, Rejected...); raises
    StationOffline or StationTimeout."""
    timeout = clamp_timeout(timeout)
    holder = _station_holders([station_id]).get(station_id)
    if holder is None:
        raise StationOffline(_("The charging station is offline."))
    command = {
        "op": "station",
        "station": station_id,
        "action": action,
        "args": args,
        "timeout": timeout,
    }
    try:
        return _station_reply(holder, command, timeout)
    except TimeoutError:
        raise StationTimeout(_("The charging station did not answer in time. Try again.")) from None
    except (_Unreachable, OSError) as exc:
        log.info("cannot reach the gateway of station %s: %s", station_id, exc)
        raise StationOffline(_("The charging station is offline.")) from None
    except DomainError:
        raise
    except Exception as exc:  # Redis down or unreachable: nobody can reach the station
        log.warning("cannot route a command to station %s: %s", station_id, exc)
        raise StationOffline(_("The charging station is offline.")) from None


def _station_reply(holder: tuple[str, str], command: dict[str, Any], timeout: float) -> str:
    """Send a station command to the gateway ``holder`` and read its answer,
    as ``send_station_command`` describes it."""
    if _backend() == "redis":
        reply_key = f"{_prefix()}:reply:station:{next(_ids)}:{time.time_ns()}"
        client = _client()
        if not client.publish(
            gateway_channel(holder[0]), json.dumps({**command, "reply": reply_key})
        ):
            raise StationOffline(_("The charging station is offline."))
        answer = client.blpop([reply_key], timeout=timeout + 1)
        if answer is None:
            raise TimeoutError
        result: dict[str, Any] = json.loads(answer[1])
    else:
        result = _ask(holder[1], command, timeout + 2)
    if result.get("ok"):
        return str(result.get("status") or "")
    if result.get("error") == "timeout":
        raise StationTimeout(_("The charging station did not answer in time. Try again."))
    if result.get("error") == "bad command":
        raise InvalidInput(
            _("The charging station cannot take this command: %(reason)s")
            % {"reason": result.get("reason") or "?"},
            code="bad_station_command",
        )
    if result.get("error") == "rejected":
        raise StationRejected(
            _("The charging station refused the command: %(reason)s")
            % {"reason": result.get("reason") or "?"}
        )
    raise StationOffline(_("The charging station is offline."))


# --- laundry machines: the Machine row names the gateway holding it -------------------------


class MachineOffline(DomainError):
    status = 503
    code = "machine_offline"


class MachineTimeout(DomainError):
    status = 504
    code = "machine_timeout"


class MachineRejected(DomainError):
    status = 409
    code = "machine_rejected"


def _machine_holders(machine_ids: Iterable[int]) -> dict[int, tuple[str, str]]:
    from doorkeep.laundry.models import Machine

    return {
        pk: (gateway, url)
        for pk, gateway, url in Machine.objects.filter(
            pk__in=list(machine_ids), online=True
        ).values_list("pk", "gateway", "gateway_url")
        if gateway
    }


def _tell(holder: tuple[str, str], command: dict[str, Any]) -> None:
    """A command that needs no answer, to the gateway ``holder``."""
    if _backend() == "redis":
        _client().publish(gateway_channel(holder[0]), json.dumps(command))
    else:
        _ask(holder[1], command, NOTICE_WAIT)


def notify_machines(machine_ids: Iterable[int]) -> None:
    """Tell the gateways holding these laundry machines that their lists
    changed (after the commit): one notice to each. Best effort: each
    gateway also checks its machines' list versions."""
    groups: dict[tuple[str, str], list[int]] = {}
    for machine, holder in _machine_holders(machine_ids).items():
        groups.setdefault(holder, []).append(machine)
    for holder, ids in groups.items():
        for start in range(0, len(ids), NOTICE_PART):
            notice = {"op": "machines_changed", "machines": ids[start : start + NOTICE_PART]}
            try:
                _tell(holder, notice)
            except Exception as exc:
                log.info(
                    "could not notify gateway %s of %d machine(s): %s", holder[0], len(ids), exc
                )


def drop_machine(machine_id: int, reason: str) -> None:
    """Have the gateway holding the machine close its connection (its secret
    was replaced, or it was removed). Best effort: the gateway's watch round
    closes it too."""
    holder = _machine_holders([machine_id]).get(machine_id)
    if holder is None:
        return
    try:
        _tell(holder, {"op": "machine_drop", "machine": machine_id, "reason": reason})
    except Exception as exc:
        log.warning("could not have machine %s disconnected: %s", machine_id, exc)


MACHINE_TIMEOUT = 10.0  # seconds a laundry machine has to answer a start


def send_machine_start(
    machine_id: int,
    request_id: str,
    *,
    program: str = "",
    person_id: int | None = None,
    timeout: float = MACHINE_TIMEOUT,
) -> dict[str, Any]:
    """Have a laundry machine start a cycle, through the gateway holding it,
    and wait for its answer. Returns {"ok": true}; raises MachineOffline
    (503), MachineTimeout (504) or MachineRejected (409, with its reason)."""
    timeout = clamp_timeout(timeout)
    offline = MachineOffline(
        _("The machine is offline: it is not connected to the platform right now.")
    )
    holder = _machine_holders([machine_id]).get(machine_id)
    if holder is None:
        raise offline
    command = {
        "op": "machine_start",
        "machine": machine_id,
        "request": request_id,
        "program": program,
        "person": person_id,
        "timeout": timeout,
    }
    try:
        if _backend() == "redis":
            reply_key = f"{_prefix()}:reply:machine:{request_id}"
            client = _client()
            if not client.publish(
                gateway_channel(holder[0]), json.dumps({**command, "reply": reply_key})
            ):
                raise offline
            answer = client.blpop([reply_key], timeout=timeout + 1)
            if answer is None:
                raise TimeoutError
            result: dict[str, Any] = json.loads(answer[1])
        else:
            result = _ask(holder[1], command, timeout + 2)
    except TimeoutError:
        raise MachineTimeout(_("The machine did not answer in time. Try again.")) from None
    except DomainError:
        raise
    except Exception as exc:  # the gateway or Redis cannot be reached
        log.info("cannot reach the gateway of machine %s: %s", machine_id, exc)
        raise offline from None
    if result.get("ok"):
        return result
    if result.get("error") == "timeout":
        raise MachineTimeout(_("The machine did not answer in time. Try again."))
    if result.get("error") == "rejected":
        raise MachineRejected(
            _("The machine refused to start: %(reason)s") % {"reason": result.get("reason") or "?"},
            reason=str(result.get("reason") or ""),
        )
    raise offline


# --- direct routing: who holds the lock, and a kept-open link to it -------------------------

_holders: dict[int, tuple[str, str, float]] = {}  # lock id -> (gateway, url, valid until)


def holder_of(lock_id: int, *, fresh: bool = False) -> tuple[str, str] | None:
    """The gateway holding the lock and its internal URL (``holders_of``)."""
    return holders_of((lock_id,), fresh=fresh).get(lock_id)


HOLDERS_PER_QUERY = 500  # lock ids in one query's IN list
_HOLDERS_SQL = (
    "SELECT lock_id, gateway, gateway_url FROM gateway_device WHERE lock_id IN ({ids}) AND online"
)


def holders_of(lock_ids: Iterable[int], *, fresh: bool = False) -> dict[int, tuple[str, str]]:
    """The gateway holding each of the locks held by one, and its internal
    URL, by lock id: from the locks' Device rows, in one query for up to
    HOLDERS_PER_QUERY locks, remembered for HOLDER_TTL seconds (unless
    ``fresh``)."""
    now = time.monotonic()
    found: dict[int, tuple[str, str]] = {}
    missing: list[int] = []
    for lock_id in lock_ids:
        cached = None if fresh else _holders.get(lock_id)
        if cached is not None and cached[2] > now:
            found[lock_id] = (cached[0], cached[1])
        else:
            missing.append(lock_id)
    for start in range(0, len(missing), HOLDERS_PER_QUERY):
        chunk = missing[start : start + HOLDERS_PER_QUERY]
        with connection.cursor() as cursor:  # by hand: asked for every unlock not remembered
            cursor.execute(_HOLDERS_SQL.format(ids=", ".join(["%s"] * len(chunk))), chunk)
            rows = cursor.fetchall()
        if len(_holders) + len(rows) > MAX_HOLDERS:
            _holders.clear()
        for lock_id, gateway, url in rows:
            if url:
                found[lock_id] = (gateway, url)
                _holders[lock_id] = (gateway, url, now + HOLDER_TTL)
        for lock_id in chunk:
            if lock_id not in found:
                _holders.pop(lock_id, None)
    return found


def _direct(
    lock_id: int, command: dict[str, Any], wait: float, *, not_via: str = ""
) -> dict[str, Any]:
    """Send ``command`` to the gateway holding the lock and return its
    answer. A gateway that answers that it does not hold the lock (it went,
    or moved, since we looked) makes us look again and ask the new holder;
    so does one we cannot reach, unless the command may have reached it."""
    holder = holder_of(lock_id)
    for attempt in range(2):
        if holder is None or holder[0] == not_via:
            return {"ok": False, "error": "offline"}
        try:
            result = _ask(holder[1], command, wait)
        except TimeoutError:
            return {"ok": False, "error": "timeout"}
        except _Unreachable as exc:
            log.info(
                "gateway %s did not take %s of lock %s: %s", holder[0], command["op"], lock_id, exc
            )
            _holders.pop(lock_id, None)
            if attempt or (exc.sent and command["op"] == "unlock"):  # it may have opened
                return {"ok": False, "error": "offline"}
            holder = holder_of(lock_id, fresh=True)  # a new link, perhaps a new holder
            continue
        held = result.get("held", result.get("error") != "offline")
        if held or attempt:
            return result
        fresh = holder_of(lock_id, fresh=True)
        if fresh == holder:
            return result
        holder = fresh
    return {"ok": False, "error": "offline"}  # pragma: no cover - the loop returns


class _Unreachable(Exception):
    def __init__(self, message: str, *, sent: bool) -> None:
        super().__init__(message)
        self.sent = sent  # the command may have reached the gateway


_links = threading.local()  # per web thread: {internal URL: open connection}
_ids = itertools.count(1)


def internal_ws_url(url: str) -> str:
    from doorkeep.gateway.internal import INTERNAL_WS_PATH

    scheme, rest = internal_base(url).split("://", 1)
    return ("wss://" if scheme == "https" else "ws://") + rest + INTERNAL_WS_PATH


def _link_options() -> dict[str, Any]:
    from doorkeep.gateway.internal import internal_token

    return {
        "additional_headers": {"X-Doorkeep-Internal": internal_token()},
        "open_timeout": 3,
        "compression": None,
        "proxy": None,
        "ping_interval": None,
        "max_size": None,
    }


class _Link:
    """One kept-open internal WebSocket, driven in the calling web thread:
    websockets' Sans-I/O protocol (``ClientProtocol``) over a plain blocking
    socket. ``websockets.sync`` would read on a thread of its own and hand
    every answer over; here the thread that waits reads, so an unlock's answer
    costs no thread switch (bench/gateway_unlock.py)."""

    def __init__(self, url: str) -> None:
        from doorkeep.gateway.internal import internal_token

        self.pending: list[str] = []  # whole messages received, not yet read
        self.fragments: list[bytes] = []
        self.sock: socket.socket | None = None
        try:
            uri = parse_uri(internal_ws_url(url))
            self.protocol = ClientProtocol(uri, max_size=None)
            self.sock = socket.create_connection((uri.host, uri.port), timeout=LINK_TIMEOUT)
            _keep_alive(self.sock)
            if uri.secure:
                context = ssl.create_default_context()
                self.sock = context.wrap_socket(self.sock, server_hostname=uri.host)
            request = self.protocol.connect()
            request.headers["X-Doorkeep-Internal"] = internal_token()
            self.protocol.send_request(request)
            self._flush()
            deadline = time.monotonic() + LINK_TIMEOUT
            while self.protocol.state is State.CONNECTING:
                self._read(deadline)
            if self.protocol.handshake_exc is not None:
                raise self.protocol.handshake_exc
            if not self.open:
                raise ConnectionError("the gateway closed the connection")
        except (OSError, WebSocketException, TimeoutError, ValueError) as exc:
            # ValueError: a gateway URL that is not one (a misconfiguration)
            self.close()
            raise _Unreachable(str(exc) or type(exc).__name__, sent=False) from exc

    @property
    def open(self) -> bool:
        return self.sock is not None and self.protocol.state is State.OPEN

    def send(self, text: str) -> None:
        self._drain()  # a close (a gateway restart) or a ping that came while we were away
        if not self.open:
            raise ConnectionClosedError(None, None)
        self.protocol.send_text(text.encode())
        self._flush()

    def recv(self, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while not self.pending:
            if not self.open:
                raise ConnectionClosedError(None, None)
            self._read(deadline)
        return self.pending.pop(0)

    def close(self) -> None:
        sock, self.sock = self.sock, None
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.close()

    def _socket(self) -> socket.socket:
        if self.sock is None:
            raise ConnectionClosedError(None, None)
        return self.sock

    def _flush(self) -> None:
        for data in self.protocol.data_to_send():
            if data:
                self._socket().sendall(data)
            else:  # the protocol wants the connection closed
                self.close()

    def _drain(self) -> None:
        sock = self._socket()
        sock.setblocking(False)
        try:
            while self.sock is not None:
                try:
                    data = sock.recv(65536)
                except (BlockingIOError, ssl.SSLWantReadError):
                    return
                except OSError:
                    data = b""
                self._received(data)
        finally:
            with contextlib.suppress(OSError):
                sock.settimeout(LINK_TIMEOUT)  # sends block again (for at most this long)

    def _read(self, deadline: float) -> None:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("no answer in time")
        sock = self._socket()
        sock.settimeout(left)
        try:
            data = sock.recv(65536)
        except TimeoutError:
            raise
        except OSError:
            data = b""
        self._received(data)

    def _received(self, data: bytes) -> None:
        if data:
            self.protocol.receive_data(data)
        else:
            self.protocol.receive_eof()
        for event in self.protocol.events_received():
            if isinstance(event, Frame) and event.opcode in (Opcode.TEXT, Opcode.CONT):
                self.fragments.append(event.data)
                if event.fin:
                    self.pending.append(b"".join(self.fragments).decode())
                    self.fragments = []
        if data:
            self._flush()  # pongs, and the closing handshake
        else:
            with contextlib.suppress(OSError):
                self._flush()
            self.close()


def _open(url: str) -> _Link:
    return _Link(url)


def _keep_alive(sock: socket.socket) -> None:
    """No delay for small frames, and TCP keepalives: the gateway does not
    ping these links, and a firewall or load balancer between a web worker and
    a gateway must not forget an idle one."""
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    for option, value in (("TCP_KEEPIDLE", 20), ("TCP_KEEPINTVL", 10), ("TCP_KEEPCNT", 3)):
        if hasattr(socket, option):  # Linux; other systems keep their defaults
            sock.setsockopt(socket.IPPROTO_TCP, getattr(socket, option), value)


def _ask(url: str, command: dict[str, Any], wait: float) -> dict[str, Any]:
    """One command on this thread's kept-open internal WebSocket to the
    gateway at ``url`` (opened on first use, again after it closed)."""
    links: dict[str, _Link] = _links.__dict__.setdefault("links", {})
    command = {**command, "id": next(_ids)}
    ws = links.get(url)
    if ws is not None:
        try:
            ws.send(json.dumps(command))
        except (ConnectionClosed, OSError):  # closed while we were away (a restart)
            links.pop(url, None)
            ws.close()
            ws = None
    if ws is None:
        for stale in [u for u, c in links.items() if not c.open]:
            links.pop(stale).close()
        ws = links[url] = _open(url)
        try:
            ws.send(json.dumps(command))
        except (ConnectionClosed, OSError) as exc:
            links.pop(url, None)
            ws.close()
            raise _Unreachable(str(exc) or type(exc).__name__, sent=False) from exc
    try:
        while True:
            reply: dict[str, Any] = json.loads(ws.recv(timeout=wait))
            if reply.pop("id", None) == command["id"]:
                return reply
            # A late answer to a command that timed out before: skip it.
    except TimeoutError:
        # The gateway answers an unlock 2 s before this wait ends, even when the
        # lock does not: silence means the link is broken. The next command
        # opens a new one.
        links.pop(url, None)
        ws.close()
        raise
    except (ConnectionClosed, OSError, ValueError) as exc:
        links.pop(url, None)
        ws.close()
        raise _Unreachable(str(exc) or type(exc).__name__, sent=True) from exc


async def ask_async(url: str, command: dict[str, Any], wait: float) -> dict[str, Any]:
    """The same from a gateway's event loop, on a connection of its own
    (gateway-to-gateway commands are rare): no thread waits meanwhile."""
    try:
        async with connect_async(internal_ws_url(url), **_link_options()) as ws:
            await ws.send(json.dumps({**command, "id": 1}))
            async with asyncio.timeout(wait):
                reply: dict[str, Any] = json.loads(await ws.recv())
            reply.pop("id", None)
            return reply
    except TimeoutError:
        raise
    except (OSError, WebSocketException, ValueError) as exc:
        raise _Unreachable(str(exc) or type(exc).__name__, sent=True) from exc


def _redis_unlock(
    lock_id: int, request_id: str, timeout: float, *, not_via: str = ""
) -> dict[str, Any]:
    client = _client()
    gateway = client.get(lock_key(lock_id))
    if not gateway or gateway.decode() == not_via:
        return {"ok": False, "error": "offline"}
    reply = f"{_prefix()}:reply:{request_id}"
    receivers = client.publish(
        gateway_channel(gateway.decode()),
        json.dumps(
            {
                "op": "unlock",
                "lock": lock_id,
                "request": request_id,
                "timeout": timeout,
                "reply": reply,
                "trace": logs.current_request_id(),
            }
        ),
    )
    if not receivers:  # registered, but that gateway is gone (it crashed)
        return {"ok": False, "error": "offline"}
    answer = client.blpop([reply], timeout=timeout + 1)
    if answer is None:
        return {"ok": False, "error": "timeout"}
    result: dict[str, Any] = json.loads(answer[1])
    return result


# --- the gateway's side ---------------------------------------------------------------


class DirectSide:
    """Direct routing needs nothing more: the Device row holds the gateway URL."""

    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    async def registered(self, lock_id: int) -> None:
        return None

    async def unregistered(self, lock_id: int) -> None:
        return None

    async def replaced(self, lock_id: int, holder: Holder, before: float) -> None:
        """The lock connected here while ``holder`` still thinks it holds it:
        tell that gateway to close its (dead or duplicate) connection, if
        opened before ``before`` (epoch seconds, on that gateway's clock)."""
        if holder.url:
            await ask_async(holder.url, {"op": "drop", "lock": lock_id, "before": before}, 5)

    async def tell(self, holder: Holder, command: dict[str, Any]) -> None:
        """A command for the gateway ``holder`` that needs no answer."""
        if holder.url:
            await ask_async(holder.url, command, 5)

    async def forward_unlock(self, lock_id: int, request_id: str, timeout: float) -> dict[str, Any]:
        """Unlock a lock that another gateway holds. A database thread looks
        the holder up; the wait for the lock's answer holds none."""
        timeout = clamp_timeout(timeout)
        holder = await self.gateway.db(holder_of, lock_id, fresh=True)
        if holder is None or holder[0] == self.gateway.id:
            return {"ok": False, "error": "offline"}
        command = {"op": "unlock", "lock": lock_id, "request": request_id, "timeout": timeout}
        command["trace"] = logs.current_request_id()  # this task's, from the asking web worker
        try:
            return await ask_async(holder[1], command, timeout + 2)
        except TimeoutError:
            return {"ok": False, "error": "timeout"}
        except _Unreachable as exc:
            log.info("gateway %s did not take the unlock of lock %s: %s", holder[0], lock_id, exc)
            return {"ok": False, "error": "offline"}


class RedisSide(DirectSide):
    """Registers held locks in Redis and serves the gateway's command channel."""

    TTL = 120

    def __init__(self, gateway: Gateway) -> None:
        super().__init__(gateway)
        import redis.asyncio

        self.redis = redis.asyncio.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=3)
        self.channel = gateway_channel(gateway.id)
        self.tasks: list[asyncio.Task[None]] = []
        self.running: set[asyncio.Task[None]] = set()
        self.ready = asyncio.Event()

    async def start(self) -> None:
        await self.redis.ping()  # fail at start, clearly, if Redis is not there
        self.tasks = [
            asyncio.create_task(self._listen(), name="redis-listen"),
            asyncio.create_task(self._refresh(), name="redis-refresh"),
        ]
        await asyncio.wait_for(self.ready.wait(), 10)

    async def stop(self) -> None:
        for task in (*self.tasks, *self.running):
            task.cancel()
        with contextlib.suppress(Exception):
            for lock_id in list(self.gateway.connections):
                await self.unregistered(lock_id)
        with contextlib.suppress(Exception):
            await self.redis.aclose()

    async def registered(self, lock_id: int) -> None:
        await self.redis.set(lock_key(lock_id), self.gateway.id, ex=self.TTL)

    # Refreshing (and registering again after a lost Redis) must not take a
    # key back from another gateway: the lock may have reconnected there while
    # its old connection here is still closing. Only a new connection's
    # ``registered`` writes unconditionally: the newest connection wins.
    _KEEP_IF_MINE_OR_FREE = (
        "local v = redis.call('get', KEYS[1]) "
        "if not v or v == ARGV[1] then "
        "return redis.call('set', KEYS[1], ARGV[1], 'EX', ARGV[2]) end return 0"
    )

    def _held_here(self) -> list[int]:
        """The locks whose current connection here is registered and not closing."""
        return [
            lock_id
            for lock_id, conn in list(self.gateway.connections.items())
            if conn.registered and not conn.closing
        ]

    async def _keep(self, lock_ids: list[int]) -> None:
        async with self.redis.pipeline(transaction=False) as pipe:
            for lock_id in lock_ids:
                pipe.eval(
                    self._KEEP_IF_MINE_OR_FREE, 1, lock_key(lock_id), self.gateway.id, self.TTL
                )
            await pipe.execute()

    # Delete the key only if it still names this gateway, in one step: read
    # and delete as two calls, a registration by another gateway landing in
    # between was deleted with it (the lock unreachable until the refresh).
    _DELETE_IF_MINE = (
        "if redis.call('get', KEYS[1]) == ARGV[1] then "
        "return redis.call('del', KEYS[1]) else return 0 end"
    )

    async def unregistered(self, lock_id: int) -> None:
        await self.redis.eval(self._DELETE_IF_MINE, 1, lock_key(lock_id), self.gateway.id)

    async def replaced(self, lock_id: int, holder: Holder, before: float) -> None:
        await self.redis.publish(
            gateway_channel(holder.gateway),
            json.dumps({"op": "drop", "lock": lock_id, "before": before}),
        )

    async def tell(self, holder: Holder, command: dict[str, Any]) -> None:
        await self.redis.publish(gateway_channel(holder.gateway), json.dumps(command))

    async def forward_unlock(self, lock_id: int, request_id: str, timeout: float) -> dict[str, Any]:
        timeout = clamp_timeout(timeout)
        gateway = _text(await self.redis.get(lock_key(lock_id)))
        if not gateway or gateway == self.gateway.id:
            return {"ok": False, "error": "offline"}
        reply = f"{_prefix()}:reply:{request_id}"
        command = {
            "op": "unlock",
            "lock": lock_id,
            "request": request_id,
            "timeout": timeout,
            "reply": reply,
            "trace": logs.current_request_id(),
        }
        if not await self.redis.publish(gateway_channel(gateway), json.dumps(command)):
            return {"ok": False, "error": "offline"}
        answer = await self.redis.blpop([reply], timeout=timeout + 1)
        if answer is None:
            return {"ok": False, "error": "timeout"}
        result: dict[str, Any] = json.loads(answer[1])
        return result

    async def _refresh(self) -> None:
        while True:
            await asyncio.sleep(self.TTL / 3)
            try:
                await self._keep(self._held_here())
            except Exception as exc:
                log.warning(
                    "gateway %s could not refresh its locks in Redis: %s", self.gateway.id, exc
                )

    async def _listen(self) -> None:
        """Serve the command channel; after a lost Redis connection, subscribe
        again and re-register the locks held here."""
        first = True
        while True:
            try:
                async with self.redis.pubsub() as pubsub:
                    await pubsub.subscribe(self.channel)
                    if not first:
                        await self._keep(self._held_here())
                    first = False
                    self.ready.set()
                    async for message in pubsub.listen():
                        if message.get("type") == "message":
                            self._command(message["data"])
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning(
                    "gateway %s lost its Redis channel (%s); retrying", self.gateway.id, exc
                )
                await asyncio.sleep(1)

    def _command(self, data: Any) -> None:
        try:
            command = json.loads(data)
            op = command.get("op")
            if op in ("changed", "changed_many"):  # nobody waits for an answer
                self.gateway.changed_many(notice_changes(command))
                return
            if op == "stations_changed":
                from doorkeep.gateway.internal import station_ids
                from doorkeep.gateway.ocpp import csms

                csms.changed(self.gateway, station_ids(command))
                return
            if op == "station":
                self._spawn(self._station(command))
                return
            if op in ("machines_changed", "machine_start", "machine_drop"):
                self._spawn(self._machine(command))
                return
            if op == "station_drop":
                from doorkeep.gateway.ocpp import csms

                reason = str(command.get("reason") or "dropped")[:100]
                self._spawn(csms.drop(self.gateway, int(command["station"]), reason))
                return
            lock_id = int(command["lock"])
        except (ValueError, TypeError, KeyError, AttributeError):
            log.warning("gateway %s ignored a malformed command: %.100r", self.gateway.id, data)
            return
        if op == "unlock":
            self._spawn(self._unlock(lock_id, command))
        elif op == "drop":
            self._spawn(self.gateway.drop(lock_id, before=float(command.get("before") or 0)))

    def _spawn(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self.running.add(task)
        task.add_done_callback(self.running.discard)

    async def _unlock(self, lock_id: int, command: dict[str, Any]) -> None:
        logs.REQUEST_ID.set(logs.sane_id(command.get("trace")))  # this task's log lines
        try:
            result = await self.gateway.unlock(
                lock_id,
                str(command["request"]),
                float(command.get("timeout", 5)),
                forward=False,
            )
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.rpush(str(command["reply"]), json.dumps(result))
                pipe.expire(str(command["reply"]), 30)
                await pipe.execute()
        except Exception:
            log.exception(
                "gateway %s could not answer an unlock of lock %s", self.gateway.id, lock_id
            )

    async def _station(self, command: dict[str, Any]) -> None:
        from doorkeep.gateway.ocpp import csms

        try:
            result = await csms.command(
                self.gateway,
                int(command["station"]),
                str(command.get("action")),
                dict(command.get("args") or {}),
                clamp_timeout(float(command.get("timeout", STATION_TIMEOUT))),
            )
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.rpush(str(command["reply"]), json.dumps(result))
                pipe.expire(str(command["reply"]), 30)
                await pipe.execute()
        except Exception:
            log.exception("gateway %s could not answer a station command", self.gateway.id)

    async def _machine(self, command: dict[str, Any]) -> None:
        """A laundry machine's command; a start is answered on its reply list."""
        from doorkeep.gateway.laundry import machines

        try:
            result = await machines.internal_command(self.gateway, command)
            if command.get("reply"):
                async with self.redis.pipeline(transaction=True) as pipe:
                    pipe.rpush(str(command["reply"]), json.dumps(result))
                    pipe.expire(str(command["reply"]), 30)
                    await pipe.execute()
        except Exception:
            log.exception("gateway %s could not handle a machine command", self.gateway.id)


def _text(value: bytes | str | None) -> str:
    return value.decode() if isinstance(value, bytes) else value or ""


def gateway_side(gateway: Gateway) -> DirectSide:
    return RedisSide(gateway) if _backend() == "redis" else DirectSide(gateway)
