"""`doorkeep serve` keeps its children running: a child killed is started
again, with a line in the log that says which and why; a child that fails its
first start stops serve; SIGTERM stops everything. `doorkeep jobs` runs the
periodic jobs alone. Real processes throughout."""

import http.client
import json
import logging
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest

from doorkeep import supervisor
from doorkeep.cli import main
from test_cli import DOORKEEP, _free_port, _processes_with

STARTUP = 240.0  # migrating a fresh database and starting granian, on a busy machine


def _wait(check: Callable[[], object], timeout: float, what: str) -> object:
    deadline = time.monotonic() + timeout
    while True:
        try:
            found = check()
        except (OSError, http.client.HTTPException):
            found = None
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not happen within {timeout:.0f} s")
        time.sleep(0.2)


def _env(tmp_path: Path) -> dict[str, str]:
    env = {**os.environ, "DOORKEEP_DATA_DIR": str(tmp_path)}
    for name in ("DATABASE_URL", "DJANGO_SETTINGS_MODULE", "PORT", "GATEWAY_PORT", "SITE_URL"):
        env.pop(name, None)
    return env


def _children(pid: int) -> dict[int, str]:
    """The child processes of ``pid``, with their command lines."""
    found = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        for child in (task / "children").read_text().split():
            try:
                cmdline = Path(f"/proc/{child}/cmdline").read_bytes()
            except OSError:
                continue
            found[int(child)] = cmdline.replace(b"\0", b" ").decode()
    return found


def _child(serve: int, needle: str) -> int | None:
    return next((pid for pid, line in _children(serve).items() if needle in line), None)


def _get(url: str) -> tuple[int, bytes]:
    with urllib.request.urlopen(url, timeout=5) as answer:  # noqa: S310 - our own test server
        return answer.status, answer.read()


