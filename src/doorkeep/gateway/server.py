"""The device gateway: an asyncio program that holds the locks' WebSocket
connections, keeps their credential lists in step, stores what they upload,
and carries remote unlocks to them.

Database work runs in a small thread pool (Django's ORM is synchronous). One
slow or broken connection never blocks the others: each has its own task, its
own send lock and its own message budget."""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
import os
import socket
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http import HTTPStatus
from typing import Any, TypeVar
from urllib.parse import parse_qs, urlsplit

from django.conf import settings
from django.db import close_old_connections
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from doorkeep.gateway import lists, protocol, services
from doorkeep.gateway.protocol import ProtocolError
from doorkeep.keys.credentials import lock_pin_key

log = logging.getLogger("doorkeep.gateway")
T = TypeVar("T")

HELLO_TIMEOUT = 10.0
ACK_TIMEOUT = 10.0
MESSAGES_PER_SECOND = 20  # sustained, per connection
BURST = 60


def internal_token() -> str:
    """Shared by web workers and gateways (both know SECRET_KEY)."""
    return hmac.new(
        settings.SECRET_KEY.encode(), b"doorkeep.gateway-internal", "sha256"
    ).hexdigest()


@dataclass
class Connection:
    ws: ServerConnection
    session: services.Session
    acked_version: int
    acked_snapshot: dict[str, str]
    sent_version: int = -1
    sent_snapshot: dict[str, str] = field(default_factory=dict)
    sent_at: float = 0.0
    send_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    sync_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    pending: dict[str, asyncio.Future[dict[str, Any]]] = field(default_factory=dict)
    tokens: float = BURST
    refilled: float = field(default_factory=time.monotonic)
    ack_waiter: asyncio.Future[int] | None = None
    strikes: int = 0

    async def send(self, message: dict[str, Any]) -> None:
        async with self.send_lock:
            await self.ws.send(protocol.encode(message))

    def allow(self) -> bool:
        now = time.monotonic()
        self.tokens = min(BURST, self.tokens + (now - self.refilled) * MESSAGES_PER_SECOND)
        self.refilled = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True


