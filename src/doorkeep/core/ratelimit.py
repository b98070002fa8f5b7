"""Fixed-window rate limits kept in the database, so that every web worker
and every machine shares the same counters (docs/decisions/0004 and 0021).

``take`` is the way to limit an attempt: it counts the attempt and says
whether it may go ahead in one statement, so a burst of concurrent attempts
lets exactly ``limit`` through. A limit on failures only (wrong passwords,
wrong codes) takes a slot before the attempt and gives it back with
``give_back`` when the attempt turns out not to count.

``check`` followed by ``hit`` is the older pair, kept for code not yet
moved to ``take``: the check and the count are two statements, so
concurrent attempts can all pass the check."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from doorkeep.core import metrics
from doorkeep.core.errors import RateLimited
from doorkeep.core.models import RateLimitBucket

# One statement, atomic on SQLite and PostgreSQL alike: a new key starts at 1;
# an expired window starts again at 1; a live window counts one more only
# while it is below the limit. No row comes back when the limit is used up.
_TAKE_SQL = """
INSERT INTO core_ratelimitbucket AS b ("key", "window_start", "count") VALUES (%s, %s, 1)
ON CONFLICT ("key") DO UPDATE SET
    "count" = CASE WHEN b."window_start" <= %s THEN 1 ELSE b."count" + 1 END,
    "window_start" = CASE WHEN b."window_start" <= %s THEN %s ELSE b."window_start" END
WHERE b."window_start" <= %s OR b."count" < %s
RETURNING "count"
"""


def _at(value: datetime) -> Any:
    """A moment as the database driver takes it (SQLite: text in UTC)."""
    return connection.ops.adapt_datetimefield_value(value)


def _current(key: str, window: timedelta) -> RateLimitBucket | None:
    bucket = RateLimitBucket.objects.filter(key=key).first()
    if bucket is None or bucket.window_start + window <= timezone.now():
        return None
    return bucket


def _refusal(
    key: str, bucket: RateLimitBucket | None, window: timedelta, message: str
) -> RateLimited:
    # Counted by the key's first part ("login", "code", "panel"...): never the
    # address or account that follows it (core/metrics.py).
    metrics.LIMITS_HIT.labels(key.split(":", 1)[0][:40]).inc()
    now = timezone.now()
    ends = bucket.window_start + window if bucket is not None else now + window
    return RateLimited(message, retry_after=max(int((ends - now).total_seconds()) + 1, 1))


def take(key: str, *, limit: int, window: timedelta, message: str) -> int:
    """Count one attempt against ``key`` and return the count, or raise
    RateLimited (counting nothing) when ``limit`` attempts were already made
    in the current window. Call it outside the caller's transaction: inside
    one, the count is rolled back with it."""
    now = timezone.now()
    expired = now - window
    with connection.cursor() as cursor:
        cursor.execute(
            _TAKE_SQL, [key, _at(now), _at(expired), _at(expired), _at(now), _at(expired), limit]
        )
        row = cursor.fetchone()
    if row is None:
        raise _refusal(key, _current(key, window), window, message)
    return int(row[0])


def give_back(key: str, *, window: timedelta) -> None:
    """Undo one ``take`` of the current window: the attempt did not count."""
    expired = timezone.now() - window
    RateLimitBucket.objects.filter(key=key, window_start__gt=expired, count__gt=0).update(
        count=F("count") - 1
    )


def take_all(budgets: list[tuple[str, int]], *, window: timedelta, message: str) -> list[str]:
    """``take`` a slot of each (key, limit) budget, or none of them: when one
    is used up, the slots already taken are given back and RateLimited raised.
    Returns the keys, for ``give_back_all``."""
    taken: list[str] = []
    for key, limit in budgets:
        try:
            take(key, limit=limit, window=window, message=message)
        except RateLimited:
            give_back_all(taken, window=window)
            raise
        taken.append(key)
    return taken


def give_back_all(keys: list[str], *, window: timedelta) -> None:
    for key in keys:
        give_back(key, window=window)


def count(key: str, *, window: timedelta) -> int:
    """The attempts counted against ``key`` in the current window."""
    bucket = _current(key, window)
    return bucket.count if bucket is not None else 0


def check(key: str, *, limit: int, window: timedelta, message: str) -> None:
    """Raise RateLimited when ``key`` has used up its ``limit`` in the current window."""
    bucket = _current(key, window)
    if bucket is not None and bucket.count >= limit:
        raise _refusal(key, bucket, window, message)


def hit(key: str, *, window: timedelta) -> None:
    """Count one attempt against ``key``. Call it outside the caller's transaction
    (as register_lock does): inside one, the count is rolled back with it."""
    now = timezone.now()
    with transaction.atomic(durable=False):
        bucket, created = RateLimitBucket.objects.select_for_update().get_or_create(
            key=key, defaults={"window_start": now, "count": 1}
        )
        if created:
            return
        if bucket.window_start + window <= now:
            bucket.window_start = now
            bucket.count = 1
            bucket.save(update_fields=["window_start", "count"])
        else:
            RateLimitBucket.objects.filter(pk=bucket.pk).update(count=F("count") + 1)


def reset(key: str) -> None:
    RateLimitBucket.objects.filter(key=key).delete()
