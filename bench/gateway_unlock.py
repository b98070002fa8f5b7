"""Remote unlock through the HTTP API, the gateway and a simulated lock, and
back: POST /api/v1/entries/{id}/unlock with 32 concurrent clients while 1,000
simulated locks are connected. Target: at least 1,000 unlocks/s with p99 at
most 25 ms.

Set-up: 1,000 registered locks, each at its own entry; one resident holding a
phone key on all of them (rows written in bulk, as ``issue_key`` writes them);
device secrets through ``gateway.services.set_device_secret``. Processes on
free loopback ports: ``doorkeep gateway``, ``doorkeep serve --no-gateway``
(granian, WEB_WORKERS x WEB_THREADS), a process holding the 1,000
``SimulatedLock`` objects; this process is the HTTP load generator (raw
asyncio sockets, one keep-alive connection per client).

Measured in the same run, for the floor of this machine:
  0. its speed today: the CPU time of a fixed Python loop, and a byte sent to
     another process and back (the machine's speed varies from day to day);
  1. a bare websockets echo round trip (the same server options as the gateway);
  2. a trivial WSGI app under granian with the same workers and threads;
  3. a cheap authenticated Django API call (GET /api/v1/me);
  4. the gateway alone: its internal unlock URL, straight to the lock (what a
     web worker calls for each unlock);
  5. the full remote unlock, closed loop (each client sends again as soon as
     it has its answer: the most 32 clients get; their latency is then
     32 / rate by Little's law), with the CPU time each process used;
  6. open loop: --rate unlocks/s (the target's 1,000) offered on a schedule
     by the same 32 clients, latency counted from when each request was due
     (a server that falls behind is not flattered); --rates adds more rates.
     PASS/FAIL is this run's: every request answered, p99 <= 25 ms.
With --profile: the SQL queries of one unlock, a cProfile of the web side (in
this process, sequential unlocks), a breakdown inside the web workers under
the same load (granian serving ``gateway_common:timed_app``, which times every
SQL statement and the gateway call) and py-spy of the web workers and of the
gateway under load (py-spy from PATH, --py-spy, or /tmp/pyspy-venv). With
--sweep, more web configurations afterwards. On PostgreSQL the tables are
ANALYZEd after the bulk set-up, as autovacuum would.

    .venv/bin/python bench/gateway_unlock.py [--postgres] [--workers 2] [--threads 4]
        [--routing direct|redis] [--redis-url URL] [--gateway-db-threads N]
        [--sweep 4x4,4x2] [--duration 15] [--warmup 3] [--rate 1000] [--rates 250,500]
        [--profile] [--quiet-below 2]
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import os
import pstats
import signal
import sys
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _setup
import gateway_common as gc

TARGET_RATE = 1000.0  # unlocks per second
TARGET_P99_MS = 25.0
RESIDENT_EMAIL = "resident@example.com"


def parse_rates(text: str) -> list[float]:
    return [float(part) for part in text.split(",") if part.strip()]


def parse_sweep(text: str) -> list[tuple[int, int]]:
    configs = []
    for part in text.split(","):
        if part.strip():
            workers, _, threads = part.strip().partition("x")
            configs.append((int(workers), int(threads)))
    return configs


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--postgres", action="store_true", help="use a throw-away PostgreSQL db")
    parser.add_argument("--locks", type=int, default=1000)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--duration", type=float, default=15.0, help="measured seconds")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds before measuring")
    parser.add_argument("--workers", type=int, default=int(os.environ.get("WEB_WORKERS", "2")))
    parser.add_argument("--threads", type=int, default=int(os.environ.get("WEB_THREADS", "4")))
    parser.add_argument(
        "--gateway-db-threads",
        type=int,
        default=None,
        help="run the Gateway class with this many database threads (default: "
        "`doorkeep gateway` as it is, 8 threads)",
    )
    parser.add_argument(
        "--rate",
        type=float,
        default=TARGET_RATE,
        help="the open-loop run's offered unlocks/s (the target's 1,000 by default)",
    )
    parser.add_argument(
        "--rates",
        default="",
        help="more open-loop rates to measure afterwards (comma-separated unlocks/s)",
    )
    parser.add_argument("--routing", choices=("direct", "redis"), default="direct")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/14")
    parser.add_argument("--fleets", type=int, default=1, help="processes holding the locks")
    parser.add_argument(
        "--sweep",
        default="",
        help="after the main run, also measure these web configurations (WORKERSxTHREADS, "
        "comma-separated), each for --sweep-duration seconds",
    )
    parser.add_argument("--sweep-duration", type=float, default=10.0)
    parser.add_argument("--no-floor", action="store_true", help="skip the floor measurements")
    parser.add_argument("--profile", action="store_true", help="query count, cProfile, py-spy")
    gc.add_quiet_below(parser)
    parser.add_argument("--py-spy", default=None, help="the py-spy program")
    args = parser.parse_args()

    os.environ["DOORKEEP_GATEWAY_ROUTING"] = args.routing
    if args.routing == "redis":
        os.environ["REDIS_URL"] = args.redis_url
    os.environ["DOORKEEP_UNLOCK_TIMEOUT"] = "5"
    gc.raise_open_files()
    db = _setup.setup(postgres=args.postgres)
    logdir = db.tempdir / "logs"
    logdir.mkdir()

    print(f"== remote unlock through the gateway on {db.label}, {args.routing} routing ==")
    print(gc.load_line() + " at start")
    t0 = time.perf_counter()
    world, _resident, token = build_world(args.locks)
    entries = [lock.entry_id for lock in world.locks]
    lock_ids = [lock.pk for lock in world.locks]
    print(
        f"setup: {args.locks:,} locks at their own entries, a phone key on each for "
        f"{RESIDENT_EMAIL}, device secrets, in {time.perf_counter() - t0:.1f} s"
    )

    if analyzed := gc.analyze_postgres():
        print(analyzed)
    floors: dict[str, Any] = {}
    gc.wait_for_quiet(args.quiet_below)
    gc.settle_here()
    if not args.no_floor:
        floors = measure_floors(args, logdir, token)

    gw_port, web_port = gc.free_port(), gc.free_port()
    child_env = {"GATEWAY_PORT": str(gw_port), "PORT": str(web_port)}
    gateway = gc.start_gateway(
        gw_port, logdir=logdir, db_threads=args.gateway_db_threads, env=child_env
    )
    url = f"ws://{gc.LOOPBACK}:{gw_port}"
    serials = [lock.serial for lock in world.locks]
    t0 = time.perf_counter()
    fleets = [
        gc.Fleet(f"fleet{i}", url, serials[i :: args.fleets], logdir=logdir)
        for i in range(args.fleets)
    ]
    ready = [fleet.read() for fleet in fleets]
    connected = sum(r["ready"] for r in ready)
    print(
        f"{connected:,} of {args.locks:,} simulated locks connected and synced in "
        f"{time.perf_counter() - t0:.1f} s ({args.fleets} process(es); "
        f"connect p50 {ready[0]['connect'].get('p50', 0):.1f} ms, "
        f"p99 {ready[0]['connect'].get('p99', 0):.1f} ms)"
    )
    if connected != args.locks:
        print(f"!! not all locks connected: {[r['errors'] for r in ready]}")

    web = gc.start_web(
        web_port, logdir=logdir, workers=args.workers, threads=args.threads, env=child_env
    )
    from doorkeep.gateway.server import DB_THREADS

    print(
        f"web: doorkeep serve --no-gateway, {args.workers} worker(s) x {args.threads} "
        f"thread(s); gateway: "
        + ("`doorkeep gateway`" if args.gateway_db_threads is None else "Gateway class")
        + f" with {args.gateway_db_threads or DB_THREADS} db threads"
    )
    internal = internal_header()

    def gateway_request(n: int) -> gc.Request:
        lock_id = lock_ids[n % len(lock_ids)]
        path = f"/internal/unlock?lock={lock_id}&request={uuid.uuid4().hex}&timeout=5"
        return ("GET", path, [internal], b"")

    if not args.no_floor:
        result = asyncio.run(
            gc.run_load(
                gc.LOOPBACK,
                gw_port,
                gateway_request,
                clients=args.clients,
                duration=min(args.duration, 8),
                warmup=1,
                keepalive=False,
                classify=gateway_outcome,
            )
        )
        floors["gateway_direct"] = result.summary()
        print("\n-- 4. the gateway alone (its /internal/unlock, a connection each, as urllib) --")
        print("\n".join(gc.load_lines("gateway + lock, no web", result)))

    auth = f"Authorization: Bearer {token}"

    def unlock_request(n: int) -> gc.Request:
        return ("POST", f"/api/v1/entries/{entries[n % len(entries)]}/unlock", [auth], b"")

    groups = {
        "web (granian + workers)": web.tree,
        "gateway": gateway.tree,
        "lock fleet": lambda: [p for f in fleets for p in f.child.tree()],
        "load generator (this)": lambda: [os.getpid()],
    }
    if db.backend == "postgresql":
        groups["postgres (this database)"] = lambda: gc.postgres_backends(db.pg_name)
    if args.routing == "redis":
        groups["redis-server"] = lambda: gc.pids_named("redis-server")
    meter = gc.CpuMeter(groups)

    from doorkeep.events.models import Event

    events_before = Event.objects.filter(kind="access.granted").count()
    print(f"\n-- 5. remote unlock: POST /api/v1/entries/{{id}}/unlock, {len(entries):,} entries --")
    gc.wait_for_quiet(args.quiet_below)
    gc.settle_here()
    print(gc.load_line() + " before")

    main_result = metered_load(
        meter,
        web_port,
        unlock_request,
        clients=args.clients,
        duration=args.duration,
        warmup=args.warmup,
    )
    print("\n".join(gc.load_lines("remote unlock", main_result)))
    if main_result.errors:
        print("the web server's log ends with:\n" + web.log_tail(15))
    print("\n".join(meter.lines(main_result.ok, "unlock")))
    print(
        f"threads: web workers {[gc.threads_of(p) for p in gc.children_of(web.pid)]}, "
        f"gateway {gc.threads_of(gateway.pid)}"
    )
    stats = [fleet.command("stats") for fleet in fleets]
    opened = sum(s["opened"] for s in stats)
    events = Event.objects.filter(kind="access.granted").count() - events_before
    print(
        f"locks opened {opened:,} times (warm-up included); {events:,} access.granted events; "
        f"locks online {sum(s['online'] for s in stats):,}"
    )
    print(gc.load_line() + " after")

    # Open loop: the target's rate offered on a schedule by the same clients,
    # latency counted from when each request was due; then the other rates.
    paced: list[dict[str, Any]] = []
    target_result: gc.LoadResult | None = None
    for rate in [args.rate, *parse_rates(args.rates)]:
        print(
            f"\n-- 6. open loop: {rate:,.0f} unlocks/s offered by {args.clients} clients "
            f"(latency from when each was due) --"
        )
        gc.wait_for_quiet(args.quiet_below)
        paced_meter = gc.CpuMeter(groups)
        result = metered_load(
            paced_meter,
            web_port,
            unlock_request,
            clients=args.clients,
            duration=args.duration,
            warmup=args.warmup,
            rate=rate,
        )
        print("\n".join(gc.load_lines(f"remote unlock at {rate:,.0f}/s", result)))
        print("\n".join(paced_meter.lines(result.ok, "unlock")))
        paced.append({"offered": rate, **result.summary()})
        if target_result is None:
            target_result = result
    assert target_result is not None
    lat = target_result.summary()["latency_ms"]
    passed = (
        target_result.rate >= TARGET_RATE * 0.99  # every request of the window answered, ok
        and lat.get("p99", 1e9) <= TARGET_P99_MS
        and target_result.errors == 0
        and args.rate >= TARGET_RATE
    )
    verdict = "PASS" if passed else "FAIL"
    print(
        f"\n{verdict}: {target_result.rate:,.1f} unlocks/s answered of {args.rate:,.0f} offered "
        f"(target >= {TARGET_RATE:,.0f}), p99 {lat.get('p99', float('nan')):.2f} ms "
        f"(target <= {TARGET_P99_MS:g}), errors {target_result.errors}; closed loop (as fast "
        f"as {args.clients} clients go): {main_result.rate:,.1f}/s, "
        f"p99 {main_result.summary()['latency_ms'].get('p99', float('nan')):.2f} ms"
    )

    profile: dict[str, Any] = {}
    if args.profile:
        profile = run_profile(args, web, gateway, web_port, unlock_request, entries, token, logdir)

    sweep: list[dict[str, Any]] = []
    configs = parse_sweep(args.sweep)
    if configs:
        print(f"\n-- sweep: {args.sweep_duration:g} s each after a {args.warmup:g} s warm-up --")
        print(
            f"{'workers x threads':<18} {'unlocks/s':>10} {'p50 ms':>8} {'p90 ms':>8} "
            f"{'p99 ms':>8} {'max ms':>8} {'errors':>7}  web CPU ms/unlock"
        )
        for workers, threads in configs:
            web.stop()
            web = gc.start_web(
                web_port,
                logdir=logdir,
                workers=workers,
                threads=threads,
                env=child_env,
                name=f"web-{workers}x{threads}",
            )
            sweep_meter = gc.CpuMeter({"web": web.tree})

            result = metered_load(
                sweep_meter,
                web_port,
                unlock_request,
                clients=args.clients,
                duration=args.sweep_duration,
                warmup=args.warmup,
            )
            s = result.summary()
            lat_s = s["latency_ms"]
            per = 1000 * sweep_meter.used["web"] / max(result.ok, 1)
            print(
                f"{workers:>3} x {threads:<12} {s['rate']:>10,.1f} {lat_s.get('p50', 0):>8.2f} "
                f"{lat_s.get('p90', 0):>8.2f} {lat_s.get('p99', 0):>8.2f} "
                f"{lat_s.get('max', 0):>8.2f} {s['errors']:>7}  {per:.2f}"
            )
            sweep.append({"workers": workers, "threads": threads, **s, "web_cpu_ms": round(per, 2)})

    for fleet in fleets:
        fleet.stop()
    web.stop()
    gateway.stop()
    _setup.emit_result(
        "gateway_unlock",
        db.backend,
        routing=args.routing,
        workers=args.workers,
        threads=args.threads,
        passed=passed,
        **main_result.summary(),
        cpu={k: round(v, 2) for k, v in meter.used.items()},
        floors=floors,
        profile=profile,
        sweep=sweep,
        open_loop=paced,
        load=round(os.getloadavg()[0], 2),
    )
    return 0 if passed else 1


def metered_load(
    meter: gc.CpuMeter,
    port: int,
    make: Any,
    *,
    clients: int,
    duration: float,
    warmup: float,
    rate: float | None = None,
) -> gc.LoadResult:
    """run_load, with ``meter`` reading CPU use over the measured window."""

    async def run() -> gc.LoadResult:
        task = asyncio.create_task(
            gc.run_load(
                gc.LOOPBACK,
                port,
                make,
                clients=clients,
                duration=duration,
                warmup=warmup,
                rate=rate,
            )
        )
        await asyncio.sleep(warmup)
        meter.start()
        result = await task
        meter.stop()
        return result

    return asyncio.run(run())


def build_world(locks: int) -> tuple[_setup.World, Any, str]:
    """The locks (real services), the resident's phone keys (bulk, in the
    shape issue_key writes), the device secrets and the resident's API token."""
    from django.db import transaction
    from django.db.models import F
    from django.utils import timezone

    from doorkeep.accounts.services import create_token, create_user
    from doorkeep.events.models import Event, EventKind
    from doorkeep.gateway.services import set_device_secret
    from doorkeep.keys.models import Credential, CredentialKind, Key, KeyCredential, Person
    from doorkeep.locks.models import Lock

    world = _setup.make_world(locks)
    resident = create_user(RESIDENT_EMAIL, _setup.PASSWORD, name="Rita Resident")
    now = timezone.now()
    with transaction.atomic():
        person = Person.objects.create(
            organization=world.org, user=resident, name=resident.name, email=resident.email
        )
        credential = Credential.objects.create(
            person=person, kind=CredentialKind.PHONE, lookup=str(person.pk), display=person.email
        )
        keys = Key.objects.bulk_create(
            [
                Key(
                    lock=lock,
                    organization=world.org,
                    lock_owner=world.org,
                    person=person,
                    issued_by=world.owner,
                    issued_at=now,
                )
                for lock in world.locks
            ],
            batch_size=500,
        )
        KeyCredential.objects.bulk_create(
            [
                KeyCredential(
                    key=key,
                    credential=credential,
                    lock=lock,
                    kind=CredentialKind.PHONE,
                    lookup=str(person.pk),
                    device_lookup="",
                )
                for key, lock in zip(keys, world.locks, strict=True)
            ],
            batch_size=500,
        )
        Lock.objects.filter(pk__in=[lock.pk for lock in world.locks]).update(
            credential_version=F("credential_version") + 1
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
                    summary=f"Key issued to {person.name} (phone)",
                    data={"credentials": ["phone"]},
                )
                for key, lock in zip(keys, world.locks, strict=True)
            ],
            batch_size=500,
        )
        for lock in world.locks:
            set_device_secret(lock, gc.DEVICE_SECRET)
    _row, token = create_token(resident, "bench")
    return world, resident, token


