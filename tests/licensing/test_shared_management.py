"""Shared management (R10, R11): a lock owner gives a key to an organization
with organization management; its managers issue and take back keys for
their own people on that lock, within the owner's window."""

from __future__ import annotations

from datetime import timedelta

import pytest
from licencehelp import give_key, version

from doorkeep.core.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from doorkeep.events.models import Event, EventKind
from doorkeep.keys import access, services
from doorkeep.keys.models import Key
from doorkeep.keys.selectors import keys_of_lock
from doorkeep.keys.services import revoke_key, update_key
from doorkeep.keys.sharing import (
    get_shared_key,
    issue_key_to_organization,
    registered_organizations,
    shared_with,
)


@pytest.fixture
def shared(world, managed, agency, now):
    """Alice's lock, with the option, and a key for the agency valid 30 days."""
    managed(option=True)
    return issue_key_to_organization(
        world.alice,
        world.lock.pk,
        agency.org.pk,
        valid_from=now - timedelta(days=1),
        valid_until=now + timedelta(days=30),
        note="cleaning contract",
    )


def test_the_organization_receives_a_key_held_by_it_and_managed_by_the_lock_owner(
    world, shared, agency
):
    assert shared.holder_organization_id == agency.org.pk
    assert shared.person_id is None
    assert shared.organization_id == shared.lock_owner_id == world.org.pk
    event = Event.objects.filter(kind=EventKind.KEY_ISSUED).latest("id")
    assert event.key_id == shared.pk
    assert agency.org.name in event.summary


def test_an_organization_without_organization_management_cannot_receive_a_key(world, managed):
    managed(option=True)

    with pytest.raises(NotFound) as refused:
        issue_key_to_organization(world.alice, world.lock.pk, world.charlie_org.pk)

    assert refused.value.code == "organization_not_found"
    assert not Key.objects.filter(holder_organization__isnull=False).exists()


def test_the_lock_owner_cannot_give_a_key_to_its_own_organization(world, managed):
    managed(option=True)
    world.org.organization_management_since = world.org.created_at
    world.org.save()

    with pytest.raises(InvalidInput) as refused:
        issue_key_to_organization(world.alice, world.lock.pk, world.org.pk)

    assert refused.value.code == "own_organization"


def test_an_organization_holds_one_live_key_per_lock(world, shared, agency):
    with pytest.raises(Conflict) as refused:
        issue_key_to_organization(world.alice, world.lock.pk, agency.org.pk)

    assert refused.value.code == "key_exists"


def test_only_the_lock_owners_managers_give_keys_to_organizations(world, managed, agency):
    managed(option=True)

    with pytest.raises(PermissionDenied):
        issue_key_to_organization(world.bob, world.lock.pk, agency.org.pk)
    with pytest.raises(NotFound):
        issue_key_to_organization(world.charlie, world.lock.pk, agency.org.pk)
    with pytest.raises(NotFound):
        issue_key_to_organization(agency.dora, world.lock.pk, agency.org.pk)


def test_the_directory_lists_only_organizations_with_organization_management(world, agency):
    assert list(registered_organizations()) == [agency.org]
    assert list(registered_organizations("facility")) == [agency.org]
    assert list(registered_organizations("nothing like it")) == []


# --- the organization's managers ------------------------------------------------------------------


@pytest.mark.parametrize("manager", ["dora", "erin"])
def test_the_organizations_lock_owner_and_building_manager_issue_keys_for_their_people(
    world, shared, agency, manager
):
    user = getattr(agency, manager)

    key = give_key(user, world.lock, "Gus", pin="555123", parent=shared)

    assert key.parent_id == shared.pk
    assert key.organization_id == agency.org.pk
    assert key.person.organization_id == agency.org.pk
    assert key.lock_owner_id == world.org.pk
    assert access.decide(world.lock, "pin", "555123").granted


@pytest.mark.parametrize("manager", ["dora", "erin"])
def test_the_organizations_managers_take_back_their_keys(world, shared, agency, manager):
    key = give_key(agency.dora, world.lock, "Gus", pin="555123", parent=shared)
    before = version(world.lock)

    revoke_key(getattr(agency, manager), key.pk)

    key.refresh_from_db()
    assert key.revoked_at is not None
    assert version(world.lock) == before + 1
    assert access.decide(world.lock, "pin", "555123").reason == "revoked"


