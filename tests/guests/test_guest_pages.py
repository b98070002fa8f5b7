"""What a guest's account shows: only the guest's menus when they are only a
guest, and an invitation link that no longer works speaks to the guest."""

from __future__ import annotations

import re
from typing import Any

from django.test import Client
from guest_helpers import GuestWorld, phone_key

from doorkeep.accounts.services import create_organization
from doorkeep.guests import services as guests
from doorkeep.properties.services import create_property

ORGANIZATION_MENUS = ("Locks", "My doors", "Account upgrades", "API tokens", "API docs")


def nav(response: Any) -> list[str]:
    """The names of the main navigation's links."""
    found = re.search(r'<nav class="nav"[^>]*>(.*?)</nav>', response.content.decode(), re.S)
    assert found, response.content.decode()[:2000]
    return [
        re.sub(r"<[^>]+>|\s+", " ", a).strip()
        for a in re.findall(r"<a [^>]*>(.*?)</a>", found.group(1), re.S)
    ]


def token_of(smtp: Any, email: str) -> str:
    body = smtp.last_to(email).get_body(preferencelist=("plain",)).get_content()
    found = re.search(r"/invitations/([^/\s]+)/", body)
    assert found, body
    return found.group(1)


def test_a_guest_who_signed_up_sees_only_the_guests_menus_on_every_page(gw: GuestWorld) -> None:
    guests.accept(gw.gina, gw.invite().pk)
    create_organization(gw.gina, "Gina's own")  # as signing up does: empty
    gina = gw.w.client(gw.gina)
    for url in ("/guest/", "/notifications/", "/accounts/email/", "/accounts/sessions/"):
        menus = nav(gina.get(url))
        assert "Guest Key" in menus, (url, menus)
        assert not set(ORGANIZATION_MENUS) & set(menus), (url, menus)


def test_a_guest_whose_organization_holds_a_property_keeps_the_lock_owners_menus(
    gw: GuestWorld,
) -> None:
    guests.accept(gw.gina, gw.invite().pk)
    org = create_organization(gw.gina, "Gina's own")
    create_property(gw.gina, org.pk, name="Gina's cabin")
    menus = nav(gw.w.client(gw.gina).get("/guest/"))
    assert "Guest Key" in menus and "Locks" in menus and "API tokens" in menus


def test_a_guest_with_a_key_of_their_own_keeps_my_doors(gw: GuestWorld) -> None:
    guests.accept(gw.gina, gw.invite(entry_ids=[gw.w.entry2.pk]).pk)  # the garage
    create_organization(gw.gina, "Gina's own")
    phone_key(gw.w.alice, gw.w.lock, gw.gina)
    menus = nav(gw.w.client(gw.gina).get("/guest/"))
    assert "Guest Key" in menus and "My doors" in menus


def test_a_lock_owner_sees_the_lock_owners_menus(gw: GuestWorld) -> None:
    menus = nav(gw.w.client(gw.w.alice).get("/"))
    assert set(ORGANIZATION_MENUS) <= set(menus) and "Guest Key" not in menus


def test_a_used_invitation_link_sends_the_guest_to_guest_key(gw: GuestWorld, smtp: Any) -> None:
    guests.accept(gw.gina, gw.invite().pk)
    url = f"/invitations/{token_of(smtp, 'gina@example.com')}/"

    signed_in = gw.w.client(gw.gina).get(url)
    body = signed_in.content.decode()
    assert signed_in.status_code == 410
    assert "This invitation link can no longer be used" in body
    assert "already accepted" in body
    assert 'href="/guest/">Open Guest Key</a>' in body
    assert "Back to your locks" not in body and "Something is not right" not in body

    anonymous = Client().get(url).content.decode()
    assert "sign in to open your Guest Key" in anonymous
    assert 'href="/accounts/login/?next=/guest/"' in anonymous
    assert "Back to your locks" not in anonymous


def test_a_declined_invitation_link_tells_the_guest_to_ask_again(gw: GuestWorld, smtp: Any) -> None:
    guests.decline(gw.gina, gw.invite().pk)
    url = f"/invitations/{token_of(smtp, 'gina@example.com')}/"
    response = gw.w.client(gw.gina).get(url)
    body = response.content.decode()
    assert response.status_code == 410
    assert "This invitation was declined." in body
    assert "Ask the person who invited you to send a new invitation." in body
    assert "Back to your locks" not in body


def test_a_link_that_never_worked_speaks_to_a_guest_too(gw: GuestWorld) -> None:
    response = Client().get("/invitations/not-a-token/")
    body = response.content.decode()
    assert response.status_code == 404
    assert "This invitation link does not work" in body and "copied whole" in body
    assert "Back to your locks" not in body
