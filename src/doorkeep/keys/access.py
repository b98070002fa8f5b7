"""The access decision: may this credential open this lock at this moment?

One function, used by the API, the web UI and (through the gateway) by locks
reporting what they decided. It answers granted or denied with a reason, and
writes an event either way."""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from django.db import connection
from django.utils import timezone
from django.utils.translation import gettext as _

from doorkeep.accounts.models import Organization, User
from doorkeep.core import metrics
from doorkeep.core.errors import InvalidInput, NotFound
from doorkeep.core.rows import aware
from doorkeep.events.models import DenyReason, Event, EventKind
from doorkeep.events.services import write_access_event
from doorkeep.keys import schedule as schedules
from doorkeep.keys.credentials import presented
from doorkeep.keys.models import CredentialKind, Key, KeyStatus, Person
from doorkeep.locks.models import Lock

_UTC = ZoneInfo("UTC")


@dataclass(frozen=True)
class Decision:
    granted: bool
    reason: str  # "" when granted, else a DenyReason value
    key: Key | None
    event: Event

    @property
    def outcome(self) -> str:
        return "granted" if self.granted else "denied"


# The hot path: one statement finds the matching credential with its key, the
# key's holder and the parent key (for keys issued under an organization's
# key). Written out by hand because the ORM spends more time building this
# query than the database spends answering it; see bench/access_decisions.py.
_MATCH_SQL = """
SELECT kc.id, kc.active, c.deactivated_at, c.deactivated_reason,
       k.id, k.person_id, k.holder_organization_id, k.organization_id, k.lock_owner_id,
       k.valid_from, k.valid_until, k.schedule, k.revoked_at, k.issued_at, k.note,
       p.name, p.email, p.user_id, o.name,
       pk.id, pk.valid_from, pk.valid_until, pk.revoked_at
FROM keys_keycredential kc
JOIN keys_key k ON k.id = kc.key_id
JOIN keys_credential c ON c.id = kc.credential_id
LEFT JOIN keys_person p ON p.id = k.person_id
LEFT JOIN accounts_organization o ON o.id = k.holder_organization_id
LEFT JOIN keys_key pk ON pk.id = k.parent_id
WHERE kc.lock_id = %s AND kc.kind = %s AND kc.lookup IN ({lookups}) AND k.lock_owner_id = %s
ORDER BY kc.active DESC, k.issued_at DESC, kc.id DESC
LIMIT 1
"""
# A phone credential's lookup is the id of a person the account is; any
# organization's person: a key issued under an organization's key belongs to
# a person of that organization, not of the lock's owner.
_MATCH_PHONE_SQL = _MATCH_SQL.format(
    lookups="SELECT CAST(pp.id AS TEXT) FROM keys_person pp WHERE pp.user_id = %s"
)
_MATCH_VALUE_SQL = _MATCH_SQL.format(lookups="%s")


@dataclass(frozen=True)
class _Match:
    active: bool
    deactivated_at: datetime | None
    deactivated_reason: str
    key: Key


def _json(value: object) -> object:
    return json.loads(value) if isinstance(value, str | bytes) else value


def _match(lock: Lock, kind: str, value: str | User) -> _Match | None:
    """The key credential on this lock that matches, live ones first; only the
    current owner's keys (a lock that changed hands must not match, and name,
    the previous owner's people)."""
    lookup: int | str
    if kind == CredentialKind.PHONE:
        if not isinstance(value, User):
            raise InvalidInput("A phone credential is the signed-in account.")
        sql, lookup = _MATCH_PHONE_SQL, value.pk
    else:
        sql, lookup = _MATCH_VALUE_SQL, presented(kind, str(value)).lookup
    with connection.cursor() as cursor:
        cursor.execute(sql, [lock.pk, kind, lookup, lock.organization_id])
        row = cursor.fetchone()
    if row is None:
        return None
    (
        _kc_id,
        active,
        deactivated_at,
        deactivated_reason,
        key_id,
        person_id,
        holder_org_id,
        org_id,
        owner_id,
        valid_from,
        valid_until,
        schedule,
        revoked_at,
        issued_at,
        note,
        person_name,
        person_email,
        person_user_id,
        org_name,
        parent_id,
        parent_from,
        parent_until,
        parent_revoked,
    ) = row
    key = Key(
        id=key_id,
        lock_id=lock.pk,
        person_id=person_id,
        holder_organization_id=holder_org_id,
        organization_id=org_id,
        lock_owner_id=owner_id,
        valid_from=aware(valid_from),
        valid_until=aware(valid_until),
        schedule=_json(schedule),
        revoked_at=aware(revoked_at),
        issued_at=aware(issued_at) or timezone.now(),
        note=note,
        parent_id=parent_id,
    )
    key._state.adding = False
    if person_id is not None:
        key.person = Person(
            id=person_id,
            name=person_name,
            email=person_email,
            user_id=person_user_id,
            organization_id=org_id,
        )
        key.person._state.adding = False
    if holder_org_id is not None:
        key.holder_organization = Organization(id=holder_org_id, name=org_name)
        key.holder_organization._state.adding = False
    if parent_id is not None:
        key.parent = Key(
            id=parent_id,
            valid_from=aware(parent_from),
            valid_until=aware(parent_until),
            revoked_at=aware(parent_revoked),
        )
        key.parent._state.adding = False
    return _Match(bool(active), aware(deactivated_at), deactivated_reason or "", key)


