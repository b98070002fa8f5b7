"""Delivering the outbox: claim due rows, send each once, retry with backoff.

A row is claimed by one conditional UPDATE that bumps its attempt counter and
moves ``next_attempt_at`` a lease ahead: of two processes that read the same
due row, only the one whose UPDATE still finds the old counter sends it (the
other's UPDATE matches no row). If a process dies while sending, the row is
due again when the lease runs out. This works the same on SQLite and
PostgreSQL, without row locks held during network calls.

Delivery starts in a background thread after a commit that wrote rows
(``kick``), and ``doorkeep serve`` runs ``deliver_due`` every few seconds, so
retries happen on time and nothing waits for the next request."""

from __future__ import annotations

import logging
import threading
from datetime import datetime, timedelta

from django.conf import settings
from django.db import close_old_connections, connection
from django.utils import timezone

from doorkeep.notify import channels
from doorkeep.notify.models import OutboxMessage

log = logging.getLogger("doorkeep.notify")

# Waits after the 1st, 2nd, ... failed attempt; after the last one, give up.
BACKOFF = (
    timedelta(seconds=30),
    timedelta(minutes=2),
    timedelta(minutes=10),
    timedelta(hours=1),
    timedelta(hours=6),
    timedelta(hours=24),
)
MAX_ATTEMPTS = len(BACKOFF) + 1
LEASE = timedelta(minutes=2)  # longer than any one send can take (timeouts are seconds)


def _due(now: datetime) -> dict[str, object]:
    return {
        "delivered_at__isnull": True,
        "gave_up_at__isnull": True,
        "next_attempt_at__lte": now,
    }


def claim(pk: int, attempts: int, now: datetime) -> bool:
    """Take one due row for this process: True for exactly one claimer."""
    taken = OutboxMessage.objects.filter(pk=pk, attempts=attempts, **_due(now)).update(
        attempts=attempts + 1, next_attempt_at=now + LEASE
    )
    return taken == 1


def deliver_due(*, now: datetime | None = None, limit: int = 100) -> int:
    """Send up to ``limit`` due messages, oldest due first. Returns how many
    this call attempted (sent or failed); rows another process claimed first
    are not counted. ``now`` is for tests; by default the current time."""
    start = now or timezone.now()
    candidates = list(
        OutboxMessage.objects.filter(**_due(start))
        .order_by("next_attempt_at", "id")
        .values_list("id", "attempts")[:limit]
    )
    attempted = 0
    for pk, attempts in candidates:
        if not claim(pk, attempts, start):
            continue
        attempted += 1
        message = OutboxMessage.objects.select_related(
            "user", "push_subscription", "webhook_endpoint"
        ).get(pk=pk)
        try:
            result = channels.send(message)
        except Exception as exc:  # a bug in a channel must not stop the others
            log.exception("outbox message %s failed unexpectedly", message.msg_id)
            result = channels.Result(ok=False, error=f"{type(exc).__name__}: {exc}")
        _record(message, result, now or timezone.now())
    return attempted


def _record(message: OutboxMessage, result: channels.Result, moment: datetime) -> None:
    changes: dict[str, object] = {"last_status": result.status, "last_error": result.error[:1000]}
    if result.ok:
        changes.update(delivered_at=moment, next_attempt_at=None)
    elif result.final or message.attempts >= MAX_ATTEMPTS:
        changes.update(gave_up_at=moment, next_attempt_at=None)
        log.warning(
            "gave up on %s message %s after %d attempt(s): %s",
            message.channel,
            message.msg_id,
            message.attempts,
            result.error,
        )
    else:
        changes.update(next_attempt_at=moment + BACKOFF[message.attempts - 1])
    OutboxMessage.objects.filter(pk=message.pk, attempts=message.attempts).update(**changes)


# --- delivery right after a commit -------------------------------------------------

_running = threading.Lock()
_again = threading.Event()


def kick() -> None:
    """Deliver due messages soon, in a daemon thread of this process (one at a
    time; a kick while it runs makes it go round once more). Off when the
    DOORKEEP_OUTBOX_KICK setting is false."""
    if not settings.DOORKEEP_OUTBOX_KICK:
        return
    _again.set()
    if _running.acquire(blocking=False):
        threading.Thread(target=_deliver_in_background, name="doorkeep-outbox", daemon=True).start()


def _deliver_in_background() -> None:
    try:
        while _again.is_set():
            _again.clear()
            try:
                deliver_due()
            except Exception:  # the periodic run in `serve` tries again
                log.exception("delivering the outbox failed")
    finally:
        close_old_connections()
        connection.close()
        _running.release()
