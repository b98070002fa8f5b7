"""Demo mode (`doorkeep serve --demo`): the demo logins on the sign-in page and
the demo's mailbox, and neither outside demo mode."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from django.test import Client
from webhelp import text

from doorkeep import env

pytestmark = pytest.mark.django_db

SIGN_UP = {
    "name": "Nina Noor",
    "email": "nina@example.com",
    "password1": "a sturdy passphrase",
    "password2": "a sturdy passphrase",
}


@pytest.fixture
def demo(settings, tmp_path):
    settings.DOORKEEP_DEMO = True
    settings.DATA_DIR = tmp_path
    settings.EMAIL_BACKEND = env.email_settings("mailbox:")["EMAIL_BACKEND"]
    return settings


def test_the_sign_in_page_in_demo_mode_lists_the_demo_logins(demo):
    body = text(Client().get("/accounts/login/"))
    assert "Demo logins" in body
    for account in ("owner@demo.doorkeep.test", "guest@demo.doorkeep.test"):
        assert f"<code>{account}</code>" in body
    assert "<code>doorkeep-demo</code>" in body
    assert 'href="/demo/mail/"' in body


def test_the_sign_in_page_outside_demo_mode_lists_no_login_and_has_no_mailbox(settings):
    settings.DOORKEEP_DEMO = False
    body = text(Client().get("/accounts/login/"))
    assert "Demo logins" not in body
    assert "demo.doorkeep.test" not in body and "doorkeep-demo" not in body
    assert Client().get("/demo/mail/").status_code == 404


def test_the_demos_mailbox_shows_a_sign_up_confirmation_whose_link_works(demo, capsys):
    client = Client()
    response = client.post("/accounts/signup/", SIGN_UP, follow=True)
    assert 'href="/demo/mail/"' in text(response)  # "check your email" points at the mailbox
    assert "Please Confirm Your Email Address" in capsys.readouterr().out  # still printed too
    assert len(list((demo.DATA_DIR / "mail").glob("*.eml"))) == 1

    page = text(Client().get("/demo/mail/"))  # read without signing in
    assert "[Doorkeep] Please Confirm Your Email Address" in page
    assert "to nina@example.com" in page
    link = page.split('<a href="http://testserver/accounts/confirm-email/', 1)[1].split('"')[0]
    client.post(f"/accounts/confirm-email/{link}")
    assert client.get("/").status_code == 200  # confirmed and signed in


def test_the_demos_mailbox_lists_the_newest_email_first(demo):
    from django.core.mail import send_mail

    send_mail("First", "one", None, ["a@example.com"])
    send_mail("Second", "two", None, ["b@example.com"])
    page = text(Client().get("/demo/mail/"))
    assert page.index("<strong>Second</strong>") < page.index("<strong>First</strong>")


def test_demo_mode_is_refused_in_production():
    environment = {
        **os.environ,
        "DOORKEEP_ENV": "production",
        "DOORKEEP_DEMO": "true",
        "SECRET_KEY": "x" * 50,
        "ALLOWED_HOSTS": "doors.example.org",
        # Every other production setting is there: only demo mode is wrong.
        "DOORKEEP_ENCRYPTION_KEYS": "yVKisyWon_muI8z2ga6pXsEsohHZAJUXI2Ku3txG130=",
    }
    result = subprocess.run(
        [sys.executable, "-c", "import doorkeep.settings"],
        env=environment,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode != 0
    assert "DOORKEEP_DEMO (serve --demo) cannot be used in production" in result.stderr
