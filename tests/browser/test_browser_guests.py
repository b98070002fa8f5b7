"""The whole guest path in a real browser (issue 5, item 7): the building
manager sets the guest policy and installs a panel, a resident invites a guest
by email (real SMTP), the guest signs up with the invited address, accepts,
verifies presence with the panel's code and opens the front door, whose lock is
a simulated device on the real gateway; the resident sees the unlock."""

from __future__ import annotations

import time
from typing import Any

from browser_helpers import (
    TIMEOUT_MS,
    confirm_email,
    link_in,
    sign_in,
    signed_in_user,
    submit,
    wait_for_email,
)
from django.conf import settings as django_settings
from playwright.sync_api import expect

from doorkeep.accounts.services import create_user
from doorkeep.events.models import Event, EventKind
from doorkeep.guests import presence
from doorkeep.guests.models import Invitation, InvitationStatus, Panel, Presence
from doorkeep.keys.services import CredentialSpec, HolderSpec, KeySpec, issue_key

PASSWORD = "correct horse battery staple"  # the world's (tests/conftest.py)
GUEST = "gwen.guest@example.com"
GUEST_PASSWORD = "a sturdy guest passphrase"


def new_page(page: Any, url: str) -> Any:
    """A page in a fresh context of ``page``'s browser: no cookies, nobody
    signed in; relative URLs go to ``url`` (the live server)."""
    context = page.context.browser.new_context(base_url=url, locale="en-US")
    context.set_default_timeout(TIMEOUT_MS)
    return context.new_page()


def set_guest_policy_and_install_panel(page: Any, world: Any) -> Panel:
    """Alice, the building manager, in the browser: share the Front door with
    presence verification required, and install a panel at the Front door."""
    sign_in(page, world.alice.email, PASSWORD)
    page.goto(f"/properties/{world.prop.pk}/")
    page.get_by_role("link", name="Guests and panels").click()
    policy = page.locator("#policy")
    policy.get_by_label("Residents may share entries with guests").check()
    policy.get_by_label("Front door").check()
    policy.get_by_label("Guests verify their presence at a panel before the first unlock").check()
    policy.get_by_role("button", name="Save guest policy").click()
    expect(page.get_by_role("status")).to_contain_text("The guest policy is saved.")

    panels = page.locator("#panels")
    panels.get_by_label("Entry").select_option(label="Front door")
    panels.get_by_label("Panel name").fill("Lobby panel")
    panels.get_by_role("button", name="Install panel").click()
    expect(page.locator("#new-panel")).to_contain_text(
        "Panel Lobby panel at Front door is installed"
    )
    panel = Panel.objects.get(entry=world.entry)
    expect(page.locator("#panel-secret")).to_have_text(panel.secret)
    return panel


def a_wrong_code(secret: str) -> str:
    """A code the panel does not give now, nor gave in the step before."""
    now, _step = presence.code_at(secret)
    step = django_settings.DOORKEEP["PANEL_CODE_SECONDS"]
    before, _ = presence.code_at(secret, time.time() - step)
    return next(c for c in ("123456", "654321", "111111") if c not in (now, before))


def resident_sees_unlock(page: Any, invitation: Invitation, entry_name: str) -> None:
    """The resident who shared the entry sees the guest's unlock: in the
    notification list (with the unread count in the menu), and on the
    invitation's page under My guests (the guest's activity at the property)."""
    page.goto("/notifications/")
    expect(page.locator(".nav-count")).to_have_text("2")  # accepted, then opened
    unread = page.locator("li.notification.unread strong")
    expect(unread).to_have_count(2)
    guest = invitation.guest
    who = (guest.name or guest.email) if guest else invitation.email
    expect(unread.first).to_have_text(f"{who} opened {entry_name}")
    page.goto("/guests/")
    row = page.locator(f"#invitation-{invitation.pk}")
    expect(row.locator("[data-status]")).to_have_text("Accepted")
    row.get_by_role("link", name=invitation.email).click()
    unlocked = page.locator('#activity li[data-kind="guest.unlocked"]')
    expect(unlocked).to_have_count(1)
    expect(unlocked).to_contain_text(f"opened {entry_name} (guest)")


