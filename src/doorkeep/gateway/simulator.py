"""The reference lock: connects like a real lock, keeps its credential list,
decides by itself with the same rules as the platform (windows and weekly
schedules included), stores what happened while offline and uploads it when
it is back, and (``stay_connected``) reconnects with a growing, randomized
pause after losing the connection. Tests and benchmarks connect it;
`doorkeep simulate lock` runs it by hand. docs/protocol/lock-v1.md is the
protocol it speaks."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import (
    ConnectionClosed,
    InvalidStatus,
    InvalidURI,
    WebSocketException,
)

from doorkeep.gateway.protocol import MAX_EVENTS_PER_BATCH, MAX_MESSAGE_BYTES
from doorkeep.keys import schedule as schedules
from doorkeep.keys.credentials import normalize_pin, normalize_remote, normalize_tag

PROTOCOL = 1
KINDS = ("pin", "tag", "remote")  # what a lock reads itself (a phone opens through the platform)

# Close codes after which reconnecting cannot help until someone changes the
# lock (its secret, its firmware) or the platform: the keeping stops there.
# The protocol's table ("Close codes") says to retry those only rarely.
GIVE_UP_CODES = {
    4003: "the lock's secret or registration must change first",
    4005: "the firmware or the gateway must be updated first",
}
# Close codes after which the pause keeps growing even though the connection
# had been welcomed: flooding (4008), and another connection of the same lock
# taking over (4009): two copies of one lock would otherwise push each other
# off every second.
KEEP_GROWING_CODES = {4008, 4009}
# A connection that lasted this long was a good one: the pauses start small
# again after it. One lost sooner (a gateway that welcomes, then fails) keeps
# them growing, so such a gateway is not asked again every second.
STEADY_SECONDS = 30.0


class Backoff:
    """The pauses between attempts to reconnect: random between half the
    base and the base, the base doubling from ``min_pause`` to ``max_pause``
    (1 s, 2 s, 4 s … a minute), so that a restarted gateway is not hit by
    every lock at once. ``reset`` after a connection that was welcomed."""

    def __init__(
        self,
        min_pause: float = 1.0,
        max_pause: float = 60.0,
        rand: Callable[[], float] = random.random,
    ) -> None:
        if not 0 < min_pause <= max_pause:
            raise ValueError("pauses are 0 < min_pause <= max_pause")
        self.min_pause, self.max_pause, self.rand = min_pause, max_pause, rand
        self.base = min_pause

    def next(self) -> float:
        pause = self.base / 2 + self.rand() * self.base / 2
        self.base = min(self.base * 2, self.max_pause)
        return pause

    def reset(self) -> None:
        self.base = self.min_pause


def _retry_after(exc: BaseException) -> float:
    """The seconds an HTTP answer to the handshake asked to wait (0: none)."""
    if not isinstance(exc, InvalidStatus):
        return 0.0
    try:
        return min(float(exc.response.headers.get("Retry-After", 0)), 300.0)
    except ValueError:  # a date, or garbage: the back-off decides
        return 0.0


class NotWelcomed(TimeoutError):
    """The gateway closed the connection instead of welcoming the lock (a
    TimeoutError, for callers that wait for the welcome)."""

    def __init__(self, code: int | None, reason: str) -> None:
        super().__init__(f"the gateway closed the connection: {code} {reason}".strip())
        self.code = code
        self.reason = reason


@dataclass
class Decision:
    granted: bool
    reason: str
    entry: int | None
    seq: int


@dataclass
class SimulatedLock:
    url: str
    serial: str
    secret: str
    firmware: str = "sim-1.0"
    battery: int = 92
    on_event: Callable[[str], None] | None = None
    # Sees every frame: trace("->", message) sent, trace("<-", message) received.
    trace: Callable[[str, dict[str, Any]], None] | None = None
    clock_skew: float = 0.0  # seconds the lock's clock is ahead of the real time
    entries: dict[int, dict[str, Any]] = field(default_factory=dict)
    version: int = 0
    timezone: str = "UTC"
    pin_key: bytes = b""
    outbox: list[dict[str, Any]] = field(default_factory=list)
    opened: list[str] = field(default_factory=list)
    refuse_unlocks: bool = False
    close_code: int | None = None
    close_reason: str = ""
    seq: int = 0  # the last event sequence number used
    clock_offset_ms: int | None = None  # as the gateway measured it
    received: list[dict[str, Any]] = field(default_factory=list)  # the last 1,000 messages
    errors: list[dict[str, Any]] = field(default_factory=list)
    _seq_known: bool = False  # the counter is above what the platform stored
    _ws: ClientConnection | None = None
    _task: asyncio.Task[None] | None = None
    _synced: asyncio.Event = field(default_factory=asyncio.Event)
    _welcomed: asyncio.Event = field(default_factory=asyncio.Event)
    _closed: asyncio.Event = field(default_factory=asyncio.Event)
    _acked_events: asyncio.Event = field(default_factory=asyncio.Event)
    _time: asyncio.Future[dict[str, Any]] | None = None
    # stay_connected: re-connections after the first, when the current
    # connection got its welcome, and the task that keeps the connection.
    reconnects: int = 0
    connected_at: datetime | None = None
    _keeper: asyncio.Task[None] | None = None
    _ready: asyncio.Event = field(default_factory=asyncio.Event)  # welcomed, in step, uploaded
    _gave_up: asyncio.Event = field(default_factory=asyncio.Event)  # refused: keeping stopped
    _stopped_by: Exception | None = None  # what ended the keeping, other than a refusal

    def _say(self, text: str) -> None:
        if self.on_event is not None:
            self.on_event(text)

    def now(self) -> datetime:
        """The lock's own clock."""
        return datetime.now(UTC) + timedelta(seconds=self.clock_skew)

    # --- connection --------------------------------------------------------------

    async def connect(self, *, wait_synced: bool = True, timeout: float = 10) -> None:
        """Connect, say hello, and (by default) wait until the list is in step
        and kept events are uploaded. Raises NotWelcomed if the gateway refuses
        the lock (close_code and close_reason say why)."""
        self._synced.clear()
        self._welcomed.clear()
        self._closed.clear()
        self._ready.clear()
        self.close_code, self.close_reason = None, ""
        ws = await connect(
            self.url,
            max_size=8 * 2**20,
            open_timeout=timeout,
            ping_interval=None,  # the gateway pings; the client answers
            compression=None,
        )
        self._ws = ws
        self._task = asyncio.create_task(self._receive(ws))
        await self._send(self.hello())
        if wait_synced:
            await self._until(self._welcomed, timeout)
            await self._until(self._synced, timeout)
            await self.flush()
            if self._ws is ws and self.online:
                self._ready.set()

    def hello(self) -> dict[str, Any]:
        """The first message of each connection."""
        return {
            "type": "hello",
            "protocol": PROTOCOL,
            "serial": self.serial,
            "secret": self.secret,
            "firmware": self.firmware,
            "battery": self.battery,
            "list_version": self.version,
            "clock": _iso(self.now()),
        }

    async def _until(self, event: asyncio.Event, timeout: float) -> None:
        """Wait for ``event``; fail at once if the connection closes first."""
        waiters = [asyncio.ensure_future(event.wait()), asyncio.ensure_future(self._closed.wait())]
        try:
            await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()
        if not event.is_set():
            if self._closed.is_set():
                raise NotWelcomed(self.close_code, self.close_reason)
            raise TimeoutError(f"no answer from the gateway within {timeout:g} s")

    async def go_offline(self) -> None:
        """Drop the connection, like a lock that lost its network, and stop
        keeping it (no reconnecting until ``connect`` or ``stay_connected``)."""
        keeper, self._keeper = self._keeper, None
        if keeper is not None and keeper is not asyncio.current_task():
            keeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await keeper
        await self._hang_up()

    close = go_offline

    async def _hang_up(self) -> None:
        if self._ws is not None:
            await self._ws.close()
        if self._task is not None:
            with contextlib.suppress(Exception):
                await self._task
        self._ws = None
        self._ready.clear()

    # --- staying connected -------------------------------------------------------

    def stay_connected(self, *, min_pause: float = 1.0, max_pause: float = 60.0) -> None:
        """Connect now (in a task on the running loop) and, whenever the
        connection is lost other than by ``go_offline``/``close``, reconnect
        after a growing, randomized pause (``Backoff``), as the protocol asks of
        a lock ("Reconnecting"). Failed attempts (connection refused, a load
        balancer's 502 or 503, no answer) back off and try again. Each
        reconnection says hello with the list version held and uploads the
        events kept meanwhile. A refusal that retrying cannot mend (4003, 4005:
        ``GIVE_UP_CODES``) stops the keeping; ``close_code`` and
        ``close_reason`` say why. A lock already kept is left as it is."""
        if self._keeper is not None and not self._keeper.done():
            return
        backoff = Backoff(min_pause, max_pause)  # checks the pauses now
        self._gave_up.clear()
        self._stopped_by = None
        self._keeper = asyncio.get_running_loop().create_task(
            self._keep(backoff), name=f"keep {self.serial} connected"
        )

    async def wait_online(self, timeout: float) -> None:
        """Wait until the lock is online: welcomed, its list in step and its
        kept events uploaded. Raises TimeoutError after ``timeout`` seconds, and
        at once NotWelcomed (a TimeoutError) if the gateway refused the lock
        and the keeping stopped (ConnectionError if something else stopped it,
        such as a URL that is not a WebSocket one)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not (self._ready.is_set() and self.online):
            if self._gave_up.is_set():
                if self._stopped_by is not None:
                    raise ConnectionError(f"stopped reconnecting: {self._stopped_by}")
                raise NotWelcomed(self.close_code, self.close_reason)
            left = deadline - loop.time()
            if left <= 0:
                raise TimeoutError(f"the lock was not online within {timeout:g} s")
            waiters = [
                asyncio.ensure_future(self._ready.wait()),
                asyncio.ensure_future(self._gave_up.wait()),
            ]
            try:
                await asyncio.wait(waiters, timeout=left, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for waiter in waiters:
                    waiter.cancel()

    async def _keep(self, backoff: Backoff) -> None:
        first, failed = True, 0  # failed: attempts before the first connection
        lost_at: float | None = None
        loop = asyncio.get_running_loop()
        try:
            while True:
                if not self.online:  # a connection made by connect() is kept as it is
                    try:
                        await self.connect()
                    except InvalidURI:
                        raise  # no pause mends that
                    except (OSError, TimeoutError, WebSocketException) as exc:
                        await self._hang_up()
                        refused = isinstance(exc, NotWelcomed)
                        if refused and self._give_up():
                            return
                        failed += 1
                        # A 503 from the gateway (too many connections waiting
                        # to say hello) or a balancer says how long to wait.
                        pause = max(backoff.next(), _retry_after(exc))
                        if refused:
                            self._say(
                                f"the gateway closed the connection ({_code(self)}); "
                                f"retrying in {pause:.1f} s"
                            )
                        else:
                            self._say(
                                f"cannot reach the gateway ({exc}); retrying in {pause:.1f} s"
                            )
                        await asyncio.sleep(pause)
                        continue
                    if not first:
                        self.reconnects += 1
                        offline = "" if lost_at is None else f" after {loop.time() - lost_at:.1f} s"
                        self._say(f"back online{offline} (reconnection {self.reconnects})")
                    elif failed:
                        self._say(f"online after {failed + 1} attempts")
                first = False
                up_since = loop.time()
                await self._closed.wait()
                lost_at = loop.time()
                if self._give_up():
                    return
                if (
                    self.close_code not in KEEP_GROWING_CODES
                    and lost_at - up_since >= STEADY_SECONDS
                ):
                    backoff.reset()
                pause = backoff.next()
                self._say(f"connection lost ({_code(self)}); reconnecting in {pause:.1f} s")
                await asyncio.sleep(pause)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # said, not left unread in a dead task
            self._say(f"stopped reconnecting: {exc}")
            self._stopped_by = exc
            self._gave_up.set()

    def _give_up(self) -> bool:
        """After a close the protocol says retrying will not mend: stop keeping."""
        why = GIVE_UP_CODES.get(self.close_code or 0)
        if why is None:
            return False
        self._say(f"not reconnecting: {why} ({_code(self)})")
        self._gave_up.set()
        return True

    @property
    def online(self) -> bool:
        return self._ws is not None and self._welcomed.is_set()

    async def _send(self, message: dict[str, Any]) -> None:
        if self._ws is None:
            raise ConnectionError("the lock is offline")
        if self.trace is not None:
            self.trace("->", message)
        await self._ws.send(json.dumps(message, separators=(",", ":")))

    async def _receive(self, ws: ClientConnection) -> None:
        try:
            async for raw in ws:
                try:
                    message = json.loads(raw)
                except ValueError:
                    continue
                if not isinstance(message, dict):
                    continue
                if self.trace is not None:
                    self.trace("<-", message)
                self.received.append(message)
                del self.received[:-1000]
                await self._on_message(message)
                if message.get("type") == "welcome" and self._welcomed.is_set():
                    self.connected_at = datetime.now(UTC)
        except ConnectionClosed:
            pass
        finally:
            if self._ws is ws:  # not a connection this lock already replaced
                self.close_code = ws.close_code
                self.close_reason = ws.close_reason or ""
                self._ws = None
                self._welcomed.clear()
                self._ready.clear()
                self.connected_at = None
                self._closed.set()
                if self.close_code and self.close_code >= 4000:
                    self._say(f"closed by the gateway: {self.close_code} {self.close_reason}")

    async def _on_message(self, message: dict[str, Any]) -> None:
        kind = message.get("type")
        if kind == "welcome":
            self.pin_key = bytes.fromhex(message["pin_key"])
            self.clock_offset_ms = message.get("clock_offset_ms")
            self._continue_after(int(message.get("last_seq") or 0))
            self._welcomed.set()
        elif kind == "list.ok":
            self._synced.set()
        elif kind == "list.full":
            self.entries = {e["id"]: e for e in message["entries"]}
            await self._apply(message)
        elif kind == "list.diff":
            if message.get("from") != self.version:
                # Not a difference from what this lock holds: do not apply it.
                # Reconnecting with list_version 0 brings the full list.
                self.errors.append({"code": "diff_mismatch", "message": str(message.get("from"))})
                self._say(f"ignored a list difference from version {message.get('from')}")
                return
            for entry_id in message["remove"]:
                self.entries.pop(entry_id, None)
            for entry in message["add"]:
                self.entries[entry["id"]] = entry
            await self._apply(message)
        elif kind == "unlock":
            await self._unlock(message)
        elif kind == "events.ack":
            acked = set(message.get("seqs", []))
            self.outbox = [e for e in self.outbox if e["seq"] not in acked]
            self._acked_events.set()
        elif kind == "time":
            self.clock_offset_ms = message.get("clock_offset_ms")
            if self._time is not None and not self._time.done():
                self._time.set_result(message)
        elif kind == "error":
            self.errors.append(message)
            self._say(f"gateway error: {message.get('code')}: {message.get('message')}")

    def _continue_after(self, last_seq: int) -> None:
        """Number new events above what the platform stored. A lock that lost
        its counter (this simulator, started again) would otherwise send
        numbers the platform already has, and those events would be dropped."""
        if not self._seq_known:
            self._seq_known = True
            if last_seq >= 1:
                for event in self.outbox:
                    if event["seq"] <= last_seq:
                        self.seq = max(self.seq, last_seq) + 1
                        event["seq"] = self.seq
        self.seq = max(self.seq, last_seq)

    async def _unlock(self, message: dict[str, Any]) -> None:
        ok, reason = not self.refuse_unlocks, "" if not self.refuse_unlocks else "jammed"
        expires = message.get("expires")
        if ok and isinstance(expires, str):
            # The gateway's clock: ours, less the offset it measured.
            gateway_now = self.now() - timedelta(milliseconds=self.clock_offset_ms or 0)
            if gateway_now > _parse(expires):
                ok, reason = False, "expired"
        if ok:
            self.opened.append(message["request_id"])
            self._say("OPEN  (remote unlock)")
        else:
            self._say(f"DENY  remote unlock: {reason}")
        await self._send(
            {
                "type": "unlock.result",
                "request_id": message["request_id"],
                "ok": ok,
                "reason": reason,
            }
        )

    async def _apply(self, message: dict[str, Any]) -> None:
        self.version = message["version"]
        self.timezone = message.get("timezone", self.timezone)
        await self._send({"type": "list.ack", "version": self.version})
        self._synced.set()
        self._say(f"list version {self.version}: {len(self.entries)} entries")

    async def wait_for_version(self, version: int, timeout: float = 5) -> None:
        async def reached() -> None:
            while self.version < version:
                self._synced.clear()
                await self._synced.wait()

        await asyncio.wait_for(reached(), timeout)

    # --- deciding ------------------------------------------------------------------

    def _match(self, kind: str, value: str) -> str:
        if kind == "pin":
            return hmac.new(self.pin_key, normalize_pin(value).encode(), hashlib.sha256).hexdigest()
        if kind == "tag":
            return normalize_tag(value)
        if kind == "remote":
            return normalize_remote(value)
        raise ValueError(f"a lock reads {', '.join(KINDS)}, not {kind}")

    def decide(self, kind: str, value: str, at: datetime | None = None) -> Decision:
        """Decide locally, as the lock does with the network down, and keep the
        event to upload. The rules are the platform's (keys.access.decide):
        the window [from, until) and the weekly schedule in the property's
        time zone."""
        at = at or self.now()
        try:
            match = self._match(kind, value)
        except Exception:
            return self._record(False, "malformed_credential", None, kind, at)
        entry = next(
            (e for e in self.entries.values() if e["kind"] == kind and e["match"] == match), None
        )
        if entry is None:
            # A tag's UID goes with the event (never a PIN): the platform can
            # tell a badge reported lost from a card it never knew.
            tag = match if kind == "tag" else None
            return self._record(False, "unknown_credential", None, kind, at, tag=tag)
        if entry.get("until") and at >= _parse(entry["until"]):
            return self._record(False, "expired", entry["id"], kind, at)
        if entry.get("from") and at < _parse(entry["from"]):
            return self._record(False, "not_yet_valid", entry["id"], kind, at)
        if not schedules.allows(entry.get("schedule"), at, ZoneInfo(self.timezone)):
            return self._record(False, "outside_schedule", entry["id"], kind, at)
        return self._record(True, "", entry["id"], kind, at)

    def _record(
        self,
        granted: bool,
        reason: str,
        entry: int | None,
        kind: str,
        at: datetime,
        *,
        tag: str | None = None,
    ) -> Decision:
        self.seq += 1
        event: dict[str, Any] = {
            "seq": self.seq,
            "at": _iso(at),
            "outcome": "granted" if granted else "denied",
            "reason": reason,
            "kind": kind,
            "entry": entry,
        }
        if tag is not None:
            event["tag"] = tag
        self.outbox.append(event)
        self._say(("OPEN  " if granted else "DENY  ") + (reason or "granted"))
        return Decision(granted, reason, entry, self.seq)

    async def present(self, kind: str, value: str, at: datetime | None = None) -> Decision:
        decision = self.decide(kind, value, at)
        if self.online:
            await self.flush()
        return decision

    async def flush(self, timeout: float = 5) -> None:
        """Upload the events kept while offline (or just now), in batches."""
        while self.outbox and self.online:
            batch = _batch(self.outbox)
            self._acked_events.clear()
            await self._send({"type": "events", "events": batch})
            await asyncio.wait_for(self._acked_events.wait(), timeout)

    async def send_status(self) -> None:
        await self._send(
            {
                "type": "status",
                "battery": self.battery,
                "firmware": self.firmware,
                "clock": _iso(self.now()),
            }
        )

    async def request_time(self, timeout: float = 5) -> dict[str, Any]:
        """Ask the gateway for its time; returns the ``time`` message (its
        clock_offset_ms is how far this lock's clock is ahead)."""
        self._time = asyncio.get_running_loop().create_future()
        await self._send({"type": "time.request", "clock": _iso(self.now())})
        return await asyncio.wait_for(self._time, timeout)


def _batch(outbox: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The oldest kept events that fit one message (by count and by size)."""
    batch: list[dict[str, Any]] = []
    size = 40  # {"type":"events","events":[]}
    for event in outbox[:MAX_EVENTS_PER_BATCH]:
        size += len(json.dumps(event, separators=(",", ":")).encode()) + 1
        if size > MAX_MESSAGE_BYTES and batch:
            break
        batch.append(event)
    return batch


def _code(lock: SimulatedLock) -> str:
    """A close code and its reason, as a person reads them: "1001 going away"."""
    return f"{lock.close_code or 'no close code'} {lock.close_reason}".strip()


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _parse(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


COMMANDS = "pin 1234 | tag 04A22B1C | fob FOB-1 | status | time | offline | online | list | quit"


async def interactive(lock: SimulatedLock, read_line: Callable[[], Any]) -> None:
    """The command loop of `doorkeep simulate lock`. The lock stays connected:
    after losing the connection it says so and reconnects with back-off
    (``stay_connected``) until `offline`; `online` resumes that."""

    def say(text: str) -> None:
        print(text, flush=True)

    say(f"Simulated lock {lock.serial} connecting to {lock.url} …")
    lock.stay_connected()
    while True:  # a lock keeps trying: the gateway may not be up yet
        try:
            await lock.wait_online(60)
            break
        except NotWelcomed:
            return  # close_code and close_reason say why; the caller reports it
        except TimeoutError:
            continue
    say(f"Online. Type: {COMMANDS}")
    while True:
        line = await read_line()
        if line is None:
            break
        words = line.strip().split()
        if not words:
            continue
        command, args = words[0].lower(), words[1:]
        try:
            if command in ("pin", "tag", "fob", "remote") and args:
                kind = "remote" if command in ("fob", "remote") else command
                await lock.present(kind, args[0])
            elif command == "offline":
                await lock.go_offline()
                say("Offline: deciding alone; events are kept until the lock is back.")
            elif command == "online":
                lock.stay_connected()
                await lock.wait_online(10)
                say("Online again; kept events uploaded.")
            elif command == "status":
                await lock.send_status()
                say(f"Sent battery {lock.battery}%, firmware {lock.firmware}.")
            elif command == "time":
                reply = await lock.request_time()
                offset = reply["clock_offset_ms"]
                say(f"Gateway time {reply['time']}; this clock is {offset} ms ahead.")
            elif command == "list":
                say(
                    f"version {lock.version}, {len(lock.entries)} entries, "
                    f"{len(lock.outbox)} events waiting"
                )
            elif command in ("quit", "exit"):
                break
            else:
                say(f"Unknown command. Try: {COMMANDS}")
        except NotWelcomed:
            pass  # said below
        except (ConnectionClosed, OSError, TimeoutError) as exc:
            say(f"connection problem: {exc}")
        if lock._gave_up.is_set():
            say(f"The gateway closed the connection: {lock.close_reason} ({lock.close_code}).")
            break
    await lock.go_offline()
