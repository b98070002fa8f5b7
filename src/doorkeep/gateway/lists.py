"""The credential list of a lock: what the lock keeps locally to decide alone.

Entries are the live, not yet expired credentials of the lock's keys (PIN,
tag, remote; a phone opens through the platform). A PIN is matched by its
HMAC under the lock's own key.

The list is read as raw rows (one query, no model instances): a row holds
everything its entry is made of, so two lists are compared row by row without
building entries, and only what changed is turned into entries and JSON.
Each entry also has a short fingerprint, computed from its row with a cheap
hash: the fingerprints of the list a device acknowledged are stored with the
acknowledgement, so that any gateway can compute the difference later."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property
from typing import Any

from django.db import connection
from django.utils import timezone

from doorkeep.keys.models import CredentialKind
from doorkeep.locks.models import Lock

Entry = dict[str, Any]
# (id, kind, match, valid_from, valid_until, schedule JSON text, parent's valid_from,
#  parent's valid_until, key id), as the database returns them. The key id is
# not part of the entry (nor of its fingerprint): it tells which entries a
# change of a key replaces.
Row = tuple[Any, ...]
KEY = 8  # where a row holds its key's id


def _iso(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    if moment.tzinfo is None:  # SQLite's raw rows: naive, in UTC
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _later(a: datetime | None, b: datetime | None) -> datetime | None:
    return max(a, b) if a and b else a or b


def _earlier(a: datetime | None, b: datetime | None) -> datetime | None:
    return min(a, b) if a and b else a or b


def _fields(row: Row) -> tuple[int, str, str, str | None, str | None, Any]:
    """id, kind, match, from, until and the schedule (JSON text) of a row. A
    key issued under an organization's key (shared management) opens only
    inside the organization key's window too, so an entry carries the
    narrower of the two windows: the lock decides as the platform does."""
    pk, kind, match, valid_from, valid_until, schedule, parent_from, parent_until = row[:8]
    if parent_from is not None or parent_until is not None:
        valid_from = _later(valid_from, parent_from)
        valid_until = _earlier(valid_until, parent_until)
    return pk, kind, match, _iso(valid_from), _iso(valid_until), schedule


def entry(row: Row) -> Entry:
    pk, kind, match, valid_from, valid_until, schedule = _fields(row)
    made: Entry = {"id": pk, "kind": kind, "match": match}
    if valid_from:
        made["from"] = valid_from
    if valid_until:
        made["until"] = valid_until
    if schedule:
        rules = json.loads(schedule) if isinstance(schedule, str) else schedule
        if rules:
            made["schedule"] = rules
    return made


def fingerprint(row: Row) -> str:
    """12 hex digits that change when the row's entry changes."""
    _pk, kind, match, valid_from, valid_until, schedule = _fields(row)
    if schedule is not None and not isinstance(schedule, str):
        schedule = json.dumps(schedule, sort_keys=True, separators=(",", ":"))
    raw = f"{kind}\x1f{match}\x1f{valid_from or ''}\x1f{valid_until or ''}\x1f{schedule or ''}"
    return hashlib.blake2s(raw.encode(), digest_size=6).hexdigest()


@dataclass(frozen=True)
class CredentialList:
    version: int
    timezone: str
    rows: dict[int, Row]  # by entry id, in id order

    @cached_property
    def entries(self) -> list[Entry]:
        return [entry(row) for row in self.rows.values()]

    def snapshot(self) -> dict[str, str]:
        """The fingerprint of every entry, by id (as stored with an ack)."""
        return {str(pk): fingerprint(row) for pk, row in self.rows.items()}


def next_end(rows: dict[int, Row]) -> float | None:
    """When the first entry of the list leaves it (its key's window, or its
    organization key's window, ends), in epoch seconds; None if none ends."""
    ends = [moment for row in rows.values() for moment in (row[4], row[7]) if moment is not None]
    if not ends:
        return None
    first = min(ends)
    if first.tzinfo is None:
        first = first.replace(tzinfo=UTC)
    return first.timestamp()


def head(lock_id: int) -> tuple[int, int, str]:
    """The lock's list version, owner and time zone, in one query (``heads``).
    Raises Lock.DoesNotExist for a lock that is gone."""
    found = heads([lock_id]).get(lock_id)
    if found is None:
        raise Lock.DoesNotExist(f"lock {lock_id} is gone")
    return found


PER_QUERY = 500  # ids in one query's IN list


def heads(lock_ids: Iterable[int]) -> dict[int, tuple[int, int, str]]:
    """The list version, owner and time zone of each of the locks, by lock id
    (a lock that is gone is missing): one query for up to PER_QUERY locks."""
    ids = sorted(set(lock_ids))
    found: dict[int, tuple[int, int, str]] = {}
    for start in range(0, len(ids), PER_QUERY):
        for pk, version, owner, tz in Lock.objects.filter(
            pk__in=ids[start : start + PER_QUERY]
        ).values_list("pk", "credential_version", "organization_id", "entry__property__timezone"):
            found[pk] = (int(version), owner or 0, tz or "UTC")
    return found


