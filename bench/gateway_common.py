"""Shared helpers of the gateway benchmarks (gateway_unlock.py, gateway_sync.py,
gateway_idle.py): child processes on free loopback ports, a fleet of simulated
locks in its own process, a keep-alive HTTP load generator on raw asyncio
sockets, CPU and memory readings from /proc, and the machine's floors (a bare
WebSockets echo server, a trivial WSGI app under granian).

Also a small command line, used by the benchmarks to start their helpers:

    python bench/gateway_common.py fleet --url ws://127.0.0.1:PORT --serials FILE
    python bench/gateway_common.py gateway --port PORT --db-threads 8
    python bench/gateway_common.py echo --port PORT
    python bench/gateway_common.py wsclients --url ws://127.0.0.1:PORT --count 2500

Nothing here imports Django at module level: granian imports ``floor_app``
(the WSGI floor) and ``timed_app`` (Django with timers) from this module.
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import contextlib
import itertools
import json
import os
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from _setup import percentile

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
VENV_BIN = Path(sys.executable).parent
LOOPBACK = "127.0.0.1"
DEVICE_SECRET = "dks_bench-device-secret"
CLK_TCK = os.sysconf("SC_CLK_TCK")

# --- the WSGI floor: granian imports this ---------------------------------------------


def floor_app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
    """The trivial HTTP endpoint: what the WSGI server costs by itself."""
    body = b'{"ok":true}'
    if environ.get("CONTENT_LENGTH"):
        environ["wsgi.input"].read(int(environ["CONTENT_LENGTH"]))
    start_response(
        "200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
    )
    return [body]


# --- the Django app with timers, for the breakdown of a request under load ------------

BUCKETS_MS = (1, 5, 20, 100)
_timed: dict[str, Any] = {}


def _timed_setup() -> Any:
    """Wrap doorkeep.wsgi.application: every SQL statement and the gateway call
    are timed; each worker writes its sums to $BENCH_STATS_DIR/<pid>.json every
    half second (read before and after a window, the difference is the window)."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "doorkeep.settings")
    import django

    django.setup()
    from django.db import connection, connections

    from doorkeep.gateway import routing
    from doorkeep.wsgi import application

    lock = threading.Lock()
    sums: dict[str, list[float]] = {}  # name: [count, seconds, max, *buckets]
    out = Path(os.environ["BENCH_STATS_DIR"]) / f"{os.getpid()}.json"
    written = [0.0]

    def add(name: str, seconds: float) -> None:
        with lock:
            row = sums.setdefault(name, [0.0, 0.0, 0.0] + [0.0] * (len(BUCKETS_MS) + 1))
            row[0] += 1
            row[1] += seconds
            row[2] = max(row[2], seconds)
            ms = seconds * 1000
            row[3 + sum(1 for b in BUCKETS_MS if ms >= b)] += 1

    def timer(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            words = sql.split()
            verb = words[0].upper() if words else "?"
            if verb == "INSERT" and len(words) > 2:
                verb = f"INSERT {words[2].strip(chr(34))}"
            elif verb == "UPDATE" and len(words) > 1:
                verb = f"UPDATE {words[1].strip(chr(34))}"
            add(f"sql {verb}", time.perf_counter() - started)

    backend = type(connections["default"])
    commit = backend._commit

    def timed_commit(self: Any) -> Any:
        started = time.perf_counter()
        try:
            return commit(self)
        finally:
            add("sql COMMIT", time.perf_counter() - started)

    backend._commit = timed_commit
    # The web worker's call to the gateway (whichever of these routing has).
    name = next(n for n in ("deliver_unlock", "send_unlock") if hasattr(routing, n))
    original = getattr(routing, name)

    def gateway_call(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            add(f"gateway call (routing.{name})", time.perf_counter() - started)

    setattr(routing, name, gateway_call)

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        started, cpu = time.perf_counter(), time.thread_time()
        with connection.execute_wrapper(timer):
            response = application(environ, start_response)
        add("request in Django (wall)", time.perf_counter() - started)
        add("request in Django (thread CPU)", time.thread_time() - cpu)
        now = time.monotonic()
        if now - written[0] > 0.5:
            written[0] = now
            with lock:
                text = json.dumps(sums)
            tmp = out.with_suffix(".tmp")
            tmp.write_text(text)
            tmp.replace(out)
        return response

    return app


_timed_lock = threading.Lock()


def timed_app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
    """granian serves this for the breakdown (gateway_unlock.py --profile)."""
    app = _timed.get("app")
    if app is None:
        with _timed_lock:  # the worker's threads all arrive at once
            app = _timed.get("app")
            if app is None:
                app = _timed["app"] = _timed_setup()
    return app(environ, start_response)


def read_timed(stats_dir: Path) -> dict[str, list[float]]:
    """The sums of all workers."""
    total: dict[str, list[float]] = {}
    for path in stats_dir.glob("*.json"):
        with contextlib.suppress(OSError, ValueError):
            for name, row in json.loads(path.read_text()).items():
                mine = total.setdefault(name, [0.0] * len(row))
                for i, value in enumerate(row):
                    mine[i] = max(mine[i], value) if i == 2 else mine[i] + value
    return total


def timed_lines(before: dict[str, list[float]], after: dict[str, list[float]]) -> list[str]:
    requests = (
        after.get("request in Django (wall)", [0.0])[0]
        - before.get("request in Django (wall)", [0.0])[0]
    )
    if requests <= 0:
        return ["(no timed requests)"]
    labels = ["<1", "1-5", "5-20", "20-100", ">=100"]
    out = [
        f"{int(requests):,} requests; per request: mean ms of the phase (calls), "
        f"and how the calls spread over ms buckets {'/'.join(labels)}"
    ]
    order = sorted(after, key=lambda k: -(after[k][1] - before.get(k, [0.0] * 3)[1]))
    for name in order:
        row, old = after[name], before.get(name, [0.0] * len(after[name]))
        calls = row[0] - old[0]
        if calls <= 0:
            continue
        seconds = row[1] - old[1]
        spread = "/".join(f"{int(row[i] - old[i])}" for i in range(3, len(row)))
        out.append(
            f"    {name:<40} {1000 * seconds / requests:8.2f} ms  ({calls / requests:.1f} calls, "
            f"{1000 * seconds / calls:.2f} ms each; {spread})"
        )
    return out


def start_timed_web(
    port: int, *, logdir: Path, workers: int, threads: int, stats_dir: Path
) -> Child:
    """granian with the timed Django app, the options of `doorkeep serve`."""
    from doorkeep.cli import web_command

    served = web_command(host=LOOPBACK, port=port, workers=workers, threads=threads)
    argv = [granian_bin(), *served[1:-1], "--working-dir", str(HERE), "gateway_common:timed_app"]
    child = spawn("web-timed", argv, env={"BENCH_STATS_DIR": str(stats_dir)}, logdir=logdir)
    wait_http(f"http://{LOOPBACK}:{port}/api/v1/me", child, timeout=120)
    return child


def analyze_postgres() -> str:
    """On PostgreSQL, ANALYZE after the bulk set-up, as autovacuum would before
    long: without statistics the planner misjudges freshly filled tables (a
    2,500-key lists.build takes about a second instead of 15 ms). Returns a
    line to print ("" on SQLite, which is left as a deployment has it)."""
    from django.db import connection

    if connection.vendor != "postgresql":
        return ""
    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    return f"ANALYZE (as autovacuum would) in {time.perf_counter() - started:.1f} s"


# --- small things ---------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


def raise_open_files(wanted: int = 20_000) -> int:
    """Raise the soft limit of open files towards ``wanted`` (at most the hard
    limit); returns the soft limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


_ECHO_PEER = """
import socket, sys
peer = socket.socket(fileno=int(sys.argv[1]))
while data := peer.recv(64):
    peer.sendall(data)
"""


def machine_speed(loops: int = 5_000_000, round_trips: int = 5_000) -> dict[str, float]:
    """Two readings that make runs on different days comparable: the CPU time
    of a fixed pure-Python loop (the interpreter's speed), and the round trip
    of one byte to another process over a socket pair and back (two
    wake-ups: each hop of an unlock pays them, and on a shared virtual
    machine they vary more than raw speed does)."""
    started = time.process_time()
    total = 0
    for i in range(loops):
        total += i
    loop_ms = 1000 * (time.process_time() - started)
    ours, theirs = socket.socketpair()
    peer = subprocess.Popen(  # noqa: S603 - this Python, a fixed script
        [sys.executable, "-c", _ECHO_PEER, str(theirs.fileno())], pass_fds=(theirs.fileno(),)
    )
    theirs.close()
    samples: list[float] = []
    try:
        for n in range(round_trips + 200):  # the first 200 warm up
            sent = time.perf_counter()
            ours.sendall(b"x")
            ours.recv(64)
            if n >= 200:
                samples.append(time.perf_counter() - sent)
    finally:
        ours.close()
        peer.wait(10)
    us = sorted(s * 1e6 for s in samples)
    return {
        "loop_ms": round(loop_ms, 1),
        "round_trip_us_p50": round(pct(us, 50), 1),
        "round_trip_us_p99": round(pct(us, 99), 1),
    }


def machine_speed_line(speed: dict[str, float], loops: int = 5_000_000) -> str:
    return (
        f"{loops:,} Python additions in {speed['loop_ms']:,.0f} ms of CPU; a byte to another "
        f"process and back p50 {speed['round_trip_us_p50']:,.1f} us, "
        f"p99 {speed['round_trip_us_p99']:,.1f} us"
    )


def pct(values: list[float], p: float) -> float:
    return percentile(values, p)


def ms_summary(seconds: list[float]) -> dict[str, float]:
    ms = [s * 1000 for s in seconds]
    if not ms:
        return {"n": 0}
    return {
        "n": len(ms),
        "mean": round(statistics.fmean(ms), 3),
        "p50": round(pct(ms, 50), 3),
        "p90": round(pct(ms, 90), 3),
        "p99": round(pct(ms, 99), 3),
        "max": round(max(ms), 3),
    }


def ms_line(label: str, seconds: list[float]) -> str:
    s = ms_summary(seconds)
    if not s["n"]:
        return f"{label}: no samples"
    return (
        f"{label}: n={s['n']:,}  p50 {s['p50']:.2f} ms  p90 {s['p90']:.2f} ms  "
        f"p99 {s['p99']:.2f} ms  max {s['max']:.2f} ms  (mean {s['mean']:.2f} ms)"
    )


def load_line() -> str:
    one, five, _fifteen = os.getloadavg()
    return f"load average {one:.2f} (5 min {five:.2f}), {os.cpu_count()} CPUs"


# --- /proc readings ---------------------------------------------------------------------


def _stat_fields(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name is in parentheses and may hold spaces.
    return raw[raw.rindex(")") + 2 :].split()


def children_of(pid: int) -> list[int]:
    """All descendants of ``pid``."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        fields = _stat_fields(int(entry.name))
        if fields:
            parents.setdefault(int(fields[1]), []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        for child in parents.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def cpu_seconds(pids: Iterable[int]) -> float:
    total = 0
    for pid in pids:
        fields = _stat_fields(pid)
        if fields:
            total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / CLK_TCK


def pids_named(name: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if (entry / "comm").read_text().strip() == name:
                    found.append(int(entry.name))
    return found


def postgres_backends(database: str) -> list[int]:
    """The PostgreSQL server processes serving ``database`` (their command line
    names it), to count their CPU apart from other users of the server."""
    found = []
    for pid in pids_named("postgres"):
        with contextlib.suppress(OSError):
            if f" {database} " in Path(f"/proc/{pid}/cmdline").read_text(errors="replace"):
                found.append(pid)
    return found


def settle_here() -> None:
    """Before measuring: collect, then freeze what this process holds (Django,
    the set-up's objects, connected simulated locks), as the measured
    processes do (doorkeep/core/memory.py). Otherwise the measuring
    process's own full garbage collections, walking all of it (60 ms seen in
    gateway_sync.py, just as a list.full arrived), land in the latencies it
    measures."""
    from doorkeep.core.memory import settle

    settle()


def add_quiet_below(parser: Any, before: str = "measuring") -> None:
    """The ``--quiet-below LOAD`` option of the benchmarks (see wait_for_quiet)."""
    parser.add_argument(
        "--quiet-below",
        type=float,
        default=0.0,
        metavar="LOAD",
        help=f"before {before}, wait (up to 10 minutes) for the 1-minute load average to drop "
        "below LOAD",
    )


def wait_for_quiet(below: float, limit: float = 600) -> None:
    """Wait (at most ``limit`` seconds) until the 1-minute load average is
    below ``below``: other work on a shared machine skews the figures."""
    if below <= 0:
        return
    deadline = time.monotonic() + limit
    while os.getloadavg()[0] >= below and time.monotonic() < deadline:
        time.sleep(5)
    print(f"(load average {os.getloadavg()[0]:.2f}; waited for < {below:g})", flush=True)


def rss_mb(pid: int, field_name: str = "VmRSS") -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field_name + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def threads_of(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Threads:"):
            return int(line.split()[1])
    return 0


# --- child processes --------------------------------------------------------------------


@dataclass
class Child:
    """A process this benchmark started, in its own process group (so that a
    server and the workers it forks stop together)."""

    name: str
    proc: subprocess.Popen[str]
    log_path: Path | None

    @property
    def pid(self) -> int:
        return self.proc.pid

    def tree(self) -> list[int]:
        return [self.pid, *children_of(self.pid)]

    def alive(self) -> bool:
        return self.proc.poll() is None

    def log_tail(self, lines: int = 30) -> str:
        if self.log_path is None or not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def stop(self, timeout: float = 15) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.pid, signal.SIGKILL)
                self.proc.wait(5)
        # Workers left behind by a server that died first: its group, ours to end.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, signal.SIGKILL)


_children: list[Child] = []


def _stop_all() -> None:
    for child in reversed(_children):
        with contextlib.suppress(Exception):
            child.stop()


def spawn(
    name: str,
    argv: list[str],
    *,
    env: dict[str, str] | None = None,
    logdir: Path,
    pipes: bool = False,
) -> Child:
    """Start ``argv``; its stderr (and stdout unless ``pipes``) go to a log file.
    With ``pipes`` its stdin and stdout are pipes, for a line protocol."""
    if not _children:
        # Registered after _setup.setup()'s clean-up, so it runs before it: the
        # children stop before their database and data directory go away.
        atexit.register(_stop_all)
    log_path = logdir / f"{name}.log"
    log = log_path.open("a")
    proc = subprocess.Popen(  # noqa: S603 - our own programs
        argv,
        env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
        stdin=subprocess.PIPE if pipes else subprocess.DEVNULL,
        stdout=subprocess.PIPE if pipes else log,
        stderr=log,
        text=True,
        cwd=ROOT,
        start_new_session=True,
    )
    log.close()
    child = Child(name, proc, log_path)
    _children.append(child)
    return child


def wait_http(url: str, child: Child, timeout: float = 60) -> None:
    """Wait until ``url`` answers (any HTTP status) or fail with the child's log."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not child.alive():
            raise RuntimeError(
                f"{child.name} stopped (exit {child.proc.returncode}):\n{child.log_tail()}"
            )
        try:
            with urllib.request.urlopen(url, timeout=2):  # noqa: S310 - loopback
                return
        except urllib.error.HTTPError:
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{child.name} did not answer {url} in {timeout:g} s:\n{child.log_tail()}")


def doorkeep_bin() -> str:
    return shutil.which("doorkeep", path=str(VENV_BIN)) or str(VENV_BIN / "doorkeep")


def granian_bin() -> str:
    return shutil.which("granian", path=str(VENV_BIN)) or str(VENV_BIN / "granian")


def start_gateway(
    port: int, *, logdir: Path, db_threads: int | None = None, env: dict[str, str] | None = None
) -> Child:
    """`doorkeep gateway` (or, to set its number of database threads, the same
    Gateway class through this module's ``gateway`` command)."""
    if db_threads is None:
        argv = [doorkeep_bin(), "gateway", "--host", LOOPBACK, "--port", str(port)]
    else:
        argv = [
            sys.executable,
            str(HERE / "gateway_common.py"),
            "gateway",
            "--port",
            str(port),
            "--db-threads",
            str(db_threads),
        ]
    child = spawn("gateway", argv, env=env, logdir=logdir)
    wait_http(f"http://{LOOPBACK}:{port}/healthz", child)
    return child


def start_web(
    port: int,
    *,
    logdir: Path,
    workers: int,
    threads: int,
    env: dict[str, str] | None = None,
    name: str = "web",
) -> Child:
    """`doorkeep serve --no-gateway`: granian with the Django WSGI app."""
    argv = [
        doorkeep_bin(),
        "serve",
        "--no-gateway",
        "--host",
        LOOPBACK,
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--threads",
        str(threads),
        "--reminder-interval",
        "0",
    ]
    child = spawn(name, argv, env=env, logdir=logdir)
    wait_http(f"http://{LOOPBACK}:{port}/api/v1/me", child, timeout=120)
    return child


def start_floor_web(port: int, *, logdir: Path, workers: int, threads: int) -> Child:
    """granian, with the same options as `doorkeep serve`, serving ``floor_app``."""
    from doorkeep.cli import web_command

    served = web_command(host=LOOPBACK, port=port, workers=workers, threads=threads)
    argv = [granian_bin(), *served[1:-1], "--working-dir", str(HERE), "gateway_common:floor_app"]
    child = spawn("floor-web", argv, logdir=logdir)
    wait_http(f"http://{LOOPBACK}:{port}/", child)
    return child


def start_echo(port: int, *, logdir: Path) -> Child:
    argv = [sys.executable, str(HERE / "gateway_common.py"), "echo", "--port", str(port)]
    child = spawn("echo", argv, logdir=logdir)
    wait_http(f"http://{LOOPBACK}:{port}/healthz", child)
    return child


# --- the fleet of simulated locks, in its own process --------------------------------


def read_json_line(child: Child, timeout: float = 600) -> dict[str, Any]:
    """The next line of JSON a child (started with ``pipes``) prints."""
    import select

    stdout = child.proc.stdout
    assert stdout is not None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([stdout], [], [], 1.0)
        if ready:
            line = stdout.readline()
            if not line:
                break
            if line.startswith("{"):
                return dict(json.loads(line))
        elif not child.alive():
            break
    raise RuntimeError(f"{child.name} said nothing:\n{child.log_tail()}")


class Fleet:
    """A process holding simulated locks (``gateway_common.py fleet``), driven
    by lines of JSON on its stdin and stdout."""

    def __init__(
        self,
        name: str,
        url: str,
        serials: list[str],
        *,
        logdir: Path,
        concurrency: int = 50,
        secret: str = DEVICE_SECRET,
        env: dict[str, str] | None = None,
    ) -> None:
        serial_file = logdir / f"{name}.serials"
        serial_file.write_text("\n".join(serials))
        argv = [
            sys.executable,
            str(HERE / "gateway_common.py"),
            "fleet",
            "--url",
            url,
            "--serials",
            str(serial_file),
            "--secret",
            secret,
            "--concurrency",
            str(concurrency),
        ]
        self.child = spawn(name, argv, env=env, logdir=logdir, pipes=True)
        self.count = len(serials)

    def read(self, timeout: float = 600) -> dict[str, Any]:
        return read_json_line(self.child, timeout)

    def command(self, text: str, timeout: float = 60) -> dict[str, Any]:
        stdin = self.child.proc.stdin
        assert stdin is not None
        stdin.write(text + "\n")
        stdin.flush()
        return self.read(timeout)

    def stop(self) -> dict[str, Any] | None:
        result = None
        if self.child.alive():
            with contextlib.suppress(Exception):
                result = self.command("quit", timeout=60)
        self.child.stop()
        return result


async def _fleet(url: str, serials: list[str], secret: str, concurrency: int) -> None:
    """Connect the locks (``concurrency`` handshakes at a time, each tried up to
    5 times), say how it went, then answer commands until ``quit``."""
    import django

    django.setup()
    from doorkeep.gateway.simulator import SimulatedLock

    limit = raise_open_files(len(serials) + 1000)
    locks = [SimulatedLock(url, serial, secret) for serial in serials]
    gate = asyncio.Semaphore(concurrency)
    connect_times: list[float] = []

    async def connect(lock: SimulatedLock) -> str:
        error = ""
        for attempt in range(5):
            async with gate:
                started = time.perf_counter()
                try:
                    await lock.connect(timeout=60)
                    connect_times.append(time.perf_counter() - started)
                    return ""
                except Exception as exc:
                    error = f"{type(exc).__name__}: {exc}"[:120]
            await asyncio.sleep(0.5 * (attempt + 1))
        return error

    started = time.perf_counter()
    errors = await asyncio.gather(*(connect(lock) for lock in locks))
    failed = Counter(e for e in errors if e)
    settle_here()
    print(
        json.dumps(
            {
                "ready": sum(1 for lock in locks if lock.online),
                "failed": sum(failed.values()),
                "errors": dict(failed.most_common(3)),
                "seconds": round(time.perf_counter() - started, 2),
                "connect": ms_summary(connect_times),
                "nofile": limit,
            }
        ),
        flush=True,
    )
    loop = asyncio.get_running_loop()
    while True:
        line = await loop.run_in_executor(None, sys.stdin.readline)
        command = line.strip()
        if command == "stats" or not line or command == "quit":
            print(
                json.dumps(
                    {
                        "online": sum(1 for lock in locks if lock.online),
                        "opened": sum(len(lock.opened) for lock in locks),
                        "versions": sum(lock.version for lock in locks),
                        "entries": sum(len(lock.entries) for lock in locks),
                        "errors": sum(len(lock.errors) for lock in locks),
                        "closed_by_gateway": sum(
                            1 for lock in locks if lock.close_code and lock.close_code >= 4000
                        ),
                    }
                ),
                flush=True,
            )
            for lock in locks:  # keep the fleet's memory flat during long runs
                lock.opened.clear()
        if not line or command == "quit":
            break
    await asyncio.gather(*(lock.close() for lock in locks), return_exceptions=True)


# --- floors: a bare WebSockets echo server, and bare WebSocket clients ----------------


async def _echo_server(port: int) -> None:
    """The same websockets options as the gateway; /healthz answers over HTTP."""
    from http import HTTPStatus

    from websockets.asyncio.server import serve

    async def echo(ws: Any) -> None:
        with contextlib.suppress(Exception):
            async for message in ws:
                await ws.send(message)

    def health(connection: Any, request: Any) -> Any:
        if request.path == "/healthz":
            return connection.respond(HTTPStatus.OK, "ok\n")
        return None

    raise_open_files()
    async with serve(
        echo,
        LOOPBACK,
        port,
        process_request=health,
        max_size=2**20,
        ping_interval=30,
        ping_timeout=30,
        compression=None,
    ):
        await asyncio.Future()


async def _ws_clients(url: str, count: int, concurrency: int) -> None:
    """Hold ``count`` idle WebSocket connections (for the idle-memory floor)."""
    from websockets.asyncio.client import connect

    raise_open_files(count + 1000)
    gate = asyncio.Semaphore(concurrency)
    conns: list[Any] = []

    async def one() -> None:
        async with gate:
            ws = await connect(url, open_timeout=60, ping_interval=None, compression=None)
            await ws.send("hi")
            await ws.recv()
            conns.append(ws)

    started = time.perf_counter()
    results = await asyncio.gather(*(one() for _ in range(count)), return_exceptions=True)
    failed = [r for r in results if isinstance(r, BaseException)]
    print(
        json.dumps(
            {
                "ready": len(conns),
                "failed": len(failed),
                "seconds": round(time.perf_counter() - started, 2),
            }
        ),
        flush=True,
    )
    loop = asyncio.get_running_loop()
    while True:
        line = await loop.run_in_executor(None, sys.stdin.readline)
        if not line or line.strip() == "quit":
            print(json.dumps({"closed": len(conns)}), flush=True)
            break
    await asyncio.gather(*(ws.close() for ws in conns), return_exceptions=True)


async def echo_floor(
    url: str, *, clients: int, duration: float, warmup: float = 1.0, size: int = 140
) -> dict[str, Any]:
    """Round trips through the bare echo server: one connection alone, then
    ``clients`` connections at once (each waits for its echo, as an HTTP
    client waits for its unlock)."""
    from websockets.asyncio.client import connect

    message = json.dumps({"type": "unlock", "request_id": "x" * 32, "pad": "p" * size})[:size]

    async def loop_on(ws: Any, until: float, measure_from: float, out: list[float]) -> None:
        while True:
            started = time.perf_counter()
            if started >= until:
                return
            await ws.send(message)
            await ws.recv()
            if started >= measure_from:
                out.append(time.perf_counter() - started)

    conns = [
        await connect(url, ping_interval=None, compression=None, max_size=2**20)
        for _ in range(clients)
    ]
    try:
        single: list[float] = []
        now = time.perf_counter()
        await loop_on(conns[0], now + warmup + 2, now + warmup, single)
        many: list[float] = []
        now = time.perf_counter()
        await asyncio.gather(
            *(loop_on(ws, now + warmup + duration, now + warmup, many) for ws in conns)
        )
    finally:
        await asyncio.gather(*(ws.close() for ws in conns), return_exceptions=True)
    return {
        "single": ms_summary(single),
        "single_rate": round(len(single) / 2, 1),
        "concurrent": ms_summary(many),
        "concurrent_rate": round(len(many) / duration, 1),
        "clients": clients,
    }


# --- HTTP load: keep-alive connections on raw asyncio sockets ------------------------


class HttpConnection:
    """One keep-alive HTTP/1.1 connection (Content-Length or chunked bodies)."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.connects = 0

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None

    async def request(
        self,
        method: str,
        path: str,
        headers: Iterable[str] = (),
        body: bytes = b"",
        timeout: float = 30,
    ) -> tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
            self.connects += 1
        head = [
            f"{method} {path} HTTP/1.1",
            f"Host: {self.host}:{self.port}",
            f"Content-Length: {len(body)}",
            *headers,
        ]
        self.writer.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body)
        try:
            return await asyncio.wait_for(self._response(), timeout)
        except BaseException:
            self.close()
            raise

    async def _response(self) -> tuple[int, bytes]:
        reader = self.reader
        assert reader is not None
        line = await reader.readline()
        if not line:
            raise ConnectionResetError("the server closed the connection")
        status = int(line.split()[1])
        length, chunked, close = -1, False, False
        while True:
            header = await reader.readline()
            if header in (b"\r\n", b"\n", b""):
                break
            name, _, value = header.decode("latin-1").partition(":")
            name, value = name.strip().lower(), value.strip().lower()
            if name == "content-length":
                length = int(value)
            elif name == "transfer-encoding" and "chunked" in value:
                chunked = True
            elif name == "connection" and value == "close":
                close = True
        if chunked:
            body = bytearray()
            while True:
                size = int((await reader.readline()).split(b";")[0], 16)
                if size == 0:
                    while (await reader.readline()) not in (b"\r\n", b"\n", b""):
                        pass
                    break
                body += (await reader.readexactly(size + 2))[:-2]
        elif length >= 0:
            body = bytearray(await reader.readexactly(length))
        else:
            body, close = bytearray(await reader.read()), True
        if close:
            self.close()
        return status, bytes(body)


Request = tuple[str, str, list[str], bytes]  # method, path, headers, body


def http_outcome(status: int, body: bytes) -> str:
    """ "200", or the status and the ``code`` of the API's JSON error body."""
    if status == 200:
        return "200"
    code = ""
    with contextlib.suppress(ValueError, AttributeError, TypeError):
        code = str(json.loads(body).get("code", ""))
    return f"{status} {code}".strip()


@dataclass
class LoadResult:
    clients: int
    duration: float
    latencies: list[float] = field(default_factory=list)  # every answered request in the window
    ok_latencies: list[float] = field(default_factory=list)
    outcomes: Counter[str] = field(default_factory=Counter)  # "200", "503 lock_offline", ...
    exceptions: Counter[str] = field(default_factory=Counter)
    connects: int = 0

    @property
    def ok(self) -> int:
        return self.outcomes.get("200", 0)

    @property
    def errors(self) -> int:
        return sum(self.outcomes.values()) - self.ok + sum(self.exceptions.values())

    @property
    def rate(self) -> float:
        return self.ok / self.duration

    def summary(self) -> dict[str, Any]:
        return {
            "rate": round(self.rate, 1),
            "ok": self.ok,
            "errors": self.errors,
            "outcomes": dict(self.outcomes),
            "exceptions": dict(self.exceptions),
            "latency_ms": ms_summary(self.latencies),
            "clients": self.clients,
            "duration_s": self.duration,
            "connects": self.connects,
        }


async def run_load(
    host: str,
    port: int,
    make: Callable[[int], Request],
    *,
    clients: int,
    duration: float,
    warmup: float,
    timeout: float = 30,
    keepalive: bool = True,
    classify: Callable[[int, bytes], str] | None = None,
    rate: float | None = None,
) -> LoadResult:
    """``clients`` connections for ``warmup`` + ``duration`` seconds; requests
    started during the ``duration`` window count. ``classify`` names the
    outcome of an answer ("200" is success); without it, the status and the
    error ``code`` of a JSON error body. Without ``keepalive`` each request
    has its own connection (as urllib does).

    Closed loop (no ``rate``): each connection sends its next request as soon
    as the previous one is answered: the most the server can do with that
    many clients, whose latency is then clients / throughput (Little's law).
    Open loop (``rate`` requests/s in all): each connection sends on a fixed
    schedule (rate / clients a second, staggered); a request that must wait
    for its connection's previous answer is sent late, and its latency counts
    from when it was due, so a server that falls behind is not flattered
    (coordinated omission corrected, as wrk2 does)."""
    result = LoadResult(clients, duration)
    counter = itertools.count()
    started = time.perf_counter()
    measure_from, until = started + warmup, started + warmup + duration
    conns = [HttpConnection(host, port) for _ in range(clients)]
    every = clients / rate if rate else 0.0
    offsets = iter(range(clients))

    async def client(conn: HttpConnection) -> None:
        due = started + next(offsets) * every / clients
        while True:
            if rate:
                began, due = due, due + every
                if began >= until:
                    return
                if (wait := began - time.perf_counter()) > 0:
                    await asyncio.sleep(wait)
            else:
                began = time.perf_counter()
                if began >= until:
                    return
            method, path, headers, body = make(next(counter))
            try:
                status, answer = await conn.request(method, path, headers, body, timeout)
            except Exception as exc:
                if began >= measure_from:
                    result.exceptions[type(exc).__name__] += 1
                await asyncio.sleep(0.05)
                continue
            ended = time.perf_counter()
            if not keepalive:
                conn.close()
            if began < measure_from:
                continue
            result.latencies.append(ended - began)
            outcome = (classify or http_outcome)(status, answer)
            result.outcomes[outcome] += 1
            if outcome == "200":
                result.ok_latencies.append(ended - began)

    try:
        await asyncio.gather(*(client(conn) for conn in conns))
    finally:
        for conn in conns:
            conn.close()
    result.connects = sum(conn.connects for conn in conns)
    return result


def load_lines(label: str, result: LoadResult) -> list[str]:
    s = result.summary()
    lat = s["latency_ms"]
    lines = [
        f"{label}: {s['rate']:,.1f}/s ok ({s['ok']:,} in {s['duration_s']:g} s, "
        f"{result.clients} clients); errors {s['errors']:,}",
    ]
    if lat["n"]:
        lines.append(
            f"    latency p50 {lat['p50']:.2f} ms  p90 {lat['p90']:.2f} ms  "
            f"p99 {lat['p99']:.2f} ms  max {lat['max']:.2f} ms  (mean {lat['mean']:.2f} ms)"
        )
    bad = {k: v for k, v in s["outcomes"].items() if k != "200"}
    if bad or s["exceptions"]:
        lines.append(f"    error answers {bad}; exceptions {s['exceptions']}")
    return lines


# --- CPU use per role during a window -------------------------------------------------


class CpuMeter:
    """CPU seconds used by named groups of processes between start() and stop(),
    counted per process: one that started meanwhile counts from 0; one that
    ended meanwhile (a PostgreSQL backend whose connection was closed) is left
    out, since its last reading is lost (before, the group's total could go
    negative)."""

    def __init__(self, groups: dict[str, Callable[[], list[int]]]) -> None:
        self.groups = groups
        self.before: dict[str, dict[int, float]] = {}
        self.used: dict[str, float] = {}
        self.wall = 0.0
        self._t0 = 0.0

    def _read(self) -> dict[str, dict[int, float]]:
        return {
            name: {pid: cpu_seconds([pid]) for pid in pids()} for name, pids in self.groups.items()
        }

    def start(self) -> None:
        self.before = self._read()
        self._t0 = time.perf_counter()

    def stop(self) -> None:
        after = self._read()
        self.wall = time.perf_counter() - self._t0
        self.used = {
            name: sum(
                max(0.0, used - self.before.get(name, {}).get(pid, 0.0))
                for pid, used in readings.items()
            )
            for name, readings in after.items()
        }

    def lines(self, per: int, unit: str) -> list[str]:
        total = sum(self.used.values())
        cores = os.cpu_count() or 1
        out = [
            f"CPU over {self.wall:.1f} s: {total:.1f} CPU-s of {self.wall * cores:.1f} available "
            f"({100 * total / max(self.wall * cores, 1e-9):.0f}% of {cores} CPUs)"
        ]
        for name, used in sorted(self.used.items(), key=lambda kv: -kv[1]):
            each = f", {1000 * used / per:.2f} ms per {unit}" if per else ""
            out.append(
                f"    {name:<24} {used:7.2f} CPU-s "
                f"({100 * used / self.wall:5.1f}% of one CPU){each}"
            )
        return out


# --- py-spy -----------------------------------------------------------------------------


def find_py_spy(explicit: str | None) -> str | None:
    for candidate in (explicit, shutil.which("py-spy"), "/tmp/pyspy-venv/bin/py-spy"):  # noqa: S108
        if candidate and Path(candidate).exists():
            return candidate
    return None


def py_spy_record(
    py_spy: str, pid: int, seconds: float, out: Path, *, subprocesses: bool = False
) -> subprocess.Popen[bytes]:
    argv = [
        py_spy,
        "record",
        "--pid",
        str(pid),
        "--duration",
        str(int(seconds)),
        "--rate",
        "200",
        "--format",
        "raw",
        "--output",
        str(out),
        "--nonblocking",
    ]
    if subprocesses:
        argv.append("--subprocesses")
    return subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # noqa: S603


def _frame_name(frame: str) -> str:
    """'func (path/to/module.py:123)' -> 'func (module.py)'; process frames kept."""
    name, _, where = frame.partition(" (")
    where = where.rstrip(")")
    path = where.rsplit(":", 1)[0]
    parts = Path(path).parts
    for anchor in ("doorkeep", "django", "ninja", "websockets", "psycopg", "redis", "asyncio"):
        if anchor in parts:
            path = "/".join(parts[parts.index(anchor) :])
            break
    else:
        path = Path(path).name
    return f"{name} ({path})" if path else name


def py_spy_summary(path: Path, top: int = 18) -> list[str]:
    """Self and inclusive sample shares from py-spy's raw (collapsed) output."""
    if not path.exists():
        return [f"(no py-spy output at {path})"]
    self_counts: Counter[str] = Counter()
    incl: Counter[str] = Counter()
    total = 0
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        total += count
        frames = [_frame_name(f) for f in stack.split(";") if f and not f.startswith("process ")]
        frames = [f for f in frames if not f.startswith("thread ")]
        if not frames:
            continue
        self_counts[frames[-1]] += count
        for frame in set(frames):
            incl[frame] += count
    if not total:
        return ["(py-spy recorded no samples)"]
    out = [f"{total:,} samples on CPU; self time (leaf frames):"]
    out += [f"    {100 * n / total:5.1f}%  {name}" for name, n in self_counts.most_common(top)]
    out.append("inclusive (the frame or what it called), project and library frames:")
    interesting = (
        "doorkeep/",
        "django/",
        "ninja/",
        "websockets/",
        "redis/",
        "psycopg/",
        "urllib",
        "http/client",
        "client.py",
        "socket.py",
        "sqlite3",
        "json",
    )
    shown = 0
    for name, n in incl.most_common():
        if any(key in name for key in interesting):
            out.append(f"    {100 * n / total:5.1f}%  {name}")
            shown += 1
            if shown >= top:
                break
    return out


# --- the command line --------------------------------------------------------------------


def _gateway(port: int, db_threads: int) -> None:
    import django

    django.setup()
    from doorkeep.core import memory
    from doorkeep.gateway.server import Gateway

    raise_open_files()
    out = os.environ.get("BENCH_TRACEMALLOC_OUT")
    if out:
        import tracemalloc

        def dump(*_args: object) -> None:
            """SIGUSR1: the biggest allocation sites now, to ``out``."""
            snapshot = tracemalloc.take_snapshot().filter_traces(
                [tracemalloc.Filter(False, tracemalloc.__file__)]
            )
            lines = [
                f"{stat.size / 2**20:8.2f} MB {stat.count:9,} blocks  {stat.traceback[0]}"
                for stat in snapshot.statistics("lineno")[:40]
            ]
            total = sum(stat.size for stat in snapshot.statistics("filename"))
            Path(out).write_text(f"{total / 2**20:.1f} MB traced\n" + "\n".join(lines) + "\n")

        tracemalloc.start(1)
        signal.signal(signal.SIGUSR1, dump)
    gateway = Gateway(host=LOOPBACK, port=port, db_threads=db_threads)
    memory.settle()  # as `doorkeep gateway` does
    print(f"bench gateway on ws://{LOOPBACK}:{port} with {db_threads} db threads", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(gateway.serve_forever())


def _on_sigterm(*_args: object) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="helpers of the gateway benchmarks")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("fleet", help="hold simulated locks; commands on stdin")
    p.add_argument("--url", required=True)
    p.add_argument("--serials", required=True, help="a file with one serial a line")
    p.add_argument("--secret", default=DEVICE_SECRET)
    p.add_argument("--concurrency", type=int, default=50)
    p = sub.add_parser("gateway", help="run the gateway with a chosen number of db threads")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--db-threads", type=int, default=8)
    p = sub.add_parser("echo", help="a bare websockets echo server")
    p.add_argument("--port", type=int, required=True)
    p = sub.add_parser("wsclients", help="hold bare idle WebSocket connections")
    p.add_argument("--url", required=True)
    p.add_argument("--count", type=int, required=True)
    p.add_argument("--concurrency", type=int, default=100)
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, _on_sigterm)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "doorkeep.settings")
    if str(ROOT / "src") not in sys.path:
        sys.path.insert(0, str(ROOT / "src"))
    try:
        if args.command == "fleet":
            serials = [s for s in Path(args.serials).read_text().split() if s]
            asyncio.run(_fleet(args.url, serials, args.secret, args.concurrency))
        elif args.command == "gateway":
            _gateway(args.port, args.db_threads)
        elif args.command == "echo":
            asyncio.run(_echo_server(args.port))
        elif args.command == "wsclients":
            asyncio.run(_ws_clients(args.url, args.count, args.concurrency))
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
