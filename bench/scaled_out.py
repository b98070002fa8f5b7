"""The scaled-out set-up, for real on one machine: nginx (Debian's package)
as the load balancer in front of two web servers and two gateways, on
PostgreSQL with Redis routing, and --locks simulated locks (200) connected
through nginx. Then one gateway is killed with SIGKILL.

The nginx configuration is the one docs/operations.md recommends ("Behind
nginx"): the block between ``<!-- nginx-conf -->`` and ``<!-- /nginx-conf -->``,
read from the file, only its placeholders filled (a line with ``@GATEWAY@``
or ``@WEB_SERVER@`` repeated for each server), included in an ``http`` block
of this script's own (pid, logs and temporary files in a temporary folder).

What it does and prints:
  1. the floor, in the same run: the machine's speed, the time for every lock
     to connect, say hello and get its list through nginx at once, and for
     the locks of gw-a to drop and, once gw-a let them go, reconnect at once
     (no pause);
  2. how the locks are spread over the gateways (Device.gateway), and that
     Redis routes each to the gateway on its Device row;
  3. one remote unlock to each lock through nginx (POST
     /api/v1/entries/{id}/unlock with an API token): all must open, on both
     gateways;
  4. each lock presents a PIN or a tag and uploads the event;
  5. with unlocks going on at --rate a second and locks presenting PINs and
     tags at --event-rate a second (kept while offline, uploaded when back),
     SIGKILL of gateway gw-a. The locks reconnect by themselves (with
     back-off) through nginx, which sends them to gw-b. Printed: the time from
     the kill until every lock is welcomed again, until every Device row
     names gw-b and is online, and the unlocks attempted, refused and
     succeeded meanwhile, with their answers;
  6. afterwards one unlock to each lock again (all must open), and the events:
     each acknowledged before the kill must be in the database, and the
     events presented and those stored must be the same, none twice;
  7. what nginx did: the web servers took its request id (X-Request-ID),
     and the handshakes the dead gateway refused went on to the other.
PASS/FAIL and a ``RESULT {...}`` line at the end. Every process started is
stopped, the database dropped and the Redis keys deleted at the end (on
Ctrl-C and errors too); --keep leaves everything running until Enter.

    .venv/bin/python bench/scaled_out.py [--locks 200] [--rate 20] [--event-rate 20]
        [--back-within 60] [--web-workers 1] [--database NAME] [--redis-url URL] [--keep]

Needs nginx (``apt-get install nginx``; the system's nginx is not touched),
PostgreSQL at BENCH_POSTGRES_URL (postgres://postgres@127.0.0.1:5432) and
Redis (redis://127.0.0.1:6379/13).
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import contextlib
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _setup
import gateway_common as gc

OPERATIONS_MD = gc.ROOT / "docs" / "operations.md"
CONF_START, CONF_END = "<!-- nginx-conf -->", "<!-- /nginx-conf -->"
GATEWAY_IDS = ("gw-a", "gw-b")  # gw-a is killed
WEB_NAMES = ("web-a", "web-b")
REDIS_URL = "redis://127.0.0.1:6379/13"

# --- the documented nginx configuration -------------------------------------------------


def documented_nginx_conf(path: Path = OPERATIONS_MD) -> str:
    """The fenced block between the nginx-conf markers of docs/operations.md."""
    text = path.read_text()
    start, end = text.find(CONF_START), text.find(CONF_END)
    if start < 0 or end < start:
        raise RuntimeError(f"{path}: no {CONF_START} ... {CONF_END} block")
    block = text[start + len(CONF_START) : end].strip()
    match = re.fullmatch(r"```nginx\n(.*)\n```", block, re.DOTALL)
    if match is None:
        raise RuntimeError(f"{path}: the nginx-conf block is not one ```nginx fenced block")
    return match.group(1) + "\n"


def render_nginx_conf(
    template: str,
    *,
    web_servers: Iterable[str],
    gateways: Iterable[str],
    web_listen: str,
    device_listen: str,
    web_name: str = gc.LOOPBACK,
    device_name: str = gc.LOOPBACK,
) -> str:
    """The template with its placeholders filled; a line with @WEB_SERVER@ or
    @GATEWAY@ is repeated for each address. Nothing else changes."""
    repeated = {"@WEB_SERVER@": list(web_servers), "@GATEWAY@": list(gateways)}
    single = {
        "@WEB_LISTEN@": web_listen,
        "@DEVICE_LISTEN@": device_listen,
        "@WEB_NAME@": web_name,
        "@DEVICE_NAME@": device_name,
    }
    lines: list[str] = []
    for line in template.splitlines():
        placeholder = next((p for p in repeated if p in line), None)
        if placeholder is None:
            lines.append(line)
        else:
            lines.extend(line.replace(placeholder, value) for value in repeated[placeholder])
    text = "\n".join(lines) + "\n"
    for placeholder, value in single.items():
        text = text.replace(placeholder, value)
    left = set(re.findall(r"@[A-Z_]+@", text))
    if left:
        raise RuntimeError(f"placeholders this script does not know: {sorted(left)}")
    return text


def nginx_main_conf(prefix: Path) -> str:
    """This run's own main context around the documented file, as Debian's
    nginx.conf includes conf.d/*.conf inside ``http``."""
    return f"""\
worker_processes auto;
worker_rlimit_nofile 20000;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{
    worker_connections 4096;
}}
http {{
    client_body_temp_path {prefix}/client_body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
    log_format doorkeep '$remote_addr "$request" $status $request_id '
                        'upstream=$upstream_addr $upstream_status $request_time';
    access_log {prefix}/access.log doorkeep;
    include {prefix}/doorkeep.conf;
}}
"""


def nginx_bin() -> str | None:
    return shutil.which("nginx") or next(
        (p for p in ("/usr/sbin/nginx",) if Path(p).exists()), None
    )


def missing_prerequisites(redis_url: str) -> str:
    """Why this cannot run here ("" when nginx, PostgreSQL and Redis are there)."""
    if nginx_bin() is None:
        return "nginx is not installed (apt-get install nginx)"
    if not _setup.postgres_reachable():
        return f"PostgreSQL is not reachable at {_setup.PG_SERVER}"
    import redis

    try:
        with redis.Redis.from_url(redis_url, socket_connect_timeout=2) as client:
            client.ping()
    except redis.RedisError as exc:
        return f"Redis is not reachable at {redis_url}: {exc}"
    return ""


# --- processes ---------------------------------------------------------------------------


@dataclass
class Platform:
    web_port: int  # nginx: the web site
    device_port: int  # nginx: the devices' site
    webs: dict[str, gc.Child]
    gateways: dict[str, gc.Child]
    ports: dict[str, int]  # each web server's and gateway's own port
    nginx: gc.Child
    prefix: Path  # nginx's folder

    @property
    def device_url(self) -> str:
        return f"ws://{gc.LOOPBACK}:{self.device_port}/"


def shared_env(redis_url: str, redis_prefix: str) -> dict[str, str]:
    """What every web server and gateway must share: the database, the keys,
    the routing; nginx is the trusted proxy."""
    from django.conf import settings

    return {
        "DATABASE_URL": os.environ["DATABASE_URL"],
        "SECRET_KEY": settings.SECRET_KEY,
        "DOORKEEP_ENCRYPTION_KEYS": ",".join(settings.DOORKEEP_ENCRYPTION_KEYS),
        "DOORKEEP_GATEWAY_ROUTING": "redis",
        "REDIS_URL": redis_url,
        "DOORKEEP_GATEWAY_REDIS_PREFIX": redis_prefix,
        "DOORKEEP_TRUSTED_PROXIES": gc.LOOPBACK,
        "DOORKEEP_UNLOCK_TIMEOUT": "5",
        "LOG_LEVEL": "INFO",
    }


def own_data_dir(root: Path, name: str) -> dict[str, str]:
    """Each process its own data directory, as on machines of their own."""
    folder = root / name
    folder.mkdir(parents=True, exist_ok=True)
    return {"DOORKEEP_DATA_DIR": str(folder)}


def spawn_gateway(gid: str, port: int, env: dict[str, str], root: Path, logdir: Path) -> gc.Child:
    """`doorkeep gateway` with its own id and internal URL."""
    argv = [gc.doorkeep_bin(), "gateway", "--host", gc.LOOPBACK, "--port", str(port)]
    argv += ["--id", gid, "--internal-url", f"http://{gc.LOOPBACK}:{port}"]
    return gc.spawn(gid, argv, env={**env, **own_data_dir(root, gid)}, logdir=logdir)


def spawn_web(
    name: str, port: int, env: dict[str, str], root: Path, logdir: Path, workers: int
) -> gc.Child:
    """`doorkeep serve --no-gateway` (granian, ``workers`` x 4 threads)."""
    argv = [gc.doorkeep_bin(), "serve", "--no-gateway", "--host", gc.LOOPBACK]
    argv += ["--port", str(port), "--workers", str(workers), "--threads", "4"]
    argv += ["--reminder-interval", "0"]
    return gc.spawn(name, argv, env={**env, **own_data_dir(root, name)}, logdir=logdir)


def start_nginx(site: str, logdir: Path, web_port: int) -> tuple[gc.Child, Path]:
    """nginx from Debian's package with this run's configuration; checked with
    ``nginx -t`` first. Its folder is readable by its workers (``nobody``
    when started as root)."""
    nginx = nginx_bin()
    assert nginx is not None
    prefix = Path(tempfile.mkdtemp(prefix="doorkeep-nginx-"))
    prefix.chmod(0o755)
    atexit.register(shutil.rmtree, prefix, True)
    (prefix / "doorkeep.conf").write_text(site)
    main_conf = prefix / "nginx.conf"
    main_conf.write_text(nginx_main_conf(prefix))
    argv = [nginx, "-p", f"{prefix}/", "-e", str(prefix / "error.log"), "-c", str(main_conf)]
    checked = subprocess.run(  # noqa: S603 - nginx with our own configuration
        [*argv, "-t", "-q"], capture_output=True, text=True, check=False
    )
    if checked.returncode != 0:
        raise RuntimeError(f"nginx -t refused the configuration:\n{checked.stderr}\n{site}")
    child = gc.spawn("nginx", [*argv, "-g", "daemon off;"], logdir=logdir)
    gc.wait_http(f"http://{gc.LOOPBACK}:{web_port}/healthz", child)
    return child, prefix


def start_platform(args: argparse.Namespace, root: Path, logdir: Path) -> Platform:
    env = shared_env(args.redis_url, args.redis_prefix)
    ports = {name: gc.free_port() for name in (*GATEWAY_IDS, *WEB_NAMES)}
    gateways = {gid: spawn_gateway(gid, ports[gid], env, root, logdir) for gid in GATEWAY_IDS}
    webs = {
        name: spawn_web(name, ports[name], env, root, logdir, args.web_workers)
        for name in WEB_NAMES
    }
    for gid, child in gateways.items():
        gc.wait_http(f"http://{gc.LOOPBACK}:{ports[gid]}/healthz", child)
    for name, child in webs.items():
        gc.wait_http(f"http://{gc.LOOPBACK}:{ports[name]}/healthz", child, timeout=180)
    web_port, device_port = gc.free_port(), gc.free_port()
    site = render_nginx_conf(
        documented_nginx_conf(),
        web_servers=[f"{gc.LOOPBACK}:{ports[name]}" for name in WEB_NAMES],
        gateways=[f"{gc.LOOPBACK}:{ports[gid]}" for gid in GATEWAY_IDS],
        web_listen=f"{gc.LOOPBACK}:{web_port}",
        device_listen=f"{gc.LOOPBACK}:{device_port}",
    )
    nginx, prefix = start_nginx(site, logdir, web_port)
    return Platform(web_port, device_port, webs, gateways, ports, nginx, prefix)


def nginx_request_id(platform: Platform, token: str) -> dict[str, str]:
    """GET /api/v1/me through nginx with a request id of the client's own:
    the X-Request-ID the web server answered, and nginx's for that request
    (its access log)."""
    request = urllib.request.Request(
        f"http://{gc.LOOPBACK}:{platform.web_port}/api/v1/me",
        headers={"Authorization": f"Bearer {token}", "X-Request-ID": "chosen-by-the-client"},
    )
    with urllib.request.urlopen(request, timeout=10) as answer:  # noqa: S310 - loopback
        answered = answer.headers.get("X-Request-ID", "")
    logged = ""
    deadline = time.monotonic() + 3
    while not logged and time.monotonic() < deadline:
        for line in (platform.prefix / "access.log").read_text().splitlines():
            if '"GET /api/v1/me ' in line:
                logged = line.split('" ', 1)[1].split()[1]  # status, then $request_id
        time.sleep(0.1)
    return {"answered": answered, "nginx": logged}


def nginx_passed_on(platform: Platform) -> dict[str, int]:
    """From nginx's logs: connections to a gateway refused, and WebSocket
    handshakes that went to a second server after the first refused them
    (``$upstream_addr`` lists both)."""
    errors = (platform.prefix / "error.log").read_text(errors="replace")
    access = (platform.prefix / "access.log").read_text(errors="replace").splitlines()
    return {
        "refused": errors.count("Connection refused) while connecting to upstream"),
        "handshakes_passed_on": sum(
            1 for line in access if '" 101 ' in line and "upstream=" in line and ", " in line
        ),
    }


def forget_redis_keys(redis_url: str, prefix: str) -> None:
    import redis

    with contextlib.suppress(redis.RedisError), redis.Redis.from_url(redis_url) as client:
        keys = list(client.scan_iter(f"{prefix}:*"))
        if keys:
            client.delete(*keys)


# --- the locks -------------------------------------------------------------------------------


@dataclass
class Fleet:
    """The simulated locks, in this process, and what they saw: when each was
    last welcomed, which events the gateways acknowledged, which were presented."""

    locks: list[Any]
    welcomed_at: dict[str, float] = field(default_factory=dict)
    acked: dict[tuple[str, int], float] = field(default_factory=dict)  # -> when
    presented: list[tuple[str, int]] = field(default_factory=list)
    pending: set[asyncio.Task[None]] = field(default_factory=set)

    @classmethod
    def make(cls, url: str, serials: list[str]) -> Fleet:
        from doorkeep.gateway.simulator import SimulatedLock

        fleet = cls([])
        fleet.locks = [
            SimulatedLock(url, serial, gc.DEVICE_SECRET, trace=fleet.tracer(serial))
            for serial in serials
        ]
        return fleet

    def tracer(self, serial: str) -> Callable[[str, dict[str, Any]], None]:
        def seen(direction: str, message: dict[str, Any]) -> None:
            if direction != "<-":
                return
            now = time.monotonic()
            if message.get("type") == "welcome":
                self.welcomed_at[serial] = now
            elif message.get("type") == "events.ack":
                for seq in message.get("seqs", []):
                    self.acked.setdefault((serial, int(seq)), now)

        return seen

    async def connect(self, locks: list[Any], attempts: int = 3) -> list[str]:
        """Connect ``locks`` all at once (each tried ``attempts`` times); the errors."""

        async def one(lock: Any) -> str:
            error = ""
            for attempt in range(attempts):
                try:
                    await lock.connect(timeout=30)
                    return ""
                except Exception as exc:
                    error = f"{type(exc).__name__}: {exc}"[:120]
                    await asyncio.sleep(0.5 * (attempt + 1))
            return error

        return [e for e in await asyncio.gather(*(one(lock) for lock in locks)) if e]

    def keep_connected(self) -> None:
        """From now on each lock reconnects by itself after a lost connection,
        with a growing, randomized pause (1 s, 2 s, 4 s ... a minute), as the
        protocol tells real locks."""
        for lock in self.locks:
            lock.stay_connected(min_pause=1.0, max_pause=60.0)

    def present(self, lock: Any, n: int) -> None:
        """The lock reads a PIN or a tag it does not know: it decides, keeps the
        event and uploads it now if it is online (else when it is back)."""
        kind, value = ("pin", f"{n % 10_000:04d}") if n % 2 else ("tag", f"04{n:012X}")
        decision = lock.decide(kind, value)
        self.presented.append((lock.serial, decision.seq))
        if lock.online:
            self._spawn(_quietly(lock.flush()))

    async def all_online(self, timeout: float) -> float | None:
        """Seconds until every lock is online, in step, its kept events
        uploaded (SimulatedLock.wait_online); None after ``timeout``."""
        started = time.monotonic()
        try:
            await asyncio.gather(*(lock.wait_online(timeout) for lock in self.locks))
        except TimeoutError:
            return None
        return time.monotonic() - started

    async def flush_all(self, timeout: float) -> int:
        """Upload what every lock still keeps; returns the events left."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            left = [lock for lock in self.locks if lock.outbox]
            if not left:
                return 0
            await asyncio.gather(*(_quietly(lock.flush()) for lock in left if lock.online))
            await asyncio.sleep(0.2)
        return sum(len(lock.outbox) for lock in self.locks)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self.pending.add(task)
        task.add_done_callback(self.pending.discard)

    async def close(self) -> None:
        for task in list(self.pending):
            task.cancel()
        await asyncio.gather(*(lock.close() for lock in self.locks), return_exceptions=True)


async def _quietly(coro: Any) -> None:
    with contextlib.suppress(Exception):
        await coro


# --- unlocks through nginx -------------------------------------------------------------------


@dataclass
class Unlocks:
    """Remote unlocks through nginx's web site, on a pool of keep-alive
    connections; each answer kept with when it was asked."""

    port: int
    token: str
    clients: int = 16
    answers: list[tuple[float, int, str]] = field(default_factory=list)  # started, entry, outcome
    _pool: asyncio.Queue[gc.HttpConnection] | None = None

    async def unlock(self, entry_id: int) -> str:
        if self._pool is None:
            self._pool = asyncio.Queue()
            for _ in range(self.clients):
                self._pool.put_nowait(gc.HttpConnection(gc.LOOPBACK, self.port))
        conn = await self._pool.get()
        started = time.monotonic()
        try:
            status, body = await conn.request(
                "POST",
                f"/api/v1/entries/{entry_id}/unlock",
                [f"Authorization: Bearer {self.token}"],
                timeout=30,
            )
            outcome = gc.http_outcome(status, body)
        except Exception as exc:
            outcome = type(exc).__name__
        finally:
            self._pool.put_nowait(conn)
        self.answers.append((started, entry_id, outcome))
        return outcome

    async def each(self, entries: list[int]) -> Counter[str]:
        return Counter(await asyncio.gather(*(self.unlock(e) for e in entries)))

    async def steadily(self, entries: list[int], rate: float, stop: asyncio.Event) -> None:
        """``rate`` unlocks a second, round the entries, until ``stop``."""
        tasks: set[asyncio.Task[str]] = set()
        due = time.monotonic()
        for n in range(10**9):
            if stop.is_set():
                break
            task = asyncio.create_task(self.unlock(entries[n % len(entries)]))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            due += 1 / rate
            await asyncio.sleep(max(0.0, due - time.monotonic()))
        await asyncio.gather(*tasks)

    def between(self, start: float, end: float) -> Counter[str]:
        return Counter(o for t, _e, o in self.answers if start <= t < end)

    def close(self) -> None:
        while self._pool is not None and not self._pool.empty():
            self._pool.get_nowait().close()


async def present_steadily(fleet: Fleet, rate: float, stop: asyncio.Event) -> None:
    rng = random.Random(7)
    n = 1000
    while not stop.is_set():
        fleet.present(rng.choice(fleet.locks), n)
        n += 1
        await asyncio.sleep(1 / rate)


# --- the database ----------------------------------------------------------------------------


def device_rows() -> dict[int, tuple[str, bool]]:
    """lock id -> (gateway, online)."""
    from django.db import connection

    from doorkeep.gateway.models import Device

    try:
        return {
            lock_id: (gateway, online)
            for lock_id, gateway, online in Device.objects.values_list(
                "lock_id", "gateway", "online"
            )
        }
    finally:
        connection.close()


def stored_events() -> Counter[tuple[str, int]]:
    """(serial, device seq) of every event the locks uploaded, with how many times."""
    from django.db import connection

    from doorkeep.events.models import Event

    try:
        rows = Event.objects.filter(device_seq__isnull=False).values_list(
            "lock__serial", "device_seq"
        )
        return Counter((serial, int(seq)) for serial, seq in rows)
    finally:
        connection.close()


def routing_keys(
    redis_url: str, prefix: str, rows: dict[int, tuple[str, bool]]
) -> dict[int, tuple[str, str]]:
    """Locks whose gateway in Redis (what web workers ask) is not the one on
    their Device row: lock id -> (row's gateway, Redis's)."""
    import redis

    with redis.Redis.from_url(redis_url) as client:
        ids = sorted(rows)
        found = client.mget([f"{prefix}:lock:{lock_id}" for lock_id in ids]) if ids else []
    out = {}
    for lock_id, value in zip(ids, found, strict=True):
        gateway, online = rows[lock_id]
        held = (value or b"").decode()
        if held != (gateway if online else ""):
            out[lock_id] = (gateway if online else "", held)
    return out


async def db(func: Callable[[], Any]) -> Any:
    return await asyncio.to_thread(func)


async def until(check: Callable[[], Any], timeout: float, every: float = 0.05) -> float | None:
    """Seconds until ``check()`` (awaited if a coroutine) is true; None after ``timeout``."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return time.monotonic() - started
        await asyncio.sleep(every)
    return None


# --- the run ---------------------------------------------------------------------------------


@dataclass
class World:
    serials: list[str]
    lock_ids: dict[str, int]  # serial -> lock id
    entries: dict[int, int]  # lock id -> entry id
    token: str


def build_world(locks: int) -> World:
    """The locks at their own entries, a resident with a phone key on each and
    an API token, the device secrets (as gateway_unlock.py builds them)."""
    from gateway_unlock import build_world as build

    world, _resident, token = build(locks)
    return World(
        [lock.serial for lock in world.locks],
        {lock.serial: lock.pk for lock in world.locks},
        {lock.pk: lock.entry_id for lock in world.locks},
        token,
    )


def spread(rows: dict[int, tuple[str, bool]]) -> dict[str, int]:
    return dict(Counter(gateway for gateway, online in rows.values() if online))


def by_gateway(
    answers: Iterable[tuple[float, int, str]], gateway_of_entry: dict[int, str]
) -> dict[str, dict[str, int]]:
    out: dict[str, Counter[str]] = {}
    for _t, entry, outcome in answers:
        out.setdefault(gateway_of_entry.get(entry, "?"), Counter())[outcome] += 1
    return {gw: dict(c) for gw, c in sorted(out.items())}


@dataclass
class Run:
    """One run of the scenario: the platform, the locks, the unlocks, and the
    figures gathered in ``result``."""

    args: argparse.Namespace
    world: World
    platform: Platform
    fleet: Fleet
    unlocks: Unlocks
    result: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def make(cls, args: argparse.Namespace, world: World, platform: Platform) -> Run:
        fleet = Fleet.make(platform.device_url, world.serials)
        return cls(args, world, platform, fleet, Unlocks(platform.web_port, world.token))

    def entry(self, serial: str) -> int:
        return self.world.entries[self.world.lock_ids[serial]]

    def lock(self, serial: str) -> Any:
        return self.fleet.locks[self.world.serials.index(serial)]

    def on(self, gateway: str, rows: dict[int, tuple[str, bool]]) -> list[str]:
        return [s for s in self.world.serials if rows[self.world.lock_ids[s]][0] == gateway]

    def holders(self, rows: dict[int, tuple[str, bool]]) -> dict[int, str]:
        """entry id -> the gateway on its lock's Device row."""
        return {self.world.entries[lock_id]: gw for lock_id, (gw, _on) in rows.items()}

    async def floor(self) -> None:
        """The machine's speed; every lock connecting at once through nginx,
        cold; then gw-a's locks dropped and, once gw-a let them go, connecting
        again at once with no pause (the floor of a failover)."""
        print("\n-- floor: this machine's speed today --")
        self.result["machine"] = speed = gc.machine_speed()
        print(gc.machine_speed_line(speed))
        started = time.monotonic()
        errors = await self.fleet.connect(self.fleet.locks)
        cold = time.monotonic() - started
        online = sum(lock.online for lock in self.fleet.locks)
        print(
            f"floor: {online} of {self.args.locks} locks connected, welcomed and synced through "
            f"nginx at once in {cold:.2f} s" + (f"; errors {Counter(errors)}" if errors else "")
        )
        rows = await db(device_rows)
        self.result["spread_at_start"] = spread(rows)
        print(f"locks by gateway (Device rows, online): {self.result['spread_at_start']}")

        share = [self.lock(s) for s in self.on("gw-a", rows)]
        await asyncio.gather(*(lock.go_offline() for lock in share))

        async def released() -> bool:
            rows = await db(device_rows)
            return not any(rows[self.world.lock_ids[lock.serial]][1] for lock in share)

        await until(released, 10, 0.1)
        started = time.monotonic()
        errors = await self.fleet.connect(share)
        warm = time.monotonic() - started
        print(
            f"floor: the {len(share)} locks of gw-a dropped and reconnected through nginx "
            f"at once (no pause) in {warm:.2f} s"
            + (f"; errors {Counter(errors)}" if errors else "")
        )
        self.result["floor"] = {
            "connect_all_s": round(cold, 3),
            "reconnect_share_s": round(warm, 3),
        }
        await until(lambda: all(lock.online for lock in self.fleet.locks), 10)

    async def unlock_each(self) -> None:
        """One unlock to each lock through nginx: the locks on both gateways open."""
        rows = await db(device_rows)
        routes = await db(lambda: routing_keys(self.args.redis_url, self.args.redis_prefix, rows))
        self.result["routing_mismatch"] = len(routes)
        print(f"\n-- unlocks through nginx, one to each lock; locks by gateway {spread(rows)} --")
        if routes:
            print(
                f"!! Redis routing differs from the Device rows for {len(routes)} locks: {routes}"
            )
        answers = await self.unlocks.each([self.entry(s) for s in self.world.serials])
        per_gateway = by_gateway(self.unlocks.answers, self.holders(rows))
        opened = sum(len(lock.opened) for lock in self.fleet.locks)
        print(f"answers {dict(answers)}; by gateway {per_gateway}; the locks opened {opened} times")
        self.result["first_round"] = {
            "answers": dict(answers),
            "by_gateway": per_gateway,
            "opened": opened,
        }

    async def present_each(self) -> None:
        """Each lock presents a credential; the gateways acknowledge the events."""
        for n, lock in enumerate(self.fleet.locks):
            self.fleet.present(lock, n)
        await self.fleet.flush_all(30)
        print(f"each lock presented a credential: {len(self.fleet.acked)} events acknowledged")

    async def failover(self) -> set[tuple[str, int]]:
        """SIGKILL of gw-a while unlocks and presentations go on; the locks
        reconnect by themselves through nginx. Returns the events acknowledged
        before the kill."""
        args, fleet = self.args, self.fleet
        fleet.keep_connected()
        stop = asyncio.Event()
        entries = [self.entry(s) for s in self.world.serials]
        random.Random(3).shuffle(entries)
        background = [
            asyncio.create_task(self.unlocks.steadily(entries, args.rate, stop)),
            asyncio.create_task(present_steadily(fleet, args.event_rate, stop)),
        ]
        await asyncio.sleep(args.before)
        rows = await db(device_rows)
        on_victim, holders = self.on("gw-a", rows), self.holders(rows)
        killed_at = time.monotonic()
        os.kill(self.platform.gateways["gw-a"].pid, signal.SIGKILL)
        acked_before = {key for key, when in fleet.acked.items() if when < killed_at}
        print(
            f"\n-- SIGKILL of gw-a ({len(on_victim)} locks), unlocks at {args.rate:g}/s, "
            f"{args.event_rate:g} credentials/s presented --"
        )

        def welcomed_again() -> bool:
            return all(lock.online for lock in fleet.locks) and all(
                fleet.welcomed_at.get(s, 0) > killed_at for s in on_victim
            )

        async def rows_on_survivor() -> bool:
            rows = await db(device_rows)
            return all(gw == "gw-b" and online for gw, online in rows.values())

        back = await until(welcomed_again, args.back_within)
        back_at = time.monotonic()
        left = max(1.0, args.back_within - (back_at - killed_at))
        ready = await fleet.all_online(left)
        rows_back = await until(rows_on_survivor, left, 0.1)
        await asyncio.sleep(args.after)
        stop.set()
        await asyncio.gather(*background)
        window = [a for a in self.unlocks.answers if killed_at <= a[0] < back_at]
        self.result["failover"] = {
            "locks_on_killed": len(on_victim),
            "reconnected": sum(1 for s in on_victim if fleet.welcomed_at.get(s, 0) > killed_at),
            "never_dropped": sum(1 for lock in fleet.locks if lock.reconnects == 0),
            "back_s": since(killed_at, back_at) if back is not None else None,
            "ready_s": since(killed_at, back_at) + ready if ready is not None else None,
            "rows_s": since(killed_at, back_at) + rows_back if rows_back is not None else None,
            "unlocks_during": dict(self.unlocks.between(killed_at, back_at)),
            "unlocks_during_by_gateway": by_gateway(window, holders),
            "unlocks_after": dict(self.unlocks.between(back_at, time.monotonic())),
        }
        print_failover(self.result["failover"], args)
        return acked_before

    async def check_nginx(self) -> None:
        """What the documented configuration does: nginx's request id reaches
        the web servers (DOORKEEP_TRUSTED_PROXIES names nginx), and
        connections a dead gateway refused went on to the other."""
        ids = await db(lambda: nginx_request_id(self.platform, self.world.token))
        passed_on = nginx_passed_on(self.platform)
        self.result["nginx"] = {"request_id": ids, **passed_on}
        print(
            f"nginx: its request id {ids['nginx']!r}, the web server answered {ids['answered']!r} "
            f"(the client had sent 'chosen-by-the-client'); {passed_on['refused']} connections "
            f"refused by the dead gateway, {passed_on['handshakes_passed_on']} lock handshakes "
            f"passed on to the other (proxy_next_upstream)"
        )

    async def afterwards(self, acked_before: set[tuple[str, int]]) -> None:
        """Unlocks to every lock again; the events presented, acknowledged and stored."""
        rows = await db(device_rows)
        self.result["spread_at_end"] = spread(rows)
        self.unlocks.answers.clear()
        answers = await self.unlocks.each([self.entry(s) for s in self.world.serials])
        print(
            f"\n-- afterwards, one unlock to each lock: answers {dict(answers)}; "
            f"locks by gateway {self.result['spread_at_end']} --"
        )
        self.result["last_round"] = {"answers": dict(answers)}
        kept = await self.fleet.flush_all(30)
        stored = await db(stored_events)
        presented = Counter(self.fleet.presented)
        self.result["events"] = events = {
            "presented": len(presented),
            "stored": sum(stored.values()),
            "acked_before_kill": len(acked_before),
            "acked_lost": len(acked_before - set(stored)),
            "missing": len(set(presented) - set(stored)),
            "still_kept": kept,
            "stored_twice": sum(1 for n in stored.values() if n > 1),
            "unknown": len(set(stored) - set(presented)),
        }
        print(
            f"events: {events['presented']} presented, {events['stored']} stored; "
            f"{events['acked_before_kill']} acknowledged before the kill, of which "
            f"{events['acked_lost']} missing; {events['missing']} presented and not stored "
            f"({kept} still kept by the locks); {events['stored_twice']} stored twice; "
            f"{events['unknown']} unknown"
        )

    async def close(self) -> None:
        self.unlocks.close()
        await self.fleet.close()


def since(start: float, end: float) -> float:
    return round(end - start, 3)


def print_failover(fo: dict[str, Any], args: argparse.Namespace) -> None:
    def took(seconds: float | None) -> str:
        return f"{seconds:.2f} s" if seconds is not None else f"not within {args.back_within:g} s"

    during = fo["unlocks_during"]
    attempted, opened = sum(during.values()), during.get("200", 0)
    print(
        f"every lock welcomed again after {took(fo['back_s'])} ({fo['reconnected']} of the "
        f"{fo['locks_on_killed']} locks of gw-a reconnected; {fo['never_dropped']} locks never "
        f"lost their connection)"
    )
    print(f"every lock in step and its kept events uploaded after {took(fo['ready_s'])}")
    print(f"every Device row on gw-b and online after {took(fo['rows_s'])}")
    print(
        f"unlocks meanwhile (kill -> every lock back): {attempted} attempted, {opened} opened, "
        f"{attempted - opened} refused; answers {during}"
    )
    print(f"    by the gateway holding the lock at the kill: {fo['unlocks_during_by_gateway']}")
    after = fo["unlocks_after"]
    print(
        f"unlocks in the {args.after:g} s after: {sum(after.values())} attempted, answers {after}"
    )


async def scenario(args: argparse.Namespace, world: World, platform: Platform) -> dict[str, Any]:
    run = Run.make(args, world, platform)
    run.result["locks"] = args.locks
    try:
        await run.floor()
        await run.unlock_each()
        await run.present_each()
        acked_before = await run.failover()
        await run.afterwards(acked_before)
    finally:
        await run.close()
    await asyncio.sleep(0.5)  # nginx logs a WebSocket when it ends
    await run.check_nginx()
    return run.result


def verdict(result: dict[str, Any], args: argparse.Namespace) -> list[str]:
    """What failed ([] when everything held)."""
    n = args.locks
    failures = []
    if len(result.get("spread_at_start", {})) != 2:
        failures.append(f"the locks are not on both gateways: {result.get('spread_at_start')}")
    first = result.get("first_round", {})
    if (
        first.get("answers") != {"200": n}
        or first.get("opened") != n
        or len(first.get("by_gateway", {})) != 2
    ):
        failures.append(f"unlocks through nginx before the kill: {first}")
    fo = result.get("failover", {})
    if result.get("routing_mismatch"):
        failures.append(f"Redis routing differs from the Device rows: {result['routing_mismatch']}")
    if fo.get("back_s") is None or fo.get("rows_s") is None or fo.get("ready_s") is None:
        failures.append(f"not every lock back on gw-b within {args.back_within:g} s: {fo}")
    if result.get("last_round", {}).get("answers") != {"200": n}:
        failures.append(f"unlocks after the failover: {result.get('last_round')}")
    if result.get("spread_at_end") != {"gw-b": n}:
        failures.append(f"locks by gateway at the end: {result.get('spread_at_end')}")
    ids = result.get("nginx", {}).get("request_id", {})
    if not ids.get("nginx") or ids.get("answered") != ids.get("nginx"):
        failures.append(f"the web server's X-Request-ID is not nginx's: {ids}")
    ev = result.get("events", {})
    if ev.get("acked_lost") or ev.get("missing") or ev.get("stored_twice"):
        failures.append(f"events: {ev}")
    if ev.get("presented") != ev.get("stored"):
        failures.append(f"events presented {ev.get('presented')}, stored {ev.get('stored')}")
    return failures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--locks", type=int, default=200)
    parser.add_argument("--rate", type=float, default=20.0, help="unlocks a second meanwhile")
    parser.add_argument("--event-rate", type=float, default=20.0, help="credentials a second")
    parser.add_argument("--before", type=float, default=2.0, help="seconds before the kill")
    parser.add_argument("--after", type=float, default=3.0, help="seconds after all are back")
    parser.add_argument("--back-within", type=float, default=60.0, help="the bound, seconds")
    parser.add_argument("--web-workers", type=int, default=1, help="workers of each web server")
    parser.add_argument("--database", default="", help="the PostgreSQL database's name")
    parser.add_argument("--redis-url", default=REDIS_URL)
    parser.add_argument("--keep", action="store_true", help="leave it all running until Enter")
    args = parser.parse_args(argv)
    args.redis_prefix = f"doorkeep-bench-{os.getpid()}"

    print(
        f"== the scaled-out set-up behind nginx: {args.locks} locks, 2 web servers, 2 gateways =="
    )
    missing = missing_prerequisites(args.redis_url)
    if missing:
        print(f"cannot run: {missing}")
        _setup.emit_result("scaled_out", "postgresql", passed=False, missing=missing)
        return 2
    gc.raise_open_files()
    os.environ.update(
        {
            "DOORKEEP_GATEWAY_ROUTING": "redis",
            "REDIS_URL": args.redis_url,
            "DOORKEEP_GATEWAY_REDIS_PREFIX": args.redis_prefix,
        }
    )
    db = _setup.setup(postgres=True, pg_name=args.database)
    atexit.register(forget_redis_keys, args.redis_url, args.redis_prefix)
    logdir = db.tempdir / "logs"
    logdir.mkdir()
    print(gc.load_line() + " at start")
    started = time.monotonic()
    world = build_world(args.locks)
    print(
        f"setup: database {db.pg_name}, {args.locks} locks, in {time.monotonic() - started:.1f} s"
    )
    gc.analyze_postgres()
    started = time.monotonic()
    platform = start_platform(args, db.tempdir / "machines", logdir)
    print(
        f"started in {time.monotonic() - started:.1f} s: gateways "
        + ", ".join(f"{name} :{platform.ports[name]}" for name in GATEWAY_IDS)
        + "; web servers "
        + ", ".join(f"{name} :{platform.ports[name]}" for name in WEB_NAMES)
        + f"; nginx :{platform.web_port} (web), :{platform.device_port} (devices), "
        f"configuration from docs/operations.md in {platform.prefix}"
    )
    gc.settle_here()
    result = asyncio.run(scenario(args, world, platform))
    failures = verdict(result, args)
    for failure in failures:
        print(f"!! {failure}")
    print(
        ("PASS" if not failures else "FAIL")
        + f": every lock back on gw-b {result.get('failover', {}).get('back_s')} s after the kill"
    )
    print(gc.load_line() + " at the end")
    if failures:
        print(f"logs in {logdir}")
        for child in [*platform.gateways.values(), *platform.webs.values(), platform.nginx]:
            print(f"-- {child.name} --\n{child.log_tail(8)}")
    if args.keep:
        print(f"\n--keep: logs in {logdir}, nginx in {platform.prefix}; Enter stops it all")
        with contextlib.suppress(EOFError, KeyboardInterrupt):
            input()
    _setup.emit_result(
        "scaled_out",
        "postgresql",
        passed=not failures,
        failures=failures,
        **result,
        load=round(os.getloadavg()[0], 2),
    )
    return 0 if not failures else 1


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("interrupted: stopping every process, dropping the database", flush=True)
        sys.exit(130)
