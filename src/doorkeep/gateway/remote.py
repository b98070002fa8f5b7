"""Remote unlock (R25, E2): a person opens an entry from the app or the API."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import connection
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from doorkeep import policy
from doorkeep.accounts.models import User
from doorkeep.core.errors import DomainError, NotFound, PermissionDenied
from doorkeep.core.rows import partial
from doorkeep.events.models import DenyReason
from doorkeep.gateway import routing
from doorkeep.gateway.protocol import MAX_ID
from doorkeep.gateway.services import unlock_outcome
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
_LOCK_SQL = """
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
       ) AS held,
       EXISTS (
           SELECT 1 FROM guests_guestkey g
           JOIN keys_key k ON k.id = g.key_id
           JOIN keys_person pe ON pe.id = k.person_id
           WHERE k.lock_id = l.id AND pe.user_id = %(user)s AND k.revoked_at IS NULL
       ) AS guest
FROM locks_lock l
JOIN properties_entry e ON e.id = l.entry_id
JOIN properties_property p ON p.id = e.property_id
WHERE l.entry_id = %(entry)s AND l.organization_id IS NOT NULL
ORDER BY keyed DESC, l.id
LIMIT 1
"""


def _find_lock(entry_id: int, user_id: int) -> tuple[Lock | None, bool, bool]:
    """The lock to open at ``entry_id`` with its entry and property (other
    fields are deferred: they load if something reads them), whether the user
    ever held a phone key to it, and whether their live key there is a guest's."""
    with connection.cursor() as cursor:
        cursor.execute(_LOCK_SQL, {"user": user_id, "entry": entry_id})
        row = cursor.fetchone()
    if row is None:
        return None, False, False
    lock_id, org_id, entry_pk, entry_name, property_id, prop_org, prop_name, tz = row[:8]
    held, guest = bool(row[9]), bool(row[10])
    prop = partial(Property, id=property_id, organization_id=prop_org, name=prop_name, timezone=tz)
    entry = partial(Entry, id=entry_pk, name=entry_name, property_id=property_id)
    entry.property = prop
    lock = partial(Lock, id=lock_id, organization_id=org_id, entry_id=entry_pk)
    lock.entry = entry
    return lock, held, guest


def remote_unlock(actor: User, entry_id: int, *, timeout: float | None = None) -> Unlocked:
    """Decide with the access decision (phone credential = the actor's account),
    then have the gateway holding the lock open it and wait for the lock's
    acknowledgement. Every attempt is in the event log."""
    timeout = timeout if timeout is not None else float(settings.DOORKEEP_UNLOCK_TIMEOUT)
    if not 0 < entry_id <= MAX_ID:  # no such row; and the database could not take the number
        raise NotFound(_("Entry not found."))
    # One query finds the lock (an entry may have several: the one the actor
    # holds a live phone key to, else the first; the decision says why not),
    # whether the actor ever held a phone key to it, and whether it is a guest's.
    lock, held, guest = _find_lock(entry_id, actor.pk)
    entry = lock.entry if lock is not None else None
    if lock is None or entry is None:
        raise NotFound(_("Entry not found."))
    if not held and not policy.can(actor, policy.Action.VIEW, entry.property.organization_id):
        raise NotFound(_("Entry not found."))
    # A guest may have to verify presence first (R27, R28): refused before
    # the decision, so that nothing is opened and the page says what to do.
    guest_links = presence.guard_unlock(actor, lock) if guest else []
    decision = access.decide(lock, "phone", actor, source="remote", actor=actor)
    if not decision.granted:
        reason = str(_REASONS.get(decision.reason, decision.reason))
        raise AccessDenied(
            _("You cannot open %(entry)s: %(reason)s.") % {"entry": entry.name, "reason": reason}
        )
    request_id = uuid.uuid4().hex
    try:
        routing.send_unlock(lock.pk, request_id, timeout=timeout)
    except DomainError as exc:
        unlock_outcome(lock.pk, False, exc.code, actor.pk, request_id, timezone.now())
        raise
    presence.guest_unlocked(actor, lock, guest_links, request_id)
    return Unlocked(entry.pk, lock.pk, request_id, decision.event.pk)
