"""The gateway's side of laundry machines: each controller's connection, from
its hello (a lock's hello with ``"kind": "laundry"``, sent here by
``Gateway.handle``) to its end.

It is the lock protocol: the same transport, welcome, throttling, error
frames and close codes (the gateway's ``Link``, ``Gateway.throttle`` and
``Gateway.retire``), the same list sync (one push at a time, a difference
from what the controller acknowledged, else the whole list), the same
events; and what a laundry machine adds: cycle reports (stored once),
its state, and the portal's start command. The machines held here are in
``gateway.machines``, by id; web workers reach them through routing.py
(``send_machine_start``, ``notify_machines``, ``drop_machine``). Database
work runs in the gateway's threads (doorkeep.laundry.reports)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed
from websockets.protocol import State

from doorkeep.gateway import protocol
from doorkeep.gateway.laundry import protocol as laundry_protocol
from doorkeep.gateway.protocol import ProtocolError
from doorkeep.gateway.server import ACK_TIMEOUT, PING_INTERVAL, Link
from doorkeep.gateway.services import (
    CLOSE_BAD_HELLO,
    CLOSE_REFUSED,
    CLOSE_REPLACED,
    Holder,
)
from doorkeep.laundry import lists, reports
from doorkeep.laundry.reports import MachineRefused, MachineSession

if TYPE_CHECKING:
    from doorkeep.gateway.server import Gateway

log = logging.getLogger("doorkeep.gateway")

MAX_DIFF_ENTRIES = 50  # a bigger difference is sent as the full list (unless < half the list)
RECHECK = 300.0  # seconds between checks that a machine's list still holds (the calendar)
PORTAL_REMEMBERED = 200  # portal starts a connection remembers (whose cycle it is)
START_TIMEOUT = 10.0  # seconds a controller has to answer a start, by default


@dataclass
class MachinePush:
    """A list push waiting for the controller's acknowledgement."""

    version: int
    listed: dict[int, lists.Entry]
    sent_at: float = field(default_factory=time.monotonic)
    sent_wall: datetime = field(default_factory=lambda: datetime.now(UTC))
    failed: bool = False  # not acknowledged within ACK_TIMEOUT


@dataclass
class MachineLink(Link):
    session: MachineSession
    acked_version: int = -1  # -1: what the controller holds is not known
    acked: dict[str, str] = field(default_factory=dict)  # its fingerprints, by entry id
    inflight: MachinePush | None = None
    dirty: bool = False  # a change came while a push was in flight
    queued: int = 0  # syncs asked for and not done yet
    welcomed: bool = False
    sync_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    pending: dict[str, asyncio.Future[dict[str, Any]]] = field(default_factory=dict)
    # Starts sent from the portal through this connection: request id -> the
    # person who asked (the cycle that follows is theirs).
    portal: dict[str, int] = field(default_factory=dict)

    @property
    def who(self) -> str:
        return f"machine {self.session.serial}"

    @property
    def machine_id(self) -> int:
        return self.session.machine_id


def _row_key(machine_id: int) -> str:
    """A machine's turn in ``Gateway.device_row`` (never a lock's id)."""
    return f"machine:{machine_id}"


