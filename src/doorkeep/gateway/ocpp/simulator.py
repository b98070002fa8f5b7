"""The reference charging station: a charge point that speaks OCPP 1.6J or
2.0.1 to the gateway, on the ``ocpp`` library's client side (its
ChargePoint, schema validation on) over a WebSocket with HTTP Basic
authentication. Tests and benchmarks connect it; `doorkeep simulate charger`
runs it by hand. It behaves as a real station is expected to:

- it boots on each connection and reports its connectors' status;
- a badge presented is decided with the local authorization list when the
  badge is in it, else asked online (Authorize); offline, an unknown badge
  is refused;
- a transaction charges at a chosen power, the energy register growing with
  power x time, and sends meter values every ``meter_interval`` seconds;
- what a transaction sends (its start, meter values, its stop) goes through
  one queue, in order: while offline the station keeps charging and the
  queue waits; when it is back each message is sent once. In 1.6 the
  platform numbers transactions: a transaction started offline carries a
  placeholder (a negative number) until its StartTransaction is answered;
- it keeps its local list (SendLocalList, full and differential, with
  versions; GetLocalListVersion) and carries out the platform's commands.

Both versions share this behaviour; ``Words16``/``Words201`` spell its
messages and ``Point16``/``Point201`` read the platform's calls."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import time
import uuid
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from ocpp.exceptions import OCPPError
from ocpp.routing import after, on
from ocpp.v16 import ChargePoint as ChargePoint16
from ocpp.v16 import call as call16
from ocpp.v16 import call_result as result16
from ocpp.v16.enums import Action as Action16
from ocpp.v201 import ChargePoint as ChargePoint201
from ocpp.v201 import call as call201
from ocpp.v201 import call_result as result201
from ocpp.v201.enums import Action as Action201
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus
from websockets.typing import Subprotocol

ENERGY = "Energy.Active.Import.Register"
POWER = "Power.Active.Import"
TOKEN_TYPE = "ISO14443"  # noqa: S105 - an id token type (a badge's UID), not a secret
SUBPROTOCOLS = {"1.6": "ocpp1.6", "2.0.1": "ocpp2.0.1"}
ACCEPTED = "Accepted"
NO_FREE_CONNECTOR = "NoFreeConnector"  # what present() answers when every connector is busy
RESPONSE_TIMEOUT = 10.0  # seconds the platform has to answer the station's calls
OPEN_TIMEOUT = 10.0
CALL_ERROR_TRIES = 3  # a queued message the platform answers with a CALLERROR, at most
RETRY_INTERVAL = 5.0  # seconds before a queued message without an answer is sent again
SENT_KEPT = 10_000  # messages kept in ``sent``


class StationRefused(ConnectionError):
    """The gateway refused the connection before the upgrade: an unknown
    station id or a wrong password (HTTP 401, it does not say which)."""

    def __init__(self, charge_point_id: str, status: int) -> None:
        why = (
            "unknown station id or wrong password"
            if status == 401
            else "the gateway did not accept the connection"
        )
        super().__init__(
            f"the gateway refused charging station {charge_point_id}: {why} (HTTP {status})"
        )
        self.status = status


class Offline(ConnectionError):
    """The station is not connected (or the connection closed during a call)."""


@dataclass(frozen=True)
class ListEntry:
    """A badge in the local list: Accepted (until ``expires``, when given),
    Blocked, Expired or Invalid."""

    status: str
    expires: datetime | None = None

    def status_at(self, moment: datetime) -> str:
        if self.status == ACCEPTED and self.expires is not None and moment >= self.expires:
            return "Expired"
        return self.status


@dataclass
class Transaction:
    connector: int
    id_tag: str
    transaction_id: int | str  # 1.6: the platform's number (negative: not known yet); 2.0.1: ours
    started_at: datetime
    meter_start_wh: int
    remote_start_id: int | None = None
    meter_stop_wh: int | None = None
    stop_reason: str = ""
    seq_no: int = 0  # 2.0.1: the number of the next TransactionEvent

    @property
    def running(self) -> bool:
        return self.meter_stop_wh is None

    def next_seq(self) -> int:
        self.seq_no += 1
        return self.seq_no - 1


@dataclass
class Connector:
    number: int  # 1.6 connectorId, 2.0.1 evseId (one connector each)
    status: str = "Available"  # as last said to the platform, in the version's words
    operative: bool = True  # ChangeAvailability
    transaction: Transaction | None = None
    reserved_for: str = ""  # a remote start accepted, its transaction not begun yet
    meter_wh: float = 0.0  # the energy register
    metered_at: float = 0.0  # when the register was last brought up to date (monotonic)

    @property
    def free(self) -> bool:
        return self.operative and self.transaction is None and not self.reserved_for


@dataclass
class Queued:
    """A transaction's message waiting to be sent (and answered)."""

    payload: Any
    transaction: Transaction
    tries: int = 0


