"""Direct routing (no Redis): web workers keep an internal WebSocket open to
each gateway and remember which gateway holds a lock for a few seconds; a
gateway that no longer holds it makes them look again. Gateways forward to
each other without tying up a database thread."""

from __future__ import annotations

import asyncio
import contextlib

import pytest
from gateway_helpers import DEVICE_SECRET, PROMPTLY, deafen, eventually, give, version

from doorkeep.gateway import routing
from doorkeep.gateway.models import Device
from doorkeep.gateway.remote import remote_unlock
from doorkeep.gateway.services import set_device_secret

GATEWAY_POLL_INTERVAL = 60  # the watch round never comes: only notices are in time
GATEWAY_A_DB_THREADS = 1


@pytest.fixture(autouse=True)
def fresh_routing():
    """No holder remembered and no link kept from another test."""
    routing._holders.clear()
    for link in routing._links.__dict__.pop("links", {}).values():
        link.close()
    yield
    routing._holders.clear()


def test_unlocks_in_a_row_share_one_internal_connection_and_one_holder_lookup(
    world, gateway, device, django_assert_num_queries
):
    set_device_secret(world.lock, DEVICE_SECRET)
    gateway.run(device.connect())
    routing.send_unlock(world.lock.pk, "first", timeout=PROMPTLY)
    link = routing._links.links[routing.holder_of(world.lock.pk)[1]]

    with django_assert_num_queries(0):  # the holder is remembered
        for n in range(5):
            routing.send_unlock(world.lock.pk, f"again-{n}", timeout=PROMPTLY)

    assert device.opened == ["first"] + [f"again-{n}" for n in range(5)]
    assert routing._links.links == {gateway.gateway.public_url: link}
    # The gateway holds the lock's connection and one internal connection.
    assert len(gateway.gateway.server.connections) == 2


def test_an_unlock_reaches_a_lock_that_moved_to_another_gateway_since_it_was_looked_up(
    world, two_gateways, alice_lock
):
    a, b = two_gateways
    on_a = a.lock(alice_lock.serial)
    a.run(on_a.connect())
    remote_unlock(world.alice, world.entry.pk, timeout=PROMPTLY)
    a.run(on_a.go_offline())
    on_b = b.lock(alice_lock.serial)
    b.run(on_b.connect())

    unlocked = remote_unlock(world.alice, world.entry.pk, timeout=PROMPTLY)  # A is still remembered

    assert on_b.opened == [unlocked.request_id]


def test_a_notice_reaches_a_lock_that_moved_to_another_gateway_within_a_second(
    world, two_gateways, alice_lock
):
    a, b = two_gateways
    on_a = a.lock(alice_lock.serial)
    a.run(on_a.connect())
    give(world, "Dana", pin="2580")
    a.run(on_a.wait_for_version(version(world), timeout=PROMPTLY))  # A is remembered as the holder
    a.run(on_a.go_offline())
    on_b = b.lock(alice_lock.serial)
    b.run(on_b.connect())

    give(world, "Erin", pin="1357")

    b.run(on_b.wait_for_version(version(world), timeout=PROMPTLY))
    assert on_b.decide("pin", "1357").granted


def test_an_internal_connection_the_gateway_closed_is_opened_again(world, gateway, device):
    set_device_secret(world.lock, DEVICE_SECRET)
    gateway.run(device.connect())
    routing.send_unlock(world.lock.pk, "first", timeout=PROMPTLY)
    link = routing._links.links[gateway.gateway.public_url]

    async def close_internal() -> None:
        for conn in list(gateway.gateway.server.connections):
            if conn.request is not None and conn.request.path == "/internal/ws":
                # The web thread reads its link only when it uses it again:
                # the closing handshake is not waited for here.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(conn.close(1001), 0.2)

    gateway.run(close_internal())

    routing.send_unlock(world.lock.pk, "second", timeout=PROMPTLY)

    assert device.opened == ["first", "second"]
    assert not link.open
    assert routing._links.links[gateway.gateway.public_url] is not link


