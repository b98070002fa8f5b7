"""Several gateways: commands and change notices find the gateway that holds
a lock, through Redis (DOORKEEP_GATEWAY_ROUTING=redis) or directly."""

from __future__ import annotations

import json
import time
import uuid

import pytest
from gateway_helpers import PROMPTLY, eventually, spy_on_reads

from doorkeep.gateway import routing
from doorkeep.gateway.models import Device
from doorkeep.gateway.remote import remote_unlock
from doorkeep.gateway.routing import LockOffline
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
    from doorkeep.gateway import lists

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
        "op": "changed",
        "lock": alice_lock.pk,
        "keys": [dana.pk],
        "version": version(world),
    }