def test_a_plain_member_of_the_organization_is_refused_with_403(world, shared, agency):
    key = give_key(agency.dora, world.lock, "Gus", parent=shared)

    with pytest.raises(PermissionDenied) as issuing:
        give_key(agency.frank, world.lock, "Hal", parent=shared)
    with pytest.raises(PermissionDenied):
        revoke_key(agency.frank, key.pk)
    with pytest.raises(PermissionDenied):
        update_key(agency.frank, key.pk, valid_from=None, valid_until=None, note="x")

    assert "issue or take back keys" in issuing.value.message
    assert Key.objects.filter(parent=shared).count() == 1


def test_an_outsider_is_told_nothing_exists(world, shared, agency):
    key = give_key(agency.dora, world.lock, "Gus", parent=shared)

    with pytest.raises(NotFound):
        give_key(world.charlie, world.lock, "Hal", parent=shared)
    with pytest.raises(NotFound):
        revoke_key(world.charlie, key.pk)
    with pytest.raises(NotFound):
        get_shared_key(world.charlie, shared.pk)


def test_the_lock_owner_does_not_issue_under_the_organizations_key(world, shared):
    with pytest.raises(NotFound):
        give_key(world.alice, world.lock, "Hal", parent=shared)


def test_the_organization_issues_only_to_its_own_people(world, shared, agency):
    alices_person = give_key(world.alice, world.lock, "Dana").person

    with pytest.raises(NotFound) as refused:
        services.issue_key(
            agency.dora,
            world.lock.pk,
            services.KeySpec(
                services.HolderSpec(person_id=alices_person.pk),
                [services.CredentialSpec("remote", "RM-7777")],
            ),
            parent_key_id=shared.pk,
        )

    assert refused.value.code == "person_not_found"


def test_the_organizations_managers_cannot_touch_the_lock_owners_keys(world, shared, agency):
    dana = give_key(world.alice, world.lock, "Dana")

    with pytest.raises(NotFound):
        revoke_key(agency.dora, dana.pk)
    with pytest.raises(NotFound):
        revoke_key(agency.dora, shared.pk)


# --- the window -----------------------------------------------------------------------------------


def test_a_key_under_the_organizations_key_with_open_ends_takes_its_window(world, shared, agency):
    key = give_key(agency.dora, world.lock, "Gus", parent=shared)

    assert (key.valid_from, key.valid_until) == (shared.valid_from, shared.valid_until)


def test_a_narrower_window_is_kept(world, shared, agency, now):
    key = give_key(
        agency.dora,
        world.lock,
        "Gus",
        parent=shared,
        valid_from=now,
        valid_until=now + timedelta(days=7),
    )

    assert (key.valid_from, key.valid_until) == (now, now + timedelta(days=7))


@pytest.mark.parametrize(("start_days", "end_days"), [(-2, None), (None, 31), (-2, 31), (0, 365)])
def test_a_window_wider_than_the_organizations_key_is_refused(
    world, shared, agency, now, start_days, end_days
):
    with pytest.raises(InvalidInput) as refused:
        give_key(
            agency.dora,
            world.lock,
            "Gus",
            parent=shared,
            valid_from=None if start_days is None else now + timedelta(days=start_days),
            valid_until=None if end_days is None else now + timedelta(days=end_days),
        )

    assert refused.value.code == "outside_shared_window"
    assert not Key.objects.filter(parent=shared).exists()


def test_changing_a_key_under_the_organizations_key_stays_within_its_window(
    world, shared, agency, now
):
    key = give_key(agency.dora, world.lock, "Gus", parent=shared, valid_until=now + timedelta(1))

    with pytest.raises(InvalidInput) as refused:
        update_key(
            agency.erin, key.pk, valid_from=None, valid_until=now + timedelta(days=60), note=None
        )
    changed = update_key(agency.erin, key.pk, valid_from=None, valid_until=None, note="open")

    assert refused.value.code == "outside_shared_window"
    assert changed.valid_until == shared.valid_until
    assert changed.note == "open"


def test_an_organization_key_without_end_lets_keys_under_it_be_open_ended(world, managed, agency):
    managed(option=True)
    shared = issue_key_to_organization(world.alice, world.lock.pk, agency.org.pk)

    key = give_key(agency.dora, world.lock, "Gus", parent=shared)

    assert (key.valid_from, key.valid_until) == (None, None)


def test_no_key_can_be_issued_under_an_organization_key_outside_its_window(
    world, shared, agency, travel, now
):
    travel(now + timedelta(days=31))
    with pytest.raises(Conflict) as refused:
        give_key(agency.dora, world.lock, "Gus", parent=shared)

    assert refused.value.code == "shared_key_not_valid"


# --- what the lock owner sees and does ------------------------------------------------------------


