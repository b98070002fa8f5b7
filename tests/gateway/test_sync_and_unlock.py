import asyncio
from datetime import timedelta

import pytest
from django.utils import timezone
from gateway_helpers import PROMPTLY, eventually

from doorkeep.events.models import Event
from doorkeep.gateway.models import Device
from doorkeep.gateway.remote import remote_unlock
from doorkeep.gateway.routing import LockOffline, LockRefused, LockTimeout
from doorkeep.keys.services import CredentialSpec, HolderSpec, KeySpec, issue_key, revoke_key
from doorkeep.locks.models import Lock


def give(world, name="Dana", **creds):
    spec = [CredentialSpec(kind, value) for kind, value in creds.items()]
    return issue_key(
        world.alice,
        world.lock.pk,
        KeySpec(HolderSpec(name=name, email=f"{name.lower()}@example.com"), spec),
    )


def version(world):
    return Lock.objects.get(pk=world.lock.pk).credential_version


def test_a_lock_comes_online_and_gets_its_full_list(world, gateway, device):
    give(world, pin="4711", tag="04A22B1C")
    gateway.run(device.connect())
    assert device.version == version(world)
    assert {e["kind"] for e in device.entries.values()} == {"pin", "tag"}
    eventually(lambda: Device.objects.get(lock=world.lock).acked_version == device.version)
    assert Device.objects.get(lock=world.lock).online
    assert device.decide("pin", "4711").granted
    assert device.decide("pin", "4712").reason == "unknown_credential"
    assert device.decide("tag", "04:a2:2b:1c").granted


def test_a_key_issued_or_taken_back_reaches_the_connected_lock(world, gateway, device):
    gateway.run(device.connect())
    give(world, pin="2580")
    gateway.run(device.wait_for_version(version(world), timeout=PROMPTLY))
    assert device.decide("pin", "2580").granted
    key = give(world, name="Eve", pin="1357")
    revoke_key(world.alice, key.pk)
    gateway.run(device.wait_for_version(version(world), timeout=PROMPTLY))
    assert device.decide("pin", "1357").reason == "unknown_credential"


def test_offline_events_are_uploaded_once_with_the_lock_time(world, gateway, device):
    give(world, pin="2580")
    gateway.run(device.connect())
    gateway.run(device.go_offline())
    earlier = timezone.now() - timedelta(minutes=30)
    device.decide("pin", "2580", at=earlier)
    device.decide("pin", "0000", at=earlier + timedelta(minutes=1))
    kept = list(device.outbox)
    gateway.run(device.connect())
    assert device.outbox == []
    stored = Event.objects.filter(lock=world.lock, device_seq__isnull=False).order_by("occurred_at")
    assert [e.kind for e in stored] == ["access.granted", "access.denied"]
    assert abs(stored[0].occurred_at - earlier) < timedelta(seconds=1)
    assert stored[0].received_at > stored[0].occurred_at + timedelta(minutes=29)
    assert stored[0].person is not None and stored[0].person.name == "Dana"
    # The same batch again (the ack was lost): nothing new is stored.
    device.outbox = kept
    gateway.run(device.flush())
    assert Event.objects.filter(lock=world.lock, device_seq__isnull=False).count() == 2


def test_remote_unlock_opens_the_lock_and_waits_for_its_answer(world, gateway, device):
    give(world, name="Alice", phone="")  # alice's own phone key
    gateway.run(device.connect())
    result = remote_unlock(world.alice, world.entry.pk)
    assert device.opened == [result.request_id]


def test_remote_unlock_of_an_offline_lock_is_a_clear_error_and_logged(world, gateway, device):
    give(world, name="Alice", phone="")
    with pytest.raises(LockOffline):
        remote_unlock(world.alice, world.entry.pk)
    assert Event.objects.filter(
        lock=world.lock, kind="unlock.failed", reason="lock_offline"
    ).exists()


def test_remote_unlock_that_the_lock_never_answers_times_out(world, gateway, device):
    give(world, name="Alice", phone="")
    gateway.run(device.connect())

    async def deaf(message):  # the lock stops answering unlock commands
        if message.get("type") != "unlock":
            await original(message)

    original = device._on_message
    device._on_message = deaf
    with pytest.raises(LockTimeout):
        remote_unlock(world.alice, world.entry.pk, timeout=0.5)


def test_a_lock_whose_clock_jumped_ahead_refuses_the_unlock_as_expired_and_says_so(
    world, gateway, device
):
    give(world, name="Alice", phone="")
    said: list[str] = []
    device.on_event = said.append
    gateway.run(device.connect())
    device.clock_skew = 3600.0  # an hour ahead since the gateway measured its offset

    with pytest.raises(LockRefused):
        remote_unlock(world.alice, world.entry.pk, timeout=PROMPTLY)

    assert device.opened == []
    assert said[-1] == "DENY  remote unlock: expired"


def test_a_wrong_device_secret_is_refused_with_a_close_code(world, gateway, device):
    impostor = gateway.lock(world.lock.serial, secret="dks_wrong")
    with pytest.raises((asyncio.TimeoutError, TimeoutError)):
        gateway.run(impostor.connect(timeout=PROMPTLY))
    assert impostor.close_code == 4003
    assert Event.objects.filter(lock=world.lock, kind="device.refused").exists()
