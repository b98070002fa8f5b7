"""Edges of a lock's connection: unlocks sent while it closes, a lock that
stops reading what the gateway sends, a lock that moves between gateways
whose clocks disagree, and a lock that numbers its events from 1 again."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from datetime import timedelta
from typing import Any

from gateway_helpers import DEVICE_SECRET, PROMPTLY, eventually
from test_device_input import send_events
from test_protocol import hello_of, online, receive
from websockets.asyncio.client import ClientConnection, connect

from doorkeep.events.models import Event
from doorkeep.gateway import server
from doorkeep.gateway.models import Device

GATEWAY_POLL_INTERVAL = 60  # the watch round never comes: only what is tested acts

UNLOCK_TIMEOUT = 3 * PROMPTLY  # longer than any wait of these tests


# --- an unlock and a connection that closes ----------------------------------------------------


def test_an_unlock_for_a_connection_being_closed_is_offline_at_once_and_not_sent(
    world, gateway, device
):
    gateway.run(device.connect())
    gw = gateway.gateway

    async def go():
        # Another gateway got the lock's new connection: ours is being closed.
        assert await gw.drop(world.lock.pk, before=time.time() + 1)
        async with asyncio.timeout(PROMPTLY):  # at once, before the closing starts
            return await gw.unlock(world.lock.pk, "late", UNLOCK_TIMEOUT)

    result = gateway.run(go())

    assert result == {"ok": False, "error": "offline"}
    eventually(lambda: device.close_code == 4009)
    assert device.opened == []


def test_an_answer_that_comes_while_the_connection_closes_is_still_the_answer(
    world, gateway, alice_lock
):
    gw = gateway.gateway

    async def go():
        ws = await online(gateway.url, world.lock.serial)
        asking = asyncio.ensure_future(gw.unlock(world.lock.pk, "opening", UNLOCK_TIMEOUT))
        command = await receive(ws)
        assert command["type"] == "unlock", command
        result = {"type": "unlock.result", "request_id": "opening", "ok": True, "reason": ""}
        await ws.send(json.dumps(result))  # on its way: the gateway reads it next
        assert await gw.drop(world.lock.pk, before=time.time() + 1)
        answer = await asyncio.wait_for(asking, PROMPTLY)
        await ws.close()
        return answer

    assert gateway.run(go()) == {"ok": True, "error": "", "reason": ""}


# --- a lock that stops reading ----------------------------------------------------------------


async def stuck_lock(gateway, lock) -> tuple[ClientConnection, server.Connection]:
    """A lock past its handshake that then stops reading: small socket
    buffers on both ends (a slow link), and what the gateway sends piles up
    until the gateway's writes wait (as when a lock's TCP window is full)."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", gateway.gateway.port))
    ws = await connect(gateway.url, sock=sock, max_size=None, ping_interval=None, open_timeout=5)
    await ws.send(hello_of(lock.serial, DEVICE_SECRET))
    assert (await receive(ws))["type"] == "welcome"
    listed = await receive(ws)
    await ws.send(json.dumps({"type": "list.ack", "version": listed["version"]}))
    conn = gateway.gateway.connections[lock.pk]
    conn.ws.transport.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    ws.transport.pause_reading()
    # Each batch is acknowledged with its 500 sequence numbers (~10 kB).
    start = 2**62
    batch = [
        {"seq": start + n, "at": "2026-01-01T00:00:00Z", "outcome": "denied"} for n in range(500)
    ]
    message = json.dumps({"type": "events", "events": batch})
    for _ in range(12):
        try:
            await asyncio.wait_for(ws.send(message), 1)
        except TimeoutError:
            break  # the gateway stopped reading too: it waits to write
    return ws, conn


def test_an_unlock_for_a_lock_that_stopped_reading_ends_within_its_time_limit(
    world, gateway, alice_lock
):
    gw = gateway.gateway
    ws, conn = gateway.run(stuck_lock(gateway, world.lock))
    try:
        eventually(lambda: conn.ws.transport.get_write_buffer_size() > 2**15)

        result = gateway.run(asyncio.wait_for(gw.unlock(world.lock.pk, "stuck", 1.0), PROMPTLY))

        assert result == {"ok": False, "error": "timeout"}
    finally:
        ws.transport.abort()


def test_a_lock_that_stopped_reading_is_disconnected(world, gateway, alice_lock, monkeypatch):
    monkeypatch.setattr(server, "SEND_TIMEOUT", 1.0, raising=False)
    gw = gateway.gateway
    ws, _ = gateway.run(stuck_lock(gateway, world.lock))
    try:
        eventually(lambda: world.lock.pk not in gw.connections)
        eventually(lambda: not Device.objects.get(lock=world.lock).online)
    finally:
        ws.transport.abort()


# --- two gateways whose clocks disagree --------------------------------------------------------


def test_a_lock_that_reconnects_elsewhere_is_dropped_by_a_gateway_whose_clock_is_ahead(
    world, transactional_db, two_gateways, alice_lock
):
    a, b = two_gateways
    first = a.lock(alice_lock.serial)
    a.run(first.connect())
    # A's clock is a minute ahead of B's: the connection it holds, and the
    # Device row it wrote, say the lock connected a minute from now.
    conn = a.gateway.connections[alice_lock.pk]
    conn.opened_at += 60
    Device.objects.filter(lock=alice_lock).update(
        connected_at=Device.objects.get(lock=alice_lock).connected_at + timedelta(seconds=60)
    )
    again = b.lock(alice_lock.serial)

    b.run(again.connect())

    eventually(lambda: first.close_code == 4009)
    eventually(lambda: alice_lock.pk not in a.gateway.connections)
    row = Device.objects.get(lock=alice_lock)
    assert row.online and row.gateway == b.gateway.id


# --- a lock that numbers its events again from 1 -----------------------------------------------


def test_events_under_numbers_used_again_are_stored_and_a_resend_is_stored_once(
    world, gateway, alice_lock
):
    def event(seq: int, at: str) -> dict[str, Any]:
        return {"seq": seq, "at": at, "outcome": "denied", "reason": "unknown_credential"}

    before = [event(n, f"2026-01-0{n}T10:00:00Z") for n in (1, 2, 3)]
    assert send_events(gateway, world.lock.serial, before)["seqs"] == [1, 2, 3]
    # The lock lost its counter and, against the protocol, numbers from 1 again:
    # 1 and 2 are new events; 3 is the one stored before, sent again (its time
    # written with another zone).
    after = [event(1, "2026-02-01T10:00:00Z"), event(2, "2026-02-02T10:00:00Z")]
    after.append(event(3, "2026-01-03T11:00:00+01:00"))

    for _ in range(2):  # the second time: an acknowledgement got lost
        assert send_events(gateway, world.lock.serial, after)["seqs"] == [1, 2, 3]

    uploaded = Event.objects.filter(lock=world.lock, data__source="lock")
    assert uploaded.count() == 5
    assert sorted(e.occurred_at.month for e in uploaded) == [1, 1, 1, 2, 2]
    again = uploaded.filter(device_seq__isnull=True)
    assert sorted(e.data["seq"] for e in again) == [1, 2]
