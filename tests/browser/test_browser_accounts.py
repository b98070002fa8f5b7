"""Signing up and in, in a real browser, with the verification email sent over
real SMTP."""

from __future__ import annotations

from browser_helpers import confirm_email, link_in, sign_in, sign_up, signed_in_user, wait_for_email
from playwright.sync_api import expect

from doorkeep.accounts.models import Membership, Role, User

EMAIL = "nina@example.com"
PASSWORD = "a sturdy passphrase"


def test_a_new_person_signs_up_confirms_the_email_and_is_signed_in(browser_page, smtp, live_server):
    page = browser_page

    sign_up(page, EMAIL, PASSWORD, name="Nina Noor")

    expect(page.locator("main")).to_contain_text("Verify Your Email Address")
    assert signed_in_user(page) is None  # not before the address is confirmed
    message = wait_for_email(smtp, EMAIL)
    assert message["Subject"].startswith("[Doorkeep] ")
    body = message.get_body(preferencelist=("plain",)).get_content()
    assert body.startswith("Hello from Doorkeep!")
    link = link_in(message, "/accounts/confirm-email/")
    assert link.startswith(live_server.url + "/")

    confirm_email(page, link)

    user = signed_in_user(page)
    assert user is not None and user.email == EMAIL
    assert user.name == "Nina Noor"
    assert user.emailaddress_set.get(email=EMAIL).verified
    assert Membership.objects.get(user=user).role == Role.LOCK_OWNER
    assert page.url == live_server.url + "/"
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()


def test_a_wrong_password_shows_the_error_and_does_not_sign_in(browser_page, world, live_server):
    page = browser_page

    sign_in(page, world.alice.email, "not her password")

    expect(page.locator("main")).to_contain_text(
        "The email address and/or password you specified are not correct."
    )
    assert page.url == live_server.url + "/accounts/login/"
    assert signed_in_user(page) is None
    expect(page.get_by_role("button", name="Sign out")).to_have_count(0)
    assert User.objects.get(pk=world.alice.pk).last_login is None
