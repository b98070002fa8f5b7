"""Event-log retention (E3): the log is append-only, and the only way events
leave it is this, by age, for the whole platform.

DOORKEEP_EVENT_RETENTION_DAYS (default 730, two years; 0 keeps everything)
says how long events are kept, counted from when they happened. ``doorkeep
serve`` purges hourly with the reminders; ``doorkeep events purge`` on demand.
Deletion goes in batches of primary keys, so that a large first purge never
holds a long write lock (SQLite has one writer)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import cast

from django.conf import settings
from django.db import models, transaction
from django.utils import timezone

from doorkeep.events.models import Event

BATCH = 5_000


@dataclass(frozen=True)
class Purged:
    cutoff: datetime | None  # None: retention is off
    deleted: int


def cutoff(now: datetime | None = None, days: int | None = None) -> datetime | None:
    days = int(settings.DOORKEEP["EVENT_RETENTION_DAYS"]) if days is None else days
    if days <= 0:
        return None
    return (now or timezone.now()) - timedelta(days=days)


def _plain() -> models.QuerySet[Event]:
    """A plain QuerySet: Event's own refuses to delete, so that nothing else can."""
    return cast("models.QuerySet[Event]", models.QuerySet(model=Event))


def purge(*, now: datetime | None = None, days: int | None = None, dry_run: bool = False) -> Purged:
    """Delete the events that happened before the retention period."""
    before = cutoff(now, days)
    if before is None:
        return Purged(None, 0)
    old = _plain().filter(occurred_at__lt=before)
    if dry_run:
        return Purged(before, old.count())
    deleted = 0
    while True:
        ids = list(old.order_by("pk").values_list("pk", flat=True)[:BATCH])
        if not ids:
            return Purged(before, deleted)
        with transaction.atomic():
            # Nothing refers to events by foreign key: one DELETE per batch.
            batch = _plain().filter(pk__in=ids)
            deleted += int(batch._raw_delete(batch.db))
