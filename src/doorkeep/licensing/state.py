"""The licence state of a lock at a moment, computed from its dated rows.

free            inside the free period of the first registration (R4)
active          inside a paid management period (R5, R9)
take_back_only  no period running: keys can be taken back and codes entered,
                nothing else (R6)
"""

from __future__ import annotations

import calendar
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db.models import Sum
from django.utils import timezone
from django.utils.translation import gettext as _

from doorkeep.core import when
from doorkeep.core.errors import DomainError
from doorkeep.keys.models import Key
from doorkeep.licensing.models import KeyAllotment, Period, PeriodKind
from doorkeep.locks.models import Lock

FREE = "free"
ACTIVE = "active"
TAKE_BACK_ONLY = "take_back_only"


def add_months(moment: datetime, months: int, where: Any = None) -> datetime:
    """The same day and time ``months`` calendar months later (the 31st of a
    shorter month becomes its last day), on the wall clock of ``where`` (a
    property, a lock, a zone; as given without): across a change of clock the
    local time of day stays, the UTC time moves by the hour."""
    if where is not None:
        moment = when.local(moment, where)
    month_index = moment.month - 1 + months
    year = moment.year + month_index // 12
    month = month_index % 12 + 1
    day = min(moment.day, calendar.monthrange(year, month)[1])
    return moment.replace(year=year, month=month, day=day)


def add_years(moment: datetime, years: int, where: Any = None) -> datetime:
    return add_months(moment, 12 * years, where)


def days_left(ends_at: datetime, at: datetime, where: Any) -> int:
    """Days from the day of ``at`` to the day ``ends_at`` falls on, both on
    the calendar of ``where`` (the lock's property): 0 when it ends today. The
    one count of days left, for the dashboard and the API alike."""
    return max(0, (when.local_day(ends_at, where) - when.local_day(at, where)).days)


class ManagementEnded(DomainError):
    status = 403
    code = "management_ended"


class NoKeysAvailable(DomainError):
    status = 409
    code = "no_keys_available"


@dataclass(frozen=True)
class LicenceState:
    at: datetime
    mode: str
    free_ends_at: datetime | None
    management_ends_at: datetime | None  # the end of the latest paid period
    full_until: datetime | None  # when full management ends, if it is running
    ended_at: datetime | None  # when it last ended, in take-back-only mode
    option_ends_at: datetime | None
    keys_purchased: int
    keys_issued: int

    @property
    def can_manage(self) -> bool:
        return self.mode != TAKE_BACK_ONLY

    @property
    def option_active(self) -> bool:
        """The option works only inside paid management (R10)."""
        return (
            self.mode == ACTIVE
            and self.option_ends_at is not None
            and self.option_ends_at > self.at
        )

    @property
    def keys_available(self) -> int:
        return max(0, self.keys_purchased - self.keys_issued)


def compute(
    periods: Iterable[Period], *, purchased: int, issued: int, at: datetime
) -> LicenceState:
    """The licence state from a lock's periods and key counts, already read: the
    rules in one place, for one lock (licence_of) or many (pages that read the
    periods of all their locks in one query)."""
    periods = list(periods)
    free = [p for p in periods if p.kind == PeriodKind.FREE]
    paid = [p for p in periods if p.kind == PeriodKind.MANAGEMENT]
    option = [p for p in periods if p.kind == PeriodKind.ORGANIZATIONS_OPTION]
    paid_now = [p for p in paid if p.starts_at <= at < p.ends_at]
    free_now = [p for p in free if p.starts_at <= at < p.ends_at]
    if paid_now:
        mode = ACTIVE
    elif free_now:
        mode = FREE
    else:
        mode = TAKE_BACK_ONLY
    full_until = None
    if mode != TAKE_BACK_ONLY:
        full_until = max(p.ends_at for p in paid_now + free_now)
    ended = [p.ends_at for p in free + paid if p.ends_at <= at]
    return LicenceState(
        at=at,
        mode=mode,
        free_ends_at=max((p.ends_at for p in free), default=None),
        management_ends_at=max((p.ends_at for p in paid), default=None),
        full_until=full_until,
        ended_at=max(ended, default=None) if mode == TAKE_BACK_ONLY else None,
        option_ends_at=max((p.ends_at for p in option), default=None),
        keys_purchased=purchased,
        keys_issued=issued,
    )


def licence_of(lock_id: int, at: datetime | None = None) -> LicenceState:
    """The licence state of one lock at ``at`` (default now), read fresh."""
    purchased = KeyAllotment.objects.filter(lock_id=lock_id).aggregate(n=Sum("keys"))["n"] or 0
    issued = Key.objects.filter(lock_id=lock_id, revoked_at__isnull=True).count()
    return compute(
        Period.objects.filter(lock_id=lock_id),
        purchased=purchased,
        issued=issued,
        at=at or timezone.now(),
    )


def _date(moment: datetime, lock_id: int) -> str:
    """A day as the lock's owner reads it: on the calendar of its property."""
    lock = Lock.objects.select_related("entry__property").filter(pk=lock_id).first()
    return when.show(moment, lock, "DATE_FORMAT")


def require_full_management(lock_id: int, at: datetime | None = None) -> LicenceState:
    state = licence_of(lock_id, at)
    if not state.can_manage:
        if state.ended_at is None:
            message = _(
                "This lock has no management period yet: you can take keys back, nothing else. "
                "Enter a prepaid management code on the lock's licence panel to start one."
            )
        else:
            message = _(
                "Management of this lock ended on %(date)s: you can still take keys back, "
                "nothing else. Enter a prepaid management code on the lock's licence panel to "
                "restore full management; all keys are kept and become manageable again."
            ) % {"date": _date(state.ended_at, lock_id)}
        raise ManagementEnded(message)
    return state


def require_key_available(state: LicenceState) -> None:
    if state.keys_available <= 0:
        raise NoKeysAvailable(
            _(
                "All %(n)d keys bought for this lock are in use. Take a key back, or enter a "
                "prepaid code for a key pack on the lock's licence panel."
            )
            % {"n": state.keys_purchased}
        )
