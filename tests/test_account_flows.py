"""Sign-up with email verification, sign-in and password reset (django-allauth)."""

import re

import pytest
from django.core import mail
from django.test import Client

from doorkeep.accounts.models import Membership, Role, User
from doorkeep.keys import access
from doorkeep.keys.services import CredentialSpec, HolderSpec, KeySpec, issue_key

pytestmark = pytest.mark.django_db


def _link(message: str) -> str:
    match = re.search(r"http://testserver(/accounts/[^\s]+)", message)
    assert match, message
    return match.group(1)


def test_signing_up_needs_a_confirmed_email_and_creates_an_organization():
    client = Client()
    response = client.post(
        "/accounts/signup/",
        {
            "name": "Nina Noor",
            "email": "nina@example.com",
            "password1": "a sturdy passphrase",
            "password2": "a sturdy passphrase",
        },
    )
    assert response.status_code == 302
    user = User.objects.get(email="nina@example.com")
    assert Membership.objects.get(user=user).role == Role.LOCK_OWNER
    assert len(mail.outbox) == 1
    assert "nina@example.com" in mail.outbox[0].to

    # Not confirmed yet: signing in sends the person to the confirmation page.
    other = Client()
    response = other.post(
        "/accounts/login/", {"login": "nina@example.com", "password": "a sturdy passphrase"}
    )
    assert response.status_code == 302
    assert "confirm-email" in response["Location"]
    assert "_auth_user_id" not in other.session

    confirm = _link(mail.outbox[-1].body)
    client.post(confirm)
    assert user.emailaddress_set.get().verified  # type: ignore[attr-defined]
    response = other.post(
        "/accounts/login/", {"login": "nina@example.com", "password": "a sturdy passphrase"}
    )
    assert response.status_code == 302
    assert other.session["_auth_user_id"] == str(user.pk)


def test_confirming_an_email_links_keys_issued_to_that_address(world):
    key = issue_key(
        world.alice,
        world.lock.pk,
        KeySpec(
            holder=HolderSpec(name="Nina", email="nina@example.com"),
            credentials=[CredentialSpec("phone")],
        ),
    )
    assert key.person.user is None
    client = Client()
    client.post(
        "/accounts/signup/",
        {
            "name": "Nina Noor",
            "email": "nina@example.com",
            "password1": "a sturdy passphrase",
            "password2": "a sturdy passphrase",
        },
    )
    user = User.objects.get(email="nina@example.com")
    assert not access.decide(world.lock, "phone", user).granted
    client.post(_link(mail.outbox[-1].body))
    key.person.refresh_from_db()
    assert key.person.user == user
    assert access.decide(world.lock, "phone", user).granted


def test_a_wrong_password_does_not_sign_in(world):
    client = Client()
    response = client.post("/accounts/login/", {"login": "alice@example.com", "password": "nope"})
    assert response.status_code == 200
    assert "_auth_user_id" not in client.session


def test_a_failed_sign_in_marks_both_fields_invalid_described_by_the_error_and_focuses_the_address(
    world,
):
    response = Client().post(
        "/accounts/login/", {"login": world.alice.email, "password": "not the password"}
    )
    html = response.content.decode()
    errors = re.search(r'<ul class="errorlist nonfield" id="([^"]+)">(.*?)</ul>', html, re.S)
    assert errors and "not correct" in errors.group(2)
    address = re.search(r'<input type="email" name="login"[^>]*>', html).group(0)
    password = re.search(r'<input type="password" name="password"[^>]*>', html).group(0)
    for field in (address, password):
        assert 'aria-invalid="true"' in field
        assert re.search(rf'aria-describedby="[^"]*\b{errors.group(1)}\b', field)
    assert "autofocus" in address and "autofocus" not in password
    # The first look at the form: nothing is marked.
    fresh = Client().get("/accounts/login/").content.decode()
    assert "aria-invalid" not in fresh and "autofocus" not in fresh


def test_password_reset_sets_a_new_password(world):
    client = Client()
    client.post("/accounts/password/reset/", {"email": "alice@example.com"})
    assert len(mail.outbox) == 1
    link = _link(mail.outbox[0].body)
    response = client.get(link)
    if response.status_code == 302:  # allauth moves the key into the session first
        link = response["Location"]
    response = client.post(
        link, {"password1": "a brand new secret", "password2": "a brand new secret"}
    )
    assert response.status_code == 302
    world.alice.refresh_from_db()
    assert world.alice.check_password("a brand new secret")


