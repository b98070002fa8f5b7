"""What a lock (or anything at the gateway's port) may send that the gateway
must refuse cleanly, and the Device row's record of which connection holds a
lock, whatever order the gateway's database threads write in."""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import threading
import time
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone
from gateway_helpers import DEVICE_SECRET, PROMPTLY, eventually, give
from test_protocol import hello_of, online, receive, refused_with, until_closed
from websockets.asyncio.client import connect

from doorkeep.events.models import Event, EventKind
from doorkeep.gateway import services
from doorkeep.gateway.models import Device
from doorkeep.gateway.remote import remote_unlock
from doorkeep.gateway.services import set_device_secret
from doorkeep.keys.models import KeyCredential
from doorkeep.locks.services import register_lock, remove_lock


def send_events(gateway, serial: str, events: list[dict[str, Any]]) -> dict[str, Any]:
    async def go():
        ws = await online(gateway.url, serial)
        await ws.send(json.dumps({"type": "events", "events": events}))
        answer = await receive(ws)
        await ws.close()
        return answer

    return gateway.run(go())


# --- text no column can store -----------------------------------------------------------


@pytest.mark.parametrize("secret", ["\ud800", "dks_\u0000"])
def test_a_hello_with_unstorable_text_is_refused_as_a_bad_hello(world, gateway, secret):
    frames, code, _reason = refused_with(gateway, hello_of(world.lock.serial, secret))

    assert code == 4002, code
    assert frames[0]["code"] == "bad_message", frames


def test_a_bad_hello_does_not_replace_the_connection_that_works(world, gateway, device):
    gateway.run(device.connect())

    frames, code, _ = refused_with(gateway, hello_of(world.lock.serial, firmware="\ud800"))

    assert code == 4002 and frames[0]["code"] == "bad_message", (code, frames)
    time.sleep(0.3)
    assert device.close_code is None and device.online
    assert Device.objects.get(lock=world.lock).online


@pytest.mark.parametrize(
    "reason", ["\ud800", "x\u0000", "\udc00\ud800"], ids=["lone-high", "nul", "reversed-pair"]
)
def test_an_event_with_unstorable_text_is_refused_not_retried_forever(
    world, gateway, device, reason
):
    event = {"seq": 3, "at": "2026-01-01T00:00:00Z", "outcome": "denied", "reason": reason}

    answer = send_events(gateway, world.lock.serial, [event])

    assert answer["type"] == "error" and answer["code"] == "bad_message", answer
    assert not Event.objects.filter(lock=world.lock, device_seq=3).exists()


def test_a_whole_surrogate_pair_is_text_like_any_other(world, gateway, device):
    event = {"seq": 5, "at": "2026-01-01T00:00:00Z", "outcome": "denied", "reason": "\U0001f600"}

    answer = send_events(gateway, world.lock.serial, [event])

    assert answer == {"type": "events.ack", "seqs": [5]}, answer


def test_a_status_with_a_nul_in_the_firmware_is_refused(world, gateway, device):
    async def go():
        ws = await online(gateway.url, world.lock.serial)
        await ws.send(json.dumps({"type": "status", "firmware": "1.0\u0000", "battery": 50}))
        answer = await receive(ws)
        await ws.send(json.dumps({"type": "status", "firmware": "1.1", "battery": 40}))
        await asyncio.sleep(0.3)
        await ws.close()
        return answer

    answer = gateway.run(go())

    assert answer["code"] == "bad_message", answer
    eventually(lambda: Device.objects.get(lock=world.lock).firmware == "1.1")


# --- other fields ----------------------------------------------------------------------


def test_a_bad_event_time_names_the_event(world, gateway, device):
    answer = send_events(
        gateway, world.lock.serial, [{"seq": 7, "at": "yesterday", "outcome": "granted"}]
    )

    assert answer["code"] == "bad_message" and answer["ref"] == 7, answer


def test_a_first_message_that_is_not_hello_is_hello_first_whatever_its_type(world, gateway):
    for first in ({"type": "reboot"}, {"type": "status", "battery": 5}):
        frames, code, _ = refused_with(gateway, json.dumps(first))

        assert code == 4002
        assert frames[0]["code"] == "hello_first", frames


def test_battery_true_is_not_a_percentage(world, gateway, device):
    async def go():
        ws = await online(gateway.url, world.lock.serial)
        await ws.send(json.dumps({"type": "status", "battery": 80}))
        await asyncio.sleep(0.2)
        await ws.send(json.dumps({"type": "status", "battery": True}))
        await asyncio.sleep(0.3)
        await ws.close()

    gateway.run(go())

    assert Device.objects.get(lock=world.lock).battery is None


def test_x_forwarded_for_is_shown_as_a_claim_beside_the_real_address(world, gateway, device):
    async def go():
        ws = await connect(gateway.url, additional_headers={"X-Forwarded-For": "6.6.6.6"})
        await ws.send(hello_of(world.lock.serial, "dks_wrong"))
        await until_closed(ws)

    gateway.run(go())

    refused = Event.objects.filter(lock=world.lock, reason="wrong_secret").last()
    assert refused is not None
    assert refused.data["peer"].startswith("127.0.0.1:"), refused.data
    assert refused.data["peer"].endswith("(for 6.6.6.6)"), refused.data