def internal_header() -> str:
    from doorkeep.gateway.internal import internal_token

    return f"X-Doorkeep-Internal: {internal_token()}"


def gateway_outcome(status: int, body: bytes) -> str:
    import json

    if status != 200:
        return str(status)
    try:
        answer = json.loads(body)
    except ValueError:
        return "200 unreadable"
    return "200" if answer.get("ok") else f"200 {answer.get('error')}"


def measure_floors(args: argparse.Namespace, logdir: Path, token: str) -> dict[str, Any]:
    floors: dict[str, Any] = {}
    floors["machine"] = gc.machine_speed()
    print("\n-- floor 0. this machine's speed today --")
    print(gc.machine_speed_line(floors["machine"]))
    port = gc.free_port()
    echo = gc.start_echo(port, logdir=logdir)
    result = asyncio.run(
        gc.echo_floor(f"ws://{gc.LOOPBACK}:{port}", clients=args.clients, duration=5)
    )
    echo.stop()
    floors["ws_echo"] = result
    single, many = result["single"], result["concurrent"]
    print("\n-- floor 1. bare websockets echo round trip (140-byte text frames) --")
    print(
        f"one connection: {result['single_rate']:,.0f} round trips/s, p50 {single['p50']:.3f} ms, "
        f"p99 {single['p99']:.3f} ms"
    )
    print(
        f"{args.clients} connections at once: {result['concurrent_rate']:,.0f} round trips/s, "
        f"p50 {many['p50']:.3f} ms, p99 {many['p99']:.3f} ms, max {many['max']:.3f} ms"
    )

    port = gc.free_port()
    floor_web = gc.start_floor_web(port, logdir=logdir, workers=args.workers, threads=args.threads)
    result_http = asyncio.run(
        gc.run_load(
            gc.LOOPBACK,
            port,
            lambda n: ("POST", "/floor", [], b""),
            clients=args.clients,
            duration=5,
            warmup=1,
        )
    )
    floor_web.stop()
    floors["wsgi_trivial"] = result_http.summary()
    print(f"\n-- floor 2. a trivial WSGI app under granian ({args.workers} x {args.threads}) --")
    print("\n".join(gc.load_lines("trivial POST", result_http)))

    port = gc.free_port()
    web = gc.start_web(
        port, logdir=logdir, workers=args.workers, threads=args.threads, name="web-floor"
    )
    auth = f"Authorization: Bearer {token}"
    result_me = asyncio.run(
        gc.run_load(
            gc.LOOPBACK,
            port,
            lambda n: ("GET", "/api/v1/me", [auth], b""),
            clients=args.clients,
            duration=5,
            warmup=1,
        )
    )
    web.stop()
    floors["django_me"] = result_me.summary()
    print(
        f"\n-- floor 3. Django: GET /api/v1/me with the bearer token ({args.workers} x "
        f"{args.threads}) --"
    )
    print("\n".join(gc.load_lines("GET /api/v1/me", result_me)))
    return floors


