"""A change's notice names the keys it touched and the version it produced:
the gateway reads only those keys' rows when it can prove nothing else
changed, and the whole list otherwise. Either way the lock's list must equal
the platform's."""

from __future__ import annotations

import json
import time
from datetime import timedelta

import pytest
from django.db import transaction
from django.db.models import F
from django.utils import timezone
from gateway_helpers import PROMPTLY, eventually, give, slow_down, spy_on_reads, version

from doorkeep.gateway import lists, routing
from doorkeep.gateway.models import Device
from doorkeep.keys.models import Key
from doorkeep.keys.services import revoke_key, update_key
from doorkeep.locks.models import Lock

# Only notices drive the syncs here: the watch round would hide what they do.
GATEWAY_POLL_INTERVAL = 60

KEYS = 20  # the licence of the test lock has 25


def platform_list(world) -> dict[int, dict]:
    return {e["id"]: e for e in lists.build(world.lock.pk).entries}


def acked(world) -> int:
    return Device.objects.get(lock=world.lock).acked_version


@pytest.fixture
def reads(monkeypatch) -> list[tuple[tuple[int, ...] | None, int]]:
    return spy_on_reads(monkeypatch)


@pytest.fixture
def many(world):
    """Alice's lock with KEYS keys of a PIN each."""
    return [give(world, f"User{i}", pin=f"{4000 + i}") for i in range(KEYS)]


def connected(world, gateway, device, reads) -> None:
    gateway.run(device.connect())
    eventually(lambda: acked(world) == device.version == version(world))
    reads.clear()
    device.received.clear()


def diffs(device) -> list[dict]:
    return [m for m in device.received if m["type"].startswith("list.")]


def test_one_key_changed_on_a_lock_with_many_keys_is_read_alone_and_pushed_as_a_diff(
    world, gateway, device, many, reads
):
    connected(world, gateway, device, reads)
    before = version(world)

    new = give(world, "Dana", pin="2580", tag="04A22B1C")
    gateway.run(device.wait_for_version(version(world), timeout=PROMPTLY))

    assert reads == [((new.pk,), 2)]  # two rows read, not the list's 22
    [diff] = diffs(device)
    assert diff["type"] == "list.diff"
    assert (diff["from"], diff["version"]) == (before, before + 1)
    assert sorted(e["kind"] for e in diff["add"]) == ["pin", "tag"]
    assert diff["remove"] == []
    assert device.entries == platform_list(world)
    assert device.decide("pin", "2580").granted
    eventually(lambda: acked(world) == version(world))


def test_a_changed_window_and_a_key_taken_back_are_read_alone(world, gateway, device, many, reads):
    connected(world, gateway, device, reads)
    later = timezone.now() + timedelta(days=2)

    update_key(world.alice, many[0].pk, valid_from=later, valid_until=None)
    gateway.run(device.wait_for_version(version(world), timeout=PROMPTLY))
    revoke_key(world.alice, many[1].pk)
    gateway.run(device.wait_for_version(version(world), timeout=PROMPTLY))

    assert reads == [((many[0].pk,), 1), ((many[1].pk,), 0)]
    first, second = diffs(device)
    assert len(first["add"]) == 1 and first["remove"] == []
    assert first["add"][0]["from"].startswith(later.strftime("%Y-%m-%d"))
    assert second["add"] == [] and len(second["remove"]) == 1
    assert device.entries == platform_list(world)
    assert device.decide("pin", "4000").reason == "not_yet_valid"
    assert device.decide("pin", "4001").reason == "unknown_credential"


def test_two_changes_back_to_back_reach_the_lock(world, gateway, device, many, reads):
    connected(world, gateway, device, reads)

    give(world, "Dana", pin="2580")
    revoke_key(world.alice, many[2].pk)
    gateway.run(device.wait_for_version(version(world), timeout=PROMPTLY))

    assert device.entries == platform_list(world)
    assert device.decide("pin", "2580").granted
    assert device.decide("pin", "4002").reason == "unknown_credential"
    eventually(lambda: acked(world) == version(world))


def test_two_changes_in_one_transaction_are_read_whole(world, gateway, device, many, reads):
    connected(world, gateway, device, reads)

    with transaction.atomic():
        give(world, "Dana", pin="2580")
        revoke_key(world.alice, many[3].pk)
    gateway.run(device.wait_for_version(version(world), timeout=PROMPTLY))

    # The first notice's version is not the platform's any more: the whole list.
    assert reads[0] == (None, KEYS)
    assert device.entries == platform_list(world)
    assert device.decide("pin", "4003").reason == "unknown_credential"


def test_a_key_taken_back_with_keys_under_it_removes_them_all(world, gateway, device, many, reads):
    parent = Key.objects.create(
        lock=world.lock,
        organization=world.org,
        lock_owner=world.org,
        holder_organization=world.charlie_org,
    )
    under = [give(world, f"Under{i}", pin=f"{7000 + i}") for i in range(3)]
    Key.objects.filter(pk__in=[k.pk for k in under]).update(
        parent=parent, organization=world.charlie_org
    )
    Lock.objects.filter(pk=world.lock.pk).update(credential_version=F("credential_version") + 1)
    connected(world, gateway, device, reads)
    assert device.decide("pin", "7000").granted

    revoke_key(world.alice, parent.pk)
    gateway.run(device.wait_for_version(version(world), timeout=PROMPTLY))

    assert reads == [(tuple(sorted([parent.pk, *(k.pk for k in under)])), 0)]
    [diff] = diffs(device)
    assert len(diff["remove"]) == 3 and diff["add"] == []
    assert device.entries == platform_list(world)
    assert all(device.decide("pin", f"{7000 + i}").reason == "unknown_credential" for i in range(3))