def test_internal_links_are_not_pinged_and_an_idle_one_still_works(world, gateway, device):
    set_device_secret(world.lock, DEVICE_SECRET)
    gateway.run(device.connect())
    routing.send_unlock(world.lock.pk, "first", timeout=PROMPTLY)
    internal = [
        conn
        for conn in gateway.gateway.server.connections
        if conn.request is not None and conn.request.path == "/internal/ws"
    ]
    locks = [conn for conn in gateway.gateway.server.connections if conn not in internal]

    assert len(internal) == 1
    # A web thread answers pings only while it waits for an answer, so the
    # gateway does not ping its link (it still pings the locks).
    assert internal[0].keepalive_task is None or internal[0].keepalive_task.cancelled()
    assert all(conn.keepalive_task is not None for conn in locks)
    routing.send_unlock(world.lock.pk, "second", timeout=PROMPTLY)
    assert device.opened == ["first", "second"]


def test_a_forwarded_unlock_holds_no_database_thread_while_it_waits(
    world, two_gateways, alice_lock
):
    a, b = two_gateways  # A has a single database thread
    on_b = b.lock(alice_lock.serial)
    b.run(on_b.connect())

    deafen(on_b)
    waiting = asyncio.run_coroutine_threadsafe(
        a.gateway.unlock(alice_lock.pk, "forwarded", 3), a.loop
    )
    eventually(lambda: any(m.get("type") == "unlock" for m in on_b.received))

    assert a.run(a.gateway.db(lambda: "free")) == "free"
    assert not waiting.done()  # the database thread answered while the unlock waited
    assert waiting.result(PROMPTLY) == {"ok": False, "error": "timeout"}


def test_the_internal_websocket_refuses_a_connection_without_the_internal_token(gateway):
    from websockets.exceptions import InvalidStatus
    from websockets.sync.client import connect

    url = routing.internal_ws_url(gateway.gateway.public_url)
    for headers in ({}, {"X-Doorkeep-Internal": "not-the-token"}):
        with pytest.raises(InvalidStatus) as refused:
            connect(url, additional_headers=headers, open_timeout=3, proxy=None).close()
        assert refused.value.response.status_code == 403


def test_a_gateway_that_stays_silent_costs_its_link(world, gateway):
    """The gateway answers 2 s before a web thread stops waiting, so silence
    means the link is broken: it is dropped, and the next command opens a new
    one."""
    from websockets.asyncio.server import serve

    async def swallow(ws):
        async for _message in ws:
            pass

    async def start():
        return await serve(swallow, "127.0.0.1", 0)

    server = gateway.run(start())
    url = f"http://127.0.0.1:{next(iter(server.sockets)).getsockname()[1]}"
    try:
        with pytest.raises(TimeoutError):
            routing._ask(url, {"op": "changed", "lock": world.lock.pk}, 0.3)
        assert url not in routing._links.links
    finally:
        server.close()


def test_a_malformed_gateway_url_is_offline_not_a_crash(world, alice_lock):
    Device.objects.update_or_create(
        lock=alice_lock, defaults={"online": True, "gateway": "gw-x", "gateway_url": "http://"}
    )

    with pytest.raises(routing.LockOffline):
        routing.send_unlock(alice_lock.pk, "r1", timeout=1)


def test_a_drained_link_sends_blocking_again(world, gateway, device):
    set_device_secret(world.lock, DEVICE_SECRET)
    gateway.run(device.connect())
    routing.send_unlock(world.lock.pk, "first", timeout=PROMPTLY)
    link = routing._links.links[gateway.gateway.public_url]

    link._drain()  # as before every send: reads what came, without waiting

    assert link.sock.gettimeout() == routing.LINK_TIMEOUT  # blocking again, not 0.0
    routing.send_unlock(world.lock.pk, "second", timeout=PROMPTLY)
    assert device.opened == ["first", "second"]
