"""Charging stations (issue 13, item 10): 1,000 stations connected to the
gateway over OCPP 1.6J. Authorize round trips at 500 a second offered (p99
at most 25 ms) and the highest rate reached, beside a bare central system
written with the `ocpp` library alone (at least half its rate); the
gateway's memory per idle station connection; a lost badge's Blocked entry
reaching the 1,000 online stations (p99 at most 1 second).

Set-up: one site with ``--residents`` residents (units and residencies
through the residents services), each with an active platform badge
(written in bulk with the ORM, as activating one leaves it), and
``--stations`` shared stations at the site (bulk, a known password). The
lost badges are reported through ``badges.services.report_lost``, as a web
worker reports them.

Processes (2 CPUs): this script (set-up, the reports, reading the
database), the server under test (``doorkeep gateway``, or the floor
``bare_csms.py``), and the stations: this script's ``fleet`` command, one
process holding every station, each an ``ocpp.v16.ChargePoint`` on its own
WebSocket (Basic authentication, BootNotification; it answers
GetLocalListVersion and SendLocalList and notes when each list arrived).
The fleet also generates the load. The floor runs first, alone, then the
gateway, alone: each server has the machine to itself and the same fleet.

1. Memory: the server's RSS (/proc VmRSS) before the stations connect and
   after they are connected, booted and (for the gateway) synced, idle for a
   few seconds; the difference divided by the number of stations.
2. Authorize, open loop: ``--rate`` a second offered for ``--duration``
   seconds after a warm-up, spread over the stations in turn and over the
   residents' badges (every answer Accepted). Each call is sent at its
   planned time (a station still waiting for its previous answer sends it
   when that comes: the library allows one call at a time) and its latency
   runs from the planned time to the answer, so a server that falls behind
   is not flattered (coordinated omission). Then the highest rate: offered
   rates raised by ``--step-factor`` from ``--rate``, ``--step-duration``
   seconds each, until the p99 exceeds 25 ms or a call fails (lowered by
   it, when ``--rate`` already fails, until one holds); the highest rate
   that held is the server's rate. Also the closed loop: ``--inflight``
   calls always in flight, as fast as answers come (throughput; its latency
   is in-flight / rate by Little's law).
3. A lost badge (gateway): with every station connected and its list
   acknowledged (Station.acked_version == list_version), a resident's
   badge is reported lost; from the report's commit to each station's
   receipt of a SendLocalList carrying the UID as Blocked (the frame's
   arrival in the fleet, CLOCK_MONOTONIC, the clock of every process), and
   until the gateway recorded the last acknowledgement. ``--repeat``
   reports, a different badge each time, each after every list is
   acknowledged again. The floor: the bare central system pushing the same
   one-entry SendLocalList to its 1,000 stations at once (the `ocpp`
   library's cost), a bare websockets echo server's 1,000 round trips (as
   badge_lost.py measures it) and the machine's speed.

    .venv/bin/python bench/chargers.py [--postgres] [--stations 1000] [--residents 50]
        [--rate 500] [--duration 10] [--step-duration 5] [--step-factor 1.25]
        [--inflight 64] [--repeat 20] [--gateway-db-threads N] [--no-floor]
        [--profile] [--py-spy PATH] [--quiet-below LOAD]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import os
import signal
import statistics
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _setup
import gateway_common as gc

TARGET_P99_MS = 25.0  # Authorize at 500/s offered
TARGET_RATIO = 0.5  # of the floor's highest rate
TARGET_LOST_MS = 1000.0  # the Blocked entry at the last station, p99 over the reports
MIN_RATE = 20.0  # the lowest step tried when the server falls short of --rate
PASSWORD = "bench-station-password-0001"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--postgres", action="store_true", help="use a throw-away PostgreSQL db")
    parser.add_argument("--stations", type=int, default=1000)
    parser.add_argument("--residents", type=int, default=50, help="each with an active badge")
    parser.add_argument("--rate", type=float, default=500.0, help="Authorize/s offered")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds at --rate")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds before each window")
    parser.add_argument("--step-duration", type=float, default=5.0, help="seconds a step")
    parser.add_argument("--step-factor", type=float, default=1.25)
    parser.add_argument("--max-rate", type=float, default=20_000.0)
    parser.add_argument("--inflight", type=int, default=64, help="calls in flight, closed loop")
    parser.add_argument("--repeat", type=int, default=20, help="lost-badge reports")
    parser.add_argument(
        "--gateway-db-threads",
        type=int,
        default=None,
        help="run the Gateway class with this many database threads (default: `doorkeep "
        "gateway` as it is)",
    )
    parser.add_argument("--no-floor", action="store_true", help="skip the bare central system")
    parser.add_argument(
        "--profile", action="store_true", help="py-spy of the gateway, after the measurements"
    )
    parser.add_argument("--py-spy", default=None, help="the py-spy program")
    gc.add_quiet_below(parser)
    args = parser.parse_args()
    if args.repeat > args.residents:
        parser.error("--repeat needs as many --residents (a different badge each report)")

    gc.raise_open_files(args.stations * 2 + 2000)
    db = _setup.setup(postgres=args.postgres)
    logdir = db.tempdir / "logs"
    logdir.mkdir()
    print(f"== {args.stations:,} charging stations (OCPP 1.6J), on {db.label} ==")
    print(gc.load_line() + " at start")
    started = time.perf_counter()
    world = _setup.make_world(0)
    site = make_site(world, args.residents, args.stations)
    print(
        f"setup: {args.residents} residents with active platform badges, {args.stations:,} "
        f"stations at {world.prop.name}, in {time.perf_counter() - started:.1f} s"
    )
    if analyzed := gc.analyze_postgres():
        print(analyzed)
    gc.wait_for_quiet(args.quiet_below)
    warn_if_shared("the start")
    gc.settle_here()
    results: dict[str, Any] = {"stations": args.stations, "residents": args.residents}

    import badge_lost

    results["machine_floor"] = badge_lost.floor(args.stations, logdir)
    if not args.no_floor:
        results["floor"] = measure_floor(args, site, logdir)
    results["gateway"] = measure_gateway(args, site, logdir, db)

    verdicts = summary(args, results)
    _setup.emit_result(
        "chargers",
        db.backend,
        passed=all(verdicts.values()),
        verdicts=verdicts,
        **results,
        load=round(os.getloadavg()[0], 2),
    )
    return 0 if all(verdicts.values()) else 1


# --- the site -----------------------------------------------------------------------------


@dataclass
class Site:
    world: _setup.World
    badges: list[tuple[int, str]]  # (badge id, UID), one a resident
    station_ids: list[int]
    cp_ids: list[str]


def make_site(world: _setup.World, residents: int, stations: int) -> Site:
    """Residents through the services; their badges and the stations in bulk."""
    from django.db import transaction
    from django.utils import timezone

    from doorkeep.badges.models import Badge, BadgeSource, BadgeStatus
    from doorkeep.chargers.models import Station
    from doorkeep.keys.models import Credential, CredentialKind
    from doorkeep.residents.services import ResidentSpec, add_resident, add_unit

    people = []
    for n in range(1, residents + 1):
        unit = add_unit(world.owner, world.prop.pk, f"U-{n:03d}")
        residency = add_resident(
            world.owner,
            world.prop.pk,
            ResidentSpec(
                name=f"Resident {n:03d}",
                email=f"resident{n:03d}@example.com",
                move_in=date(2024, 1, 1),
                unit_id=unit.pk,
            ),
        )
        people.append(residency.person)
    uids = [f"04BE{n:010X}" for n in range(1, residents + 1)]
    now = timezone.now()
    digest = Station.digest_of(PASSWORD)
    cp_ids = [f"CP-BENCH-{n:05d}" for n in range(1, stations + 1)]
    with transaction.atomic():
        creds = Credential.objects.bulk_create(
            [
                Credential(person=person, kind=CredentialKind.TAG, lookup=uid, display=uid)
                for person, uid in zip(people, uids, strict=True)
            ]
        )
        badges = Badge.objects.bulk_create(
            [
                Badge(
                    organization=world.org,
                    person=person,
                    uid=uid,
                    source=BadgeSource.PLATFORM,
                    status=BadgeStatus.ACTIVE,
                    credential=cred,
                    created_by=world.owner,
                    activated_at=now,
                )
                for person, uid, cred in zip(people, uids, creds, strict=True)
            ]
        )
        made = Station.objects.bulk_create(
            [
                Station(
                    organization=world.org,
                    property=world.prop,
                    charge_point_id=cp_id,
                    name=f"Bench station {n:05d}",
                    password_digest=digest,
                )
                for n, cp_id in enumerate(cp_ids, 1)
            ],
            batch_size=500,
        )
    ids = [s.pk for s in made]
    if not all(ids):  # a backend without RETURNING on bulk inserts
        by_cp = dict(Station.objects.values_list("charge_point_id", "pk"))
        ids = [by_cp[c] for c in cp_ids]
    return Site(world, [(b.pk, b.uid) for b in badges], ids, cp_ids)


# --- the floor: a bare central system with the ocpp library -------------------------------


def measure_floor(args: argparse.Namespace, site: Site, logdir: Path) -> dict[str, Any]:
    print("\n-- the floor: a bare central system (`ocpp` library alone, no database) --")
    port = gc.free_port()
    csms = gc.spawn(
        "bare-csms",
        [
            sys.executable,
            str(Path(__file__).resolve().parent / "bare_csms.py"),
            "--port",
            str(port),
        ],
        logdir=logdir,
        pipes=True,
    )
    gc.wait_http(f"http://{gc.LOOPBACK}:{port}/healthz", csms)
    time.sleep(1)
    rss_before = gc.rss_mb(csms.pid)
    fleet = StationFleet("floor-fleet", f"ws://{gc.LOOPBACK}:{port}", site.cp_ids, logdir=logdir)
    ready = fleet.ready()
    print(fleet_line(ready, len(site.cp_ids)))
    time.sleep(3)
    rss_after = gc.rss_mb(csms.pid)
    memory = memory_figures(rss_before, rss_after, len(site.cp_ids))
    print(memory_line("bare central system", memory))
    gc.settle_here()
    groups = {"bare central system": csms.tree, "station fleet": fleet.child.tree}
    warn_if_shared("the floor")
    loads = authorize_runs(args, fleet, [uid for _id, uid in site.badges], groups)
    # The list push floor: one differential SendLocalList to every station at once.
    pushes: list[dict[str, Any]] = []
    for n in range(args.repeat + 1):
        uid = f"04F0{n:010X}"
        fleet.command("watch " + uid)
        sent = command_line(csms, "push " + uid)
        got = fleet.command("wait", timeout=120)
        if n == 0:
            continue  # warm-up
        arrivals = [t - sent["started"] for t in got["times"] if t is not None]
        pushes.append(
            {
                "arrivals": arrivals,
                "last": max(arrivals) if arrivals else float("nan"),
                "answered": sent["ended"] - sent["started"],
                "missing": got["missing"],
                "errors": sent["errors"],
            }
        )
    print(
        f"\nlist push, {len(pushes)} times: one SendLocalList (1 entry, Blocked) to each of "
        f"the {len(site.cp_ids):,} stations at once, from the push's start"
    )
    print(gc.ms_line("    arrival at the last station", [p["last"] for p in pushes]))
    print(gc.ms_line("    arrival, per station", [x for p in pushes for x in p["arrivals"]]))
    print(gc.ms_line("    every answer back", [p["answered"] for p in pushes]))
    bad = sum(p["missing"] + p["errors"] for p in pushes)
    if bad:
        print(f"!! {bad} pushes missing or failed")
    fleet.stop()
    csms.stop()
    return {
        "ready": ready,
        "memory": memory,
        **loads,
        "push_last_ms": gc.ms_summary([p["last"] for p in pushes]),
        "push_station_ms": gc.ms_summary([x for p in pushes for x in p["arrivals"]]),
        "push_answered_ms": gc.ms_summary([p["answered"] for p in pushes]),
    }


# --- the gateway --------------------------------------------------------------------------


def measure_gateway(
    args: argparse.Namespace, site: Site, logdir: Path, db: _setup.Database
) -> dict[str, Any]:
    from doorkeep.gateway.server import DB_THREADS

    port = gc.free_port()
    gateway = gc.start_gateway(
        port, logdir=logdir, db_threads=args.gateway_db_threads, env={"GATEWAY_PORT": str(port)}
    )
    what = "`doorkeep gateway`" if args.gateway_db_threads is None else "the Gateway class"
    print(
        f"\n-- the gateway: {what} ({args.gateway_db_threads or DB_THREADS} db threads), "
        f"{db.label} --"
    )
    time.sleep(1)
    rss_before = gc.rss_mb(gateway.pid)
    started = time.perf_counter()
    fleet = StationFleet("gateway-fleet", f"ws://{gc.LOOPBACK}:{port}", site.cp_ids, logdir=logdir)
    ready = fleet.ready()
    print(fleet_line(ready, len(site.cp_ids)))
    synced = wait_synced(site.station_ids, timeout=300)
    print(
        f"every station's list acknowledged (Station.acked_version == list_version, "
        f"{synced['online']:,} online) {time.perf_counter() - started:.1f} s after the first "
        "connection"
    )
    time.sleep(3)
    rss_after = gc.rss_mb(gateway.pid)
    memory = memory_figures(rss_before, rss_after, len(site.cp_ids))
    memory["peak_mb"] = round(gc.rss_mb(gateway.pid, "VmHWM"), 1)
    print(memory_line("gateway", memory) + f"; peak (VmHWM) {memory['peak_mb']:.1f} MB")
    gc.settle_here()
    groups = {"gateway": gateway.tree, "station fleet": fleet.child.tree, "bench process": _me}
    if db.backend == "postgresql":
        groups["postgres"] = lambda: gc.postgres_backends(db.pg_name)
    warn_if_shared("the gateway")
    loads = authorize_runs(args, fleet, [uid for _id, uid in site.badges], groups)
    lost = lost_badges(args, site, fleet, groups)
    warn_if_shared("the gateway, at the end")
    profile: list[str] = []
    if args.profile:
        profile = profile_gateway(args, site, fleet, gateway, logdir)
    stats = fleet.stop()
    gateway.stop()
    print(
        f"fleet at the end: {stats and stats.get('online')} online, "
        f"{stats and stats.get('errors')} errors"
    )
    return {"ready": ready, "memory": memory, **loads, "lost": lost, "profile": profile}


def wait_synced(station_ids: list[int], timeout: float) -> dict[str, int]:
    """Until every station is online and acknowledged its list's version."""
    from django.db.models import F

    from doorkeep.chargers.models import Station

    deadline = time.monotonic() + timeout
    while True:
        rows = Station.objects.filter(pk__in=station_ids)
        behind = rows.exclude(acked_version=F("list_version")).count()
        offline = rows.filter(online=False).count()
        if not behind and not offline:
            return {"online": len(station_ids) - offline}
        if time.monotonic() > deadline:
            raise TimeoutError(f"{behind} stations behind, {offline} offline after {timeout:g} s")
        time.sleep(0.05)


