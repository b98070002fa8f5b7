from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

# The gateway's test helpers (a real gateway in a thread, simulated locks) and
# the notification tests' receivers (a push service, a webhook endpoint).
for _folder in ("gateway", "notify"):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / _folder))

from gateway_helpers import DEVICE_SECRET, Running, start_gateway  # noqa: E402
from guest_helpers import GuestWorld, make_guest_world  # noqa: E402
from receivers import receiver  # noqa: E402

from doorkeep.gateway.services import set_device_secret  # noqa: E402
from doorkeep.gateway.simulator import SimulatedLock  # noqa: E402

__all__ = ["receiver"]


@pytest.fixture
def gw(world: Any) -> GuestWorld:
    """The base world plus a Garage lock, a resident (Rita, phone keys on both
    locks), a guest policy that shares both entries, and Gina, the guest-to-be."""
    return make_guest_world(world)


@pytest.fixture
def gateway(transactional_db: None) -> Iterator[Running]:
    running, stop = start_gateway()
    yield running
    stop()


@pytest.fixture
def front_door(gw: GuestWorld, gateway: Running) -> SimulatedLock:
    """The front door's lock as a simulated device, connected."""
    set_device_secret(gw.w.lock, DEVICE_SECRET)
    device = gateway.lock(gw.w.lock.serial)
    gateway.run(device.connect())
    return device
