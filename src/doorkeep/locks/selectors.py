from __future__ import annotations

from django.db.models import Count, Q, QuerySet

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