def memory_figures(before: float, after: float, stations: int) -> dict[str, float]:
    return {
        "rss_before_mb": round(before, 1),
        "rss_after_mb": round(after, 1),
        "per_station_kb": round(1024 * (after - before) / max(stations, 1), 1),
    }


def memory_line(label: str, memory: dict[str, float]) -> str:
    return (
        f"{label} RSS (VmRSS): {memory['rss_before_mb']:.1f} MB before, "
        f"{memory['rss_after_mb']:.1f} MB with the stations idle: "
        f"{memory['per_station_kb']:.1f} KB per station connection"
    )


def fleet_line(ready: dict[str, Any], stations: int) -> str:
    line = (
        f"{ready['ready']:,} of {stations:,} stations connected and booted in "
        f"{ready['seconds']:.1f} s ({ready['concurrency']} handshakes at a time; "
        f"connect + boot p50 {ready['connect']['p50']:.0f} ms)"
    )
    if ready["failed"]:
        line += f"; !! {ready['failed']} failed: {ready['errors']}"
    return line


# --- Authorize -----------------------------------------------------------------------------


def authorize_runs(
    args: argparse.Namespace,
    fleet: StationFleet,
    tags: list[str],
    groups: dict[str, Any],
) -> dict[str, Any]:
    """The open loop at --rate, the rising steps, the closed loop."""
    meter = gc.CpuMeter(groups)
    meter.start()
    at_rate = fleet.load(rate=args.rate, duration=args.duration, warmup=args.warmup, tags=tags)
    meter.stop()
    print(load_line(f"Authorize, open loop, {args.rate:,.0f}/s offered", at_rate))
    print("\n".join(meter.lines(per=at_rate["answered"], unit="Authorize")))
    cpu = {k: round(v, 2) for k, v in meter.used.items()}
    # Up from --rate while the target holds; down from it while it does not.
    steps = []
    rate, highest, failed = args.rate, 0.0, float("inf")
    while MIN_RATE <= rate <= args.max_rate:
        step = fleet.load(rate=rate, duration=args.step_duration, warmup=1.0, tags=tags)
        steps.append(step)
        print(load_line(f"    step {rate:,.0f}/s", step))
        if held(step):
            highest = max(highest, step["offered"])
            rate = round(rate * args.step_factor)
            if rate >= failed:
                break
        else:
            failed = min(failed, rate)
            if highest:
                break
            rate = round(rate / args.step_factor)
    meter = gc.CpuMeter(groups)
    meter.start()
    closed = fleet.load(inflight=args.inflight, duration=args.step_duration, warmup=1.0, tags=tags)
    meter.stop()
    print(load_line(f"Authorize, closed loop, {args.inflight} in flight", closed))
    print("\n".join(meter.lines(per=closed["answered"], unit="Authorize")))
    print(
        f"highest rate with p99 <= {TARGET_P99_MS:g} ms and no failure: {highest:,.0f}/s "
        f"(offered rates x{args.step_factor:g} up from {args.rate:,.0f}/s while the target "
        f"held, or down while it did not; {args.step_duration:g} s each)"
    )
    return {
        "at_rate": at_rate,
        "at_rate_cpu_s": cpu,
        "steps": steps,
        "highest_rate": highest,
        "closed": closed,
        "closed_cpu_s": {k: round(v, 2) for k, v in meter.used.items()},
    }


