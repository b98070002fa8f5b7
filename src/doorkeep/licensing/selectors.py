"""Queries about licences: a lock's history, and the locks whose management
ends soon, in a bounded number of queries whatever the number of locks."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import Max, Q, QuerySet
from django.utils import timezone

from doorkeep import policy
from doorkeep.accounts.models import User
from doorkeep.licensing.models import KeyAllotment, Period, PeriodKind
from doorkeep.licensing.state import ACTIVE, FREE
from doorkeep.locks.models import Lock


@dataclass(frozen=True)
class History:
    periods: list[Period]
    allotments: list[KeyAllotment]


def history_of(lock_id: int) -> History:
    """A lock's periods and key allotments, oldest first, each with the product
    of the code that brought it (none for the free period and the included
    keys). Two queries."""
    periods = list(
        Period.objects.filter(lock_id=lock_id)
        .select_related("code__batch__product")
        .order_by("starts_at", "id")
    )
    allotments = list(
        KeyAllotment.objects.filter(lock_id=lock_id)
        .select_related("code__batch__product")
        .order_by("created_at", "id")
    )
    return History(periods, allotments)


@dataclass(frozen=True)
class EndingSoon:
    lock: Lock
    mode: str  # free or active
    full_until: datetime


def ending_soon(user: User, days: int, *, at: datetime | None = None) -> list[EndingSoon]:
    """The locks of the user's organizations (where the user may see keys and
    licences) whose full management ends within ``days`` days, soonest first.

    One query, whatever the number of locks: full management at ``at`` lasts
    until the latest end of the free or paid periods running then (a code
    entered while a period runs makes a period that starts at once and ends
    after it, so the running periods overlap and their latest end is the end
    of full management, as in licensing.state.licence_of). Locks already in
    take-back-only mode have no such end and are not listed."""
    at = at or timezone.now()
    horizon = at + timedelta(days=days)
    running = Q(
        periods__kind__in=(PeriodKind.FREE, PeriodKind.MANAGEMENT),
        periods__starts_at__lte=at,
        periods__ends_at__gt=at,
    )
    locks: QuerySet[Lock] = (
        Lock.objects.filter(organization__in=policy.organizations(user, policy.Action.VIEW_KEYS))
        .select_related("entry", "entry__property", "organization")
        .annotate(
            full_until=Max("periods__ends_at", filter=running),
            paid_until=Max(
                "periods__ends_at", filter=running & Q(periods__kind=PeriodKind.MANAGEMENT)
            ),
        )
        .filter(full_until__isnull=False, full_until__lte=horizon)
        .order_by("full_until", "name", "pk")
    )
    return [
        EndingSoon(
            lock=lock,
            mode=ACTIVE if lock.paid_until is not None else FREE,  # type: ignore[attr-defined]
            full_until=lock.full_until,  # type: ignore[attr-defined]
        )
        for lock in locks
    ]
