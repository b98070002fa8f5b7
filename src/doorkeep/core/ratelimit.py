"""Fixed-window rate limits kept in the database, so that every web worker
and every machine shares the same counters."""

from __future__ import annotations

from datetime import timedelta

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from doorkeep.core.errors import RateLimited
from doorkeep.core.models import RateLimitBucket


def _current(key: str, window: timedelta) -> RateLimitBucket | None:
    bucket = RateLimitBucket.objects.filter(key=key).first()
    if bucket is None or bucket.window_start + window <= timezone.now():
        return None
    return bucket


def check(key: str, *, limit: int, window: timedelta, message: str) -> None:
    """Raise RateLimited when ``key`` has used up its ``limit`` in the current window."""
    bucket = _current(key, window)
    if bucket is not None and bucket.count >= limit:
        retry = int((bucket.window_start + window - timezone.now()).total_seconds()) + 1
        raise RateLimited(message, retry_after=retry)


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
