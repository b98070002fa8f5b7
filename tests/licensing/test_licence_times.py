"""Licence periods on the property's clock (issue 15, 3): the free period ends
at the same local time of day three months later across a change of clock,
days left are counted once for the dashboard and the API, and messages give
days on the property's calendar."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from doorkeep.licensing.models import Period, PeriodKind
from doorkeep.licensing.services import redeem_for_lock
from doorkeep.licensing.state import (
    ManagementEnded,
    days_left,
    licence_of,
    require_full_management,
)

ZURICH = ZoneInfo("Europe/Zurich")


@pytest.fixture
def in_zurich(world):
    world.prop.timezone = "Europe/Zurich"
    world.prop.save(update_fields=["timezone"])
    return world.prop


@pytest.mark.parametrize(
    ("registered", "ends"),
    [
        # Winter time to summer time (the clocks go forward on 28 March 2027).
        (datetime(2027, 1, 10, 9, 30, tzinfo=ZURICH), datetime(2027, 4, 10, 9, 30, tzinfo=ZURICH)),
        # Summer time to winter time (back on 31 October 2027).
        (datetime(2027, 8, 20, 14, 0, tzinfo=ZURICH), datetime(2027, 11, 20, 14, 0, tzinfo=ZURICH)),
        # Just after midnight in Zurich, still the day before in UTC.
        (datetime(2027, 1, 31, 0, 15, tzinfo=ZURICH), datetime(2027, 4, 30, 0, 15, tzinfo=ZURICH)),
    ],
)
def test_the_free_period_ends_at_the_same_local_time_across_a_change_of_clock(
    world, in_zurich, register, travel, registered, ends
):
    travel(registered)

    lock = register("DK-DST-0001")

    free = Period.objects.get(lock=lock, kind=PeriodKind.FREE)
    assert free.ends_at == ends
    assert licence_of(lock.pk).free_ends_at == ends


def test_five_years_of_management_end_at_the_local_time_the_free_period_would_have(
    world, in_zurich, register, travel, code
):
    travel(datetime(2027, 1, 10, 9, 30, tzinfo=ZURICH))
    lock = register("DK-DST-0002")

    redeem_for_lock(world.alice, lock.pk, code("MGMT-5Y"))

    assert licence_of(lock.pk).full_until == datetime(2032, 4, 10, 9, 30, tzinfo=ZURICH)


def test_days_left_are_counted_on_the_propertys_calendar():
    ends = datetime(2027, 4, 10, 9, 30, tzinfo=ZURICH)

    # 20:00 eleven days before: ten days and 13½ hours, but eleven days to read.
    assert days_left(ends, datetime(2027, 3, 30, 20, 0, tzinfo=ZURICH), ZURICH) == 11
    assert days_left(ends, datetime(2027, 4, 10, 0, 1, tzinfo=ZURICH), ZURICH) == 0
    assert days_left(ends, ends + timedelta(days=2), ZURICH) == 0
    # 23:30 UTC on 9 April is already the 10th in Zurich: it ends today there.
    assert days_left(ends, datetime(2027, 4, 9, 23, 30, tzinfo=UTC), ZURICH) == 0
    assert days_left(ends, datetime(2027, 4, 9, 23, 30, tzinfo=UTC), UTC) == 1


def test_the_dashboard_and_the_api_agree_on_days_left(world, travel):
    ends = licence_of(world.lock.pk).full_until
    local_end = ends.astimezone(ZoneInfo("Europe/Amsterdam"))
    # Eleven days before, at a time of day later than the end's: less than
    # eleven whole days remain, but the end is eleven days away on the calendar.
    evening = (local_end - timedelta(days=11)).replace(hour=23, minute=0)
    travel(evening)

    (row,) = world.bearer(world.alice).get("/api/v1/licences/ending-soon").json()
    page = world.client(world.alice).get("/").content.decode()
    shown = re.search(r'data-label="Days left" class="num">(\w+)<', page)

    assert row["days_left"] == 11
    assert shown is not None and shown.group(1) == "11"


def test_the_message_that_management_ended_gives_the_day_on_the_propertys_calendar(world, travel):
    # 23:30 UTC on 20 January is 00:30 on the 21st in Amsterdam.
    end = datetime(2031, 1, 20, 23, 30, tzinfo=UTC)
    Period.objects.filter(lock=world.lock, kind=PeriodKind.FREE).update(ends_at=end)
    travel(end + timedelta(days=3))

    with pytest.raises(ManagementEnded) as refused:
        require_full_management(world.lock.pk)

    assert "ended on Jan. 21, 2031" in refused.value.message
