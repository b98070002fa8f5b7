"""Small read helpers the web UI needs and the domain modules do not offer
(yet). Each one is scoped by the policy or by an object a service has
already authorised; none of them changes anything."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime

from django.db.models import (
    Case,
    Count,
    F,
    IntegerField,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Sum,
    Value,
    When,
)
from django.db.models.functions import Coalesce

from doorkeep import policy
from doorkeep.accounts.models import ApiToken, Organization, User
from doorkeep.badges.models import Badge, BadgeRequest, RequestStatus
from doorkeep.events.models import Event
from doorkeep.installations.models import OPEN as OPEN_INSTALLATION
from doorkeep.installations.models import Installation, InstallationStatus
from doorkeep.keys.models import Key, Person
from doorkeep.keys.sharing import registered_organizations
from doorkeep.licensing import state as licence_state
from doorkeep.licensing.models import KeyAllotment, Period
from doorkeep.licensing.state import LicenceState
from doorkeep.locks.models import Lock
from doorkeep.properties.models import Entry, Property
from doorkeep.properties.models import zone_of as zone_of  # for the views
from doorkeep.residents.models import LoginRequest, LoginRequestStatus, Residency


def organizations_for(user: User, action: policy.Action) -> list[Organization]:
    return list(policy.organizations(user, action).order_by("name", "id"))


def properties_for(user: User) -> QuerySet[Property]:
    """The properties the user can see (a collaborator scoped to a site: that
    site), with their entries."""
    return (
        policy.properties(user)
        .select_related("organization")
        .prefetch_related("entries")
        .order_by("name", "id")
    )


def entries_for(user: User, action: policy.Action) -> QuerySet[Entry]:
    """The entries of the properties on which the user may do ``action``."""
    return (
        Entry.objects.filter(policy.scope(user, action, organization="property__organization"))
        .select_related("property")
        .order_by("property__name", "property_id", "name", "id")
    )


def lock_event_log(lock: Lock, *, site: int | None = None) -> QuerySet[Event]:
    """A lock's events in its owner's log. The caller got ``lock`` from
    locks.services.get_lock (so it has an owner). With ``site`` (for a
    collaborator scoped to it), only the events at that site: not those of
    the lock's time at another one."""
    if lock.organization_id is None:
        return Event.objects.none()
    events = Event.objects.filter(lock=lock, organization_id=lock.organization_id)
    return events if site is None else events.filter(property_id=site)


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
    visible = policy.scope(user, organization="lock__organization", site="lock__entry__property_id")
    periods: dict[int, list[Period]] = {}
    for period in Period.objects.filter(visible).order_by():
        periods.setdefault(period.lock_id, []).append(period)
    purchased = dict(
        KeyAllotment.objects.filter(visible)
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


# --- residents and badges ----------------------------------------------------------


def residencies_from(prop: Property, day: date) -> list[Residency]:
    """The site's residents on ``day`` and those who move in later: every
    residency not ended by then. The caller got ``prop`` from get_property."""
    return list(
        Residency.objects.filter(unit__property=prop)
        .filter(Q(move_out__isnull=True) | Q(move_out__gte=day))
        .select_related("unit", "person")
        .order_by("unit__label", "move_in", "id")
    )


def badges_of_user(user: User) -> list[Badge]:
    """The badges of the people the account is (one per organization), newest first."""
    return list(Badge.objects.filter(person__user=user).select_related("person"))


def badge_requests_of_user(user: User) -> list[BadgeRequest]:
    """The badge requests of the people the account is, newest first."""
    return list(
        BadgeRequest.objects.filter(person__user=user).select_related(
            "property", "badge", "parking_space"
        )
    )


def open_badge_requests(limit: int) -> list[BadgeRequest]:
    """The platform operator's queue: the requests not active nor refused yet,
    oldest first; at most ``limit``. Only for a platform operator (the caller
    checked)."""
    return list(
        BadgeRequest.objects.exclude(status__in=(RequestStatus.ACTIVE, RequestStatus.REFUSED))
        .select_related("person", "property", "parking_space", "badge", "replaces")
        .order_by("created_at", "id")[:limit]
    )


def units_of_requests(requests: Sequence[BadgeRequest]) -> dict[int, str]:
    """Request id → the label of the unit its person lives in at its site (on
    the site's day, or the latest residency there), in one query."""
    if not requests:
        return {}
    rows: dict[tuple[int, int], list[Residency]] = {}
    for residency in (
        Residency.objects.filter(
            person_id__in={r.person_id for r in requests},
            unit__property_id__in={r.property_id for r in requests},
        )
        .select_related("unit")
        .order_by("move_in", "id")
    ):
        rows.setdefault((residency.person_id, residency.unit.property_id), []).append(residency)
    found: dict[int, str] = {}
    for request in requests:
        candidates = rows.get((request.person_id, request.property_id), [])
        if not candidates:
            continue
        today = datetime.now(zone_of(request.property)).date()
        current = [r for r in candidates if r.includes(today)]
        found[request.pk] = (current or candidates)[-1].unit.label
    return found


# --- portal logins and charging-station installations ------------------------------


def waiting_login_requests(prop: Property) -> list[LoginRequest]:
    """The site's confirmed login requests waiting for a decision, oldest
    first. The caller got ``prop`` from get_property for MANAGE_RESIDENTS."""
    return list(
        prop.login_requests.filter(status=LoginRequestStatus.PENDING)
        .select_related("unit")
        .order_by("confirmed_at", "id")
    )


def decided_login_requests(prop: Property, limit: int) -> list[LoginRequest]:
    """The site's most recently decided login requests."""
    return list(
        prop.login_requests.filter(
            status__in=(LoginRequestStatus.APPROVED, LoginRequestStatus.REFUSED)
        )
        .select_related("unit", "decided_by")
        .order_by("-decided_at", "-id")[:limit]
    )


_INSTALLATION_RELATED = ("property", "parking_space__unit", "person")


def installations_of_site(prop: Property, limit: int) -> list[Installation]:
    """The site's installations, open ones first, newest first. The caller
    got ``prop`` from get_property for MANAGE_RESIDENTS."""
    return list(
        prop.installations.select_related(*_INSTALLATION_RELATED).order_by(
            Case(When(status__in=OPEN_INSTALLATION, then=Value(0)), default=Value(1)),
            "-created_at",
            "-id",
        )[:limit]
    )


def installations_of_user(user: User) -> list[Installation]:
    """The installations the account asked for (as the people it is), newest first."""
    return list(
        Installation.objects.filter(person__user=user).select_related(*_INSTALLATION_RELATED)
    )


def handed_over_installations(limit: int) -> list[Installation]:
    """The platform operator's installations: handed to the platform and not
    installed yet, the oldest handed first. Only for a platform operator (the
    caller checked)."""
    return list(
        Installation.objects.filter(
            status__in=(
                InstallationStatus.ORGANIZING,
                InstallationStatus.COORDINATING,
                InstallationStatus.SCHEDULED,
            )
        )
        .select_related(*_INSTALLATION_RELATED)
        .order_by("handed_at", "id")[:limit]
    )