def held(run: dict[str, Any]) -> bool:
    return bool(
        run["latency_ms"].get("n")
        and run["latency_ms"]["p99"] <= TARGET_P99_MS
        and not run["errors"]
        and set(run["statuses"]) <= {"Accepted"}
    )


def load_line(label: str, run: dict[str, Any]) -> str:
    lat = run["latency_ms"]
    text = f"{label}: {run['rate']:,.1f}/s answered ({run['answered']:,} in {run['duration']:g} s)"
    if lat.get("n"):
        text += (
            f"; p50 {lat['p50']:.2f} ms  p90 {lat['p90']:.2f} ms  p99 {lat['p99']:.2f} ms  "
            f"max {lat['max']:.2f} ms"
        )
    lag = run.get("send_lag_ms", {})
    if lag.get("n"):
        text += f"; sent late p99 {lag['p99']:.2f} ms"
    if run["errors"] or set(run["statuses"]) - {"Accepted"}:
        text += f"; !! errors {run['errors']} {run['exceptions']}, answers {run['statuses']}"
    return text


# --- a lost badge ----------------------------------------------------------------------------


def lost_badges(
    args: argparse.Namespace, site: Site, fleet: StationFleet, groups: dict[str, Any]
) -> dict[str, Any]:
    """``--repeat`` reports (after one warm-up), each a different badge."""
    from django.db import transaction

    from doorkeep.badges.services import report_lost
    from doorkeep.chargers.models import Station
    from doorkeep.gateway import routing

    notices: list[tuple[float, float]] = []
    notify = routing.notify_stations

    def timed_notify(station_ids: Iterable[int]) -> None:
        started = time.monotonic()
        try:
            notify(station_ids)
        finally:
            notices.append((started, time.monotonic()))

    routing.notify_stations = timed_notify
    n = len(site.station_ids)
    print(f"\n-- a lost badge, {args.repeat} reports (after 1 warm-up), {n:,} stations --")
    print(gc.load_line())
    meter = gc.CpuMeter(groups)
    runs: list[dict[str, Any]] = []
    try:
        for run, (badge_id, uid) in enumerate(site.badges[: args.repeat + 1]):
            wait_synced(site.station_ids, timeout=120)
            if run == 1:
                meter.start()
            fleet.command("watch " + uid)
            notices.clear()
            commit: list[tuple[float, float]] = []
            called = time.monotonic()
            with transaction.atomic():
                # Registered first, so it runs first after the commit: the commit's time.
                transaction.on_commit(_stamp(commit))
                report_lost(site.world.owner, badge_id)
            returned = time.monotonic()
            got = fleet.command("wait", timeout=120)
            wait_synced(site.station_ids, timeout=120)
            committed, committed_wall = commit[0]
            arrivals = [t - committed for t in got["times"] if t is not None]
            recorded = [
                at.timestamp() - committed_wall
                for at in Station.objects.filter(pk__in=site.station_ids).values_list(
                    "last_push_at", flat=True
                )
                if at is not None
            ]
            measured = {
                "arrivals": arrivals,
                "last": max(arrivals) if arrivals else float("nan"),
                "missing": got["missing"],
                "pushes": got["pushes"],
                "last_recorded": max(recorded) if recorded else float("nan"),
                "in_transaction": committed - called,
                "call": returned - called,
                "notices_done": (notices[-1][1] - committed) if notices else float("nan"),
            }
            if run == 0:
                continue
            runs.append(measured)
            print(
                f"  #{run:>2} {uid}: Blocked at the last station {1000 * measured['last']:7.1f} ms"
                f", its ack recorded {1000 * measured['last_recorded']:7.1f} ms, notices taken "
                f"{1000 * measured['notices_done']:6.1f} ms after the commit; "
                f"{measured['pushes']:,} pushes"
                + (f"; !! {measured['missing']} stations missed it" if measured["missing"] else ""),
                flush=True,
            )
    finally:
        meter.stop()
        routing.notify_stations = notify

    def each(key: str) -> list[float]:
        return [r[key] for r in runs]

    per_station = [x for r in runs for x in r["arrivals"]]
    print(f"from the report's commit, over {len(runs)} reports:")
    print(gc.ms_line("    Blocked at the last station", each("last")))
    print(gc.ms_line("    Blocked at a station (each of them)", per_station))
    print(gc.ms_line("    the last acknowledgement recorded (Station)", each("last_recorded")))
    print(gc.ms_line("    the notices taken by the gateway", each("notices_done")))
    print(gc.ms_line("    report_lost, start -> commit", each("in_transaction")))
    print(gc.ms_line("    report_lost, start -> returned (notices included)", each("call")))
    pushes = statistics.fmean(r["pushes"] / n for r in runs) if runs else 0.0
    print(f"    SendLocalList a station received per report: {pushes:.2f}")
    print("\n".join(meter.lines(per=len(runs), unit="report")))
    return {
        "last_ms": gc.ms_summary(each("last")),
        "station_ms": gc.ms_summary(per_station),
        "last_recorded_ms": gc.ms_summary(each("last_recorded")),
        "notices_done_ms": gc.ms_summary(each("notices_done")),
        "in_transaction_ms": gc.ms_summary(each("in_transaction")),
        "missing": sum(r["missing"] for r in runs),
        "pushes_per_station": round(pushes, 3),
        "reports": len(runs),
        "cpu_s": {k: round(v, 2) for k, v in meter.used.items()},
        "wall_s": round(meter.wall, 1),
    }


