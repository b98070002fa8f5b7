"""Fixtures for the API tests: a bearer-token client per person of the world,
and factories for locks and keys."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.test import Client

from doorkeep.locks.models import Lock
from doorkeep.locks.services import add_manufactured_lock

SECRET = "ABCD-EFGH-JKLM-NPQR"


@pytest.fixture
def alice_api(world: Any) -> Client:
    return world.bearer(world.alice)


@pytest.fixture
def bob_api(world: Any) -> Client:
    return world.bearer(world.bob)


@pytest.fixture
def charlie_api(world: Any) -> Client:
    return world.bearer(world.charlie)


@pytest.fixture
def manufacture(db: None) -> Callable[..., Lock]:
    """Make a lock known to the platform, as the factory does."""

    def make(serial: str, secret: str = SECRET) -> Lock:
        add_manufactured_lock(serial, claim_secret=secret)
        return Lock.objects.get(serial=serial)

    return make


@pytest.fixture
def issue(alice_api: Client, world: Any) -> Callable[..., Any]:
    """POST a key on a lock (Alice's lock unless told) and return the response."""

    def post(lock_id: int | None = None, client: Client | None = None, **body: Any) -> Any:
        body.setdefault("credentials", [{"kind": "remote", "value": "RM-0001"}])
        return (client or alice_api).post(
            f"/api/v1/locks/{lock_id or world.lock.pk}/keys", body, content_type="application/json"
        )

    return post


@pytest.fixture
def code(db: None) -> Callable[..., str]:
    """A new, unused prepaid code for a product."""
    from doorkeep.licensing.services import generate_batch

    def make(sku: str, **kwargs: Any) -> str:
        _batch, (plain,) = generate_batch(None, sku, 1, **kwargs)
        return plain

    return make


@pytest.fixture
def travel(time_machine: Any) -> Callable[[Any], None]:
    """Stand still at a moment (the clock does not tick)."""

    def go(moment: Any) -> None:
        time_machine.move_to(moment, tick=False)

    return go


@pytest.fixture
def now(world: Any, travel: Callable[[Any], None]) -> Any:
    """Stop the clock (after the world was made), and return the moment."""
    from django.utils import timezone

    moment = timezone.now()
    travel(moment)
    return moment
