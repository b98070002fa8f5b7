"""Five years of management per code (R5, R9), and removing and registering
a lock again (R8): the end dates belong to the physical lock."""

from __future__ import annotations

from datetime import timedelta

import pytest
from licencehelp import give_key

from doorkeep.events.models import Event, EventKind
from doorkeep.keys.sharing import issue_key_to_organization
from doorkeep.licensing.models import KeyAllotment, Period, PeriodKind, PrepaidCode
from doorkeep.licensing.services import redeem_for_lock
from doorkeep.licensing.state import ManagementEnded, add_years, licence_of
from doorkeep.locks.services import remove_lock


def test_a_code_in_the_free_period_starts_paid_management_now_and_adds_5_years_to_its_end(
    world, code, now
):
    free = licence_of(world.lock.pk)

    result = redeem_for_lock(world.alice, world.lock.pk, code("MGMT-5Y"))

    state = licence_of(world.lock.pk)
    assert state.mode == "active"
    assert state.full_until == add_years(free.free_ends_at, 5) == result.ends_at
    assert state.free_ends_at == free.free_ends_at
    paid = Period.objects.get(lock=world.lock, kind=PeriodKind.MANAGEMENT)
    assert paid.starts_at == state.at
    assert paid.code == PrepaidCode.objects.get(redeemed_at__isnull=False)


def test_two_codes_in_the_free_period_add_up_to_10_years(world, code):
    free_end = licence_of(world.lock.pk).free_ends_at

    redeem_for_lock(world.alice, world.lock.pk, code("MGMT-5Y"))
    redeem_for_lock(world.alice, world.lock.pk, code("MGMT-5Y"))

    assert licence_of(world.lock.pk).full_until == add_years(free_end, 10)


def test_a_code_while_paid_management_runs_adds_5_years_to_its_end(world, code, travel):
    redeem_for_lock(world.alice, world.lock.pk, code("MGMT-5Y"))
    first_end = licence_of(world.lock.pk).full_until
    travel(first_end - timedelta(days=100))

    redeem_for_lock(world.alice, world.lock.pk, code("MGMT-5Y"))

    state = licence_of(world.lock.pk)
    assert state.full_until == add_years(first_end, 5) == state.management_ends_at
    travel(first_end + timedelta(days=1))
    assert licence_of(world.lock.pk).mode == "active"


def test_a_code_after_management_ended_gives_5_years_from_now(world, code, travel):
    ended = licence_of(world.lock.pk).free_ends_at
    travel(ended + timedelta(days=200))

    redeem_for_lock(world.alice, world.lock.pk, code("MGMT-5Y"))

    state = licence_of(world.lock.pk)
    assert state.full_until == add_years(ended + timedelta(days=200), 5)


def test_each_code_entered_is_in_the_lock_event_log(world, code):
    redeem_for_lock(world.alice, world.lock.pk, code("MGMT-5Y"))

    event = Event.objects.get(kind=EventKind.CODE_REDEEMED)
    assert (event.lock_id, event.actor_id, event.organization_id) == (
        world.lock.pk,
        world.alice.pk,
        world.org.pk,
    )
    assert event.data["product"] == "MGMT-5Y"
    assert "Full management until" in event.summary


# --- removing a lock and registering it again (R8) ------------------------------------------------


def test_registering_again_does_not_start_a_second_free_period(world, register, travel):
    free_end = licence_of(world.lock.pk).free_ends_at
    travel(free_end - timedelta(days=10))
    remove_lock(world.alice, world.lock.pk)

    register("DK-TEST-0001")

    state = licence_of(world.lock.pk)
    assert state.free_ends_at == free_end
    assert state.full_until == free_end
    assert Period.objects.filter(lock=world.lock, kind=PeriodKind.FREE).count() == 1
    assert KeyAllotment.objects.filter(lock=world.lock).count() == 1
    assert state.keys_purchased == 25


def test_registering_again_after_the_free_period_leaves_the_lock_in_take_back_only_mode(
    world, register, travel
):
    free_end = licence_of(world.lock.pk).free_ends_at
    travel(free_end + timedelta(days=30))
    remove_lock(world.alice, world.lock.pk)

    register("DK-TEST-0001")

    state = licence_of(world.lock.pk)
    assert state.mode == "take_back_only"
    assert state.ended_at == free_end
    with pytest.raises(ManagementEnded):
        give_key(world.alice, world.lock, "Dana")


def test_someone_else_registering_the_lock_finds_the_original_end_dates(
    world, register, code, travel
):
    free_end = licence_of(world.lock.pk).free_ends_at
    travel(free_end + timedelta(days=30))
    redeem_for_lock(world.alice, world.lock.pk, code("MGMT-5Y"))
    redeem_for_lock(world.alice, world.lock.pk, code("ORGS-5Y"))
    redeem_for_lock(world.alice, world.lock.pk, code("KEYS-25"))
    before = licence_of(world.lock.pk)
    remove_lock(world.alice, world.lock.pk)
    travel(free_end + timedelta(days=400))

    register("DK-TEST-0001", by=world.charlie, entry_id=world.charlie_entry.pk)

    after = licence_of(world.lock.pk)
    assert after.mode == "active"
    assert after.free_ends_at == before.free_ends_at == free_end
    assert after.management_ends_at == before.management_ends_at
    assert after.option_ends_at == before.option_ends_at
    assert after.option_active
    assert after.keys_purchased == 50
    assert Period.objects.filter(lock=world.lock, kind=PeriodKind.FREE).count() == 1


def test_the_new_owner_uses_the_remaining_paid_time(world, register, code, travel):
    redeem_for_lock(world.alice, world.lock.pk, code("MGMT-5Y"))
    ends = licence_of(world.lock.pk).full_until
    give_key(world.alice, world.lock, "Dana")
    remove_lock(world.alice, world.lock.pk)

    register("DK-TEST-0001", by=world.charlie, entry_id=world.charlie_entry.pk)
    key = give_key(world.charlie, world.lock, "Charlie's tenant")

    state = licence_of(world.lock.pk)
    assert state.full_until == ends
    assert (state.keys_issued, state.keys_available) == (1, 24)
    assert key.organization_id == world.charlie_org.pk


def test_alice_registering_again_after_charlie_finds_the_same_dates(world, register, code):
    redeem_for_lock(world.alice, world.lock.pk, code("MGMT-5Y"))
    before = licence_of(world.lock.pk)
    remove_lock(world.alice, world.lock.pk)
    register("DK-TEST-0001", by=world.charlie, entry_id=world.charlie_entry.pk)
    remove_lock(world.charlie, world.lock.pk)

    register("DK-TEST-0001")

    after = licence_of(world.lock.pk)
    assert (after.free_ends_at, after.management_ends_at, after.full_until) == (
        before.free_ends_at,
        before.management_ends_at,
        before.full_until,
    )


def test_the_option_follows_the_lock_and_works_again_for_the_new_owner(
    world, register, managed, agency
):
    managed(option=True)
    remove_lock(world.alice, world.lock.pk)
    register("DK-TEST-0001", by=world.charlie, entry_id=world.charlie_entry.pk)

    shared = issue_key_to_organization(world.charlie, world.lock.pk, agency.org.pk)

    assert shared.lock_owner_id == world.charlie_org.pk
