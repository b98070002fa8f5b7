"""The scaled-out set-up behind nginx, for real: bench/scaled_out.py with 30
locks. nginx (Debian's package) with the configuration docs/operations.md
recommends, two web servers and two gateways as processes of their own, on
PostgreSQL with Redis routing; then SIGKILL of one gateway. Skipped only
when nginx, PostgreSQL or Redis is missing."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
BENCH = ROOT / "bench"
# The machine's PostgreSQL (the set-up needs it even when the suite runs on
# SQLite); a database of the test's own is made there and dropped.
PG_SERVER = "postgresql://postgres@127.0.0.1:5432"
REDIS_URL = "redis://127.0.0.1:6379/13"
LOCKS = 30
BACK_WITHIN = 60  # seconds from the kill until every lock is back on the other gateway

if str(BENCH) not in sys.path:
    sys.path.insert(0, str(BENCH))


def _skip(reason: str) -> None:
    print(f"SKIPPED: {reason}")
    pytest.skip(reason)


def _nginx() -> str:
    import scaled_out

    nginx = scaled_out.nginx_bin()
    if nginx is None:
        _skip("nginx is not installed (apt-get install nginx)")
    assert nginx is not None
    return nginx


def _prerequisites() -> None:
    _nginx()
    import psycopg
    import redis

    try:
        with psycopg.connect(f"{PG_SERVER}/postgres", connect_timeout=3):
            pass
    except psycopg.Error as exc:
        _skip(f"PostgreSQL is not reachable at {PG_SERVER}: {exc}")
    try:
        with redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2) as client:
            client.ping()
    except redis.RedisError as exc:
        _skip(f"Redis is not reachable at {REDIS_URL}: {exc}")


def test_the_documented_nginx_configuration_is_valid_nginx(tmp_path):
    import scaled_out

    nginx = _nginx()
    site = scaled_out.render_nginx_conf(
        scaled_out.documented_nginx_conf(),
        web_servers=["127.0.0.1:8000", "127.0.0.1:8100"],
        gateways=["127.0.0.1:8001", "127.0.0.1:8101", "127.0.0.1:8201"],
        web_listen="127.0.0.1:8080",
        device_listen="127.0.0.1:8081",
    )
    (tmp_path / "doorkeep.conf").write_text(site)
    conf = tmp_path / "nginx.conf"
    conf.write_text(scaled_out.nginx_main_conf(tmp_path))

    checked = subprocess.run(
        [nginx, "-t", "-p", f"{tmp_path}/", "-e", f"{tmp_path}/error.log", "-c", f"{conf}"],
        capture_output=True,
        text=True,
        check=False,
    )

    assert checked.returncode == 0, checked.stderr
    assert site.count("server 127.0.0.1:8") == 5  # each server line repeated per address
    assert "@" not in site
    assert "proxy_read_timeout 90s;" in site  # above the gateways' 30 s ping


def _run_bench() -> tuple[int, dict[str, Any], str]:
    database = f"doorkeep_test_nginx_{uuid.uuid4().hex[:10]}"
    env = {**os.environ, "BENCH_POSTGRES_URL": PG_SERVER}
    env.pop("DATABASE_URL", None)
    argv = [sys.executable, str(BENCH / "scaled_out.py"), "--locks", str(LOCKS)]
    argv += ["--database", database, "--redis-url", REDIS_URL, "--back-within", str(BACK_WITHIN)]
    # In a session of its own: on a timeout (or Ctrl-C) it gets SIGTERM, which
    # it turns into an orderly exit that stops nginx, the web servers and the
    # gateways and drops its database; SIGKILL to its whole group only after.
    bench = subprocess.Popen(
        argv,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
        cwd=ROOT,
        start_new_session=True,
    )
    try:
        stdout, _ = bench.communicate(timeout=600)
    except BaseException:
        os.killpg(bench.pid, signal.SIGTERM)
        try:
            bench.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(bench.pid, signal.SIGKILL)
            bench.communicate()
        raise
    lines = [line for line in stdout.splitlines() if line.startswith("RESULT ")]
    assert lines, f"no RESULT line (exit {bench.returncode}):\n{stdout[-6000:]}"
    return bench.returncode, json.loads(lines[-1][len("RESULT ") :]), stdout


def test_a_gateway_killed_behind_nginx_loses_no_lock_and_no_acknowledged_event():
    _prerequisites()

    code, result, output = _run_bench()
    print(output)  # the figures, shown with -s or on failure

    assert "missing" not in result, result
    # Unlocks through nginx reached locks on both gateways.
    assert set(result["spread_at_start"]) == {"gw-a", "gw-b"}
    first = result["first_round"]
    assert first["answers"] == {"200": LOCKS}
    assert first["opened"] == LOCKS
    assert set(first["by_gateway"]) == {"gw-a", "gw-b"}
    assert all(set(answers) == {"200"} for answers in first["by_gateway"].values())
    # After SIGKILL of gw-a every lock is back, on gw-b, within the bound.
    failover = result["failover"]
    assert failover["locks_on_killed"] > 0
    assert failover["reconnected"] == failover["locks_on_killed"]
    assert failover["back_s"] is not None and failover["back_s"] <= BACK_WITHIN
    assert failover["rows_s"] is not None and failover["rows_s"] <= BACK_WITHIN
    assert failover["ready_s"] is not None
    assert result["spread_at_end"] == {"gw-b": LOCKS}
    # Unlocks succeed again, on every lock.
    assert "503 lock_offline" not in failover["unlocks_after"]
    assert result["last_round"]["answers"] == {"200": LOCKS}
    # Nothing acknowledged is lost, nothing stored twice.
    events = result["events"]
    assert events["acked_before_kill"] >= LOCKS
    assert events["acked_lost"] == 0
    assert events["missing"] == 0
    assert events["stored_twice"] == 0
    assert events["presented"] == events["stored"]
    # nginx's request id reached the web server, not the client's own.
    ids = result["nginx"]["request_id"]
    assert ids["answered"] == ids["nginx"] != "chosen-by-the-client"
    assert result["passed"] is True, result["failures"]
    assert code == 0
