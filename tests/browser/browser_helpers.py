"""What a person does in the browser, and what a test reads back: signing in
and up, the links in an email, who the browser is signed in as.

``page`` is a Playwright page whose relative URLs go to the live server (the
``browser_page`` fixture); ``mailbox`` is what the ``smtp`` fixture returns."""

from __future__ import annotations

import html
import re
import time
from email.message import EmailMessage
from importlib import import_module
from typing import Any

from django.conf import settings
from django.contrib.auth import SESSION_KEY

from doorkeep.accounts.models import User

_URL = re.compile(r"https?://[^\s\"'<>]+")
# For any one step (a page load, a click, an expect): Playwright's own default,
# so that a busy machine does not fail a test; a step that works takes far less.
TIMEOUT_MS = 30_000


def submit(page: Any, button: str) -> None:
    """Press the main form's button named ``button`` and wait for the page
    that answers."""
    page.locator("main").get_by_role("button", name=button, exact=True).click()
    page.wait_for_load_state()


def sign_in(page: Any, email: str, password: str) -> None:
    """Fill in and send the sign-in form. Says nothing about the outcome:
    see ``signed_in_user``."""
    page.goto("/accounts/login/")
    page.locator("input[name=login]").fill(email)
    page.locator("input[name=password]").fill(password)
    submit(page, "Sign In")


def sign_in_as(context: Any, url: str, email: str) -> None:
    """Sign a browser context in as the person with ``email`` without the
    form: a session made on the server side, its cookie given to the
    browser (for tests about other pages than sign-in)."""
    from django.test import Client

    client = Client()
    client.force_login(User.objects.get(email=email))
    cookie = client.cookies[settings.SESSION_COOKIE_NAME].value
    context.add_cookies([{"name": settings.SESSION_COOKIE_NAME, "value": cookie, "url": url}])


def sign_up(page: Any, email: str, password: str, *, name: str = "") -> None:
    """Fill in and send the sign-up form (the address still needs confirming).
    The name defaults to the address's local part."""
    page.goto("/accounts/signup/")
    page.locator("input[name=name]").fill(name or email.split("@")[0])
    page.locator("input[name=email]").fill(email)
    page.locator("input[name=password1]").fill(password)
    page.locator("input[name=password2]").fill(password)
    submit(page, "Sign Up")


def confirm_email(page: Any, link: str) -> None:
    """Open the confirmation link of an email and press Confirm."""
    page.goto(link)
    submit(page, "Confirm")


def sign_up_verified(page: Any, mailbox: Any, email: str, password: str, *, name: str = "") -> User:
    """Sign up, follow the link in the confirmation email: the browser ends
    signed in as the new, verified person, who is returned."""
    sign_up(page, email, password, name=name)
    confirm_email(page, link_in(wait_for_email(mailbox, email), "/accounts/confirm-email/"))
    user = signed_in_user(page)
    assert user is not None and user.email == email, f"not signed in as {email} at {page.url}"
    return user


def signed_in_user(page: Any) -> User | None:
    """Whom the browser's session cookie signs in, as the server sees it."""
    cookie = next(
        (c for c in page.context.cookies() if c["name"] == settings.SESSION_COOKIE_NAME), None
    )
    if cookie is None:
        return None
    session = import_module(settings.SESSION_ENGINE).SessionStore(session_key=cookie["value"])
    user_id = session.get(SESSION_KEY)
    return User.objects.filter(pk=user_id).first() if user_id else None


def wait_for_email(
    mailbox: Any, address: str, *, count: int = 1, timeout: float = TIMEOUT_MS / 1000
) -> EmailMessage:
    """The latest message to ``address`` once at least ``count`` have arrived."""
    deadline = time.monotonic() + timeout
    while len(mailbox.to(address)) < count:
        if time.monotonic() > deadline:
            got = [str(m["To"]) for m in mailbox.messages]
            raise AssertionError(f"fewer than {count} message(s) to {address}; got {got}")
        time.sleep(0.05)
    message: EmailMessage = mailbox.last_to(address)
    return message


def links_in(message: EmailMessage) -> list[str]:
    """Every http(s) link in the message's text and HTML parts, in order,
    each once."""
    found: list[str] = []
    for part in message.walk():
        if part.get_content_type() in ("text/plain", "text/html"):
            text = html.unescape(part.get_content())
            found += [url.rstrip(".,;:)") for url in _URL.findall(text)]
    return list(dict.fromkeys(found))


def link_in(message: EmailMessage, containing: str) -> str:
    """The one link of the message whose URL contains ``containing``."""
    matches = [url for url in links_in(message) if containing in url]
    assert len(matches) == 1, f"links with {containing!r}: {matches}; all: {links_in(message)}"
    return matches[0]
