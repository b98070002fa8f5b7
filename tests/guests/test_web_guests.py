"""The guest pages, as a browser without JavaScript uses them."""

from __future__ import annotations

import re
from typing import Any

from django.test import Client
from guest_helpers import GuestWorld, open_policy

from doorkeep.accounts.services import create_user
from doorkeep.guests import presence
from doorkeep.guests import services as guests
from doorkeep.guests.models import Invitation, InvitationStatus, Panel, Presence


def text(response: Any) -> str:
    return response.content.decode()


def token_of(smtp: Any, email: str) -> str:
    body = smtp.last_to(email).get_body(preferencelist=("plain",)).get_content()
    found = re.search(r"/invitations/([^/\s]+)/", body)
    assert found, body
    return found.group(1)


def test_the_building_manager_sets_the_policy_and_installs_a_panel(gw: GuestWorld) -> None:
    w = gw.w
    alice = w.client(w.alice)
    page = alice.get(f"/properties/{w.prop.pk}/guests/")
    assert page.status_code == 200 and "Guest policy" in text(page)
    saved = alice.post(
        f"/properties/{w.prop.pk}/guests/policy/",
        {
            "sharing_enabled": "on",
            "shareable": [str(w.entry.pk)],
            "max_guests_per_resident": "2",
            "require_presence": "on",
            "reverify_after_days": "10",
        },
    )
    assert saved.status_code == 302
    rules = guests.policy_of(w.prop.pk)
    assert rules.require_presence and rules.reverify_after_days == 10
    assert guests.shareable_entry_ids(rules) == {w.entry.pk}
    bad = alice.post(f"/properties/{w.prop.pk}/guests/policy/", {"max_guests_per_resident": "0"})
    assert bad.status_code == 400
    installed = alice.post(
        f"/properties/{w.prop.pk}/panels/", {"entry": w.entry.pk, "name": "Lobby"}
    )
    panel = Panel.objects.get()
    assert installed.status_code == 200 and panel.secret in text(installed)
    tag = f"/guest/tap/?entry={w.entry.pk}&amp;panel={panel.pk}&amp;code={{code}}</code>"
    assert tag in text(installed)  # the placeholder the panel fills in, readable
    assert "no-cache" in installed["Cache-Control"]
    assert panel.secret not in text(alice.get(f"/properties/{w.prop.pk}/guests/"))
    assert w.client(w.bob).get(f"/properties/{w.prop.pk}/guests/").status_code == 403
    assert w.client(w.charlie).get(f"/properties/{w.prop.pk}/guests/").status_code == 404
    assert (
        w.client(w.charlie).post(f"/properties/{w.prop.pk}/panels/{panel.pk}/remove/").status_code
        == 404
    )


def test_a_resident_invites_resends_and_revokes(gw: GuestWorld, smtp: Any) -> None:
    rita = gw.w.client(gw.rita)
    page = rita.get("/guests/")
    assert page.status_code == 200 and "Send invitation" in text(page)
    sent = rita.post(
        f"/guests/{gw.w.prop.pk}/invite/",
        {"email": "gina@example.com", "entries": [str(gw.w.entry.pk)], "ends_on": "2099-12-31"},
    )
    assert sent.status_code == 302
    invitation = Invitation.objects.get()
    assert invitation.ends_at is not None and invitation.ends_at.year == 2099
    assert (
        smtp.last_to("gina@example.com")["Subject"]
        == "Rita Resident added you as an auto-verified guest"
    )
    listing = text(rita.get("/guests/"))
    assert 'data-status="sent"' in listing and "gina@example.com" in listing
    again = rita.post(
        f"/guests/{gw.w.prop.pk}/invite/",
        {"email": "gina@example.com", "entries": [str(gw.w.entry.pk)]},
    )
    assert again.status_code == 409 and "already invited" in text(again)
    assert rita.post(f"/guests/invitations/{invitation.pk}/resend/").status_code == 302
    assert len(smtp.to("gina@example.com")) == 2
    assert rita.post(f"/guests/invitations/{invitation.pk}/revoke/").status_code == 302
    assert 'data-status="revoked"' in text(rita.get("/guests/"))
    assert (
        gw.w.client(gw.w.charlie).post(f"/guests/invitations/{invitation.pk}/revoke/").status_code
        == 404
    )


