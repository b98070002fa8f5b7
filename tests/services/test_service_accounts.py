"""accounts.services: organizations, members and tokens."""

from __future__ import annotations

import pytest

from doorkeep import policy
from doorkeep.accounts.models import ApiToken, Membership, Role
from doorkeep.accounts.services import (
    add_member,
    create_organization,
    create_token,
    create_user,
    ensure_personal_organization,
    revoke_token,
    user_for_token,
)
from doorkeep.core.errors import InvalidInput, NotFound, PermissionDenied


def test_a_new_account_gets_its_own_organization_once(db):
    nina = create_user("nina@example.com", "pw-123456789", name="Nina")

    org = ensure_personal_organization(nina)

    assert org.name == "Nina"
    assert Membership.objects.get(user=nina).role == Role.LOCK_OWNER
    assert ensure_personal_organization(nina) == org


def test_an_account_address_is_taken_only_once_whatever_its_case(db):
    create_user("nina@example.com", "pw-123456789")

    with pytest.raises(InvalidInput) as caught:
        create_user(" NINA@example.com ", "pw-123456789")

    assert caught.value.code == "email_taken"


def test_an_organization_needs_a_name(world):
    with pytest.raises(InvalidInput) as caught:
        create_organization(world.alice, "   ")

    assert caught.value.code == "name_required"


def test_a_lock_owner_adds_a_member_and_changes_their_role(world):
    dora = create_user("dora@example.com", "pw-123456789")

    add_member(world.alice, world.org.pk, " DORA@example.com ", Role.MEMBER)
    assert policy.role_in(dora, world.org.pk) == Role.MEMBER
    add_member(world.alice, world.org.pk, "dora@example.com", Role.BUILDING_MANAGER)

    assert Membership.objects.get(user=dora, organization=world.org).role == Role.BUILDING_MANAGER


def test_only_a_lock_owner_adds_members(world):
    with pytest.raises(PermissionDenied):
        add_member(world.bob, world.org.pk, "charlie@example.com", Role.LOCK_OWNER)
    with pytest.raises(NotFound):
        add_member(world.charlie, world.org.pk, "charlie@example.com", Role.LOCK_OWNER)

    assert not Membership.objects.filter(user=world.charlie, organization=world.org).exists()


def test_nobody_is_made_platform_operator_by_adding_a_member(world):
    with pytest.raises(InvalidInput) as caught:
        add_member(world.alice, world.org.pk, "bob@example.com", Role.PLATFORM_OPERATOR)

    assert caught.value.code == "invalid_role"


def test_adding_an_address_without_an_account_is_not_found(world):
    with pytest.raises(NotFound) as caught:
        add_member(world.alice, world.org.pk, "ghost@example.com", Role.MEMBER)

    assert caught.value.code == "user_not_found"


def test_a_token_finds_its_user_until_revoked(world):
    row, token = create_token(world.alice, "  ")

    assert row.name == "API token"
    assert user_for_token(token) == world.alice
    assert ApiToken.objects.get(pk=row.pk).last_used_at is not None
    revoke_token(world.alice, row.pk)
    assert user_for_token(token) is None


def test_a_tokens_user_carries_its_fields_and_loads_the_rest_when_read(
    world, django_assert_num_queries
):
    _row, token = create_token(world.alice, "fields")
    user_for_token(token)  # notes the use: the next check only reads
    stored = type(world.alice).objects.get(pk=world.alice.pk)

    with django_assert_num_queries(1):
        user = user_for_token(token)
        assert (user.pk, user.email, user.name) == (stored.pk, stored.email, stored.name)
        assert (user.is_active, user.is_staff, user.is_superuser) == (True, False, False)
    assert user.date_joined == stored.date_joined  # deferred: read when asked
    assert user.check_password("correct horse battery staple")


def test_a_token_of_a_switched_off_account_finds_nobody(world):
    _row, token = create_token(world.alice, "off")
    type(world.alice).objects.filter(pk=world.alice.pk).update(is_active=False)

    assert user_for_token(token) is None


def test_only_the_owner_of_a_token_revokes_it(world):
    row, token = create_token(world.alice, "mine")

    with pytest.raises(NotFound):
        revoke_token(world.charlie, row.pk)

    assert user_for_token(token) == world.alice


@pytest.mark.parametrize("token", ["", "dk_", "dk_unknown", "not-a-token"])
def test_an_unknown_token_finds_nobody(world, token):
    assert user_for_token(token) is None
