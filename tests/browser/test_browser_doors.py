"""Opening a door from "My doors" in a real browser: the web app asks the real
gateway, which has the simulated lock open."""

from __future__ import annotations

from browser_helpers import sign_in, signed_in_user
from playwright.sync_api import expect

from doorkeep.events.models import Event, EventKind
from doorkeep.keys.services import CredentialSpec, HolderSpec, KeySpec, issue_key

PASSWORD = "correct horse battery staple"  # the world's (tests/conftest.py)


def test_an_owner_opens_a_door_from_my_doors_and_the_lock_opens(live_platform, browser_page):
    world, lock, page = live_platform.world, live_platform.lock, browser_page
    issue_key(
        world.alice,
        world.lock.pk,
        KeySpec(HolderSpec(name="Alice Owner", email=world.alice.email), [CredentialSpec("phone")]),
    )
    sign_in(page, world.alice.email, PASSWORD)
    assert signed_in_user(page) == world.alice

    page.get_by_role("navigation", name="Main").get_by_role("link", name="My doors").click()
    row = page.locator(f"#entry-{world.entry.pk}")
    expect(row).to_contain_text("Front door")
    assert lock.opened == []
    row.get_by_role("button", name="Open Front door").click()

    expect(page.get_by_role("status")).to_contain_text("Opened Front door.")
    assert page.url == live_platform.url + "/doors/"
    assert len(lock.opened) == 1  # the simulated lock carried out one remote unlock

    page.goto(f"/locks/{world.lock.pk}/")
    page.get_by_role("link", name="Event log").click()
    newest = page.locator("table.events tbody tr").first
    expect(newest.locator('td[data-label="What"]')).to_contain_text("Access granted")
    expect(newest.locator('td[data-label="What"]')).to_contain_text("Phone")
    expect(newest.locator('td[data-label="By"]')).to_have_text(world.alice.name)
    event = Event.objects.filter(lock=world.lock).latest("pk")
    assert (event.kind, event.actor, event.data["source"]) == (
        EventKind.ACCESS_GRANTED,
        world.alice,
        "remote",
    )
    assert (event.decision, event.lock_outcome) == ("granted", "opened")


def test_the_owner_opens_from_the_lock_page_and_a_long_name_wraps_in_the_log(
    live_platform, browser_page
):
    world, lock, page = live_platform.world, live_platform.lock, browser_page
    # One word of 120 letters: nowhere to break but anywhere.
    long_name = "Maximilianekonstanze" * 6
    issue_key(
        world.alice,
        world.lock.pk,
        KeySpec(
            HolderSpec(name=long_name, email="maximiliane.konstanze.hohenzollern@example.com"),
            [CredentialSpec("remote", "RM-LONGNAME")],
        ),
    )
    sign_in(page, world.alice.email, PASSWORD)

    # No phone key of her own: the owner opens from the lock page.
    page.goto(f"/locks/{world.lock.pk}/")
    page.get_by_role("button", name="Open Front door").click()
    expect(page.get_by_role("status")).to_contain_text("Opened Front door.")
    assert len(lock.opened) == 1
    page.reload()  # post/redirect/get: a reload sends nothing again
    assert len(lock.opened) == 1

    page.set_viewport_size({"width": 900, "height": 800})
    page.goto(f"/locks/{world.lock.pk}/events/")
    newest = page.locator("table.events tbody tr").first
    expect(newest.locator('td[data-label="Details"]')).to_contain_text(
        "Opened from the lock page by Alice Owner"
    )
    expect(page.locator("table.events")).to_contain_text(long_name)
    # The table fits its card: long names wrap rather than scroll sideways.
    wrap = page.locator(".table-wrap").first
    assert wrap.evaluate("el => el.scrollWidth <= el.clientWidth + 1")