# --- py-spy -------------------------------------------------------------------------------------


def profile_gateway(
    args: argparse.Namespace, site: Site, fleet: StationFleet, gateway: gc.Child, logdir: Path
) -> list[str]:
    """py-spy of the gateway during another open-loop window at --rate, then
    during lost-badge reports of the badges left."""
    from django.db import transaction

    from doorkeep.badges.services import report_lost

    py_spy = gc.find_py_spy(args.py_spy)
    if py_spy is None:
        line = "(py-spy not found: pip install py-spy into a venv and pass --py-spy PATH)"
        print(line)
        return [line]
    out: list[str] = []
    tags = [uid for _id, uid in site.badges[args.repeat + 1 :]] or ["04BEFFFFFFFFFF"]
    spy_out = logdir / "pyspy-authorize.txt"
    spy = gc.py_spy_record(py_spy, gateway.pid, args.duration + 2, spy_out)
    time.sleep(0.5)
    fleet.load(rate=args.rate, duration=args.duration, warmup=0.5, tags=tags)
    spy.wait(60)
    out += [f"\npy-spy of the gateway, Authorize at {args.rate:,.0f}/s:"]
    out += gc.py_spy_summary(spy_out) + spy_shares(spy_out)
    left = site.badges[args.repeat + 1 :]
    if left:
        spy_out = logdir / "pyspy-lost.txt"
        spy = gc.py_spy_record(py_spy, gateway.pid, 600, spy_out)
        time.sleep(0.5)
        for badge_id, uid in left[:10]:
            wait_synced(site.station_ids, timeout=120)
            fleet.command("watch " + uid)
            with transaction.atomic():
                report_lost(site.world.owner, badge_id)
            fleet.command("wait", timeout=120)
        wait_synced(site.station_ids, timeout=120)
        spy.send_signal(signal.SIGINT)
        spy.wait(30)
        out += [f"\npy-spy of the gateway, {min(len(left), 10)} lost badges:"]
        out += gc.py_spy_summary(spy_out) + spy_shares(spy_out)
    print("\n".join(out))
    return out


