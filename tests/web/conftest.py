"""Signed-in browser clients for the people of the world (see tests/conftest.py)."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client


@pytest.fixture
def alice(world: Any) -> Client:
    return world.client(world.alice)


@pytest.fixture
def bob(world: Any) -> Client:
    return world.client(world.bob)


@pytest.fixture
def charlie(world: Any) -> Client:
    return world.client(world.charlie)
