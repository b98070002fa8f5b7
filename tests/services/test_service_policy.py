"""policy: who may do what, and how a refusal looks."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth.models import AnonymousUser
from django.utils import timezone

from doorkeep import policy
from doorkeep.accounts.models import Membership, Organization, Role
from doorkeep.accounts.services import create_user
from doorkeep.core.errors import NotFound, PermissionDenied
from doorkeep.policy import Action
from doorkeep.properties.services import create_property

EXPECTED = {
    Role.LOCK_OWNER: set(Action),
    Role.BUILDING_MANAGER: {
        Action.VIEW,
        Action.MANAGE_PROPERTIES,
        Action.MANAGE_KEYS,
        Action.VIEW_KEYS,
        Action.VIEW_EVENTS,
        Action.MANAGE_WEBHOOKS,
        Action.MANAGE_RESIDENTS,
        Action.MANAGE_BADGES,
        Action.VIEW_RESIDENTS,
        Action.MANAGE_STATIONS,
        Action.VIEW_STATIONS,
        Action.MANAGE_MACHINES,
        Action.MANAGE_TARIFFS,
        Action.VIEW_BILLING,
        Action.OPEN_ENTRIES,
    },
    Role.READ_ONLY: {
        Action.VIEW,
        Action.VIEW_KEYS,
        Action.VIEW_EVENTS,
        Action.VIEW_RESIDENTS,
        Action.VIEW_STATIONS,
        Action.VIEW_BILLING,
    },
    Role.MEMBER: {Action.VIEW},
    Role.PLATFORM_OPERATOR: {Action.VIEW},
}


@pytest.fixture
def person_with(world):
    def make(role):
        user = create_user(f"{role}@example.com", "pw-123456789")
        Membership.objects.create(user=user, organization=world.org, role=role)
        return user

    return make


@pytest.mark.parametrize("role", list(EXPECTED))
@pytest.mark.parametrize("action", list(Action))
def test_each_role_may_do_exactly_its_actions(world, person_with, role, action):
    user = person_with(role)

    assert policy.can(user, action, world.org.pk) is (action in EXPECTED[role])


@pytest.mark.parametrize("action", list(Action))
def test_an_outsider_may_do_nothing(world, action):
    assert policy.can(world.charlie, action, world.org.pk) is False


def test_require_answers_not_found_to_an_outsider_naming_the_object(world):
    with pytest.raises(NotFound) as caught:
        policy.require(world.charlie, Action.VIEW, world.org.pk, what="Lock")

    assert caught.value.message == "Lock not found."
    assert caught.value.status == 404


@pytest.mark.parametrize(
    ("action", "words"),
    [
        (Action.MANAGE_PROPERTIES, "change properties"),
        (Action.REGISTER_LOCKS, "register or remove locks"),
        (Action.MANAGE_KEYS, "issue or take back keys"),
        (Action.VIEW_KEYS, "see the keys"),
        (Action.VIEW_EVENTS, "read the event log"),
        (Action.MANAGE_WEBHOOKS, "manage webhooks"),
        (Action.MANAGE_RESIDENTS, "change units, residents and billing"),
        (Action.MANAGE_BADGES, "manage badges"),
        (Action.REACTIVATE_BADGES, "switch a found badge on again"),
        (Action.VIEW_RESIDENTS, "see the residents and badges"),
        (Action.MANAGE_COLLABORATORS, "invite collaborators"),
    ],
)
def test_require_answers_permission_denied_with_the_reason_to_a_member(world, action, words):
    with pytest.raises(PermissionDenied) as caught:
        policy.require(world.bob, action, world.org.pk, what="Lock")

    assert words in caught.value.message
    assert caught.value.status == 403
    assert caught.value.code == "forbidden"


def test_require_lets_a_permitted_user_through(world):
    policy.require(world.alice, Action.REGISTER_LOCKS, world.org.pk, what="Lock")


def test_nobody_has_a_role_in_no_organization(world):
    assert policy.role_in(world.alice, None) is None
    with pytest.raises(NotFound):
        policy.require(world.alice, Action.VIEW, None, what="Lock")


def test_an_anonymous_visitor_has_no_role_and_no_organizations(world):
    anonymous = AnonymousUser()

    assert policy.role_in(anonymous, world.org.pk) is None
    assert not policy.can(anonymous, Action.VIEW, world.org.pk)
    assert list(policy.organizations(anonymous)) == []
    assert not policy.is_platform_operator(anonymous)


def test_a_deactivated_account_has_no_role(world):
    world.alice.is_active = False

    assert policy.role_in(world.alice, world.org.pk) is None


def test_organizations_lists_where_the_user_may_do_the_action(world):
    assert list(policy.organizations(world.bob)) == [world.org]
    assert list(policy.organizations(world.bob, Action.VIEW_EVENTS)) == []
    assert list(policy.organizations(world.alice, Action.VIEW_EVENTS)) == [world.org]
    assert list(policy.organizations(world.charlie)) == [world.charlie_org]


def test_roles_are_cached_per_user_object_until_forgotten(world, django_assert_num_queries):
    bob = world.bob
    policy.forget_roles(bob)
    with django_assert_num_queries(1):
        assert policy.role_in(bob, world.org.pk) == Role.MEMBER
        assert policy.role_in(bob, world.org.pk) == Role.MEMBER
    Membership.objects.filter(user=bob).update(role=Role.LOCK_OWNER)
    assert policy.role_in(bob, world.org.pk) == Role.MEMBER  # still the cached role

    policy.forget_roles(bob)

    assert policy.role_in(bob, world.org.pk) == Role.LOCK_OWNER


def test_forgetting_roles_that_were_never_cached_is_harmless(world):
    policy.forget_roles(AnonymousUser())
    policy.forget_roles(world.charlie)


def test_a_platform_operator_is_one_only_in_the_platform_organization(world):
    operator = create_user("ops@example.com", "pw-123456789")
    Membership.objects.create(user=operator, organization=world.org, role=Role.PLATFORM_OPERATOR)
    assert not policy.is_platform_operator(operator)
    with pytest.raises(NotFound):
        policy.require_platform_operator(operator)

    platform = Organization.objects.create(name="Doorkeep", is_platform=True)
    Membership.objects.create(user=operator, organization=platform, role=Role.PLATFORM_OPERATOR)

    assert policy.is_platform_operator(operator)
    policy.require_platform_operator(operator)


def test_a_lock_owner_of_the_platform_organization_is_not_an_operator(world):
    platform = Organization.objects.create(name="Doorkeep", is_platform=True)
    Membership.objects.create(user=world.charlie, organization=platform, role=Role.LOCK_OWNER)

    assert not policy.is_platform_operator(world.charlie)


# --- memberships scoped to one site, and ending (R41) -------------------------------------------


@pytest.fixture
def second_site(world):
    return create_property(world.alice, world.org.pk, name="Harbour Flats")


@pytest.fixture
def scoped(world):
    """A manager collaborator of Alice's organization for the Canal House only."""

    def make(role=Role.BUILDING_MANAGER, **extra):
        user = create_user(f"{role}-scoped@example.com", "pw-123456789")
        Membership.objects.create(
            user=user, organization=world.org, role=role, property=world.prop, **extra
        )
        return user

    return make