def test_a_version_that_jumped_by_more_than_one_reads_the_whole_list(
    world, gateway, device, many, reads, monkeypatch
):
    """A notice lost (or a change made without one): the next notice's version
    is two ahead of the lock's; reading only its keys would miss the first."""
    connected(world, gateway, device, reads)
    notify = routing.notify_changed_many
    monkeypatch.setattr(routing, "notify_changed_many", lambda changes: None)
    give(world, "Lost", pin="1111")
    monkeypatch.setattr(routing, "notify_changed_many", notify)

    give(world, "Dana", pin="2580")
    gateway.run(device.wait_for_version(version(world), timeout=PROMPTLY))

    assert reads == [(None, KEYS + 2)]
    assert device.entries == platform_list(world)
    assert device.decide("pin", "1111").granted


def test_a_window_that_ended_is_dropped_by_a_read_of_other_keys(
    world, gateway, device, many, reads
):
    give(world, "Brief", pin="9999", valid_until=timezone.now() + timedelta(seconds=1))
    connected(world, gateway, device, reads)
    gateway.gateway.poll_interval = 60
    gateway.run(_no_windows(gateway))
    time.sleep(1.1)

    give(world, "Dana", pin="2580")
    gateway.run(device.wait_for_version(version(world), timeout=PROMPTLY))

    assert reads[-1][0] is not None  # read by keys
    assert device.entries == platform_list(world)
    assert device.decide("pin", "9999").reason in ("expired", "unknown_credential")


async def _no_windows(gateway) -> None:
    """Stop the gateway's window task (which would sync at the window's end)."""
    for task in gateway.gateway._tasks:
        if task.get_name() == "windows":
            task.cancel()


def test_a_notice_with_keys_while_a_push_waits_for_its_ack(world, gateway, device, many, reads):
    connected(world, gateway, device, reads)
    slow_down(device, 0.3)
    dana = give(world, "Dana", pin="2580")
    eventually(lambda: gateway.gateway.connections[world.lock.pk].inflight is not None)
    give(world, "Erin", pin="1357")
    revoke_key(world.alice, many[4].pk)

    gateway.run(device.wait_for_version(version(world), timeout=PROMPTLY))

    assert device.entries == platform_list(world)
    assert device.decide("pin", "2580").granted and device.decide("pin", "1357").granted
    assert device.decide("pin", "4004").reason == "unknown_credential"
    # The first change alone; what came during its push, from the whole list
    # (how many reads depends on when the notices arrive: never by keys).
    assert reads[0] == ((dana.pk,), 1)
    assert reads[1:] and all(keys is None for keys, _n in reads[1:])
    assert not device.errors


def test_a_notice_without_keys_reads_the_whole_list(world, gateway, device, many, reads):
    connected(world, gateway, device, reads)
    Lock.objects.filter(pk=world.lock.pk).update(credential_version=F("credential_version") + 1)

    routing.notify_changed(world.lock.pk)
    gateway.run(device.wait_for_version(version(world), timeout=PROMPTLY))

    assert reads == [(None, KEYS)]
    assert device.entries == platform_list(world)


def test_a_notice_naming_keys_of_a_version_already_held_changes_nothing(
    world, gateway, device, many, reads
):
    connected(world, gateway, device, reads)
    routing.notify_changed(world.lock.pk, keys=[many[0].pk], version=version(world))
    eventually(lambda: len(reads) == 1)
    assert reads == [(None, KEYS)]
    assert diffs(device) == []


def test_the_notice_carries_the_keys_and_the_version(
    world, monkeypatch, django_capture_on_commit_callbacks
):
    sent = []
    holder = ("gw-x", "http://gw-x.invalid:8001")
    monkeypatch.setattr(
        routing, "holders_of", lambda locks, fresh=False: dict.fromkeys(locks, holder)
    )
    monkeypatch.setattr(
        routing,
        "_ask",
        lambda url, command, wait: sent.append((url, command)) or {"ok": True, "not_held": []},
    )
    with django_capture_on_commit_callbacks(execute=True):
        key = give(world, "Dana", pin="2580")
    assert sent[-1] == (
        holder[1],
        {
            "op": "changed_many",
            "changes": [{"lock": world.lock.pk, "keys": [key.pk], "version": version(world)}],
        },
    )
    routing.notify_changed(world.lock.pk)
    assert sent[-1][1] == {"op": "changed_many", "changes": [{"lock": world.lock.pk}]}
    item = json.loads(json.dumps(sent[-2][1]))["changes"][0]
    assert routing.notice_hint(item) == (version(world), (key.pk,))
    assert routing.notice_hint({"lock": 1, "keys": ["x"], "version": 2}) is None
    # The older notice of one lock reads the same.
    older = {"op": "changed", "lock": world.lock.pk, "keys": [key.pk], "version": version(world)}
    assert routing.notice_changes(older) == [(world.lock.pk, (version(world), (key.pk,)))]
