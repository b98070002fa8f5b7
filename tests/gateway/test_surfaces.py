"""Remote unlock and the device panel through the API and the web UI, against
a real gateway with a simulated lock connected over a real WebSocket."""

from __future__ import annotations

import asyncio
import html
import re

import pytest
from gateway_helpers import PROMPTLY, eventually

from doorkeep.events.models import Event, EventKind
from doorkeep.gateway.models import Device
from doorkeep.gateway.services import CLOSE_REFUSED
from doorkeep.keys.services import CredentialSpec, HolderSpec, KeySpec, issue_key
from doorkeep.locks.models import Lock
from doorkeep.locks.services import add_manufactured_lock

SECRET = "ABCD-EFGH-JKLM-NPQR"


def alices_phone_key(world):
    return issue_key(
        world.alice,
        world.lock.pk,
        KeySpec(HolderSpec(name="Alice", email="alice@example.com"), [CredentialSpec("phone")]),
    )


def text(response) -> str:
    return html.unescape(response.content.decode())


def shown_secret(response) -> str:
    """The device secret on the page that shows it once."""
    found = re.search(r'id="device-secret-value"[^>]*value="([^"]+)"', response.content.decode())
    assert found, text(response)[:3000]
    return html.unescape(found.group(1))


def refused(gateway, serial: str, secret: str) -> int | None:
    impostor = gateway.lock(serial, secret=secret)
    with pytest.raises((asyncio.TimeoutError, TimeoutError)):
        gateway.run(impostor.connect(timeout=PROMPTLY))
    return impostor.close_code


# --- the API -----------------------------------------------------------------------------------


def test_the_api_opens_an_entry_through_the_gateway(world, gateway, device):
    alices_phone_key(world)
    gateway.run(device.connect())
    api = world.bearer(world.alice)

    response = api.post(f"/api/v1/entries/{world.entry.pk}/unlock", "{}", "application/json")

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["opened"] is True and body["lock_id"] == world.lock.pk
    assert device.opened == [body["request_id"]]
    assert [e["name"] for e in api.get("/api/v1/me/entries").json()] == ["Front door"]


def test_the_api_shows_the_connected_lock_in_step(world, gateway, device):
    alices_phone_key(world)
    api = world.bearer(world.alice)
    before = api.get(f"/api/v1/locks/{world.lock.pk}/device").json()
    assert (before["state"], before["online"]) == ("pending", False)

    gateway.run(device.connect())
    version = Lock.objects.get(pk=world.lock.pk).credential_version
    eventually(lambda: Device.objects.get(lock=world.lock).acked_version == version)

    state = api.get(f"/api/v1/locks/{world.lock.pk}/device").json()
    assert state["online"] is True
    assert (state["platform_version"], state["acked_version"]) == (version, version)
    assert state["state"] == "synced"
    assert (state["firmware"], state["battery"]) == ("sim-1.0", 92)
    assert state["last_seen_at"] and state["connected_at"]
    assert abs(state["clock_offset_ms"]) < 5000

    gateway.run(device.go_offline())
    eventually(lambda: not Device.objects.get(lock=world.lock).online)
    state = api.get(f"/api/v1/locks/{world.lock.pk}/device").json()
    assert state["online"] is False and state["state"] == "synced"


def test_the_api_answers_503_for_an_offline_lock_and_logs_it(world, gateway, device):
    alices_phone_key(world)
    api = world.bearer(world.alice)

    response = api.post(f"/api/v1/entries/{world.entry.pk}/unlock", "{}", "application/json")

    assert response.status_code == 503
    assert response["Content-Type"].startswith("application/json")
    assert response.json()["code"] == "lock_offline"
    failed = Event.objects.get(lock=world.lock, kind=EventKind.UNLOCK_FAILED)
    assert failed.reason == "lock_offline"
    assert failed.summary == "Remote unlock failed: the lock is offline"
    assert device.opened == []


