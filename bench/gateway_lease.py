"""A dead gateway's locks shown offline within a few seconds: a gateway killed
with -9 renews its lease no more, and a surviving gateway's lease round
records its locks offline, each with an event (gateway/leases.py, decision
0024). Target: every device offline within lease + renewal interval + 2 s of
the kill (10 s + 2 s with the default 8-second lease).

Set-up: one organization with 1,000 registered locks (real services) and
their device secrets. Two gateways run as real processes, ``doorkeep gateway
--id gw-b`` for the whole run and ``--id gw-aN``, both with
DOORKEEP_GATEWAY_LEASE_SECONDS (the default, or ``--lease``). The locks live
in another process (``gateway_common.py fleet``) and connect to gw-aN with
``SimulatedLock.connect()`` only: when their gateway dies they stay away, as
locks that lost their power with it would (no ``stay_connected``), so only
the lease can show them offline.

Each round (``--rounds``, 3 by default): start gw-aN, connect the locks to it
and check that every lock's Device row is online under gw-aN; wait a random
part of the renewal interval (so that the kill falls anywhere in gw-aN's
renewal cycle), ``kill -9`` it, and from the kill poll the database every
50 ms until every Device row is offline, each lock has its
DEVICE_DISCONNECTED event whose reason names gw-aN, and gw-aN's GatewayLease
row is gone. The lease row left by the dead gateway says when it ran out;
the events' own times say when the sweep wrote them. min / median / max over
the rounds; the target applies to the slowest.

The floor, in the same run: the lease arithmetic (a lease runs out between
lease - interval and lease after the kill, a survivor looks every interval:
the sweep starts between lease - interval and lease + interval after the
kill, lease on average), and the sweep's work alone (``leases.sweep()`` in
this process on the same database, an expired lease row of a made-up gateway
holding the same 1,000 Device rows; the offline write alone, its SELECT ...
FOR UPDATE and UPDATE; the events are the rest); the machine's speed.

    .venv/bin/python bench/gateway_lease.py [--postgres] [--locks 1000] [--rounds 3]
        [--lease SECONDS] [--seed 1] [--quiet-below LOAD]
"""

from __future__ import annotations

import argparse
import os
import random
import re
import signal
import statistics
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _setup
import gateway_common as gc