# (label, file, function): a stack counts for a label when one of its frames
# is that function of that file ("" for any); "not in a thread pool" counts
# the stacks with no thread pool worker in them.
SPY_PARTS = (
    ("the event loop's thread (not in a thread pool)", "", "!_worker"),
    ("  answers.authorize (from the held decisions)", "answers.py", "authorize"),
    ("database threads (Gateway.db)", "server.py", "Gateway.db.<locals>.call"),
    ("  reports.authorize (decided by the database)", "reports.py", "authorize"),
    ("  reports.decided_for (a site's decisions)", "reports.py", "decided_for"),
    ("  reports.record_answers (Authorize events)", "reports.py", "record_answers"),
    ("  reports.seen", "reports.py", "seen"),
    ("  csms._current (one station's list)", "csms.py", "_current"),
    ("  csms._current_many (a notice's lists)", "csms.py", "_current_many"),
    ("  lists.acknowledged", "lists.py", "acknowledged"),
    ("ocpp: the stations' calls (_handle_call)", "charge_point.py", "ChargePoint._handle_call"),
    ("ocpp: the gateway's calls to stations (call)", "", "StationPoint.call"),
    ("ocpp: schema validation (in the default executor)", "messages.py", "_validate_payload"),
    ("csms.receive", "csms.py", "receive"),
    ("websockets", "websockets/", ""),
)
HAND_OFFS = ("_worker", "_write_to_self", "_read_from_self", "Semaphore.acquire", "Condition.wait")


def _frame_matches(frame: str, where: str, name: str) -> bool:
    function, _, place = frame.partition(" (")
    return where in place and (not name or function == name or function.endswith("." + name))


def spy_shares(path: Path) -> list[str]:
    """Inclusive shares of a few frames that say where a station's message
    goes, and the thread hand-offs' own share (py-spy's raw output: one stack
    a line, then its count)."""
    if not path.exists():
        return []
    counts: Counter[str] = Counter()
    total = hand_offs = 0
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        total += count
        frames = [f for f in stack.split(";") if f]
        if frames and frames[-1].partition(" (")[0].rsplit(".", 1)[-1] in {
            h.rsplit(".", 1)[-1] for h in HAND_OFFS
        }:
            hand_offs += count
        for label, where, name in SPY_PARTS:
            if name.startswith("!"):
                found = not any(_frame_matches(f, where, name[1:]) for f in frames)
            else:
                found = any(_frame_matches(f, where, name) for f in frames)
            if found:
                counts[label] += count
    if not total:
        return []
    lines = ["where the samples are (inclusive):"]
    lines += [f"    {100 * counts[label] / total:5.1f}%  {label}" for label, _w, _n in SPY_PARTS]
    lines.append(
        f"    {100 * hand_offs / total:5.1f}%  thread hand-offs (self: a pool's worker waiting or "
        "waking, the loop's self-pipe)"
    )
    return lines


