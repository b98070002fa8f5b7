from __future__ import annotations

from typing import Any

import pytest
from guest_helpers import GuestWorld, make_guest_world


@pytest.fixture
def gw(world: Any) -> GuestWorld:
    """The base world plus a Garage lock, a resident (Rita, phone keys on both
    locks), a guest policy that shares both entries, and Gina, the guest-to-be."""
    return make_guest_world(world)
