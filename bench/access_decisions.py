"""Access decisions per second on a lock with 2,500 live keys.

Runs N calls of ``keys.access.decide(lock, kind, value)`` (each writes its
event) with a realistic mix: 80% a valid PIN or tag of a random holder, 10% an
unknown PIN, 10% a PIN of a taken-back key or of a key outside its weekly
schedule. Target: at least 2,000 decisions/s on SQLite.

    .venv/bin/python bench/access_decisions.py [--n 20000] [--postgres] [--profile]
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import random
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _setup

TARGET = 2000.0  # decisions per second, on SQLite
LIVE_KEYS = 2500
OUTSIDE_SCHEDULE_KEYS = 100
ALWAYS_SCHEDULE_KEYS = 400
REVOKED_KEYS = 250


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=20_000, help="decisions to time")
    parser.add_argument("--postgres", action="store_true", help="use a throw-away PostgreSQL db")
    parser.add_argument("--profile", action="store_true", help="always show a cProfile summary")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    db = _setup.setup(postgres=args.postgres)
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from doorkeep.events.models import DenyReason, Event, EventKind
    from doorkeep.keys import access
    from doorkeep.keys.models import Key
    from doorkeep.keys.schedule import DAYS
    from doorkeep.locks.models import Lock

    rng = random.Random(args.seed)
    print(f"== access decisions on {db.label} ==")
    print(f"load average at start: {os.getloadavg()[0]:.2f}")
    t0 = time.perf_counter()
    world = _setup.make_world(1)
    lock = world.locks[0]
    tz = ZoneInfo(world.prop.timezone)
    local_now = _setup.utcnow().astimezone(tz)
    other_day = DAYS[(local_now.weekday() + 3) % 7]
    outside = [{"days": [other_day], "start": "03:00", "end": "04:00"}]
    always = [{"days": list(DAYS), "start": "00:00", "end": "24:00"}]
    pins: set[str] = set()
    plain_n = LIVE_KEYS - OUTSIDE_SCHEDULE_KEYS - ALWAYS_SCHEDULE_KEYS
    valid = _setup.bulk_keys(world, lock, plain_n, used_pins=pins, rng=rng, prefix="resident")
    valid += _setup.bulk_keys(
        world,
        lock,
        ALWAYS_SCHEDULE_KEYS,
        schedule=always,
        used_pins=pins,
        rng=rng,
        prefix="cleaner",
    )
    off_schedule = _setup.bulk_keys(
        world,
        lock,
        OUTSIDE_SCHEDULE_KEYS,
        schedule=outside,
        used_pins=pins,
        rng=rng,
        prefix="visitor",
    )
    revoked = _setup.bulk_keys(
        world, lock, REVOKED_KEYS, revoked=True, used_pins=pins, rng=rng, prefix="former"
    )
    live = Key.objects.filter(lock=lock, revoked_at__isnull=True).count()
    assert live == LIVE_KEYS, live
    # The lock as the API hands it to decide(): keys.api.decide -> locks.services.get_lock.
    lock = Lock.objects.select_related("entry", "entry__property", "organization").get(pk=lock.pk)
    print(
        f"setup: {live} live keys ({len(valid)} valid, {len(off_schedule)} outside schedule), "
        f"{len(revoked)} taken back, in {time.perf_counter() - t0:.1f} s"
    )

    def unknown_pin() -> str:
        while True:
            pin = f"{rng.randrange(10**6):06d}"
            if pin not in pins:
                return pin

    def tag_text(uid: str) -> str:
        # Readers send UIDs in different spellings; decide() normalises them.
        if rng.random() < 0.5:
            return ":".join(uid[i : i + 2] for i in range(0, len(uid), 2)).lower()
        return uid

    def workload(n: int) -> list[tuple[str, str, str]]:
        """(kind, value, expected reason) for n decisions."""
        items = []
        for _ in range(n):
            roll = rng.random()
            if roll < 0.80:
                holder = rng.choice(valid)
                if holder.tag and rng.random() < 0.5:
                    items.append(("tag", tag_text(holder.tag), ""))
                else:
                    items.append(("pin", holder.pin, ""))
            elif roll < 0.90:
                items.append(("pin", unknown_pin(), DenyReason.UNKNOWN_CREDENTIAL))
            elif roll < 0.95:
                items.append(("pin", rng.choice(revoked).pin, DenyReason.REVOKED))
            else:
                items.append(("pin", rng.choice(off_schedule).pin, DenyReason.OUTSIDE_SCHEDULE))
        return items

    def access_events() -> int:
        return Event.objects.filter(
            lock=lock, kind__in=[EventKind.ACCESS_GRANTED, EventKind.ACCESS_DENIED]
        ).count()

    # Warm up (connection, code paths), then time N decisions.
    for kind, value, _expected in workload(200):
        access.decide(lock, kind, value, source="bench")
    before = access_events()
    items = workload(args.n)
    latencies: list[float] = []
    outcomes: Counter[str] = Counter()
    wrong = 0
    clock = time.perf_counter
    load_before = os.getloadavg()[0]
    cpu_started = time.process_time()
    started = clock()
    for kind, value, expected in items:
        t = clock()
        decision = access.decide(lock, kind, value, source="bench")
        latencies.append(clock() - t)
        outcomes[decision.reason or "granted"] += 1
        if decision.reason != expected:
            wrong += 1
    elapsed = clock() - started
    cpu = time.process_time() - cpu_started
    load = f"{load_before:.2f} -> {os.getloadavg()[0]:.2f}"
    written = access_events() - before

    with CaptureQueriesContext(connection) as ctx:
        for kind, value, _expected in workload(20):
            access.decide(lock, kind, value, source="bench")
    queries_per_decision = len(ctx.captured_queries) / 20

    rate = args.n / elapsed
    print(f"decisions: {args.n:,} in {elapsed:.2f} s = {rate:,.0f} decisions/s")
    print(f"CPU time of this process: {cpu / args.n * 1e6:.0f} us/decision; load average {load}")
    print(_setup.latency_line("latency per decision", latencies))
    print(
        "outcomes: "
        + ", ".join(f"{k} {v:,}" for k, v in sorted(outcomes.items()))
        + f"; unexpected outcomes: {wrong}"
    )
    print(f"SQL statements per decision: {queries_per_decision:.1f}")
    print(
        f"events written: {written:,} (expected {args.n:,}) "
        f"{'OK' if written == args.n else 'MISMATCH'}"
    )
    passed = rate >= TARGET and written == args.n and wrong == 0
    target_note = "" if db.backend == "sqlite" else " (target is set for SQLite)"
    print(
        f"{'PASS' if passed else 'FAIL'}: {rate:,.0f} decisions/s vs target >= {TARGET:,.0f}"
        f"{target_note}"
    )

    if args.profile or rate < TARGET:
        profile(workload(min(args.n, 3000)), lambda k, v: access.decide(lock, k, v, source="bench"))

    _setup.emit_result(
        "access_decisions",
        db.backend,
        n=args.n,
        rate=round(rate),
        cpu_us=round(cpu / args.n * 1e6),
        load=load,
        mean_ms=round(sum(latencies) / len(latencies) * 1000, 3),
        p50_ms=round(_setup.percentile(latencies, 50) * 1000, 3),
        p99_ms=round(_setup.percentile(latencies, 99) * 1000, 3),
        events=written,
        queries=queries_per_decision,
        passed=passed,
        target=f">= {TARGET:,.0f}/s",
    )
    return 0 if passed else 1


def profile(items: list[tuple[str, str, str]], decide: Any) -> None:
    """Run the decisions under cProfile; print where the time goes."""
    profiler = cProfile.Profile()
    profiler.enable()
    for kind, value, _expected in items:
        decide(kind, value)
    profiler.disable()
    stats = pstats.Stats(profiler, stream=io.StringIO())
    total = 0.0
    parts: dict[str, float] = {}
    wanted = {
        ("keys/access.py", "decide"): "decide() in all",
        ("keys/access.py", "_match"): "  _match(): the key-credential query",
        ("keys/credentials.py", "presented"): "  presented(): parse + PIN digest",
        ("keys/access.py", "_reason"): "  _reason(): status and schedule",
        ("events/services.py", "record"): "  record(): Event.objects.create",
        ("events/services.py", "write_access_event"): "  write_access_event(): the INSERT",
        ("django/db/transaction.py", "__enter__"): "  transaction.atomic() enter",
        ("django/db/transaction.py", "__exit__"): "  transaction.atomic() exit (COMMIT)",
        ("sql/compiler.py", "as_sql"): "  (within: SQL compilation, compiler.as_sql)",
        ("sql/compiler.py", "pre_sql_setup"): "  (within: compiler.pre_sql_setup)",
        ("sqlite3/base.py", "execute"): "  (within: SQLite execute, all statements)",
        ("postgresql/base.py", "execute"): "  (within: psycopg execute, all statements)",
    }
    raw: dict[tuple[str, int, str], tuple[Any, ...]] = stats.stats  # type: ignore[attr-defined]
    for (filename, _line, func), (_cc, _nc, _tt, cumulative, _callers) in raw.items():
        for (suffix, name), label in wanted.items():
            if filename.endswith(suffix) and func == name:
                parts[label] = parts.get(label, 0.0) + cumulative
    total = parts.get("decide() in all", 0.0)
    print(f"-- cProfile of {len(items):,} decisions (profiler overhead included) --")
    for label in wanted.values():
        if label in parts:
            seconds = parts[label]
            print(
                f"{label:58s} {seconds / len(items) * 1e6:8.0f} us/decision "
                f"{seconds / total * 100 if total else 0:5.1f}%"
            )
    out = io.StringIO()
    stats.stream = out  # type: ignore[attr-defined]
    stats.sort_stats("tottime").print_stats(12)
    print("-- top functions by own time --")
    lines = out.getvalue().splitlines()
    start = next((i for i, line in enumerate(lines) if "ncalls" in line), 0)
    print("\n".join(line for line in lines[start:] if line.strip()))


if __name__ == "__main__":
    sys.exit(main())