def test_signing_up_asks_for_a_name_and_the_account_shows_it():
    client = Client()
    form = {
        "email": "nina@example.com",
        "password1": "a sturdy passphrase",
        "password2": "a sturdy passphrase",
    }
    assert 'name="name"' in client.get("/accounts/signup/").content.decode()
    response = client.post("/accounts/signup/", {**form, "name": "   "})
    assert response.status_code == 200
    assert not User.objects.filter(email="nina@example.com").exists()

    client.post("/accounts/signup/", {**form, "name": "  Nina   Noor "})
    user = User.objects.get(email="nina@example.com")
    assert user.name == "Nina Noor"
    assert str(user) == "Nina Noor"
    assert Membership.objects.get(user=user).organization.name == "Nina Noor"
    assert "user Nina Noor has given your email address" in mail.outbox[-1].body


def test_the_account_emails_come_from_doorkeep_and_name_the_sites_address(world, settings):
    settings.SITE_URL = "https://doors.example.org"
    client = Client(HTTP_HOST="127.0.0.1")
    settings.ALLOWED_HOSTS = ["127.0.0.1"]
    client.post(
        "/accounts/signup/",
        {
            "name": "Nina Noor",
            "email": "nina@example.com",
            "password1": "a sturdy passphrase",
            "password2": "a sturdy passphrase",
        },
    )
    client.post("/accounts/password/reset/", {"email": "alice@example.com"})
    confirmation, reset = mail.outbox
    for message in (confirmation, reset):
        assert message.subject.startswith("[Doorkeep] ")
        assert message.body.startswith("Hello from Doorkeep!")
        assert message.body.rstrip().endswith(
            "Thank you for using Doorkeep!\nhttps://doors.example.org"
        )
        assert "Hello from 127.0.0.1" not in message.body
    assert "register an account on https://doors.example.org" in confirmation.body


# --- wrong passwords (docs/decisions/0021-limits-per-account-and-address.md) ----------------------

STRANGER, OWNER = "203.0.113.9", "198.51.100.4"
TOO_MANY = "Too many failed login attempts"
PASSWORD = "correct horse battery staple"


def sign_in(password: str, at: str, email: str = "alice@example.com"):
    client = Client(REMOTE_ADDR=at)
    response = client.post("/accounts/login/", {"login": email, "password": password})
    return client, response.content.decode()


def test_a_stranger_guessing_on_the_sign_in_page_does_not_lock_the_owner_out(world):
    for _ in range(10):
        assert TOO_MANY not in sign_in("nope", STRANGER)[1]
    assert TOO_MANY in sign_in(PASSWORD, STRANGER)[1]

    client, _page = sign_in(PASSWORD, OWNER)

    assert client.session["_auth_user_id"] == str(world.alice.pk)


def test_wrong_passwords_on_the_web_and_through_the_api_share_one_budget(world, settings):
    settings.DOORKEEP = {**settings.DOORKEEP, "LOGIN_FAILURES_PER_ACCOUNT_ADDRESS": 4}
    api = Client(REMOTE_ADDR=STRANGER)
    for _ in range(2):
        sign_in("nope", STRANGER)
        api.post(
            "/api/v1/auth/tokens",
            {"email": "alice@example.com", "password": "nope"},
            content_type="application/json",
        )

    client, page = sign_in(PASSWORD, STRANGER)

    assert TOO_MANY in page
    assert "_auth_user_id" not in client.session


def test_a_right_password_gives_back_the_try_it_took(world, settings):
    settings.DOORKEEP = {**settings.DOORKEEP, "LOGIN_FAILURES_PER_ACCOUNT_ADDRESS": 2}
    for _ in range(4):
        client, _page = sign_in(PASSWORD, OWNER)
        assert client.session["_auth_user_id"] == str(world.alice.pk)
    sign_in("nope", OWNER)

    client, _page = sign_in(PASSWORD, OWNER)

    assert client.session["_auth_user_id"] == str(world.alice.pk)


def test_a_password_reset_by_email_lifts_the_accounts_sign_in_limit(world):
    for _ in range(10):
        sign_in("nope", OWNER)
    assert TOO_MANY in sign_in(PASSWORD, OWNER)[1]
    client = Client(REMOTE_ADDR=OWNER)
    client.post("/accounts/password/reset/", {"email": "alice@example.com"})
    link = _link(mail.outbox[-1].body)
    response = client.get(link)
    if response.status_code == 302:  # allauth moves the key into the session first
        link = response["Location"]
    client.post(link, {"password1": "a brand new secret", "password2": "a brand new secret"})

    client, _page = sign_in("a brand new secret", OWNER)

    assert client.session["_auth_user_id"] == str(world.alice.pk)
