"""Two-factor authentication (issue 16, item 2): allauth.mfa's factors,
required of platform operators, of staff and of the managers and
collaborators of an organization whose owner asks for it; passwords of at
least 12 characters that are not common."""

from __future__ import annotations

import re
from datetime import timedelta

import pyotp
import pytest
import time_machine
from allauth.mfa.models import Authenticator
from allauth.mfa.totp.internal.auth import TOTP, generate_totp_secret
from django.test import Client
from django.utils import timezone

from doorkeep.accounts.models import Membership, Organization, Role
from doorkeep.events.models import Event, EventKind

PASSWORD = "correct horse battery staple"  # the world's (tests/conftest.py)


@pytest.fixture(autouse=True)
def _operators_held(settings) -> None:
    settings.DOORKEEP_TWO_FACTOR_FOR_OPERATORS = True  # as in production


def test_operators_are_not_held_when_the_setting_is_off(world, settings):
    settings.DOORKEEP_TWO_FACTOR_FOR_OPERATORS = False
    _operator(world.charlie)
    assert _signed_in(world.charlie.email).get("/operator/badges/").status_code == 200


def _signed_in(email: str) -> Client:
    client = Client()
    answer = client.post("/accounts/login/", {"login": email, "password": PASSWORD})
    assert answer.status_code == 302, answer.content[:500]
    return client


def _operator(user) -> None:
    platform, _ = Organization.objects.get_or_create(is_platform=True, defaults={"name": "Ops"})
    Membership.objects.create(user=user, organization=platform, role=Role.PLATFORM_OPERATOR)


def _add_totp(user) -> str:
    secret = generate_totp_secret()
    TOTP.activate(user, secret)
    return secret


def test_a_password_shorter_than_12_characters_is_refused_at_sign_up(db):
    answer = Client().post(
        "/accounts/signup/",
        {"email": "new@example.com", "password1": "Xq7#pLm2vR9", "password2": "Xq7#pLm2vR9"},
    )
    assert answer.status_code == 200
    assert b"at least 12 characters" in answer.content


def test_a_common_password_is_refused_at_sign_up(db):
    answer = Client().post(
        "/accounts/signup/",
        {"email": "new@example.com", "password1": "password1234", "password2": "password1234"},
    )
    assert answer.status_code == 200
    assert b"too common" in answer.content


def test_a_person_turns_on_an_authenticator_app_and_then_signs_in_with_its_code(world):
    client = _signed_in(world.alice.email)
    # Changing one's factors asks for the password again (allauth).
    client.post("/accounts/reauthenticate/", {"password": PASSWORD})
    page = client.get("/accounts/2fa/totp/activate/")
    assert page.status_code == 200
    secret = page.context["form"].secret
    answer = client.post("/accounts/2fa/totp/activate/", {"code": pyotp.TOTP(secret).now()})
    assert answer.status_code == 302
    assert Authenticator.objects.filter(user=world.alice, type="totp").exists()
    # Recovery codes come with it.
    assert Authenticator.objects.filter(user=world.alice, type="recovery_codes").exists()

    client.post("/accounts/logout/")
    later = Client()
    first = later.post("/accounts/login/", {"login": world.alice.email, "password": PASSWORD})
    assert first.status_code == 302 and first["Location"] == "/accounts/2fa/authenticate/"
    assert later.get("/").status_code == 302  # not signed in yet
    with time_machine.travel(timezone.now() + timedelta(seconds=31)):
        wrong = later.post("/accounts/2fa/authenticate/", {"code": "000000"})
        assert wrong.status_code == 200
        right = later.post("/accounts/2fa/authenticate/", {"code": pyotp.TOTP(secret).now()})
    assert right.status_code == 302
    home = later.get("/", follow=True)
    assert home.status_code == 200
    assert all("/accounts/" not in url for url, _status in home.redirect_chain)


def test_an_operator_without_a_second_factor_is_sent_to_add_one_first(world):
    _operator(world.charlie)
    client = _signed_in(world.charlie.email)
    for path in ("/", "/operator/badges/", "/admin/"):
        answer = client.get(path)
        assert answer.status_code == 302, path
        assert answer["Location"] == "/accounts/2fa/", path
    assert client.get("/accounts/2fa/").status_code == 200  # the way out stays open
    client.post("/accounts/reauthenticate/", {"password": PASSWORD})
    page = client.get("/accounts/2fa/totp/activate/")
    assert page.status_code == 200
    secret = page.context["form"].secret
    client.post("/accounts/2fa/totp/activate/", {"code": pyotp.TOTP(secret).now()})
    assert client.get("/operator/badges/").status_code == 200  # and then goes on


def test_an_operator_with_a_second_factor_goes_on(world):
    _operator(world.charlie)
    secret = _add_totp(world.charlie)
    client = Client()
    client.post("/accounts/login/", {"login": world.charlie.email, "password": PASSWORD})
    client.post("/accounts/2fa/authenticate/", {"code": pyotp.TOTP(secret).now()})
    answer = client.get("/operator/badges/")
    assert answer.status_code == 200


