"""Idle connections: 5,000 connected, synced, idle locks held by one gateway in
at most 300 MB of memory (resident set).

Set-up: 5,000 registered locks (each at its own entry), each with a few keys
(a PIN each, written in bulk as ``issue_key`` writes them; --keys-per-lock)
and its device secret. ``doorkeep gateway`` runs as a subprocess; two more
processes hold 2,500 SimulatedLocks each (open-file limits raised). Once every
lock is connected and has acknowledged its list, the gateway's VmRSS (and
VmHWM, its peak) is read from /proc/<pid>/status, along with its RSS before
any lock connected, the cost per connection, its threads, and the CPU it uses
while the locks idle. The floor: a bare websockets server (same options) with
as many idle connections.

    .venv/bin/python bench/gateway_idle.py [--postgres] [--locks 5000] [--keys-per-lock 5]
        [--observe 30] [--db-threads N] [--tracemalloc]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _setup
import gateway_common as gc

TARGET_MB = 300.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--postgres", action="store_true", help="use a throw-away PostgreSQL db")
    parser.add_argument("--locks", type=int, default=5000)
    parser.add_argument("--keys-per-lock", type=int, default=5)
    parser.add_argument("--fleets", type=int, default=2, help="processes holding the locks")
    parser.add_argument("--settle", type=float, default=5.0, help="seconds idle before reading")
    parser.add_argument("--idle-cpu", type=float, default=10.0, help="seconds to watch CPU use")
    parser.add_argument("--no-floor", action="store_true", help="skip the bare websockets floor")
    gc.add_quiet_below(parser, "connecting")
    parser.add_argument(
        "--db-threads",
        type=int,
        default=None,
        help="run the Gateway class with this many database threads (default: "
        "`doorkeep gateway` as it is, 4 threads)",
    )
    parser.add_argument(
        "--observe", type=float, default=30.0, help="seconds to follow the RSS while idle"
    )
    parser.add_argument(
        "--tracemalloc",
        action="store_true",
        help="run the Gateway class with tracemalloc on and print its biggest allocation sites "
        "(more memory and CPU: the RSS figures are then not the target's)",
    )
    args = parser.parse_args()

    nofile = gc.raise_open_files(args.locks + 2000)
    db = _setup.setup(postgres=args.postgres)
    logdir = db.tempdir / "logs"
    logdir.mkdir()
    print(f"== {args.locks:,} idle locks on one gateway, {db.label} ==")
    print(f"{gc.load_line()} at start; open files limit {nofile:,}")
    t0 = time.perf_counter()
    world = _setup.make_world(args.locks)
    keys = bulk_keys_for(world, args.keys_per_lock)
    from doorkeep.gateway.server import DB_THREADS
    from doorkeep.gateway.services import set_device_secret

    for lock in world.locks:
        set_device_secret(lock, gc.DEVICE_SECRET)
    print(
        f"setup: {args.locks:,} locks, {keys:,} keys ({args.keys_per_lock} a lock), device "
        f"secrets, in {time.perf_counter() - t0:.1f} s"
    )
    if analyzed := gc.analyze_postgres():
        print(analyzed)
    results: dict[str, Any] = {}
    gc.wait_for_quiet(args.quiet_below)
    if not args.no_floor:
        results["floor"] = floor(args.locks, args.fleets, logdir)

    port = gc.free_port()
    traced = logdir / "tracemalloc.txt"
    gateway = gc.start_gateway(
        port,
        logdir=logdir,
        db_threads=args.db_threads or (8 if args.tracemalloc else None),
        env={"GATEWAY_PORT": str(port)}
        | ({"BENCH_TRACEMALLOC_OUT": str(traced)} if args.tracemalloc else {}),
    )
    time.sleep(2)
    rss0 = gc.rss_mb(gateway.pid)
    what = "`doorkeep gateway`" if gateway.proc.args[1] == "gateway" else "the Gateway class"
    print(
        f"\n-- the gateway ({what} with {args.db_threads or DB_THREADS} database threads, "
        f"pid {gateway.pid}) --"
    )
    print(f"RSS with 0 locks: {rss0:.1f} MB, {gc.threads_of(gateway.pid)} threads")
    url = f"ws://{gc.LOOPBACK}:{port}"
    serials = [lock.serial for lock in world.locks]
    t0 = time.perf_counter()
    fleets = [
        gc.Fleet(f"fleet{i}", url, serials[i :: args.fleets], logdir=logdir, concurrency=50)
        for i in range(args.fleets)
    ]
    ready = [fleet.read(timeout=900) for fleet in fleets]
    connected = sum(r["ready"] for r in ready)
    elapsed = time.perf_counter() - t0
    print(
        f"{connected:,} of {args.locks:,} locks connected and synced in {elapsed:.1f} s "
        f"({args.fleets} client processes, 50 handshakes at a time each; "
        f"connect p50 {ready[0]['connect'].get('p50', 0):.0f} ms, "
        f"p99 {ready[0]['connect'].get('p99', 0):.0f} ms); failures "
        f"{[r['failed'] for r in ready]} {[r['errors'] for r in ready if r['errors']]}"
    )
    peak_connecting = gc.rss_mb(gateway.pid, "VmHWM")
    from django.db.models import F

    from doorkeep.gateway.models import Device

    def synced_now() -> int:
        return Device.objects.filter(
            online=True, acked_version=F("lock__credential_version")
        ).count()

    # The last acknowledgements may still be on their way to the database.
    deadline = time.monotonic() + 30
    while (synced := synced_now()) < connected and time.monotonic() < deadline:
        time.sleep(0.5)
    health = json.loads(
        urllib.request.urlopen(f"http://{gc.LOOPBACK}:{port}/healthz", timeout=5).read()
    )
    print(
        f"gateway /healthz: {health.get('locks')} locks; Device rows online and acknowledged "
        f"at the platform's version: {synced:,}"
    )
    time.sleep(args.settle)
    meter = gc.CpuMeter({"gateway": gateway.tree})
    meter.start()
    time.sleep(args.idle_cpu)
    meter.stop()
    samples = [(0.0, gc.rss_mb(gateway.pid))]
    started = time.monotonic()
    while time.monotonic() - started < args.observe:
        time.sleep(min(5.0, args.observe))
        samples.append((time.monotonic() - started, gc.rss_mb(gateway.pid)))
    if len(samples) > 1:
        print("RSS while idle: " + ", ".join(f"{mb:.1f} MB at +{at:.0f} s" for at, mb in samples))
    rss = gc.rss_mb(gateway.pid)
    hwm = gc.rss_mb(gateway.pid, "VmHWM")
    per_kb = 1024 * (rss - rss0) / max(connected, 1)
    cpu = meter.used["gateway"]
    print(
        f"RSS with {connected:,} idle locks: {rss:.1f} MB (peak VmHWM {hwm:.1f} MB; "
        f"{peak_connecting:.1f} MB right after connecting)"
    )
    print(f"per connection: ({rss:.1f} - {rss0:.1f}) MB / {connected:,} = {per_kb:.1f} KB")
    if db.backend == "sqlite":
        from django.conf import settings

        size = Path(settings.DATABASES["default"]["NAME"]).stat().st_size / 2**20
        print(
            f"(the SQLite file is {size:.1f} MB; each of the gateway's database threads has its "
            "own connection and page cache)"
        )
    print(
        f"threads {gc.threads_of(gateway.pid)}; idle CPU {100 * cpu / meter.wall:.1f}% of one "
        f"CPU over {meter.wall:.0f} s (watch rounds, pings)"
    )
    if args.tracemalloc:
        os.kill(gateway.pid, signal.SIGUSR1)
        deadline = time.monotonic() + 60
        while not traced.exists() and time.monotonic() < deadline:
            time.sleep(0.5)
        time.sleep(1)
        print("\ntracemalloc, the biggest allocation sites in the gateway:")
        print(traced.read_text() if traced.exists() else "(no snapshot)")
    stats = [fleet.stop() for fleet in fleets]
    online = sum(s["online"] for s in stats if s)
    print(f"locks still online at the end: {online:,}")
    gateway.stop()
    passed = connected == args.locks and synced == args.locks and rss <= TARGET_MB
    print(
        f"{'PASS' if passed else 'FAIL'}: {rss:.1f} MB for {connected:,} locks "
        f"(target <= {TARGET_MB:g} MB for {args.locks:,}, all synced)"
    )
    _setup.emit_result(
        "gateway_idle",
        db.backend,
        passed=passed,
        locks=connected,
        synced=synced,
        rss_mb=round(rss, 1),
        rss0_mb=round(rss0, 1),
        hwm_mb=round(hwm, 1),
        per_connection_kb=round(per_kb, 1),
        idle_cpu_pct=round(100 * cpu / meter.wall, 1),
        connect_s=round(elapsed, 1),
        **results,
        load=round(os.getloadavg()[0], 2),
    )
    return 0 if passed else 1


def bulk_keys_for(world: _setup.World, per_lock: int) -> int:
    """``per_lock`` PIN keys on every lock, in a few bulk statements, in the
    shape issue_key writes them (person, credential, key, key credential, the
    lock's version and a key.issued event)."""
    if per_lock <= 0:
        return 0
    from django.db import transaction
    from django.db.models import F
    from django.utils import timezone

    from doorkeep.events.models import Event, EventKind
    from doorkeep.keys.credentials import device_lookup, pin_digest
    from doorkeep.keys.models import Credential, CredentialKind, Key, KeyCredential, Person
    from doorkeep.locks.models import Lock

    rng = random.Random(3)
    now = timezone.now()
    plan = [(lock, n) for lock in world.locks for n in range(per_lock)]
    pins = [f"{rng.randrange(10**6):06d}" for _ in plan]
    with transaction.atomic():
        people = Person.objects.bulk_create(
            [
                Person(
                    organization=world.org, name=f"Holder {i:06d}", email=f"h{i:06d}@example.com"
                )
                for i in range(len(plan))
            ],
            batch_size=1000,
        )
        keys = Key.objects.bulk_create(
            [
                Key(
                    lock=lock,
                    organization_id=lock.organization_id,
                    lock_owner_id=lock.organization_id,
                    person=person,
                    issued_by=world.owner,
                    issued_at=now,
                )
                for (lock, _n), person in zip(plan, people, strict=True)
            ],
            batch_size=1000,
        )
        creds = Credential.objects.bulk_create(
            [
                Credential(
                    person=person,
                    kind=CredentialKind.PIN,
                    lookup=pin_digest(pin),
                    display="•" * 6,
                )
                for person, pin in zip(people, pins, strict=True)
            ],
            batch_size=1000,
        )
        KeyCredential.objects.bulk_create(
            [
                KeyCredential(
                    key=key,
                    credential=cred,
                    lock=lock,
                    kind=CredentialKind.PIN,
                    lookup=cred.lookup,
                    device_lookup=device_lookup(CredentialKind.PIN, pin, lock.serial),
                )
                for (lock, _n), key, cred, pin in zip(plan, keys, creds, pins, strict=True)
            ],
            batch_size=1000,
        )
        Lock.objects.filter(organization=world.org).update(
            credential_version=F("credential_version") + per_lock
        )
        Event.objects.bulk_create(
            [
                Event(
                    organization_id=world.org.pk,
                    kind=EventKind.KEY_ISSUED,
                    occurred_at=now,
                    received_at=now,
                    property_id=world.prop.pk,
                    lock=lock,
                    person=person,
                    key=key,
                    actor=world.owner,
                    summary=f"Key issued to {person.name} (pin)",
                    data={"credentials": ["pin"]},
                )
                for (lock, _n), person, key in zip(plan, people, keys, strict=True)
            ],
            batch_size=1000,
        )
    return len(plan)


def floor(count: int, processes: int, logdir: Path) -> dict[str, Any]:
    """A bare websockets server holding ``count`` idle connections."""
    port = gc.free_port()
    echo = gc.start_echo(port, logdir=logdir)
    time.sleep(1)
    rss0 = gc.rss_mb(echo.pid)
    clients = []
    for i in range(processes):
        argv = [
            sys.executable,
            str(gc.HERE / "gateway_common.py"),
            "wsclients",
            "--url",
            f"ws://{gc.LOOPBACK}:{port}",
            "--count",
            str(count // processes + (1 if i < count % processes else 0)),
        ]
        clients.append(gc.spawn(f"wsclients{i}", argv, logdir=logdir, pipes=True))
    ready = 0
    for child in clients:
        ready += gc.read_json_line(child, timeout=600)["ready"]
    time.sleep(2)
    rss = gc.rss_mb(echo.pid)
    per_kb = 1024 * (rss - rss0) / max(ready, 1)
    print("\n-- floor: a bare websockets server (the gateway's options) --")
    print(
        f"RSS {rss0:.1f} MB with 0 connections, {rss:.1f} MB with {ready:,} idle ones: "
        f"{per_kb:.1f} KB per connection"
    )
    for child in clients:
        child.stop()
    echo.stop()
    return {
        "rss0_mb": round(rss0, 1),
        "rss_mb": round(rss, 1),
        "per_connection_kb": round(per_kb, 1),
    }


if __name__ == "__main__":
    sys.exit(main())
