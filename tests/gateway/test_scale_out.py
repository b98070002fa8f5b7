"""Several gateways: commands and change notices find the gateway that holds
a lock, through Redis (DOORKEEP_GATEWAY_ROUTING=redis) or directly."""

from __future__ import annotations

import asyncio
import json
import time
import uuid

import pytest
from django.db import transaction
from gateway_helpers import (
    BADGE_UID,
    DEVICE_SECRET,
    PROMPTLY,
    badge_everywhere,
    eventually,
    lock_version,
    more_locks,
    spy_on_reads,
)

from doorkeep.badges.services import report_lost
from doorkeep.gateway import lists, routing
from doorkeep.gateway.models import Device
from doorkeep.gateway.remote import remote_unlock
from doorkeep.gateway.routing import LockOffline
from doorkeep.gateway.services import set_device_secret
from doorkeep.keys.services import CredentialSpec, HolderSpec, KeySpec, issue_key
from doorkeep.locks.models import Lock

REDIS_URL = "redis://127.0.0.1:6379/15"  # a database of the tests' own


def give(world, name: str, **creds: str):
    spec = [CredentialSpec(kind, value) for kind, value in creds.items()]
    return issue_key(
        world.alice,
        world.lock.pk,
        KeySpec(HolderSpec(name=name, email=f"{name.lower()}@example.com"), spec),
    )


def version(world) -> int:
    return Lock.objects.get(pk=world.lock.pk).credential_version


def give_on(world, lock, name: str, **creds: str):
    spec = [CredentialSpec(kind, value) for kind, value in creds.items()]
    return issue_key(
        world.alice,
        lock.pk,
        KeySpec(HolderSpec(name=name, email=f"{name.lower()}@example.com"), spec),
    )


def acked(lock) -> int:
    return Device.objects.values_list("acked_version", flat=True).get(lock_id=lock.pk)


def tags_on(device) -> set[str]:
    return {e["match"] for e in device.entries.values() if e["kind"] == "tag"}


@pytest.fixture
def redis_routing(settings, transactional_db):
    """Redis routing, under a key prefix of this test's own (so that parallel
    test runs do not meet); every key it made is deleted afterwards."""
    import redis

    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1, socket_timeout=5)
    try:
        client.ping()
    except redis.RedisError as exc:
        reason = f"Redis is not reachable at {REDIS_URL}: {exc}"
        print(f"SKIPPED: {reason}")
        pytest.skip(reason)
    prefix = f"doorkeep-test-{uuid.uuid4().hex[:10]}"
    settings.DOORKEEP_GATEWAY_ROUTING = "redis"
    settings.REDIS_URL = REDIS_URL
    settings.DOORKEEP_GATEWAY_REDIS_PREFIX = prefix
    routing._redis_client = None  # cached per process: start from these settings
    yield client
    if routing._redis_client is not None:
        routing._redis_client.close()
    routing._redis_client = None
    made = list(client.scan_iter(f"{prefix}:*"))
    if made:
        client.delete(*made)
    client.close()


# --- Redis -------------------------------------------------------------------------------------


def test_a_lock_on_gateway_b_is_unlocked_through_redis(
    world, redis_routing, two_gateways, alice_lock
):
    a, b = two_gateways
    device = b.lock(alice_lock.serial)
    b.run(device.connect())
    key = f"{routing._prefix()}:lock:{alice_lock.pk}"
    assert redis_routing.get(key) == b.gateway.id.encode()

    unlocked = remote_unlock(world.alice, world.entry.pk, timeout=PROMPTLY)

    assert device.opened == [unlocked.request_id]
    # Gateway A, which does not hold the lock, forwards through Redis too.
    result = a.run(a.gateway.unlock(alice_lock.pk, "via-gateway-a", 3))
    assert result["ok"] is True
    assert device.opened == [unlocked.request_id, "via-gateway-a"]
    assert list(a.gateway.connections) == []


