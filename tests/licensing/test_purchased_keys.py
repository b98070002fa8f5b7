"""Keys a lock can issue (R7): 25 with its first registration, more with key
packs; issuing uses one, taking back frees it."""

from __future__ import annotations

import pytest
from licencehelp import give_key

from doorkeep.keys.services import revoke_key
from doorkeep.keys.sharing import issue_key_to_organization
from doorkeep.licensing.services import redeem_for_lock
from doorkeep.licensing.state import NoKeysAvailable, licence_of


@pytest.fixture
def full(world):
    """Alice's lock with its 25 included keys all issued."""
    return [give_key(world.alice, world.lock, f"Holder {n:02}") for n in range(25)]


def test_issuing_a_key_uses_one_and_taking_it_back_returns_it(world):
    key = give_key(world.alice, world.lock, "Dana")
    assert licence_of(world.lock.pk).keys_available == 24

    revoke_key(world.alice, key.pk)

    state = licence_of(world.lock.pk)
    assert (state.keys_purchased, state.keys_issued, state.keys_available) == (25, 0, 25)


def test_the_26th_key_is_refused_with_no_keys_available(world, full):
    with pytest.raises(NoKeysAvailable) as refused:
        give_key(world.alice, world.lock, "Number 26")

    assert refused.value.code == "no_keys_available"
    assert refused.value.status == 409
    assert "All 25 keys bought for this lock are in use" in refused.value.message
    assert "key pack" in refused.value.message
    assert licence_of(world.lock.pk).keys_issued == 25


def test_taking_one_back_makes_room_for_the_26th(world, full):
    revoke_key(world.alice, full[0].pk)

    give_key(world.alice, world.lock, "Number 26")

    assert licence_of(world.lock.pk).keys_available == 0


@pytest.mark.parametrize(("sku", "keys"), [("KEYS-25", 25), ("KEYS-100", 100), ("KEYS-500", 500)])
def test_a_key_pack_code_adds_its_keys(world, full, code, sku, keys):
    result = redeem_for_lock(world.alice, world.lock.pk, code(sku))

    give_key(world.alice, world.lock, "Number 26")
    state = licence_of(world.lock.pk)
    assert state.keys_purchased == 25 + keys
    assert state.keys_available == keys - 1
    assert f"{keys} more keys" in result.summary


def test_key_packs_add_up(world, code):
    redeem_for_lock(world.alice, world.lock.pk, code("KEYS-25"))
    redeem_for_lock(world.alice, world.lock.pk, code("KEYS-100"))

    assert licence_of(world.lock.pk).keys_purchased == 150


def test_a_key_pack_works_in_the_free_period_without_changing_it(world, code):
    before = licence_of(world.lock.pk)

    redeem_for_lock(world.alice, world.lock.pk, code("KEYS-25"))

    after = licence_of(world.lock.pk)
    assert (after.mode, after.full_until) == ("free", before.full_until)


def test_a_key_given_to_an_organization_and_keys_issued_under_it_each_use_one(
    world, managed, agency
):
    managed(option=True)

    shared = issue_key_to_organization(world.alice, world.lock.pk, agency.org.pk)
    give_key(agency.dora, world.lock, "Gus", parent=shared)

    assert licence_of(world.lock.pk).keys_issued == 2