POLL = 0.05  # seconds between looks at the database
SLACK = 2.0  # the target: lease + renewal interval + this


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--postgres", action="store_true", help="use a throw-away PostgreSQL db")
    parser.add_argument("--locks", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3, help="kills, each of a new gw-a")
    parser.add_argument(
        "--lease",
        type=int,
        default=None,
        metavar="SECONDS",
        help="DOORKEEP_GATEWAY_LEASE_SECONDS for both gateways (default: the setting's, 8)",
    )
    parser.add_argument("--seed", type=int, default=1, help="for the wait before each kill")
    gc.add_quiet_below(parser)
    args = parser.parse_args()
    if args.lease is not None:
        os.environ["DOORKEEP_GATEWAY_LEASE_SECONDS"] = str(args.lease)  # here and the children

    gc.raise_open_files(args.locks * 2 + 2000)
    db = _setup.setup(postgres=args.postgres)
    logdir = db.tempdir / "logs"
    logdir.mkdir()
    from doorkeep.gateway import leases
    from doorkeep.gateway.services import set_device_secret

    lease_s, renew_s = leases.seconds(), leases.renew_every()
    target_s = lease_s + renew_s + SLACK
    print(f"== a dead gateway's {args.locks:,} locks shown offline, on {db.label} ==")
    print(gc.load_line() + " at start")
    t0 = time.perf_counter()
    world = _setup.make_world(args.locks)
    for lock in world.locks:
        set_device_secret(lock, gc.DEVICE_SECRET)
    print(f"setup: {args.locks:,} locks through the services in {time.perf_counter() - t0:.1f} s")
    if analyzed := gc.analyze_postgres():
        print(analyzed)
    gc.wait_for_quiet(args.quiet_below)

    # --- the floor ------------------------------------------------------------------------
    speed = gc.machine_speed()
    floor = sweep_floor(world, args.rounds)
    print("\nfloor, by design and measured in this run:")
    print(
        f"  lease {lease_s:g} s, renewed every {renew_s:g} s: a killed gateway's lease runs out "
        f"{lease_s - renew_s:g}-{lease_s:g} s after the kill (its last renewal was up to one "
        f"interval before), and a surviving gateway looks every {renew_s:g} s: the sweep "
        f"starts {lease_s - renew_s:g}-{lease_s + renew_s:g} s after the kill by design, "
        f"{lease_s:g} s on average"
    )
    print(
        f"  the sweep's work, here in one thread on the same database, {args.locks:,} devices "
        f"({floor['repeats']} times): leases.sweep() {ms_range(floor['sweep_ms'])} "
        f"({floor['statements']:,} SQL statements); the offline write alone (SELECT ... FOR "
        f"UPDATE, UPDATE; committed) {ms_range(floor['flip_ms'])}; so the {args.locks:,} events "
        f"about {statistics.median(floor['sweep_ms']) - statistics.median(floor['flip_ms']):,.0f}"
        " ms"
    )
    print("  machine: " + gc.machine_speed_line(speed))

    # --- the gateways ---------------------------------------------------------------------
    env = {"DOORKEEP_GATEWAY_LEASE_SECONDS": f"{lease_s:g}", "LOG_LEVEL": "INFO"}
    survivor, _port = start_gateway("gw-b", env, logdir)
    print(f"\ngw-b (survivor) up, pid {survivor.pid}; lease {lease_s:g} s for both gateways")
    rng = random.Random(args.seed)
    rounds: list[dict[str, Any]] = []
    for n in range(1, args.rounds + 1):
        gid = f"gw-a{n}"
        one = kill_round(world, gid, env, logdir, rng.uniform(0, renew_s), target_s)
        rounds.append(one)
        print(round_line(n, gid, one, target_s), flush=True)
    survivor_alive = survivor.alive()

    # --- verdict --------------------------------------------------------------------------
    done = [r for r in rounds if r.get("offline_s") is not None]
    passed = (
        len(done) == len(rounds)
        and all(r["offline_s"] <= target_s and not r["problems"] for r in rounds)
        and survivor_alive
    )
    summary: dict[str, Any] = {}
    floor_flip = statistics.median(floor["flip_ms"])
    if done:
        print(
            f"\n{len(done)} of {len(rounds)} rounds complete; from the kill (min / median / max):"
        )
        for key, label in (
            ("offline_s", "every Device row offline (seen)"),
            ("events_s", "every lock's event, naming the gateway (seen)"),
            ("lease_gone_s", "the dead gateway's lease row gone (seen)"),
            ("expired_s", "  its lease ran out (its expires_at)"),
            ("first_event_s", "  first event written (its time)"),
            ("last_event_s", "  last event written (its time)"),
        ):
            values = [r[key] for r in done]
            summary[key] = three(values)
            print(f"  {label:<48} {fmt3(values)}")
        by_design = [r["expired_s"] for r in done if "expired_s" in r]
        looked = [r["first_event_s"] - r["expired_s"] for r in done if "expired_s" in r]
        work = [r["offline_s"] - r["first_event_s"] for r in done]
        if by_design and looked:
            print(
                "  the parts (medians of the rounds): "
                f"{statistics.median(by_design):.2f} s until the lease ran out and "
                f"{statistics.median(looked):.2f} s until the survivor's round wrote the first "
                f"event (waiting by design, the offline write included: {floor_flip:,.0f} ms "
                f"alone), then {statistics.median(work) * 1000:,.0f} ms for the events, the "
                f"commit and this {POLL * 1000:.0f} ms poll (floor: sweep() alone "
                f"{statistics.median(floor['sweep_ms']):,.0f} ms)"
            )
    for n, r in enumerate(rounds, 1):
        for problem in r["problems"]:
            print(f"!! round {n}: {problem}")
    if not survivor_alive:
        print(f"!! gw-b stopped:\n{survivor.log_tail()}")
    worst = max((r["offline_s"] for r in done), default=None)
    print(
        f"\n{'PASS' if passed else 'FAIL'}: every device of the dead gateway offline within "
        f"{worst if worst is None else f'{worst:.2f}'} s of the kill (slowest of "
        f"{len(rounds)}), target <= {target_s:g} s (lease {lease_s:g} + renewal {renew_s:g} + "
        f"{SLACK:g})"
    )
    print(gc.load_line() + " at the end")
    if not passed:
        print(f"logs in {logdir}")
        print(f"-- gw-b --\n{survivor.log_tail(12)}")
    _setup.emit_result(
        "gateway_lease",
        db.backend,
        passed=passed,
        locks=args.locks,
        rounds_done=len(done),
        lease_s=lease_s,
        renew_s=renew_s,
        target_s=target_s,
        offline_s_max=round(worst, 3) if worst is not None else None,
        offline_s_median=summary.get("offline_s", {}).get("median"),
        sweep_ms_median=round(statistics.median(floor["sweep_ms"]), 1),
        flip_ms_median=round(statistics.median(floor["flip_ms"]), 1),
        figures=summary,
        per_round=rounds,
        floor=floor,
        machine=speed,
        load=round(os.getloadavg()[0], 2),
    )
    return 0 if passed else 1


# --- the floor: the sweep's work in this process -------------------------------------------