def test_a_key_issued_reaches_the_lock_on_b_through_the_redis_notice(
    world, redis_routing, two_gateways, alice_lock
):
    a, b = two_gateways
    device = b.lock(alice_lock.serial)
    b.run(device.connect())
    # Slow the gateways' own polling right down: only the notice can be in time.
    a.gateway.poll_interval = b.gateway.poll_interval = 60
    time.sleep(0.3)

    give(world, "Dana", pin="2580")

    b.run(device.wait_for_version(version(world), timeout=PROMPTLY))
    assert device.decide("pin", "2580").granted


def test_an_offline_lock_is_reported_offline_at_once(
    world, redis_routing, two_gateways, alice_lock
):
    _a, b = two_gateways
    device = b.lock(alice_lock.serial)
    b.run(device.connect())
    b.run(device.go_offline())
    key = f"{routing._prefix()}:lock:{alice_lock.pk}"
    eventually(lambda: redis_routing.get(key) is None)

    started = time.monotonic()
    with pytest.raises(LockOffline):
        remote_unlock(world.alice, world.entry.pk, timeout=3 * PROMPTLY)
    assert time.monotonic() - started < PROMPTLY  # not after the time limit

    # Registered by a gateway that is gone (it crashed): nobody listens there.
    redis_routing.set(key, "gw-that-crashed", ex=60)
    started = time.monotonic()
    with pytest.raises(LockOffline):
        remote_unlock(world.alice, world.entry.pk, timeout=3 * PROMPTLY)
    assert time.monotonic() - started < PROMPTLY  # not after the time limit


def test_a_lock_that_reconnects_to_the_other_gateway_is_dropped_by_the_first(
    world, redis_routing, two_gateways, alice_lock
):
    a, b = two_gateways
    first = a.lock(alice_lock.serial)
    a.run(first.connect())
    again = b.lock(alice_lock.serial)

    b.run(again.connect())

    eventually(lambda: first.close_code == 4009)
    eventually(lambda: alice_lock.pk not in a.gateway.connections)
    key = f"{routing._prefix()}:lock:{alice_lock.pk}"
    assert redis_routing.get(key) == b.gateway.id.encode()
    assert Device.objects.get(lock=alice_lock).gateway == b.gateway.id
    unlocked = remote_unlock(world.alice, world.entry.pk, timeout=PROMPTLY)
    assert again.opened == [unlocked.request_id]


def test_a_registration_by_another_gateway_between_two_steps_of_a_release_survives(
    world, redis_routing, two_gateways, alice_lock
):
    """Gateway A releases the lock while B registers it. Read and delete in two
    calls, B's registration landing between them was deleted with A's."""
    a, b = two_gateways
    key = f"{routing._prefix()}:lock:{alice_lock.pk}"
    redis_routing.set(key, a.gateway.id, ex=60)
    side = a.gateway.router
    real = side.redis

    class BRegistersAfterTheFirstCall:
        """A's Redis client, with B's registration landing right after A's
        first call (whatever that call is)."""

        def __init__(self) -> None:
            self.calls = 0

        def __getattr__(self, name):
            method = getattr(real, name)

            async def call(*args, **kwargs):
                answer = await method(*args, **kwargs)
                self.calls += 1
                if self.calls == 1:
                    redis_routing.set(key, b.gateway.id, ex=60)
                return answer

            return call

    side.redis = BRegistersAfterTheFirstCall()
    try:
        a.run(side.unregistered(alice_lock.pk))
    finally:
        side.redis = real
    assert redis_routing.get(key) == b.gateway.id.encode()