async def serve(
    gateway: Gateway, ws: ServerConnection, hello: dict[str, Any], received: datetime, peer: str
) -> None:
    """A controller's connection, after its hello was read (``protocol.hello``
    took it already): authenticate, welcome, sync its list, then read."""
    try:
        serial, secret, device_version = protocol.hello(hello)
        state = laundry_protocol.state(hello.get("state"))
        programs = laundry_protocol.programs(hello.get("programs"))
    except ProtocolError as exc:
        log.info("closing %s (%d): %s", peer, CLOSE_BAD_HELLO, exc.message)
        with contextlib.suppress(ConnectionClosed):
            await ws.send(protocol.encode(exc.frame()))
            await ws.close(CLOSE_BAD_HELLO, exc.code)
        return
    try:
        session = await gateway.db(reports.authenticate, serial, secret, peer=peer)
    except MachineRefused:
        with contextlib.suppress(ConnectionClosed):
            await ws.close(CLOSE_REFUSED, reports.REFUSED)
        return
    link = MachineLink(ws, session, peer=peer)
    if device_version != 0 and device_version == session.acked_version:
        link.acked_version, link.acked = session.acked_version, dict(session.acked_entries)
    previous = gateway.machines.get(session.machine_id)
    gateway.machines[session.machine_id] = link
    if previous is not None:
        gateway.retire(previous, CLOSE_REPLACED, "connected again")
    offset = protocol.clock_offset_ms(hello.get("clock"), received)
    try:
        holder = await gateway.device_row(
            _row_key(session.machine_id),
            reports.connected,
            session,
            gateway=gateway.id,
            url=gateway.public_url or "",
            at=link.connected_at,
            firmware=str(hello.get("firmware") or ""),
            clock_offset_ms=offset,
            state=state,
            programs=programs,
        )
        if holder is not None:
            gateway.spawn(_replaced(gateway, session.machine_id, holder))
        await link.send(
            {
                "type": "welcome",
                "protocol": protocol.VERSION,
                "time": protocol.now_iso(),
                "clock_offset_ms": offset,
                "heartbeat": PING_INTERVAL,
                "last_seq": session.last_seq,
                "last_cycle": session.last_cycle,
            }
        )
        link.welcomed = True
        log.info("machine %s connected from %s", session.serial, peer)
        await sync(gateway, link, initial=True)
        async for message in ws:
            await on_message(gateway, link, message)
    except ConnectionClosed:
        pass
    finally:
        await _release(gateway, link)


async def _replaced(gateway: Gateway, machine_id: int, holder: Holder) -> None:
    """Tell ``holder`` to close its older connection of the machine (the
    moment is the holder's own, as for locks: ``Gateway._replaced``)."""
    moment = holder.connected_at
    before = time.time() if moment is None else moment.timestamp() + 1e-6
    command = {
        "op": "machine_drop",
        "machine": machine_id,
        "reason": "connected again elsewhere",
        "before": before,
    }
    try:
        await gateway.router.tell(holder, command)
    except Exception as exc:
        log.info(
            "could not tell gateway %s to drop machine %s: %s", holder.gateway, machine_id, exc
        )


async def _release(gateway: Gateway, link: MachineLink) -> None:
    for future in link.pending.values():
        if not future.done():
            future.set_result({"ok": False, "error": "offline"})
    machine_id = link.machine_id
    if gateway.machines.get(machine_id) is not link:
        return  # replaced by a newer connection, which now speaks for the machine
    del gateway.machines[machine_id]
    reason = link.ws.close_reason or f"connection closed ({link.ws.close_code})"
    log.info("machine %s disconnected: %s", link.session.serial, reason)
    await record_gone(gateway, link, reason)


async def record_gone(gateway: Gateway, link: MachineLink, reason: str) -> None:
    """Record the machine offline, if this connection still holds its row."""
    try:
        await gateway.device_row(
            _row_key(link.machine_id),
            reports.disconnected,
            link.session,
            gateway=gateway.id,
            reason=reason,
            connected_at=link.connected_at,
        )
    except Exception:
        log.exception("could not record that machine %s went offline", link.session.serial)


async def stopped(gateway: Gateway) -> None:
    """The gateway stops: the machines still held are offline."""
    for link in list(gateway.machines.values()):
        with contextlib.suppress(Exception):
            await gateway.db(
                reports.disconnected,
                link.session,
                gateway=gateway.id,
                reason="gateway stopped",
                connected_at=link.connected_at,
            )
    gateway.machines.clear()


# --- messages -------------------------------------------------------------------------------


def _answer(link: MachineLink, raw: str | bytes) -> dict[str, Any] | None:
    """For a message over the budget: the message, if it answers what the
    gateway waits for (the acknowledgement of the list in flight, the
    result of a start it sent), else None (it is dropped), as for locks."""
    if (link.inflight is None and not link.pending) or not isinstance(raw, str):
        return None
    if "list.ack" not in raw and "start.result" not in raw:
        return None
    try:
        message = protocol.decode(raw, types=laundry_protocol.TYPES)
    except ProtocolError:
        return None
    kind = message.get("type")
    if kind == "list.ack" and link.inflight is not None:
        version = message.get("version")
        return message if type(version) is int and version == link.inflight.version else None
    request_id = message.get("request_id")
    if kind == "start.result" and isinstance(request_id, str) and request_id in link.pending:
        return message
    return None


