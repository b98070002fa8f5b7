"""The gateway's internal side: commands from web workers and other
gateways (unlock, "the lists of these locks changed", "drop your connection
of lock N"), on a kept-open WebSocket (/internal/ws) or as plain HTTP
requests of one lock each (/internal/...), and the health check. Every
internal request carries the internal token, which web workers and gateways
derive from SECRET_KEY."""

from __future__ import annotations

import contextlib
import hmac
import json
import uuid
from http import HTTPStatus
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

from django.conf import settings
from websockets.asyncio.server import ServerConnection
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from doorkeep.core import logs
from doorkeep.gateway.ocpp import csms

if TYPE_CHECKING:
    from doorkeep.gateway.server import Gateway

INTERNAL_WS_PATH = "/internal/ws"


def _token_ok(given: str) -> bool:
    """The internal token, compared in constant time (as bytes: a header with
    characters outside ASCII is simply wrong, not an error)."""
    return hmac.compare_digest(
        given.encode("utf-8", "surrogateescape"), internal_token().encode("utf-8")
    )


def internal_token() -> str:
    """Shared by web workers and gateways (both know SECRET_KEY)."""
    return hmac.new(
        settings.SECRET_KEY.encode(), b"doorkeep.gateway-internal", "sha256"
    ).hexdigest()


async def serve_links(gateway: Gateway, ws: ServerConnection) -> None:
    """Commands from web workers and other gateways on a kept-open
    WebSocket: JSON objects with an ``id``, each answered with the same
    ``id`` when done (an unlock waits for the lock; others go on meanwhile)."""
    # Web threads read their link only while they wait for an answer, so
    # they could not answer pings in between: internal links are not pinged.
    if ws.keepalive_task is not None:
        ws.keepalive_task.cancel()
    gateway.internal_links.add(ws)
    try:
        async for raw in ws:
            try:
                command = json.loads(raw)
                op = str(command["op"])
                by_id = op in NOTICES or op in STATION_OPS or op in MACHINE_OPS
                lock_id = 0 if by_id else int(command["lock"])
            except (ValueError, TypeError, KeyError, AttributeError):
                await ws.send(json.dumps({"ok": False, "error": "bad command"}))
                continue
            gateway.spawn(run_command(gateway, ws, op, lock_id, command), name=f"internal-{op}")
    except ConnectionClosed:
        pass
    finally:
        gateway.internal_links.discard(ws)


NOTICES = ("changed", "changed_many")
STATION_OPS = ("stations_changed", "station", "station_drop")  # charging stations: by id
MACHINE_OPS = ("machines_changed", "machine_start", "machine_drop")  # laundry machines: by id


def take_notice(gateway: Gateway, command: dict[str, Any]) -> dict[str, Any]:
    """A notice that the lists of some locks changed (``routing.changed_command``,
    or the older "changed" of one lock): each lock held here is synced (in the
    background). The answer says which of the locks are not held here: for a
    "changed" notice ``held`` (true or false), for "changed_many" the list
    ``not_held``. Raises ValueError for a malformed notice."""
    from doorkeep.gateway.routing import notice_changes

    changes = notice_changes(command)
    not_held = gateway.changed_many(changes)
    if command["op"] == "changed":
        return {"ok": True, "held": not not_held}
    return {"ok": True, "not_held": not_held}