# The list in one statement, written out by hand (as keys.access does for the
# decision): building it with the ORM took a fifth of a change's time on a
# 2,500-key lock. The same conditions as keys.access: a live credential of a
# live key of the lock's owner, within its window and its parent key's.
# ``which`` picks the lock (and its owner) or the keys; ``more`` adds columns.
_LIST_SQL = """
SELECT kc.id, kc.kind, kc.device_lookup,
       k.valid_from, k.valid_until, k.schedule, pk.valid_from, pk.valid_until, kc.key_id{more}
FROM keys_keycredential kc
JOIN keys_key k ON k.id = kc.key_id
JOIN keys_credential c ON c.id = kc.credential_id
LEFT JOIN keys_key pk ON pk.id = k.parent_id
WHERE {which} AND kc.active AND kc.kind <> %s AND c.deactivated_at IS NULL
  AND k.revoked_at IS NULL
  AND (k.valid_until IS NULL OR k.valid_until > %s)
  AND (k.parent_id IS NULL
       OR (pk.revoked_at IS NULL AND (pk.valid_until IS NULL OR pk.valid_until > %s)))
ORDER BY kc.id
"""
_ALL_SQL = _LIST_SQL.format(which="kc.lock_id = %s AND k.lock_owner_id = %s", more="")


def _conditions(at: datetime | None) -> list[Any]:
    moment = connection.ops.adapt_datetimefield_value(at or timezone.now())
    return [CredentialKind.PHONE.value, moment, moment]


def rows(lock_id: int, owner_id: int, *, at: datetime | None = None) -> dict[int, Row]:
    """The rows of the lock's current list, by entry id: one query, read
    through the database cursor (model instances and the ORM's per-value
    conversions would cost more than the query)."""
    with connection.cursor() as cursor:
        cursor.execute(_ALL_SQL, [lock_id, owner_id or 0, *_conditions(at)])
        return {row[0]: row for row in cursor.fetchall()}


def rows_of_keys(
    wanted: Mapping[int, tuple[int, Iterable[int]]], *, at: datetime | None = None
) -> dict[int, dict[int, Row]]:
    """For each lock id in ``wanted``, given as (its owner's id, key ids): the
    rows those keys have now in the lock's list (none for a key taken back),
    by entry id, as ``rows`` reads them; for all the locks in one query per
    PER_QUERY keys."""
    pairs = {(int(lock_id), int(key)) for lock_id, (_owner, keys) in wanted.items() for key in keys}
    owners = {int(lock_id): owner or 0 for lock_id, (owner, _keys) in wanted.items()}
    found: dict[int, dict[int, Row]] = {int(lock_id): {} for lock_id in wanted}
    ids = sorted({key for _lock, key in pairs})
    conditions = _conditions(at)
    for start in range(0, len(ids), PER_QUERY):
        chunk = ids[start : start + PER_QUERY]
        sql = _LIST_SQL.format(
            which=f"kc.key_id IN ({', '.join(['%s'] * len(chunk))})",
            more=", kc.lock_id, k.lock_owner_id",
        )
        with connection.cursor() as cursor:
            cursor.execute(sql, [*chunk, *conditions])
            for row in cursor.fetchall():
                lock_id, owner = row[KEY + 1], row[KEY + 2]
                if (lock_id, row[KEY]) in pairs and owner == owners[lock_id]:
                    found[lock_id][row[0]] = row[: KEY + 1]
    return found


def ended(row: Row, at: datetime) -> bool:
    """Whether the row's key, or its parent key, has ended by ``at`` (the
    list's own condition, applied to a row read before)."""
    for moment in (row[4], row[7]):
        if moment is None:
            continue
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        if moment <= at:
            return True
    return False


def patched(
    acked_rows: dict[int, Row],
    keys: list[int] | tuple[int, ...],
    fresh: dict[int, Row],
    at: datetime,
) -> dict[int, Row]:
    """The list a lock holds (``acked_rows``) with the rows of ``keys``
    replaced by ``fresh`` (those keys' rows read now), and the rows whose
    window ended by ``at`` dropped: the current list, provided no other key
    changed since ``acked_rows`` was read."""
    changed = {int(k) for k in keys}
    out = {
        pk: row for pk, row in acked_rows.items() if row[KEY] not in changed and not ended(row, at)
    }
    out.update(fresh)
    return out


def build(lock: Lock | int, *, at: datetime | None = None) -> CredentialList:
    """The current list of ``lock``, read in two queries whatever its size."""
    lock_id = lock if isinstance(lock, int) else lock.pk
    version, owner, tz = head(lock_id)
    return CredentialList(version, tz, rows(lock_id, owner, at=at))


def changes(
    current: CredentialList,
    acked_rows: dict[int, Row] | None,
    acked_snapshot: dict[str, str],
) -> tuple[list[int], list[int]]:
    """Ids to add or replace, and ids to remove, to turn the acknowledged list
    into the current one. Against the rows the lock acknowledged on this
    connection a comparison of tuples; else against the stored fingerprints."""
    now = current.rows
    if acked_rows is not None:
        changed = [pk for pk, row in now.items() if acked_rows.get(pk) != row]
        removed = sorted(pk for pk in acked_rows if pk not in now)
    else:
        changed = [pk for pk, row in now.items() if acked_snapshot.get(str(pk)) != fingerprint(row)]
        removed = sorted(int(pk) for pk in acked_snapshot if int(pk) not in now)
    return changed, removed


def diff(acked: dict[str, str], current: CredentialList) -> tuple[list[Entry], list[int]]:
    """Entries to add or replace, and ids to remove, from stored fingerprints."""
    changed, removed = changes(current, None, acked)
    return [entry(current.rows[pk]) for pk in changed], removed
