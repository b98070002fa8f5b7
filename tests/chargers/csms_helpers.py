"""The station side of the CSMS tests: the `ocpp` library's ChargePoint of
each version, over a real WebSocket to the test gateway, driven from the
test's thread (each step runs on the gateway's loop, where the station's
reading task lives too).

``ListKeeper16`` and ``ListKeeper201`` keep a local authorization list as a
real station does (GetLocalListVersion, SendLocalList); the plain
ChargePoints of the library answer those with NotImplemented."""

from __future__ import annotations

import asyncio
import base64
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from charger_values import PASSWORD
from ocpp.routing import on
from ocpp.v16 import ChargePoint as ChargePoint16
from ocpp.v16 import call as call16
from ocpp.v16 import call_result as result16
from ocpp.v201 import ChargePoint as ChargePoint201
from ocpp.v201 import call as call201
from ocpp.v201 import call_result as result201
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

VERSIONS = ("1.6", "2.0.1")
TOKEN_TYPE = "ISO14443"


def basic(user: str, password: str = PASSWORD) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def ago(minutes: float) -> datetime:
    """A moment ``minutes`` ago, to the second (stations send whole seconds)."""
    return (datetime.now(UTC) - timedelta(minutes=minutes)).replace(microsecond=0)


class Recording:
    """Mixed into a station: keeps every answer frame it receives (for the
    raw frames a test sends itself)."""

    answers: asyncio.Queue[list[Any]]

    async def route_message(self, raw_msg: str) -> None:
        try:
            message = json.loads(raw_msg)
        except ValueError:
            message = None
        if isinstance(message, list) and message and message[0] in (3, 4):
            self.answers.put_nowait(message)
        await super().route_message(raw_msg)  # type: ignore[misc]


class Plain16(Recording, ChargePoint16):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.answers = asyncio.Queue()


class Plain201(Recording, ChargePoint201):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.answers = asyncio.Queue()


@dataclass
class Update:
    """A SendLocalList the station received: its version, Full or
    Differential, and each entry's status by id tag (None: removed)."""

    version: int
    kind: str
    entries: dict[str, str | None]


class ListKeeper:
    """A station's local list: the version it holds, what it received, and
    the answers it gives (Accepted, unless the test queued others)."""

    def setup_list(self, version: int = 0, answers: list[str] | None = None) -> None:
        self.list_version = version
        self.updates: list[Update] = []
        self.asked_version = 0
        self.list_answers = list(answers or [])

    def take(self, version: int, kind: str, entries: dict[str, str | None]) -> str:
        self.updates.append(Update(version, kind, entries))
        answer = self.list_answers.pop(0) if self.list_answers else "Accepted"
        if answer == "Accepted":
            self.list_version = version
        return answer


class ListKeeper16(ListKeeper, Plain16):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.setup_list()

    @on("GetLocalListVersion")
    def on_get_local_list_version(self, **kw: Any) -> Any:
        self.asked_version += 1
        return result16.GetLocalListVersion(list_version=self.list_version)

    @on("SendLocalList")
    def on_send_local_list(
        self, list_version: int, update_type: str, local_authorization_list: Any = None, **kw: Any
    ) -> Any:
        entries = {
            e["id_tag"]: (e.get("id_tag_info") or {}).get("status")
            for e in local_authorization_list or []
        }
        return result16.SendLocalList(status=self.take(list_version, update_type, entries))


class ListKeeper201(ListKeeper, Plain201):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.setup_list()

    @on("GetLocalListVersion")
    def on_get_local_list_version(self, **kw: Any) -> Any:
        self.asked_version += 1
        return result201.GetLocalListVersion(version_number=self.list_version)

    @on("SendLocalList")
    def on_send_local_list(
        self, version_number: int, update_type: str, local_authorization_list: Any = None, **kw: Any
    ) -> Any:
        entries = {
            e["id_token"]["id_token"]: (e.get("id_token_info") or {}).get("status")
            for e in local_authorization_list or []
        }
        return result201.SendLocalList(status=self.take(version_number, update_type, entries))


