"""The reference laundry controller: a simulated washer (or dryer) that
speaks the lock protocol as a device of kind ``laundry``
(docs/protocol/laundry-v1.md). It is the simulated lock
(gateway/simulator.py) with what a machine adds: it keeps its list of
badges and decides a badge by itself (a granted badge releases the
machine, which runs a cycle: a start, then an end a few seconds later with
its energy and program), keeps its cycle records while offline and uploads
them when it is back, and answers the portal's start. Tests connect it;
`doorkeep simulate machine SERIAL --secret S` runs it by hand."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from websockets.exceptions import ConnectionClosed

from doorkeep.gateway.laundry.protocol import KIND, MAX_CYCLES_PER_BATCH
from doorkeep.gateway.protocol import MAX_MESSAGE_BYTES
from doorkeep.gateway.simulator import Decision, NotWelcomed, SimulatedLock, _iso, _parse

# Programs and the energy a cycle of each takes, in Wh (a simulated figure).
WASHER_PROGRAMS = {"Cotton 60": 1150, "Cotton 40": 820, "Synthetics 30": 480, "Quick 15": 190}
DRYER_PROGRAMS = {"Cupboard dry": 2300, "Iron dry": 1750, "Delicates": 900}
DEFAULT_ENERGY_WH = 700


@dataclass
class SimulatedMachine(SimulatedLock):
    machine: str = "washer"  # or "dryer": which programs it offers
    cycle_seconds: float = 5.0  # how long a simulated cycle runs
    state: str = "free"  # free, running or out_of_order
    programs: dict[str, int] = field(default_factory=dict)  # name -> Wh of a cycle
    refuse_starts: str = ""  # a reason to refuse the portal's starts ("door open")
    cycle_seq: int = 0  # the last cycle number used
    cycle_outbox: list[dict[str, Any]] = field(default_factory=list)  # records not acknowledged
    started: list[str] = field(default_factory=list)  # request ids of portal starts run
    running: dict[str, Any] | None = None  # the cycle running now
    _cycles_known: bool = False
    _acked_cycles: asyncio.Event = field(default_factory=asyncio.Event)
    _tasks: set[asyncio.Task[Any]] = field(default_factory=set)

    def __post_init__(self) -> None:
        if not self.programs:
            self.programs = dict(DRYER_PROGRAMS if self.machine == "dryer" else WASHER_PROGRAMS)

    def hello(self) -> dict[str, Any]:
        message = super().hello()
        del message["battery"]  # a machine is on the mains
        message.update(kind=KIND, state=self.state, programs=list(self.programs))
        return message

    # --- what the gateway sends ----------------------------------------------------------------

    async def _on_message(self, message: dict[str, Any]) -> None:
        kind = message.get("type")
        if kind == "welcome":
            self.clock_offset_ms = message.get("clock_offset_ms")
            self._continue_after(int(message.get("last_seq") or 0))
            self._continue_cycles_after(int(message.get("last_cycle") or 0))
            self._welcomed.set()
        elif kind == "start":
            # Not awaited here: the answer and the cycle's upload need this
            # loop to go on reading (the acknowledgements).
            self._spawn(self._start_asked(message))
        elif kind == "cycles.ack":
            starts, ends = set(message.get("starts", [])), set(message.get("ends", []))
            self.cycle_outbox = [
                r
                for r in self.cycle_outbox
                if r["seq"] not in (starts if r["phase"] == "start" else ends)
            ]
            self._acked_cycles.set()
        else:
            await super()._on_message(message)

    def _continue_cycles_after(self, last_cycle: int) -> None:
        """Number new cycles above what the platform stored (a controller that
        lost its counter would otherwise reuse numbers of stored cycles)."""
        if not self._cycles_known:
            self._cycles_known = True
            if last_cycle >= 1 and any(r["seq"] <= last_cycle for r in self.cycle_outbox):
                renumbered: dict[int, int] = {}
                for record in self.cycle_outbox:
                    if record["seq"] not in renumbered:
                        self.cycle_seq = max(self.cycle_seq, last_cycle) + 1
                        renumbered[record["seq"]] = self.cycle_seq
                    record["seq"] = renumbered[record["seq"]]
                if self.running is not None and self.running["seq"] in renumbered:
                    self.running["seq"] = renumbered[self.running["seq"]]
        self.cycle_seq = max(self.cycle_seq, last_cycle)

    async def _start_asked(self, message: dict[str, Any]) -> None:
        request_id = str(message.get("request_id"))
        program = message.get("program") or next(iter(self.programs), "")
        ok, reason = True, ""
        expires = message.get("expires")
        if self.state == "out_of_order":
            ok, reason = False, "out of order"
        elif self.state == "running":
            ok, reason = False, "a cycle is running"
        elif self.refuse_starts:
            ok, reason = False, self.refuse_starts
        elif program not in self.programs:
            ok, reason = False, f"no program {program}"
        elif isinstance(expires, str):
            gateway_now = self.now() - timedelta(milliseconds=self.clock_offset_ms or 0)
            if gateway_now > _parse(expires):
                ok, reason = False, "expired"
        await self._send(
            {"type": "start.result", "request_id": request_id, "ok": ok, "reason": reason}
        )
        if not ok:
            self._say(f"REFUSED start from the portal: {reason}")
            return
        self.started.append(request_id)
        self._say(f"START {program} (from the portal)")
        await self.start_cycle(program, request_id=request_id)

    # --- deciding and running -----------------------------------------------------------------

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
        say, self.on_event = self.on_event, None
        try:
            decision = super()._record(granted, reason, entry, kind, at, tag=tag)
        finally:
            self.on_event = say
        self._say(("RELEASED " if granted else "REFUSED  ") + (reason or "badge accepted"))
        return decision

    async def badge(self, uid: str, program: str = "") -> Decision | None:
        """A badge presented at the machine: decided from its list; a granted
        badge starts a cycle. None when the machine cannot be released now
        (running, or out of order: no decision is made)."""
        if self.state != "free":
            self._say(f"BUSY     the machine is {self.state.replace('_', ' ')}")
            return None
        decision = self.decide("tag", uid)
        if decision.granted:
            await self.start_cycle(
                program or next(iter(self.programs), ""), entry=decision.entry, flush=False
            )
        if self.online:
            await self.flush()
        return decision

    async def start_cycle(
        self,
        program: str,
        *,
        entry: int | None = None,
        request_id: str = "",
        flush: bool = True,
    ) -> int:
        """Start a cycle now (released by ``entry``, or by the portal's
        ``request_id``); it ends by itself after ``cycle_seconds``. Returns
        its seq."""
        self.cycle_seq += 1
        record: dict[str, Any] = {
            "seq": self.cycle_seq,
            "phase": "start",
            "started": _iso(self.now()),
            "program": program,
        }
        if entry is not None:
            record["entry"] = entry
        if request_id:
            record["request_id"] = request_id
        self.cycle_outbox.append(record)
        self.running = dict(record)
        self.state = "running"
        self._say(f"CYCLE {self.cycle_seq} started: {program}")
        if self.online:
            await self.send_state()
            if flush:
                await self.flush()
        self._spawn(self._end_later(self.cycle_seq))
        return self.cycle_seq

    async def _end_later(self, seq: int) -> None:
        await asyncio.sleep(self.cycle_seconds)
        if self.running is not None and self.running["seq"] == seq:
            await self.end_cycle()

    async def end_cycle(self) -> None:
        """End the running cycle now, with the energy of its program."""
        running = self.running
        if running is None:
            return
        program = running.get("program", "")
        energy = self.programs.get(program, DEFAULT_ENERGY_WH)
        self.cycle_outbox.append(
            {
                "seq": running["seq"],
                "phase": "end",
                "ended": _iso(self.now()),
                "program": program,
                "energy_wh": energy,
            }
        )
        self.running = None
        if self.state == "running":
            self.state = "free"
        self._say(f"CYCLE {running['seq']} ended: {program}, {energy} Wh")
        if self.online:
            try:
                await self.send_state()
                await self.flush()
            except (ConnectionError, ConnectionClosed, OSError, TimeoutError) as exc:
                self._say(f"kept for later: {exc}")

    async def set_state(self, state: str) -> None:
        """Free or out of order, as a technician sets it."""
        self.state = state
        if self.online:
            await self.send_state()

    async def send_state(self) -> None:
        await self._send(
            {
                "type": "state",
                "state": self.state,
                "programs": list(self.programs),
                "firmware": self.firmware,
                "clock": _iso(self.now()),
            }
        )

    # --- uploading ----------------------------------------------------------------------------

    async def flush(self, timeout: float = 5) -> None:
        """Upload the badge events, then the cycle records, kept while
        offline (or just now), in batches, oldest first."""
        await super().flush(timeout)
        while self.cycle_outbox and self.online:
            batch = _batch(self.cycle_outbox)
            self._acked_cycles.clear()
            await self._send({"type": "cycles", "cycles": batch})
            await asyncio.wait_for(self._acked_cycles.wait(), timeout)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        """Offline, and no cycle ends by itself any more."""
        for task in list(self._tasks):
            task.cancel()
        await super().go_offline()


def _batch(outbox: list[dict[str, Any]]) -> list[dict[str, Any]]:
    batch: list[dict[str, Any]] = []
    size = 40
    for record in outbox[:MAX_CYCLES_PER_BATCH]:
        size += len(json.dumps(record, separators=(",", ":")).encode()) + 1
        if size > MAX_MESSAGE_BYTES and batch:
            break
        batch.append(record)
    return batch


COMMANDS = (
    "badge UID [PROGRAM] | programs | out-of-order | repair | end | offline | online | list | quit"
)


async def interactive(machine: SimulatedMachine, read_line: Callable[[], Any]) -> None:
    """The command loop of `doorkeep simulate machine`."""
    print(f"Simulated {machine.machine} {machine.serial} connecting to {machine.url} …")
    try:
        await machine.connect()
    except NotWelcomed:
        return  # close_code and close_reason say why; the caller reports it
    print(f"Online, {machine.state}. Programs: {', '.join(machine.programs)}.")
    print(f"Type: {COMMANDS}")
    while True:
        line = await read_line()
        if line is None:
            break
        words = line.strip().split(maxsplit=2)
        if not words:
            continue
        command, args = words[0].lower(), words[1:]
        try:
            if command in ("badge", "tag") and args:
                program = " ".join(args[1:])
                if program and program not in machine.programs:
                    print(f"No program {program!r}. Programs: {', '.join(machine.programs)}")
                    continue
                await machine.badge(args[0], program)
            elif command == "programs":
                for name, energy in machine.programs.items():
                    print(f"  {name}: {energy} Wh")
            elif command in ("out-of-order", "broken"):
                await machine.set_state("out_of_order")
                print("Out of order: badges and starts are refused.")
            elif command in ("repair", "free"):
                await machine.set_state("running" if machine.running else "free")
                print(f"Repaired: {machine.state}.")
            elif command == "end":
                await machine.end_cycle()
            elif command == "offline":
                await machine.go_offline()
                print("Offline: deciding alone; cycles are kept until the machine is back.")
            elif command == "online":
                await machine.connect()
                print("Online again; kept events and cycles uploaded.")
            elif command == "list":
                print(
                    f"list version {machine.version}, {len(machine.entries)} badges; "
                    f"{machine.state}; {len(machine.outbox)} events and "
                    f"{len(machine.cycle_outbox)} cycle records waiting"
                )
            elif command in ("quit", "exit"):
                break
            else:
                print(f"Unknown command. Try: {COMMANDS}")
        except (ConnectionError, ConnectionClosed, OSError, TimeoutError) as exc:
            print(f"connection problem: {exc}")
        if not machine.online and machine.close_code and machine.close_code >= 4000:
            print(
                f"The gateway closed the connection: {machine.close_reason} ({machine.close_code})."
            )
            if command != "offline":
                break
    await machine.close()