def sweep_floor(world: _setup.World, repeats: int) -> dict[str, Any]:
    """``leases.sweep()`` of a made-up gateway whose lease ran out a second
    ago, holding every Device row of the world; then the offline write alone
    (``leases._flip``, what the sweep does before the events). Before any
    gateway runs: nobody else sweeps. The rows are left offline, as a lock's
    first connection finds them."""
    from django.db import connection, transaction
    from django.utils import timezone

    from doorkeep.gateway import leases
    from doorkeep.gateway.models import Device, GatewayLease

    devices = Device.objects.filter(lock__organization=world.org)
    sweeps: list[float] = []
    flips: list[float] = []
    statements = [0]

    def count(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        statements[0] += 1
        return execute(sql, params, many, context)

    for n in range(repeats + 1):  # the first warms up
        fake = f"bench-floor-{n}"
        now = timezone.now()
        devices.update(online=True, gateway=fake, gateway_url="http://127.0.0.1:9")
        GatewayLease.objects.create(
            gateway=fake,
            url="http://127.0.0.1:9",
            started_at=now - timedelta(seconds=60),
            renewed_at=now - timedelta(seconds=10),
            expires_at=now - timedelta(seconds=1),
        )
        statements[0] = 0
        started = time.perf_counter()
        with connection.execute_wrapper(count):
            swept = leases.sweep()
        took = time.perf_counter() - started
        if [s.locks for s in swept] != [len(world.locks)]:
            raise RuntimeError(f"the floor's sweep recorded {swept}, not {len(world.locks)} locks")
        devices.update(online=True, gateway=fake, gateway_url="http://127.0.0.1:9")
        started = time.perf_counter()
        with transaction.atomic():
            flipped = leases._flip(devices.filter(gateway=fake, online=True), online=False)
        flip_took = time.perf_counter() - started
        if len(flipped) != len(world.locks):
            raise RuntimeError(f"the offline write flipped {len(flipped)} rows")
        if n:
            sweeps.append(took * 1000)
            flips.append(flip_took * 1000)
    return {"repeats": repeats, "sweep_ms": sweeps, "flip_ms": flips, "statements": statements[0]}


# --- the gateways and a round ----------------------------------------------------------------


def start_gateway(gid: str, env: dict[str, str], logdir: Path) -> tuple[gc.Child, int]:
    """``doorkeep gateway --id GID`` on a free loopback port; the child and its port."""
    port = gc.free_port()
    argv = [gc.doorkeep_bin(), "gateway", "--host", gc.LOOPBACK, "--port", str(port)]
    argv += ["--id", gid, "--internal-url", f"http://{gc.LOOPBACK}:{port}"]
    child = gc.spawn(gid, argv, env=env, logdir=logdir)
    gc.wait_http(f"http://{gc.LOOPBACK}:{port}/healthz", child)
    return child, port


def names(reason: str, gid: str) -> bool:
    """Whether the event's reason names this gateway (gw-a1, not gw-a10)."""
    return re.search(rf"(?<![\w-]){re.escape(gid)}(?![\w-])", reason) is not None


def kill_round(
    world: _setup.World,
    gid: str,
    env: dict[str, str],
    logdir: Path,
    pause: float,
    target_s: float,
) -> dict[str, Any]:
    """Start ``gid``, connect the locks to it, kill it -9 after ``pause``
    seconds, and time what the survivor records."""
    from doorkeep.events.models import Event, EventKind
    from doorkeep.gateway.models import Device, GatewayLease

    ids = [lock.pk for lock in world.locks]
    devices = Device.objects.filter(lock__organization=world.org)
    result: dict[str, Any] = {"gateway": gid, "problems": [], "offline_s": None}
    gateway, port = start_gateway(gid, env, logdir)
    url = f"ws://{gc.LOOPBACK}:{port}"
    fleet = gc.Fleet(f"fleet-{gid}", url, [lock.serial for lock in world.locks], logdir=logdir)
    try:
        ready = fleet.read(timeout=600)
        result["connect_s"] = ready["seconds"]
        if ready["ready"] != len(ids):
            result["problems"].append(
                f"{ready['ready']:,} of {len(ids):,} locks connected: {ready['errors']}"
            )
            return result
        # Every Device row online under gid (the hello is recorded before the welcome).
        deadline = time.monotonic() + 30
        while devices.filter(online=True, gateway=gid).count() != len(ids):
            if time.monotonic() > deadline:
                held = devices.filter(online=True, gateway=gid).count()
                result["problems"].append(f"only {held:,} Device rows online under {gid}")
                return result
            time.sleep(POLL)
        if not GatewayLease.objects.filter(gateway=gid).exists():
            result["problems"].append(f"{gid} holds no lease")
            return result
        mark = Event.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
        time.sleep(pause)

        gateway.proc.send_signal(signal.SIGKILL)
        killed, killed_wall = time.monotonic(), time.time()
        gateway.proc.wait(10)
        result["pause_s"] = round(pause, 3)
        row = GatewayLease.objects.filter(gateway=gid).values("renewed_at", "expires_at").first()
        if row is None:
            result["problems"].append(f"{gid}'s lease was gone at the kill")
        else:
            result["renewed_before_kill_s"] = round(killed_wall - row["renewed_at"].timestamp(), 3)
            result["expired_s"] = round(row["expires_at"].timestamp() - killed_wall, 3)

        seen: dict[str, float] = {}
        events_q = Event.objects.filter(
            organization_id=world.org.pk, kind=EventKind.DEVICE_DISCONNECTED, pk__gt=mark
        )
        limit = killed + target_s + 30
        while len(seen) < 3 and time.monotonic() < limit:
            looked = time.monotonic()
            if "offline" not in seen and not devices.filter(online=True).exists():
                seen["offline"] = time.monotonic() - killed
            if "events" not in seen and events_q.count() >= len(ids):
                seen["events"] = time.monotonic() - killed
            if "lease" not in seen and not GatewayLease.objects.filter(gateway=gid).exists():
                seen["lease"] = time.monotonic() - killed
            time.sleep(max(0.0, looked + POLL - time.monotonic()))
        for key, what in (
            ("offline", "every Device row offline"),
            ("events", "every event"),
            ("lease", "the lease gone"),
        ):
            if key not in seen:
                result["problems"].append(f"not {what} {limit - killed:.0f} s after the kill")
        result["offline_s"] = round(seen["offline"], 3) if "offline" in seen else None
        result["events_s"] = round(seen["events"], 3) if "events" in seen else None
        result["lease_gone_s"] = round(seen["lease"], 3) if "lease" in seen else None

        # The events: one per lock, naming the dead gateway, and when they were written.
        events = list(events_q.values_list("lock_id", "received_at", "data"))
        per_lock: dict[int, list[datetime]] = {}
        for lock_id, received, data in events:
            if names(str((data or {}).get("reason", "")), gid):
                per_lock.setdefault(lock_id, []).append(received)
        missing = [i for i in ids if i not in per_lock]
        doubled = [i for i, times in per_lock.items() if len(times) > 1]
        others = len(events) - sum(len(t) for t in per_lock.values())
        if missing:
            result["problems"].append(f"{len(missing):,} locks without an event naming {gid}")
        if doubled:
            result["problems"].append(f"{len(doubled):,} locks with more than one event")
        if others:
            result["problems"].append(f"{others:,} other disconnection events")
        times = [t.timestamp() - killed_wall for ts in per_lock.values() for t in ts]
        if times:
            result["first_event_s"] = round(min(times), 3)
            result["last_event_s"] = round(max(times), 3)
        left = devices.exclude(gateway="").count()
        if left:
            result["problems"].append(f"{left:,} Device rows still name a gateway")
        return result
    finally:
        fleet.stop()
        gateway.stop()


def round_line(n: int, gid: str, r: dict[str, Any], target_s: float) -> str:
    if r.get("offline_s") is None:
        return f"round {n} ({gid}): incomplete: {'; '.join(r['problems'])}"
    mark = "ok" if r["offline_s"] <= target_s and not r["problems"] else "MISS"
    return (
        f"round {n} ({gid}, {r['connect_s']:.1f} s to connect the locks; killed "
        f"{r.get('renewed_before_kill_s', float('nan')):.2f} s after its last renewal): lease ran "
        f"out {r.get('expired_s', float('nan')):.2f} s after the kill; events written "
        f"{r.get('first_event_s', float('nan')):.2f}-{r.get('last_event_s', float('nan')):.2f} s; "
        f"seen: all offline {r['offline_s']:.2f} s, all events {r['events_s']:.2f} s, "
        f"lease gone {r['lease_gone_s']:.2f} s  [{mark}]"
    )


# --- small things ---------------------------------------------------------------------------


def three(values: list[float]) -> dict[str, float]:
    return {
        "min": round(min(values), 3),
        "median": round(statistics.median(values), 3),
        "max": round(max(values), 3),
    }


def fmt3(values: list[float]) -> str:
    t = three(values)
    return f"{t['min']:.2f} / {t['median']:.2f} / {t['max']:.2f} s"


def ms_range(values: list[float]) -> str:
    return (
        f"median {statistics.median(values):,.0f} ms (min {min(values):,.0f}, "
        f"max {max(values):,.0f})"
    )


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("interrupted: stopping every process, dropping the database", flush=True)
        sys.exit(130)
