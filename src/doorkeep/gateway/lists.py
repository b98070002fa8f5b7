"""The credential list of a lock: what the lock keeps locally to decide alone.

Entries are the live, not yet expired credentials of the lock's keys (PIN,
tag, remote; a phone opens through the platform). A PIN is matched by its
HMAC under the lock's own key. Each entry has a short fingerprint, so that the
difference between the list a device acknowledged and the current one can be
computed by any gateway, from the snapshot stored with the acknowledgement."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from django.db.models import Q
from django.utils import timezone

from doorkeep.keys.models import CredentialKind, KeyCredential
from doorkeep.locks.models import Lock

Entry = dict[str, Any]


def _iso(moment: datetime | None) -> str | None:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z") if moment else None


def fingerprint(entry: Entry) -> str:
    raw = json.dumps(entry, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.blake2s(raw, digest_size=6).hexdigest()


@dataclass(frozen=True)
class CredentialList:
    version: int
    timezone: str
    entries: list[Entry]

    def snapshot(self) -> dict[str, str]:
        return {str(e["id"]): fingerprint(e) for e in self.entries}


def build(lock: Lock, *, at: datetime | None = None) -> CredentialList:
    """The current list of ``lock``, read in two queries whatever its size.

    A key issued under an organization's key (shared management) opens only
    inside the organization key's window too, so an entry carries the
    narrower of the two windows: the lock decides as the platform does."""
    at = at or timezone.now()
    version = Lock.objects.values_list("credential_version", flat=True).get(pk=lock.pk)
    tz = "UTC"
    if lock.entry_id is not None:
        tz = lock.entry.property.timezone if lock.entry else "UTC"
    rows = (
        KeyCredential.objects.filter(
            lock_id=lock.pk,
            active=True,
            credential__deactivated_at__isnull=True,
            key__revoked_at__isnull=True,
            key__lock_owner_id=lock.organization_id or 0,
        )
        .exclude(kind=CredentialKind.PHONE)
        .filter(Q(key__valid_until__isnull=True) | Q(key__valid_until__gt=at))
        .filter(
            Q(key__parent__isnull=True)
            | Q(key__parent__revoked_at__isnull=True)
            & (Q(key__parent__valid_until__isnull=True) | Q(key__parent__valid_until__gt=at))
        )
        .values_list(
            "pk",
            "kind",
            "device_lookup",
            "key__valid_from",
            "key__valid_until",
            "key__schedule",
            "key__parent__valid_from",
            "key__parent__valid_until",
        )
        .order_by("pk")
    )
    entries: list[Entry] = []
    for pk, kind, match, valid_from, valid_until, schedule, parent_from, parent_until in rows:
        valid_from = _later(valid_from, parent_from)
        valid_until = _earlier(valid_until, parent_until)
        entry: Entry = {"id": pk, "kind": kind, "match": match}
        if valid_from:
            entry["from"] = _iso(valid_from)
        if valid_until:
            entry["until"] = _iso(valid_until)
        if schedule:
            entry["schedule"] = schedule
        entries.append(entry)
    return CredentialList(version, tz, entries)


def _later(a: datetime | None, b: datetime | None) -> datetime | None:
    return max(a, b) if a and b else a or b


def _earlier(a: datetime | None, b: datetime | None) -> datetime | None:
    return min(a, b) if a and b else a or b


def diff(acked: dict[str, str], current: CredentialList) -> tuple[list[Entry], list[int]]:
    """Entries to add or replace, and ids to remove, to turn the acknowledged
    list into the current one."""
    now_ids = {str(e["id"]) for e in current.entries}
    add = [e for e in current.entries if acked.get(str(e["id"])) != fingerprint(e)]
    remove = sorted(int(i) for i in acked if i not in now_ids)
    return add, remove
