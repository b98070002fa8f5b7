"""What every page's navigation needs to know about the signed-in user, read
only when a template asks: at most one query beyond the roles the view has
already read."""

from __future__ import annotations

from datetime import timedelta
from functools import cached_property

from django.db.models import Exists, F, OuterRef, Q
from django.http import HttpRequest
from django.utils import timezone

from doorkeep import policy
from doorkeep.accounts.models import Membership, Role, User


class Roles:
    def __init__(self, user: User) -> None:
        self.user = user

    @cached_property
    def member(self) -> bool:
        """Belongs to an organization: sees locks, upgrades, tokens."""
        return policy.is_member(self.user)

    @cached_property
    def owner(self) -> bool:
        """A lock owner of an organization: invites its collaborators."""
        return policy.anywhere(self.user, policy.Action.MANAGE_COLLABORATORS)

    @cached_property
    def _keys_and_shares(self) -> dict[str, bool]:
        """What the navigation shows beyond the organizations, in one query."""
        from doorkeep.badges.models import HOLDS_UID, Badge
        from doorkeep.guests.models import Invitation, InvitationStatus
        from doorkeep.keys.models import Key
        from doorkeep.residents.models import Residency

        own_keys = Key.objects.filter(
            person__user=OuterRef("pk"),
            revoked_at__isnull=True,
            lock__organization__isnull=False,
            lock_owner_id=F("lock__organization_id"),
            guest_links__isnull=True,
        ).filter(Q(valid_until__isnull=True) | Q(valid_until__gt=timezone.now()))
        shares = Invitation.objects.filter(guest=OuterRef("pk"), status=InvitationStatus.ACCEPTED)
        # A residency not ended (a day of slack: the sites' days are in their
        # own time zones), or a badge: the resident portal has something for them.
        since = (timezone.now() - timedelta(days=1)).date()
        lives = Residency.objects.filter(person__user=OuterRef("pk")).filter(
            Q(move_out__isnull=True) | Q(move_out__gte=since)
        )
        badges = Badge.objects.filter(person__user=OuterRef("pk"), status__in=HOLDS_UID)
        operates = Membership.objects.filter(
            user=OuterRef("pk"), role=Role.PLATFORM_OPERATOR, organization__is_platform=True
        )
        row = (
            User.objects.filter(pk=self.user.pk)
            .annotate(
                resident=Exists(own_keys),
                guest=Exists(shares),
                portal=Exists(lives) | Exists(badges),
                operator=Exists(operates),
            )
            .values("resident", "guest", "portal", "operator")
            .first()
        )
        return row or {"resident": False, "guest": False, "portal": False, "operator": False}

    @cached_property
    def holds_nothing(self) -> bool:
        """Their organizations (everyone who signs up gets one) hold no
        property or lock, and they collaborate on no site: the locks pages
        have nothing for them."""
        if policy.scoped_sites(self.user):
            return False
        return not (
            policy.organizations(self.user)
            .filter(Q(properties__isnull=False) | Q(locks__isnull=False))
            .exists()
        )

    @property
    def only_guest(self) -> bool:
        """A guest and nothing else (no key of their own, no home at a site,
        not an operator, nothing held): the guest's menus only."""
        return (
            self.guest
            and not (self.resident or self.portal or self.operator)
            and self.holds_nothing
        )

    @property
    def organization_menus(self) -> bool:
        """Locks, My doors, account upgrades, collaborators, API tokens."""
        return (self.member or not self.guest) and not self.only_guest

    @property
    def resident(self) -> bool:
        """Holds a key of their own somewhere: may invite guests."""
        return self._keys_and_shares["resident"]

    @property
    def guest(self) -> bool:
        return self._keys_and_shares["guest"]

    @property
    def portal(self) -> bool:
        """Lives at a site (or holds a badge): the resident portal."""
        return self._keys_and_shares["portal"]

    @property
    def operator(self) -> bool:
        """A platform operator: the badge queue and the installations handed over."""
        return self._keys_and_shares["operator"]


def roles(request: HttpRequest) -> dict[str, object]:
    user = getattr(request, "user", None)
    return {"roles": Roles(user)} if isinstance(user, User) else {}