def test_a_resident_invites_a_guest_who_signs_up_verifies_presence_and_opens_the_door(
    live_platform: Any, browser_page: Any, smtp: Any, settings: Any
) -> None:
    world, lock, manager = live_platform.world, live_platform.lock, browser_page
    settings.SITE_URL = live_platform.url  # the links in invitation emails

    # 1. The building manager: the guest policy and a panel at the Front door.
    panel = set_guest_policy_and_install_panel(manager, world)

    # 2. A resident (a phone key of her own on the front door's lock) invites.
    rita = create_user("rita@example.com", PASSWORD, name="Rita Resident")
    issue_key(
        world.alice,
        world.lock.pk,
        KeySpec(HolderSpec(name=rita.name, email=rita.email), [CredentialSpec("phone")]),
    )
    resident = new_page(manager, live_platform.url)
    sign_in(resident, rita.email, PASSWORD)
    assert signed_in_user(resident) == rita
    resident.get_by_role("navigation", name="Main").get_by_role("link", name="My guests").click()
    card = resident.locator(f"#property-{world.prop.pk}")
    expect(card.get_by_role("heading")).to_have_text("Canal House")
    card.get_by_label("Guest's email address").fill(GUEST)
    expect(card.get_by_label("Garage")).to_have_count(0)  # not shareable here
    card.get_by_label("Front door").check()
    card.get_by_role("button", name="Send invitation").click()
    expect(resident.get_by_role("status")).to_contain_text(f"Invitation sent to {GUEST}.")
    invitation = Invitation.objects.get(email=GUEST)
    row = resident.locator(f"#invitation-{invitation.pk}")
    expect(row).to_contain_text("Front door")
    expect(row.locator("[data-status]")).to_have_text("Sent")

    # 3. The email, over real SMTP.
    message = wait_for_email(smtp, GUEST)
    assert message["Subject"] == "Rita Resident added you as an auto-verified guest"
    accept_link = link_in(message, "/invitations/")
    assert accept_link.startswith(live_platform.url + "/")

    # 4. The guest, in a browser of their own: the link, an account, Accept.
    guest = new_page(manager, live_platform.url)
    guest.goto(accept_link)
    card = guest.locator("#invitation")
    expect(card.get_by_role("heading")).to_have_text(
        "Rita Resident added you as an auto-verified guest"
    )
    expect(card).to_contain_text("Front door")
    expect(card).to_contain_text(GUEST)
    card.get_by_role("link", name="Create an account").click()
    expect(guest.locator("input[name=email]")).to_have_value(GUEST)  # filled in from the link
    guest.locator("input[name=name]").fill("Gwen Guest")
    guest.locator("input[name=password1]").fill(GUEST_PASSWORD)
    guest.locator("input[name=password2]").fill(GUEST_PASSWORD)
    submit(guest, "Sign Up")
    expect(guest.locator("main")).to_contain_text("Verify Your Email Address")
    confirm_email(guest, link_in(wait_for_email(smtp, GUEST, count=2), "/accounts/confirm-email/"))
    gwen = signed_in_user(guest)
    assert gwen is not None and gwen.email == GUEST
    assert gwen.emailaddress_set.get(email=GUEST).verified

    # Confirming the address leads back to the invitation, now with Accept.
    expect(guest.locator("main")).to_contain_text(f"You have confirmed {GUEST}.")
    assert guest.url == accept_link
    guest.locator("#invitation").get_by_role("button", name="Accept", exact=True).click()
    expect(guest.get_by_role("status")).to_contain_text(
        "Welcome! Rita Resident shared entries of Canal House with you."
    )
    invitation.refresh_from_db()
    assert (invitation.status, invitation.guest) == (InvitationStatus.ACCEPTED, gwen)

    # 5. Home: the shared location and the Guest Key tile; Verify at the Front door.
    expect(guest.locator("#location-name")).to_have_text("Canal House")
    menus = guest.get_by_role("navigation", name="Main")
    expect(menus.get_by_role("link", name="Guest Key")).to_be_visible()
    for lock_owners_menu in ("Locks", "Account upgrades", "API tokens"):  # only a guest
        expect(menus.get_by_role("link", name=lock_owners_menu, exact=True)).to_have_count(0)
    guest.locator("#guest-key-tile").click()
    expect(guest.get_by_role("heading", name="Guest Key")).to_be_visible()
    entry_row = guest.locator(f"#entry-{world.entry.pk}")
    expect(entry_row).to_contain_text("Front door")
    expect(guest.locator(".entry-row")).to_have_count(1)
    expect(entry_row.get_by_role("button", name="Unlock Front door")).to_have_count(0)
    entry_row.get_by_role("link", name="Verify at Front door").click()

    expect(guest.get_by_role("heading", name="Front door")).to_be_visible()
    expect(guest.locator("#nfc-ready")).to_have_text("Ready to tap")
    expect(guest.locator("#nfc-verify")).to_be_hidden()  # no Web NFC in this Chromium
    code_form = guest.locator("#code-form")
    expect(code_form.get_by_label("Code on the panel")).to_be_visible()

    # 6a. A wrong code: the error, nothing verified, the door stays shut.
    code_form.get_by_label("Code on the panel").fill(a_wrong_code(panel.secret))
    code_form.get_by_role("button", name="Verify").click()
    expect(guest.locator("#verify-error")).to_contain_text("This code is wrong or has expired")
    assert not Presence.objects.filter(guest=gwen).exists()
    assert lock.opened == []

    # 5 (cont.). The panel's code: presence verified, the simulated lock opens.
    code_form.get_by_label("Code on the panel").fill(presence.code_at(panel.secret)[0])
    code_form.get_by_role("button", name="Verify").click()
    expect(guest.get_by_role("status")).to_contain_text("Presence verified. Front door is open.")
    assert len(lock.opened) == 1
    assert Presence.objects.filter(guest=gwen, property=world.prop).exists()
    expect(
        guest.locator(f"#entry-{world.entry.pk}").get_by_role("button", name="Unlock Front door")
    ).to_be_visible()
    assert Event.objects.filter(kind=EventKind.GUEST_UNLOCKED, actor=gwen).count() == 1

    # 6. The resident sees the unlock.
    resident_sees_unlock(resident, invitation, "Front door")
