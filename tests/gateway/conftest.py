"""A real gateway on a free port, in a background thread with its own event
loop, and simulated locks that connect to it over real WebSockets."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from gateway_helpers import DEVICE_SECRET, Running, start_gateway

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
