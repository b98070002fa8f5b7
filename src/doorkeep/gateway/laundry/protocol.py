"""The laundry controller's messages (docs/protocol/laundry-v1.md): the lock
protocol's frames, errors and rules (doorkeep.gateway.protocol), with the
messages a laundry machine adds: ``cycles`` (the starts and ends of its
cycles, in batches), ``state`` (free, running or out of order, and the
programs it offers) and ``start.result`` (its answer to a start from the
portal). Parsing and validation only; no database, no I/O."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from doorkeep.gateway.protocol import MAX_ID, ProtocolError, is_int, parse_time

KIND = "laundry"  # the hello's "kind" of a laundry machine's controller
TYPES = frozenset(
    {"hello", "list.ack", "events", "cycles", "state", "start.result", "time.request"}
)
STATES = ("free", "running", "out_of_order")
MAX_CYCLES_PER_BATCH = 500
MAX_PROGRAMS = 20
MAX_PROGRAM = 40  # characters of a program's name
MAX_ENERGY_WH = 10**9  # a cycle's energy: a million kWh is not a wash
PHASES = ("start", "end")


@dataclass(frozen=True)
class CycleRecord:
    """One record of a ``cycles`` batch: a cycle started (``at`` is when)
    or ended (``at`` is when, with its energy)."""

    seq: int
    phase: str  # "start" or "end"
    at: datetime
    device_clock: str  # ``at`` as the controller wrote it
    program: str = ""
    entry: int | None = None  # start: the list entry (badge) that released it
    request_id: str = ""  # start: the portal start it answers
    energy_wh: int | None = None  # end


def program(value: Any, ref: Any = None) -> str:
    if value is None:
        return ""
    if not isinstance(value, str) or len(value) > MAX_PROGRAM:
        raise ProtocolError(
            "bad_message", f"program is a name of at most {MAX_PROGRAM} characters", ref
        )
    return value.strip()


def programs(value: Any) -> list[str] | None:
    """The programs a machine offers (None: not said)."""
    if value is None:
        return None
    if not isinstance(value, list) or len(value) > MAX_PROGRAMS:
        raise ProtocolError(
            "bad_message", f"programs is a list of at most {MAX_PROGRAMS} program names"
        )
    names = [program(item) for item in value]
    if any(not name for name in names):
        raise ProtocolError("bad_message", "a program has a name")
    return list(dict.fromkeys(names))


def state(value: Any) -> str | None:
    if value is None:
        return None
    if value not in STATES:
        raise ProtocolError("bad_message", "state is free, running or out_of_order")
    return str(value)


def cycles(message: dict[str, Any]) -> list[CycleRecord]:
    """A batch of cycle records, oldest first. A bad record refuses the
    whole batch (``ref``: its seq), as for events."""
    batch = message.get("cycles")
    if not isinstance(batch, list) or not batch:
        raise ProtocolError("bad_message", "cycles is a non-empty list")
    if len(batch) > MAX_CYCLES_PER_BATCH:
        raise ProtocolError("too_large", f"at most {MAX_CYCLES_PER_BATCH} cycle records a batch")
    records = []
    for item in batch:
        if not isinstance(item, dict):
            raise ProtocolError("bad_message", "each cycle record is an object")
        seq = item.get("seq")
        if not is_int(seq) or not 0 < seq <= MAX_ID:
            raise ProtocolError("bad_message", "each cycle record needs a positive whole seq")
        phase = item.get("phase")
        if phase not in PHASES:
            raise ProtocolError("bad_message", "phase is start or end", ref=seq)
        field = "started" if phase == "start" else "ended"
        at = parse_time(item.get(field), field, ref=seq)
        name = program(item.get("program"), ref=seq)
        if phase == "start":
            entry, request_id = item.get("entry"), item.get("request_id")
            if entry is not None and (not is_int(entry) or not 0 < entry <= MAX_ID):
                raise ProtocolError("bad_message", "entry is the id of a list entry", ref=seq)
            if request_id is not None and (
                not isinstance(request_id, str) or not 0 < len(request_id) <= 64
            ):
                raise ProtocolError("bad_message", "request_id is the start's id", ref=seq)
            if entry is not None and request_id is not None:
                raise ProtocolError(
                    "bad_message",
                    "a cycle starts by a badge (entry) or the portal (request_id)",
                    seq,
                )
            records.append(CycleRecord(seq, phase, at, item[field], name, entry, request_id or ""))
        else:
            energy = item.get("energy_wh")
            if energy is not None and (not is_int(energy) or not 0 <= energy <= MAX_ENERGY_WH):
                raise ProtocolError(
                    "bad_message", "energy_wh is a whole number of watt-hours, 0 or more", ref=seq
                )
            records.append(CycleRecord(seq, phase, at, item[field], name, energy_wh=energy))
    return records


def start_result(message: dict[str, Any]) -> tuple[str, bool, str]:
    request_id = message.get("request_id")
    if not isinstance(request_id, str):
        raise ProtocolError("bad_message", "start.result needs the request_id")
    ok = message.get("ok") is True
    return request_id, ok, str(message.get("reason") or "")[:100]