def test_serve_starts_a_killed_gateway_again_and_sigterm_still_stops_everything(tmp_path):
    port = _free_port()
    log = tmp_path / "serve.log"
    with log.open("w") as out:
        serve = subprocess.Popen(
            [DOORKEEP, "serve", "--workers", "1", "--port", str(port)],
            env=_env(tmp_path),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        # The gateway says when it listens: knocking on a port nobody listens on
        # yet may connect the test to itself (same port both ends).
        listening = f"listening on http://127.0.0.1:{port + 1}"
        _wait(lambda: listening in log.read_text(), STARTUP, "the gateway")
        _wait(lambda: _get(f"http://127.0.0.1:{port}/readyz")[0] == 200, STARTUP, "/readyz")
        web = _child(serve.pid, "granian")
        gateway = _child(serve.pid, " gateway ")
        assert web and gateway, _children(serve.pid)
        # Past its first start: a gateway that stops sooner is a setting to fix.
        time.sleep(supervisor.FIRST_START_SECONDS)
        os.kill(gateway, signal.SIGKILL)

        said = f"gateway (doorkeep gateway --host 127.0.0.1 --port {port + 1} --id "
        _wait(lambda: said in log.read_text(), 30, "a line about the gateway")
        line = next(line for line in log.read_text().splitlines() if said in line)
        assert "was killed by SIGKILL" in line
        assert "starting it again in 1 s (restart 1)" in line
        _wait(lambda: log.read_text().count(listening) == 2, 60, "the gateway listening again")
        assert _child(serve.pid, " gateway ") not in (gateway, None)
        status, body = _get(f"http://127.0.0.1:{port + 1}/healthz")
        assert status == 200 and json.loads(body)["ok"] is True
        # Under the same name: it takes over what the one killed left behind.
        assert json.loads(body)["gateway"] == f"{socket.gethostname()}-{port + 1}"
        # The web server stayed as it was, and finds the new gateway.
        assert _child(serve.pid, "granian") == web
        _wait(lambda: _get(f"http://127.0.0.1:{port}/readyz")[0] == 200, 60, "/readyz again")
        assert serve.poll() is None

        serve.send_signal(signal.SIGTERM)
        assert serve.wait(timeout=40) == 0
        _wait(lambda: _processes_with(tmp_path) == [], 20, "every child stopping")
    finally:
        serve.kill()
        for pid in _processes_with(tmp_path):
            os.kill(pid, signal.SIGKILL)


def test_serve_stops_when_its_web_server_fails_its_first_start(tmp_path):
    """(The gateway's port taken: tests/test_cli.py.)"""
    port = _free_port()
    log = tmp_path / "serve.log"
    with socket.socket() as taken, log.open("w") as out:
        taken.bind(("127.0.0.1", port))  # the web server's port is in use
        taken.listen()
        serve = subprocess.Popen(
            [DOORKEEP, "serve", "--workers", "2", "--port", str(port)],
            env=_env(tmp_path),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        try:
            serve.wait(timeout=STARTUP)
        finally:
            serve.kill()
    try:
        assert serve.returncode == 1
        output = log.read_text()
        said = [line for line in output.splitlines() if "web server (granian " in line]
        assert len(said) == 1, output
        assert "exited with code 1" in said[0]
        assert "after it started: stopping" in said[0]
        assert "starting it again" not in output
        _wait(lambda: _processes_with(tmp_path) == [], 20, "every child stopping")
    finally:
        for pid in _processes_with(tmp_path):
            os.kill(pid, signal.SIGKILL)


class _Receiver(BaseHTTPRequestHandler):
    got: list[str] = []

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        type(self).got.append(self.headers["webhook-id"])
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


SETUP = """
from django.db import transaction
from doorkeep.accounts.services import create_organization, create_user
from doorkeep.notify.services import create_endpoint, emit_webhook
user = create_user("jobs@example.com", "long enough pw")
org = create_organization(user, "Jobs")
create_endpoint(user, org.pk, url="{url}")
with transaction.atomic():
    emit_webhook(org.pk, "webhook.test", {{}})
"""


def test_jobs_delivers_notifications_until_sigterm(tmp_path):
    receiver = HTTPServer(("127.0.0.1", 0), _Receiver)
    _Receiver.got = []
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    env = {**_env(tmp_path), "DOORKEEP_OUTBOX_KICK": "false"}  # only the jobs deliver
    url = f"http://127.0.0.1:{receiver.server_address[1]}/hook"
    subprocess.run([DOORKEEP, "migrate"], env=env, check=True, capture_output=True, timeout=240)
    subprocess.run(
        [DOORKEEP, "manage", "shell", "-c", SETUP.format(url=url)],
        env=env,
        check=True,
        capture_output=True,
        timeout=120,
    )
    assert _Receiver.got == []
    jobs = subprocess.Popen(
        [DOORKEEP, "jobs", "--outbox-interval", "1"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        _wait(lambda: _Receiver.got, 120, "the webhook's delivery")
        jobs.send_signal(signal.SIGTERM)
        output, _ = jobs.communicate(timeout=30)
        assert jobs.returncode == 0, output
        assert "Doorkeep jobs running" in output
        assert len(_Receiver.got) == 1
    finally:
        jobs.kill()
        receiver.shutdown()


@pytest.mark.django_db
def test_jobs_once_runs_every_job_and_stops(world):
    from django.db import transaction

    from doorkeep.notify.models import OutboxMessage
    from doorkeep.notify.services import create_endpoint, emit_webhook

    create_endpoint(world.alice, world.org.pk, url="http://127.0.0.1:9/nobody")
    with transaction.atomic():
        emit_webhook(world.org.pk, "webhook.test", {})

    assert main(["jobs", "--once"]) == 0

    assert OutboxMessage.objects.get().attempts == 1


def _unit(marker: str) -> list[tuple[str, str]]:
    """The lines ``key=value`` of a unit file docs/operations.md gives."""
    text = (Path(__file__).resolve().parents[1] / "docs" / "operations.md").read_text()
    block = re.search(rf"<!-- {marker} -->\n```ini\n(.*?)```", text, re.S)
    assert block, f"docs/operations.md lost its {marker} unit"
    lines = block.group(1).splitlines()
    return [
        (key, value)
        for key, _, value in (line.partition("=") for line in lines)
        if value and not key.startswith("#")
    ]


@pytest.mark.parametrize("marker", ["systemd-web", "systemd-gateway", "systemd-jobs"])
def test_the_documented_units_run_what_serve_runs(marker):
    from doorkeep import cli
    from doorkeep.core.memory import FREEZE_ENV
    from doorkeep.core.metrics import MULTIPROC_ENV

    unit = _unit(marker)
    settings = dict(unit)
    assert settings["User"] == "doorkeep"
    assert ("EnvironmentFile", "/etc/doorkeep/env") in unit
    assert settings["Restart"] == "always"
    commands = [value.split() for key, value in unit if key in ("ExecStart", "ExecStartPre")]
    doorkeeps = [argv[1:] for argv in commands if argv[0].endswith("/bin/doorkeep")]
    for argv in doorkeeps:
        cli.build_parser().parse_args([arg.replace("%i", "gw-1") for arg in argv])
    if marker == "systemd-web":
        # granian with what `doorkeep serve` gives it.
        granian = settings["ExecStart"].split()
        assert granian[0].endswith("/bin/granian")
        served = cli.web_command(host="127.0.0.1", port=8000, workers=2, threads=4)
        assert granian[1:] == served[1:]
        # Static files as serve collects them; migrating is an upgrade's own step.
        assert [argv[:2] for argv in doorkeeps] == [["manage", "collectstatic"]]
        environment = [value for key, value in unit if key == "Environment"]
        assert f"{FREEZE_ENV}=1" in environment
        assert any(value.startswith(f"{MULTIPROC_ENV}=") for value in environment)
    elif marker == "systemd-gateway":
        assert doorkeeps == [["gateway", "--id", "%i"]]
    else:
        assert doorkeeps == [["jobs"]]


def _stopped(child: supervisor.Child) -> None:
    """Wait until the child's process has ended (it ends by itself)."""
    assert child.process is not None
    child.process.wait(timeout=30)


def test_a_child_that_keeps_stopping_waits_longer_each_time_up_to_30_seconds(caplog):
    caplog.set_level(logging.INFO, logger="doorkeep.serve")
    child = supervisor.Child("worker", [sys.executable, "-c", "raise SystemExit(3)"])
    child.start()
    _stopped(child)
    child.started -= supervisor.FIRST_START_SECONDS  # its first run was long enough
    waits = []
    for _ in range(7):
        assert supervisor._tend(child)  # noticed: starts again later
        assert child.process is None
        waits.append(child.backoff)
        child.restart_at = 0  # no need to wait it out here
        supervisor._tend(child)  # started again
        _stopped(child)
    assert waits == [1, 2, 4, 8, 16, 30, 30]
    said = f"worker ({child.command()}) "
    lines = [r.getMessage() for r in caplog.records if said in r.getMessage()]
    assert len(lines) == 7
    assert "exited with code 3" in lines[0]
    assert "starting it again in 1 s (restart 1)" in lines[0]
    assert "starting it again in 30 s (restart 7)" in lines[-1]
    # A run of a minute or more: the next wait is 1 second again.
    child.started -= supervisor.STEADY_SECONDS
    supervisor._tend(child)
    assert child.backoff == 1


def test_a_child_killed_in_its_first_seconds_stops_serve_and_says_by_what(caplog):
    child = supervisor.Child("worker", [sys.executable, "-c", "import time; time.sleep(60)"])
    child.start()
    assert supervisor._tend(child)  # running
    assert child.process is not None
    child.process.send_signal(signal.SIGTERM)
    _stopped(child)
    assert not supervisor._tend(child)
    assert f"worker ({child.command()}) was killed by SIGTERM" in caplog.text
    assert "time.sleep(60)" in child.command()
    assert "after it started: stopping" in caplog.text


def test_a_slow_job_does_not_hide_a_child_failing_its_first_start(monkeypatch, caplog):
    """The jobs run beside the children: a first round of jobs longer than the
    first-start window still lets serve notice the failure and stop (1)."""
    monkeypatch.setattr(supervisor, "FIRST_START_SECONDS", 2.0)
    monkeypatch.setattr(supervisor, "_hourly_jobs", lambda: (("slow job", _slow),))
    child = supervisor.Child(
        "web server", [sys.executable, "-c", "import time, sys; time.sleep(0.3); sys.exit(1)"]
    )
    started = time.monotonic()
    assert supervisor.supervise([child], supervisor.Jobs(hourly=3600, outbox=0)) == 1
    assert child.starts == 1
    assert time.monotonic() - started < 2.5  # not after the slow job
    assert "exited with code 1" in caplog.text and "after it started: stopping" in caplog.text


def _slow() -> int:
    time.sleep(3)
    return 0
