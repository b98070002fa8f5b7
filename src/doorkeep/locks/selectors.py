from __future__ import annotations

from django.db.models import Count, Q, QuerySet
from django.utils.translation import gettext as _

from doorkeep import policy
from doorkeep.accounts.models import User
from doorkeep.locks.models import Lock


def locks_for(user: User, *, q: str = "", property_id: int | None = None) -> QuerySet[Lock]:
    """The registered locks the user can see, with their live-key count."""
    locks = (
        Lock.objects.filter(policy.scope(user, site="entry__property_id"))
        .select_related("entry", "entry__property", "organization")
        .annotate(live_keys=Count("keys", filter=Q(keys__revoked_at__isnull=True)))
    )
    if property_id is not None:
        locks = locks.filter(entry__property_id=property_id)
    if q.strip():
        locks = locks.filter(
            Q(name__icontains=q) | Q(serial__icontains=q) | Q(entry__name__icontains=q)
        )
    return locks.order_by("entry__property__name", "name", "serial")


def entry_note(lock: Lock) -> str:
    """What placing ``lock`` at an entry that has other locks means, for the
    answer to registering or moving it; "" when it is the entry's only lock."""
    if lock.entry_id is None or lock.entry is None:
        return ""
    others = (
        Lock.objects.filter(entry_id=lock.entry_id, organization__isnull=False)
        .exclude(pk=lock.pk)
        .count()
    )
    if not others:
        return ""
    return _(
        "%(entry)s now has %(count)d locks. Opening it remotely sends the command to every lock "
        "there that the person's key opens, and succeeds when one of them opens. Keys are per "
        "lock: issue keys on this lock too for those who should open it with it. Guests who "
        "accept an invitation from now on get a key on every lock of the entry."
    ) % {"entry": lock.entry.name, "count": others + 1}