def test_a_form_shown_again_after_an_error_offers_only_the_entries_one_may_share(
    gw: GuestWorld,
) -> None:
    open_policy(gw.w, shareable_entry_ids=[gw.w.entry.pk])
    rita = gw.w.client(gw.rita)
    offered = 'name="entries" value="{}"'
    assert offered.format(gw.w.entry2.pk) not in text(rita.get("/guests/"))

    again = rita.post(
        f"/guests/{gw.w.prop.pk}/invite/",
        {"email": "gina@example.com", "entries": [str(gw.w.entry.pk)], "ends_on": "2026-02-30"},
    )

    assert again.status_code == 400
    assert offered.format(gw.w.entry.pk) in text(again)
    assert offered.format(gw.w.entry2.pk) not in text(again)
    # Asked for by hand all the same: refused, with the reason on the form.
    refused = rita.post(
        f"/guests/{gw.w.prop.pk}/invite/",
        {"email": "gina@example.com", "entries": [str(gw.w.entry2.pk)]},
    )
    assert refused.status_code == 400
    assert "not one of the available choices" in text(refused)
    assert not Invitation.objects.exists()


def test_the_invitation_link_for_each_kind_of_visitor(gw: GuestWorld, smtp: Any) -> None:
    gw.invite()
    token = token_of(smtp, "gina@example.com")
    url = f"/invitations/{token}/"

    anonymous = Client().get(url)
    assert anonymous.status_code == 200
    assert "Rita Resident added you as an auto-verified guest" in text(anonymous)
    assert "gina@example.com" in text(anonymous) and "Create an account" in text(anonymous)

    other = create_user("someone.else@example.com", "correct horse battery staple")
    wrong = gw.w.client(other).get(url)
    assert wrong.status_code == 403
    assert "ask Rita Resident to invite" in text(wrong) and "Sign out and continue" in text(wrong)
    assert gw.w.client(other).post(url, {"answer": "accept"}).status_code == 403
    assert Invitation.objects.get().status == InvitationStatus.SENT

    gina = gw.w.client(gw.gina)
    assert "Accept" in text(gina.get(url))
    accepted = gina.post(url, {"answer": "accept"})
    assert accepted.status_code == 302 and "/guest/" in accepted["Location"]
    home = gina.get(accepted["Location"])
    assert "Canal House" in text(home) and "Guest Key" in text(home)
    used = gina.get(url)
    assert used.status_code == 410 and "already accepted" in text(used)
    assert Client().get(f"/invitations/{token[:-3]}xyz/").status_code == 404


def test_a_guest_declines_from_the_dashboard_and_nothing_is_granted(gw: GuestWorld) -> None:
    invitation = gw.invite()
    gina = gw.w.client(gw.gina)
    home = gina.get("/")
    assert home.status_code == 302 and home["Location"] == "/guest/"
    assert "added you as an auto-verified guest" in text(gina.get("/guest/"))
    assert gina.post(f"/guest/invitations/{invitation.pk}/decline/").status_code == 302
    invitation.refresh_from_db()
    assert invitation.status == InvitationStatus.DECLINED
    assert "No entries are shared with you" in text(gina.get("/guest/"))


def test_the_guest_key_and_presence_verification_pages(gw: GuestWorld) -> None:
    open_policy(gw.w, require_presence=True)
    guests.accept(gw.gina, gw.invite().pk)
    _panel, secret = presence.add_panel(gw.w.alice, gw.w.entry.pk, "Lobby")
    gina = gw.w.client(gw.gina)
    key = text(gina.get(f"/guest/{gw.w.prop.pk}/key/"))
    assert "Front door" in key and "Garage" in key and "Verify" in key
    assert "tap your phone on the panel" in key
    # unlocking before verifying sends the guest to the verify page
    unlock = gina.post(f"/guest/entries/{gw.w.entry.pk}/unlock/")
    assert (
        unlock.status_code == 302
        and unlock["Location"] == f"/guest/entries/{gw.w.entry.pk}/verify/"
    )
    page = text(gina.get(unlock["Location"]))
    assert "Ready to tap" in page and "guest-nfc.js" in page
    wrong = gina.post(unlock["Location"], {"code": "000000"})
    assert wrong.status_code in (400, 409) and not Presence.objects.exists()
    code, _step = presence.code_at(secret)
    done = gina.post(unlock["Location"], {"code": code})
    assert done.status_code == 302 and Presence.objects.filter(guest=gw.gina).exists()
    after = text(gina.get(done["Location"]))
    assert "Presence verified" in after and "did not open" in after  # the lock is offline here
    assert "Unlock" in after