# --- the summary -------------------------------------------------------------------------------


def summary(args: argparse.Namespace, results: dict[str, Any]) -> dict[str, bool]:
    gw, floor = results["gateway"], results.get("floor")
    lat = gw["at_rate"]["latency_ms"]
    verdicts = {
        "authorize_p99": held(gw["at_rate"]),
        "lost_badge_p99": (
            gw["lost"]["reports"] == args.repeat
            and not gw["lost"]["missing"]
            and gw["lost"]["last_ms"]["p99"] <= TARGET_LOST_MS
        ),
    }
    print("\n== summary ==")
    rows = [("", "gateway", "floor (bare ocpp)", "ratio")]

    def cell(run: dict[str, Any] | None, key: str) -> str:
        if run is None:
            return "-"
        value = run["latency_ms"].get(key)
        return "-" if value is None else f"{value:.2f} ms"

    fat = floor["at_rate"] if floor else None
    rows.append(
        (
            f"Authorize at {args.rate:,.0f}/s offered, p50",
            cell(gw["at_rate"], "p50"),
            cell(fat, "p50"),
            "",
        )
    )
    rows.append(("    p99", cell(gw["at_rate"], "p99"), cell(fat, "p99"), ""))
    rows.append(("    max", cell(gw["at_rate"], "max"), cell(fat, "max"), ""))
    if floor:
        ratio = gw["highest_rate"] / floor["highest_rate"] if floor["highest_rate"] else 0.0
        verdicts["rate_ratio"] = ratio >= TARGET_RATIO
        closed_ratio = gw["closed"]["rate"] / max(floor["closed"]["rate"], 1e-9)
        rows.append(
            (
                f"highest rate, p99 <= {TARGET_P99_MS:g} ms (steps)",
                f"{gw['highest_rate']:,.0f}/s",
                f"{floor['highest_rate']:,.0f}/s",
                f"{ratio:.2f}",
            )
        )
        rows.append(
            (
                f"closed loop, {args.inflight} in flight",
                f"{gw['closed']['rate']:,.0f}/s",
                f"{floor['closed']['rate']:,.0f}/s",
                f"{closed_ratio:.2f}",
            )
        )
        rows.append(
            (
                "memory per idle station connection",
                f"{gw['memory']['per_station_kb']:.1f} KB",
                f"{floor['memory']['per_station_kb']:.1f} KB",
                "",
            )
        )
        rows.append(
            (
                "list push, last of the stations, p50 / p99",
                f"{gw['lost']['last_ms']['p50']:.0f} / {gw['lost']['last_ms']['p99']:.0f} ms",
                f"{floor['push_last_ms']['p50']:.0f} / {floor['push_last_ms']['p99']:.0f} ms",
                "",
            )
        )
    else:
        rows.append(("highest rate (steps)", f"{gw['highest_rate']:,.0f}/s", "-", ""))
        rows.append(
            ("memory per idle station", f"{gw['memory']['per_station_kb']:.1f} KB", "-", "")
        )
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    for row in rows:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
    print(
        f"\n{'PASS' if verdicts['authorize_p99'] else 'FAIL'}: Authorize at {args.rate:,.0f}/s "
        f"offered, p99 {lat.get('p99', float('nan')):.2f} ms (target <= {TARGET_P99_MS:g} ms, "
        "every answer Accepted)"
    )
    if floor and "rate_ratio" in verdicts:
        mark = "PASS" if verdicts["rate_ratio"] else "FAIL"
        print(
            f"{mark}: highest rate {gw['highest_rate']:,.0f}/s, "
            f"{gw['highest_rate'] / max(floor['highest_rate'], 1e-9):.2f} of the floor's "
            f"{floor['highest_rate']:,.0f}/s (target >= {TARGET_RATIO:g})"
        )
    lost, memory = gw["lost"], gw["memory"]
    print(
        f"{'PASS' if verdicts['lost_badge_p99'] else 'FAIL'}: a lost badge Blocked at the last of "
        f"{results['stations']:,} stations, p99 {lost['last_ms'].get('p99', float('nan')):.1f} ms "
        f"over {lost['reports']} reports (target <= {TARGET_LOST_MS:g} ms)"
    )
    print(
        f"memory: {memory['per_station_kb']:.1f} KB per idle station connection "
        f"(gateway RSS {memory['rss_before_mb']:.1f} -> {memory['rss_after_mb']:.1f} MB)"
    )
    print(gc.load_line())
    return verdicts


def _stamp(out: list[tuple[float, float]]) -> Callable[[], None]:
    """An on_commit callback noting when it ran (monotonic and wall clock)."""
    return lambda: out.append((time.monotonic(), time.time()))


def _me() -> list[int]:
    return [os.getpid()]


def other_benchmarks() -> list[str]:
    """Benchmarks of bench/ running beside this one (not its own children):
    two at once on 2 CPUs measure each other."""
    mine = {os.getpid(), *gc.children_of(os.getpid())}
    pid = os.getpid()
    while pid > 1:  # and the processes that started this one (timeout, a shell)
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        pid = int(fields[1])
        mine.add(pid)
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) in mine:
            continue
        with contextlib.suppress(OSError):
            argv = (entry / "cmdline").read_bytes().split(b"\0")
            script = next((a.decode(errors="replace") for a in argv if a.endswith(b".py")), "")
            if "bench/" in script and Path(script).parent.name == "bench":
                found.append(f"{entry.name} {Path(script).name}")
    return found