async def on_message(gateway: Gateway, link: MachineLink, raw: str | bytes) -> None:
    if link.closing:
        answer = _answer(link, raw)
        if answer is not None and answer["type"] == "start.result":
            _on_start_result(link, answer)
        return
    answer = None
    if not link.allow():
        answer = _answer(link, raw)
        if answer is None:
            await gateway.throttle(link)
            return
    received = datetime.now(UTC)
    try:
        message = (
            answer if answer is not None else protocol.decode(raw, types=laundry_protocol.TYPES)
        )
        kind = message["type"]
        if kind == "list.ack":
            await _on_ack(gateway, link, protocol.ack(message))
        elif kind == "events":
            batch = protocol.events(message)
            stored = await gateway.db(reports.store_events, link.session, batch)
            await link.send({"type": "events.ack", "seqs": stored})
        elif kind == "cycles":
            records = laundry_protocol.cycles(message)
            done = await gateway.db(reports.store_cycles, link.session, records, dict(link.portal))
            await link.send({"type": "cycles.ack", "starts": done.starts, "ends": done.ends})
        elif kind == "state":
            firmware = message.get("firmware")
            await gateway.db(
                reports.report_state,
                link.session,
                state=laundry_protocol.state(message.get("state")),
                programs=laundry_protocol.programs(message.get("programs")),
                firmware=str(firmware) if firmware is not None else None,
                clock_offset_ms=protocol.clock_offset_ms(message.get("clock"), received),
            )
        elif kind == "start.result":
            _on_start_result(link, message)
        elif kind == "time.request":
            await link.send(
                {
                    "type": "time",
                    "time": protocol.now_iso(),
                    "clock_offset_ms": protocol.clock_offset_ms(message.get("clock"), received),
                }
            )
        elif kind == "hello":
            raise ProtocolError("already_hello", "hello is sent once, first")
    except ProtocolError as exc:
        await link.send(exc.frame())
    except ConnectionClosed:
        raise
    except Exception:
        log.exception("a message of machine %s could not be handled", link.session.serial)
        await link.send(
            ProtocolError(
                "internal", "the gateway could not handle this message; send it again later"
            ).frame()
        )


def _on_start_result(link: MachineLink, message: dict[str, Any]) -> None:
    request_id, ok, reason = laundry_protocol.start_result(message)
    future = link.pending.pop(request_id, None)
    if future is None or future.done():
        return  # answered too late, or never asked
    future.set_result({"ok": ok, "error": "" if ok else "rejected", "reason": reason})


# --- the list -------------------------------------------------------------------------------


async def _on_ack(gateway: Gateway, link: MachineLink, version: int) -> None:
    push = link.inflight
    if push is None or version != push.version:
        raise ProtocolError(
            "bad_ack",
            f"expected an acknowledgement of list version {push.version}, not {version}"
            if push
            else f"no list is waiting for an acknowledgement (got version {version})",
        )
    link.acked_version, link.acked = push.version, lists.snapshot(push.listed)
    link.inflight = None
    await gateway.db(lists.acknowledged, link.machine_id, version, link.acked, push.sent_wall)
    if link.dirty:
        link.dirty = False
        changed(gateway, [link.machine_id])


