"""Remote unlock (R25, E2): a person opens an entry from the app or the API."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db.models import Exists, OuterRef
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from doorkeep import policy
from doorkeep.accounts.models import User
from doorkeep.core.errors import DomainError, NotFound, PermissionDenied
from doorkeep.events.models import DenyReason
from doorkeep.gateway import routing
from doorkeep.gateway.services import unlock_outcome
from doorkeep.guests import presence
from doorkeep.guests.models import GuestKey
from doorkeep.keys import access
from doorkeep.keys.models import KeyCredential
from doorkeep.locks.models import Lock
from doorkeep.properties.models import Entry


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


def remote_unlock(actor: User, entry_id: int, *, timeout: float | None = None) -> Unlocked:
    """Decide with the access decision (phone credential = the actor's account),
    then have the gateway holding the lock open it and wait for the lock's
    acknowledgement. Every attempt is in the event log."""
    timeout = timeout if timeout is not None else float(settings.DOORKEEP_UNLOCK_TIMEOUT)
    # One query finds the lock (an entry may have several: the one the actor
    # holds a live phone key to, else the first; the decision says why not),
    # whether the actor ever held a phone key to it, and whether it is a guest's.
    mine = KeyCredential.objects.filter(
        lock_id=OuterRef("pk"), kind="phone", key__person__user=actor
    )
    keyed = mine.filter(
        active=True, key__revoked_at__isnull=True, key__lock_owner_id=OuterRef("organization_id")
    )
    as_guest = GuestKey.objects.filter(
        key__lock_id=OuterRef("pk"), key__person__user=actor, key__revoked_at__isnull=True
    )
    lock = (
        Lock.objects.select_related("entry__property")
        .filter(entry_id=entry_id, organization__isnull=False)
        .annotate(keyed=Exists(keyed), held=Exists(mine), guest=Exists(as_guest))
        .order_by("-keyed", "pk")
        .first()
    )
    entry = lock.entry if lock is not None else None
    if lock is None or entry is None:
        raise NotFound(_("Entry not found."))
    if not lock.held and not policy.can(actor, policy.Action.VIEW, entry.property.organization_id):
        raise NotFound(_("Entry not found."))
    # A guest may have to verify presence first (R27, R28): refused before
    # the decision, so that nothing is opened and the page says what to do.
    guest_links = presence.guard_unlock(actor, lock) if lock.guest else []
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