def run_profile(
    args: argparse.Namespace,
    web: gc.Child,
    gateway: gc.Child,
    web_port: int,
    unlock_request: Any,
    entries: list[int],
    token: str,
    logdir: Path,
) -> dict[str, Any]:
    """Where the time of an unlock goes: SQL queries, an in-process cProfile of
    the web side, and py-spy of the web workers and the gateway under load."""
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    out: dict[str, Any] = {}
    client = Client()
    auth = {"HTTP_AUTHORIZATION": f"Bearer {token}"}
    print("\n-- profile 1. the SQL queries of one remote unlock (web side, in this process) --")
    client.post(f"/api/v1/entries/{entries[0]}/unlock", **auth)  # warm: connection, caches
    with CaptureQueriesContext(connection) as ctx:
        response = client.post(f"/api/v1/entries/{entries[1]}/unlock", **auth)
    assert response.status_code == 200, (response.status_code, response.content[:200])
    kinds: Counter[str] = Counter()
    for query in ctx.captured_queries:
        sql = query["sql"]
        verb = sql.split()[0].upper()
        table = ""
        for marker in (" FROM ", "INTO ", "UPDATE "):
            if marker in sql.upper():
                rest = sql[sql.upper().index(marker) + len(marker) :].split()
                table = rest[0].strip('"') if rest else ""
                break
        kinds[f"{verb} {table}".strip()] += 1
        print(f"    {sql[:150]}")
    print(f"{len(ctx.captured_queries)} queries: {dict(kinds)}")
    out["queries"] = len(ctx.captured_queries)

    n = 300
    print(
        f"\n-- profile 2. cProfile of {n} sequential unlocks through doorkeep.wsgi "
        "(what granian serves), in this process --"
    )
    from doorkeep.wsgi import application

    def wsgi_unlock(entry_id: int) -> None:
        environ = {
            "REQUEST_METHOD": "POST",
            "PATH_INFO": f"/api/v1/entries/{entry_id}/unlock",
            "SCRIPT_NAME": "",
            "QUERY_STRING": "",
            "SERVER_NAME": "127.0.0.1",
            "SERVER_PORT": str(web_port),
            "SERVER_PROTOCOL": "HTTP/1.1",
            "HTTP_AUTHORIZATION": f"Bearer {token}",
            "CONTENT_LENGTH": "0",
            "wsgi.input": io.BytesIO(b""),
            "wsgi.errors": sys.stderr,
            "wsgi.url_scheme": "http",
            "wsgi.version": (1, 0),
            "wsgi.multithread": True,
            "wsgi.multiprocess": True,
            "wsgi.run_once": False,
        }
        statuses: list[str] = []
        body = b"".join(application(environ, lambda status, headers: statuses.append(status)))
        assert statuses[0].startswith("200"), (statuses, body[:200])

    profiler = cProfile.Profile()
    started = time.perf_counter()
    profiler.enable()
    for i in range(n):
        wsgi_unlock(entries[i % len(entries)])
    profiler.disable()
    elapsed = time.perf_counter() - started
    print(
        f"{n} unlocks in {elapsed:.2f} s: {1000 * elapsed / n:.2f} ms each (one client, "
        "in-process, profiler on)"
    )
    text = io.StringIO()
    stats = pstats.Stats(profiler, stream=text)
    stats.sort_stats("cumulative").print_stats(
        r"doorkeep|routing|websockets|"
        r"ninja/operation|django/db/models/query.py",
        30,
    )
    print("\n".join(line for line in text.getvalue().splitlines()[-45:] if line.strip()))
    text = io.StringIO()
    stats = pstats.Stats(profiler, stream=text)
    stats.sort_stats("tottime").print_stats(15)
    print("\n".join(line for line in text.getvalue().splitlines()[-22:] if line.strip()))
    out["sequential_ms"] = round(1000 * elapsed / n, 2)

    out["breakdown"] = run_breakdown(args, web, unlock_request, logdir)
    py_spy = gc.find_py_spy(args.py_spy)
    if py_spy is None:
        print("\n(py-spy not found: pip install py-spy into a venv and pass --py-spy PATH)")
        return out
    seconds = 8
    print(f"\n-- profile 4. py-spy, {seconds} s under the same load (profiler on) --")
    web_out, gw_out = logdir / "pyspy-web.txt", logdir / "pyspy-gateway.txt"

    async def under_spy() -> gc.LoadResult:
        task = asyncio.create_task(
            gc.run_load(
                gc.LOOPBACK,
                web_port,
                unlock_request,
                clients=args.clients,
                duration=seconds + 2,
                warmup=1,
            )
        )
        await asyncio.sleep(1.5)
        spies = [
            gc.py_spy_record(py_spy, web.pid, seconds, web_out, subprocesses=True),
            gc.py_spy_record(py_spy, gateway.pid, seconds, gw_out),
        ]
        result = await task
        for spy in spies:
            spy.wait(30)
        return result

    result = asyncio.run(under_spy())
    print("\n".join(gc.load_lines("remote unlock under py-spy", result)))
    print("\nweb workers:")
    print("\n".join(gc.py_spy_summary(web_out)))
    print("\ngateway:")
    print("\n".join(gc.py_spy_summary(gw_out)))
    return out