class Gateway:
    def __init__(
        self,
        *,
        gateway_id: str | None = None,
        host: str = "127.0.0.1",
        port: int = 8001,
        public_url: str | None = None,
        poll_interval: float = 0.25,
        db_threads: int = 8,
    ) -> None:
        self.id = gateway_id or f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self.host, self.port = host, port
        self.public_url = public_url
        self.poll_interval = poll_interval
        self.connections: dict[int, Connection] = {}
        self.executor = ThreadPoolExecutor(max_workers=db_threads, thread_name_prefix="gw-db")
        self.server: Server | None = None
        self.router: Any = None
        self._tasks: list[asyncio.Task[Any]] = []
        self._last_sweep = datetime.now(UTC)

    # --- running -------------------------------------------------------------------

    async def db(self, func: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        def call() -> T:
            close_old_connections()
            return func(*args, **kwargs)

        return await asyncio.get_running_loop().run_in_executor(self.executor, call)

    async def start(self) -> None:
        self.server = await serve(
            self.handle,
            self.host,
            self.port,
            process_request=self.process_request,
            max_size=protocol.MAX_FRAME_BYTES,
            ping_interval=30,
            ping_timeout=30,
            compression=None,
        )
        sock = next(iter(self.server.sockets))
        self.port = sock.getsockname()[1]
        if self.public_url is None:
            self.public_url = f"http://{self.host}:{self.port}"
        from doorkeep.gateway.routing import gateway_side

        self.router = gateway_side(self)
        await self.router.start()
        self._tasks.append(asyncio.create_task(self._watch(), name="watch"))
        log.info("gateway %s listening on %s", self.id, self.public_url)

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        if self.router is not None:
            await self.router.stop()
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()
        for conn in list(self.connections.values()):
            await self.db(
                services.disconnected, conn.session, gateway=self.id, reason="gateway stopped"
            )
        self.connections.clear()
        self.executor.shutdown(wait=False, cancel_futures=True)

    async def serve_forever(self) -> None:
        await self.start()
        try:
            await asyncio.Future()
        finally:
            await self.stop()

    # --- one device ----------------------------------------------------------------

    async def handle(self, ws: ServerConnection) -> None:
        try:
            raw = await asyncio.wait_for(ws.recv(), HELLO_TIMEOUT)
        except TimeoutError:
            await ws.close(services.CLOSE_AUTH_TIMEOUT, "send hello first")
            return
        except ConnectionClosed:
            return
        received = datetime.now(UTC)
        try:
            hello = protocol.decode(raw)
            serial, secret, device_version = protocol.hello(hello)
        except ProtocolError as exc:
            with contextlib.suppress(ConnectionClosed):
                await ws.send(protocol.encode(exc.frame()))
                await ws.close(services.CLOSE_BAD_HELLO, exc.code)
            return
        try:
            session = await self.db(services.authenticate, serial, secret)
        except services.DeviceRefused as refused:
            await ws.close(refused.close_code, refused.reason)
            return
        previous = self.connections.get(session.lock_id)
        if previous is not None:
            await previous.ws.close(services.CLOSE_REPLACED, "connected again")
        conn = Connection(ws, session, session.acked_version, session.acked_entries)
        if device_version != session.acked_version:  # the device lost or changed its list
            conn.acked_snapshot = {}
        self.connections[session.lock_id] = conn
        offset = protocol.clock_offset_ms(hello.get("clock"), received)
        try:
            await self.db(
                services.connected,
                session,
                gateway=self.id,
                url=self.public_url or "",
                hello=hello,
                clock_offset_ms=offset,
            )
            await self.router.registered(session.lock_id)
            lock = await self.db(services.lock_of, session.lock_id)
            await conn.send(
                {
                    "type": "welcome",
                    "protocol": protocol.VERSION,
                    "time": protocol.now_iso(),
                    "clock_offset_ms": offset,
                    "pin_key": lock_pin_key(lock.serial).hex(),
                    "heartbeat": 30,
                }
            )
            await self.sync(conn, initial=True)
            async for message in ws:
                await self.on_message(conn, message)
        except ConnectionClosed:
            pass
        finally:
            if self.connections.get(session.lock_id) is conn:
                del self.connections[session.lock_id]
                await self.router.unregistered(session.lock_id)
                for future in conn.pending.values():
                    if not future.done():
                        future.set_result({"ok": False, "error": "offline"})
                reason = ws.close_reason or "connection closed"
                await self.db(services.disconnected, session, gateway=self.id, reason=reason)

    async def on_message(self, conn: Connection, raw: str | bytes) -> None:
        if not conn.allow():
            conn.strikes += 1
            if conn.strikes > BURST:  # it ignores the throttling: cut it off
                await conn.ws.close(services.CLOSE_FLOODING, "flooding")
            elif conn.strikes == 1 or conn.strikes % 10 == 0:
                await conn.send(ProtocolError("throttled", "too many messages; slow down").frame())
            return
        conn.strikes = 0
        received = datetime.now(UTC)
        try:
            message = protocol.decode(raw)
            kind = message["type"]
            if kind == "list.ack":
                await self.on_ack(conn, message)
            elif kind == "events":
                batch = protocol.events(message)
                stored = await self.db(services.store_events, conn.session, batch)
                await conn.send({"type": "events.ack", "seqs": stored})
            elif kind == "status":
                offset = protocol.clock_offset_ms(message.get("clock"), received)
                await self.db(services.status, conn.session, message, offset)
            elif kind == "unlock.result":
                future = conn.pending.pop(str(message.get("request_id")), None)
                if future is not None and not future.done():
                    ok = message.get("ok") is True
                    future.set_result(
                        {
                            "ok": ok,
                            "error": "" if ok else "refused",
                            "reason": str(message.get("reason", ""))[:100],
                        }
                    )
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

    async def on_ack(self, conn: Connection, message: dict[str, Any]) -> None:
        version = message.get("version")
        if not isinstance(version, int) or version != conn.sent_version:
            raise ProtocolError("bad_ack", f"expected an ack of version {conn.sent_version}")
        conn.acked_version, conn.acked_snapshot = conn.sent_version, conn.sent_snapshot
        await self.db(services.acknowledged, conn.session, version, conn.sent_snapshot)
        if conn.ack_waiter is not None and not conn.ack_waiter.done():
            conn.ack_waiter.set_result(version)

    async def sync(self, conn: Connection, *, initial: bool = False) -> None:
        """Bring the device's list to the platform's version: the difference
        from what it acknowledged, or the full list. On connecting, a device
        already in step hears so (``list.ok``)."""
        async with conn.sync_lock:
            lock = await self.db(services.lock_of, conn.session.lock_id)
            current = await self.db(lists.build, lock)
            snapshot = current.snapshot()
            if current.version == conn.acked_version and snapshot == conn.acked_snapshot:
                if initial:
                    conn.sent_version, conn.sent_snapshot = conn.acked_version, snapshot
                    await conn.send({"type": "list.ok", "version": current.version})
                return
            if current.version == conn.sent_version and snapshot == conn.sent_snapshot:
                return  # already on its way
            add, remove = lists.diff(conn.acked_snapshot, current)
            if conn.acked_snapshot and len(add) + len(remove) <= max(50, len(current.entries) // 2):
                message: dict[str, Any] = {
                    "type": "list.diff",
                    "from": conn.acked_version,
                    "version": current.version,
                    "timezone": current.timezone,
                    "add": add,
                    "remove": remove,
                }
            else:
                message = {
                    "type": "list.full",
                    "version": current.version,
                    "timezone": current.timezone,
                    "entries": current.entries,
                }
            conn.sent_version, conn.sent_snapshot = current.version, snapshot
            conn.sent_at = time.monotonic()
            await conn.send(message)
            await self.db(services.pushed, conn.session)

    # --- changes and commands --------------------------------------------------------

    def changed(self, lock_id: int) -> None:
        conn = self.connections.get(lock_id)
        if conn is not None:
            asyncio.get_running_loop().create_task(self._sync_quietly(conn))

    async def _sync_quietly(self, conn: Connection) -> None:
        try:
            await self.sync(conn)
        except ConnectionClosed:
            pass
        except Exception:
            log.exception("sync of %s failed", conn.session.serial)

    async def unlock(self, lock_id: int, request_id: str, timeout: float) -> dict[str, Any]:
        conn = self.connections.get(lock_id)
        if conn is None:
            return {"ok": False, "error": "offline"}
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        conn.pending[request_id] = future
        try:
            await conn.send(
                {
                    "type": "unlock",
                    "request_id": request_id,
                    "expires": (datetime.now(UTC) + timedelta(seconds=timeout)).isoformat(),
                }
            )
            return await asyncio.wait_for(future, timeout)
        except TimeoutError:
            return {"ok": False, "error": "timeout"}
        except ConnectionClosed:
            return {"ok": False, "error": "offline"}
        finally:
            conn.pending.pop(request_id, None)

    async def _watch(self) -> None:
        """Catch changes nobody told us about (another machine, a missed
        notification) and windows that end; mark pushes nobody acknowledged."""
        while True:
            await asyncio.sleep(self.poll_interval)
            try:
                ids = list(self.connections)
                if not ids:
                    continue
                now = datetime.now(UTC)
                await self.db(services.expire_due, ids, self._last_sweep, now)
                self._last_sweep = now
                current = await self.db(services.versions, ids)
                for lock_id, version in current.items():
                    conn = self.connections.get(lock_id)
                    if conn is None:
                        continue
                    if version != conn.sent_version and version != conn.acked_version:
                        self.changed(lock_id)
                    elif (
                        conn.sent_version != conn.acked_version
                        and conn.sent_at
                        and time.monotonic() - conn.sent_at > ACK_TIMEOUT
                    ):
                        conn.sent_at = 0.0
                        await self.db(
                            services.push_failed,
                            conn.session,
                            "the lock did not acknowledge the list",
                        )
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("gateway watch round failed")

    # --- internal HTTP (direct routing) -------------------------------------------------

    async def process_request(
        self, connection: ServerConnection, request: Request
    ) -> Response | None:
        if not request.path.startswith("/internal/"):
            return None
        if not hmac.compare_digest(
            request.headers.get("X-Doorkeep-Internal", ""), internal_token()
        ):
            return _json(connection, HTTPStatus.FORBIDDEN, {"error": "forbidden"})
        parts = urlsplit(request.path)
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        try:
            lock_id = int(query.get("lock", ""))
        except ValueError:
            return _json(connection, HTTPStatus.BAD_REQUEST, {"error": "lock must be a number"})
        if parts.path == "/internal/changed":
            self.changed(lock_id)
            return _json(connection, HTTPStatus.OK, {"ok": True})
        if parts.path == "/internal/unlock":
            timeout = min(float(query.get("timeout", "5")), 30.0)
            result = await self.unlock(lock_id, query.get("request", uuid.uuid4().hex), timeout)
            return _json(connection, HTTPStatus.OK, result)
        return _json(connection, HTTPStatus.NOT_FOUND, {"error": "not found"})


def _json(connection: ServerConnection, status: HTTPStatus, body: dict[str, Any]) -> Response:
    response = connection.respond(status, json.dumps(body))
    response.headers = Headers(
        [("Content-Type", "application/json"), ("Content-Length", str(len(response.body)))]
    )
    return response


def run(
    host: str, port: int, *, gateway_id: str | None = None, public_url: str | None = None
) -> None:
    gateway = Gateway(gateway_id=gateway_id, host=host, port=port, public_url=public_url)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(gateway.serve_forever())
