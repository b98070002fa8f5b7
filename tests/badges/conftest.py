"""A site for the badge tests: Alice's Canal House with units, a parking
space with a private charging station, a resident (Rosa, with an account)
who holds a key to Alice's lock, and a platform operator (Otto)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

import pytest

from doorkeep.accounts.models import Organization, Role, User
from doorkeep.accounts.services import create_user
from doorkeep.keys.models import Key, Person
from doorkeep.keys.services import CredentialSpec, HolderSpec, KeySpec, issue_key
from doorkeep.residents.models import ParkingSpace, Residency, Unit
from doorkeep.residents.services import ResidentSpec, add_parking_space, add_resident, add_unit

PASSWORD = "correct horse battery staple"


@dataclass
class Site:
    world: Any
    unit: Unit
    other_unit: Unit
    space: ParkingSpace
    rosa: User
    rosa_person: Person
    residency: Residency
    key: Key
    operator: User


@pytest.fixture
def site(world: Any) -> Site:
    unit = add_unit(world.alice, world.prop.pk, "A-12")
    other = add_unit(world.alice, world.prop.pk, "B-3")
    space = add_parking_space(
        world.alice, world.prop.pk, "P7", unit_id=unit.pk, station_serial="EVB-P7-0001"
    )
    rosa = create_user("rosa@example.com", PASSWORD, name="Rosa Resident")
    residency = add_resident(
        world.alice,
        world.prop.pk,
        ResidentSpec(
            name="Rosa Resident",
            email="rosa@example.com",
            move_in=date(2024, 1, 1),
            unit_id=unit.pk,
        ),
    )
    key = issue_key(
        world.alice,
        world.lock.pk,
        KeySpec(HolderSpec(person_id=residency.person_id), [CredentialSpec("pin", "24681357")]),
    )
    operator = create_user("otto@example.com", PASSWORD, name="Otto Operator")
    platform = Organization.objects.create(name="Doorkeep platform", is_platform=True)
    platform.memberships.create(user=operator, role=Role.PLATFORM_OPERATOR)
    return Site(world, unit, other, space, rosa, residency.person, residency, key, operator)