def test_behind_a_trusted_proxy_the_client_address_it_saw_is_recorded(
    world, gateway, device, settings
):
    """nginx appends the address it was connected from: that one is the
    client's, not the left-most entry the client may have written itself."""
    import ipaddress

    settings.DOORKEEP_TRUSTED_PROXIES = [ipaddress.ip_network("127.0.0.1/32")]

    async def go():
        forged = {"X-Forwarded-For": "6.6.6.6, 203.0.113.5"}
        ws = await connect(gateway.url, additional_headers=forged)
        await ws.send(hello_of(world.lock.serial, "dks_wrong"))
        await until_closed(ws)

    gateway.run(go())

    refused = Event.objects.filter(lock=world.lock, reason="wrong_secret").last()
    assert refused is not None
    assert refused.data["peer"].startswith("203.0.113.5 (via 127.0.0.1:"), refused.data
    assert "6.6.6.6" not in refused.data["peer"]


def test_an_internal_token_with_a_non_ascii_byte_is_forbidden_not_an_error(world, gateway):
    with socket.create_connection(("127.0.0.1", gateway.gateway.port), timeout=5) as sock:
        sock.sendall(
            b"GET /internal/changed?lock=1 HTTP/1.1\r\nHost: x\r\n"
            b"X-Doorkeep-Internal: \xe9t\xe9\r\n\r\n"
        )
        status = sock.recv(200).split(b"\r\n")[0]

    assert b" 403 " in status, status


def test_remote_unlock_reaches_a_lock_whose_clock_is_60_days_ahead(world, gateway, alice_lock):
    """The lock converts the unlock's expiry with the offset the gateway
    measured; a clamped offset (it was capped at 24.8 days) made it refuse."""
    skewed = gateway.lock(world.lock.serial, clock_skew=60 * 86400.0)
    gateway.run(skewed.connect())

    result = remote_unlock(world.alice, world.entry.pk, timeout=PROMPTLY)

    assert skewed.opened == [result.request_id]


# --- events of a lock that changed hands -----------------------------------------------


def test_events_of_a_lock_that_changed_hands_do_not_name_the_old_owners_people(world, gateway):
    dana_key = give(world, "Dana", pin="2580")
    credential = KeyCredential.objects.get(key=dana_key)
    remove_lock(world.alice, world.lock.pk)
    lock = register_lock(
        world.charlie,
        serial=world.lock.serial,
        claim_secret="ABCD-EFGH-JKLM-NPQR",
        entry_id=world.charlie_entry.pk,
    )
    set_device_secret(lock, DEVICE_SECRET)
    # What the lock decided with its old list, uploaded after the move.
    event = {"seq": 1, "at": "2026-01-01T00:00:00Z", "outcome": "granted", "entry": credential.pk}

    answer = send_events(gateway, lock.serial, [event])

    assert answer == {"type": "events.ack", "seqs": [1]}, answer
    stored = Event.objects.get(lock=lock, device_seq=1)
    assert stored.organization_id == world.charlie_org.pk
    assert stored.person_id is None and stored.key_id is None
    assert "Dana" not in stored.summary


# --- which connection the Device row names ------------------------------------------------


def test_a_replacement_whose_connected_write_fails_leaves_the_lock_offline(
    world, gateway, device, monkeypatch
):
    """The new connection retires the old one, then its own "connected"
    fails: the old one's goodbye is skipped (it was replaced), so the new
    one's must take the row down, or the lock shows online with nothing
    connected."""
    gateway.run(device.connect())
    real = services.connected

    def failing(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("the database refused the write")

    monkeypatch.setattr(services, "connected", failing)
    second = gateway.lock(world.lock.serial)
    with pytest.raises(Exception):  # noqa: B017 - closed with 1011, as the simulator says
        gateway.run(second.connect())
    monkeypatch.setattr(services, "connected", real)

    eventually(lambda: device.close_code is not None)
    eventually(lambda: not gateway.gateway.connections)
    eventually(lambda: not Device.objects.get(lock=world.lock).online)


def test_connected_writes_land_in_the_order_the_connections_came(
    world, gateway, device, monkeypatch
):
    """Two connections of one lock in quick succession: the first one's
    "connected" is held up on its database thread. Once the second is gone
    too, the row must say offline (it said online, naming a connection that
    no longer existed, when the first write landed last)."""
    real, calls, second_done = services.connected, [], threading.Event()

    def ordered(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        if len(calls) == 1:
            second_done.wait(1.5)  # with the writes in order, the second waits for this one
            return real(*args, **kwargs)
        try:
            return real(*args, **kwargs)
        finally:
            second_done.set()

    monkeypatch.setattr(services, "connected", ordered)
    second = gateway.lock(world.lock.serial)

    async def go():
        await device.connect(wait_synced=False)
        await asyncio.sleep(0.2)
        await second.connect()
        await asyncio.sleep(0.5)
        await second.go_offline()

    gateway.run(go(), timeout=40)

    assert len(calls) == 2
    eventually(lambda: not gateway.gateway.connections)
    eventually(lambda: not Device.objects.get(lock=world.lock).online)


def test_a_run_of_wrong_secrets_is_one_event_a_minute_and_every_one_logged(
    world, gateway, device, caplog, time_machine
):
    caplog.set_level(logging.WARNING, logger="doorkeep.gateway")
    time_machine.move_to(timezone.now(), tick=True)
    for _ in range(3):
        _f, code, _r = refused_with(gateway, hello_of(world.lock.serial, "dks_wrong"))
        assert code == 4003

    refused = Event.objects.filter(lock=world.lock, kind=EventKind.DEVICE_REFUSED)
    assert refused.count() == 1
    logged = [r.getMessage() for r in caplog.records if "wrong secret" in r.getMessage()]
    assert len(logged) == 3, logged

    time_machine.shift(timedelta(seconds=61))
    refused_with(gateway, hello_of(world.lock.serial, "dks_wrong"))
    assert refused.count() == 2