async def run_command(
    gateway: Gateway, ws: ServerConnection, op: str, lock_id: int, command: dict[str, Any]
) -> None:
    from doorkeep.gateway.routing import clamp_timeout

    reply: dict[str, Any]
    try:
        if op in NOTICES:
            reply = take_notice(gateway, command)
        elif op in MACHINE_OPS:
            from doorkeep.gateway.laundry import machines

            reply = await machines.internal_command(gateway, command)
        elif op == "stations_changed":
            reply = {"ok": True, "not_held": csms.changed(gateway, station_ids(command))}
        elif op == "station_drop":
            dropped = await csms.drop(
                gateway, int(command["station"]), str(command.get("reason") or "dropped")[:100]
            )
            reply = {"ok": True, "dropped": dropped}
        elif op == "station":
            from doorkeep.gateway.routing import clamp_timeout

            reply = await csms.command(
                gateway,
                int(command["station"]),
                str(command.get("action")),
                dict(command.get("args") or {}),
                clamp_timeout(float(command.get("timeout", 10))),
            )
        elif op == "unlock":
            logs.REQUEST_ID.set(logs.sane_id(command.get("trace")))  # this task's log lines
            reply = await gateway.unlock(
                lock_id,
                str(command.get("request") or uuid.uuid4().hex),
                clamp_timeout(float(command.get("timeout", 5))),
                forward=False,
            )
        elif op == "drop":
            dropped = await gateway.drop(lock_id, before=float(command.get("before") or 0))
            reply = {"ok": True, "dropped": dropped}
        else:
            reply = {"ok": False, "error": "bad command"}
    except (ValueError, TypeError):
        reply = {"ok": False, "error": "bad command"}
    with contextlib.suppress(ConnectionClosed):
        await ws.send(json.dumps({**reply, "id": command.get("id")}))


def station_ids(command: dict[str, Any]) -> list[int]:
    """The station ids of a "stations_changed" notice (ValueError if malformed)."""
    ids = command.get("stations")
    if not isinstance(ids, list) or not all(
        isinstance(i, int) and not isinstance(i, bool) for i in ids
    ):
        raise ValueError("a notice names stations by their ids")
    return ids


async def process_request(
    gateway: Gateway, connection: ServerConnection, request: Request
) -> Response | None:
    parts = urlsplit(request.path)
    if csms.is_station_path(request.path):
        return await csms.check_request(gateway, connection, request)
    if parts.path == "/healthz":
        return _json(
            connection,
            HTTPStatus.OK,
            {
                "ok": True,
                "gateway": gateway.id,
                "locks": len(gateway.connections),
                "stations": len(gateway.stations),
                "machines": len(gateway.machines),
            },
        )
    if parts.path == "/metrics":
        from doorkeep.gateway import metrics

        return metrics.respond(gateway, connection, request)
    if not parts.path.startswith("/internal/"):
        return gateway.admit(connection, request.headers)  # a lock or a laundry machine
    if not _token_ok(request.headers.get("X-Doorkeep-Internal", "")):
        return _json(connection, HTTPStatus.FORBIDDEN, {"error": "forbidden"})
    if parts.path == INTERNAL_WS_PATH:
        return None  # the kept-open internal WebSocket: handled by ``handle``
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    try:
        lock_id = int(query.get("lock", ""))
        timeout = float(query.get("timeout", "5"))
        before = float(query.get("before", "0"))
    except ValueError:
        return _json(connection, HTTPStatus.BAD_REQUEST, {"error": "bad parameters"})
    if parts.path == "/internal/changed":
        hint = None
        if query.get("keys") and query.get("version"):
            try:
                keys = tuple(int(k) for k in query["keys"].split(","))
                hint = (int(query["version"]), keys)
            except ValueError:
                hint = None  # the whole list, then
        gateway.changed_many([(lock_id, hint)])
        return _json(connection, HTTPStatus.OK, {"ok": True})
    if parts.path == "/internal/unlock":
        from doorkeep.gateway.routing import clamp_timeout

        result = await gateway.unlock(
            lock_id,
            query.get("request") or uuid.uuid4().hex,
            clamp_timeout(timeout),
            forward=False,
        )
        return _json(connection, HTTPStatus.OK, result)
    if parts.path == "/internal/drop":
        dropped = await gateway.drop(lock_id, before=before)
        return _json(connection, HTTPStatus.OK, {"ok": True, "dropped": dropped})
    return _json(connection, HTTPStatus.NOT_FOUND, {"error": "not found"})


def _json(connection: ServerConnection, status: HTTPStatus, body: dict[str, Any]) -> Response:
    response = connection.respond(status, json.dumps(body))
    response.headers = Headers(
        [("Content-Type", "application/json"), ("Content-Length", str(len(response.body)))]
    )
    return response
