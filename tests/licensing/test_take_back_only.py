"""When management ends (R6, R7): keys can be taken back and codes entered,
nothing else; nothing is lost, and a late management code restores it all."""

from __future__ import annotations

from datetime import timedelta

import pytest
from licencehelp import give_key, version

from doorkeep.core.errors import Conflict
from doorkeep.keys import access
from doorkeep.keys.models import Key
from doorkeep.keys.services import revoke_key, update_key
from doorkeep.licensing.services import redeem_for_lock
from doorkeep.licensing.state import ManagementEnded, add_years, licence_of


@pytest.fixture
def expired(world, travel):
    """Alice's lock with two keys, just after its free period ended."""
    dana = give_key(world.alice, world.lock, "Dana", pin="482916")
    eve = give_key(world.alice, world.lock, "Eve", pin="739164")
    ends = licence_of(world.lock.pk).free_ends_at
    travel(ends + timedelta(hours=1))
    assert licence_of(world.lock.pk).mode == "take_back_only"
    return dana, eve


def test_issuing_a_key_is_refused_and_the_message_says_how_to_restore_management(world, expired):
    with pytest.raises(ManagementEnded) as refused:
        give_key(world.alice, world.lock, "Frank")

    assert refused.value.code == "management_ended"
    assert refused.value.status == 403
    message = refused.value.message
    assert "you can still take keys back" in message
    assert "Enter a prepaid management code" in message
    assert "all keys are kept" in message
    assert not Key.objects.filter(person__name="Frank").exists()


def test_changing_a_key_is_refused(world, expired):
    dana, _eve = expired
    before = version(world.lock)

    with pytest.raises(ManagementEnded):
        update_key(
            world.alice,
            dana.pk,
            valid_from=None,
            valid_until=dana.issued_at + timedelta(days=400),
            note="longer",
        )

    dana.refresh_from_db()
    assert (dana.valid_until, dana.note) == (None, "")
    assert version(world.lock) == before


def test_taking_a_key_back_still_works_and_frees_its_place(world, expired):
    dana, _eve = expired
    before = version(world.lock)

    revoke_key(world.alice, dana.pk)

    dana.refresh_from_db()
    assert dana.revoked_at is not None
    assert version(world.lock) == before + 1
    assert licence_of(world.lock.pk).keys_issued == 1
    assert access.decide(world.lock, "pin", "482916").reason == "revoked"


def test_keys_keep_opening_the_door_when_management_ends(world, expired):
    assert access.decide(world.lock, "pin", "739164").granted


def test_codes_can_still_be_entered(world, expired, code):
    result = redeem_for_lock(world.alice, world.lock.pk, code("KEYS-25"))

    assert result.product.sku == "KEYS-25"
    state = licence_of(world.lock.pk)
    assert state.mode == "take_back_only"
    assert state.keys_purchased == 50


def test_a_late_management_code_restores_full_management_for_5_years_from_now(world, expired, code):
    now = licence_of(world.lock.pk).at

    result = redeem_for_lock(world.alice, world.lock.pk, code("MGMT-5Y"))

    state = licence_of(world.lock.pk)
    assert state.mode == "active"
    assert state.full_until == add_years(now, 5) == result.ends_at
    assert state.ended_at is None


def test_after_a_late_management_code_every_key_is_manageable_again(world, expired, code):
    dana, eve = expired
    redeem_for_lock(world.alice, world.lock.pk, code("MGMT-5Y"))

    changed = update_key(
        world.alice,
        dana.pk,
        valid_from=None,
        valid_until=dana.issued_at + timedelta(days=3000),
        note="kept",
    )
    revoke_key(world.alice, eve.pk)
    frank = give_key(world.alice, world.lock, "Frank")

    assert changed.note == "kept"
    assert frank.revoked_at is None
    state = licence_of(world.lock.pk)
    assert (state.keys_issued, state.keys_available) == (2, 23)


def test_every_bought_key_not_in_use_is_available_again_after_a_late_code(world, expired, code):
    dana, _eve = expired
    redeem_for_lock(world.alice, world.lock.pk, code("KEYS-100"))
    revoke_key(world.alice, dana.pk)

    redeem_for_lock(world.alice, world.lock.pk, code("MGMT-5Y"))

    state = licence_of(world.lock.pk)
    assert (state.keys_purchased, state.keys_issued, state.keys_available) == (125, 1, 124)


def test_a_key_already_taken_back_cannot_be_taken_back_again(world, expired):
    dana, _eve = expired
    revoke_key(world.alice, dana.pk)

    with pytest.raises(Conflict) as refused:
        revoke_key(world.alice, dana.pk)

    assert refused.value.code == "already_revoked"


def test_paid_management_that_runs_out_also_ends_in_take_back_only_mode(world, code, travel):
    redeem_for_lock(world.alice, world.lock.pk, code("MGMT-5Y"))
    ends = licence_of(world.lock.pk).full_until

    travel(ends - timedelta(minutes=1))
    give_key(world.alice, world.lock, "Just in time")
    travel(ends)

    state = licence_of(world.lock.pk)
    assert state.mode == "take_back_only"
    assert state.ended_at == ends == state.management_ends_at
    with pytest.raises(ManagementEnded) as refused:
        give_key(world.alice, world.lock, "Too late")
    assert f"{ends.year}" in refused.value.message