def test_staff_need_a_second_factor_for_the_admin_site(world):
    world.charlie.is_staff = True
    world.charlie.save(update_fields=["is_staff"])
    client = _signed_in(world.charlie.email)
    answer = client.get("/admin/")
    assert answer.status_code == 302 and answer["Location"] == "/accounts/2fa/"


def test_plain_accounts_are_not_asked_for_a_second_factor(world):
    client = _signed_in(world.bob.email)
    assert client.get("/").status_code == 200


def test_an_owner_requires_a_second_factor_of_managers_and_collaborators(world):
    bob = _signed_in(world.bob.email)  # a member of Alice's organization
    alice = _signed_in(world.alice.email)
    org = world.lock.organization

    answer = alice.post(
        f"/settings/collaborators/{org.pk}/two-factor/", {"require_two_factor": "on"}
    )
    assert answer.status_code == 302
    org.refresh_from_db()
    assert org.require_two_factor is True
    event = Event.objects.get(kind=EventKind.TWO_FACTOR_REQUIREMENT)
    assert event.actor_id == world.alice.pk and event.data["require_two_factor"] is True

    # Bob was signed out; at his next sign-in he adds a factor before anything.
    assert bob.get("/")["Location"].startswith("/accounts/login/")
    bob = _signed_in(world.bob.email)
    assert bob.get("/")["Location"] == "/accounts/2fa/"
    # The owner herself is not held to it, nor is another organization's account.
    assert alice.get("/").status_code == 200
    assert _signed_in(world.charlie.email).get("/").status_code == 200

    alice.post(f"/settings/collaborators/{org.pk}/two-factor/", {})
    assert Organization.objects.get(pk=org.pk).require_two_factor is False
    assert _signed_in(world.bob.email).get("/").status_code == 200


def test_another_tenant_cannot_change_the_requirement(world):
    charlie = _signed_in(world.charlie.email)
    org = world.lock.organization
    answer = charlie.post(
        f"/settings/collaborators/{org.pk}/two-factor/", {"require_two_factor": "on"}
    )
    assert answer.status_code == 404
    assert Organization.objects.get(pk=org.pk).require_two_factor is False


def test_an_account_held_to_a_second_factor_gets_no_api_token_by_password(world, client):
    _operator(world.charlie)
    answer = client.post(
        "/api/v1/auth/tokens",
        {"email": world.charlie.email, "password": PASSWORD, "name": "script"},
        content_type="application/json",
    )
    assert answer.status_code == 403
    assert answer.json()["code"] == "two_factor_required"
    assert re.search("web interface", answer.json()["message"])


@pytest.mark.parametrize("path", ["/healthz", "/static/doorkeep.css", "/accounts/logout/"])
def test_the_way_out_and_the_probes_stay_open_to_an_operator_without_a_factor(world, path):
    _operator(world.charlie)
    client = _signed_in(world.charlie.email)
    answer = client.get(path)
    assert answer.get("Location") != "/accounts/2fa/"


def test_the_admin_sign_in_form_is_allauths_with_its_second_factor(world):
    world.charlie.is_staff = world.charlie.is_superuser = True
    world.charlie.save(update_fields=["is_staff", "is_superuser"])
    _add_totp(world.charlie)
    client = Client()
    answer = client.post("/admin/login/", {"username": world.charlie.email, "password": PASSWORD})
    assert answer.status_code == 302
    assert answer["Location"].startswith("/accounts/login/")
    assert "_auth_user_id" not in client.session  # the password alone signed no one in
    assert client.get("/admin/")["Location"].startswith("/admin/login/")


def test_an_account_with_a_factor_of_its_own_gets_no_api_token_by_password(world, client):
    _add_totp(world.alice)  # a lock owner: not required, but she chose a second factor
    answer = client.post(
        "/api/v1/auth/tokens",
        {"email": world.alice.email, "password": PASSWORD, "name": "script"},
        content_type="application/json",
    )
    assert answer.status_code == 403
    assert answer.json()["code"] == "two_factor_required"


def test_the_api_through_the_session_is_held_to_the_second_factor_too(world):
    _operator(world.charlie)
    client = _signed_in(world.charlie.email)
    answer = client.get("/api/v1/locks")
    assert answer.status_code == 403
    assert answer.json()["code"] == "two_factor_required"


def test_requiring_a_second_factor_revokes_the_api_tokens_of_those_it_concerns(world):
    from doorkeep.accounts.services import create_token

    _row, token = create_token(world.bob, "script")
    _row, own = create_token(world.alice, "mine")
    alice = _signed_in(world.alice.email)
    org = world.lock.organization
    alice.post(f"/settings/collaborators/{org.pk}/two-factor/", {"require_two_factor": "on"})
    api = Client()
    assert api.get("/api/v1/me", HTTP_AUTHORIZATION=f"Bearer {token}").status_code == 401
    assert api.get("/api/v1/me", HTTP_AUTHORIZATION=f"Bearer {own}").status_code == 200


def test_an_operator_made_while_signed_in_meets_the_requirement_within_minutes(world):
    client = _signed_in(world.charlie.email)
    assert client.get("/").status_code == 200
    _operator(world.charlie)
    with time_machine.travel(timezone.now() + timedelta(seconds=301)):
        answer = client.get("/")
    assert answer.status_code == 302 and answer["Location"] == "/accounts/2fa/"
