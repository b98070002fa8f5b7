"""The reference lock: connects like a real lock, keeps its credential list,
decides by itself with the same rules as the platform (windows and weekly
schedules included), stores what happened while offline and uploads it when
it is back. Tests and benchmarks connect it; `doorkeep simulate lock` runs it
by hand."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import itertools
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from doorkeep.keys import schedule as schedules
from doorkeep.keys.credentials import normalize_pin, normalize_remote, normalize_tag


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
    entries: dict[int, dict[str, Any]] = field(default_factory=dict)
    version: int = 0
    timezone: str = "UTC"
    pin_key: bytes = b""
    outbox: list[dict[str, Any]] = field(default_factory=list)
    opened: list[str] = field(default_factory=list)
    refuse_unlocks: bool = False
    close_code: int | None = None
    close_reason: str = ""
    _seq: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _ws: ClientConnection | None = None
    _task: asyncio.Task[None] | None = None
    _synced: asyncio.Event = field(default_factory=asyncio.Event)
    _welcomed: asyncio.Event = field(default_factory=asyncio.Event)
    _acked_events: asyncio.Event = field(default_factory=asyncio.Event)
    errors: list[dict[str, Any]] = field(default_factory=list)

    def _say(self, text: str) -> None:
        if self.on_event is not None:
            self.on_event(text)

    # --- connection --------------------------------------------------------------

    async def connect(self, *, wait_synced: bool = True, timeout: float = 10) -> None:
        """Connect, say hello, and (by default) wait until the list is in step."""
        self._synced.clear()
        self._welcomed.clear()
        self._ws = await connect(
            self.url, max_size=2**22, open_timeout=timeout, ping_interval=None, compression=None
        )
        await self._send(
            {
                "type": "hello",
                "protocol": 1,
                "serial": self.serial,
                "secret": self.secret,
                "firmware": self.firmware,
                "battery": self.battery,
                "list_version": self.version,
                "clock": _now_iso(),
            }
        )
        self._task = asyncio.create_task(self._receive(self._ws))
        if wait_synced:
            await asyncio.wait_for(self._welcomed.wait(), timeout)
            await asyncio.wait_for(self._synced.wait(), timeout)
            await self.flush()

    async def go_offline(self) -> None:
        """Drop the connection, like a lock that lost its network."""
        if self._ws is not None:
            await self._ws.close()
        if self._task is not None:
            with contextlib.suppress(Exception):
                await self._task
        self._ws = None

    close = go_offline

    @property
    def online(self) -> bool:
        return self._ws is not None and self._welcomed.is_set()

    async def _send(self, message: dict[str, Any]) -> None:
        assert self._ws is not None
        await self._ws.send(json.dumps(message, separators=(",", ":")))

    async def _receive(self, ws: ClientConnection) -> None:
        try:
            async for raw in ws:
                await self._on_message(json.loads(raw))
        except ConnectionClosed:
            pass
        finally:
            self.close_code = ws.close_code
            self.close_reason = ws.close_reason or ""
            if self._ws is ws:
                self._ws = None
                self._welcomed.clear()

    async def _on_message(self, message: dict[str, Any]) -> None:
        kind = message.get("type")
        if kind == "welcome":
            self.pin_key = bytes.fromhex(message["pin_key"])
            self._welcomed.set()
        elif kind == "list.ok":
            self._synced.set()
        elif kind == "list.full":
            self.entries = {e["id"]: e for e in message["entries"]}
            await self._apply(message)
        elif kind == "list.diff":
            for entry_id in message["remove"]:
                self.entries.pop(entry_id, None)
            for entry in message["add"]:
                self.entries[entry["id"]] = entry
            await self._apply(message)
        elif kind == "unlock":
            ok = not self.refuse_unlocks
            if ok:
                self.opened.append(message["request_id"])
                self._say("OPEN  (remote unlock)")
            await self._send(
                {
                    "type": "unlock.result",
                    "request_id": message["request_id"],
                    "ok": ok,
                    "reason": "" if ok else "jammed",
                }
            )
        elif kind == "events.ack":
            acked = set(message.get("seqs", []))
            self.outbox = [e for e in self.outbox if e["seq"] not in acked]
            self._acked_events.set()
        elif kind == "error":
            self.errors.append(message)
            self._say(f"gateway error: {message.get('code')}: {message.get('message')}")

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
        return normalize_remote(value)

    def decide(self, kind: str, value: str, at: datetime | None = None) -> Decision:
        """Decide locally, as the lock does with the network down, and keep the
        event to upload."""
        at = at or datetime.now(UTC)
        try:
            match = self._match(kind, value)
        except Exception:
            return self._record(False, "malformed_credential", None, kind, at)
        entry = next(
            (e for e in self.entries.values() if e["kind"] == kind and e["match"] == match), None
        )
        if entry is None:
            return self._record(False, "unknown_credential", None, kind, at)
        if entry.get("from") and at < _parse(entry["from"]):
            return self._record(False, "not_yet_valid", entry["id"], kind, at)
        if entry.get("until") and at >= _parse(entry["until"]):
            return self._record(False, "expired", entry["id"], kind, at)
        if not schedules.allows(entry.get("schedule"), at, ZoneInfo(self.timezone)):
            return self._record(False, "outside_schedule", entry["id"], kind, at)
        return self._record(True, "", entry["id"], kind, at)

    def _record(
        self, granted: bool, reason: str, entry: int | None, kind: str, at: datetime
    ) -> Decision:
        seq = next(self._seq)
        self.outbox.append(
            {
                "seq": seq,
                "at": at.isoformat().replace("+00:00", "Z"),
                "outcome": "granted" if granted else "denied",
                "reason": reason,
                "kind": kind,
                "entry": entry,
            }
        )
        self._say(("OPEN  " if granted else "DENY  ") + (reason or "granted"))
        return Decision(granted, reason, entry, seq)

    async def present(self, kind: str, value: str, at: datetime | None = None) -> Decision:
        decision = self.decide(kind, value, at)
        if self.online:
            await self.flush()
        return decision

    async def flush(self, timeout: float = 5) -> None:
        """Upload the events kept while offline (or just now), in batches."""
        while self.outbox and self.online:
            batch = self.outbox[:500]
            self._acked_events.clear()
            await self._send({"type": "events", "events": batch})
            await asyncio.wait_for(self._acked_events.wait(), timeout)

    async def send_status(self) -> None:
        await self._send(
            {
                "type": "status",
                "battery": self.battery,
                "firmware": self.firmware,
                "clock": _now_iso(),
            }
        )


def _now_iso() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def _parse(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


COMMANDS = "pin 1234 | tag 04A22B1C | fob FOB-1 | offline | online | list | quit"


async def interactive(lock: SimulatedLock, read_line: Callable[[], Any]) -> None:
    """The command loop of `doorkeep simulate lock`."""
    print(f"Simulated lock {lock.serial} connecting to {lock.url} …")
    await lock.connect()
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
            if command in ("pin", "tag", "fob", "remote") and args:
                kind = "remote" if command in ("fob", "remote") else command
                await lock.present(kind, args[0])
            elif command == "offline":
                await lock.go_offline()
                print("Offline: deciding alone; events are kept until the lock is back.")
            elif command == "online":
                await lock.connect()
                print("Online again; kept events uploaded.")
            elif command == "list":
                print(
                    f"version {lock.version}, {len(lock.entries)} entries, "
                    f"{len(lock.outbox)} events waiting"
                )
            elif command in ("quit", "exit"):
                break
            else:
                print(f"Unknown command. Try: {COMMANDS}")
        except (ConnectionClosed, OSError, TimeoutError) as exc:
            print(f"connection problem: {exc}")
    await lock.go_offline()