def test_a_scoped_membership_grants_its_role_only_for_its_site(world, scoped, second_site):
    agent = scoped()

    assert policy.role_in(agent, world.org.pk, world.prop.pk) == Role.BUILDING_MANAGER
    assert policy.can(agent, Action.MANAGE_KEYS, world.org.pk, world.prop.pk)
    assert policy.role_in(agent, world.org.pk, second_site.pk) is None
    assert not policy.can(agent, Action.VIEW, world.org.pk, second_site.pk)


def test_a_scoped_member_is_no_member_for_a_call_that_names_no_site(world, scoped):
    agent = scoped()

    assert policy.role_in(agent, world.org.pk) is None
    with pytest.raises(NotFound):
        policy.require(agent, Action.VIEW, world.org.pk, what="Organization")
    assert list(policy.organizations(agent)) == []


def test_a_scoped_member_sees_only_the_properties_of_its_site(world, scoped, second_site):
    agent = scoped(Role.READ_ONLY)

    assert list(policy.properties(agent)) == [world.prop]
    assert list(policy.properties(agent, Action.MANAGE_KEYS)) == []
    assert set(policy.properties(world.alice)) == {world.prop, second_site}
    assert list(policy.properties(world.charlie)) == [world.charlie_prop]


def test_a_read_only_collaborator_is_refused_changes_with_a_reason(world, scoped):
    agent = scoped(Role.READ_ONLY)

    policy.require(agent, Action.VIEW_KEYS, world.org.pk, what="Lock", property_id=world.prop.pk)
    with pytest.raises(PermissionDenied) as caught:
        policy.require(
            agent, Action.MANAGE_KEYS, world.org.pk, what="Lock", property_id=world.prop.pk
        )
    assert "issue or take back keys" in caught.value.message


def test_a_membership_grants_nothing_once_it_has_ended(world, scoped, time_machine):
    time_machine.move_to(timezone.now(), tick=False)
    agent = scoped(ends_at=timezone.now() + timedelta(days=1))
    assert policy.can(agent, Action.VIEW, world.org.pk, world.prop.pk)

    time_machine.shift(timedelta(days=1))

    assert policy.role_in(agent, world.org.pk, world.prop.pk) is None
    assert list(policy.properties(agent)) == []
    assert not policy.is_member(agent)


def test_an_ended_membership_for_every_site_leaves_no_organization(world, time_machine):
    Membership.objects.filter(user=world.bob).update(ends_at=timezone.now() + timedelta(hours=1))
    policy.forget_roles(world.bob)
    assert list(policy.organizations(world.bob)) == [world.org]

    time_machine.move_to(timezone.now() + timedelta(hours=2))

    assert list(policy.organizations(world.bob)) == []
    assert policy.role_in(world.bob, world.org.pk) is None


def test_scoped_roles_come_from_the_same_one_query_cache(world, scoped, django_assert_num_queries):
    agent = scoped()
    with django_assert_num_queries(1):
        assert policy.role_in(agent, world.org.pk, world.prop.pk) == Role.BUILDING_MANAGER
        assert policy.role_in(agent, world.org.pk) is None
        assert policy.scoped_sites(agent) == [(world.org.pk, world.prop.pk)]
        assert policy.is_member(agent)


def test_the_people_to_notify_about_a_site_are_its_own_and_those_of_every_site(
    world, scoped, second_site
):
    agent = scoped()

    here = set(
        policy.members(world.org.pk, Action.MANAGE_RESIDENTS, world.prop.pk).values_list(
            "user_id", flat=True
        )
    )
    there = set(
        policy.members(world.org.pk, Action.MANAGE_RESIDENTS, second_site.pk).values_list(
            "user_id", flat=True
        )
    )

    assert here == {world.alice.pk, agent.pk}
    assert there == {world.alice.pk}
