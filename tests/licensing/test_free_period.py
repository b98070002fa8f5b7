"""The free period (R4): 3 calendar months of full management from a lock's
first registration, and the state computed at each action, by no job."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from licencehelp import give_key

from doorkeep.licensing.models import KeyAllotment, Period, PeriodKind
from doorkeep.licensing.state import ManagementEnded, add_months, licence_of


@pytest.mark.parametrize(
    ("registered", "ends"),
    [
        (datetime(2025, 11, 30, 10, 0, tzinfo=UTC), datetime(2026, 2, 28, 10, 0, tzinfo=UTC)),
        (datetime(2027, 11, 30, 10, 0, tzinfo=UTC), datetime(2028, 2, 29, 10, 0, tzinfo=UTC)),
        (datetime(2027, 11, 29, 8, 15, tzinfo=UTC), datetime(2028, 2, 29, 8, 15, tzinfo=UTC)),
        # 00:59 on 1 February in Amsterdam, the property's zone: 1 May there.
        (datetime(2026, 1, 31, 23, 59, tzinfo=UTC), datetime(2026, 4, 30, 22, 59, tzinfo=UTC)),
        (datetime(2026, 3, 31, 12, 0, tzinfo=UTC), datetime(2026, 6, 30, 12, 0, tzinfo=UTC)),
        # Across a change of clock the local time of day stays (09:30, 19:00 in Amsterdam).
        (datetime(2026, 10, 15, 7, 30, tzinfo=UTC), datetime(2027, 1, 15, 8, 30, tzinfo=UTC)),
        (datetime(2026, 12, 31, 18, 0, tzinfo=UTC), datetime(2027, 3, 31, 17, 0, tzinfo=UTC)),
    ],
)
def test_the_free_period_is_exactly_three_calendar_months_from_the_first_registration(
    world, register, travel, registered, ends
):
    travel(registered)

    lock = register("DK-FREE-0100")

    state = licence_of(lock.pk)
    assert state.mode == "free"
    assert state.free_ends_at == ends
    assert state.full_until == ends
    assert state.management_ends_at is None
    free = Period.objects.get(lock=lock)
    assert (free.kind, free.starts_at, free.ends_at) == (PeriodKind.FREE, registered, ends)


def test_add_months_keeps_the_day_and_time_or_takes_the_last_day_of_a_shorter_month():
    start = datetime(2026, 8, 31, 9, 45, 12, tzinfo=UTC)

    assert add_months(start, 1) == datetime(2026, 9, 30, 9, 45, 12, tzinfo=UTC)
    assert add_months(start, 6) == datetime(2027, 2, 28, 9, 45, 12, tzinfo=UTC)
    assert add_months(start, 12 * 5) == datetime(2031, 8, 31, 9, 45, 12, tzinfo=UTC)
    assert add_months(datetime(2024, 2, 29, tzinfo=UTC), 12) == datetime(2025, 2, 28, tzinfo=UTC)


def test_the_first_registration_brings_25_keys(world):
    state = licence_of(world.lock.pk)

    assert (state.keys_purchased, state.keys_issued, state.keys_available) == (25, 0, 25)
    assert KeyAllotment.objects.get(lock=world.lock).included is True


def test_the_length_of_the_free_period_and_the_included_keys_are_settings(
    world, register, settings
):
    settings.DOORKEEP = {**settings.DOORKEEP, "FREE_MONTHS": 1, "INCLUDED_KEYS": 5}

    lock = register("DK-FREE-0101")

    state = licence_of(lock.pk)
    assert state.free_ends_at == add_months(lock.first_registered_at, 1)
    assert state.keys_purchased == 5


def test_the_state_is_computed_at_each_action_without_any_job(world, travel):
    ends = licence_of(world.lock.pk).free_ends_at
    assert ends is not None

    travel(ends - timedelta(seconds=1))
    assert licence_of(world.lock.pk).mode == "free"
    give_key(world.alice, world.lock, "Last minute")

    travel(ends)
    assert licence_of(world.lock.pk).mode == "take_back_only"
    with pytest.raises(ManagementEnded):
        give_key(world.alice, world.lock, "Too late")


def test_the_state_can_be_asked_for_any_moment(world):
    ends = licence_of(world.lock.pk).free_ends_at
    assert ends is not None

    assert licence_of(world.lock.pk, ends - timedelta(microseconds=1)).mode == "free"
    assert licence_of(world.lock.pk, ends).mode == "take_back_only"
    assert licence_of(world.lock.pk, ends).ended_at == ends
    assert licence_of(world.lock.pk, ends + timedelta(days=400)).ended_at == ends


def test_without_a_free_period_a_new_lock_starts_in_take_back_only_mode(world, register, settings):
    settings.DOORKEEP = {**settings.DOORKEEP, "FREE_MONTHS": 0}
    lock = register("DK-FREE-0102")

    with pytest.raises(ManagementEnded) as refused:
        give_key(world.alice, lock, "Nobody")

    assert licence_of(lock.pk).mode == "take_back_only"
    assert refused.value.code == "management_ended"
    assert "Enter a prepaid management code" in refused.value.message
