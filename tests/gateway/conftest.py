"""A real gateway on a free port, in a background thread with its own event
loop, and simulated locks that connect to it over real WebSockets."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine, Iterator
from typing import Any, TypeVar

import pytest

from doorkeep.gateway.server import Gateway
from doorkeep.gateway.services import set_device_secret
from doorkeep.gateway.simulator import SimulatedLock

T = TypeVar("T")
DEVICE_SECRET = "dks_test-device-secret"


class Running:
    def __init__(self, gateway: Gateway, loop: asyncio.AbstractEventLoop) -> None:
        self.gateway = gateway
        self.loop = loop

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.gateway.port}"

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 20) -> T:
        """Run a coroutine on the gateway's loop (where simulated locks live too)."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def lock(self, serial: str, secret: str = DEVICE_SECRET, **kwargs: Any) -> SimulatedLock:
        async def make() -> SimulatedLock:
            return SimulatedLock(self.url, serial, secret, **kwargs)

        return self.run(make())


def start_gateway(**kwargs: Any) -> tuple[Running, Callable[[], None]]:
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    gateway = Gateway(host="127.0.0.1", port=0, poll_interval=0.1, **kwargs)
    asyncio.run_coroutine_threadsafe(gateway.start(), loop).result(10)
    running = Running(gateway, loop)

    def stop() -> None:
        asyncio.run_coroutine_threadsafe(gateway.stop(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)

    return running, stop


@pytest.fixture
def gateway(transactional_db: None) -> Iterator[Running]:
    running, stop = start_gateway()
    yield running
    stop()


@pytest.fixture
def device(world: Any, gateway: Running) -> SimulatedLock:
    """Alice's lock as a simulated device, not yet connected."""
    set_device_secret(world.lock, DEVICE_SECRET)
    return gateway.lock(world.lock.serial)
