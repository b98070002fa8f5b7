"""keys.schedule: parsing, normalising and reading weekly schedules."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from doorkeep.core.errors import InvalidInput
from doorkeep.keys import schedule

AMSTERDAM = ZoneInfo("Europe/Amsterdam")
MONDAY = datetime(2030, 1, 7, tzinfo=AMSTERDAM)


def rule(days, start, end):
    return {"days": days, "start": start, "end": end}


def at(day_offset, hour, minute=0, tz=AMSTERDAM):
    return datetime(2030, 1, 7 + day_offset, hour, minute, tzinfo=tz)


# --- parse_text ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("mon-fri 07:00-19:00", [rule(["mon", "tue", "wed", "thu", "fri"], "07:00", "19:00")]),
        (
            "mon-fri 07:00-19:00; sat 09:00-13:00",
            [
                rule(["mon", "tue", "wed", "thu", "fri"], "07:00", "19:00"),
                rule(["sat"], "09:00", "13:00"),
            ],
        ),
        (
            "mon 07:00-08:00\ntue 09:00-10:00",
            [rule(["mon"], "07:00", "08:00"), rule(["tue"], "09:00", "10:00")],
        ),
        ("Mon, Wed 7:00-9:30", [rule(["mon", "wed"], "07:00", "09:30")]),
        ("sat sun 10:00 - 12:00", [rule(["sat", "sun"], "10:00", "12:00")]),
        ("fri-mon 22:00\u201306:00", [rule(["mon", "fri", "sat", "sun"], "22:00", "06:00")]),
        ("monday-wednesday 08:00-24:00", [rule(["mon", "tue", "wed"], "08:00", "24:00")]),
        ("SUNDAY 00:00-24:00", [rule(["sun"], "00:00", "24:00")]),
        ("mon,mon,mon 08:00-09:00", [rule(["mon"], "08:00", "09:00")]),
        ("  ", None),
        ("", None),
    ],
)
def test_parse_text_reads_the_compact_form(text, expected):
    assert schedule.parse_text(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "mon 07:00",
        "07:00-19:00",
        "mon-xyz 07:00-08:00",
        "monkey 07:00-08:00",
        "mon-funday 07:00-08:00",
        "mon 25:00-26:00",
        "mon 07:00-07:00",
        "mon 24:00-06:00",
        "every day 07:00-08:00",
        "mon 7-8",
    ],
)
def test_parse_text_refuses_what_it_cannot_read(text):
    with pytest.raises(InvalidInput) as caught:
        schedule.parse_text(text)

    assert caught.value.code == "invalid_schedule"


def test_parse_text_names_the_line_that_is_wrong():
    with pytest.raises(InvalidInput, match="line 2"):
        schedule.parse_text("mon 07:00-08:00; nonsense")


def test_to_text_and_parse_text_round_trip():
    rules = [rule(["mon", "tue"], "07:00", "19:00"), rule(["sat"], "22:00", "06:00")]

    assert schedule.parse_text(schedule.to_text(rules)) == rules
    assert schedule.to_text(None) == ""


def test_describe_says_any_time_for_no_schedule():
    assert schedule.describe(None) == "Any time"
    assert schedule.describe([rule(["mon"], "07:00", "08:00")]) == "mon 07:00\u201308:00"


# --- normalize -----------------------------------------------------------------------------------


@pytest.mark.parametrize("empty", [None, [], ""])
def test_an_empty_schedule_is_none(empty):
    assert schedule.normalize(empty) is None


def test_normalize_sorts_and_deduplicates_days_and_accepts_full_names():
    rules = schedule.normalize([rule(["Sunday", "mon", "MON", " fri "], "07:00", "19:00")])

    assert rules == [rule(["mon", "fri", "sun"], "07:00", "19:00")]


@pytest.mark.parametrize(
    ("value", "words"),
    [
        ("mon 07:00-08:00", "list of rules"),
        ({"days": ["mon"]}, "list of rules"),
        (["mon"], "must have days"),
        ([rule([], "07:00", "08:00")], "at least one day"),
        ([rule("mon", "07:00", "08:00")], "at least one day"),
        ([rule(["mo"], "07:00", "08:00")], "not a day"),
        ([rule(["monkey"], "07:00", "08:00")], "not a day"),
        ([rule([1], "07:00", "08:00")], "not a day"),
        ([rule(["mon"], "7:00", "08:00")], "HH:MM"),
        ([rule(["mon"], "07:00", "08:00\n")], "HH:MM"),
        ([rule(["mon"], "07:00", "24:01")], "HH:MM"),
        ([rule(["mon"], 700, "08:00")], "HH:MM"),
        ([rule(["mon"], "07:00", None)], "HH:MM"),
        ([rule(["mon"], "0\u0667:00", "08:00")], "HH:MM"),
        ([rule(["mon"], "08:00", "08:00")], "must differ"),
        ([rule(["mon"], "24:00", "08:00")], "before 24:00"),
        ([rule(["mon"], "07:00", "08:00")] * 29, "at most 28"),
    ],
)
def test_normalize_refuses_a_schedule_that_is_not_one(value, words):
    with pytest.raises(InvalidInput, match=words) as caught:
        schedule.normalize(value)

    assert caught.value.code == "invalid_schedule"


def test_normalize_names_the_rule_that_is_wrong():
    with pytest.raises(InvalidInput, match="rule 2"):
        schedule.normalize([rule(["mon"], "07:00", "08:00"), rule(["xyz"], "07:00", "08:00")])


# --- allows --------------------------------------------------------------------------------------


def test_no_schedule_allows_any_time():
    assert schedule.allows(None, at(0, 3), AMSTERDAM)
    assert schedule.allows([], at(0, 3), AMSTERDAM)


def test_start_is_inclusive_and_end_exclusive():
    rules = [rule(["mon"], "09:00", "17:00")]

    assert not schedule.allows(rules, at(0, 8, 59), AMSTERDAM)
    assert schedule.allows(rules, at(0, 9), AMSTERDAM)
    assert schedule.allows(rules, at(0, 16, 59), AMSTERDAM)
    assert not schedule.allows(rules, at(0, 17), AMSTERDAM)
    assert not schedule.allows(rules, at(1, 10), AMSTERDAM)


def test_an_end_of_24_00_runs_to_midnight():
    rules = [rule(["mon"], "20:00", "24:00")]

    assert schedule.allows(rules, at(0, 23, 59), AMSTERDAM)
    assert not schedule.allows(rules, at(1, 0), AMSTERDAM)


def test_a_whole_day_rule():
    rules = [rule(["mon"], "00:00", "24:00")]

    assert schedule.allows(rules, at(0, 0), AMSTERDAM)
    assert schedule.allows(rules, at(0, 23, 59), AMSTERDAM)
    assert not schedule.allows(rules, at(-1, 23, 59), AMSTERDAM)


def test_a_rule_past_midnight_covers_the_next_morning_only():
    rules = [rule(["fri"], "22:00", "06:00")]
    friday = -3

    assert not schedule.allows(rules, at(friday, 21, 59), AMSTERDAM)
    assert schedule.allows(rules, at(friday, 22), AMSTERDAM)
    assert schedule.allows(rules, at(friday + 1, 0), AMSTERDAM)
    assert schedule.allows(rules, at(friday + 1, 5, 59), AMSTERDAM)
    assert not schedule.allows(rules, at(friday + 1, 6), AMSTERDAM)
    assert not schedule.allows(rules, at(friday + 1, 22), AMSTERDAM)
    assert not schedule.allows(rules, at(friday, 3), AMSTERDAM)  # Thursday night's end


def test_a_sunday_night_rule_runs_into_monday_morning():
    rules = [rule(["sun"], "23:00", "02:00")]

    assert schedule.allows(rules, at(0, 1, 59), AMSTERDAM)
    assert not schedule.allows(rules, at(0, 2), AMSTERDAM)
    assert schedule.allows(rules, at(-1, 23), AMSTERDAM)


def test_a_rule_ending_at_00_00_runs_until_midnight():
    rules = [rule(["mon"], "22:00", "00:00")]

    assert schedule.allows(rules, at(0, 23, 59), AMSTERDAM)
    assert not schedule.allows(rules, at(1, 0), AMSTERDAM)


def test_any_rule_is_enough():
    rules = [rule(["mon"], "07:00", "08:00"), rule(["mon"], "18:00", "19:00")]

    assert schedule.allows(rules, at(0, 18, 30), AMSTERDAM)
    assert not schedule.allows(rules, at(0, 12), AMSTERDAM)


def test_the_moment_is_read_in_the_given_time_zone():
    rules = [rule(["mon"], "09:00", "17:00")]
    moment = datetime(2030, 1, 7, 16, 30, tzinfo=UTC)  # 17:30 in Amsterdam

    assert schedule.allows(rules, moment, ZoneInfo("UTC"))
    assert not schedule.allows(rules, moment, AMSTERDAM)
    assert schedule.allows(rules, moment, ZoneInfo("America/New_York"))  # 11:30
    assert not schedule.allows(rules, moment, ZoneInfo("Asia/Tokyo"))  # Tuesday 01:30


def minutes_allowed(rules, start_utc, hours):
    return sum(
        schedule.allows(rules, start_utc + timedelta(minutes=m), AMSTERDAM)
        for m in range(hours * 60)
    )


SPRING_SUNDAY = datetime(2025, 3, 29, 23, 0, tzinfo=UTC)  # 00:00 on 30 March in Amsterdam
AUTUMN_SUNDAY = datetime(2025, 10, 25, 22, 0, tzinfo=UTC)  # 00:00 on 26 October in Amsterdam


def test_on_the_spring_dst_day_the_missing_hour_never_comes():
    assert minutes_allowed([rule(["sun"], "02:00", "03:00")], SPRING_SUNDAY, 24) == 0
    assert minutes_allowed([rule(["sun"], "00:00", "24:00")], SPRING_SUNDAY, 24) == 23 * 60


def test_on_the_spring_dst_day_a_rule_across_the_jump_is_an_hour_shorter():
    rules = [rule(["sun"], "01:00", "04:00")]

    assert schedule.allows(rules, datetime(2025, 3, 30, 0, 59, tzinfo=UTC), AMSTERDAM)  # 01:59
    assert schedule.allows(rules, datetime(2025, 3, 30, 1, 0, tzinfo=UTC), AMSTERDAM)  # 03:00
    assert not schedule.allows(rules, datetime(2025, 3, 30, 2, 0, tzinfo=UTC), AMSTERDAM)  # 04:00
    assert minutes_allowed(rules, SPRING_SUNDAY, 24) == 2 * 60


def test_on_the_autumn_dst_day_the_repeated_hour_counts_twice():
    assert minutes_allowed([rule(["sun"], "02:00", "03:00")], AUTUMN_SUNDAY, 25) == 2 * 60
    assert minutes_allowed([rule(["sun"], "00:00", "24:00")], AUTUMN_SUNDAY, 26) == 25 * 60
    rules = [rule(["sun"], "02:00", "03:00")]
    assert schedule.allows(rules, datetime(2025, 10, 26, 0, 30, tzinfo=UTC), AMSTERDAM)  # CEST
    assert schedule.allows(rules, datetime(2025, 10, 26, 1, 30, tzinfo=UTC), AMSTERDAM)  # CET


def test_a_night_rule_over_the_dst_night_still_ends_at_local_06_00():
    rules = [rule(["sat"], "22:00", "06:00")]

    assert schedule.allows(rules, datetime(2025, 3, 30, 3, 59, tzinfo=UTC), AMSTERDAM)  # 05:59
    assert not schedule.allows(rules, datetime(2025, 3, 30, 4, 0, tzinfo=UTC), AMSTERDAM)
    assert minutes_allowed(rules, datetime(2025, 3, 29, 12, 0, tzinfo=UTC), 24) == 7 * 60