def test_a_refresh_never_takes_a_lock_back_from_the_gateway_it_reconnected_to(
    world, redis_routing, two_gateways, alice_lock
):
    """The lock reconnected to B while A's old connection is still closing: A's
    periodic refresh must leave B's key alone (else A's release then deleted
    it, and the lock was unreachable until B's refresh)."""
    a, b = two_gateways
    key = f"{routing._prefix()}:lock:{alice_lock.pk}"
    first = a.lock(alice_lock.serial)
    a.run(first.connect())
    conn = a.gateway.connections[alice_lock.pk]
    redis_routing.set(key, b.gateway.id, ex=60)  # B registered the new connection
    a.run(a.gateway.router._keep([alice_lock.pk]))
    assert redis_routing.get(key) == b.gateway.id.encode()
    # Closing connections are not refreshed at all; a free key is taken again.
    conn.closing = True
    assert a.gateway.router._held_here() == []
    conn.closing = False
    redis_routing.delete(key)
    a.run(a.gateway.router._keep(a.gateway.router._held_here()))
    assert redis_routing.get(key) == a.gateway.id.encode()


def test_a_lock_that_reconnects_while_its_old_connection_is_released_stays_reachable(
    world, redis_routing, two_gateways, alice_lock
):
    """On one gateway: the lock's new connection registers while the old one's
    release is on its way to Redis; the release must not leave it unregistered."""
    a, _b = two_gateways
    key = f"{routing._prefix()}:lock:{alice_lock.pk}"
    side = a.gateway.router
    release, register = side.unregistered, side.registered
    registered = asyncio.Event()
    order = []

    async def noted_register(lock_id: int) -> None:
        await register(lock_id)
        order.append("new connection registered")
        registered.set()

    async def late_release(lock_id: int) -> None:
        # The old connection's release reaches Redis after the new registration.
        await asyncio.wait_for(registered.wait(), PROMPTLY)
        await release(lock_id)
        order.append("old connection released")

    first = a.lock(alice_lock.serial)
    a.run(first.connect())
    side.unregistered, side.registered = late_release, noted_register
    try:
        a.run(first.go_offline())
        eventually(lambda: alice_lock.pk not in a.gateway.connections)  # its release began
        again = a.lock(alice_lock.serial)
        a.run(again.connect())
        eventually(lambda: "old connection released" in order)
        eventually(lambda: order.count("new connection registered") >= 2)  # registered again
    finally:
        side.unregistered, side.registered = release, register
    assert order[:2] == ["new connection registered", "old connection released"]
    assert redis_routing.get(key) == a.gateway.id.encode()
    unlocked = remote_unlock(world.alice, world.entry.pk, timeout=PROMPTLY)
    assert again.opened == [unlocked.request_id]


def test_redis_out_of_reach_is_an_offline_lock_not_a_crash(
    world, redis_routing, alice_lock, settings
):
    settings.REDIS_URL = "redis://127.0.0.1:1/15"  # nothing listens there
    routing._redis_client = None

    with pytest.raises(LockOffline):
        remote_unlock(world.alice, world.entry.pk, timeout=2)
    routing.notify_changed(alice_lock.pk)  # best effort: no exception


# --- direct routing (no Redis) -------------------------------------------------------------------


def test_without_redis_a_gateway_forwards_an_unlock_to_the_gateway_holding_the_lock(
    world, transactional_db, two_gateways, alice_lock
):
    a, b = two_gateways
    device = b.lock(alice_lock.serial)
    b.run(device.connect())

    result = a.run(a.gateway.unlock(alice_lock.pk, "via-gateway-a", 3))
    unlocked = remote_unlock(world.alice, world.entry.pk, timeout=PROMPTLY)

    assert result["ok"] is True
    assert device.opened == ["via-gateway-a", unlocked.request_id]


def test_without_redis_a_lock_that_reconnects_elsewhere_is_dropped_by_the_first(
    world, transactional_db, two_gateways, alice_lock
):
    a, b = two_gateways
    first = a.lock(alice_lock.serial)
    a.run(first.connect())
    again = b.lock(alice_lock.serial)

    b.run(again.connect())

    eventually(lambda: first.close_code == 4009)
    row = Device.objects.get(lock=alice_lock)
    assert row.online and row.gateway == b.gateway.id


