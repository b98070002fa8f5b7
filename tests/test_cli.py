import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from doorkeep.accounts.models import Membership, Role, User
from doorkeep.cli import main
from doorkeep.locks.models import Lock

ROOT = Path(__file__).resolve().parent.parent
DOORKEEP = str(Path(sys.executable).with_name("doorkeep"))


def test_help_explains_every_command():
    result = subprocess.run([DOORKEEP, "--help"], capture_output=True, text=True, check=True)
    for command in ("serve", "migrate", "createuser", "demo", "locks", "token", "manage"):
        assert command in result.stdout


@pytest.mark.django_db
def test_createuser_makes_a_verified_lock_owner(capsys):
    assert (
        main(["createuser", "dora@example.com", "--password", "long enough pw", "--name", "Dora"])
        == 0
    )
    user = User.objects.get(email="dora@example.com")
    assert user.check_password("long enough pw")
    assert user.emailaddress_set.get().verified  # type: ignore[attr-defined]
    assert Membership.objects.get(user=user).role == Role.LOCK_OWNER
    assert "Created dora@example.com" in capsys.readouterr().out


@pytest.mark.django_db
def test_createuser_refuses_a_taken_address_and_a_short_password(capsys):
    main(["createuser", "dora@example.com", "--password", "long enough pw"])
    assert main(["createuser", "DORA@example.com", "--password", "long enough pw"]) == 2
    assert "already exists" in capsys.readouterr().err
    assert main(["createuser", "eve@example.com", "--password", "short"]) == 2
    assert "at least 8 characters" in capsys.readouterr().err


@pytest.mark.django_db
def test_createuser_operator_gets_the_platform_role():
    main(["createuser", "op@example.com", "--password", "long enough pw", "--operator"])
    user = User.objects.get(email="op@example.com")
    membership = Membership.objects.get(user=user)
    assert membership.role == Role.PLATFORM_OPERATOR
    assert membership.organization.is_platform
    assert user.is_staff


@pytest.mark.django_db
def test_locks_add_prints_claim_secrets_that_register_the_lock(capsys, world):
    assert main(["locks", "add", "dk-new-0001", "DK-NEW-0002"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0] == "serial,claim_secret"
    serial, secret = lines[1].split(",")
    assert serial == "DK-NEW-0001"
    assert len(secret.replace("-", "")) == 16
    from doorkeep.locks.services import register_lock

    lock = register_lock(
        world.alice, serial=serial, claim_secret=secret.lower(), entry_id=world.entry2.pk
    )
    assert lock.organization_id == world.org.pk
    assert main(["locks", "add", "DK-NEW-0001"]) == 1
    assert "already exists" in capsys.readouterr().err


@pytest.mark.django_db
def test_token_prints_a_working_token(capsys, world):
    from doorkeep.accounts.services import user_for_token

    assert main(["token", "alice@example.com"]) == 0
    token = capsys.readouterr().out.strip()
    assert user_for_token(token) == world.alice
    assert main(["token", "nobody@example.com"]) == 2


@pytest.mark.django_db
def test_demo_loads_a_realistic_building_once(capsys):
    from doorkeep.events.models import Event
    from doorkeep.keys.models import KeyCredential

    assert main(["demo"]) == 0
    assert Lock.objects.filter(organization__isnull=False).count() == 6
    from doorkeep.licensing.state import licence_of

    modes = {
        lock.serial: licence_of(lock.pk).mode
        for lock in Lock.objects.filter(organization__isnull=False)
    }
    assert modes["DK-2025-0001"] == "active"
    assert modes["DK-2025-0006"] == "take_back_only"
    assert Lock.objects.filter(organization__isnull=True).count() == 3
    kinds = set(KeyCredential.objects.values_list("kind", flat=True))
    assert kinds == {"phone", "pin", "remote", "tag"}
    assert Event.objects.filter(kind="access.granted").count() > 100
    assert Event.objects.filter(kind="access.denied").count() > 10
    assert Event.objects.count() >= 300
    # Guests: Gus accepted Rosa's invitation; a friend's waits; the main
    # entrance has a panel whose codes verify presence, the bike storage an
    # NTAG 424 DNA panel whose taps do.
    from doorkeep.guests import presence, simulator, tags
    from doorkeep.guests.models import Invitation, Panel

    gus = User.objects.get(email="guest@demo.doorkeep.test")
    assert sorted(Invitation.objects.values_list("status", flat=True)) == ["accepted", "sent"]
    panel = Panel.objects.get(tag="code")
    assert presence.standing(gus, panel.entry.property_id).required
    presence.verify(gus, panel.entry_id, presence.code_at(panel.secret)[0])
    assert presence.standing(gus, panel.entry.property_id).verified
    tag_panel = simulator.from_database(Panel.objects.get(tag="ntag424").pk)
    query = parse_qs(urlsplit(tag_panel.tap("http://127.0.0.1:8000").split()[-1]).query)
    token = tags.accept_tap(tag_panel.panel_id, query["picc_data"][0], query["cmac"][0])
    assert tags.verify_tap(gus, token).name == "Bike storage"
    count = Event.objects.count()
    assert main(["demo"]) == 0
    assert "already there" in capsys.readouterr().out
    assert Event.objects.count() == count


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_serve_migrates_loads_the_demo_and_answers_http(tmp_path):
    port = _free_port()
    env = {**os.environ, "DOORKEEP_DATA_DIR": str(tmp_path)}
    for name in ("DATABASE_URL", "DJANGO_SETTINGS_MODULE", "PORT", "GATEWAY_PORT", "SITE_URL"):
        env.pop(name, None)
    log = (tmp_path / "serve.log").open("w")  # a file: a pipe nobody reads would fill and block
    proc = subprocess.Popen(
        [DOORKEEP, "serve", "--demo", "--workers", "1", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        body = ""
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(
                    f"http://127.0.0.1:{port}/accounts/login/", timeout=5
                ) as r:
                    body = r.read().decode()
                    break
            except OSError:
                time.sleep(0.3)
        assert "password" in body.lower(), "the sign-in page did not come up"
        # --demo is demo mode in the web workers: the demo logins, the mailbox.
        assert "<code>owner@demo.doorkeep.test</code>" in body
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/demo/mail/", timeout=5) as r:
            assert r.status == 200
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/openapi.json", timeout=5) as r:
            assert b"/api/v1/locks" in r.read()
        assert (tmp_path / "doorkeep.sqlite3").exists()
        assert (tmp_path / "secret_key").exists()
        # The gateway listens on the next port (not a fixed 8001); it may come
        # up a little after the web server.
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port + 1), timeout=5):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.3)
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        log.close()
    output = (tmp_path / "serve.log").read_text()
    assert f"Device gateway on ws://127.0.0.1:{port + 1}" in output
    assert f"readable at http://127.0.0.1:{port}/demo/mail/" in output


