"""Account upgrades: building management, activated by the lock owner (R12),
and organization management, with a prepaid code (R13)."""

from __future__ import annotations

import pytest

from doorkeep.accounts.models import Organization
from doorkeep.core.errors import NotFound, PermissionDenied
from doorkeep.events.models import Event, EventKind
from doorkeep.keys.sharing import registered_organizations
from doorkeep.licensing import codes
from doorkeep.licensing.models import PrepaidCode
from doorkeep.licensing.services import (
    CodeRefused,
    activate_building_management,
    redeem_for_organization,
)


def _org(world) -> Organization:
    return Organization.objects.get(pk=world.org.pk)


# Alice's organization has building management in the world; Charlie's has not.


def test_the_lock_owner_activates_building_management_and_it_is_logged(world, now):
    org = activate_building_management(world.charlie, world.charlie_org.pk)

    assert org.building_management_since == now
    assert Organization.objects.get(pk=world.charlie_org.pk).building_management_since == now
    event = Event.objects.get(kind=EventKind.ACCOUNT_UPGRADED, organization=world.charlie_org)
    assert event.actor_id == world.charlie.pk
    assert "Building management" in event.summary


def test_activating_building_management_again_changes_nothing(world, travel, now):
    activate_building_management(world.charlie, world.charlie_org.pk)
    travel(now.replace(year=now.year + 1))

    org = activate_building_management(world.charlie, world.charlie_org.pk)

    assert org.building_management_since == now
    upgrades = Event.objects.filter(kind=EventKind.ACCOUNT_UPGRADED, organization=world.charlie_org)
    assert upgrades.count() == 1


def test_only_a_lock_owner_upgrades_the_account(world):
    Organization.objects.filter(pk=world.org.pk).update(building_management_since=None)
    with pytest.raises(PermissionDenied) as member:
        activate_building_management(world.bob, world.org.pk)
    with pytest.raises(NotFound):
        activate_building_management(world.charlie, world.org.pk)

    assert "Only lock owners can enter prepaid codes and upgrade the account" in (
        member.value.message
    )
    assert _org(world).building_management_since is None


def test_organization_management_comes_with_a_code(world, code, now):
    result = redeem_for_organization(world.alice, world.org.pk, code("ORG-MGMT"))

    assert result.product.sku == "ORG-MGMT"
    assert _org(world).organization_management_since == now
    assert list(registered_organizations()) == [world.org]
    event = Event.objects.get(kind=EventKind.CODE_REDEEMED)
    assert event.organization_id == world.org.pk and event.lock_id is None


def test_a_second_organization_management_code_is_refused_and_not_used(world, code):
    redeem_for_organization(world.alice, world.org.pk, code("ORG-MGMT"))
    second = code("ORG-MGMT")

    with pytest.raises(CodeRefused) as refused:
        redeem_for_organization(world.alice, world.org.pk, second)

    assert (refused.value.code, refused.value.status) == ("already_upgraded", 409)
    row = PrepaidCode.objects.get(digest=codes.digest(codes.normalize(second)))
    assert row.redeemed_at is None


def test_the_unused_second_code_still_upgrades_another_organization(world, code):
    redeem_for_organization(world.alice, world.org.pk, code("ORG-MGMT"))
    second = code("ORG-MGMT")
    with pytest.raises(CodeRefused):
        redeem_for_organization(world.alice, world.org.pk, second)

    redeem_for_organization(world.charlie, world.charlie_org.pk, second)

    assert Organization.objects.get(pk=world.charlie_org.pk).organization_management_since


def test_only_a_lock_owner_enters_an_upgrade_code(world, code):
    plain = code("ORG-MGMT")

    with pytest.raises(PermissionDenied):
        redeem_for_organization(world.bob, world.org.pk, plain)
    with pytest.raises(NotFound):
        redeem_for_organization(world.charlie, world.org.pk, plain)

    assert _org(world).organization_management_since is None
    assert PrepaidCode.objects.get().redeemed_at is None
