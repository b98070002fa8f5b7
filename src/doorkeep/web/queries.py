"""Small read helpers the web UI needs and the domain modules do not offer
(yet). Each one is scoped by the policy or by an object a service has
already authorised; none of them changes anything."""

from __future__ import annotations

from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.db.models import F, QuerySet

from doorkeep import policy
from doorkeep.accounts.models import ApiToken, Organization, User
from doorkeep.events.models import Event
from doorkeep.keys.models import Person
from doorkeep.locks.models import Lock
from doorkeep.properties.models import Entry, Property

UTC_ZONE = ZoneInfo("UTC")


def zone_of(prop: Property | None) -> ZoneInfo:
    """The time zone dates of this property are read and shown in."""
    if prop is None:
        return UTC_ZONE
    try:
        return ZoneInfo(prop.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        return UTC_ZONE


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
