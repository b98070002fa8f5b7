"""A passkey as a second factor, in Chromium with a virtual authenticator
(DevTools' WebAuthn domain): added under Two-factor, then asked for at the
next sign-in. allauth's WebAuthn script runs under the Content-Security-Policy."""

from __future__ import annotations

from typing import Any

from allauth.mfa.models import Authenticator
from browser_helpers import sign_in, signed_in_user
from playwright.sync_api import expect

PASSWORD = "correct horse battery staple"  # the world's (tests/conftest.py)
VIOLATIONS = """
window.__csp = [];
document.addEventListener("securitypolicyviolation", (e) => window.__csp.push(e.violatedDirective));
"""


def _virtual_authenticator(page: Any) -> None:
    devtools = page.context.new_cdp_session(page)
    devtools.send("WebAuthn.enable")
    devtools.send(
        "WebAuthn.addVirtualAuthenticator",
        {
            "options": {
                "protocol": "ctap2",
                "transport": "internal",
                "hasResidentKey": True,
                "hasUserVerification": True,
                "isUserVerified": True,
                "automaticPresenceSimulation": True,
            }
        },
    )


def test_a_passkey_added_as_second_factor_is_asked_for_at_the_next_sign_in(
    browser_page: Any, world: Any
) -> None:
    page = browser_page
    page.add_init_script(VIOLATIONS)
    _virtual_authenticator(page)
    sign_in(page, world.alice.email, PASSWORD)

    page.goto("/accounts/2fa/webauthn/add/")
    if "/reauthenticate/" in page.url:  # changing one's factors asks for the password again
        page.locator("input[name=password]").fill(PASSWORD)
        page.locator("main").get_by_role("button").first.click()
        page.wait_for_url("**/webauthn/add/**")
    page.locator("input[name=name]").fill("Laptop")
    page.locator("#mfa_webauthn_add").click()
    page.wait_for_url(lambda url: "/webauthn/add/" not in url)
    assert Authenticator.objects.filter(user=world.alice, type="webauthn").exists()
    assert page.evaluate("window.__csp") == []

    page.context.clear_cookies()
    page.goto("/accounts/login/")
    page.locator("input[name=login]").fill(world.alice.email)
    page.locator("input[name=password]").fill(PASSWORD)
    page.locator("main").get_by_role("button", name="Sign In", exact=True).click()
    page.wait_for_url("**/accounts/2fa/authenticate/")
    assert signed_in_user(page) is None  # the password alone does not sign in
    page.locator("#mfa_webauthn_authenticate").click()
    page.wait_for_url(lambda url: "/accounts/2fa/" not in url)
    expect(page.locator("main")).to_be_visible()
    assert signed_in_user(page) == world.alice
    assert page.evaluate("window.__csp") == []
