"""Edges of a lock's connection: unlocks sent while it closes."""

from __future__ import annotations

import asyncio
import json
import time

from gateway_helpers import PROMPTLY, eventually
from test_protocol import online, receive

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