def test_the_nfc_tag_url_asks_before_verifying(gw: GuestWorld) -> None:
    guests.accept(gw.gina, gw.invite(entry_ids=[gw.w.entry.pk]).pk)
    panel, secret = presence.add_panel(gw.w.alice, gw.w.entry2.pk, "Garage panel")
    code, _step = presence.code_at(secret)
    gina = gw.w.client(gw.gina)
    url = f"/guest/tap/?entry={gw.w.entry2.pk}&panel={panel.pk}&code={code}"
    asked = gina.get(url)
    assert asked.status_code == 200 and "Verify and open" in text(asked)
    assert not Presence.objects.exists()
    refused = gina.post("/guest/tap/", {"entry": gw.w.entry2.pk, "panel": panel.pk, "code": code})
    assert refused.status_code == 403 and "not shared with you" in text(refused)
    assert not Presence.objects.exists()
    assert gina.get("/guest/tap/?entry=x").status_code == 404


def test_guests_cannot_invite_or_see_history(gw: GuestWorld) -> None:
    guests.accept(gw.gina, gw.invite().pk)
    gina = gw.w.client(gw.gina)
    tried = gina.post(
        f"/guests/{gw.w.prop.pk}/invite/",
        {"email": "x@example.com", "entries": [str(gw.w.entry.pk)]},
    )
    assert tried.status_code == 403 and "Guests cannot invite" in text(tried)
    assert gina.get(f"/properties/{gw.w.prop.pk}/events/").status_code == 404
    assert gina.get(f"/properties/{gw.w.prop.pk}/guests/").status_code == 404
    nav = text(gina.get("/guest/"))
    assert "API tokens" not in nav and "Account upgrades" not in nav


def test_the_web_nfc_button_stays_hidden_where_the_browser_has_no_web_nfc(gw: GuestWorld) -> None:
    """guest-nfc.js shows the Verify button only where Web NFC exists; the
    stylesheet must not show it anyway (``button`` sets a display of its own).
    tests/browser/test_browser_guests.py sees it hidden in Chromium."""
    from django.contrib.staticfiles import finders

    guests.accept(gw.gina, gw.invite().pk)
    presence.add_panel(gw.w.alice, gw.w.entry.pk, "Lobby")
    page = text(gw.w.client(gw.gina).get(f"/guest/entries/{gw.w.entry.pk}/verify/"))
    assert re.search(r'<button type="button" id="nfc-verify" hidden>', page)
    path = finders.find("doorkeep.css")
    assert path is not None
    with open(path) as css:
        assert re.search(r"\[hidden\]\s*\{\s*display:\s*none\s*!important;?\s*\}", css.read())


def test_someone_who_signed_up_sees_the_invitation_on_their_home_page(gw: GuestWorld) -> None:
    """Signing up gives an account an organization of its own, so its home is
    the locks dashboard, not the guest app: the invitation shows there too."""
    from doorkeep.accounts.services import ensure_personal_organization

    newcomer = create_user("new.guest@example.com", "correct horse battery staple")
    ensure_personal_organization(newcomer)  # what signing up does
    invitation = gw.invite("new.guest@example.com")
    client = gw.w.client(newcomer)
    home = client.get("/")
    assert home.status_code == 200 and "Your locks" in text(home)
    assert f'id="pending-{invitation.pk}"' in text(home)
    assert "Rita Resident added you as an auto-verified guest" in text(home)
    accepted = client.post(f"/guest/invitations/{invitation.pk}/accept/")
    assert accepted.status_code == 302 and accepted["Location"].startswith("/guest/")
    invitation.refresh_from_db()
    assert invitation.status == InvitationStatus.ACCEPTED
    assert f'id="pending-{invitation.pk}"' not in text(client.get("/"))


def test_signing_in_lands_a_guest_in_the_guest_app(gw: GuestWorld) -> None:
    from doorkeep.accounts.services import create_organization

    guests.accept(gw.gina, gw.invite().pk)
    create_organization(gw.gina, "Gina's own")  # as signing up does: empty
    signed_in = Client().post(
        "/accounts/login/",
        {"login": "gina@example.com", "password": "correct horse battery staple"},
    )
    assert signed_in.status_code == 302 and signed_in["Location"] == "/home/"
    gina = gw.w.client(gw.gina)
    assert gina.get("/home/")["Location"] == "/guest/"
    assert gina.get("/").status_code == 200  # the locks dashboard stays reachable
    assert gw.w.client(gw.w.alice).get("/home/")["Location"] == "/"
