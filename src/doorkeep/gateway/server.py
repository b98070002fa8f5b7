"""The device gateway: an asyncio program that holds the locks' WebSocket
connections, keeps their credential lists in step, stores what they upload,
and carries remote unlocks to them.

Database work runs in a small thread pool (Django's ORM is synchronous). One
slow or broken connection never blocks the others: each has its own task, its
own send lock and its own message budget. docs/protocol/lock-v1.md is the
protocol; docs/gateway.md is for operators. Charging stations (OCPP 1.6J and
2.0.1) connect to the same server at /ocpp/{id}: gateway/ocpp/. Beside this file: syncing.py (the
list work done in the database threads), internal.py (commands from web
workers and other gateways), routing.py (how commands find a lock's gateway)."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import signal
import socket
import threading
import time
import uuid
from collections.abc import Callable, Coroutine, Iterable, Sequence
from concurrent import futures
from concurrent.futures import ThreadPoolExecutor
from dataclasses import KW_ONLY, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Generic, TypeVar

from django.conf import settings
from django.db import close_old_connections
from django.db import connections as db_connections
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Response
from websockets.protocol import State

from doorkeep.chargers import reports as chargers_reports
from doorkeep.core import clientip, memory
from doorkeep.gateway import internal, leases, lists, protocol, services, syncing
from doorkeep.gateway import metrics as gateway_metrics
from doorkeep.gateway.internal import INTERNAL_WS_PATH
from doorkeep.gateway.ocpp import answers, csms
from doorkeep.gateway.protocol import ProtocolError
from doorkeep.gateway.syncing import Hint, Push
from doorkeep.keys.credentials import lock_pin_key

log = logging.getLogger("doorkeep.gateway")
T = TypeVar("T")
A = TypeVar("A")
R = TypeVar("R")

HELLO_TIMEOUT = 10.0  # seconds to send hello after connecting (else 4000)
ACK_TIMEOUT = 10.0  # seconds to acknowledge a list push (else the sync state is failed)
PING_INTERVAL = 30  # seconds between WebSocket pings; a lock silent for as long is dropped
MESSAGES_PER_SECOND = 20  # sustained, per connection
BURST = 60  # messages a connection may send at once
THROTTLE_WINDOW = 10.0  # seconds
MAX_DROPPED = 100  # messages dropped for throttling within a window before closing (4008)
POLL_INTERVAL = 2.0  # seconds between watch rounds (changes come by notice; this is the net)
DB_THREADS = 4  # threads for the database work
SQLITE_CACHE_KIB = 8192  # page cache of each database thread's SQLite connection
WINDOW_SLACK = 0.005  # seconds after a window's end before reading the list again
# Seconds a frame may wait for the lock to read what was sent before it (its
# TCP window full) before the connection is cut: pings wait behind it too.
SEND_TIMEOUT = 2.0 * PING_INTERVAL
# A notice naming many locks (a lost badge): their differences are read, and
# their acknowledgements recorded, this many locks at a time in one database
# call (Batched).
SYNC_BATCH = 250
ACK_BATCH = 250
ANSWER_BATCH = 500  # Authorize events written in one statement


class Batched(Generic[A, R]):
    """Calls of ``func`` with a list of items, in a database thread, for
    items submitted one at a time on the event loop (``await batched(item)``
    returns that item's result). What is submitted while a list runs goes in
    the next one (up to ``most`` items a list, ``running`` lists at a time);
    nothing waits when nothing runs but the end of the loop's current round,
    so that what a burst submits in one round goes together. ``func`` returns
    one result per item, in order (an exception for an item that failed
    alone), or None for all."""

    def __init__(
        self,
        gateway: Gateway,
        func: Callable[[list[A]], Sequence[R | Exception] | None],
        *,
        most: int,
        running: int = 1,
    ) -> None:
        self.gateway, self.func, self.most, self.running = gateway, func, most, running
        self.pending: list[tuple[A, asyncio.Future[R]]] = []
        self.busy = 0
        self.scheduled = False

    async def __call__(self, item: A) -> R:
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self.pending.append((item, future))
        self._next()
        return await future

    def _next(self) -> None:
        if self.pending and not self.scheduled and self.busy < self.running:
            self.scheduled = True
            asyncio.get_running_loop().call_soon(self._start)

    def _start(self) -> None:
        self.scheduled = False
        while self.pending and self.busy < self.running:
            batch, self.pending = self.pending[: self.most], self.pending[self.most :]
            self.busy += 1
            self.gateway.spawn(self._run(batch), name="batch")

    async def _run(self, batch: list[tuple[A, asyncio.Future[R]]]) -> None:
        try:
            results = await self.gateway.db(self.func, [item for item, _ in batch])
        except BaseException as exc:
            for _, future in batch:
                if not future.done():
                    if isinstance(exc, Exception):
                        future.set_exception(exc)
                    else:
                        future.cancel()
            if not isinstance(exc, Exception):
                raise
        else:
            for index, (_, future) in enumerate(batch):
                result = None if results is None else results[index]
                if future.done():
                    continue  # its caller went (the connection closed)
                if isinstance(result, Exception):
                    future.set_exception(result)
                else:
                    future.set_result(result)  # type: ignore[arg-type]
        finally:
            self.busy -= 1
            self._next()


@dataclass
class Link:
    """What every device connection of the lock protocol has, whatever the
    device (a lock, a laundry machine's controller: gateway/laundry/): its
    WebSocket, where it comes from, one send at a time with the send
    timeout, and its message budget (a token bucket; ``Gateway.throttle``)."""

    ws: ServerConnection
    _: KW_ONLY
    peer: str = ""
    opened_at: float = field(default_factory=time.time)
    send_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    tokens: float = BURST
    refilled: float = field(default_factory=time.monotonic)
    dropped: int = 0
    window_start: float = field(default_factory=time.monotonic)
    warned_at: float = 0.0
    closing: bool = False  # being closed: what still arrives is read and dropped

    @property
    def who(self) -> str:
        """The device, for the gateway's log ("lock DK-7F3A-0042")."""
        return f"device from {self.peer}"

    @property
    def connected_at(self) -> datetime:
        """When it opened, as recorded on the device's row (names this connection)."""
        return datetime.fromtimestamp(self.opened_at, UTC)

    async def send(self, message: dict[str, Any]) -> None:
        await self.send_text(protocol.encode(message))

    async def send_text(self, text: str) -> None:
        """Send one frame. A device that stops reading (its TCP window full)
        would hold this, and the keepalive's ping, forever: after
        SEND_TIMEOUT the connection is cut (ConnectionClosed)."""
        async with self.send_lock:
            try:
                async with asyncio.timeout(SEND_TIMEOUT):
                    await self.ws.send(text)
            except TimeoutError:
                log.warning(
                    "cutting %s from %s: it read nothing for %g s",
                    self.who,
                    self.peer,
                    SEND_TIMEOUT,
                )
                self.ws.transport.abort()
                await self.ws.wait_closed()
                raise self.ws.protocol.close_exc from None

    def allow(self) -> bool:
        now = time.monotonic()
        self.tokens = min(BURST, self.tokens + (now - self.refilled) * MESSAGES_PER_SECOND)
        self.refilled = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True


@dataclass
class Connection(Link):
    session: services.Session
    acked_version: int  # -1: we do not know what the lock holds
    acked_snapshot: dict[str, str]  # fingerprints stored with the last ack, until we know...
    acked_rows: dict[int, lists.Row] | None = None  # ...the rows the lock acknowledged here
    registered: bool = False  # recorded on the Device row as held by this gateway
    next_end: float | None = None  # epoch seconds when an entry of its list leaves it
    inflight: Push | None = None
    dirty: bool = False  # a change came while a push was in flight
    queued: int = 0  # syncs asked for (``Gateway.changed``) and not done yet
    sync_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    pending: dict[str, asyncio.Future[dict[str, Any]]] = field(default_factory=dict)
    welcomed: bool = False  # no list before the welcome: the first sync follows it

    @property
    def who(self) -> str:
        return f"lock {self.session.serial}"


class Gateway:
    def __init__(
        self,
        *,
        gateway_id: str | None = None,
        host: str = "127.0.0.1",
        port: int = 8001,
        public_url: str | None = None,
        poll_interval: float = POLL_INTERVAL,
        db_threads: int = DB_THREADS,
        sqlite_cache_kib: int = SQLITE_CACHE_KIB,
    ) -> None:
        self.id = gateway_id or f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self.host, self.port = host, port
        self.public_url = public_url
        self.poll_interval = poll_interval
        self.connections: dict[int, Connection] = {}
        self.stations: dict[int, csms.StationLink] = {}  # charging stations (OCPP), by id
        self.machines: dict[int, Any] = {}  # laundry machines (gateway/laundry/), by id
        self.internal_links: set[ServerConnection] = set()  # from web workers, other gateways
        self.executor = ThreadPoolExecutor(max_workers=db_threads, thread_name_prefix="gw-db")
        # The lease has a database thread of its own: however busy the others
        # are (a thousand locks reconnecting at once), it does not wait for them.
        self.lease_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="gw-lease")
        # Connections that have not said hello yet, by client address (the
        # cap), and the address each was counted under.
        self.waiting: dict[str, set[ServerConnection]] = {}
        self._waiting_as: dict[ServerConnection, str] = {}
        self._refusals_logged: dict[str, float] = {}  # address -> when last logged
        # Raised each time the lease turns out to have been taken for dead;
        # reclaim_pending until the devices held are recorded online again.
        self.lease_generation = 0
        self.reclaim_pending = False
        self._sweeping: asyncio.Task[None] | None = None
        self.server: Server | None = None
        self.router: Any = None
        self._tasks: list[asyncio.Task[Any]] = []
        self._background: set[asyncio.Task[Any]] = set()
        self.sqlite_cache_kib = sqlite_cache_kib
        self._windows_wake = asyncio.Event()
        self._windows_at: float | None = None  # when the windows task wakes next
        self._row_turns: dict[int | str, tuple[asyncio.Lock, int]] = {}  # lock id -> (turn, users)
        self._by_keys: Batched[syncing.Sync, syncing.Prepared] = Batched(
            self, syncing.prepare_many, most=SYNC_BATCH
        )
        self._acks: Batched[tuple[services.Session, Push], None] = Batched(
            self, syncing.record_acks, most=ACK_BATCH
        )
        # Charging stations: the site decisions Authorize is answered from,
        # and its events, written in batches (gateway/ocpp/answers.py).
        self.decisions = answers.Decisions()
        self.answered: Batched[chargers_reports.Answered, None] = Batched(
            self, chargers_reports.record_answers, most=ANSWER_BATCH
        )
        self.seen: Batched[int, None] = Batched(self, chargers_reports.seen_many, most=ANSWER_BATCH)

    # --- running -------------------------------------------------------------------

    async def db(self, func: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        def call() -> T:
            close_old_connections()
            syncing.tune_connection(self.sqlite_cache_kib)
            return func(*args, **kwargs)

        return await asyncio.get_running_loop().run_in_executor(self.executor, call)

    async def lease(self, func: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """``db`` on the lease's own thread."""

        def call() -> T:
            close_old_connections()
            return func(*args, **kwargs)

        return await asyncio.get_running_loop().run_in_executor(self.lease_thread, call)

    async def _keep_lease(self) -> None:
        """Renew this gateway's lease; record the devices of gateways whose
        lease ran out offline (gateway/leases.py)."""
        while True:
            await asyncio.sleep(leases.renew_every())
            try:
                await self._lease_round()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("gateway lease round failed")

    def _renew(self) -> None:
        """On the lease thread: renew; a lease that was gone is taken again,
        and the devices held here must be recorded online again. Noted here,
        on the thread, so that whatever runs on the lease thread after this
        (``_watch_round``'s check) sees it."""
        if not leases.renew(self.id, self.public_url or ""):
            self.lease_generation += 1
            self.reclaim_pending = True

    async def _lease_round(self) -> None:
        await self.lease(self._renew)
        if self.reclaim_pending:
            await self._reclaim()
        self._prune_waiting()
        # The sweep runs beside the renewals, on the database threads: one of
        # thousands of devices takes seconds, which must not delay the next
        # renewal of this gateway's own lease.
        if self._sweeping is None or self._sweeping.done():
            self._sweeping = self.spawn(self._sweep(), "lease-sweep")

    async def _sweep(self) -> None:
        try:
            swept = await self.db(leases.sweep)
        except Exception:
            log.exception("sweeping the leases that ran out failed")
            return
        for dead in swept:
            for kind, count in (
                ("lock", dead.locks),
                ("station", dead.stations),
                ("machine", dead.machines),
            ):
                gateway_metrics.DEVICES_SWEPT.labels(kind).inc(count)
            log.warning(
                "gateway %s stopped renewing its lease: %d locks, %d stations and %d "
                "machines recorded offline",
                dead.gateway,
                dead.locks,
                dead.stations,
                dead.machines,
            )

    async def _reclaim(self) -> None:
        """Record the devices held here online again (this gateway had been
        taken for dead). Tried again at every lease round until it worked."""
        generation = self.lease_generation
        locks = {lock_id: c for lock_id, c in self.connections.items() if c.registered}
        stations, machines = dict(self.stations), dict(self.machines)
        back = await self.lease(
            leases.reclaim,
            self.id,
            self.public_url or "",
            locks=list(locks),
            stations=list(stations),
            machines=list(machines),
        )
        if generation == self.lease_generation:  # not taken for dead again meanwhile
            self.reclaim_pending = False
        log.warning(
            "gateway %s: its lease had run out (another gateway took it for dead); "
            "renewed, %d devices recorded online again",
            self.id,
            len(back),
        )
        # A connection that closed while the reclaim was on its way: its
        # goodbye found the row already offline and did nothing; the reclaim
        # then recorded it online. Record it offline now.
        from doorkeep.gateway.laundry import machines as laundry

        for lock_id in back.locks:
            conn = locks[lock_id]
            if self.connections.get(lock_id) is not conn:
                await self.device_row(
                    lock_id,
                    services.disconnected,
                    conn.session,
                    gateway=self.id,
                    reason="connection closed",
                    connected_at=conn.connected_at,
                )
        for station_id in back.stations:
            station = stations[station_id]
            if self.stations.get(station_id) is not station:
                await self.db(
                    chargers_reports.disconnected,
                    station.session,
                    gateway=self.id,
                    connected_at=station.opened_at,
                )
        for machine_id in back.machines:
            link = machines[machine_id]
            if self.machines.get(machine_id) is not link:
                await laundry.record_gone(self, link, "connection closed")

    def admit(self, connection: ServerConnection, headers: Headers) -> Response | None:
        """A device's handshake: refused (503) when its address already has
        DOORKEEP_GATEWAY_WAITING_PER_ADDRESS connections that have not said
        hello, so that one address cannot hold a gateway's sockets open doing
        nothing. Behind a trusted proxy the address is the forwarded one."""
        address = connection.remote_address
        peer = str(address[0]) if address else ""
        # Every X-Forwarded-For line, as one list (a proxy may add a line of its own).
        forwarded = ", ".join(headers.get_all("X-Forwarded-For"))
        client = clientip.client_from(peer, forwarded)
        waiting = self.waiting.setdefault(client, set())
        for closed in [c for c in waiting if c.state is State.CLOSED]:
            self.said_hello(closed)
        waiting = self.waiting.setdefault(client, set())
        if len(waiting) >= settings.DOORKEEP_GATEWAY_WAITING_PER_ADDRESS:
            gateway_metrics.HANDSHAKES_REFUSED.inc()
            now = time.monotonic()
            if now - self._refusals_logged.get(client, -60.0) >= 60.0:  # a line a minute
                self._refusals_logged[client] = now
                log.warning(
                    "refusing connections from %s: %d connections from there have not said "
                    "hello yet (logged once a minute; doorkeep_gateway_handshakes_refused_total "
                    "counts them all)",
                    client,
                    len(waiting),
                )
            response = connection.respond(
                503, "Too many connections from this address are waiting to say hello.\n"
            )
            response.headers["Retry-After"] = "5"
            return response
        waiting.add(connection)
        self._waiting_as[connection] = client
        return None

    def said_hello(self, connection: ServerConnection) -> None:
        """The connection sent its first message (or is gone): no longer waiting."""
        client = self._waiting_as.pop(connection, None)
        if client is None:
            return
        waiting = self.waiting.get(client)
        if waiting is not None:
            waiting.discard(connection)
            if not waiting:
                del self.waiting[client]

    def _prune_waiting(self) -> None:
        """Forget connections whose handshake failed after ``admit`` (they never
        reach ``handle``), and refusals logged long ago."""
        for connection in [c for c in self._waiting_as if c.state is State.CLOSED]:
            self.said_hello(connection)
        now = time.monotonic()
        for client in [c for c, at in self._refusals_logged.items() if now - at > 60.0]:
            del self._refusals_logged[client]

    async def device_row(
        self, lock_id: int | str, func: Callable[..., T], *args: Any, **kwargs: Any
    ) -> T:
        """``db`` for the writes that say which connection holds a lock
        (``services.connected``, ``services.disconnected``): they run one at a
        time per lock, in the order they were asked. On different database
        threads a reconnecting lock's "connected" could otherwise be written
        before its old connection's goodbye, or two connections' "connected"
        the wrong way round, leaving the row naming a connection that is gone."""
        turn, users = self._row_turns.get(lock_id, (asyncio.Lock(), 0))
        self._row_turns[lock_id] = (turn, users + 1)
        try:
            async with turn:
                return await self.db(func, *args, **kwargs)
        finally:
            turn, users = self._row_turns[lock_id]
            if users == 1:
                del self._row_turns[lock_id]
            else:
                self._row_turns[lock_id] = (turn, users - 1)

    def spawn(self, coro: Coroutine[Any, Any, Any], name: str = "") -> asyncio.Task[Any]:
        """Run ``coro`` in the background, keeping a reference until it ends."""
        task = asyncio.get_running_loop().create_task(coro, name=name or None)
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        return task

    async def start(self) -> None:
        from doorkeep.gateway.routing import MAX_UNLOCK_TIMEOUT, gateway_side

        self.router = gateway_side(self)
        self.server = await serve(
            self.handle,
            self.host,
            self.port,
            process_request=functools.partial(internal.process_request, self),
            select_subprotocol=csms.select_subprotocol,
            max_size=protocol.MAX_FRAME_BYTES,
            ping_interval=PING_INTERVAL,
            ping_timeout=PING_INTERVAL,
            compression=None,
            # Internal requests are answered during the handshake; an unlock
            # waits for the lock up to MAX_UNLOCK_TIMEOUT.
            open_timeout=MAX_UNLOCK_TIMEOUT + 5,
        )
        sock = next(iter(self.server.sockets))
        self.port = sock.getsockname()[1]
        if self.public_url is None:
            self.public_url = f"http://{self.host}:{self.port}"
        from doorkeep.gateway.laundry import machines

        left = await self.lease(leases.take, self.id, self.public_url)
        if left.locks or left.stations or left.machines:
            log.warning(
                "gateway %s did not stop cleanly last time: %d locks, %d stations and %d "
                "machines it held are recorded offline",
                self.id,
                left.locks,
                left.stations,
                left.machines,
            )
        try:
            await self.router.start()
        except BaseException:
            self.server.close()
            await self.server.wait_closed()
            raise
        self._tasks.append(asyncio.create_task(self._watch(), name="watch"))
        self._tasks.append(asyncio.create_task(self._keep_lease(), name="lease"))
        self._tasks.append(asyncio.create_task(self._windows(), name="windows"))
        self._tasks.append(asyncio.create_task(csms.recheck(self), name="station-lists"))
        self._tasks.append(asyncio.create_task(machines.watch(self), name="machine-lists"))
        log.info("gateway %s listening on %s", self.id, self.public_url)

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        # Internal links are read only while their web thread waits for an
        # answer, so nobody would answer a closing handshake: they are cut.
        for link in list(self.internal_links):
            link.transport.abort()
        if self.server is not None:
            self.server.close()  # closes every connection (1001); waits for their handlers
            await self.server.wait_closed()
        for task in list(self._background):
            task.cancel()
        if self.router is not None:
            await self.router.stop()
        for conn in list(self.connections.values()):
            with contextlib.suppress(Exception):
                await self.db(
                    services.disconnected,
                    conn.session,
                    gateway=self.id,
                    reason="gateway stopped",
                    connected_at=conn.connected_at,
                )
        self.connections.clear()
        for station in list(self.stations.values()):
            with contextlib.suppress(Exception):
                await self.db(
                    chargers_reports.disconnected,
                    station.session,
                    gateway=self.id,
                    connected_at=station.opened_at,
                )
        self.stations.clear()
        from doorkeep.gateway.laundry import machines

        await machines.stopped(self)
        with contextlib.suppress(Exception):
            await self.lease(leases.give_up, self.id)
        with contextlib.suppress(Exception):
            await self.lease(db_connections.close_all)
        self.lease_thread.shutdown(wait=False, cancel_futures=True)
        await asyncio.get_running_loop().run_in_executor(None, self._close_db_connections)
        self.executor.shutdown(wait=False, cancel_futures=True)

    def _close_db_connections(self) -> None:
        """Close the database connection of every worker thread (Django's
        connections belong to their thread: each must close its own)."""
        workers = self.executor._max_workers
        barrier = threading.Barrier(workers)

        def close() -> None:
            with contextlib.suppress(threading.BrokenBarrierError):
                barrier.wait(timeout=2)  # one call on each thread
            db_connections.close_all()

        with contextlib.suppress(RuntimeError):  # already shut down
            futures.wait([self.executor.submit(close) for _ in range(workers)], timeout=5)

    async def serve_forever(self) -> None:
        """Run until SIGTERM or SIGINT, then close every connection and record
        the locks as offline."""
        await self.start()
        stopping = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.add_signal_handler(signum, stopping.set)
        try:
            await stopping.wait()
            log.info("gateway %s stopping", self.id)
        finally:
            await self.stop()

    # --- one device ----------------------------------------------------------------

    async def handle(self, ws: ServerConnection) -> None:
        if ws.request is not None and ws.request.path == INTERNAL_WS_PATH:
            await internal.serve_links(self, ws)  # a web worker or another gateway (token checked)
            return
        if ws.request is not None and csms.is_station_path(ws.request.path):
            await csms.serve_station(
                self, ws
            )  # a charging station (authenticated in the handshake)
            return
        peer = _peer(ws)
        try:
            raw = await asyncio.wait_for(ws.recv(), HELLO_TIMEOUT)
        except TimeoutError:
            log.info("closing %s: no hello within %g s", peer, HELLO_TIMEOUT)
            with contextlib.suppress(ConnectionClosed):
                await ws.close(services.CLOSE_AUTH_TIMEOUT, "send hello first")
            return
        except ConnectionClosed:
            return
        finally:
            self.said_hello(ws)
        received = datetime.now(UTC)
        try:
            hello = protocol.decode(raw, first=True)
            serial, secret, device_version = protocol.hello(hello)
        except ProtocolError as exc:
            code = (
                services.CLOSE_PROTOCOL
                if exc.code == "unsupported_protocol"
                else services.CLOSE_BAD_HELLO
            )
            log.info("closing %s (%d): %s", peer, code, exc.message)
            with contextlib.suppress(ConnectionClosed):
                await ws.send(protocol.encode(exc.frame()))
                await ws.close(code, exc.code)
            return
        if hello.get("kind") == "laundry":  # a laundry machine's controller: gateway/laundry/
            from doorkeep.gateway.laundry import machines

            await machines.serve(self, ws, hello, received, peer)
            return
        try:
            session = await self.db(services.authenticate, serial, secret, peer=peer)
        except services.DeviceRefused as refused:
            with contextlib.suppress(ConnectionClosed):
                await ws.close(refused.close_code, refused.reason)
            return
        conn = Connection(ws, session, session.acked_version, session.acked_entries, peer=peer)
        if device_version == 0 or device_version != session.acked_version:
            # The lock has nothing, or a list we never saw acknowledged: send it all.
            conn.acked_version, conn.acked_snapshot = -1, {}
        previous = self.connections.get(session.lock_id)
        self.connections[session.lock_id] = conn
        if previous is not None:
            self.retire(previous, services.CLOSE_REPLACED, "connected again")
        try:
            holder = await self.device_row(
                session.lock_id,
                services.connected,
                session,
                gateway=self.id,
                url=self.public_url or "",
                hello=hello,
                clock_offset_ms=protocol.clock_offset_ms(hello.get("clock"), received),
                at=conn.connected_at,
            )
            conn.registered = True
            await self._register(session.lock_id)
            if holder is not None:
                self.spawn(self._replaced(session.lock_id, holder))
            await conn.send(
                {
                    "type": "welcome",
                    "protocol": protocol.VERSION,
                    "time": protocol.now_iso(),
                    "clock_offset_ms": protocol.clock_offset_ms(hello.get("clock"), received),
                    "pin_key": lock_pin_key(session.serial).hex(),
                    "heartbeat": PING_INTERVAL,
                    "last_seq": session.last_device_seq,
                }
            )
            conn.welcomed = True
            log.info("lock %s connected from %s", session.serial, peer)
            await self.sync(conn, initial=True)
            async for message in ws:
                await self.on_message(conn, message)
        except ConnectionClosed:
            pass
        finally:
            await self._release(conn)

    async def _register(self, lock_id: int) -> None:
        try:
            await self.router.registered(lock_id)
        except Exception as exc:  # the lock still works; commands cannot find it
            log.warning("could not register lock %s for routing: %s", lock_id, exc)

    async def _replaced(self, lock_id: int, holder: services.Holder) -> None:
        """Tell ``holder`` to close its connection of the lock: the one it
        recorded on the Device row, or an older one. The moment is the
        holder's own (``connected_at``, written from its clock), so no two
        machines' clocks are compared: a holder whose clock is ahead still
        closes the old connection, one whose clock is behind never closes a
        newer one."""
        if holder.connected_at is None:  # nothing recorded: as of our clock
            before = time.time()
        else:  # just after it: a float need not give back the exact microsecond
            before = holder.connected_at.timestamp() + 1e-6
        try:
            await self.router.replaced(lock_id, holder, before)
        except Exception as exc:
            log.info("could not tell gateway %s to drop lock %s: %s", holder.gateway, lock_id, exc)

    async def _release(self, conn: Connection) -> None:
        for future in conn.pending.values():
            if not future.done():
                future.set_result({"ok": False, "error": "offline"})
        lock_id = conn.session.lock_id
        if self.connections.get(lock_id) is not conn:
            return  # replaced by a newer connection, which now speaks for the lock
        del self.connections[lock_id]
        reason = conn.ws.close_reason or f"connection closed ({conn.ws.close_code})"
        log.info("lock %s disconnected: %s", conn.session.serial, reason)
        try:
            await self.router.unregistered(lock_id)
        except Exception as exc:
            log.warning("could not unregister lock %s: %s", lock_id, exc)
        newer = self.connections.get(lock_id)
        if newer is not None and newer.registered:
            # The lock connected here again while its old connection was being
            # unregistered, and registered before that was done: register it
            # again (one that has not registered yet will by itself).
            await self._register(lock_id)
        try:
            await self.device_row(
                lock_id,
                services.disconnected,
                conn.session,
                gateway=self.id,
                reason=reason,
                connected_at=conn.connected_at,
            )
        except Exception:
            log.exception("could not record that lock %s went offline", conn.session.serial)

    def retire(self, conn: Link, code: int, reason: str) -> None:
        """Close the device's connection with ``code``. In the background: the
        closing handshake needs the connection's own task to go on reading."""
        if conn.closing:
            return
        conn.closing = True
        log.info("closing %s (%d): %s", conn.who, code, reason)
        self.spawn(_close(conn.ws, code, reason))

    async def drop(self, lock_id: int, *, before: float) -> bool:
        """Another gateway got the lock's connection: close ours if it was
        opened before ``before`` (epoch seconds, on this gateway's clock: just
        after the moment this gateway recorded for the connection it replaces)."""
        conn = self.connections.get(lock_id)
        if conn is None or conn.opened_at >= before:
            return False
        self.retire(conn, services.CLOSE_REPLACED, "connected again elsewhere")
        return True

    async def on_message(self, conn: Connection, raw: str | bytes) -> None:
        if conn.closing:
            # Keep reading, so that the lock's close frame gets through; an
            # unlock's result is still its answer (the lock may have opened).
            answer = _answer(conn, raw)
            if answer is not None and answer["type"] == "unlock.result":
                self.on_unlock_result(conn, answer)
            return
        answer = None
        if not conn.allow():
            answer = _answer(conn, raw)
            if answer is None:
                await self.throttle(conn)
                return
        received = datetime.now(UTC)
        try:
            message = answer if answer is not None else protocol.decode(raw)
            kind = message["type"]
            if kind == "list.ack":
                await self.on_ack(conn, protocol.ack(message))
            elif kind == "events":
                batch = protocol.events(message)
                stored = await self.db(services.store_events, conn.session, batch)
                await conn.send({"type": "events.ack", "seqs": stored})
            elif kind == "status":
                offset = protocol.clock_offset_ms(message.get("clock"), received)
                await self.db(services.status, conn.session, message, offset)
            elif kind == "unlock.result":
                self.on_unlock_result(conn, message)
            elif kind == "time.request":
                await conn.send(
                    {
                        "type": "time",
                        "time": protocol.now_iso(),
                        "clock_offset_ms": protocol.clock_offset_ms(message.get("clock"), received),
                    }
                )
            elif kind == "hello":
                raise ProtocolError("already_hello", "hello is sent once, first")
        except ProtocolError as exc:
            await conn.send(exc.frame())
        except ConnectionClosed:
            raise
        except Exception:
            log.exception("a message of lock %s could not be handled", conn.session.serial)
            await conn.send(
                ProtocolError(
                    "internal", "the gateway could not handle this message; send it again later"
                ).frame()
            )

    async def throttle(self, conn: Link) -> None:
        """The message is dropped. Say so (at most once a second); close a
        connection that keeps sending far over its budget."""
        now = time.monotonic()
        if now - conn.window_start > THROTTLE_WINDOW:
            conn.window_start, conn.dropped = now, 0
        conn.dropped += 1
        if conn.dropped > MAX_DROPPED:
            log.warning("closing %s from %s: flooding", conn.who, conn.peer)
            self.retire(conn, services.CLOSE_FLOODING, "flooding: too many messages")
        elif now - conn.warned_at >= 1.0:
            conn.warned_at = now
            await conn.send(
                ProtocolError(
                    "throttled",
                    f"too many messages (at most {MESSAGES_PER_SECOND} a second, "
                    f"{BURST} at once); this one was dropped: slow down and send it again",
                ).frame()
            )

    def on_unlock_result(self, conn: Connection, message: dict[str, Any]) -> None:
        request_id = message.get("request_id")
        if not isinstance(request_id, str):
            raise ProtocolError("bad_message", "unlock.result needs the request_id")
        future = conn.pending.pop(request_id, None)
        if future is None or future.done():
            return  # answered too late, or never asked: nothing waits for it
        ok = message.get("ok") is True
        future.set_result(
            {
                "ok": ok,
                "error": "" if ok else "refused",
                "reason": str(message.get("reason") or "")[:100],
            }
        )

    async def on_ack(self, conn: Connection, version: int) -> None:
        push = conn.inflight
        if push is None or version != push.version:
            raise ProtocolError(
                "bad_ack",
                f"expected an acknowledgement of list version {push.version}, not {version}"
                if push
                else f"no list is waiting for an acknowledgement (got version {version})",
            )
        conn.acked_version, conn.acked_rows, conn.acked_snapshot = push.version, push.rows, {}
        conn.inflight = None
        await self._acks((conn.session, push))
        if conn.dirty:
            conn.dirty = False
            self.changed(conn.session.lock_id)

    async def sync(
        self, conn: Connection, *, initial: bool = False, hint: Hint | None = None
    ) -> None:
        """Bring the device's list to the platform's version: the difference
        from what it acknowledged, or the full list. One push at a time: a
        difference is always from the version the lock holds. On connecting,
        a device already in step hears so (``list.ok``). Reading the list,
        comparing and encoding run in a database thread, never on the loop.

        With a ``hint`` (a notice naming the keys of one change) that is the
        very next version after what the lock acknowledged on this connection,
        only those keys' rows are read, with those of the other locks of the
        notice (``syncing.prepare_many``, in batches: ``Batched``)."""
        if not conn.welcomed and not initial:
            return  # a change while the lock is still being welcomed: the first sync has it
        async with conn.sync_lock:
            push = conn.inflight
            if push is not None:
                if not push.failed:
                    conn.dirty = True  # the ack brings us back here
                    return
                # Never acknowledged: we cannot tell what the lock holds now.
                conn.acked_version, conn.acked_snapshot, conn.inflight = -1, {}, None
                conn.acked_rows = None
            if initial or conn.acked_rows is None or conn.acked_version < 0:
                hint = None
            elif hint is not None and hint[0] != conn.acked_version + 1:
                hint = None  # another change came between (or its notice was lost)
            sync = syncing.Sync(
                conn.session.lock_id,
                conn.acked_version,
                conn.acked_rows,
                conn.acked_snapshot,
                initial,
                hint,
            )
            if hint is not None:  # a notice's: read with the others of the notice
                prepared = await self._by_keys(sync)
            else:
                [found] = await self.db(syncing.prepare_many, [sync])
                if isinstance(found, Exception):
                    raise found
                prepared = found
            self._window_ends_at(conn, prepared.next_end)
            if prepared.ok_version is not None:
                await conn.send({"type": "list.ok", "version": prepared.ok_version})
            if prepared.push is None:
                return
            prepared.push.sent_at = time.monotonic()
            prepared.push.sent_wall = datetime.now(UTC)
            conn.inflight = prepared.push
            conn.dirty = False
            await conn.send_text(prepared.text)

    # --- changes and commands --------------------------------------------------------

    def changed(self, lock_id: int, hint: Hint | None = None) -> None:
        """The lock's list may have changed: push it if the lock is here.
        ``hint``: the version a change produced and the keys it touched, from
        its notice (None: anything may have changed). Call on the gateway's
        event loop."""
        conn = self.connections.get(lock_id)
        if conn is not None:
            conn.queued += 1
            self.spawn(self._sync_quietly(conn, hint), name=f"sync-{lock_id}")

    def changed_many(self, changes: Iterable[tuple[int, Hint | None]]) -> list[int]:
        """``changed`` for each (lock id, hint) of a notice, in order, from
        the loop's next round (the notice is answered first). Returns the ids
        of those locks not held here. Call on the gateway's event loop."""
        held, not_held = [], []
        for lock_id, hint in changes:
            if lock_id in self.connections:
                held.append((lock_id, hint))
            else:
                not_held.append(lock_id)
        if held:
            asyncio.get_running_loop().call_soon(self._changed_all, held)
        return not_held

    def _changed_all(self, changes: list[tuple[int, Hint | None]]) -> None:
        for lock_id, hint in changes:
            self.changed(lock_id, hint)

    async def _sync_quietly(self, conn: Connection, hint: Hint | None = None) -> None:
        try:
            await self.sync(conn, hint=hint)
        except ConnectionClosed:
            pass
        except Exception:
            log.exception("sync of %s failed", conn.session.serial)
        finally:
            conn.queued -= 1

    async def unlock(
        self, lock_id: int, request_id: str, timeout: float, *, forward: bool = True
    ) -> dict[str, Any]:
        """``_unlock``, timed for the metrics (gateway/metrics.py)."""
        started = time.perf_counter()
        answer = await self._unlock(lock_id, request_id, timeout, forward=forward)
        outcome = gateway_metrics.outcome_of(answer)
        seconds = time.perf_counter() - started
        gateway_metrics.UNLOCK_SECONDS.labels(outcome).observe(seconds)
        log.info("unlock of lock %s: %s in %.0f ms", lock_id, outcome, seconds * 1000)
        return answer

    async def _unlock(
        self, lock_id: int, request_id: str, timeout: float, *, forward: bool = True
    ) -> dict[str, Any]:
        """Have the lock open and wait for its answer: {"ok": true} or
        {"ok": false, "error": "offline" | "timeout" | "refused"}. A lock held
        by another gateway is reached through it (unless ``forward`` is off).
        A connection being closed (the lock went, or connected again
        elsewhere) is not asked: offline at once. The answer comes within
        ``timeout``, sending included (a lock that stopped reading holds a send)."""
        conn = self.connections.get(lock_id)
        if conn is None or conn.closing or conn.ws.state is not State.OPEN:
            if forward:
                return dict(await self.router.forward_unlock(lock_id, request_id, timeout))
            return {"ok": False, "error": "offline"}
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        conn.pending[request_id] = future
        try:
            async with asyncio.timeout(timeout):
                await conn.send(
                    {
                        "type": "unlock",
                        "request_id": request_id,
                        "expires": (datetime.now(UTC) + timedelta(seconds=timeout))
                        .isoformat(timespec="milliseconds")
                        .replace("+00:00", "Z"),
                    }
                )
                return await future
        except TimeoutError:
            return {"ok": False, "error": "timeout"}
        except ConnectionClosed:
            return {"ok": False, "error": "offline"}
        finally:
            conn.pending.pop(request_id, None)

    async def _watch(self) -> None:
        """Every ``poll_interval`` seconds: push what changed without a notice
        reaching us (another machine, a lost notice), mark pushes nobody
        acknowledged, and close connections of locks removed, changed hands or
        given a new device secret. Changes come by notice at once; this round
        is the safety net, so it is cheap and rare. A lock with a sync already
        on its way is left to it (a lost notice found while a sync runs waits
        for the next round)."""
        while True:
            await asyncio.sleep(self.poll_interval)
            try:
                await self._watch_round()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("gateway watch round failed")

    async def _watch_round(self) -> None:
        held = [conn for conn in self.connections.values() if conn.registered]
        if not held:
            return
        generation = self.lease_generation
        standing = await self.db(services.standing, self.id)
        if any(conn.session.lock_id not in standing for conn in held) and (
            self.reclaim_pending
            or not await self.lease(leases.held, self.id)
            or generation != self.lease_generation
        ):
            # Not removed: this gateway was taken for dead (its lease ran out)
            # and its locks recorded offline, maybe after ``standing`` was
            # read. Take the lease and them back; close nothing this round.
            await self._lease_round()
            return
        for conn in held:
            lock_id = conn.session.lock_id
            if self.connections.get(lock_id) is not conn or conn.closing:
                continue
            state = standing.get(lock_id)
            if (
                state is None
                or state.organization_id != conn.session.organization_id
                or state.secret_digest != conn.session.secret_digest
            ):
                self.retire(
                    conn,
                    services.CLOSE_REPLACED,
                    "the lock was removed, changed hands or got a new device secret",
                )
                continue
            push = conn.inflight
            if push is None:
                # A sync asked for (a notice's, waiting for its batch) reads
                # the list itself: a second one would read it whole for nothing.
                if state.version != conn.acked_version and not conn.queued:
                    self.changed(lock_id)
            elif not push.failed and time.monotonic() - push.sent_at > ACK_TIMEOUT:
                push.failed = True
                log.warning(
                    "lock %s did not acknowledge list version %d", conn.session.serial, push.version
                )
                await self.db(
                    services.push_failed,
                    conn.session,
                    f"The lock did not acknowledge list version {push.version} "
                    f"within {ACK_TIMEOUT:g} seconds.",
                    sent_at=push.sent_wall,
                )
            elif push.failed and state.version != push.version:
                self.changed(lock_id)  # try again, with the full list

    def _window_ends_at(self, conn: Connection, moment: float | None) -> None:
        """Remember when an entry of the lock's list leaves it; wake the
        windows task if that is before its next wake."""
        conn.next_end = moment
        if moment is not None and (self._windows_at is None or moment < self._windows_at):
            self._windows_wake.set()

    async def _windows(self) -> None:
        """Sync each lock the moment a key window of its list ends (the list
        changes by itself: the sync raises its version). From the lists in
        memory: no query while nothing ends."""
        while True:
            now = time.time()
            upcoming: float | None = None
            for conn in list(self.connections.values()):
                end = conn.next_end
                if end is None:
                    continue
                if end <= now:
                    conn.next_end = None
                    self.changed(conn.session.lock_id)
                elif upcoming is None or end < upcoming:
                    upcoming = end
            self._windows_at = upcoming
            self._windows_wake.clear()
            # A little after the end: the list read then no longer has the entry.
            timeout = None if upcoming is None else upcoming - now + WINDOW_SLACK
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._windows_wake.wait(), timeout)


def _answer(conn: Connection, raw: str | bytes) -> dict[str, Any] | None:
    """For a message over the lock's budget: the message, decoded, if it
    answers what the gateway waits for from this lock (the acknowledgement of
    the list in flight, or the result of a pending unlock), else None (it is
    dropped). Answers are never dropped: the gateway sends one push at a time
    and each unlock once, so they cannot flood, and dropping one would leave
    the lock's list unacknowledged or an unlock unanswered (a lock
    acknowledging 80 changes a second was throttled)."""
    if (conn.inflight is None and not conn.pending) or not isinstance(raw, str):
        return None
    if "list.ack" not in raw and "unlock.result" not in raw:
        return None  # anything else over the budget is dropped unread
    try:
        message = protocol.decode(raw)
    except ProtocolError:
        return None
    kind = message.get("type")
    if kind == "list.ack" and conn.inflight is not None:
        version = message.get("version")
        return message if type(version) is int and version == conn.inflight.version else None
    request_id = message.get("request_id")
    if kind == "unlock.result" and isinstance(request_id, str) and request_id in conn.pending:
        return message
    return None


async def _close(ws: ServerConnection, code: int, reason: str) -> None:
    with contextlib.suppress(Exception):
        await ws.close(code, reason)


def _peer(ws: ServerConnection) -> str:
    """Where a connection comes from, for logs and the owner's events. From a
    trusted proxy (DOORKEEP_TRUSTED_PROXIES): the client's address as the
    proxies saw it (the right-most X-Forwarded-For entry that is not a
    trusted proxy, as for the limits), then the proxy's. From anyone else:
    the address connected from, and what its X-Forwarded-For claims, shown
    as a claim, never instead of it."""
    address = ws.remote_address
    peer = f"{address[0]}:{address[1]}" if address else "?"
    headers = ws.request.headers if ws.request else None
    forwarded = ", ".join(headers.get_all("X-Forwarded-For")) if headers else ""
    if not forwarded:
        return peer
    if address and clientip.from_trusted_proxy(str(address[0])):
        return f"{clientip.client_from(str(address[0]), forwarded)} (via {peer})"
    return f"{peer} (for {forwarded.split(',')[0].strip()[:45]})"


def run(
    host: str,
    port: int,
    *,
    gateway_id: str | None = None,
    public_url: str | None = None,
    db_threads: int = DB_THREADS,
) -> None:
    if db_threads < 1:
        raise SystemExit("the gateway needs at least 1 database thread (--db-threads)")
    gateway = Gateway(
        gateway_id=gateway_id, host=host, port=port, public_url=public_url, db_threads=db_threads
    )
    memory.settle()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(gateway.serve_forever())