@pytest.mark.django_db
def test_the_demo_codes_in_the_readme_work():
    from doorkeep.accounts.models import User
    from doorkeep.demo import OWNER, demo_codes
    from doorkeep.licensing.services import redeem_for_lock
    from doorkeep.licensing.state import licence_of

    main(["demo"])
    readme = (ROOT / "README.md").read_text()
    for code in demo_codes().values():
        assert f"`{code}`" in readme
    courtyard = Lock.objects.get(serial="DK-2025-0006")
    redeem_for_lock(User.objects.get(email=OWNER), courtyard.pk, demo_codes()["MGMT-5Y"])
    assert licence_of(courtyard.pk).mode == "active"


def test_outbox_delivers_what_is_due(capsys, world):
    from django.db import transaction

    from doorkeep.notify.models import OutboxMessage
    from doorkeep.notify.services import create_endpoint, emit_webhook

    create_endpoint(world.alice, world.org.pk, url="http://127.0.0.1:9/nobody")
    with transaction.atomic():
        emit_webhook(world.org.pk, "webhook.test", {})

    assert main(["outbox"]) == 0

    assert "Attempted 1 message(s)." in capsys.readouterr().out
    assert OutboxMessage.objects.get().attempts == 1


def _processes_with(tmp_path: Path) -> list[int]:
    """The processes whose environment names ``tmp_path`` as the data directory."""
    marker = f"DOORKEEP_DATA_DIR={tmp_path}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                environ = (entry / "environ").read_bytes()
                state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
            except OSError:
                continue
            if marker in environ.split(b"\0") and state != "Z":
                found.append(int(entry.name))
    return found


def test_serve_whose_gateway_cannot_listen_stops_and_leaves_no_web_worker_behind(tmp_path):
    port = _free_port()
    env = {**os.environ, "DOORKEEP_DATA_DIR": str(tmp_path)}
    for name in ("DATABASE_URL", "DJANGO_SETTINGS_MODULE", "PORT", "GATEWAY_PORT", "SITE_URL"):
        env.pop(name, None)
    log = tmp_path / "serve.log"
    with socket.socket() as taken, log.open("w") as out:
        taken.bind(("127.0.0.1", port + 1))  # the gateway's port is in use
        taken.listen()
        proc = subprocess.Popen(
            [DOORKEEP, "serve", "--workers", "2", "--port", str(port)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        try:
            proc.wait(timeout=240)
        finally:
            proc.kill()
    try:
        assert proc.returncode == 1
        output = log.read_text()
        assert "address already in use" in output.lower()
        # serve says which child stopped, and does not start it again.
        assert f"gateway (doorkeep gateway --host 127.0.0.1 --port {port + 1} " in output
        assert "exited with code 1" in output
        assert "starting it again" not in output
        deadline = time.monotonic() + 20
        while (left := _processes_with(tmp_path)) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert left == [], f"processes left behind: {left}"
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", port), timeout=2).close()
    finally:
        for pid in _processes_with(tmp_path):
            os.kill(pid, 9)
