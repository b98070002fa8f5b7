"""Remote unlock (R25, E2): a person opens an entry from the app or the API."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from doorkeep import policy
from doorkeep.accounts.models import User
from doorkeep.core.errors import DomainError, NotFound, PermissionDenied
from doorkeep.core.rows import partial
from doorkeep.events.models import UNLOCK_OUTCOMES, DenyReason, EventKind
from doorkeep.gateway import routing
from doorkeep.gateway.protocol import MAX_ID
from doorkeep.guests import presence
from doorkeep.keys import access
from doorkeep.keys.models import KeyCredential
from doorkeep.locks.models import Lock
from doorkeep.properties.models import Entry, Property


@dataclass(frozen=True)
class Unlocked:
    entry_id: int
    lock_id: int
    request_id: str
    event_id: int
    lock_ids: tuple[int, ...] = ()  # every lock that opened (lock_id is the first)


class AccessDenied(PermissionDenied):
    code = "access_denied"


_REASONS: dict[str, Any] = {
    DenyReason.UNKNOWN_CREDENTIAL: gettext_lazy("you have no phone key for this entry"),
    DenyReason.REVOKED: gettext_lazy("your key was taken back"),
    DenyReason.CREDENTIAL_DEACTIVATED: gettext_lazy("your phone credential is switched off"),
    DenyReason.NOT_YET_VALID: gettext_lazy("your key is not valid yet"),
    DenyReason.EXPIRED: gettext_lazy("your key has expired"),
    DenyReason.OUTSIDE_SCHEDULE: gettext_lazy("your key does not open at this time of the week"),
}


def entries_for(user: User) -> list[Entry]:
    """Entries the user may try to open by phone: where they hold a phone key."""
    lock_ids = KeyCredential.objects.filter(
        kind="phone", active=True, key__person__user=user, key__revoked_at__isnull=True
    ).values_list("lock_id", flat=True)
    return list(
        Entry.objects.filter(locks__id__in=lock_ids, locks__organization__isnull=False)
        .select_related("property")
        .distinct()
        .order_by("property__name", "name")
    )


# Written out by hand: the ORM spends longer building this query (three
# EXISTS subqueries) than the database answering it, and remote unlock is the
# API's hottest call (bench/gateway_unlock.py).
_LOCKS_SQL = """
SELECT l.id, l.organization_id, l.entry_id, e.name, e.property_id,
       p.organization_id, p.name, p.timezone,
       EXISTS (
           SELECT 1 FROM keys_keycredential kc
           JOIN keys_key k ON k.id = kc.key_id
           JOIN keys_person pe ON pe.id = k.person_id
           WHERE kc.lock_id = l.id AND kc.kind = 'phone' AND pe.user_id = %(user)s
             AND kc.active AND k.revoked_at IS NULL AND k.lock_owner_id = l.organization_id
       ) AS keyed,
       EXISTS (
           SELECT 1 FROM keys_keycredential kc
           JOIN keys_key k ON k.id = kc.key_id
           JOIN keys_person pe ON pe.id = k.person_id
           WHERE kc.lock_id = l.id AND kc.kind = 'phone' AND pe.user_id = %(user)s
             AND k.lock_owner_id = l.organization_id
       ) AS held,
       EXISTS (
           SELECT 1 FROM guests_guestkey g
           JOIN keys_key k ON k.id = g.key_id
           JOIN keys_person pe ON pe.id = k.person_id
           WHERE k.lock_id = l.id AND pe.user_id = %(user)s AND k.revoked_at IS NULL
             AND k.lock_owner_id = l.organization_id
       ) AS guest
