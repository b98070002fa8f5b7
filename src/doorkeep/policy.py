"""Authorization, in one place.

Every service takes the acting user and asks this module before it reads or
changes anything. Objects of an organization the user is not a member of do
not exist for that user: they raise NotFound (HTTP 404), never a 403 that
would confirm they exist. A member who can see an object but lacks the role
for an action gets PermissionDenied (HTTP 403) with the reason.

A membership may be scoped to one site (a collaborator's, R41): it grants
its role only to a call that names that site (``property_id``); to any
other call, and to one that names no site, its person is not a member. A
membership past its ``ends_at`` grants nothing. Deny by default: a service
that does not pass the site it works on refuses scoped members.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING

from django.db.models import Q, QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop as N_

from doorkeep.accounts.models import Membership, Organization, Role, User
from doorkeep.core.errors import NotFound, PermissionDenied

if TYPE_CHECKING:
    from django.contrib.auth.models import AnonymousUser

    from doorkeep.properties.models import Property


class Action(StrEnum):
    VIEW = "view"  # see the organization's properties and locks
    MANAGE_PROPERTIES = "manage_properties"  # add and change properties and entries
    REGISTER_LOCKS = "register_locks"  # register, place and remove locks
    MANAGE_KEYS = "manage_keys"  # issue and take back keys
    VIEW_KEYS = "view_keys"  # list keys and their holders
    VIEW_EVENTS = "view_events"  # read and export the event log
    BUY_LICENCES = "buy_licences"  # enter prepaid codes, upgrade the account
    MANAGE_WEBHOOKS = "manage_webhooks"  # add, change and remove webhook endpoints
    MANAGE_RESIDENTS = "manage_residents"  # units, parking spaces, residents, billing mode
    MANAGE_BADGES = "manage_badges"  # register existing badges, report badges lost
    REACTIVATE_BADGES = "reactivate_badges"  # switch a found badge on again
    VIEW_RESIDENTS = "view_residents"  # read a site's residents and badges
    MANAGE_COLLABORATORS = "manage_collaborators"  # invite collaborators, end their access
    MANAGE_STATIONS = "manage_stations"  # register charging stations, send them commands
    VIEW_STATIONS = "view_stations"  # see a site's charging stations and charging sessions
    MANAGE_MACHINES = "manage_machines"  # register laundry machines, change and remove them
    MANAGE_TARIFFS = "manage_tariffs"  # set a site's tariffs and billing settings
    VIEW_BILLING = "view_billing"  # consumption, billing runs, invoices, statements of a site
    FINALIZE_BILLING = "finalize_billing"  # finalize runs, credit notes, payments, bank files
    OPEN_ENTRIES = "open_entries"  # open an entry remotely without a phone key of one's own


_ALLOWED: dict[Action, frozenset[str]] = {
    Action.VIEW: frozenset(
        {
            Role.LOCK_OWNER,
            Role.BUILDING_MANAGER,
            Role.MEMBER,
            Role.PLATFORM_OPERATOR,
            Role.READ_ONLY,
        }
    ),
    Action.MANAGE_PROPERTIES: frozenset({Role.LOCK_OWNER, Role.BUILDING_MANAGER}),
    Action.REGISTER_LOCKS: frozenset({Role.LOCK_OWNER}),
    Action.MANAGE_KEYS: frozenset({Role.LOCK_OWNER, Role.BUILDING_MANAGER}),
    Action.VIEW_KEYS: frozenset({Role.LOCK_OWNER, Role.BUILDING_MANAGER, Role.READ_ONLY}),
    Action.VIEW_EVENTS: frozenset({Role.LOCK_OWNER, Role.BUILDING_MANAGER, Role.READ_ONLY}),
    Action.BUY_LICENCES: frozenset({Role.LOCK_OWNER}),
    Action.MANAGE_WEBHOOKS: frozenset({Role.LOCK_OWNER, Role.BUILDING_MANAGER}),
    Action.MANAGE_RESIDENTS: frozenset({Role.LOCK_OWNER, Role.BUILDING_MANAGER}),
    Action.MANAGE_BADGES: frozenset({Role.LOCK_OWNER, Role.BUILDING_MANAGER}),
    Action.REACTIVATE_BADGES: frozenset({Role.LOCK_OWNER}),
    Action.VIEW_RESIDENTS: frozenset({Role.LOCK_OWNER, Role.BUILDING_MANAGER, Role.READ_ONLY}),
    Action.MANAGE_COLLABORATORS: frozenset({Role.LOCK_OWNER}),
    Action.MANAGE_STATIONS: frozenset({Role.LOCK_OWNER, Role.BUILDING_MANAGER}),
    Action.VIEW_STATIONS: frozenset({Role.LOCK_OWNER, Role.BUILDING_MANAGER, Role.READ_ONLY}),
    Action.MANAGE_MACHINES: frozenset({Role.LOCK_OWNER, Role.BUILDING_MANAGER}),
    Action.MANAGE_TARIFFS: frozenset({Role.LOCK_OWNER, Role.BUILDING_MANAGER}),
    Action.VIEW_BILLING: frozenset({Role.LOCK_OWNER, Role.BUILDING_MANAGER, Role.READ_ONLY}),
    Action.FINALIZE_BILLING: frozenset({Role.LOCK_OWNER}),
    Action.OPEN_ENTRIES: frozenset({Role.LOCK_OWNER, Role.BUILDING_MANAGER}),
}

_DENIED_MESSAGE: dict[Action, str] = {
    Action.VIEW: N_("You are not a member of this organization."),
    Action.MANAGE_PROPERTIES: N_("Only lock owners and building managers can change properties."),
    Action.REGISTER_LOCKS: N_("Only lock owners can register or remove locks."),
    Action.MANAGE_KEYS: N_("Only lock owners and building managers can issue or take back keys."),
    Action.VIEW_KEYS: N_("Only lock owners and building managers can see the keys of a lock."),
    Action.VIEW_EVENTS: N_("Only lock owners and building managers can read the event log."),
    Action.BUY_LICENCES: N_("Only lock owners can enter prepaid codes and upgrade the account."),
    Action.MANAGE_WEBHOOKS: N_("Only lock owners and building managers can manage webhooks."),
    Action.MANAGE_RESIDENTS: N_(
        "Only lock owners and building managers can change units, residents and billing."
    ),
    Action.MANAGE_BADGES: N_("Only lock owners and building managers can manage badges."),
    Action.REACTIVATE_BADGES: N_(
        "Only the owner or the platform operator can switch a found badge on again."
    ),
    Action.VIEW_RESIDENTS: N_(
        "Only lock owners, building managers and read-only collaborators can see the residents "
        "and badges of a site."
    ),
    Action.MANAGE_COLLABORATORS: N_(
        "Only lock owners can invite collaborators and end their access."
    ),
    Action.MANAGE_STATIONS: N_(
        "Only lock owners and building managers can manage charging stations."
    ),
    Action.VIEW_STATIONS: N_(
        "Only lock owners, building managers and read-only collaborators can see the charging "
        "stations and charging sessions of a site."
    ),
    Action.MANAGE_MACHINES: N_(
        "Only lock owners and building managers can manage laundry machines."
    ),
    Action.MANAGE_TARIFFS: N_("Only lock owners and building managers can change tariffs."),
    Action.VIEW_BILLING: N_(
        "Only lock owners, building managers and read-only collaborators can see the "
        "consumption, invoices and statements of a site."
    ),
    Action.FINALIZE_BILLING: N_(
        "Only the owner or the platform operator can finalize invoices and record payments."
    ),
    Action.OPEN_ENTRIES: N_(
        "Only lock owners and building managers can open an entry without a key of their own."
    ),
}


@dataclass(frozen=True, slots=True)
class Grant:
    """One membership as the policy reads it."""

    role: str
    property_id: int | None  # None: every site of the organization
    ends_at: datetime | None  # None: no end

    def live(self, now: datetime) -> bool:
        return self.ends_at is None or now < self.ends_at

    def role_at(self, property_id: int | None, now: datetime) -> str | None:
        """The role this grant gives a call about ``property_id`` (None: a
        call that names no site), or None."""
        if not self.live(now):
            return None
        if self.property_id is not None and self.property_id != property_id:
            return None
        return self.role


def grants(user: User | AnonymousUser) -> dict[int, Grant]:
    """The user's memberships by organization (one per organization), read
    once per user object: the per-request cache every check uses."""
    if not user.is_authenticated or not user.is_active:
        return {}
    cache: dict[int, Grant] | None = getattr(user, "_doorkeep_roles", None)
    if cache is None:
        rows = Membership.objects.filter(user=user).values_list(
            "organization_id", "role", "property_id", "ends_at"
        )
        cache = {org: Grant(role, prop, ends) for org, role, prop, ends in rows}
        setattr(user, "_doorkeep_roles", cache)  # noqa: B010
    return cache


def role_in(
    user: User | AnonymousUser, organization_id: int | None, property_id: int | None = None
) -> str | None:
    """The user's role in the organization for a call about ``property_id``
    (None: about the organization, or no site in particular), or None when
    the user is not a member for that call: no membership, one that ended,
    or one scoped to another site."""
    if organization_id is None or not user.is_authenticated or not user.is_active:
        return None
    grant = grants(user).get(organization_id)
    if grant is None:
        return None
    return grant.role_at(property_id, timezone.now())


def is_member(user: User | AnonymousUser) -> bool:
    """Whether the user belongs to any organization, if only to one of its
    sites, until the membership ends (uses the roles cache)."""
    if not user.is_authenticated:
        return False
    now = timezone.now()
    return any(grant.live(now) for grant in grants(user).values())


def forget_roles(user: User | AnonymousUser) -> None:
    """Drop the per-request cache of roles after memberships change."""
    if hasattr(user, "_doorkeep_roles"):
        delattr(user, "_doorkeep_roles")


def can(
    user: User | AnonymousUser,
    action: Action,
    organization_id: int | None,
    property_id: int | None = None,
) -> bool:
    role = role_in(user, organization_id, property_id)
    return role is not None and role in _ALLOWED[action]


def require(
    user: User | AnonymousUser,
    action: Action,
    organization_id: int | None,
    *,
    what: str,
    property_id: int | None = None,
) -> None:
    """Raise NotFound when the user is not in the organization (``what`` names
    the object, as in "Lock not found"), PermissionDenied when their role does
    not allow ``action``. ``property_id`` names the site the object belongs
    to, for members scoped to one site; without it they are refused."""
    role = role_in(user, organization_id, property_id)
    if role is None:
        raise NotFound(_("%(what)s not found.") % {"what": what})
    if role not in _ALLOWED[action]:
        raise PermissionDenied(_(_DENIED_MESSAGE[action]))


def denial(action: Action) -> str:
    """The reason given to a member whose role does not allow ``action``."""
    return _(_DENIED_MESSAGE[action])


def organizations(
    user: User | AnonymousUser, action: Action = Action.VIEW
) -> QuerySet[Organization]:
    """The organizations in which the user may do ``action`` on everything:
    a live membership for every site (a membership scoped to one site does
    not count; see ``properties`` and ``scope``)."""
    if not user.is_authenticated:
        return Organization.objects.none()
    now = timezone.now()
    return Organization.objects.filter(
        Q(memberships__ends_at__isnull=True) | Q(memberships__ends_at__gt=now),
        memberships__user=user,
        memberships__role__in=_ALLOWED[action],
        memberships__property__isnull=True,
    ).distinct()


def anywhere(user: User | AnonymousUser, action: Action) -> bool:
    """Whether the user may do ``action`` in some organization as a whole (from
    the roles cache: no query once it is read)."""
    now = timezone.now()
    return any(
        grant.property_id is None and grant.live(now) and grant.role in _ALLOWED[action]
        for grant in grants(user).values()
    )


def scoped_sites(user: User | AnonymousUser, action: Action = Action.VIEW) -> list[tuple[int, int]]:
    """(organization, property) of each live membership scoped to one site
    that allows ``action`` (from the roles cache: no query once it is read)."""
    if not user.is_authenticated:
        return []
    now = timezone.now()
    return sorted(
        (org, grant.property_id)
        for org, grant in grants(user).items()
        if grant.property_id is not None and grant.live(now) and grant.role in _ALLOWED[action]
    )


def scope(
    user: User | AnonymousUser,
    action: Action = Action.VIEW,
    *,
    organization: str = "organization",
    site: str = "property_id",
) -> Q:
    """A filter for the rows the user may do ``action`` on: those of the
    organizations where the user may do it everywhere, and those of the
    sites of their scoped memberships. ``organization`` is the lookup from
    the rows to their organization, ``site`` the one to their property's id
    (``"pk"`` for properties themselves)."""
    allowed = Q(**{f"{organization}__in": organizations(user, action)})
    for org, prop in scoped_sites(user, action):
        allowed |= Q(**{f"{organization}_id": org, site: prop})
    return allowed


def properties(user: User | AnonymousUser, action: Action = Action.VIEW) -> QuerySet[Property]:
    """The properties (sites) on which the user may do ``action``: every
    property of the organizations where they may do it everywhere, and the
    sites of their scoped memberships."""
    from doorkeep.properties.models import Property

    if not user.is_authenticated:
        return Property.objects.none()
    return Property.objects.filter(scope(user, action, site="pk"))


def members(
    organization_id: int, action: Action, property_id: int | None = None
) -> QuerySet[Membership]:
    """The live memberships whose people may do ``action`` in the organization
    about ``property_id`` (None: about the organization as a whole), for
    choosing whom to notify."""
    sites = Q(property__isnull=True)
    if property_id is not None:
        sites |= Q(property_id=property_id)
    return Membership.objects.filter(
        sites,
        Q(ends_at__isnull=True) | Q(ends_at__gt=timezone.now()),
        organization_id=organization_id,
        role__in=_ALLOWED[action],
        user__is_active=True,
    )


def is_platform_operator(user: User | AnonymousUser) -> bool:
    if not user.is_authenticated:
        return False
    return Membership.objects.filter(
        user=user, role=Role.PLATFORM_OPERATOR, organization__is_platform=True
    ).exists()


def require_platform_operator(user: User | AnonymousUser) -> None:
    if not is_platform_operator(user):
        raise NotFound(_("Not found."))
