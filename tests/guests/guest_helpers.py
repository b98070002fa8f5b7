"""Helpers for guest tests. The ``gw`` fixture (conftest.py): a property
where guests can be invited: on top of the base world, a second
lock at the Garage, a resident (Rita) with phone keys on both locks, a guest
policy that lets residents share both entries, and Gina, who will be invited."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from doorkeep.accounts.models import User
from doorkeep.accounts.services import create_user
from doorkeep.guests import services as guests
from doorkeep.guests.models import Invitation
from doorkeep.keys.models import Key
from doorkeep.keys.services import CredentialSpec, HolderSpec, KeySpec, issue_key
from doorkeep.locks.models import Lock
from doorkeep.locks.services import add_manufactured_lock, register_lock

PASSWORD = "correct horse battery staple"
World = Any  # tests/conftest.py's World: alice, bob, charlie, org, prop, entry, entry2, lock


@dataclass
class GuestWorld:
    w: World
    rita: User  # a resident: phone keys on both locks
    gina: User  # the guest-to-be
    garage_lock: Lock

    def invite(self, email: str = "gina@example.com", **kwargs: object) -> Invitation:
        entries = kwargs.pop("entry_ids", [self.w.entry.pk, self.w.entry2.pk])
        return guests.invite(self.rita, self.w.prop.pk, email, entries, **kwargs).invitation  # type: ignore[arg-type]


def phone_key(actor: User, lock: Lock, user: User) -> Key:
    return issue_key(
        actor,
        lock.pk,
        KeySpec(HolderSpec(name=user.name, email=user.email), [CredentialSpec("phone")]),
    )


def open_policy(world: World, **overrides: object) -> None:
    spec = guests.PolicySpec(
        sharing_enabled=True, shareable_entry_ids=[world.entry.pk, world.entry2.pk]
    )
    for name, value in overrides.items():
        setattr(spec, name, value)
    guests.set_policy(world.alice, world.prop.pk, spec)


def new_lock(serial: str) -> None:
    add_manufactured_lock(serial, claim_secret="ABCD-EFGH-JKLM-NPQR")


def make_guest_world(world: World) -> GuestWorld:
    new_lock("DK-TEST-0002")
    garage = register_lock(
        world.alice,
        serial="DK-TEST-0002",
        claim_secret="ABCD-EFGH-JKLM-NPQR",
        entry_id=world.entry2.pk,
        name="Garage lock",
    )
    rita = create_user("rita@example.com", PASSWORD, name="Rita Resident")
    gina = create_user("gina@example.com", PASSWORD, name="Gina Guest")
    phone_key(world.alice, world.lock, rita)
    phone_key(world.alice, garage, rita)
    open_policy(world)
    return GuestWorld(world, rita, gina, garage)
