"""What every page's navigation needs to know about the signed-in user, read
only when a template asks: at most one query beyond the roles the view has
already read."""

from __future__ import annotations

from functools import cached_property

from django.db.models import Exists, F, OuterRef, Q
from django.http import HttpRequest
from django.utils import timezone

from doorkeep import policy
from doorkeep.accounts.models import User


class Roles:
    def __init__(self, user: User) -> None:
        self.user = user

    @cached_property
    def member(self) -> bool:
        """Belongs to an organization: sees locks, upgrades, tokens."""
        return policy.is_member(self.user)

    @cached_property
    def _keys_and_shares(self) -> dict[str, bool]:
        from doorkeep.guests.models import Invitation, InvitationStatus
        from doorkeep.keys.models import Key

        own_keys = Key.objects.filter(
            person__user=OuterRef("pk"),
            revoked_at__isnull=True,
            lock__organization__isnull=False,
            lock_owner_id=F("lock__organization_id"),
            guest_links__isnull=True,
        ).filter(Q(valid_until__isnull=True) | Q(valid_until__gt=timezone.now()))
        shares = Invitation.objects.filter(guest=OuterRef("pk"), status=InvitationStatus.ACCEPTED)
        row = (
            User.objects.filter(pk=self.user.pk)
            .annotate(resident=Exists(own_keys), guest=Exists(shares))
            .values("resident", "guest")
            .first()
        )
        return row or {"resident": False, "guest": False}

    @property
    def resident(self) -> bool:
        """Holds a key of their own somewhere: may invite guests."""
        return self._keys_and_shares["resident"]

    @property
    def guest(self) -> bool:
        return self._keys_and_shares["guest"]


def roles(request: HttpRequest) -> dict[str, object]:
    user = getattr(request, "user", None)
    return {"roles": Roles(user)} if isinstance(user, User) else {}