FROM locks_lock l
JOIN properties_entry e ON e.id = l.entry_id
JOIN properties_property p ON p.id = e.property_id
WHERE l.entry_id = %(entry)s AND l.organization_id IS NOT NULL
ORDER BY keyed DESC, held DESC, l.id
LIMIT 50
"""


@dataclass(frozen=True)
class _Found:
    """A lock of the entry (its entry and property loaded, other fields
    deferred), and what the actor holds to it."""

    lock: Lock
    keyed: bool  # a live phone key
    held: bool  # a phone key, live or not
    guest: bool  # a live guest key


def _find_locks(entry_id: int, user_id: int) -> list[_Found]:
    """The registered locks at ``entry_id``, those the user holds a live phone
    key to first, then those they ever held one to."""
    with connection.cursor() as cursor:
        cursor.execute(_LOCKS_SQL, {"user": user_id, "entry": entry_id})
        rows = cursor.fetchall()
    if not rows:
        return []
    _l, _o, entry_pk, entry_name, property_id, prop_org, prop_name, tz = rows[0][:8]
    prop = partial(Property, id=property_id, organization_id=prop_org, name=prop_name, timezone=tz)
    entry = partial(Entry, id=entry_pk, name=entry_name, property_id=property_id)
    entry.property = prop
    found = []
    for row in rows:
        lock = partial(Lock, id=row[0], organization_id=row[1], entry_id=entry_pk)
        lock.entry = entry
        found.append(_Found(lock, bool(row[8]), bool(row[9]), bool(row[10])))
    return found


# The failure an attempt reports when no lock opened: the most telling one.
_TELLING = ("lock_refused", "lock_timeout", "lock_offline")
MIN_WAIT = 0.5  # seconds: a lock with less time left than this is not asked

_UNLOCK_FAILURES: dict[str, Any] = {
    "lock_offline": gettext_lazy("the lock is offline"),
    "lock_timeout": gettext_lazy("the lock did not answer in time"),
    "lock_refused": gettext_lazy("the lock refused"),
}


# The data of a remote attempt the rule refused: nothing was sent to a lock.
_DENIED: dict[str, object] = {"decision": "denied", "outcome": "not_sent"}


@dataclass(frozen=True)
class _Sent:
    lock: Lock
    verdict: access.Verdict
    request_id: str
    error: DomainError | None  # None: the lock opened

    @property
    def outcome(self) -> str:
        return "opened" if self.error is None else UNLOCK_OUTCOMES.get(self.error.code, "offline")


def remote_unlock(
    actor: User, entry_id: int, *, timeout: float | None = None, staff: bool = False
) -> Unlocked:
    """Decide with the access decision (phone credential = the actor's
    account), then have the gateways holding the entry's locks open them and
    wait for the locks' acknowledgements. An entry may have several locks: the
    command goes to each that the actor's key opens, and the unlock fails only
    when none of them opened. ``staff``: an owner or building manager opening
    from the lock page, without a phone key of their own (policy
    OPEN_ENTRIES). Each attempt is one event, written once the locks answered:
    the person, the decision and what the lock did."""
    timeout = timeout if timeout is not None else float(settings.DOORKEEP_UNLOCK_TIMEOUT)
    if not 0 < entry_id <= MAX_ID:  # no such row; and the database could not take the number
        raise NotFound(_("Entry not found."))
    found = _find_locks(entry_id, actor.pk)
    if not found:
        raise NotFound(_("Entry not found."))
    entry = found[0].lock.entry
    assert entry is not None
    org_id = entry.property.organization_id
    if staff:
        policy.require(
            actor,
            policy.Action.OPEN_ENTRIES,
            org_id,
            what=_("Entry"),
            property_id=entry.property_id,
        )
        moment = timezone.now()
        chosen = [(f.lock, access.Verdict(True, "", None, moment)) for f in found]
        return _send(actor, entry, chosen, [], timeout, staff=True)
    if not any(f.held for f in found) and not policy.can(actor, policy.Action.VIEW, org_id):
        raise NotFound(_("Entry not found."))
    # A guest may have to verify presence first (R27, R28): refused before
    # the decision, so that nothing is opened and the page says what to do.
    guest_lock = next((f.lock for f in found if f.guest), None)
    guest_links = presence.guard_unlock(actor, guest_lock) if guest_lock is not None else []
    candidates = [f.lock for f in found if f.keyed] or [found[0].lock]
    verdicts = [(lock, access.judge(lock, "phone", actor)) for lock in candidates]
    chosen = [(lock, verdict) for lock, verdict in verdicts if verdict.granted]
    if not chosen:
        lock, verdict = verdicts[0]
        access.write(lock, "phone", verdict, source="remote", actor=actor, data=_DENIED)
        reason = str(_REASONS.get(verdict.reason, verdict.reason))
        raise AccessDenied(
            _("You cannot open %(entry)s: %(reason)s.") % {"entry": entry.name, "reason": reason}
        )
    return _send(actor, entry, chosen, guest_links, timeout)


def _ask_each(chosen: list[tuple[Lock, Any]], timeout: float) -> list[_Sent]:
    """Ask each lock in turn; all together get at most twice ``timeout``."""
    sent = []
    deadline = time.monotonic() + 2 * timeout
    for lock, verdict in chosen:
        request_id = uuid.uuid4().hex
        left = min(timeout, deadline - time.monotonic())
        if left < MIN_WAIT * min(timeout, 1.0):
            late = routing.LockTimeout(_("Time ran out before this lock was asked."))
            sent.append(_Sent(lock, verdict, request_id, late))
            continue
        try:
            routing.send_unlock(lock.pk, request_id, timeout=left)
        except DomainError as exc:  # offline (503), no answer (504), refused (409)
            sent.append(_Sent(lock, verdict, request_id, exc))
        else:
            sent.append(_Sent(lock, verdict, request_id, None))
    return sent


def _send(
    actor: User,
    entry: Entry,
    chosen: list[tuple[Lock, access.Verdict]],
    guest_links: list[Any],
    timeout: float,
    *,
    staff: bool = False,
) -> Unlocked:
    """Send the command to each chosen lock, one after the other (a lock that
    is offline answers at once), and write the attempt's one event. All of
    them together get at most twice ``timeout``: a silent lock costs its
    timeout and the next one is still asked, but an entry of many silent locks
    cannot hold the request (and the worker's thread) for minutes; a lock
    reached after that is not asked (no answer)."""
    sent = _ask_each(chosen, timeout)
    opened = [s for s in sent if s.error is None]
    if opened:
        main = opened[0]
    else:
        main = min(sent, key=lambda s: _TELLING.index(s.error.code) if s.error else 0)
    data: dict[str, object] = {
        "decision": "granted",
        "outcome": main.outcome,
        "request_id": main.request_id,
    }
    if len(sent) > 1:
        data["locks"] = [
            {"lock_id": s.lock.pk, "outcome": s.outcome, "request_id": s.request_id} for s in sent
        ]
    if staff:
        data["by"] = "staff"
    summary: str | None = None  # the key holder's name
    if staff:  # no key: the person who opened (their name, else their email)
        summary = _("Opened from the lock page by %(name)s") % {"name": actor.get_full_name()}
    event_kind = EventKind.ACCESS_GRANTED
    links = guest_links if main.verdict.key is not None else []
    if main.error is not None:
        event_kind = EventKind.UNLOCK_FAILED
        failure = _UNLOCK_FAILURES.get(main.error.code, main.error.code)
        summary = _("Remote unlock failed: %(reason)s") % {"reason": failure}
    elif links:
        event_kind = EventKind.GUEST_UNLOCKED
        summary, extra = presence.guest_attempt(actor, main.lock, links)
        data |= extra
    with transaction.atomic():
        event = access.write(
            main.lock,
            "" if staff else "phone",
            main.verdict,
            source="remote",
            actor=actor,
            event_kind=event_kind,
            reason=main.error.code if main.error is not None else "",
            summary=summary,
            data=data,
        )
        if main.error is None and links:
            presence.guest_unlocked(actor, main.lock, links, event.pk)
    if main.error is not None:
        raise main.error
    return Unlocked(
        entry.pk, main.lock.pk, main.request_id, event.pk, tuple(s.lock.pk for s in opened)
    )