def _now() -> datetime:
    return datetime.now(UTC)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _parse(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _kwh(wh: int) -> str:
    return f"{wh / 1000:.3f} kWh"


class SimulatedCharger:
    """A charging station with ``connectors`` connectors. Every method runs
    on one event loop; ``on_event`` hears, in plain words, what happens."""

    def __init__(
        self,
        gateway_url: str,
        charge_point_id: str,
        password: str,
        *,
        ocpp: str = "1.6",
        power_kw: float = 11.0,
        meter_interval: float = 10.0,
        connectors: int = 1,
        energy_unit: str = "Wh",
        vendor: str = "Doorkeep",
        model: str = "Simulated charger",
        serial: str = "",
        firmware: str = "sim-1.0",
        on_event: Callable[[str], None] | None = None,
    ) -> None:
        if ocpp not in SUBPROTOCOLS:
            raise ValueError(f"OCPP {ocpp} is not spoken here: 1.6 or 2.0.1")
        if energy_unit not in ("Wh", "kWh"):
            raise ValueError("the energy unit is Wh or kWh")
        self.url = f"{gateway_url.rstrip('/')}/ocpp/{quote(charge_point_id, safe='')}"
        self.charge_point_id, self.password, self.ocpp = charge_point_id, password, ocpp
        self.power_kw, self.meter_interval, self.energy_unit = power_kw, meter_interval, energy_unit
        self.vendor, self.model, self.firmware = vendor, model, firmware
        self.serial = serial or f"SIM-{charge_point_id}"[:25]
        self.on_event = on_event
        self.words: Words16 | Words201 = Words16(self) if ocpp == "1.6" else Words201(self)
        self.connectors = [
            Connector(n, metered_at=time.monotonic()) for n in range(1, connectors + 1)
        ]
        self.list_version = 0
        self._entries: dict[str, ListEntry] = {}
        self.queue: list[Queued] = []  # a transaction's messages, oldest first
        self.sent: list[Any] = []  # what left the queue, answered (to send again in tests)
        self.transactions: list[Transaction] = []  # every transaction, oldest first
        self.heartbeat_interval = 300
        self._placeholders = itertools.count(1)
        self._ws: ClientConnection | None = None
        self._point: Point16 | Point201 | None = None
        self._booted = False
        self._closed = asyncio.Event()  # set when the current connection ends
        self._reader: asyncio.Task[None] | None = None
        self._heartbeat: asyncio.Task[None] | None = None
        self._flushing = asyncio.Lock()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._then: Callable[[], Coroutine[Any, Any, Any]] | None = None
        self._reset_when_idle = False  # 2.0.1 Reset OnIdle asked during a transaction

    # --- what others read ------------------------------------------------------------

    @property
    def online(self) -> bool:
        return self._point is not None and self._booted

    @property
    def local_list(self) -> dict[str, str]:
        """The local list: badge UID -> status (an Accepted entry past its
        expiry reads Expired)."""
        now = _now()
        return {tag: entry.status_at(now) for tag, entry in self._entries.items()}

    @property
    def power_w(self) -> int:
        return round(self.power_kw * 1000)

    def connector(self, number: int | None) -> Connector | None:
        return next((c for c in self.connectors if c.number == number), None)

    def running(self, number: int | None = None) -> Connector | None:
        """The connector ``number`` if it is charging, else the first that is."""
        for connector in self.connectors:
            if connector.transaction is not None and number in (None, connector.number):
                return connector
        return None

    def describe(self) -> list[str]:
        """The station's state in a few lines (the CLI's ``status``)."""
        lines = [
            f"{self.charge_point_id}: {'online' if self.online else 'offline'}, OCPP {self.ocpp}, "
            f"{self.power_kw:g} kW, local list version {self.list_version} "
            f"({len(self._entries)} entries), {len(self.queue)} message(s) queued"
        ]
        for connector in self.connectors:
            self._advance(connector)
            line = f"  connector {connector.number}: {connector.status}"
            if not connector.operative:
                line += " (inoperative)"
            tx = connector.transaction
            if tx is not None:
                line += (
                    f", {tx.id_tag} charging, transaction {tx.transaction_id}, "
                    f"{_kwh(int(connector.meter_wh) - tx.meter_start_wh)} so far"
                )
            lines.append(line)
        return lines

    # --- connection ------------------------------------------------------------------

    async def connect(self, *, boot_reason: str = "PowerUp", timeout: float = OPEN_TIMEOUT) -> None:
        """Connect, boot, report the connectors and send what was queued.
        Raises StationRefused when the gateway refuses the station."""
        if self._ws is not None:
            return
        auth = base64.b64encode(f"{self.charge_point_id}:{self.password}".encode()).decode()
        try:
            ws = await connect(
                self.url,
                subprotocols=[Subprotocol(SUBPROTOCOLS[self.ocpp])],
                additional_headers={"Authorization": f"Basic {auth}"},
                open_timeout=timeout,
                ping_interval=None,  # the gateway pings; the client answers
            )
        except InvalidStatus as exc:
            raise StationRefused(self.charge_point_id, exc.response.status_code) from None
        except InvalidHandshake as exc:
            raise Offline(f"the gateway did not complete the WebSocket handshake: {exc}") from None
        if ws.subprotocol != SUBPROTOCOLS[self.ocpp]:
            await ws.close()
            raise Offline(f"the gateway did not agree to OCPP {self.ocpp}")
        point: Point16 | Point201 = (Point16 if self.ocpp == "1.6" else Point201)(self, ws)
        self._ws, self._point, self._booted = ws, point, False
        self._closed = asyncio.Event()
        self._reader = asyncio.create_task(self._read(ws, point))
        try:
            await self._boot(boot_reason)
        except BaseException:
            await self.go_offline()
            raise
        self._say(f"online (OCPP {self.ocpp}): boot accepted")
        for connector in self.connectors:
            await self._send_status(connector)
        self._heartbeat = asyncio.create_task(self._beat())
        await self.flush()

    go_online = connect

    async def go_offline(self) -> None:
        """Drop the connection, like a station that lost its network. Charging
        goes on; what transactions send is queued until it is back."""
        ws, reader = self._ws, self._reader
        if ws is None:
            return
        self._lost()
        await ws.close()
        if reader is not None:
            reader.cancel()
            with contextlib.suppress(BaseException):
                await reader

    async def close(self) -> None:
        """Go offline and end everything the station runs (its meters too)."""
        await self.go_offline()
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(BaseException):
                await task

    async def _read(self, ws: ClientConnection, point: Point16 | Point201) -> None:
        try:
            await point.start()
        except ConnectionClosed:
            pass
        finally:
            if self._ws is ws:  # closed by the gateway or the network, not by go_offline
                self._lost()

    def _lost(self) -> None:
        self._ws, self._point, self._booted = None, None, False
        self._closed.set()
        if self._heartbeat is not None:
            self._heartbeat.cancel()
            self._heartbeat = None
        for connector in self.connectors:
            connector.reserved_for = ""
        charging = any(c.transaction is not None for c in self.connectors)
        self._say("offline" + (": charging goes on, its messages are queued" if charging else ""))

    async def _boot(self, reason: str) -> None:
        while True:
            answer = await self._call(self.words.boot(reason))
            self.heartbeat_interval = int(answer.interval) or self.heartbeat_interval
            if answer.status == ACCEPTED:
                self._booted = True
                return
            wait = max(1, self.heartbeat_interval)
            self._say(f"boot {answer.status}: trying again in {wait} s")
            await asyncio.sleep(wait)

    async def _beat(self) -> None:
        while True:
            await asyncio.sleep(self.heartbeat_interval)
            with contextlib.suppress(Offline, OCPPError, TimeoutError, ConnectionClosed):
                await self._call(self.words.heartbeat())

    async def _call(self, payload: Any) -> Any:
        """One call to the platform and its answer. Raises Offline when the
        connection is (or goes) away, OCPPError for a CALLERROR."""
        point, closed = self._point, self._closed
        if point is None:
            raise Offline("the station is offline")
        call = asyncio.ensure_future(point.call(payload, suppress=False))
        gone = asyncio.ensure_future(closed.wait())
        try:
            await asyncio.wait({call, gone}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            gone.cancel()
            if not call.done():
                call.cancel()
        if call.cancelled() or not call.done():
            raise Offline("the connection closed")
        try:
            return call.result()
        except ConnectionClosed as exc:
            raise Offline("the connection closed") from exc

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._done)
        return task

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            self._say(f"error: {task.exception()!r}")

    def _say(self, text: str) -> None:
        if self.on_event is not None:
            self.on_event(text)

    # --- connectors ------------------------------------------------------------------

    async def _set_status(self, connector: Connector, state: str) -> None:
        """Say the connector's new state (1.6's words: Available, Preparing,
        Charging, Finishing, Unavailable), if it changed in the version's words."""
        spoken = self.words.connector_status(state)
        if spoken is None or spoken == connector.status:
            return
        connector.status = spoken
        await self._send_status(connector)

    async def _send_status(self, connector: Connector) -> None:
        if not self.online:
            return
        with contextlib.suppress(Offline, OCPPError, TimeoutError):
            await self._call(self.words.status(connector.number, connector.status))

    def _idle_status(self, connector: Connector) -> str:
        state = "Available" if connector.operative else "Unavailable"
        return self.words.connector_status(state) or state

    async def _settle(self, connector: Connector) -> None:
        """After a transaction: the connector is free again (or unavailable,
        when the platform asked for it meanwhile); a reset waiting for the
        station to be idle happens now."""
        await self._set_status(connector, "Finishing")
        await self._set_status(connector, self._idle_status(connector))
        if self._reset_when_idle and all(c.transaction is None for c in self.connectors):
            self._reset_when_idle = False
            await self._reboot()

    # --- badges ----------------------------------------------------------------------

    async def present(self, uid: str) -> str:
        """A badge held to the reader. Returns the answer: Accepted (charging
        starts, or the transaction it started stops), Blocked, Expired,
        Invalid... or NoFreeConnector."""
        uid = uid.strip().upper()
        charging = next(
            (c for c in self.connectors if c.transaction and c.transaction.id_tag == uid), None
        )
        if charging is not None:  # the same badge again: stop
            await self.stop(charging.number, id_tag=uid)
            return ACCEPTED
        connector = next((c for c in self.connectors if c.free), None)
        if connector is None:
            self._say(f"{uid} refused: no free connector")
            return NO_FREE_CONNECTOR
        status, source = self._decide(uid)
        if status is None:
            status, source = await self._authorize(uid), "platform"
        if status != ACCEPTED:
            self._say(f"{uid} refused: {status} ({source})")
            return status
        if not connector.free:  # taken while the platform answered
            self._say(f"{uid} refused: no free connector")
            return NO_FREE_CONNECTOR
        self._say(f"{uid} accepted ({source})")
        await self._begin(connector, uid)
        return ACCEPTED

    def _decide(self, uid: str) -> tuple[str | None, str]:
        entry = self._entries.get(uid)
        if entry is not None:
            return entry.status_at(_now()), "local list"
        if not self.online:
            return "Invalid", "offline, not in the local list"
        return None, ""

    async def _authorize(self, uid: str) -> str:
        try:
            answer = await self._call(self.words.authorize(uid))
        except (Offline, TimeoutError, OCPPError) as exc:
            self._say(f"no answer to Authorize: {exc}")
            return "Invalid"
        return self.words.authorization(answer)

    def take_list(self, version: int, full: bool, entries: dict[str, ListEntry | None]) -> str:
        """SendLocalList: a full list replaces the one held; a differential
        adds, replaces (an entry) or removes (None) badges, and only on top of
        an older version (else VersionMismatch, as the specification says)."""
        if not full and version <= self.list_version:
            self._say(
                f"local list: differential version {version} refused, "
                f"holding version {self.list_version}"
            )
            return "VersionMismatch"
        held = {} if full else dict(self._entries)
        for tag, entry in entries.items():
            if entry is None:
                held.pop(tag.upper(), None)
            else:
                held[tag.upper()] = entry
        self._entries, self.list_version = held, version  # one assignment: readers see either list
        update = "the whole list" if full else f"{len(entries)} change(s)"
        self._say(f"local list version {version} ({update}): {len(held)} badge(s)")
        return ACCEPTED

    # --- transactions ----------------------------------------------------------------

    def _advance(self, connector: Connector) -> None:
        """Bring the energy register up to now: power x time while charging."""
        now = time.monotonic()
        if connector.transaction is not None:
            connector.meter_wh += self.power_w * (now - connector.metered_at) / 3600
        connector.metered_at = now

    def set_power(self, kw: float) -> None:
        if kw < 0:
            raise ValueError("the power is not negative")
        for connector in self.connectors:
            self._advance(connector)  # the energy so far, at the power so far
        self.power_kw = kw
        self._say(f"charging power {kw:g} kW")

    def _enqueue(self, payload: Any, transaction: Transaction) -> None:
        self.queue.append(Queued(payload, transaction))

    async def _begin(
        self, connector: Connector, id_tag: str, *, remote_start_id: int | None = None
    ) -> Transaction:
        self._advance(connector)
        transaction_id: int | str = (
            -next(self._placeholders) if self.ocpp == "1.6" else str(uuid.uuid4())
        )
        tx = Transaction(
            connector.number,
            id_tag,
            transaction_id,
            _now(),
            int(connector.meter_wh),
            remote_start_id=remote_start_id,
        )
        connector.transaction, connector.reserved_for = tx, ""
        self.transactions.append(tx)
        await self._set_status(connector, "Preparing")
        self._enqueue(self.words.started(tx, offline=not self.online), tx)
        self._say(
            f"charging started on connector {connector.number} for {id_tag}"
            + ("" if self.online else " (offline: queued)")
        )
        await self.flush()
        if tx.running:  # not refused by the platform's answer
            await self._set_status(connector, "Charging")
            self._spawn(self._meter(connector, tx))
        return tx

    async def _meter(self, connector: Connector, tx: Transaction) -> None:
        while True:
            await asyncio.sleep(self.meter_interval)
            if not tx.running:
                return
            self._advance(connector)
            wh = int(connector.meter_wh)
            self._enqueue(self.words.meter(tx, wh, offline=not self.online), tx)
            queued = "" if self.online else " (queued)"
            self._say(
                f"meter value: {_kwh(wh)}, {_kwh(wh - tx.meter_start_wh)} this session, "
                f"{self.power_kw:g} kW{queued}"
            )
            await self.flush()

    def _end(self, connector: Connector, reason: str, id_tag: str = "") -> Transaction | None:
        """The transaction on ``connector`` ends now: its stop is queued."""
        tx = connector.transaction
        if tx is None:
            return None
        self._advance(connector)
        tx.meter_stop_wh, tx.stop_reason = int(connector.meter_wh), reason
        connector.transaction = None
        self._enqueue(self.words.stopped(tx, reason, id_tag, offline=not self.online), tx)
        self._say(
            f"charging stopped on connector {connector.number} ({reason}): "
            f"{_kwh(tx.meter_stop_wh - tx.meter_start_wh)}"
        )
        return tx

    async def stop(
        self, connector: int | None = None, *, reason: str = "Local", id_tag: str = ""
    ) -> bool:
        """Stop charging (on ``connector``, else the first charging). False
        when nothing was charging."""
        found = self.running(connector)
        if found is None:
            self._say("nothing to stop")
            return False
        self._end(found, reason, id_tag)
        await self.flush()
        await self._settle(found)
        return True

    async def flush(self) -> None:
        """Send the queued messages, oldest first, each until it is answered;
        stop at the first that cannot be sent (it is sent when back)."""
        async with self._flushing:
            while self.queue and self.online:
                message = self.queue[0]
                try:
                    answer = await self._call(message.payload)
                except Offline:
                    return  # sent when back
                except TimeoutError:
                    self._say(f"no answer: sending again in {RETRY_INTERVAL:g} s")
                    self._spawn(self._flush_later(RETRY_INTERVAL))
                    return
                except OCPPError as exc:
                    message.tries += 1
                    if message.tries < CALL_ERROR_TRIES:
                        self._say(f"the platform answered {exc.code}: sending again in 1 s")
                        await asyncio.sleep(1)
                        continue
                    self._say(f"the platform answered {exc.code} {CALL_ERROR_TRIES} times: dropped")
                    self.queue.pop(0)
                    continue
                self.queue.pop(0)
                self.sent.append(message.payload)
                del self.sent[:-SENT_KEPT]
                self._answered(message, answer)

    async def _flush_later(self, delay: float) -> None:
        await asyncio.sleep(delay)
        await self.flush()

    def _answered(self, message: Queued, answer: Any) -> None:
        """A transaction's start answered: the platform's transaction number
        (1.6), and whether the badge is still good (a start made offline)."""
        numbered, status = self.words.start_answer(message.payload, answer)
        tx = message.transaction
        if numbered is not None and numbered != tx.transaction_id:
            placeholder, tx.transaction_id = tx.transaction_id, numbered
            for waiting in self.queue:
                if getattr(waiting.payload, "transaction_id", None) == placeholder:
                    waiting.payload.transaction_id = numbered
            self._say(f"the platform numbered the transaction {numbered}")
        if status is not None and status != ACCEPTED and tx.running:
            connector = self.connector(tx.connector)
            if connector is not None and connector.transaction is tx:
                self._say(f"the platform answered {status} for {tx.id_tag}: charging stops")
                self._end(connector, "DeAuthorized")
                self._spawn(self._settle(connector))

    async def send_again(self, payloads: list[Any]) -> list[Any]:
        """Send messages again as they were (a station that did not get the
        answers), without acting on the answers; returns them."""
        return [await self._call(payload) for payload in payloads]

    # --- the platform's commands -----------------------------------------------------

    def _command(self, text: str, status: str) -> str:
        self._say(f"command: {text}: {status}")
        return status

    def carry_out(self) -> None:
        """What a command asked for, once its answer is sent (the @after
        hooks: a handler answers first, then the station acts)."""
        then, self._then = self._then, None
        if then is not None:
            self._spawn(then())

    def remote_start(
        self, id_tag: str, number: int | None, remote_start_id: int | None = None
    ) -> str:
        """RemoteStartTransaction / RequestStartTransaction: Accepted when the
        connector (or any, when none is named) is free; charging starts
        without asking the platform again (it asked)."""
        self._then = None
        found = (
            self.connector(number) if number else next((c for c in self.connectors if c.free), None)
        )
        text = f"remote start for {id_tag} on connector {number or 'any'}"
        if found is None or not found.free:
            return self._command(text, "Rejected")
        connector, tag = found, id_tag.strip().upper()
        connector.reserved_for = tag
        self._then = lambda: self._begin(connector, tag, remote_start_id=remote_start_id)
        return self._command(text, ACCEPTED)

    def remote_stop(self, transaction_id: int | str) -> str:
        self._then = None
        connector = next(
            (
                c
                for c in self.connectors
                if c.transaction and str(c.transaction.transaction_id) == str(transaction_id)
            ),
            None,
        )
        text = f"remote stop of transaction {transaction_id}"
        if connector is None:
            return self._command(text, "Rejected")
        number = connector.number
        self._then = lambda: self.stop(number, reason="Remote")
        return self._command(text, ACCEPTED)

    def reset(self, reason: str, *, when_idle: bool = False) -> str:
        """Reset: transactions stop (``reason``), then the station reconnects
        and boots. ``when_idle`` (2.0.1 OnIdle): after the transactions end."""
        self._then = None
        if when_idle and any(c.transaction for c in self.connectors):
            self._reset_when_idle = True
            return self._command("reset when idle", "Scheduled")
        self._then = lambda: self._reset(reason)
        return self._command("reset", ACCEPTED)

    async def _reset(self, reason: str) -> None:
        for connector in self.connectors:
            if self._end(connector, reason) is not None:
                connector.status = self._idle_status(connector)  # said after the boot
        await self.flush()
        await self._reboot()

    async def _reboot(self) -> None:
        self._say("rebooting")
        await self.go_offline()
        await asyncio.sleep(0.1)
        await self.connect(boot_reason="RemoteReset")

    def unlock(self, number: int, *, stop: bool) -> str:
        """UnlockConnector: Unlocked; a transaction on it stops first
        (``stop``, 1.6) or the unlock is refused (2.0.1's answer)."""
        self._then = None
        connector = self.connector(number)
        text = f"unlock connector {number}"
        if connector is None:
            return self._command(text, "Unknown")
        if connector.transaction is not None:
            if not stop:
                return self._command(text, "Busy")
            self._then = lambda: self.stop(number, reason="UnlockCommand")
        return self._command(text, "Unlocked")

    def change_availability(self, number: int | None, operative: bool) -> str:
        """ChangeAvailability of a connector (or all: None). A connector that
        is charging changes once the transaction ends (Scheduled)."""
        self._then = None
        chosen = (
            self.connectors if not number else [c for c in self.connectors if c.number == number]
        )
        text = f"{'operative' if operative else 'inoperative'}: connector {number or 'all'}"
        if not chosen:
            return self._command(text, "Rejected")
        for connector in chosen:
            connector.operative = operative
        busy = any(c.transaction is not None for c in chosen)
        idle = [c for c in chosen if c.transaction is None]

        async def apply() -> None:
            for connector in idle:
                await self._set_status(connector, self._idle_status(connector))

        self._then = apply
        return self._command(text, "Scheduled" if busy else ACCEPTED)


# --- how each version spells the station's messages -------------------------------------


class Words16:
    """OCPP 1.6J: the platform numbers transactions; energy in meterStart and
    meterStop is in Wh; meter values go in MeterValues."""

    def __init__(self, charger: SimulatedCharger) -> None:
        self.charger = charger

    def boot(self, reason: str) -> Any:
        c = self.charger
        return call16.BootNotification(
            charge_point_vendor=c.vendor,
            charge_point_model=c.model,
            charge_point_serial_number=c.serial,
            firmware_version=c.firmware,
        )

    def heartbeat(self) -> Any:
        return call16.Heartbeat()

    def connector_status(self, state: str) -> str | None:
        return state

    def status(self, connector: int, status: str) -> Any:
        return call16.StatusNotification(
            connector_id=connector, error_code="NoError", status=status, timestamp=_iso(_now())
        )

    def authorize(self, uid: str) -> Any:
        return call16.Authorize(id_tag=uid)

    def authorization(self, answer: Any) -> str:
        return str(answer.id_tag_info["status"])

    def _sample(self, wh: int, context: str, *, power: bool) -> dict[str, Any]:
        kwh = self.charger.energy_unit == "kWh"
        samples: list[dict[str, Any]] = [
            {
                "value": f"{wh / 1000:.3f}" if kwh else str(wh),
                "context": context,
                "measurand": ENERGY,
                "unit": self.charger.energy_unit,
            }
        ]
        if power:
            samples.append(
                {
                    "value": str(self.charger.power_w),
                    "context": context,
                    "measurand": POWER,
                    "unit": "W",
                }
            )
        return {"timestamp": _iso(_now()), "sampled_value": samples}

    def started(self, tx: Transaction, *, offline: bool) -> Any:
        return call16.StartTransaction(
            connector_id=tx.connector,
            id_tag=tx.id_tag,
            meter_start=tx.meter_start_wh,
            timestamp=_iso(tx.started_at),
        )

    def meter(self, tx: Transaction, wh: int, *, offline: bool) -> Any:
        return call16.MeterValues(
            connector_id=tx.connector,
            transaction_id=tx.transaction_id,
            meter_value=[self._sample(wh, "Sample.Periodic", power=True)],
        )

    def stopped(self, tx: Transaction, reason: str, id_tag: str, *, offline: bool) -> Any:
        assert tx.meter_stop_wh is not None
        return call16.StopTransaction(
            meter_stop=tx.meter_stop_wh,
            timestamp=_iso(_now()),
            transaction_id=tx.transaction_id,
            reason=reason,
            id_tag=id_tag or None,
        )

    def start_answer(self, payload: Any, answer: Any) -> tuple[int | None, str | None]:
        if not isinstance(payload, call16.StartTransaction):
            return None, None
        return int(answer.transaction_id), str(answer.id_tag_info["status"])


class Words201:
    """OCPP 2.0.1: the station numbers its transactions (uuids); badges are
    id tokens of type ISO14443; a transaction's meter values go in its
    TransactionEvents (Started, Updated, Ended)."""

    STATES = {"Preparing": "Occupied", "Charging": "Occupied", "Finishing": None}
    TRIGGERS = {
        "Local": "StopAuthorized",
        "Remote": "RemoteStop",
        "DeAuthorized": "Deauthorized",
        "ImmediateReset": "ResetCommand",
        "EVDisconnected": "EVCommunicationLost",
    }

    def __init__(self, charger: SimulatedCharger) -> None:
        self.charger = charger

    def boot(self, reason: str) -> Any:
        c = self.charger
        return call201.BootNotification(
            charging_station={
                "vendor_name": c.vendor,
                "model": c.model,
                "serial_number": c.serial,
                "firmware_version": c.firmware,
            },
            reason=reason,
        )

    def heartbeat(self) -> Any:
        return call201.Heartbeat()

    def connector_status(self, state: str) -> str | None:
        return self.STATES.get(state, state)

    def status(self, connector: int, status: str) -> Any:
        return call201.StatusNotification(
            timestamp=_iso(_now()), connector_status=status, evse_id=connector, connector_id=1
        )

    def authorize(self, uid: str) -> Any:
        return call201.Authorize(id_token={"id_token": uid, "type": TOKEN_TYPE})

    def authorization(self, answer: Any) -> str:
        return str(answer.id_token_info["status"])

    def _meter_value(self, wh: int, context: str, *, power: bool) -> dict[str, Any]:
        kwh = self.charger.energy_unit == "kWh"
        samples: list[dict[str, Any]] = [
            {
                "value": round(wh / 1000, 3) if kwh else wh,
                "context": context,
                "measurand": ENERGY,
                "unit_of_measure": {"unit": self.charger.energy_unit},
            }
        ]
        if power:
            samples.append(
                {
                    "value": self.charger.power_w,
                    "context": context,
                    "measurand": POWER,
                    "unit_of_measure": {"unit": "W"},
                }
            )
        return {"timestamp": _iso(_now()), "sampled_value": samples}

    def _event(
        self,
        tx: Transaction,
        event_type: str,
        trigger: str,
        meter_value: dict[str, Any],
        *,
        offline: bool,
        state: str = "Charging",
        reason: str = "",
        id_tag: str = "",
        at: datetime | None = None,
    ) -> Any:
        info: dict[str, Any] = {"transaction_id": tx.transaction_id, "charging_state": state}
        if reason:
            info["stopped_reason"] = reason
        if tx.remote_start_id is not None and event_type == "Started":
            info["remote_start_id"] = tx.remote_start_id
        return call201.TransactionEvent(
            event_type=event_type,
            timestamp=_iso(at or _now()),
            trigger_reason=trigger,
            seq_no=tx.next_seq(),
            transaction_info=info,
            meter_value=[meter_value],
            offline=True if offline else None,
            evse={"id": tx.connector, "connector_id": 1},
            id_token={"id_token": id_tag, "type": TOKEN_TYPE} if id_tag else None,
        )

    def started(self, tx: Transaction, *, offline: bool) -> Any:
        return self._event(
            tx,
            "Started",
            "RemoteStart" if tx.remote_start_id is not None else "Authorized",
            self._meter_value(tx.meter_start_wh, "Transaction.Begin", power=False),
            offline=offline,
            id_tag=tx.id_tag,
            at=tx.started_at,
        )

    def meter(self, tx: Transaction, wh: int, *, offline: bool) -> Any:
        return self._event(
            tx,
            "Updated",
            "MeterValuePeriodic",
            self._meter_value(wh, "Sample.Periodic", power=True),
            offline=offline,
        )

    def stopped(self, tx: Transaction, reason: str, id_tag: str, *, offline: bool) -> Any:
        assert tx.meter_stop_wh is not None
        return self._event(
            tx,
            "Ended",
            self.TRIGGERS.get(reason, "AbnormalCondition"),
            self._meter_value(tx.meter_stop_wh, "Transaction.End", power=False),
            offline=offline,
            state="EVConnected",
            reason=reason,
            id_tag=id_tag,
        )

    def start_answer(self, payload: Any, answer: Any) -> tuple[int | None, str | None]:
        if not isinstance(payload, call201.TransactionEvent) or payload.event_type != "Started":
            return None, None
        info = answer.id_token_info
        return None, (str(info["status"]) if isinstance(info, dict) else None)


# --- the platform's calls, read in each version's words ----------------------------------


def _entry(info: dict[str, Any] | None, expiry_key: str) -> ListEntry | None:
    if not isinstance(info, dict):
        return None
    return ListEntry(str(info.get("status") or "Invalid"), _parse(info.get(expiry_key)))


class Point16(ChargePoint16):
    """One connection's OCPP 1.6 charge point: the platform's calls, answered
    by the charger (an @after hook carries out what the answer promised)."""

    def __init__(self, charger: SimulatedCharger, ws: ClientConnection) -> None:
        super().__init__(charger.charge_point_id, ws, response_timeout=RESPONSE_TIMEOUT)
        self.charger = charger

    @on(Action16.send_local_list)
    def on_send_local_list(
        self, list_version: int, update_type: str, local_authorization_list: Any = None, **kw: Any
    ) -> Any:
        entries = {
            str(item["id_tag"]): _entry(item.get("id_tag_info"), "expiry_date")
            for item in local_authorization_list or []
        }
        status = self.charger.take_list(list_version, update_type == "Full", entries)
        return result16.SendLocalList(status=status)

    @on(Action16.get_local_list_version)
    def on_get_local_list_version(self, **kw: Any) -> Any:
        return result16.GetLocalListVersion(list_version=self.charger.list_version)

    @on(Action16.remote_start_transaction)
    def on_remote_start(self, id_tag: str, connector_id: int | None = None, **kw: Any) -> Any:
        return result16.RemoteStartTransaction(
            status=self.charger.remote_start(id_tag, connector_id)
        )

    @after(Action16.remote_start_transaction)
    def after_remote_start(self, **kw: Any) -> None:
        self.charger.carry_out()

    @on(Action16.remote_stop_transaction)
    def on_remote_stop(self, transaction_id: int, **kw: Any) -> Any:
        return result16.RemoteStopTransaction(status=self.charger.remote_stop(transaction_id))

    @after(Action16.remote_stop_transaction)
    def after_remote_stop(self, **kw: Any) -> None:
        self.charger.carry_out()

    @on(Action16.reset)
    def on_reset(self, type: str, **kw: Any) -> Any:
        reason = "HardReset" if type == "Hard" else "SoftReset"
        return result16.Reset(status=self.charger.reset(reason))

    @after(Action16.reset)
    def after_reset(self, **kw: Any) -> None:
        self.charger.carry_out()

    @on(Action16.unlock_connector)
    def on_unlock(self, connector_id: int, **kw: Any) -> Any:
        status = self.charger.unlock(connector_id, stop=True)
        return result16.UnlockConnector(status="NotSupported" if status == "Unknown" else status)

    @after(Action16.unlock_connector)
    def after_unlock(self, **kw: Any) -> None:
        self.charger.carry_out()

    @on(Action16.change_availability)
    def on_change_availability(self, connector_id: int, type: str, **kw: Any) -> Any:
        status = self.charger.change_availability(connector_id, type == "Operative")
        return result16.ChangeAvailability(status=status)

    @after(Action16.change_availability)
    def after_change_availability(self, **kw: Any) -> None:
        self.charger.carry_out()


class Point201(ChargePoint201):
    """One connection's OCPP 2.0.1 charging station, as Point16."""

    def __init__(self, charger: SimulatedCharger, ws: ClientConnection) -> None:
        super().__init__(charger.charge_point_id, ws, response_timeout=RESPONSE_TIMEOUT)
        self.charger = charger

    @on(Action201.send_local_list)
    def on_send_local_list(
        self, version_number: int, update_type: str, local_authorization_list: Any = None, **kw: Any
    ) -> Any:
        entries = {
            str(item["id_token"]["id_token"]): _entry(
                item.get("id_token_info"), "cache_expiry_date_time"
            )
            for item in local_authorization_list or []
        }
        status = self.charger.take_list(version_number, update_type == "Full", entries)
        return result201.SendLocalList(status=status)

    @on(Action201.get_local_list_version)
    def on_get_local_list_version(self, **kw: Any) -> Any:
        return result201.GetLocalListVersion(version_number=self.charger.list_version)

    @on(Action201.request_start_transaction)
    def on_request_start(
        self, id_token: dict[str, Any], remote_start_id: int, evse_id: int | None = None, **kw: Any
    ) -> Any:
        status = self.charger.remote_start(str(id_token["id_token"]), evse_id, remote_start_id)
        return result201.RequestStartTransaction(status=status)

    @after(Action201.request_start_transaction)
    def after_request_start(self, **kw: Any) -> None:
        self.charger.carry_out()

    @on(Action201.request_stop_transaction)
    def on_request_stop(self, transaction_id: str, **kw: Any) -> Any:
        return result201.RequestStopTransaction(status=self.charger.remote_stop(transaction_id))

    @after(Action201.request_stop_transaction)
    def after_request_stop(self, **kw: Any) -> None:
        self.charger.carry_out()

    @on(Action201.reset)
    def on_reset(self, type: str, **kw: Any) -> Any:
        status = self.charger.reset("ImmediateReset", when_idle=type == "OnIdle")
        return result201.Reset(status=status)

    @after(Action201.reset)
    def after_reset(self, **kw: Any) -> None:
        self.charger.carry_out()

    @on(Action201.unlock_connector)
    def on_unlock(self, evse_id: int, connector_id: int, **kw: Any) -> Any:
        status = self.charger.unlock(evse_id, stop=False)
        spoken = {"Unknown": "UnknownConnector", "Busy": "OngoingAuthorizedTransaction"}
        return result201.UnlockConnector(status=spoken.get(status, status))

    @on(Action201.change_availability)
    def on_change_availability(
        self, operational_status: str, evse: dict[str, Any] | None = None, **kw: Any
    ) -> Any:
        number = int(evse["id"]) if isinstance(evse, dict) and evse.get("id") else None
        status = self.charger.change_availability(number, operational_status == "Operative")
        return result201.ChangeAvailability(status=status)

    @after(Action201.change_availability)
    def after_change_availability(self, **kw: Any) -> None:
        self.charger.carry_out()


# --- by hand --------------------------------------------------------------------------------

COMMANDS = "tag UID | stop | power KW | offline | online | status | list | help | quit"
HELP = """\
tag UID     present a badge (the same badge again stops its charging)
stop        stop charging
power KW    charge at KW kilowatts
offline     lose the network: charging goes on, messages are queued
online      connect again: boot, then send what was queued
status      the station, its connectors and its queue
list        the local authorization list
quit        disconnect and leave"""


async def interactive(
    charger: SimulatedCharger, read_line: Callable[[], Awaitable[str | None]]
) -> None:
    """The command loop of `doorkeep simulate charger`. StationRefused
    (a wrong password) reaches the caller."""
    name = f"{charger.charge_point_id} (OCPP {charger.ocpp})"
    print(f"Simulated charger {name} connecting to {charger.url} …")
    await charger.connect()
    print(f"Online. Type: {COMMANDS}")
    while True:
        line = await read_line()
        if line is None:
            break
        words = line.strip().split()
        if not words:
            continue
        command, args = words[0].lower(), words[1:]
        try:
            if command in ("tag", "badge") and args:
                await charger.present(args[0])
            elif command == "stop":
                await charger.stop()
            elif command == "power" and args:
                charger.set_power(float(args[0].replace(",", ".")))
            elif command == "offline":
                if charger.online:
                    await charger.go_offline()
                else:
                    print("Offline already.")
            elif command == "online":
                if charger.online:
                    print("Online already.")
                else:
                    await charger.go_online()
            elif command == "status":
                print("\n".join(charger.describe()))
            elif command == "list":
                print(f"local list version {charger.list_version}:")
                for tag, status in sorted(charger.local_list.items()):
                    print(f"  {tag}  {status}")
            elif command == "help":
                print(HELP)
            elif command in ("quit", "exit"):
                break
            else:
                print(f"Unknown command. Try: {COMMANDS}")
        except ValueError as exc:
            print(f"not understood: {exc}")
        except (OSError, TimeoutError) as exc:  # StationRefused and Offline included
            print(f"connection problem: {exc}")
