"""Weekly schedules of keys.

A schedule is a list of rules; a moment is inside the schedule when any rule
covers it, in the local time of the lock's property::

    [{"days": ["mon", "tue", "wed", "thu", "fri"], "start": "07:00", "end": "19:00"},
     {"days": ["sat"], "start": "09:00", "end": "13:00"}]

``end`` is exclusive and may be "24:00". A rule whose end is earlier than its
start runs past midnight into the next day ("22:00" to "06:00").
An empty or missing schedule means: at any time.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from django.utils.translation import gettext as _

from doorkeep.core.errors import InvalidInput

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_FULL_NAMES = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
# A day is its abbreviation or its full name; "monkey" is not Monday.
_DAY_NAMES = {**{d: d for d in DAYS}, **dict(zip(_FULL_NAMES, DAYS, strict=True))}
_TIME = re.compile(r"([01][0-9]|2[0-3]):([0-5][0-9])|24:00")  # used with fullmatch

Schedule = list[dict[str, Any]]


def _minutes(value: Any, field: str, index: int) -> int:
    if not isinstance(value, str) or not _TIME.fullmatch(value):
        raise InvalidInput(
            _("Schedule rule %(n)d: %(field)s must be a time as HH:MM (00:00 to 24:00).")
            % {"n": index + 1, "field": field},
            code="invalid_schedule",
        )
    hours, minutes = value.split(":")
    return int(hours) * 60 + int(minutes)


def normalize(schedule: Any) -> Schedule | None:
    """Validate a schedule from user input; return it in canonical form, or None."""
    if schedule in (None, [], ""):
        return None
    if not isinstance(schedule, list):
        raise InvalidInput(_("A schedule is a list of rules."), code="invalid_schedule")
    if len(schedule) > 28:
        raise InvalidInput(_("A schedule has at most 28 rules."), code="invalid_schedule")
    rules: Schedule = []
    for index, rule in enumerate(schedule):
        if not isinstance(rule, dict):
            raise InvalidInput(
                _("Schedule rule %(n)d must have days, start and end.") % {"n": index + 1},
                code="invalid_schedule",
            )
        days = rule.get("days")
        if not isinstance(days, list) or not days:
            raise InvalidInput(
                _("Schedule rule %(n)d needs at least one day.") % {"n": index + 1},
                code="invalid_schedule",
            )
        clean_days: list[str] = []
        for day in days:
            name = _DAY_NAMES.get(str(day).strip().lower(), "")
            if not name:
                raise InvalidInput(
                    _("Schedule rule %(n)d: %(day)s is not a day (use mon, tue, … sun).")
                    % {"n": index + 1, "day": day},
                    code="invalid_schedule",
                )
            if name not in clean_days:
                clean_days.append(name)
        start = _minutes(rule.get("start"), "start", index)
        end = _minutes(rule.get("end"), "end", index)
        if start == end or start == 24 * 60:
            raise InvalidInput(
                _("Schedule rule %(n)d: start and end must differ and start before 24:00.")
                % {"n": index + 1},
                code="invalid_schedule",
            )
        clean_days.sort(key=DAYS.index)
        rules.append({"days": clean_days, "start": rule["start"], "end": rule["end"]})
    return rules


def allows(schedule: Schedule | None, moment: datetime, tz: ZoneInfo) -> bool:
    """Whether ``moment`` falls inside the schedule, read in the time zone ``tz``."""
    if not schedule:
        return True
    local = moment.astimezone(tz)
    now_minutes = local.hour * 60 + local.minute
    today = DAYS[local.weekday()]
    yesterday = DAYS[(local.weekday() - 1) % 7]
    for rule in schedule:
        start = _to_minutes(rule["start"])
        end = _to_minutes(rule["end"])
        if start < end:
            if today in rule["days"] and start <= now_minutes < end:
                return True
        else:  # past midnight
            if today in rule["days"] and now_minutes >= start:
                return True
            if yesterday in rule["days"] and now_minutes < end:
                return True
    return False


def _to_minutes(value: str) -> int:
    hours, minutes = value.split(":")
    return int(hours) * 60 + int(minutes)


def describe(schedule: Schedule | None) -> str:
    if not schedule:
        return _("Any time")
    parts = [f"{' '.join(rule['days'])} {rule['start']}\u2013{rule['end']}" for rule in schedule]
    return "; ".join(parts)


def parse_text(text: str) -> Schedule | None:
    """Parse the compact form used by the web form and the CLI, one rule per
    line or separated by ';': ``mon-fri 07:00-19:00; sat 09:00-13:00``."""
    text = text.strip()
    if not text:
        return None
    rules: list[dict[str, Any]] = []
    for index, chunk in enumerate(p.strip() for p in re.split(r"[;\n]", text) if p.strip()):
        match = re.match(
            r"^([a-zA-Z,\- ]+?)\s+(\d{1,2}:\d{2})\s*[-\u2013]\s*(\d{1,2}:\d{2})$", chunk
        )
        if not match:
            raise InvalidInput(
                _("Schedule line %(n)d: write it as 'mon-fri 07:00-19:00'.") % {"n": index + 1},
                code="invalid_schedule",
            )
        days_text, start, end = match.groups()
        days: list[str] = []
        for part in re.split(r"[,\s]+", days_text.strip().lower()):
            if "-" in part:
                first, _sep, last = part.partition("-")
                a, b = _DAY_NAMES.get(first, ""), _DAY_NAMES.get(last, "")
                if not a or not b:
                    raise InvalidInput(
                        _("Schedule line %(n)d: %(part)s is not a range of days.")
                        % {"n": index + 1, "part": part},
                        code="invalid_schedule",
                    )
                i, j = DAYS.index(a), DAYS.index(b)
                span = range(i, j + 1) if i <= j else [*range(i, 7), *range(0, j + 1)]
                days.extend(DAYS[k] for k in span)
            elif part:
                days.append(part)
        rules.append({"days": days, "start": start.zfill(5), "end": end.zfill(5)})
    return normalize(rules)


def to_text(schedule: Schedule | None) -> str:
    if not schedule:
        return ""
    return "; ".join(f"{','.join(r['days'])} {r['start']}-{r['end']}" for r in schedule)