def run_breakdown(
    args: argparse.Namespace, web: gc.Child, unlock_request: Any, logdir: Path
) -> dict[str, Any]:
    """The same load against the same Django app with timers around every SQL
    statement and the gateway call (granian, same workers and threads; the
    regular web server pauses meanwhile)."""
    seconds = 8
    print(
        f"\n-- profile 3. where a request's time goes inside the web workers, {seconds} s "
        "under the same load (timed app) --"
    )
    stats_dir = logdir / "timed"
    stats_dir.mkdir(exist_ok=True)
    port = gc.free_port()
    os.killpg(web.pid, signal.SIGSTOP)  # the regular web server and its workers pause
    try:
        timed = gc.start_timed_web(
            port, logdir=logdir, workers=args.workers, threads=args.threads, stats_dir=stats_dir
        )
        snapshots: list[dict[str, list[float]]] = []

        async def run() -> gc.LoadResult:
            task = asyncio.create_task(
                gc.run_load(
                    gc.LOOPBACK,
                    port,
                    unlock_request,
                    clients=args.clients,
                    duration=seconds,
                    warmup=args.warmup,
                )
            )
            await asyncio.sleep(args.warmup + 0.6)
            snapshots.append(gc.read_timed(stats_dir))
            result = await task
            await asyncio.sleep(0.6)
            snapshots.append(gc.read_timed(stats_dir))
            return result

        result = asyncio.run(run())
        timed.stop()
    finally:
        os.killpg(web.pid, signal.SIGCONT)
    print("\n".join(gc.load_lines("remote unlock, timed app", result)))
    if result.errors:
        print("the timed web server's log ends with:\n" + timed.log_tail(15))
    print("\n".join(gc.timed_lines(snapshots[0], snapshots[1])))
    return {"rate": round(result.rate, 1), "latency_ms": result.summary()["latency_ms"]}


if __name__ == "__main__":
    sys.exit(main())
