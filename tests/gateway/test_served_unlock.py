"""The remote unlock over real HTTP, as deployed: granian serving
doorkeep.wsgi (the unlock front door in front of Django) in a process of its
own, on the test database, reaching the test's gateway and simulated lock."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from django.conf import settings
from gateway_helpers import database_url as _database_url
from gateway_helpers import free_port as _free_port

from doorkeep.accounts.services import create_token
from doorkeep.events.models import Event, EventKind


def _start(
    env: dict[str, str], log: Path, workers: int = 1
) -> tuple[subprocess.Popen[bytes], str] | None:
    """granian on a free port; None if the port was taken meanwhile."""
    port = _free_port()
    granian = Path(sys.executable).with_name("granian")
    argv = [str(granian), "--interface", "wsgi", "--host", "127.0.0.1", "--port", str(port)]
    argv += ["--workers", str(workers), "--blocking-threads", "2", "--no-ws"]
    argv += ["--log-level", "warning"]
    with log.open("ab") as out:
        child = subprocess.Popen(
            [*argv, "doorkeep.wsgi:application"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its worker processes go with it
        )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        try:
            urllib.request.urlopen(f"{base}/api/v1/me", timeout=2)  # noqa: S310
        except urllib.error.HTTPError:
            time.sleep(0.2)
            if child.poll() is not None:
                return None  # another server answered on that port
            return child, base  # 401: it answers
        except OSError:
            if child.poll() is not None:
                return None
            if time.monotonic() > deadline:
                _stop(child)
                return None
            time.sleep(0.1)


def _threads_of_worker(pid: int) -> int:
    """Threads of granian's (one) worker process, a child of ``pid``."""
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return sum(len(list(Path(f"/proc/{child}/task").iterdir())) for child in children)


def _stop(child: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(child.pid, signal.SIGTERM)
    try:
        child.wait(10)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(child.pid, signal.SIGKILL)
        child.wait(5)


@contextlib.contextmanager
def _serving(
    log: Path, workers: int = 1, **extra: str
) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    env = {
        **os.environ,
        "DATABASE_URL": _database_url(),
        "DOORKEEP_DATA_DIR": str(settings.DATA_DIR),
        "DJANGO_SETTINGS_MODULE": "doorkeep.settings",
        "DOORKEEP_OUTBOX_KICK": "0",
        **extra,
    }
    for _attempt in range(3):  # another process may take the free port first
        started = _start(env, log, workers)
        if started is not None:
            break
    else:
        pytest.fail(f"granian did not start:\n{log.read_text()[-3000:]}")
    child, base = started
    try:
        yield child, base
    finally:
        _stop(child)


@pytest.fixture
def served(transactional_db: None, tmp_path: Path) -> Iterator[str]:
    """granian with one worker, as `doorkeep serve` starts it; its base URL."""
    with _serving(tmp_path / "granian.log") as (_child, base):
        yield base


def post(url: str, token: str) -> tuple[int, dict[str, object]]:
    request = urllib.request.Request(  # noqa: S310 - a loopback URL of the test
        url, method="POST", data=b"", headers={"Authorization": f"Bearer {token}"}
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_the_served_api_opens_a_lock_over_http(world, alice_lock, gateway, served):
    device = gateway.lock(alice_lock.serial)
    gateway.run(device.connect())
    _row, token = create_token(world.alice, "served")

    status, body = post(f"{served}/api/v1/entries/{world.entry.pk}/unlock", token)

    assert status == 200, body
    assert body["opened"] is True and body["lock_id"] == alice_lock.pk
    assert device.opened == [body["request_id"]]
    assert Event.objects.filter(
        lock=alice_lock, kind=EventKind.ACCESS_GRANTED, actor=world.alice
    ).exists()


def test_the_served_api_answers_404_for_another_tenants_entry(world, alice_lock, gateway, served):
    device = gateway.lock(alice_lock.serial)
    gateway.run(device.connect())
    _row, token = create_token(world.charlie, "served")

    status, body = post(f"{served}/api/v1/entries/{world.entry.pk}/unlock", token)

    assert status == 404 and body["code"] == "not_found"
    assert device.opened == []


def test_threads_that_granian_ends_when_idle_leave_the_worker_serving(
    world, alice_lock, gateway, transactional_db, tmp_path
):
    """granian ends a blocking thread idle for a while; the connection it held
    is closed afterwards (doorkeep/core/threads.py), and the worker goes on."""
    device = gateway.lock(alice_lock.serial)
    gateway.run(device.connect())
    _row, token = create_token(world.alice, "served")
    log = tmp_path / "granian.log"
    with _serving(log, GRANIAN_BLOCKING_THREADS_IDLE_TIMEOUT="5") as (child, base):
        url = f"{base}/api/v1/entries/{world.entry.pk}/unlock"
        with ThreadPoolExecutor(8) as pool:  # both of the worker's threads busy
            assert {status for status, _ in pool.map(lambda _: post(url, token), range(16))} == {
                200
            }
        busy = _threads_of_worker(child.pid)
        time.sleep(7)  # idle: granian ends a thread
        assert _threads_of_worker(child.pid) < busy  # it did: what this test is about
        status, body = post(url, token)
        assert status == 200, (body, log.read_text()[-2000:])
        assert child.poll() is None
    assert len(device.opened) == 17
    assert "Unexpected exit" not in log.read_text()


def _scrape(base: str, token: str) -> str:
    request = urllib.request.Request(  # noqa: S310 - a loopback URL of the test
        f"{base}/metrics", headers={"Authorization": f"Bearer {token}"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
        return str(response.read().decode())


def test_the_metrics_of_two_web_workers_add_up_whichever_answers_the_scrape(
    world, alice_lock, transactional_db, tmp_path
):
    """`doorkeep serve` counts the workers' metrics in files of one folder
    (prometheus-client's multiprocess mode): 8 unlocks of an offline lock,
    spread over two workers, are 8 in every scrape."""
    from prometheus_client.parser import text_string_to_metric_families

    _row, token = create_token(world.alice, "served")
    folder = tmp_path / "metrics"
    folder.mkdir()
    extra = {"PROMETHEUS_MULTIPROC_DIR": str(folder), "DOORKEEP_METRICS_TOKEN": "scrape-me"}
    extra["GATEWAY_URL"] = f"http://127.0.0.1:{_free_port()}"  # nobody there: offline
    with _serving(tmp_path / "granian.log", workers=2, **extra) as (child, base):
        url = f"{base}/api/v1/entries/{world.entry.pk}/unlock"
        with ThreadPoolExecutor(4) as pool:
            answers = list(pool.map(lambda _: post(url, token), range(8)))
        assert {status for status, _ in answers} == {503}
        workers = Path(f"/proc/{child.pid}/task/{child.pid}/children").read_text().split()
        assert len(workers) == 2
        counts = set()
        for _ in range(6):
            offline = [
                sample.value
                for family in text_string_to_metric_families(_scrape(base, "scrape-me"))
                for sample in family.samples
                if sample.name == "doorkeep_unlock_seconds_count"
                and sample.labels.get("outcome") == "offline"
            ]
            counts.add(sum(offline))
    assert counts == {8.0}
    assert len(list(folder.glob("*.db"))) >= 2  # both workers wrote their figures
