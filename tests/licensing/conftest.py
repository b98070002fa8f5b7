"""Fixtures for the licensing tests: prepaid codes, more locks, time travel,
and an organization that receives keys for shared management."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pytest
from django.utils import timezone

from doorkeep.accounts.models import Membership, Organization, Role, User
from doorkeep.accounts.services import create_organization, create_user
from doorkeep.licensing.services import generate_batch, redeem_for_lock
from doorkeep.licensing.state import licence_of
from doorkeep.locks.models import Lock
from doorkeep.locks.services import add_manufactured_lock, register_lock

SECRET = "ABCD-EFGH-JKLM-NPQR"


@pytest.fixture
def code(db: None) -> Callable[..., str]:
    """A new, unused prepaid code for a product."""

    def make(sku: str, *, expires_at: datetime | None = None) -> str:
        _batch, (plain,) = generate_batch(None, sku, 1, expires_at=expires_at)
        return plain

    return make


@pytest.fixture
def register(world: Any) -> Callable[..., Lock]:
    """Make a lock known to the platform (unless it is) and register it, by
    Alice at her garage unless told otherwise."""

    def make(serial: str, *, by: User | None = None, entry_id: int | None = None) -> Lock:
        if not Lock.objects.filter(serial=serial).exists():
            add_manufactured_lock(serial, claim_secret=SECRET)
        return register_lock(
            by or world.alice,
            serial=serial,
            claim_secret=SECRET,
            entry_id=entry_id or world.entry2.pk,
        )

    return make


@pytest.fixture
def travel(time_machine: Any) -> Callable[[datetime], None]:
    """Stand still at a moment (the clock does not tick)."""

    def go(moment: datetime) -> None:
        time_machine.move_to(moment, tick=False)

    return go


@pytest.fixture
def managed(world: Any, code: Callable[..., str]) -> Callable[..., None]:
    """Give a lock paid management (and, with option=True, the option to issue
    keys to organizations), by Alice unless told otherwise."""

    def buy(lock: Lock | None = None, *, option: bool = False, by: User | None = None) -> None:
        lock_id = (lock or world.lock).pk
        redeem_for_lock(by or world.alice, lock_id, code("MGMT-5Y"))
        if option:
            redeem_for_lock(by or world.alice, lock_id, code("ORGS-5Y"))
        assert licence_of(lock_id).option_active is option

    return buy


@dataclass
class Agency:
    """An organization registered with organization management, to which Alice
    gives keys: Dora owns it, Erin is its building manager, Frank a member."""

    org: Organization
    dora: User
    erin: User
    frank: User


@pytest.fixture
def agency(world: Any) -> Agency:
    dora = create_user("dora@example.com", "correct horse battery staple", name="Dora")
    org = create_organization(dora, "Dora's Facility Services")
    org.organization_management_since = timezone.now()
    org.save(update_fields=["organization_management_since"])
    erin = create_user("erin@example.com", "correct horse battery staple", name="Erin")
    frank = create_user("frank@example.com", "correct horse battery staple", name="Frank")
    Membership.objects.create(user=erin, organization=org, role=Role.BUILDING_MANAGER)
    Membership.objects.create(user=frank, organization=org, role=Role.MEMBER)
    return Agency(org, dora, erin, frank)


@pytest.fixture
def now(world: Any, travel: Callable[[datetime], None]) -> datetime:
    """Stop the clock (after the world was made), and return the moment."""
    moment = timezone.now()
    travel(moment)
    return moment