@dataclass(frozen=True)
class Verdict:
    """What the rule says, before anything is written: granted or the reason
    why not, the key that matched and the moment it was asked for."""

    granted: bool
    reason: str
    key: Key | None
    moment: datetime


@metrics.observed(metrics.DECISION_SECONDS)
def judge(lock: Lock, kind: str, value: str | User, *, at: datetime | None = None) -> Verdict:
    """The rule alone: whether ``value`` (a PIN, tag UID, remote serial, or for
    a phone the signed-in User) opens ``lock`` at ``at`` (default: now). Writes
    nothing: ``decide`` writes the attempt; a check for another moment (the
    API's what-if) and remote unlock, which records the attempt once the lock
    answered, call this directly. A malformed credential is denied."""
    moment = at or timezone.now()
    if lock.organization_id is None:
        raise NotFound(_("Lock not found."))
    tz = _zone(lock.entry.property.timezone) if lock.entry else _UTC
    reason = ""
    matched: _Match | None = None
    try:
        matched = _match(lock, kind, value)
    except InvalidInput:
        reason = DenyReason.MALFORMED_CREDENTIAL
    if not reason:
        reason = _reason(matched, moment, tz)
    return Verdict(reason == "", reason, matched.key if matched else None, moment)


def write(
    lock: Lock,
    kind: str,
    verdict: Verdict,
    *,
    source: str,
    actor: User | None = None,
    event_kind: str = "",
    reason: str | None = None,
    summary: str | None = None,
    data: dict[str, object] | None = None,
) -> Event:
    """The attempt's one event: by default access.granted or access.denied
    with the verdict's reason; remote unlock passes what the lock did
    (``event_kind``, ``reason`` and ``data``)."""
    key = verdict.key
    if not event_kind:
        event_kind = EventKind.ACCESS_GRANTED if verdict.granted else EventKind.ACCESS_DENIED
    return write_access_event(
        organization_id=lock.organization_id or 0,
        kind=event_kind,
        reason=verdict.reason if reason is None else reason,
        occurred_at=verdict.moment,
        property_id=lock.entry.property_id if lock.entry else None,
        lock_id=lock.pk,
        person_id=key.person_id if key else None,
        key_id=key.pk if key else None,
        actor_id=actor.pk if actor is not None and actor.is_authenticated else None,
        credential_kind=kind if kind in CredentialKind.values else "",
        summary=(key.holder_name if key else "") if summary is None else summary,
        data={"source": source} | (data or {}),
    )


def decide(
    lock: Lock,
    kind: str,
    value: str | User,
    *,
    at: datetime | None = None,
    source: str = "platform",
    actor: User | None = None,
) -> Decision:
    """Decide whether ``value`` opens ``lock`` at ``at`` (default: now), and
    record the attempt as an access event (``judge``, then ``write``)."""
    verdict = judge(lock, kind, value, at=at)
    event = write(lock, kind, verdict, source=source, actor=actor)
    return Decision(verdict.granted, verdict.reason, verdict.key, event)


@functools.lru_cache(maxsize=256)
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def _reason(matched: _Match | None, moment: datetime, tz: ZoneInfo) -> str:
    if matched is None:
        return DenyReason.UNKNOWN_CREDENTIAL
    if matched.deactivated_at is not None and matched.deactivated_reason == DenyReason.BADGE_LOST:
        return DenyReason.BADGE_LOST  # first: someone may be holding a lost badge
    key = matched.key
    status = key.status_at(moment)
    if key.parent is not None and status == KeyStatus.ACTIVE:
        status = key.parent.status_at(moment)  # a key issued under an organization's key
    if status == KeyStatus.REVOKED:
        return DenyReason.REVOKED
    if not matched.active or matched.deactivated_at is not None:
        return DenyReason.CREDENTIAL_DEACTIVATED
    if status == KeyStatus.SCHEDULED:
        return DenyReason.NOT_YET_VALID
    if status == KeyStatus.EXPIRED:
        return DenyReason.EXPIRED
    if not schedules.allows(key.schedule, moment, tz):
        return DenyReason.OUTSIDE_SCHEDULE
    return ""
