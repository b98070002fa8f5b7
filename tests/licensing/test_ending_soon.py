"""The locks whose full management ends soon, for the dashboard and the API,
in one query whatever the number of locks."""

from __future__ import annotations

from datetime import timedelta

import pytest

from doorkeep.accounts.models import Membership, Role
from doorkeep.accounts.services import create_user
from doorkeep.licensing.selectors import ending_soon
from doorkeep.licensing.services import redeem_for_lock
from doorkeep.licensing.state import licence_of


@pytest.fixture
def fleet(world, register, code, travel, now):
    """A month from now: Alice's first lock (free for 2 more months), a lock
    registered now (free for 3 months), and one with paid management."""
    travel(now + timedelta(days=31))
    later = register("DK-SOON-0002")
    paid = register("DK-SOON-0003")
    redeem_for_lock(world.alice, paid.pk, code("MGMT-5Y"))
    return world.lock, later, paid


def test_it_lists_the_locks_ending_within_the_days_soonest_first(world, fleet, now):
    first, later, _paid = fleet
    travel_to = licence_of(first.pk).full_until - timedelta(days=10)

    rows = ending_soon(world.alice, 60, at=travel_to)

    assert [(r.lock.pk, r.mode) for r in rows] == [(first.pk, "free"), (later.pk, "free")]
    assert rows[0].full_until == licence_of(first.pk).full_until
    assert [r.lock.pk for r in ending_soon(world.alice, 30, at=travel_to)] == [first.pk]


def test_paid_management_ending_soon_is_listed_as_active(world, fleet):
    _first, _later, paid = fleet
    ends = licence_of(paid.pk).full_until

    rows = ending_soon(world.alice, 30, at=ends - timedelta(days=5))

    assert [(r.lock.pk, r.mode, r.full_until) for r in rows] == [(paid.pk, "active", ends)]


def test_a_lock_in_take_back_only_mode_is_not_listed(world, fleet):
    first, later, _paid = fleet
    moment = licence_of(first.pk).full_until + timedelta(days=1)

    assert [r.lock.pk for r in ending_soon(world.alice, 365, at=moment)] == [later.pk]


def test_a_code_entered_in_the_free_period_takes_the_lock_off_the_list(world, code, now):
    redeem_for_lock(world.alice, world.lock.pk, code("MGMT-5Y"))

    assert ending_soon(world.alice, 365, at=now + timedelta(days=85)) == []


def test_the_list_holds_only_the_locks_the_user_may_see_licences_of(world, fleet):
    manager = create_user("manager@example.com", "correct horse battery staple")
    Membership.objects.create(user=manager, organization=world.org, role=Role.BUILDING_MANAGER)

    assert len(ending_soon(manager, 365)) == 2
    assert ending_soon(world.bob, 365) == []
    assert ending_soon(world.charlie, 365) == []


def test_it_takes_one_query_whatever_the_number_of_locks(
    world, register, django_assert_num_queries
):
    for n in range(3):
        register(f"DK-MANY-{n:04}")
    with django_assert_num_queries(1):
        few = ending_soon(world.alice, 365)
    for n in range(3, 40):
        register(f"DK-MANY-{n:04}")

    with django_assert_num_queries(1):
        many = ending_soon(world.alice, 365)

    assert (len(few), len(many)) == (4, 41)