def test_the_api_answers_409_when_the_lock_refuses(world, gateway, device):
    alices_phone_key(world)
    device.refuse_unlocks = True
    gateway.run(device.connect())

    response = world.bearer(world.alice).post(
        f"/api/v1/entries/{world.entry.pk}/unlock", "{}", "application/json"
    )

    assert response.status_code == 409
    assert response.json()["code"] == "lock_refused"
    assert "jammed" in response.json()["message"]
    assert Event.objects.filter(lock=world.lock, kind="unlock.failed", reason="lock_refused")


def test_a_rotated_secret_refuses_the_old_one_and_accepts_the_new(world, gateway, device):
    gateway.run(device.connect())  # with the secret the lock has now
    gateway.run(device.go_offline())
    api = world.bearer(world.alice)

    response = api.post(f"/api/v1/locks/{world.lock.pk}/device-secret", "{}", "application/json")
    new = response.json()["device_secret"]

    assert refused(gateway, world.lock.serial, device.secret) == CLOSE_REFUSED
    assert Event.objects.filter(lock=world.lock, kind=EventKind.DEVICE_REFUSED).exists()
    renewed = gateway.lock(world.lock.serial, secret=new)
    gateway.run(renewed.connect())
    assert renewed.online
    eventually(lambda: Device.objects.get(lock=world.lock).online)
    gateway.run(renewed.go_offline())


def test_a_member_cannot_open_without_a_key_even_with_the_lock_online(world, gateway, device):
    gateway.run(device.connect())

    response = world.bearer(world.bob).post(
        f"/api/v1/entries/{world.entry.pk}/unlock", "{}", "application/json"
    )

    assert response.status_code == 403
    assert response.json()["code"] == "access_denied"
    assert device.opened == []


# --- the web UI --------------------------------------------------------------------------------


def test_the_open_button_of_my_doors_opens_the_lock(world, gateway, device):
    alices_phone_key(world)
    gateway.run(device.connect())
    client = world.client(world.alice)
    page = text(client.get("/doors/"))
    assert "Front door" in page and f'action="/doors/{world.entry.pk}/open/"' in page

    response = client.post(f"/doors/{world.entry.pk}/open/", {"next": "/doors/"})

    assert response.status_code == 302 and response["Location"] == "/doors/"
    assert len(device.opened) == 1
    assert "Opened Front door." in text(client.get("/doors/"))
    assert Event.objects.filter(
        lock=world.lock, kind=EventKind.ACCESS_GRANTED, actor=world.alice
    ).exists()


def test_the_open_button_of_the_lock_page_opens_the_lock(world, gateway, device):
    alices_phone_key(world)
    gateway.run(device.connect())
    client = world.client(world.alice)
    eventually(lambda: Device.objects.get(lock=world.lock).acked_version == 1)
    page = text(client.get(f"/locks/{world.lock.pk}/"))
    assert f'action="/locks/{world.lock.pk}/open/"' in page
    panel = page[page.index('id="device"') :]
    panel = panel[: panel.index("</section>")]
    assert "Online" in panel and "Synced" in panel and "sim-1.0" in panel and "92" in panel

    response = client.post(f"/locks/{world.lock.pk}/open/")

    assert response.status_code == 302
    assert len(device.opened) == 1
    assert "Opened Front door." in text(client.get(response["Location"]))


def test_the_web_says_the_lock_is_offline_after_a_redirect_not_a_server_error(
    world, gateway, device, caplog
):
    alices_phone_key(world)
    client = world.client(world.alice)

    with caplog.at_level("WARNING"):
        response = client.post(f"/doors/{world.entry.pk}/open/", follow=True)
        assert response.redirect_chain[0][1] == 302
        assert "The lock is offline" in text(response)
        assert "Front door" in text(response)  # the list is there to try again

        response = client.post(f"/locks/{world.lock.pk}/open/", follow=True)
        assert response.redirect_chain[0][1] == 302
        assert "The lock is offline" in text(response)
    assert not [r for r in caplog.records if r.levelname in ("ERROR", "CRITICAL")]
    assert Event.objects.filter(lock=world.lock, kind="unlock.failed").count() == 2


