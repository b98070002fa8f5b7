"""Offers of building management (R12) shown where a page would otherwise
have a form for a feature the organization has not unlocked. The services
refuse the feature itself (licensing.upgrades); this only decides what the
page shows."""

from __future__ import annotations

from dataclasses import dataclass

from doorkeep import policy
from doorkeep.accounts.models import Organization, User
from doorkeep.licensing.upgrades import has_building_management


@dataclass(frozen=True)
class UpgradeOffer:
    org: Organization
    what: str  # the feature, as the start of a sentence: "Several entries per property"
    can_activate: bool  # the user is a lock owner of the organization
    next: str  # where activating returns to
    anchor: str = "upgrade-offer"


def building_management_offer(
    user: User, org: Organization, what: str, next_url: str, *, anchor: str = "upgrade-offer"
) -> UpgradeOffer | None:
    """An offer when ``org`` lacks building management, else None."""
    if has_building_management(org):
        return None
    can_activate = policy.can(user, policy.Action.BUY_LICENCES, org.pk)
    return UpgradeOffer(org, what, can_activate, next_url, anchor)
