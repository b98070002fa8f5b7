"""What the building management upgrade (R12) unlocks, checked in one place.

Building management is activated by a lock owner under *Account upgrades*, at
no cost (licensing.services.activate_building_management). Without it an
organization still registers locks, adds properties and gives each property
its one entry; these need the upgrade (docs/licensing.md,
docs/decisions/0018-what-building-management-unlocks.md):

- a second entry, and more, at one property;
- building managers (inviting one, or making a member one);
- a guest policy that lets residents share entries with guests;
- entry panels, on which guests verify their presence.

The services ask ``require_building_management`` after the policy has
answered, so an outsider still gets 404 and a member without the role 403
``forbidden``; only a person who could do it otherwise learns of the upgrade.
The gate guards adding, never using or taking away: what an organization
already has keeps working, and it can always remove a panel, switch sharing
off or end a manager's access.
"""

from __future__ import annotations

from django.utils.translation import gettext as _

from doorkeep.accounts.models import Organization
from doorkeep.core.errors import DomainError

BUILDING_MANAGEMENT = "building_management"


class UpgradeRequired(DomainError):
    """The organization needs an account upgrade for this: 403, like
    ``needs_organization_management`` and ``management_ended``; ``details``
    name the upgrade and the organization."""

    status = 403
    code = "needs_building_management"


def has_building_management(organization: Organization | int) -> bool:
    if isinstance(organization, Organization):
        return organization.building_management_since is not None
    return Organization.objects.filter(
        pk=organization, building_management_since__isnull=False
    ).exists()


def require_building_management(organization_id: int, what: str) -> None:
    """Raise UpgradeRequired unless the organization has building management.
    ``what`` names the gated thing, as the start of a sentence ("Installing
    entry panels")."""
    org = Organization.objects.only("name", "building_management_since").get(pk=organization_id)
    if org.building_management_since is not None:
        return
    raise UpgradeRequired(
        _(
            "%(what)s is part of building management, which %(organization)s has not "
            "activated. A lock owner of %(organization)s activates it under Account upgrades, "
            "at once and at no cost."
        )
        % {"what": what, "organization": org.name},
        upgrade=BUILDING_MANAGEMENT,
        organization_id=org.pk,
    )