def test_the_lock_owner_sees_the_keys_issued_under_the_organizations_key(world, shared, agency):
    key = give_key(agency.dora, world.lock, "Gus", parent=shared)

    listed = {k.pk: k for k in keys_of_lock(world.lock.pk, status="live")}

    assert set(listed) == {shared.pk, key.pk}
    assert listed[key.pk].parent.holder_organization == agency.org


def test_taking_back_the_organizations_key_takes_back_every_key_under_it_at_once(
    world, shared, agency
):
    under = [
        give_key(agency.dora, world.lock, f"Person {n}", pin=f"90{n}1234", parent=shared)
        for n in range(3)
    ]
    revoke_key(agency.dora, under[0].pk)
    before = version(world.lock)
    events_before = Event.objects.count()

    revoke_key(world.alice, shared.pk)

    keys = Key.objects.filter(pk__in=[shared.pk] + [k.pk for k in under])
    assert all(k.revoked_at is not None for k in keys)
    shared.refresh_from_db()
    assert {k.revoked_at for k in keys if k.pk != under[0].pk} == {shared.revoked_at}
    assert version(world.lock) == before + 1
    assert Event.objects.count() == events_before + 1
    event = Event.objects.latest("id")
    assert (event.kind, event.data) == (EventKind.KEY_REVOKED, {"keys_under_it": 2})
    for n in range(3):
        assert access.decide(world.lock, "pin", f"90{n}1234").reason == "revoked"


def test_taking_back_the_organizations_key_is_all_or_nothing(world, shared, agency, monkeypatch):
    under = give_key(agency.dora, world.lock, "Gus", parent=shared)
    before = version(world.lock)

    def fail(*args, **kwargs):
        raise RuntimeError("the event log is down")

    monkeypatch.setattr(services, "record", fail)
    with pytest.raises(RuntimeError):
        revoke_key(world.alice, shared.pk)

    assert Key.objects.filter(pk__in=[shared.pk, under.pk], revoked_at__isnull=True).count() == 2
    assert version(world.lock) == before


def test_after_the_organizations_key_is_taken_back_nothing_more_is_issued_under_it(
    world, shared, agency
):
    revoke_key(world.alice, shared.pk)

    with pytest.raises(Conflict) as refused:
        give_key(agency.dora, world.lock, "Gus", parent=shared)

    assert refused.value.code == "shared_key_revoked"


def test_a_key_under_a_revoked_organization_key_is_denied_as_revoked(world, shared, agency):
    give_key(agency.dora, world.lock, "Gus", pin="555123", parent=shared)
    Key.objects.filter(pk=shared.pk).update(revoked_at=shared.issued_at + timedelta(hours=1))

    decision = access.decide(world.lock, "pin", "555123")

    assert (decision.granted, decision.reason) == (False, "revoked")


def test_a_key_under_an_expired_organization_key_is_denied_as_expired(world, shared, agency, now):
    give_key(
        agency.dora, world.lock, "Gus", pin="555123", parent=shared, valid_until=shared.valid_until
    )
    update_key(
        world.alice, shared.pk, valid_from=None, valid_until=now + timedelta(days=2), note=None
    )

    assert access.decide(world.lock, "pin", "555123", at=now + timedelta(days=1)).granted
    decision = access.decide(world.lock, "pin", "555123", at=now + timedelta(days=3))

    assert (decision.granted, decision.reason) == (False, "expired")


def test_the_organizations_members_see_the_key_with_its_live_keys_under_it(world, shared, agency):
    give_key(agency.dora, world.lock, "Gus", parent=shared)
    gone = give_key(agency.dora, world.lock, "Hal", parent=shared)
    revoke_key(agency.erin, gone.pk)

    for user in (agency.dora, agency.erin, agency.frank):
        (key,) = shared_with(user)
        assert key.pk == shared.pk
        assert key.live_children == 1
    assert list(shared_with(world.charlie)) == []
    assert list(shared_with(world.alice)) == []


def test_an_organization_key_of_a_lock_that_changed_hands_is_no_longer_shared(
    world, shared, agency
):
    from doorkeep.locks.services import remove_lock

    remove_lock(world.alice, world.lock.pk)

    assert list(shared_with(agency.dora)) == []


def test_a_phone_key_issued_under_the_organizations_key_opens_the_lock(world, shared, agency):
    from doorkeep.accounts.services import create_user

    gus = create_user("gus@example.com", "correct horse battery staple", name="Gus")
    services.issue_key(
        agency.dora,
        world.lock.pk,
        services.KeySpec(
            services.HolderSpec(name="Gus", email="gus@example.com"),
            [services.CredentialSpec("phone")],
        ),
        parent_key_id=shared.pk,
    )

    decision = access.decide(world.lock, "phone", gus)

    assert decision.granted, decision.reason
    assert decision.key.person.user == gus