def test_the_redis_notice_carries_the_keys_and_the_lock_reads_only_them(
    world, redis_routing, two_gateways, alice_lock, monkeypatch
):
    a, b = two_gateways
    give(world, "Erin", pin="1357")
    device = b.lock(alice_lock.serial)
    b.run(device.connect())
    a.gateway.poll_interval = b.gateway.poll_interval = 60
    eventually(lambda: Device.objects.get(lock=alice_lock).acked_version == version(world))
    time.sleep(0.3)
    reads = spy_on_reads(monkeypatch)
    published = []
    publish = routing._client().publish
    monkeypatch.setattr(
        routing._client(), "publish", lambda *args: published.append(args) or publish(*args)
    )

    dana = give(world, "Dana", pin="2580")

    b.run(device.wait_for_version(version(world), timeout=PROMPTLY))
    assert reads == [((dana.pk,), 1)]  # Erin's row is not read again
    assert device.decide("pin", "2580").granted
    assert device.entries == {e["id"]: e for e in lists.build(alice_lock.pk).entries}
    channel, payload = published[-1]
    assert channel == routing.gateway_channel(b.gateway.id)
    assert json.loads(payload) == {
        "op": "changed_many",
        "changes": [{"lock": alice_lock.pk, "keys": [dana.pk], "version": version(world)}],
    }


# --- a change of many locks: one notice to each gateway, both routings -----------------------


@pytest.fixture(params=["direct", "redis"])
def routing_backend(request, transactional_db):
    """Each routing in turn (set before the gateways start)."""
    if request.param == "redis":
        request.getfixturevalue("redis_routing")
    routing._holders.clear()
    yield request.param
    routing._holders.clear()


def hear_notices(running) -> list[list[tuple[int, object]]]:
    """The notices the gateway takes (``Gateway.changed_many``), each as its
    list of (lock id, hint)."""
    heard: list[list[tuple[int, object]]] = []
    take = running.gateway.changed_many

    def spy(changes):
        changes = list(changes)
        heard.append(changes)
        return take(changes)

    running.gateway.changed_many = spy
    return heard


def test_a_lost_badge_on_the_locks_of_two_gateways_is_one_notice_to_each(
    world, routing_backend, two_gateways
):
    a, b = two_gateways
    locks = more_locks(world, 3)
    badge, keys = badge_everywhere(world, locks)
    a.gateway.poll_interval = b.gateway.poll_interval = 60  # only the notices can be in time
    time.sleep(0.3)
    held = [(a, locks[0]), (a, locks[1]), (b, locks[2]), (b, locks[3])]
    devices = []
    for running, lock in held:
        device = running.lock(lock.serial)
        running.run(device.connect())
        devices.append(device)
    assert all(BADGE_UID in tags_on(device) for device in devices)
    eventually(lambda: all(acked(lock) == lock_version(lock) for lock in locks))
    heard_a, heard_b = hear_notices(a), hear_notices(b)

    report = report_lost(world.alice, badge.pk)

    assert report.locks == 4
    for (running, lock), device in zip(held, devices, strict=True):
        running.run(device.wait_for_version(lock_version(lock), timeout=PROMPTLY))
        assert BADGE_UID not in tags_on(device)
        assert device.entries == {e["id"]: e for e in lists.build(lock.pk).entries}
        assert not device.errors
    eventually(lambda: all(acked(lock) == lock_version(lock) for lock in locks))
    hints = {lock.pk: (lock_version(lock), (keys[lock.pk].pk,)) for lock in locks}
    assert heard_a == [[(lock.pk, hints[lock.pk]) for lock in locks[:2]]]
    assert heard_b == [[(lock.pk, hints[lock.pk]) for lock in locks[2:]]]