class Linked:
    """One station connected to the test gateway. Each method runs on the
    gateway's loop and returns when its step is done."""

    def __init__(
        self,
        gateway: Any,
        cp_id: str,
        version: str = "1.6",
        *,
        keeper: bool = False,
        password: str = PASSWORD,
    ) -> None:
        self.gateway, self.cp_id, self.version = gateway, cp_id, version
        self.password = password
        if version == "1.6":
            self.kind: type[Any] = ListKeeper16 if keeper else Plain16
        else:
            self.kind = ListKeeper201 if keeper else Plain201
        self.ws: ClientConnection | None = None
        self.cp: Any = None
        self._task: asyncio.Task[Any] | None = None

    # --- the connection ----------------------------------------------------------------

    def open(self, **list_state: Any) -> Linked:
        async def go() -> None:
            self.ws = await connect(
                f"{self.gateway.url}/ocpp/{self.cp_id}",
                subprotocols=["ocpp1.6" if self.version == "1.6" else "ocpp2.0.1"],
                additional_headers=basic(self.cp_id, self.password),
                max_size=None,
            )
            self.cp = self.kind(self.cp_id, self.ws, response_timeout=15)
            if list_state:
                self.cp.setup_list(**list_state)
            self._task = asyncio.create_task(self._serve())

        self.gateway.run(go())
        return self

    async def _serve(self) -> None:
        try:
            await self.cp.start()
        except Exception:  # the connection closed: the test reads close_code
            return

    def close(self) -> None:
        async def go() -> None:
            if self._task is not None:
                self._task.cancel()
            if self.ws is not None:
                await self.ws.close()

        self.gateway.run(go())

    def __enter__(self) -> Linked:
        return self.open() if self.ws is None else self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def closed_with(self, timeout: float = 15) -> int | None:
        """Wait until the gateway closes the connection; its close code."""

        async def go() -> int | None:
            assert self.ws is not None
            await asyncio.wait_for(self.ws.wait_closed(), timeout)
            return self.ws.close_code

        return self.gateway.run(go(), timeout=timeout + 5)

    # --- talking -------------------------------------------------------------------------

    def call(self, payload: Any, *, skip_schema_validation: bool = False) -> Any:
        """A call of the library's; a CALLERROR is raised as its OCPPError."""
        return self.gateway.run(
            self.cp.call(payload, suppress=False, skip_schema_validation=skip_schema_validation)
        )

    def boot(self) -> Any:
        if self.version == "1.6":
            return self.call(
                call16.BootNotification(charge_point_vendor="Vendor", charge_point_model="Model")
            )
        return self.call(
            call201.BootNotification(
                charging_station={"vendor_name": "Vendor", "model": "Model"}, reason="PowerUp"
            )
        )

    def authorize(self, uid: str) -> str:
        """The status the CSMS answers for ``uid``."""
        if self.version == "1.6":
            return str(self.call(call16.Authorize(id_tag=uid)).id_tag_info["status"])
        answer = self.call(call201.Authorize(id_token={"id_token": uid, "type": TOKEN_TYPE}))
        return str(answer.id_token_info["status"])

    def send_raw(self, frame: str | bytes) -> None:
        async def go() -> None:
            assert self.ws is not None
            await self.ws.send(frame)

        self.gateway.run(go())

    def send_many(self, frames: list[str]) -> None:
        """Send the frames back to back, until the gateway closes the connection."""

        async def go() -> None:
            assert self.ws is not None
            for frame in frames:
                try:
                    await self.ws.send(frame)
                except ConnectionClosed:
                    return

        self.gateway.run(go(), timeout=60)

    def raw(self, frame: str | bytes, unique_id: str, timeout: float = 15) -> list[Any]:
        """Send a frame as is; the gateway's answer to ``unique_id``."""

        async def go() -> list[Any]:
            assert self.ws is not None
            await self.ws.send(frame)
            while True:
                answer = await asyncio.wait_for(self.cp.answers.get(), timeout)
                if answer[1] == unique_id:
                    return answer

        return self.gateway.run(go(), timeout=timeout + 5)

    def answers_to(self, frames: list[str], timeout: float = 30) -> list[list[Any]]:
        """Send every frame at once; the answers to them, by unique id, until
        each has one or the connection closes."""

        async def go() -> list[list[Any]]:
            assert self.ws is not None
            wanted = {json.loads(f)[1] for f in frames}
            for frame in frames:
                await self.ws.send(frame)
            got: dict[str, list[Any]] = {}
            while len(got) < len(wanted):
                try:
                    answer = await asyncio.wait_for(self.cp.answers.get(), timeout)
                except TimeoutError:
                    break
                if answer[1] in wanted:
                    got[answer[1]] = answer
            return list(got.values())

        return self.gateway.run(go(), timeout=timeout + 10)


def frame(unique_id: str, action: str, payload: Any) -> str:
    return json.dumps([2, unique_id, action, payload])
