"""Who sees what: every page for the owner, nothing for an outsider, and a
member who may look but not change."""

from __future__ import annotations

import pytest
from webhelp import text

from doorkeep.accounts.models import ApiToken
from doorkeep.accounts.services import create_token
from doorkeep.events.models import Event
from doorkeep.gateway.models import Device
from doorkeep.keys.models import Key
from doorkeep.keys.services import CredentialSpec, HolderSpec, KeySpec, issue_key
from doorkeep.locks.models import Lock
from doorkeep.properties.models import Entry, Property


def _key(world, name="Dana", email="dana@example.com", pin="482913"):
    return issue_key(
        world.alice,
        world.lock.pk,
        KeySpec(
            holder=HolderSpec(name=name, email=email),
            credentials=[CredentialSpec("pin", pin)],
        ),
    )


def _pages(world):
    lock, prop = world.lock.pk, world.prop.pk
    return [
        "/",
        f"/locks/{lock}/",
        f"/locks/{lock}/events/",
        f"/locks/{lock}/events.csv",
        f"/properties/{prop}/",
        f"/properties/{prop}/events/",
        f"/properties/{prop}/events.csv",
        "/settings/tokens/",
        "/doors/",
        "/notifications/",
        "/settings/notifications/",
        f"/organizations/{world.org.pk}/webhooks/",
    ]


# Pages about the signed-in person, not about an organization's objects.
OWN_PAGES = {"/", "/settings/tokens/", "/doors/", "/notifications/", "/settings/notifications/"}


def test_every_page_renders_for_the_lock_owner(world, alice):
    _key(world)
    for url in _pages(world):
        response = alice.get(url)
        assert response.status_code == 200, url


def test_a_signed_out_visitor_is_sent_to_the_sign_in_page(world):
    anonymous = world.client(None)
    for url in _pages(world):
        response = anonymous.get(url)
        assert response.status_code == 302, url
        assert response["Location"].startswith("/accounts/login/?next="), url


ALICE_SECRETS = (
    "Canal House",
    "Front door",
    "DK-TEST-0001",
    "Dana",
    "dana@example.com",
    "Alice Locks",
    "Keizersgracht",
)


def test_every_alice_page_answers_404_to_an_outsider_and_shows_none_of_her_data(world, charlie):
    _key(world)
    for url in [url for url in _pages(world) if url not in OWN_PAGES]:
        response = charlie.get(url)
        assert response.status_code == 404, url
        body = text(response)
        for secret in ALICE_SECRETS:
            assert secret not in body, (url, secret)


def test_an_outsiders_own_pages_show_none_of_alices_data(world, charlie):
    _key(world)
    for url in sorted(OWN_PAGES):
        body = text(charlie.get(url))
        for secret in ALICE_SECRETS:
            assert secret not in body, (url, secret)
    assert "Charlie&#x27;s Shed" in charlie.get("/").content.decode()


def test_every_post_answers_404_to_an_outsider_and_changes_nothing(world, charlie):
    key = _key(world)
    token, _secret = create_token(world.alice, "Alice's script")
    lock, prop = world.lock.pk, world.prop.pk
    alice_events = Event.objects.filter(organization=world.org).count()
    digest = Device.objects.get(lock=world.lock).secret_digest
    posts = [
        (f"/locks/{lock}/keys/", {"name": "Mallory", "email": "m@example.com", "pin": "1234"}),
        (f"/locks/{lock}/keys/{key.pk}/take-back/", {}),
        (f"/locks/{lock}/rename/", {"name": "Pwned"}),
        (f"/locks/{lock}/remove/", {"confirm": "on"}),
        (f"/properties/{prop}/entries/", {"name": "Side door"}),
        (
            "/locks/register/",
            {
                "serial": "DK-TEST-0001",
                "claim_secret": "ABCD-EFGH-JKLM-NPQR",
                "entry": world.entry.pk,
            },
        ),
        (
            "/properties/add/",
            {"organization": world.org.pk, "name": "Pwned", "timezone": "Europe/Paris"},
        ),
        (f"/settings/tokens/{token.pk}/revoke/", {}),
        (f"/locks/{lock}/device-secret/", {}),
        (f"/locks/{lock}/open/", {}),
        (f"/doors/{world.entry.pk}/open/", {"next": "/doors/"}),
    ]
    for url, data in posts:
        response = charlie.post(url, data)
        assert response.status_code == 404, url
        body = text(response)
        typed = " ".join(str(v) for v in data.values())  # what Charlie typed is echoed back
        for secret in ALICE_SECRETS:
            assert secret in typed or secret not in body, (url, secret)

    world.lock.refresh_from_db()
    assert world.lock.name == "Front door lock"
    assert world.lock.organization_id == world.org.pk
    assert Key.objects.get(pk=key.pk).revoked_at is None
    assert Key.objects.count() == 1
    assert not Entry.objects.filter(name="Side door").exists()
    assert not Property.objects.filter(name="Pwned").exists()
    assert ApiToken.objects.get(pk=token.pk).revoked_at is None
    assert Event.objects.filter(organization=world.org).count() == alice_events
    assert Device.objects.get(lock=world.lock).secret_digest == digest