async def sync(
    gateway: Gateway,
    link: MachineLink,
    *,
    initial: bool = False,
    current: reports.Current | None = None,
) -> None:
    """Bring the controller's list to the platform's: ``list.ok`` on
    connecting when it is in step, else the difference from what it
    acknowledged, or the full list. One push at a time (the next after the
    acknowledgement), so a difference is always from the version it holds.
    ``current``: the list as read for a notice."""
    if not link.welcomed and not initial:
        return
    async with link.sync_lock:
        push = link.inflight
        if push is not None:
            if not push.failed:
                link.dirty = True  # the acknowledgement brings us back here
                return
            link.acked_version, link.acked, link.inflight = -1, {}, None
        if current is None or current[0] < link.acked_version:
            current = await gateway.db(reports.current, link.machine_id)
        version, zone, listed = current
        changes, removed = lists.difference(link.acked, listed)
        known = link.acked_version >= 0
        if known and version <= link.acked_version:
            if not changes and not removed:
                if initial:
                    await link.send({"type": "list.ok", "version": link.acked_version})
                return
            # The list changed with the calendar, not by a recorded change.
            version = await gateway.db(lists.raise_version, link.machine_id, version)
        if known and len(changes) + len(removed) <= max(MAX_DIFF_ENTRIES, len(listed) // 2):
            message: dict[str, Any] = {
                "type": "list.diff",
                "from": link.acked_version,
                "version": version,
                "timezone": zone,
                "add": changes,
                "remove": removed,
            }
        else:
            message = {
                "type": "list.full",
                "version": version,
                "timezone": zone,
                "entries": [listed[pk] for pk in sorted(listed)],
            }
        link.inflight = MachinePush(version, listed)
        link.dirty = False
        await link.send(message)


def changed(gateway: Gateway, machine_ids: list[int]) -> list[int]:
    """A notice: these machines' lists changed. Syncs those held here (in
    the background, their lists read in one database call); returns those
    that are not held here."""
    held = [pk for pk in machine_ids if pk in gateway.machines]
    if held:
        for pk in held:
            gateway.machines[pk].queued += 1
        gateway.spawn(_sync_many(gateway, held), name="machine-sync")
    return [pk for pk in machine_ids if pk not in gateway.machines]


async def _sync_many(gateway: Gateway, machine_ids: list[int]) -> None:
    try:
        current = await gateway.db(reports.current_many, machine_ids)
    except Exception as exc:  # each sync reads its own list then
        log.warning("could not read the lists of %d machines: %s", len(machine_ids), exc)
        current = {}
    for pk in machine_ids:
        link = gateway.machines.get(pk)
        if link is not None:
            gateway.spawn(_sync_quietly(gateway, link, current.get(pk)), name="machine-sync")


async def _sync_quietly(
    gateway: Gateway, link: MachineLink, current: reports.Current | None = None
) -> None:
    try:
        await sync(gateway, link, current=current)
    except ConnectionClosed:
        pass
    except Exception:
        log.exception("sync of machine %s failed", link.session.serial)
    finally:
        link.queued = max(0, link.queued - 1)


async def watch(gateway: Gateway) -> None:
    """Every poll interval: close the connections of machines removed or
    given a new secret, mark pushes nobody acknowledged, and push what
    changed without a notice reaching this gateway; every RECHECK seconds,
    every list again (the calendar: a move-in day begins)."""
    rechecked = time.monotonic()
    while True:
        await asyncio.sleep(gateway.poll_interval)
        try:
            recheck = time.monotonic() - rechecked >= RECHECK
            if recheck:
                rechecked = time.monotonic()
            await _watch_round(gateway, recheck=recheck)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("machine watch round failed")


async def _watch_round(gateway: Gateway, *, recheck: bool = False) -> None:
    held = [link for link in gateway.machines.values() if link.welcomed and not link.closing]
    if not held:
        return
    standing = await gateway.db(reports.standing, [link.machine_id for link in held])
    for link in held:
        if gateway.machines.get(link.machine_id) is not link or link.closing:
            continue
        state = standing.get(link.machine_id)
        session = link.session
        if (
            state is None
            or state.organization_id != session.organization_id
            or state.secret_digest != session.secret_digest
        ):
            gateway.retire(
                link,
                CLOSE_REPLACED,
                "the machine was removed, changed hands or got a new device secret",
            )
            continue
        push = link.inflight
        if push is None:
            if (recheck or state.list_version != link.acked_version) and not link.queued:
                link.queued += 1
                gateway.spawn(_sync_quietly(gateway, link), name="machine-sync")
        elif not push.failed and time.monotonic() - push.sent_at > ACK_TIMEOUT:
            push.failed = True
            log.warning(
                "machine %s did not acknowledge list version %d", session.serial, push.version
            )
            await gateway.db(
                lists.push_failed,
                link.machine_id,
                f"The machine did not acknowledge list version {push.version} "
                f"within {ACK_TIMEOUT:g} seconds.",
            )
        elif push.failed and state.list_version != push.version and not link.queued:
            link.queued += 1
            gateway.spawn(_sync_quietly(gateway, link), name="machine-sync")


# --- commands -------------------------------------------------------------------------------


async def start(
    gateway: Gateway,
    machine_id: int,
    request_id: str,
    *,
    program: str,
    person_id: int | None,
    timeout: float,
) -> dict[str, Any]:
    """Have the machine start a cycle (a resident's start from the portal)
    and wait for its answer: {"ok": true}, or {"ok": false, "error":
    "offline" | "timeout" | "rejected", "reason": ...}."""
    link = gateway.machines.get(machine_id)
    if link is None or link.closing or link.ws.state is not State.OPEN:
        return {"ok": False, "error": "offline"}
    future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
    link.pending[request_id] = future
    if person_id is not None:
        link.portal[request_id] = person_id
        while len(link.portal) > PORTAL_REMEMBERED:
            link.portal.pop(next(iter(link.portal)))
    try:
        async with asyncio.timeout(timeout):
            message: dict[str, Any] = {
                "type": "start",
                "request_id": request_id,
                "expires": (datetime.now(UTC) + timedelta(seconds=timeout))
                .isoformat(timespec="milliseconds")
                .replace("+00:00", "Z"),
            }
            if program:
                message["program"] = program
            await link.send(message)
            return await future
    except TimeoutError:
        return {"ok": False, "error": "timeout"}
    except ConnectionClosed:
        return {"ok": False, "error": "offline"}
    finally:
        link.pending.pop(request_id, None)


async def drop(gateway: Gateway, machine_id: int, reason: str, before: float | None = None) -> bool:
    """Close the machine's connection held here (its secret was replaced, it
    was removed, or it connected again elsewhere: then only if opened before
    ``before``). Whether one was closed."""
    link = gateway.machines.get(machine_id)
    if link is None or (before is not None and link.opened_at >= before):
        return False
    gateway.retire(link, CLOSE_REPLACED, reason)
    return True


def machine_ids(command: dict[str, Any]) -> list[int]:
    ids = command.get("machines")
    if not isinstance(ids, list) or not all(
        isinstance(i, int) and not isinstance(i, bool) for i in ids
    ):
        raise ValueError("a notice names machines by their ids")
    return ids


OPS = ("machines_changed", "machine_start", "machine_drop")


async def internal_command(gateway: Gateway, command: dict[str, Any]) -> dict[str, Any]:
    """A command from a web worker or another gateway (internal.py, or the
    Redis channel): a notice that lists changed, a start, or a drop. Raises
    ValueError (or TypeError) for a malformed one."""
    try:
        return await _internal(gateway, command)
    except KeyError as exc:
        raise ValueError(f"the command lacks {exc}") from None


async def _internal(gateway: Gateway, command: dict[str, Any]) -> dict[str, Any]:
    from doorkeep.gateway.routing import clamp_timeout

    op = command.get("op")
    if op == "machines_changed":
        return {"ok": True, "not_held": changed(gateway, machine_ids(command))}
    if op == "machine_drop":
        before = command.get("before")
        dropped = await drop(
            gateway,
            int(command["machine"]),
            str(command.get("reason") or "dropped")[:100],
            float(before) if before is not None else None,
        )
        return {"ok": True, "dropped": dropped}
    if op == "machine_start":
        person = command.get("person")
        return await start(
            gateway,
            int(command["machine"]),
            str(command["request"])[:64],
            program=str(command.get("program") or "")[: laundry_protocol.MAX_PROGRAM],
            person_id=int(person) if person is not None else None,
            timeout=clamp_timeout(float(command.get("timeout", START_TIMEOUT))),
        )
    raise ValueError("not a machine command")
