"""API tokens, the sign-in pages in Doorkeep's look, and the language selector."""

from __future__ import annotations

import re

from django.test import Client
from webhelp import text

from doorkeep.accounts.models import ApiToken
from doorkeep.accounts.services import create_token, user_for_token

PASSWORD = "correct horse battery staple"


def test_it_creates_a_token_and_shows_it_once(world, alice):
    response = alice.post("/settings/tokens/", {"name": "Door sync"})
    assert response.status_code == 200
    token = response.context["new_token"]
    assert token.startswith("dk_")
    body = text(response)
    assert token in body
    assert "Copy it now: this is the only time it is shown." in body
    assert "no-store" in response["Cache-Control"]
    assert user_for_token(token) == world.alice
    row = ApiToken.objects.get(user=world.alice)
    assert row.name == "Door sync"
    # Never again.
    listing = text(alice.get("/settings/tokens/"))
    assert token not in listing
    assert "Door sync" in listing and f"{row.hint}…" in listing


def test_it_revokes_a_token(world, alice):
    row, token = create_token(world.alice, "Old script")
    response = alice.post(f"/settings/tokens/{row.pk}/revoke/")
    assert response.status_code == 302 and response["Location"] == "/settings/tokens/"
    assert user_for_token(token) is None
    body = text(alice.get("/settings/tokens/"))
    assert "The token is revoked; it no longer works." in body
    assert "Revoked" in body


def test_revoking_a_token_twice_answers_404(world, alice):
    row, _token = create_token(world.alice, "Old script")
    alice.post(f"/settings/tokens/{row.pk}/revoke/")
    assert alice.post(f"/settings/tokens/{row.pk}/revoke/").status_code == 404


def test_the_token_list_shows_only_ones_own_tokens(world, alice, charlie):
    create_token(world.alice, "Alice's script")
    create_token(world.charlie, "Charlie's script")
    body = text(charlie.get("/settings/tokens/"))
    assert "Charlie's script" in body and "Alice's script" not in body


def test_the_sign_in_page_uses_the_doorkeep_layout(db):
    response = Client().get("/accounts/login/")
    assert response.status_code == 200
    body = text(response)
    assert "/static/doorkeep.css" in body
    assert 'class="brand"' in body
    assert re.search(r"<title>\s*Sign In\s*· Doorkeep</title>", body)
    assert 'name="password"' in body
    assert 'action="/i18n/setlang/"' in body


def test_the_site_icon_is_linked_and_answers_at_favicon_ico_too(db):
    page = text(Client().get("/accounts/login/"))
    link = re.search(r'<link rel="icon" href="([^"]+)" type="image/svg\+xml">', page)
    assert link is not None
    response = Client().get("/favicon.ico")
    assert response.status_code == 301
    assert response["Location"] == link.group(1)
    icon = Client().get(link.group(1))
    assert icon.status_code == 200
    assert icon["Content-Type"] == "image/svg+xml"
    assert b"<svg" in b"".join(icon.streaming_content)


def test_the_sign_up_and_password_reset_pages_use_the_doorkeep_layout(db):
    for url in ("/accounts/signup/", "/accounts/password/reset/"):
        response = Client().get(url)
        assert response.status_code == 200, url
        assert "/static/doorkeep.css" in text(response), url


def test_signing_in_with_the_form_leads_to_the_dashboard(world):
    client = Client()
    response = client.post("/accounts/login/", {"login": "alice@example.com", "password": PASSWORD})
    assert response.status_code == 302
    assert response["Location"] == "/home/"  # which sends a lock owner to the dashboard
    assert client.get("/home/")["Location"] == "/"
    dashboard = client.get("/")
    assert dashboard.status_code == 200
    assert "Front door lock" in text(dashboard)


def test_a_wrong_password_shows_the_sign_in_page_again(world):
    response = Client().post("/accounts/login/", {"login": "alice@example.com", "password": "no"})
    assert response.status_code == 200
    assert "/static/doorkeep.css" in text(response)
    assert "not correct" in text(response)


def test_signing_out_is_a_post_from_the_header(world, alice):
    body = text(alice.get("/"))
    assert '<form method="post" action="/accounts/logout/"' in body
    response = alice.post("/accounts/logout/")
    assert response.status_code == 302
    assert alice.get("/").status_code == 302


def test_the_language_selector_switches_the_language(world, alice):
    response = alice.post("/i18n/setlang/", {"language": "fr", "next": "/settings/tokens/"})
    assert response.status_code == 302 and response["Location"] == "/settings/tokens/"
    body = alice.get("/settings/tokens/").content.decode()
    assert '<html lang="fr">' in body
    assert '<option value="fr" selected>' in body


def test_the_account_pages_of_allauth_use_the_doorkeep_layout(world, alice):
    for url in ("/accounts/email/", "/accounts/password/change/"):
        response = alice.get(url)
        assert response.status_code == 200, url
        body = text(response)
        assert "/static/doorkeep.css" in body and "API tokens" in body, url


def test_every_post_form_carries_a_csrf_token(world, alice):
    from doorkeep.keys.services import CredentialSpec, HolderSpec, KeySpec, issue_key

    issue_key(
        world.alice,
        world.lock.pk,
        KeySpec(holder=HolderSpec(name="Dana"), credentials=[CredentialSpec("remote", "RM-1")]),
    )
    create_token(world.alice, "script")
    pages = ["/", f"/locks/{world.lock.pk}/", f"/properties/{world.prop.pk}/", "/settings/tokens/"]
    for url in pages:
        body = alice.get(url).content.decode()
        forms = re.findall(r'<form method="post".*?</form>', body, flags=re.S)
        assert forms, url
        for form in forms:
            assert 'name="csrfmiddlewaretoken"' in form, (url, form[:200])


def test_a_form_posts_with_csrf_checks_on(world):
    client = Client(enforce_csrf_checks=True)
    client.force_login(world.alice)
    page = client.get("/settings/tokens/").content.decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
    assert client.post("/settings/tokens/", {"name": "x"}).status_code == 403
    response = client.post("/settings/tokens/", {"name": "x", "csrfmiddlewaretoken": token})
    assert response.status_code == 200 and response.context["new_token"]