def test_ids_that_do_not_exist_answer_404(world, alice):
    assert alice.get("/locks/999999/").status_code == 404
    assert alice.get("/properties/999999/events/").status_code == 404
    assert alice.get("/no/such/page/").status_code == 404


def test_a_member_sees_the_lock_page_but_not_its_keys(world, bob):
    _key(world)
    response = bob.get(f"/locks/{world.lock.pk}/")
    assert response.status_code == 200
    body = text(response)
    assert "DK-TEST-0001" in body and "Front door lock" in body
    assert "Only lock owners and building managers can see the keys of a lock." in body
    assert "Dana" not in body and "dana@example.com" not in body
    assert "Issue a key" not in body and "Take back" not in body
    assert "Remove this lock" not in body
    # The dashboard lists the lock, without forms the member cannot use.
    dashboard = text(bob.get("/"))
    assert "Front door lock" in dashboard
    assert "Register a lock" not in dashboard
    assert "Add a property" not in dashboard


def test_a_member_cannot_issue_a_key_and_nothing_changes(world, bob):
    response = bob.post(
        f"/locks/{world.lock.pk}/keys/", {"name": "Eve", "email": "eve@example.com", "pin": "5555"}
    )
    assert response.status_code == 403
    assert "Only lock owners and building managers can issue or take back keys." in text(response)
    assert not Key.objects.exists()
    world.lock.refresh_from_db()
    assert world.lock.credential_version == 0


def test_a_member_cannot_take_back_a_key_and_nothing_changes(world, bob):
    key = _key(world)
    response = bob.post(f"/locks/{world.lock.pk}/keys/{key.pk}/take-back/")
    assert response.status_code == 403
    assert "Only lock owners and building managers can issue or take back keys." in text(response)
    key.refresh_from_db()
    assert key.revoked_at is None


def test_a_member_cannot_rename_or_remove_the_lock(world, bob):
    response = bob.post(f"/locks/{world.lock.pk}/rename/", {"name": "Bob's lock"})
    assert response.status_code == 403
    response = bob.post(f"/locks/{world.lock.pk}/remove/", {"confirm": "on"})
    assert response.status_code == 403
    assert "Only lock owners can register or remove locks." in text(response)
    lock = Lock.objects.get(pk=world.lock.pk)
    assert lock.name == "Front door lock" and lock.organization_id == world.org.pk


def test_a_member_cannot_read_the_event_log(world, bob):
    for url in (
        f"/locks/{world.lock.pk}/events/",
        f"/locks/{world.lock.pk}/events.csv",
        f"/properties/{world.prop.pk}/events/",
    ):
        response = bob.get(url)
        assert response.status_code == 403, url
        assert "Only lock owners and building managers can read the event log." in text(response)


def test_a_member_cannot_add_an_entry(world, bob):
    response = bob.post(f"/properties/{world.prop.pk}/entries/", {"name": "Cellar"})
    assert response.status_code == 403
    assert not Entry.objects.filter(name="Cellar").exists()


@pytest.mark.parametrize("method", ["get", "post"])
def test_pages_refuse_the_wrong_http_method(world, alice, method):
    if method == "get":
        assert alice.get(f"/locks/{world.lock.pk}/remove/").status_code == 405
    else:
        assert alice.post(f"/locks/{world.lock.pk}/events/").status_code == 405


def test_a_member_who_sends_a_form_they_cannot_use_is_told_why(world, bob):
    response = bob.post("/locks/register/", {})
    assert response.status_code == 403
    assert "Only lock owners can register or remove locks." in text(response)
    response = bob.post("/properties/add/", {})
    assert response.status_code == 403
    assert "Only lock owners and building managers can change properties." in text(response)
    response = bob.post(f"/locks/{world.lock.pk}/keys/", {"pin": "12"})
    assert response.status_code == 403
    assert "Only lock owners and building managers can issue or take back keys." in text(response)
    response = bob.post(f"/locks/{world.lock.pk}/rename/", {})
    assert response.status_code == 403
    assert "Only lock owners can register or remove locks." in text(response)
    response = bob.post(f"/properties/{world.prop.pk}/entries/", {})
    assert response.status_code == 403
    assert "Only lock owners and building managers can change properties." in text(response)
    response = bob.post(f"/locks/{world.lock.pk}/device-secret/", {})
    assert response.status_code == 403
    assert "Only lock owners can register or remove locks." in text(response)