def warn_if_shared(phase: str) -> None:
    if others := other_benchmarks():
        print(f"!! {phase}: other benchmarks are running on this machine: {', '.join(others)}")


def command_line(child: gc.Child, text: str, timeout: float = 60) -> dict[str, Any]:
    """One command on a child's stdin (started with ``pipes``), its JSON answer."""
    stdin = child.proc.stdin
    assert stdin is not None
    stdin.write(text + "\n")
    stdin.flush()
    return gc.read_json_line(child, timeout)


# --- the station fleet: a process of ocpp ChargePoints ---------------------------------------


class StationFleet:
    """This script's ``fleet`` command in its own process, driven by JSON
    lines on its stdin and stdout: ``load {...}``, ``watch UID``, ``wait``,
    ``quit``."""

    def __init__(self, name: str, url: str, cp_ids: list[str], *, logdir: Path) -> None:
        ids_file = logdir / f"{name}.ids"
        ids_file.write_text("\n".join(cp_ids))
        argv = [
            sys.executable,
            str(Path(__file__).resolve()),
            "fleet",
            "--url",
            url,
            "--ids",
            str(ids_file),
            "--password",
            PASSWORD,
        ]
        self.child = gc.spawn(name, argv, logdir=logdir, pipes=True)

    def ready(self) -> dict[str, Any]:
        return gc.read_json_line(self.child, timeout=900)

    def command(self, text: str, timeout: float = 60) -> dict[str, Any]:
        return command_line(self.child, text, timeout)

    def load(self, **spec: Any) -> dict[str, Any]:
        timeout = 120 + 3 * (spec.get("duration", 0) + spec.get("warmup", 0))
        return self.command("load " + json.dumps(spec), timeout=timeout)

    def stop(self) -> dict[str, Any] | None:
        result = None
        if self.child.alive():
            with contextlib.suppress(Exception):
                result = self.command("quit", timeout=60)
        self.child.stop()
        return result


def _fleet_classes() -> Any:
    """The station's ChargePoint (imported in the fleet process only)."""
    from ocpp.routing import on
    from ocpp.v16 import ChargePoint, call_result
    from ocpp.v16.enums import Action

    class BenchStation(ChargePoint):
        """A station that keeps its local list and says when a list came."""

        def __init__(self, cp_id: str, ws: Any, index: int, fleet: Fleet) -> None:
            super().__init__(cp_id, ws, response_timeout=60)
            self.index, self.fleet = index, fleet
            self.version = 0
            self.entries: dict[str, str] = {}
            self.arrived = 0.0

        async def route_message(self, raw_msg: str) -> None:
            # The frame's arrival: a SendLocalList's handler runs after the
            # library parsed and validated it, before the next frame is read.
            self.arrived = time.monotonic()
            await super().route_message(raw_msg)

        @on(Action.get_local_list_version)
        def on_list_version(self, **_kw: Any) -> Any:
            return call_result.GetLocalListVersion(list_version=self.version)

        @on(Action.send_local_list)
        def on_send_local_list(self, list_version: int, update_type: str, **kw: Any) -> Any:
            entries = kw.get("local_authorization_list") or []
            if update_type == "Full":
                self.entries = {}
            for entry in entries:
                info = entry.get("id_tag_info")
                if info:
                    self.entries[entry["id_tag"]] = info.get("status", "")
                else:
                    self.entries.pop(entry["id_tag"], None)
            self.version = list_version
            self.fleet.list_came(self, entries)
            return call_result.SendLocalList(status="Accepted")

    return BenchStation


class Fleet:
    """The stations of the fleet process, and what the commands watch."""

    def __init__(self, count: int) -> None:
        self.stations: list[Any] = []
        self.count = count
        self.watch: str | None = None
        self.received: list[float | None] = [None] * count
        self.left = 0
        self.pushes = 0
        self.all_came = asyncio.Event()

    def start_watch(self, uid: str) -> None:
        self.watch, self.pushes = uid, 0
        self.received = [None] * len(self.stations)
        self.left = len(self.stations)
        self.all_came.clear()

    def list_came(self, station: Any, entries: list[dict[str, Any]]) -> None:
        self.pushes += 1
        if self.watch is None or self.received[station.index] is not None:
            return
        for entry in entries:
            if entry.get("id_tag") == self.watch and (
                (entry.get("id_tag_info") or {}).get("status") == "Blocked"
            ):
                self.received[station.index] = station.arrived
                self.left -= 1
                if self.left == 0:
                    self.all_came.set()
                return


