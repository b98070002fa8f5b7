"""Issuing a key on the lock page, in a real browser: the confirmation, which
tells the issuer to hand over the PIN now (it is shown only this once), is in
view after the page reloads, not scrolled away to the form at the bottom."""

from __future__ import annotations

import pytest
from browser_helpers import sign_in
from playwright.sync_api import expect

from doorkeep.keys.models import Key

PASSWORD = "correct horse battery staple"


@pytest.mark.parametrize("size", [(1280, 720), (390, 844)], ids=["desktop", "phone"])
def test_the_confirmation_of_an_issued_key_with_a_pin_is_in_view(browser_page, world, size):
    page = browser_page
    page.set_viewport_size({"width": size[0], "height": size[1]})
    sign_in(page, world.alice.email, PASSWORD)
    page.goto(f"/locks/{world.lock.pk}/")

    form = page.locator("#issue")
    form.get_by_label("Name", exact=True).fill("Nina Noor")
    form.get_by_label("PIN code").fill("482916")
    form.get_by_role("button", name="Issue key").click()

    confirmation = page.get_by_role("status").filter(has_text="Key issued to Nina Noor.")
    expect(confirmation).to_contain_text("Give them the PIN code now")
    expect(confirmation).to_be_in_viewport()
    assert Key.objects.filter(lock=world.lock, person__name="Nina Noor").exists()
