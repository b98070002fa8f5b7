"""The gateway's sync work that runs in its database threads: read a lock's
list, compare it with what the lock acknowledged, encode the push; record
an acknowledgement. The event loop (server.py) only sends and waits."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from django.db import connections as db_connections
from django.utils import timezone

from doorkeep.gateway import lists, protocol, services
from doorkeep.locks.models import Lock

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


@dataclass(frozen=True)
class Sync:
    """What the sync of one lock starts from: the version the lock
    acknowledged (-1: unknown), the rows it acknowledged on this connection
    (None: not known here) or else the fingerprints stored with its last
    acknowledgement, whether it just connected, and the hint of the change's
    notice (None: anything may have changed)."""

    lock_id: int
    acked_version: int
    acked_rows: dict[int, lists.Row] | None
    acked_snapshot: dict[str, str]
    initial: bool = False
    hint: Hint | None = None


def prepare(
    lock_id: int,
    acked_version: int,
    acked_rows: dict[int, lists.Row] | None,
    acked_snapshot: dict[str, str],
    initial: bool,
    hint: Hint | None = None,
) -> Prepared:
    """``prepare_many`` of one lock (raises what stopped it)."""
    [prepared] = prepare_many(
        [Sync(lock_id, acked_version, acked_rows, acked_snapshot, initial, hint)]
    )
    if isinstance(prepared, Exception):
        raise prepared
    return prepared


def prepare_many(syncs: Sequence[Sync]) -> list[Prepared | Exception]:
    """In a database thread: for each lock, read its list, compare it with
    what the lock acknowledged, and encode what to send (or the exception
    that stopped it, for that lock alone). The versions, owners and time
    zones of all the locks are read in one query. With a ``hint`` (the
    version a change produced and the keys it touched), when the lock
    acknowledged the version just before on this connection, only those keys
    are read: those of all such locks in one query (``from_keys``)."""
    heads = lists.heads(sync.lock_id for sync in syncs)
    at = timezone.now()
    keyed: dict[int, tuple[int, tuple[int, ...]]] = {}  # lock id -> (owner, keys)
    for sync in syncs:
        head = heads.get(sync.lock_id)
        if head is not None and sync.lock_id not in keyed and _by_keys(sync, head[0]):
            assert sync.hint is not None
            keyed[sync.lock_id] = (head[1], sync.hint[1])
    fresh = lists.rows_of_keys(keyed, at=at) if keyed else {}
    done: list[Prepared | Exception] = []
    for sync in syncs:
        try:
            head = heads.get(sync.lock_id)
            if head is None:
                raise Lock.DoesNotExist(f"lock {sync.lock_id} is gone")
            quick = None
            if sync.lock_id in fresh and _by_keys(sync, head[0]):
                quick = from_keys(sync, head[2], fresh.pop(sync.lock_id), at)
            done.append(quick if quick is not None else _from_list(sync, head))
        except Exception as exc:
            done.append(exc)
    return done


def _by_keys(sync: Sync, version: int) -> bool:
    """Whether the difference may be read from the hint's keys alone: the
    platform's version is the one the change produced and the lock
    acknowledged the one just before on this connection (see ``from_keys``)."""
    if sync.hint is None or sync.acked_rows is None or not sync.hint[1]:
        return False
    return version == sync.hint[0] == sync.acked_version + 1


def _from_list(sync: Sync, head: tuple[int, int, str]) -> Prepared:
    """The difference, or the full list, from the lock's whole list."""
    lock_id, acked_version, acked_rows = sync.lock_id, sync.acked_version, sync.acked_rows
    version, owner, tz = head
    current = lists.CredentialList(version, tz, lists.rows(lock_id, owner))
    changed, removed = lists.changes(current, acked_rows, sync.acked_snapshot)
    if current.version == acked_version:
        if not changed and not removed:
            return Prepared(
                ok_version=current.version if sync.initial else None,
                next_end=lists.next_end(current.rows),
            )
        # The list changed without a new version (a window ended while no
        # gateway was watching the lock): a change is a new version.
        services.bump(lock_id)
        current = lists.build(lock_id)
        changed, removed = lists.changes(current, acked_rows, sync.acked_snapshot)
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


def from_keys(sync: Sync, tz: str, fresh: dict[int, lists.Row], at: datetime) -> Prepared | None:
    """The difference of one change from the rows the lock acknowledged,
    given ``fresh``, the rows the keys the change touched have now (read at
    ``at``); None when it is too big for a difference (the caller reads the
    whole list).

    It is the whole difference when the platform's version is the one this
    change produced and the lock acknowledged the one just before
    (``_by_keys``): a version number is produced by a single change (the
    lock row stays locked until its commit), so no other change came
    between; what the lock holds is the list at ``acked_version``. The
    version is read before the rows: a later change that the rows already
    show is pushed again, harmlessly, by its own notice. Entries whose window
    ended since are dropped, as the list's query would."""
    assert sync.hint is not None and sync.acked_rows is not None
    version, keys = sync.hint
    acked_version, acked_rows = sync.acked_version, sync.acked_rows
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
    """``record_acks`` of one lock."""
    record_acks([(session, push)])


def record_acks(acks: Sequence[tuple[services.Session, Push]]) -> None:
    """In a database thread: record that these locks are in step, with the
    fingerprints of what each holds (``services.acknowledged_many``: a few
    statements whatever their number). After a full list all of them, in
    the same write; after a difference, once the acknowledgement is
    committed, only those that changed, or, where the stored ones are not
    those of the version the difference is from, all of them."""
    pushes: dict[int, Push] = {}
    made: list[services.Ack] = []
    for session, push in acks:
        if push.full:
            ack = services.Ack(session, push.version, push.sent_wall, snapshot=_snapshot(push))
        else:
            patch: dict[str, str | None] = {
                str(pk): lists.fingerprint(push.rows[pk]) for pk in push.changed
            }
            patch.update({str(pk): None for pk in push.removed})
            ack = services.Ack(session, push.version, push.sent_wall, since=push.since, patch=patch)
        pushes[id(ack)] = push
        made.append(ack)
    missed = services.acknowledged_many(made)
    if missed:
        services.acknowledged_many(
            [
                replace(ack, since=None, patch=None, snapshot=_snapshot(pushes[id(ack)]))
                for ack in missed
            ]
        )


def _snapshot(push: Push) -> dict[str, str]:
    return lists.CredentialList(push.version, "", push.rows).snapshot()