def test_a_notice_naming_locks_a_gateway_does_not_hold_is_harmless(
    world, routing_backend, two_gateways
):
    a, b = two_gateways
    locks = more_locks(world, 1)
    a.gateway.poll_interval = b.gateway.poll_interval = 60
    time.sleep(0.3)
    on_a, on_b = a.lock(locks[0].serial), b.lock(locks[1].serial)
    a.run(on_a.connect())
    b.run(on_b.connect())
    version_a = lock_version(locks[0])
    command = routing.changed_command(
        [routing.Change(locks[1].pk), routing.Change(999_999, (5,), 7), routing.Change(-3)]
    )

    if routing_backend == "redis":
        redis_routing = routing._client()
        assert redis_routing.publish(routing.gateway_channel(a.gateway.id), json.dumps(command))
    else:
        reply = routing._ask(a.gateway.public_url, command, PROMPTLY)
        assert reply == {"ok": True, "not_held": [locks[1].pk, 999_999, -3]}
    # Nobody holds a lock that is offline: nothing is sent, nothing fails.
    routing.notify_changed_many([routing.Change(424_242, (1,), 2)])

    time.sleep(0.3)
    assert on_a.online and on_b.online and not on_a.errors and not on_b.errors
    assert on_a.version == version_a  # nothing changed, nothing pushed
    give_on(world, locks[0], "Dana", pin="2580")  # the gateway goes on as before
    a.run(on_a.wait_for_version(lock_version(locks[0]), timeout=PROMPTLY))
    assert on_a.decide("pin", "2580").granted


def test_a_notice_of_one_lock_in_the_older_form_still_works(world, routing_backend, two_gateways):
    """Senders of before the batched notice send {"op": "changed", "lock": ...}."""
    a, _b = two_gateways
    a.gateway.poll_interval = 60
    time.sleep(0.3)
    set_device_secret(world.lock, DEVICE_SECRET)
    device = a.lock(world.lock.serial)
    a.run(device.connect())
    reads = []
    notify = routing.notify_changed_many
    routing.notify_changed_many = lambda changes: reads.extend(changes)  # no notice of its own
    try:
        dana = give(world, "Dana", pin="2580")
    finally:
        routing.notify_changed_many = notify
    [change] = reads
    older = {"op": "changed", "lock": world.lock.pk, "keys": [dana.pk], "version": change.version}

    if routing_backend == "redis":
        routing._client().publish(routing.gateway_channel(a.gateway.id), json.dumps(older))
    else:
        assert routing._ask(a.gateway.public_url, older, PROMPTLY) == {"ok": True, "held": True}
        gone = {"op": "changed", "lock": 999_999}
        assert routing._ask(a.gateway.public_url, gone, PROMPTLY) == {"ok": True, "held": False}

    a.run(device.wait_for_version(version(world), timeout=PROMPTLY))
    assert device.decide("pin", "2580").granted


def test_a_batched_notice_reaches_a_lock_that_moved_since_it_was_looked_up(
    world, transactional_db, two_gateways
):
    """Direct routing remembers holders: a gateway that no longer holds some
    of a notice's locks says so, and they are looked up and told again."""
    a, b = two_gateways
    locks = more_locks(world, 1)
    a.gateway.poll_interval = b.gateway.poll_interval = 60
    time.sleep(0.3)
    stays, moves = a.lock(locks[0].serial), a.lock(locks[1].serial)
    a.run(stays.connect())
    a.run(moves.connect())
    routing._holders.clear()
    assert routing.holders_of(lock.pk for lock in locks) == {
        lock.pk: (a.gateway.id, a.gateway.public_url) for lock in locks
    }
    a.run(moves.go_offline())
    moved = b.lock(locks[1].serial)
    b.run(moved.connect())
    heard_a, heard_b = hear_notices(a), hear_notices(b)

    with transaction.atomic():
        for lock, pin in zip(locks, ["2580", "1357"], strict=True):
            give_on(world, lock, "Dana", pin=pin)

    a.run(stays.wait_for_version(lock_version(locks[0]), timeout=PROMPTLY))
    b.run(moved.wait_for_version(lock_version(locks[1]), timeout=PROMPTLY))
    assert moved.decide("pin", "1357").granted
    assert [[lock for lock, _hint in notice] for notice in heard_a] == [[lk.pk for lk in locks]]
    assert [[lock for lock, _hint in notice] for notice in heard_b] == [[locks[1].pk]]
