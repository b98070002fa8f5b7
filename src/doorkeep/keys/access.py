"""The access decision: may this credential open this lock at this moment?

One function, used by the API, the web UI and (through the gateway) by locks
reporting what they decided. It answers granted or denied with a reason, and
writes an event either way."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from django.db import transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext as _

from doorkeep.accounts.models import User
from doorkeep.core.errors import InvalidInput, NotFound
from doorkeep.events.models import DenyReason, Event, EventKind
from doorkeep.events.services import record
from doorkeep.keys import schedule as schedules
from doorkeep.keys.credentials import presented
from doorkeep.keys.models import CredentialKind, Key, KeyCredential, KeyStatus, Person
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


def _match(lock: Lock, kind: str, value: str | User) -> tuple[KeyCredential | None, str]:
    """The key credential on this lock that matches, live ones first."""
    if kind == CredentialKind.PHONE:
        if not isinstance(value, User):
            raise InvalidInput("A phone credential is the signed-in account.")
        # Any organization's person: a key issued under an organization's key
        # belongs to a person of that organization, not of the lock's owner.
        # The look-up below stays on this lock and its current owner's keys.
        lookups = [str(pk) for pk in Person.objects.filter(user=value).values_list("pk", flat=True)]
    else:
        lookups = [presented(kind, str(value)).lookup]
    if not lookups:
        return None, ""
    matches = (
        # Only the current owner's keys: a lock that changed hands must not
        # match (and name) the previous owner's people.
        KeyCredential.objects.filter(
            lock=lock,
            kind=kind,
            lookup__in=lookups,
            key__lock_owner_id=F("lock__organization_id"),
        )
        .select_related("key", "key__person", "key__parent", "credential")
        .order_by("-active", "-key__issued_at", "-id")
    )
    return next(iter(matches[:1]), None), lookups[0]


def decide(
    lock: Lock,
    kind: str,
    value: str | User,
    *,
    at: datetime | None = None,
    source: str = "platform",
    actor: User | None = None,
) -> Decision:
    """Decide whether ``value`` (a PIN, tag UID, remote serial, or for a phone
    the signed-in User) opens ``lock`` at ``at`` (default: now). Always records
    an access event. A malformed credential is denied, not an error."""
    moment = at or timezone.now()
    tz = ZoneInfo(lock.entry.property.timezone) if lock.entry else _UTC
    property_id = lock.entry.property_id if lock.entry else None
    if lock.organization_id is None:
        raise NotFound(_("Lock not found."))
    reason = ""
    matched: KeyCredential | None = None
    try:
        matched, _lookup = _match(lock, kind, value)
    except InvalidInput:
        reason = DenyReason.MALFORMED_CREDENTIAL
    if not reason:
        reason = _reason(matched, moment, tz)
    key = matched.key if matched else None
    granted = reason == ""
    with transaction.atomic():
        event = record(
            EventKind.ACCESS_GRANTED if granted else EventKind.ACCESS_DENIED,
            organization_id=lock.organization_id,
            lock=lock,
            property_id=property_id,
            person=key.person if key else None,
            key=key,
            actor=actor,
            reason=reason,
            credential_kind=kind if kind in CredentialKind.values else "",
            occurred_at=moment,
            summary=key.holder_name if key else "",
            data={"source": source},
        )
    return Decision(granted, reason, key, event)


def _reason(matched: KeyCredential | None, moment: datetime, tz: ZoneInfo) -> str:
    if matched is None:
        return DenyReason.UNKNOWN_CREDENTIAL
    key = matched.key
    status = key.status_at(moment)
    if key.parent is not None and status == KeyStatus.ACTIVE:
        status = key.parent.status_at(moment)  # a key issued under an organization's key
    if status == KeyStatus.REVOKED:
        return DenyReason.REVOKED
    if not matched.active or matched.credential.deactivated_at is not None:
        return DenyReason.CREDENTIAL_DEACTIVATED
    if status == KeyStatus.SCHEDULED:
        return DenyReason.NOT_YET_VALID
    if status == KeyStatus.EXPIRED:
        return DenyReason.EXPIRED
    if not schedules.allows(key.schedule, moment, tz):
        return DenyReason.OUTSIDE_SCHEDULE
    return ""
