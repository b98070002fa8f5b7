"""The simulated lock stays connected as the protocol asks of a real lock
("Reconnecting" in docs/protocol/lock-v1.md): after losing the connection
it reconnects with a growing, randomized pause, catches up and uploads what
it decided meanwhile; a refusal retrying cannot mend stops it, and so does
going offline on purpose. The locks live on a loop of their own, so that
they outlive the gateways stopped and started under them."""

from __future__ import annotations

import asyncio
import random
import re
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from typing import Any, TypeVar

import pytest
from gateway_helpers import DEVICE_SECRET, PROMPTLY, Running, eventually, give, start_gateway

from doorkeep.events.models import Event
from doorkeep.gateway.models import Device
from doorkeep.gateway.server import Gateway
from doorkeep.gateway.services import set_device_secret
from doorkeep.gateway.simulator import Backoff, NotWelcomed, SimulatedLock

T = TypeVar("T")
MIN_PAUSE, MAX_PAUSE = 0.2, 1.0  # short pauses: the tests wait for several of them


class LockLoop:
    """An event loop in a thread of its own, where the simulated locks run."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 30) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def lock(
        self, url: str, serial: str, secret: str = DEVICE_SECRET
    ) -> tuple[SimulatedLock, list[str]]:
        said: list[str] = []

        async def make() -> SimulatedLock:
            return SimulatedLock(url, serial, secret, on_event=said.append)

        return self.run(make()), said

    def keep(self, lock: SimulatedLock, *, wait: bool = True) -> None:
        async def start() -> None:
            lock.stay_connected(min_pause=MIN_PAUSE, max_pause=MAX_PAUSE)
            if wait:
                await lock.wait_online(PROMPTLY)

        self.run(start())

    def stop(self) -> list[asyncio.Task[Any]]:
        """Stop the loop; returns the tasks left pending on it (none, when
        every lock went offline and stopped its keeping)."""

        async def pending() -> list[asyncio.Task[Any]]:
            await asyncio.sleep(0)
            return [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]

        left = self.run(pending())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()
        return left


@pytest.fixture
def locks(transactional_db: None) -> Iterator[LockLoop]:
    loop = LockLoop()
    errors: list[dict[str, Any]] = []
    loop.loop.set_exception_handler(lambda _loop, context: errors.append(context))
    yield loop
    left = loop.stop()
    assert left == [], "a lock's task was left running"
    assert errors == [], "an exception nobody read was logged"


def gateway_on(port: int) -> tuple[Running, Callable[[], None]]:
    """A gateway on ``port``: a new process's gateway, where the last one was."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    gateway = Gateway(host="127.0.0.1", port=port, poll_interval=0.1)
    asyncio.run_coroutine_threadsafe(gateway.start(), loop).result(10)

    def stop() -> None:
        asyncio.run_coroutine_threadsafe(gateway.stop(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)

    return Running(gateway, loop), stop


def device(world: Any) -> Device:
    return Device.objects.get(lock=world.lock)


def uploaded(world: Any, seq: int) -> bool:
    return Event.objects.filter(lock=world.lock, device_seq=seq).exists()


# --- the pauses ----------------------------------------------------------------------------------


def test_pauses_double_from_the_least_to_the_most_and_stay_there() -> None:
    lowest = Backoff(1.0, 60.0, rand=lambda: 0.0)
    highest = Backoff(1.0, 60.0, rand=lambda: 1.0)

    assert [lowest.next() for _ in range(9)] == [0.5, 1, 2, 4, 8, 16, 30, 30, 30]
    assert [highest.next() for _ in range(9)] == [1, 2, 4, 8, 16, 32, 60, 60, 60]


def test_a_random_pause_is_between_half_the_base_and_the_base_and_starts_again_when_reset() -> None:
    backoff = Backoff(0.5, 8.0, rand=random.Random(16).random)
    pauses = [backoff.next() for _ in range(8)]
    bases = [0.5, 1, 2, 4, 8, 8, 8, 8]
    assert all(base / 2 <= pause <= base for pause, base in zip(pauses, bases, strict=True))
    assert len(set(pauses)) == len(pauses)  # randomized: locks do not come back in step

    backoff.reset()
    assert 0.25 <= backoff.next() <= 0.5
    assert 0.5 <= backoff.next() <= 1


def test_pauses_are_checked() -> None:
    for low, high in ((0, 1), (2, 1), (-1, 5)):
        with pytest.raises(ValueError, match="0 < min_pause <= max_pause"):
            Backoff(low, high)


# --- a gateway that goes away -------------------------------------------------------------------


def test_a_lock_comes_back_to_a_gateway_started_again_on_the_same_port_and_uploads_what_it_kept(
    world: Any, locks: LockLoop
) -> None:
    set_device_secret(world.lock, DEVICE_SECRET)
    give(world, pin="2580")
    first, stop_first = start_gateway()
    port = first.gateway.port
    lock, said = locks.lock(first.url, world.lock.serial)
    locks.keep(lock)
    assert device(world).online
    assert lock.reconnects == 0
    welcomed_first = lock.connected_at
    assert welcomed_first is not None

    stop_first()  # closes every connection (1001) and records the lock offline
    eventually(lambda: not lock.online)
    assert lock.connected_at is None
    assert not device(world).online
    kept = locks.run(lock.present("pin", "2580"))  # decided alone, kept
    assert kept.granted
    assert [e["seq"] for e in lock.outbox] == [kept.seq]
    # Nothing listens on the port: the attempts fail, and back off.
    eventually(lambda: sum("cannot reach the gateway" in s for s in said) >= 2)
    assert any("connection lost (1001" in s and "reconnecting in" in s for s in said)

    second, stop_second = gateway_on(port)
    try:
        locks.run(lock.wait_online(PROMPTLY))
        assert lock.online
        assert lock.reconnects == 1
        assert lock.connected_at is not None and lock.connected_at > welcomed_first
        assert lock.outbox == []
        assert uploaded(world, kept.seq)
        row = device(world)
        assert row.online
        assert row.gateway == second.gateway.id
        assert any(s.startswith("back online after") for s in said)
    finally:
        locks.run(lock.go_offline())
        stop_second()


def test_a_lock_whose_connection_the_gateway_drops_abruptly_reconnects(
    world: Any, gateway: Running, locks: LockLoop
) -> None:
    set_device_secret(world.lock, DEVICE_SECRET)
    give(world, pin="2580")
    lock, said = locks.lock(gateway.url, world.lock.serial)
    locks.keep(lock)
    welcomes = sum(m["type"] == "welcome" for m in lock.received)

    async def cut() -> None:  # no closing handshake: the TCP connection is gone
        gateway.gateway.connections[world.lock.pk].ws.transport.abort()

    gateway.run(cut())
    eventually(lambda: lock.reconnects == 1)
    locks.run(lock.wait_online(PROMPTLY))
    assert any("connection lost (1006" in s for s in said)
    assert sum(m["type"] == "welcome" for m in lock.received) == welcomes + 1
    eventually(lambda: device(world).online)
    decision = locks.run(lock.present("pin", "2580"))
    eventually(lambda: uploaded(world, decision.seq))
    locks.run(lock.go_offline())


def test_a_lock_behind_a_balancer_answering_503_retries_until_a_gateway_is_there(
    world: Any, locks: LockLoop
) -> None:
    set_device_secret(world.lock, DEVICE_SECRET)
    probe, stop_probe = start_gateway()
    port = probe.gateway.port
    stop_probe()
    answered: list[bytes] = []

    async def balancer() -> asyncio.Server:
        async def no_gateway(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            answered.append(await reader.readuntil(b"\r\n\r\n"))
            writer.write(
                b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n"
                b"Retry-After: 1\r\nConnection: close\r\n\r\n"
            )
            await writer.drain()
            writer.close()

        return await asyncio.start_server(no_gateway, "127.0.0.1", port)

    server = locks.run(balancer())
    lock, said = locks.lock(f"ws://127.0.0.1:{port}", world.lock.serial)
    locks.keep(lock, wait=False)
    eventually(lambda: len(answered) >= 2)
    assert any("HTTP 503" in s and "retrying in" in s for s in said)
    # It waits at least as long as the answer's Retry-After asks.
    pauses = [float(re.findall(r"retrying in ([0-9.]+) s", s)[0]) for s in said if "503" in s]
    assert pauses and min(pauses) >= 1.0
    assert not lock.online

    async def close(server: asyncio.Server) -> None:
        server.close()
        await server.wait_closed()

    locks.run(close(server))
    running, stop = gateway_on(port)
    try:
        locks.run(lock.wait_online(PROMPTLY))
        assert lock.reconnects == 0  # its first connection, after failed attempts
        assert any(s.startswith("online after") for s in said)
        assert device(world).gateway == running.gateway.id
    finally:
        locks.run(lock.go_offline())
        stop()


# --- when it stops ------------------------------------------------------------------------------


def test_a_lock_refused_for_its_secret_stops_reconnecting(
    world: Any, gateway: Running, locks: LockLoop
) -> None:
    set_device_secret(world.lock, DEVICE_SECRET)
    lock, said = locks.lock(gateway.url, world.lock.serial, secret="dks_not-the-secret")
    locks.keep(lock, wait=False)

    with pytest.raises(NotWelcomed) as refused:
        locks.run(lock.wait_online(PROMPTLY))
    assert refused.value.code == 4003
    assert (lock.close_code, lock.close_reason) == (4003, "unknown device or wrong secret")
    assert any(s.startswith("not reconnecting") and "(4003" in s for s in said)
    closes = [s for s in said if "closed by the gateway" in s]
    assert len(closes) == 1
    time.sleep(4 * MAX_PAUSE)  # long enough for several attempts, had it gone on
    assert [s for s in said if "closed by the gateway" in s] == closes
    assert not lock.online
    assert lock._keeper is not None and lock._keeper.done()
    locks.run(lock.go_offline())


def test_a_lock_that_goes_offline_on_purpose_stays_offline(
    world: Any, gateway: Running, locks: LockLoop
) -> None:
    set_device_secret(world.lock, DEVICE_SECRET)
    lock, said = locks.lock(gateway.url, world.lock.serial)
    locks.keep(lock)
    assert device(world).online

    locks.run(lock.go_offline())
    eventually(lambda: not device(world).online)
    time.sleep(4 * MAX_PAUSE)  # the gateway is up: a keeping lock would be back by now
    assert not lock.online
    assert lock.reconnects == 0
    assert not device(world).online
    assert not any("reconnecting in" in s for s in said)

    # Keeping again brings it back; going offline while it waits between
    # attempts ends the waiting as well.
    locks.keep(lock)
    assert device(world).online
    locks.run(lock.go_offline())
    lock.url = "ws://127.0.0.1:9"  # nothing there: it keeps trying
    locks.keep(lock, wait=False)
    eventually(lambda: any("cannot reach the gateway" in s for s in said))
    locks.run(lock.go_offline())
    assert lock._keeper is None


def test_a_lock_given_a_url_that_is_not_a_websocket_one_stops_and_says_why(
    world: Any, locks: LockLoop
) -> None:
    lock, said = locks.lock("http://127.0.0.1:9", world.lock.serial)
    locks.keep(lock, wait=False)

    with pytest.raises(ConnectionError, match="scheme isn't ws or wss"):
        locks.run(lock.wait_online(PROMPTLY))
    assert any(s.startswith("stopped reconnecting") for s in said)
    assert lock._keeper is not None and lock._keeper.done()
    locks.run(lock.go_offline())
