"""Small read helpers the web UI needs and the domain modules do not offer
(yet). Each one is scoped by the policy or by an object a service has
already authorised; none of them changes anything."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from django.db.models import Count, F, IntegerField, OuterRef, QuerySet, Subquery, Sum, Value
from django.db.models.functions import Coalesce

from doorkeep import policy
from doorkeep.accounts.models import ApiToken, Organization, User
from doorkeep.events.models import Event
from doorkeep.keys.models import Key, Person
from doorkeep.keys.sharing import registered_organizations
from doorkeep.licensing import state as licence_state
from doorkeep.licensing.models import KeyAllotment, Period
from doorkeep.licensing.state import LicenceState
from doorkeep.locks.models import Lock
from doorkeep.properties.models import Entry, Property
from doorkeep.properties.models import zone_of as zone_of  # for the views


def organizations_for(user: User, action: policy.Action) -> list[Organization]:
    return list(policy.organizations(user, action).order_by("name", "id"))


def properties_for(user: User) -> QuerySet[Property]:
    """The properties the user can see, with their entries."""
    return (
        Property.objects.filter(organization__in=policy.organizations(user))
        .select_related("organization")
        .prefetch_related("entries")
        .order_by("name", "id")
    )


def entries_for(user: User, action: policy.Action) -> QuerySet[Entry]:
    """The entries of the organizations in which the user may do ``action``."""
    return (
        Entry.objects.filter(property__organization__in=policy.organizations(user, action))
        .select_related("property")
        .order_by("property__name", "property_id", "name", "id")
    )


def lock_event_log(lock: Lock) -> QuerySet[Event]:
    """A lock's events in its owner's log. The caller got ``lock`` from
    locks.services.get_lock (so it has an owner)."""
    if lock.organization_id is None:
        return Event.objects.none()
    return Event.objects.filter(lock=lock, organization_id=lock.organization_id)


def property_event_log(prop: Property) -> QuerySet[Event]:
    """A property's events. The caller got ``prop`` from get_property."""
    return Event.objects.filter(property=prop, organization_id=prop.organization_id)


def person_in(organization_id: int, person_id: int) -> Person | None:
    return Person.objects.filter(pk=person_id, organization_id=organization_id).first()


def tokens_of(user: User) -> QuerySet[ApiToken]:
    return ApiToken.objects.filter(user=user).order_by(
        F("revoked_at").desc(nulls_first=True), "-created_at", "-id"
    )


# --- licences ---------------------------------------------------------------------


licence_from = licence_state.compute  # the rules live in licensing.state


def licences_for(user: User, locks: Sequence[Lock], at: datetime) -> dict[int, LicenceState]:
    """The licence state of each of ``locks`` (from locks.selectors.locks_for,
    which counts their live keys as ``live_keys``), in two queries whatever the
    number of locks."""
    if not locks:
        return {}
    orgs = policy.organizations(user)
    periods: dict[int, list[Period]] = {}
    for period in Period.objects.filter(lock__organization__in=orgs).order_by():
        periods.setdefault(period.lock_id, []).append(period)
    purchased = dict(
        KeyAllotment.objects.filter(lock__organization__in=orgs)
        .order_by()
        .values("lock_id")
        .annotate(n=Sum("keys"))
        .values_list("lock_id", "n")
    )
    return {
        lock.pk: licence_from(
            periods.get(lock.pk, []),
            purchased=purchased.get(lock.pk) or 0,
            issued=getattr(lock, "live_keys", 0),
            at=at,
        )
        for lock in locks
    }


# --- keys --------------------------------------------------------------------------


def with_keys_under(keys: QuerySet[Key]) -> QuerySet[Key]:
    """Annotate each key with ``keys_under``: how many live keys were issued
    under it (non-zero only for an organization's key). A subquery, so the
    list stays one query."""
    under = (
        Key.objects.filter(parent=OuterRef("pk"), revoked_at__isnull=True)
        .order_by()
        .values("parent")
        .annotate(n=Count("pk"))
        .values("n")
    )
    return keys.annotate(
        keys_under=Coalesce(Subquery(under, output_field=IntegerField()), Value(0))
    )


def organizations_to_receive_keys(exclude_id: int | None, limit: int) -> list[Organization]:
    """Organizations a lock owner can issue a key to (those with organization
    management), except the owner's own; at most ``limit`` + 1, so the caller
    can tell that there are too many to list."""
    orgs = registered_organizations()
    if exclude_id is not None:
        orgs = orgs.exclude(pk=exclude_id)
    return list(orgs[: limit + 1])
