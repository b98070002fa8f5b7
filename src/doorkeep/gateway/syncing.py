"""The gateway's sync work that runs in its database threads: read a lock's
list, compare it with what the lock acknowledged, encode the push; record
an acknowledgement. The event loop (server.py) only sends and waits."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from django.db import connections as db_connections
from django.utils import timezone

from doorkeep.gateway import lists, protocol, services

MAX_DIFF_ENTRIES = 50  # a bigger difference is sent as the full list (unless < half the list)
# From a change's notice: the list version the change produced and the keys it touched.
Hint = tuple[int, tuple[int, ...]]


@dataclass
class Push:
    """A list push waiting for the lock's acknowledgement: what the lock will
    hold once it acknowledges, and what changed (for a difference)."""

    version: int
    rows: dict[int, lists.Row]
    full: bool
    since: int  # the version the difference is from (-1 for a full list)
    changed: list[int]
    removed: list[int]
    sent_at: float = field(default_factory=time.monotonic)
    sent_wall: datetime = field(default_factory=lambda: datetime.now(UTC))
    failed: bool = False  # not acknowledged within ACK_TIMEOUT


@dataclass
class Prepared:
    """What a sync found: nothing to send, ``list.ok``, or a push (``text`` is
    the encoded message)."""

    push: Push | None = None
    text: str = ""
    ok_version: int | None = None
    next_end: float | None = None


_tuned = threading.local()


def tune_connection(sqlite_cache_kib: int) -> None:
    """Give this thread's SQLite connection a smaller page cache than the web
    workers' (each database thread has its own connection and cache)."""
    connection = db_connections["default"]
    if connection.vendor != "sqlite" or sqlite_cache_kib <= 0:
        return
    connection.ensure_connection()
    if getattr(_tuned, "raw", None) is connection.connection:
        return
    with connection.cursor() as cursor:
        cursor.execute(f"PRAGMA cache_size=-{int(sqlite_cache_kib)}")
    _tuned.raw = connection.connection


def prepare(
    lock_id: int,
    acked_version: int,
    acked_rows: dict[int, lists.Row] | None,
    acked_snapshot: dict[str, str],
    initial: bool,
    hint: Hint | None = None,
) -> Prepared:
    """In a database thread: read the lock's list, compare it with what the
    lock acknowledged, and encode what to send. With a ``hint`` (the version
    a change produced and the keys it touched), when the lock acknowledged
    the version just before on this connection, only those keys are read."""
    version, owner, tz = lists.head(lock_id)
    if hint is not None and acked_rows is not None:
        quick = prepare_keys(lock_id, version, owner, tz, acked_version, acked_rows, hint)
        if quick is not None:
            return quick
    current = lists.CredentialList(version, tz, lists.rows(lock_id, owner))
    changed, removed = lists.changes(current, acked_rows, acked_snapshot)
    if current.version == acked_version:
        if not changed and not removed:
            return Prepared(
                ok_version=current.version if initial else None,
                next_end=lists.next_end(current.rows),
            )
        # The list changed without a new version (a window ended while no
        # gateway was watching the lock): a change is a new version.
        services.bump(lock_id)
        current = lists.build(lock_id)
        changed, removed = lists.changes(current, acked_rows, acked_snapshot)
    if acked_version >= 0 and len(changed) + len(removed) <= max(
        MAX_DIFF_ENTRIES, len(current.rows) // 2
    ):
        message: dict[str, Any] = {
            "type": "list.diff",
            "from": acked_version,
            "version": current.version,
            "timezone": current.timezone,
            "add": [lists.entry(current.rows[pk]) for pk in changed],
            "remove": removed,
        }
        push = Push(current.version, current.rows, False, acked_version, changed, removed)
    else:
        message = {
            "type": "list.full",
            "version": current.version,
            "timezone": current.timezone,
            "entries": current.entries,
        }
        push = Push(current.version, current.rows, True, -1, [], [])
    return Prepared(push, protocol.encode(message), next_end=lists.next_end(current.rows))


def prepare_keys(
    lock_id: int,
    version: int,
    owner: int,
    tz: str,
    acked_version: int,
    acked_rows: dict[int, lists.Row],
    hint: Hint,
) -> Prepared | None:
    """The difference of one change from the rows the lock acknowledged, reading
    only the rows of the keys the change touched; None when that cannot be
    proved to be the whole difference (the caller reads the whole list).

    It is when the platform's version is the one this change produced and the
    lock acknowledged the one just before: a version number is produced by a
    single change (the lock row stays locked until its commit), so no other
    change came between; what the lock holds is the list at ``acked_version``.
    The version is read before the rows: a later change that the rows already
    show is pushed again, harmlessly, by its own notice. Entries whose window
    ended since are dropped, as the list's query would."""
    target, keys = hint
    if version != target or target != acked_version + 1 or not keys:
        return None
    at = timezone.now()
    fresh = lists.rows(lock_id, owner, at=at, keys=keys)
    current = lists.patched(acked_rows, keys, fresh, at)
    changed = [pk for pk, row in fresh.items() if acked_rows.get(pk) != row]
    removed = sorted(pk for pk in acked_rows if pk not in current)
    if len(changed) + len(removed) > max(MAX_DIFF_ENTRIES, len(current) // 2):
        return None
    message = {
        "type": "list.diff",
        "from": acked_version,
        "version": version,
        "timezone": tz,
        "add": [lists.entry(fresh[pk]) for pk in changed],
        "remove": removed,
    }
    push = Push(version, current, False, acked_version, changed, removed)
    return Prepared(push, protocol.encode(message), next_end=lists.next_end(current))


def record_ack(session: services.Session, push: Push) -> None:
    """In a database thread: record that the lock is in step and store the
    fingerprints of what it holds. After a full list, both in one write.
    After a difference, the acknowledgement first (it is what the platform
    shows), then only the fingerprints that changed."""
    if push.full:
        snapshot = lists.CredentialList(push.version, "", push.rows).snapshot()
        services.acknowledged(session, push.version, sent_at=push.sent_wall, snapshot=snapshot)
        return
    services.acknowledged(session, push.version, sent_at=push.sent_wall)
    patch: dict[str, str | None] = {
        str(pk): lists.fingerprint(push.rows[pk]) for pk in push.changed
    }
    patch.update({str(pk): None for pk in push.removed})
    if not services.store_snapshot(session, push.version, since=push.since, patch=patch):
        snapshot = lists.CredentialList(push.version, "", push.rows).snapshot()
        services.store_snapshot(session, push.version, snapshot=snapshot)
