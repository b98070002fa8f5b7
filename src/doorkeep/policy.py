"""Authorization, in one place.

Every service takes the acting user and asks this module before it reads or
changes anything. Objects of an organization the user is not a member of do
not exist for that user: they raise NotFound (HTTP 404), never a 403 that
would confirm they exist. A member who can see an object but lacks the role
for an action gets PermissionDenied (HTTP 403) with the reason.
"""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING

from django.db.models import QuerySet
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop as N_

from doorkeep.accounts.models import Membership, Organization, Role, User
from doorkeep.core.errors import NotFound, PermissionDenied

if TYPE_CHECKING:
    from django.contrib.auth.models import AnonymousUser


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


_ALLOWED: dict[Action, frozenset[str]] = {
    Action.VIEW: frozenset(
        {Role.LOCK_OWNER, Role.BUILDING_MANAGER, Role.MEMBER, Role.PLATFORM_OPERATOR}
    ),
    Action.MANAGE_PROPERTIES: frozenset({Role.LOCK_OWNER, Role.BUILDING_MANAGER}),
    Action.REGISTER_LOCKS: frozenset({Role.LOCK_OWNER}),
    Action.MANAGE_KEYS: frozenset({Role.LOCK_OWNER, Role.BUILDING_MANAGER}),
    Action.VIEW_KEYS: frozenset({Role.LOCK_OWNER, Role.BUILDING_MANAGER}),
    Action.VIEW_EVENTS: frozenset({Role.LOCK_OWNER, Role.BUILDING_MANAGER}),
    Action.BUY_LICENCES: frozenset({Role.LOCK_OWNER}),
    Action.MANAGE_WEBHOOKS: frozenset({Role.LOCK_OWNER, Role.BUILDING_MANAGER}),
    Action.MANAGE_RESIDENTS: frozenset({Role.LOCK_OWNER, Role.BUILDING_MANAGER}),
    Action.MANAGE_BADGES: frozenset({Role.LOCK_OWNER, Role.BUILDING_MANAGER}),
    Action.REACTIVATE_BADGES: frozenset({Role.LOCK_OWNER}),
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
}


def role_in(user: User | AnonymousUser, organization_id: int | None) -> str | None:
    """The user's role in the organization, or None when not a member."""
    if organization_id is None or not user.is_authenticated or not user.is_active:
        return None
    cache: dict[int, str] | None = getattr(user, "_doorkeep_roles", None)
    if cache is None:
        cache = dict(Membership.objects.filter(user=user).values_list("organization_id", "role"))
        setattr(user, "_doorkeep_roles", cache)  # noqa: B010
    return cache.get(organization_id)


def is_member(user: User | AnonymousUser) -> bool:
    """Whether the user belongs to any organization (uses the roles cache)."""
    if not user.is_authenticated:
        return False
    role_in(user, -1)  # loads the cache
    return bool(getattr(user, "_doorkeep_roles", None))


def forget_roles(user: User | AnonymousUser) -> None:
    """Drop the per-request cache of roles after memberships change."""
    if hasattr(user, "_doorkeep_roles"):
        delattr(user, "_doorkeep_roles")


def can(user: User | AnonymousUser, action: Action, organization_id: int | None) -> bool:
    role = role_in(user, organization_id)
    return role is not None and role in _ALLOWED[action]


def require(
    user: User | AnonymousUser, action: Action, organization_id: int | None, *, what: str
) -> None:
    """Raise NotFound when the user is not in the organization (``what`` names
    the object, as in "Lock not found"), PermissionDenied when their role does
    not allow ``action``."""
    role = role_in(user, organization_id)
    if role is None:
        raise NotFound(_("%(what)s not found.") % {"what": what})
    if role not in _ALLOWED[action]:
        raise PermissionDenied(_(_DENIED_MESSAGE[action]))


def organizations(
    user: User | AnonymousUser, action: Action = Action.VIEW
) -> QuerySet[Organization]:
    """The organizations in which the user may do ``action``."""
    if not user.is_authenticated:
        return Organization.objects.none()
    return Organization.objects.filter(
        memberships__user=user, memberships__role__in=_ALLOWED[action]
    ).distinct()


def is_platform_operator(user: User | AnonymousUser) -> bool:
    if not user.is_authenticated:
        return False
    return Membership.objects.filter(
        user=user, role=Role.PLATFORM_OPERATOR, organization__is_platform=True
    ).exists()


def require_platform_operator(user: User | AnonymousUser) -> None:
    if not is_platform_operator(user):
        raise NotFound(_("Not found."))
