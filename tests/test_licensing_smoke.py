from datetime import timedelta

import pytest
from django.utils import timezone

from doorkeep.accounts.services import create_organization, create_user
from doorkeep.keys import access
from doorkeep.keys.services import CredentialSpec, HolderSpec, KeySpec, issue_key, revoke_key
from doorkeep.keys.sharing import issue_key_to_organization
from doorkeep.licensing import services
from doorkeep.licensing.state import ManagementEnded, licence_of


def test_the_whole_licence_story_in_one_walk(world, time_machine):
    start = timezone.now()
    state = licence_of(world.lock.pk)
    assert state.mode == "free"
    assert state.keys_purchased == 25
    _batch, (mgmt,) = services.generate_batch(None, "MGMT-5Y", 1)
    _batch, (option,) = services.generate_batch(None, "ORGS-5Y", 1)
    _batch, (upgrade,) = services.generate_batch(None, "ORG-MGMT", 1)

    # Past the free period: take-back-only.
    time_machine.move_to(start + timedelta(days=95), tick=False)
    assert licence_of(world.lock.pk).mode == "take_back_only"
    with pytest.raises(ManagementEnded):
        issue_key(
            world.alice,
            world.lock.pk,
            KeySpec(HolderSpec(name="X"), [CredentialSpec("pin", "1234")]),
        )

    # A late code restores full management for 5 years from now.
    result = services.redeem_for_lock(world.alice, world.lock.pk, mgmt.lower())
    assert licence_of(world.lock.pk).mode == "active"
    assert (
        result.ends_at is not None and result.ends_at.year == (start + timedelta(days=95)).year + 5
    )
    services.redeem_for_lock(world.alice, world.lock.pk, option)
    assert licence_of(world.lock.pk).option_active

    # Shared management: an organization with organization management.
    dora = create_user("dora@example.com", "long enough pw")
    agency = create_organization(dora, "Dora's Agency")
    services.redeem_for_organization(dora, agency.pk, upgrade)
    org_key = issue_key_to_organization(world.alice, world.lock.pk, agency.pk)
    child = issue_key(
        dora,
        world.lock.pk,
        KeySpec(HolderSpec(name="Eve"), [CredentialSpec("pin", "5555")]),
        parent_key_id=org_key.pk,
    )
    assert child.organization_id == agency.pk
    assert access.decide(world.lock, "pin", "5555").granted
    revoke_key(world.alice, org_key.pk)
    child.refresh_from_db()
    assert child.revoked_at is not None
    assert access.decide(world.lock, "pin", "5555").reason == "revoked"
