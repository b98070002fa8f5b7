"""Queries about keys: a lock's keys, searched and filtered, in a bounded
number of queries whatever the number of keys."""

from __future__ import annotations

from django.db.models import F, Prefetch, Q, QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _

from doorkeep.core.errors import InvalidInput
from doorkeep.keys.models import Key, KeyCredential, KeyStatus, Person


def keys_of_lock(lock_id: int, *, q: str = "", status: str = "") -> QuerySet[Key]:
    # Only the keys of the lock's current owner: a lock that changed hands must
    # not show the previous owner's (taken back) keys and their holders.
    keys = Key.objects.filter(lock_id=lock_id, lock_owner_id=F("lock__organization_id"))
    keys = keys.select_related(
        "person", "holder_organization", "parent__holder_organization"
    ).prefetch_related(
        Prefetch(
            "key_credentials",
            queryset=KeyCredential.objects.select_related("credential").order_by("kind"),
        )
    )
    now = timezone.now()
    if status:
        if status == KeyStatus.REVOKED:
            keys = keys.filter(revoked_at__isnull=False)
        elif status == KeyStatus.ACTIVE:
            keys = keys.filter(revoked_at__isnull=True).filter(
                Q(valid_from__isnull=True) | Q(valid_from__lte=now),
                Q(valid_until__isnull=True) | Q(valid_until__gt=now),
            )
        elif status == KeyStatus.SCHEDULED:
            keys = keys.filter(revoked_at__isnull=True, valid_from__gt=now)
        elif status == KeyStatus.EXPIRED:
            keys = keys.filter(revoked_at__isnull=True, valid_until__lte=now)
        elif status == "live":
            keys = keys.filter(revoked_at__isnull=True)
        else:
            raise InvalidInput(
                _("Status must be active, scheduled, expired, revoked or live."),
                code="invalid_status",
            )
    q = q.strip()
    if q:
        keys = keys.filter(
            Q(person__name__icontains=q)
            | Q(person__email__icontains=q)
            | Q(holder_organization__name__icontains=q)
            | Q(note__icontains=q)
            | Q(key_credentials__credential__display__icontains=q.replace(":", "").upper())
        ).distinct()
    return keys.order_by("person__name", "-issued_at", "-id")


def live_key_count(lock_id: int) -> int:
    return Key.objects.filter(lock_id=lock_id, revoked_at__isnull=True).count()


def people_of(organization_id: int, q: str = "") -> QuerySet[Person]:
    people = Person.objects.filter(organization_id=organization_id)
    if q.strip():
        people = people.filter(Q(name__icontains=q) | Q(email__icontains=q))
    return people.order_by("name", "id")


def get_key(actor: object, key_id: int) -> Key:
    """A key, for the lock owner's organization, or, for a key issued under an
    organization's key, for that organization too."""
    from doorkeep import policy
    from doorkeep.core.errors import NotFound

    key = (
        Key.objects.select_related("person", "lock__entry", "holder_organization", "parent")
        .prefetch_related(
            Prefetch("key_credentials", queryset=KeyCredential.objects.select_related("credential"))
        )
        .filter(pk=key_id)
        .first()
    )
    if key is None or key.lock.organization_id != key.lock_owner_id:
        raise NotFound(_("Key not found."), code="key_not_found")
    if key.organization_id != key.lock_owner_id and policy.can(
        actor,  # type: ignore[arg-type]
        policy.Action.VIEW_KEYS,
        key.organization_id,
    ):
        return key
    site = key.lock.entry.property_id if key.lock.entry is not None else None
    policy.require(
        actor,  # type: ignore[arg-type]
        policy.Action.VIEW_KEYS,
        key.lock_owner_id,
        what=_("Key"),
        property_id=site,
    )
    return key


def keys_under(parent_key_id: int) -> QuerySet[Key]:
    """The keys an organization issued under its key to a lock."""
    return (
        Key.objects.filter(parent_id=parent_key_id)
        .select_related("person")
        .prefetch_related(
            Prefetch(
                "key_credentials",
                queryset=KeyCredential.objects.select_related("credential").order_by("kind"),
            )
        )
        .order_by("person__name", "-issued_at", "-id")
    )
