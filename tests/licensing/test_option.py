"""The option "issue keys to organizations" (R10): its own code, 5 years that
add up, entered and used only while paid 5-year management runs."""

from __future__ import annotations

from datetime import timedelta

import pytest
from licencehelp import give_key

from doorkeep.core.errors import PermissionDenied
from doorkeep.events.models import Event, EventKind
from doorkeep.keys.sharing import issue_key_to_organization
from doorkeep.licensing import codes
from doorkeep.licensing.models import PeriodKind, PrepaidCode
from doorkeep.licensing.services import CodeRefused, redeem_for_lock
from doorkeep.licensing.state import ManagementEnded, add_years, licence_of


def _unused(plain: str) -> bool:
    row = PrepaidCode.objects.get(digest=codes.digest(codes.normalize(plain)))
    return row.redeemed_at is None and row.lock_id is None


def test_the_option_is_refused_in_the_free_period_and_its_code_is_not_used(world, code):
    option = code("ORGS-5Y")

    with pytest.raises(CodeRefused) as refused:
        redeem_for_lock(world.alice, world.lock.pk, option)

    assert refused.value.code == "option_needs_management"
    assert "free period" in refused.value.message
    assert "this code was not used" in refused.value.message
    assert _unused(option)
    assert not world.lock.periods.filter(kind=PeriodKind.ORGANIZATIONS_OPTION).exists()
    event = Event.objects.get(kind=EventKind.CODE_REFUSED)
    assert event.reason == "option_needs_management"


def test_the_option_is_refused_after_management_ended_and_its_code_is_not_used(world, code, travel):
    option = code("ORGS-5Y")
    travel(licence_of(world.lock.pk).free_ends_at + timedelta(days=1))

    with pytest.raises(CodeRefused) as refused:
        redeem_for_lock(world.alice, world.lock.pk, option)

    assert refused.value.code == "option_needs_management"
    assert "management has ended" in refused.value.message
    assert _unused(option)


def test_the_refused_option_code_works_once_management_is_active(world, code, now):
    option = code("ORGS-5Y")
    with pytest.raises(CodeRefused):
        redeem_for_lock(world.alice, world.lock.pk, option)
    redeem_for_lock(world.alice, world.lock.pk, code("MGMT-5Y"))

    result = redeem_for_lock(world.alice, world.lock.pk, option)

    state = licence_of(world.lock.pk)
    assert state.option_active
    assert state.option_ends_at == add_years(state.at, 5) == result.ends_at
    assert not _unused(option)


def test_option_codes_add_up(world, code, managed, now):
    managed()

    redeem_for_lock(world.alice, world.lock.pk, code("ORGS-5Y"))
    redeem_for_lock(world.alice, world.lock.pk, code("ORGS-5Y"))

    state = licence_of(world.lock.pk)
    assert state.option_ends_at == add_years(state.at, 10)


def test_an_option_code_while_the_option_runs_adds_to_its_end(world, code, managed, travel):
    managed(option=True)
    first_end = licence_of(world.lock.pk).option_ends_at
    travel(first_end - timedelta(days=30))
    redeem_for_lock(world.alice, world.lock.pk, code("MGMT-5Y"))

    redeem_for_lock(world.alice, world.lock.pk, code("ORGS-5Y"))

    assert licence_of(world.lock.pk).option_ends_at == add_years(first_end, 5)


def test_the_option_does_not_work_once_paid_management_ended_although_it_still_runs(
    world, code, managed, agency, travel
):
    managed()
    mgmt_end = licence_of(world.lock.pk).full_until
    travel(mgmt_end - timedelta(days=30))
    redeem_for_lock(world.alice, world.lock.pk, code("ORGS-5Y"))
    shared = issue_key_to_organization(world.alice, world.lock.pk, agency.org.pk)
    travel(mgmt_end + timedelta(days=1))

    state = licence_of(world.lock.pk)
    assert state.option_ends_at > state.at
    assert not state.option_active
    with pytest.raises(ManagementEnded):
        issue_key_to_organization(world.alice, world.lock.pk, world.charlie_org.pk)
    with pytest.raises(ManagementEnded):
        give_key(agency.dora, world.lock, "Gus", parent=shared)


def test_the_option_works_again_when_management_is_renewed(world, code, managed, agency, travel):
    managed()
    mgmt_end = licence_of(world.lock.pk).full_until
    travel(mgmt_end - timedelta(days=30))
    redeem_for_lock(world.alice, world.lock.pk, code("ORGS-5Y"))
    travel(mgmt_end + timedelta(days=1))

    redeem_for_lock(world.alice, world.lock.pk, code("MGMT-5Y"))

    assert licence_of(world.lock.pk).option_active
    shared = issue_key_to_organization(world.alice, world.lock.pk, agency.org.pk)
    give_key(agency.dora, world.lock, "Gus", parent=shared)


def test_without_the_option_keys_cannot_be_given_to_organizations(world, managed, agency):
    managed()

    with pytest.raises(PermissionDenied) as refused:
        issue_key_to_organization(world.alice, world.lock.pk, agency.org.pk)

    assert refused.value.code == "shared_management_inactive"
    assert refused.value.status == 403


def test_when_the_option_runs_out_keys_under_it_cannot_be_issued(
    world, code, managed, agency, travel
):
    managed(option=True)
    shared = issue_key_to_organization(world.alice, world.lock.pk, agency.org.pk)
    redeem_for_lock(world.alice, world.lock.pk, code("MGMT-5Y"))  # management outlasts it
    travel(licence_of(world.lock.pk).option_ends_at + timedelta(days=1))

    with pytest.raises(PermissionDenied) as refused:
        give_key(agency.dora, world.lock, "Gus", parent=shared)

    assert refused.value.code == "shared_management_inactive"
