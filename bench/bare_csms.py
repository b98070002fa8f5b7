"""The floor of the charging-station benchmark (chargers.py): a central
system written with the `ocpp` library alone, on plain ``websockets.serve``,
with the gateway's WebSocket options. It accepts every station (the Basic
credentials are not checked), every BootNotification and every Authorize,
and keeps nothing: no database, no events, no lists. What the gateway does
on top of it is Doorkeep's own cost.

It also gives the floor of a list push: ``push UID`` on its stdin sends one
differential SendLocalList, the UID as Blocked, to every connected station
at once (the library's ``call``, schema validation on, as the gateway sends
it) and answers, on its stdout, when it began and ended (CLOCK_MONOTONIC,
the clock the station fleet notes arrivals on).

    python bench/bare_csms.py --port PORT

Commands on stdin, one JSON line answered on stdout each: ``count``,
``push UID``, ``quit``. /healthz answers over HTTP once it listens.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import sys
import time
from datetime import UTC, datetime
from http import HTTPStatus
from pathlib import Path
from typing import Any

from ocpp.routing import on
from ocpp.v16 import ChargePoint, call, call_result
from ocpp.v16.enums import Action

sys.path.insert(0, str(Path(__file__).resolve().parent))
import gateway_common as gc


class BareCentralSystem(ChargePoint):
    """One station's conversation: Accepted to everything it asks."""

    @on(Action.boot_notification)
    def on_boot(self, **_kw: Any) -> Any:
        return call_result.BootNotification(
            current_time=datetime.now(UTC).isoformat(), interval=300, status="Accepted"
        )

    @on(Action.heartbeat)
    def on_heartbeat(self, **_kw: Any) -> Any:
        return call_result.Heartbeat(current_time=datetime.now(UTC).isoformat())

    @on(Action.authorize)
    def on_authorize(self, id_tag: str, **_kw: Any) -> Any:
        return call_result.Authorize(id_tag_info={"status": "Accepted"})


async def serve_forever(port: int) -> None:
    from websockets.asyncio.server import serve
    from websockets.exceptions import ConnectionClosed

    held: dict[str, BareCentralSystem] = {}

    async def station(ws: Any) -> None:
        cp_id = ws.request.path.rstrip("/").rsplit("/", 1)[-1]
        point = BareCentralSystem(cp_id, ws, response_timeout=60)
        held[cp_id] = point
        try:
            await point.start()
        except ConnectionClosed:
            pass
        finally:
            if held.get(cp_id) is point:
                del held[cp_id]

    def health(connection: Any, request: Any) -> Any:
        if request.path == "/healthz":
            return connection.respond(HTTPStatus.OK, "ok\n")
        return None

    version = [0]

    async def push(uid: str) -> dict[str, Any]:
        version[0] += 1
        payload = call.SendLocalList(
            list_version=version[0],
            update_type="Differential",
            local_authorization_list=[{"id_tag": uid, "id_tag_info": {"status": "Blocked"}}],
        )
        points = list(held.values())
        started = time.monotonic()
        answers = await asyncio.gather(
            *(point.call(payload, suppress=False) for point in points), return_exceptions=True
        )
        ended = time.monotonic()
        failed = [a for a in answers if isinstance(a, BaseException)]
        return {
            "started": started,
            "ended": ended,
            "stations": len(points),
            "errors": len(failed),
            "error": repr(failed[0])[:200] if failed else "",
        }

    gc.raise_open_files()
    gc.settle_here()  # as the gateway settles after its start (doorkeep.core.memory)
    async with serve(
        station,
        gc.LOOPBACK,
        port,
        process_request=health,
        subprotocols=["ocpp1.6"],  # type: ignore[list-item]
        max_size=2**20,
        ping_interval=30,
        ping_timeout=30,
        compression=None,
    ):
        loop = asyncio.get_running_loop()
        while True:
            line = await loop.run_in_executor(None, sys.stdin.readline)
            command, _, rest = line.strip().partition(" ")
            if command == "count":
                answer: dict[str, Any] = {"connected": len(held)}
            elif command == "push":
                answer = await push(rest.strip())
            elif not line or command == "quit":
                print(json.dumps({"connected": len(held)}), flush=True)
                break
            else:
                answer = {"error": f"unknown command {command!r}"}
            print(json.dumps(answer), flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve_forever(args.port))
    return 0


if __name__ == "__main__":
    sys.exit(main())
