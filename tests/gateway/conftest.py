"""A real gateway on a free port, in a background thread with its own event
loop, and simulated locks that connect to it over real WebSockets."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from gateway_helpers import DEVICE_SECRET, Running, give, start_gateway

from doorkeep.gateway.services import set_device_secret
from doorkeep.gateway.simulator import SimulatedLock


@pytest.fixture
def gateway(transactional_db: None, request: pytest.FixtureRequest) -> Iterator[Running]:
    """A module may set GATEWAY_POLL_INTERVAL (seconds between watch rounds)."""
    running, stop = start_gateway(
        poll_interval=getattr(request.module, "GATEWAY_POLL_INTERVAL", 0.1)
    )
    yield running
    stop()


@pytest.fixture
def device(world: Any, gateway: Running) -> SimulatedLock:
    """Alice's lock as a simulated device, not yet connected."""
    set_device_secret(world.lock, DEVICE_SECRET)
    return gateway.lock(world.lock.serial)


@pytest.fixture
def two_gateways(
    transactional_db: None, request: pytest.FixtureRequest
) -> Iterator[tuple[Running, Running]]:
    """Gateways A and B, started with the routing the test set up. A module
    may set GATEWAY_POLL_INTERVAL, and GATEWAY_A_DB_THREADS for A."""
    tag = uuid.uuid4().hex[:6]
    poll = getattr(request.module, "GATEWAY_POLL_INTERVAL", 0.1)
    a, stop_a = start_gateway(
        gateway_id=f"gw-a-{tag}",
        poll_interval=poll,
        db_threads=getattr(request.module, "GATEWAY_A_DB_THREADS", 4),
    )
    b, stop_b = start_gateway(gateway_id=f"gw-b-{tag}", poll_interval=poll)
    yield a, b
    stop_b()
    stop_a()


@pytest.fixture
def alice_lock(world: Any) -> Any:
    """Alice's lock with the test device secret; Alice may open it remotely."""
    set_device_secret(world.lock, DEVICE_SECRET)
    give(world, "Alice", phone="")
    return world.lock