async def _fleet(url: str, cp_ids: list[str], password: str, concurrency: int) -> None:
    """Connect and boot the stations, say how it went, then answer commands."""
    from ocpp.v16 import call
    from websockets.asyncio.client import connect

    BenchStation = _fleet_classes()
    gc.raise_open_files(len(cp_ids) + 1000)
    fleet = Fleet(len(cp_ids))
    gate = asyncio.Semaphore(concurrency)
    times: list[float] = []
    tasks: list[asyncio.Task[Any]] = []
    stations: list[Any] = [None] * len(cp_ids)

    async def one(index: int, cp_id: str) -> str:
        auth = base64.b64encode(f"{cp_id}:{password}".encode()).decode()
        error = ""
        for attempt in range(5):
            async with gate:
                started = time.perf_counter()
                try:
                    ws = await connect(
                        f"{url}/ocpp/{cp_id}",
                        subprotocols=["ocpp1.6"],  # type: ignore[list-item]
                        additional_headers={"Authorization": f"Basic {auth}"},
                        open_timeout=60,
                        ping_interval=None,
                        compression=None,
                        max_size=2**20,
                    )
                    station = BenchStation(cp_id, ws, index, fleet)
                    tasks.append(asyncio.create_task(station.start()))
                    await station.call(
                        call.BootNotification(
                            charge_point_model="Bench", charge_point_vendor="Doorkeep"
                        ),
                        suppress=False,
                    )
                    stations[index] = station
                    times.append(time.perf_counter() - started)
                    return ""
                except Exception as exc:
                    error = f"{type(exc).__name__}: {exc}"[:160]
            await asyncio.sleep(0.5 * (attempt + 1))
        return error

    started = time.perf_counter()
    errors = await asyncio.gather(*(one(i, cp_id) for i, cp_id in enumerate(cp_ids)))
    failed = Counter(e for e in errors if e)
    fleet.stations = [s for s in stations if s is not None]
    for i, station in enumerate(fleet.stations):
        station.index = i
    gc.settle_here()
    print(
        json.dumps(
            {
                "ready": len(fleet.stations),
                "failed": sum(failed.values()),
                "errors": dict(failed.most_common(3)),
                "seconds": round(time.perf_counter() - started, 2),
                "connect": gc.ms_summary(times),
                "concurrency": concurrency,
            }
        ),
        flush=True,
    )
    loop = asyncio.get_running_loop()
    while True:
        line = await loop.run_in_executor(None, sys.stdin.readline)
        command, _, rest = line.strip().partition(" ")
        if command == "load":
            answer = await _load(fleet.stations, **json.loads(rest))
        elif command == "watch":
            fleet.start_watch(rest.strip())
            answer = {"ok": True}
        elif command == "wait":
            if fleet.left:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(fleet.all_came.wait(), 100)
            answer = {
                "times": fleet.received,
                "missing": sum(1 for t in fleet.received if t is None),
                "pushes": fleet.pushes,
            }
            fleet.watch = None
        elif not line or command == "quit":
            done = [t for t in tasks if t.done()]
            print(
                json.dumps(
                    {
                        "online": sum(1 for t in tasks if not t.done()),
                        "errors": sum(1 for t in done if not t.cancelled() and t.exception()),
                    }
                ),
                flush=True,
            )
            break
        else:
            answer = {"error": f"unknown command {command!r}"}
        print(json.dumps(answer), flush=True)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*(s._connection.close() for s in fleet.stations), return_exceptions=True)


async def _load(
    stations: list[Any],
    *,
    duration: float,
    warmup: float,
    tags: list[str],
    rate: float | None = None,
    inflight: int | None = None,
) -> dict[str, Any]:
    """Authorize calls, open loop (``rate`` a second on a schedule) or closed
    (``inflight`` calls at all times). Calls planned (open) or sent (closed)
    in the window after ``warmup`` count."""
    from ocpp.v16 import call

    latencies: list[float] = []
    lags: list[float] = []
    statuses: Counter[str] = Counter()
    exceptions: Counter[str] = Counter()
    answered_in_window = [0]
    begin = time.perf_counter() + 0.05
    measure_from, until = begin + warmup, begin + warmup + duration
    n = len(stations)

    async def authorize(i: int, due: float) -> None:
        station, tag = stations[i % n], tags[i % len(tags)]
        sent = time.perf_counter()
        try:
            result = await station.call(call.Authorize(id_tag=tag), suppress=False)
            status = str(result.id_tag_info.get("status"))
        except Exception as exc:
            status = ""
            if due >= measure_from:
                exceptions[type(exc).__name__] += 1
        ended = time.perf_counter()
        if measure_from <= ended < until:
            answered_in_window[0] += 1
        if due < measure_from or due >= until:
            return
        if status:
            statuses[status] += 1
            latencies.append(ended - due)
            lags.append(sent - due)

    if rate:
        total = int(rate * (warmup + duration))
        running: set[asyncio.Task[None]] = set()
        i = 0
        while i < total:
            now = time.perf_counter()
            while i < total and begin + i / rate <= now:
                task = asyncio.create_task(authorize(i, begin + i / rate))
                running.add(task)
                task.add_done_callback(running.discard)
                i += 1
            if i < total:
                await asyncio.sleep(max(0.0, begin + i / rate - time.perf_counter()))
        while running:
            await asyncio.gather(*list(running), return_exceptions=True)
    else:
        assert inflight
        counter = iter(range(10**9))

        async def worker() -> None:
            while (now := time.perf_counter()) < until:
                await authorize(next(counter), now)

        await asyncio.sleep(max(0.0, begin - time.perf_counter()))
        await asyncio.gather(*(worker() for _ in range(inflight)))
    return {
        "offered": rate or 0.0,
        "inflight": inflight or 0,
        "duration": duration,
        "answered": len(latencies),
        "rate": round(answered_in_window[0] / duration, 1),
        "latency_ms": gc.ms_summary(latencies),
        "send_lag_ms": gc.ms_summary(lags),
        "statuses": dict(statuses),
        "exceptions": dict(exceptions),
        "errors": sum(exceptions.values()),
    }


def fleet_main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description="OCPP 1.6 stations for chargers.py")
    parser.add_argument("command", choices=["fleet"])
    parser.add_argument("--url", required=True)
    parser.add_argument("--ids", required=True, help="a file with one charge point id a line")
    parser.add_argument("--password", required=True)
    parser.add_argument("--concurrency", type=int, default=50)
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    cp_ids = [s for s in Path(args.ids).read_text().split() if s]
    asyncio.run(_fleet(args.url, cp_ids, args.password, args.concurrency))
    return 0


if __name__ == "__main__":
    if sys.argv[1:2] == ["fleet"]:
        sys.exit(fleet_main(sys.argv[1:]))
    sys.exit(main())