def test_the_web_says_when_the_lock_does_not_answer(world, gateway, device, settings):
    settings.DOORKEEP_UNLOCK_TIMEOUT = 1
    alices_phone_key(world)
    gateway.run(device.connect())

    async def deaf(message):  # the lock stops answering unlock commands
        if message.get("type") != "unlock":
            await original(message)

    original = device._on_message
    device._on_message = deaf

    response = world.client(world.alice).post(f"/doors/{world.entry.pk}/open/", follow=True)

    assert "did not answer in time" in text(response)
    attempt = Event.objects.get(lock=world.lock, kind="unlock.failed", reason="lock_timeout")
    assert attempt.lock_outcome == "no_answer" and attempt.person.name == "Alice"


def test_the_web_says_why_a_member_without_a_key_cannot_open(world, gateway, device):
    gateway.run(device.connect())

    response = world.client(world.bob).post(f"/locks/{world.lock.pk}/open/", follow=True)

    assert "you have no phone key for this entry" in text(response)
    assert device.opened == []


def test_the_owner_opens_a_real_lock_from_the_lock_page_without_a_key(world, gateway, device):
    gateway.run(device.connect())

    response = world.client(world.alice).post(f"/locks/{world.lock.pk}/open/", follow=True)

    assert "Opened Front door." in text(response)
    assert len(device.opened) == 1
    attempt = Event.objects.get(lock=world.lock, kind=EventKind.ACCESS_GRANTED)
    assert attempt.actor_id == world.alice.pk and attempt.lock_outcome == "opened"


def test_the_new_device_secret_button_shows_a_secret_the_lock_connects_with(world, gateway, device):
    gateway.run(device.connect())
    gateway.run(device.go_offline())
    client = world.client(world.alice)

    response = client.post(f"/locks/{world.lock.pk}/device-secret/")

    assert response.status_code == 200
    secret = shown_secret(response)
    assert f"doorkeep simulate lock {world.lock.serial} --secret {secret}</code>" in text(response)
    assert "no-store" in response["Cache-Control"] or "no-cache" in response["Cache-Control"]
    assert refused(gateway, world.lock.serial, device.secret) == CLOSE_REFUSED
    renewed = gateway.lock(world.lock.serial, secret=secret)
    gateway.run(renewed.connect())
    assert renewed.online
    gateway.run(renewed.go_offline())


def test_the_simulator_command_names_the_gateway_when_it_is_not_on_8001(world, settings):
    settings.GATEWAY_PORT = 9001
    response = world.client(world.alice).post(f"/locks/{world.lock.pk}/device-secret/")
    secret = shown_secret(response)
    command = (
        f"doorkeep simulate lock {world.lock.serial} --secret {secret} --url ws://127.0.0.1:9001"
    )
    assert f"{command}</code>" in text(response)


def test_registering_through_the_dashboard_shows_the_secret_the_lock_connects_with(world, gateway):
    add_manufactured_lock("DK-TEST-0002", claim_secret=SECRET)
    client = world.client(world.alice)

    response = client.post(
        "/locks/register/",
        {"serial": "DK-TEST-0002", "claim_secret": SECRET, "entry": world.entry2.pk, "name": ""},
    )

    assert response.status_code == 200
    assert "Lock DK-TEST-0002 is registered" in text(response)
    secret = shown_secret(response)
    assert f"doorkeep simulate lock DK-TEST-0002 --secret {secret}" in text(response)
    lock = gateway.lock("DK-TEST-0002", secret=secret)
    gateway.run(lock.connect())
    assert lock.online
    gateway.run(lock.go_offline())
