"""WCAG 2.1 AA, what axe-core does not see (issue 15, item 10), checked by hand
in Chromium: the focus ring's contrast on white and in the dark header (1.4.11,
2.4.7), the unread count's text (1.4.3), the lock page at 320 px wide
(1.4.10), the skip link and the way to "Issue a key" past a long key list
(2.4.1), a failed sign-in (3.3.1, focus), the invite form's group of entries
(1.3.1). Contrast ratios are computed as WCAG defines them."""

from __future__ import annotations

import re
from typing import Any

from playwright.sync_api import expect

from doorkeep import demo
from doorkeep.accounts.models import User
from doorkeep.accounts.services import create_user
from doorkeep.locks.models import Lock
from doorkeep.notify.models import NotificationKind
from doorkeep.notify.services import notify_users

PASSWORD = "a long enough passphrase"


def luminance(css: str) -> float:
    """The relative luminance of an opaque CSS rgb() colour."""
    numbers = [float(n) for n in re.findall(r"[\d.]+", css)]
    assert len(numbers) == 3 or numbers[3] == 1, f"not opaque: {css}"

    def channel(value: float) -> float:
        c = value / 255
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (channel(n) for n in numbers[:3])
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(one: str, other: str) -> float:
    high, low = sorted((luminance(one), luminance(other)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def style(page: Any, selector: str, prop: str) -> str:
    return str(page.eval_on_selector(selector, f"e => getComputedStyle(e)[{prop!r}]"))


def focused(page: Any, prop: str) -> str:
    return str(page.evaluate(f"getComputedStyle(document.activeElement)[{prop!r}]"))


def tab_to(page: Any, predicate: str, most: int) -> int:
    """Press Tab until ``predicate`` (JavaScript, of ``e``, the focused
    element) holds; how many presses it took. Fails after ``most``."""
    for presses in range(1, most + 1):
        page.keyboard.press("Tab")
        if page.evaluate(f"(e => Boolean({predicate}))(document.activeElement)"):
            return presses
    raise AssertionError(f"not reached in {most} Tab stops: {predicate}")


def test_the_focus_ring_has_3_to_1_on_white_and_in_the_dark_header_and_the_unread_count_4_5_to_1(
    module_chromium: Any, demo_site: Any
) -> None:
    owner = User.objects.get(email=demo.OWNER)
    notify_users([owner.pk], kind=NotificationKind.values[0], title="Something happened", body="Hi")
    page = module_chromium.new_page(demo_site.url, email=demo.OWNER)
    page.goto("/")
    header = style(page, ".site-header", "backgroundColor")
    white = style(page, ".card", "backgroundColor")
    assert contrast(white, "rgb(255, 255, 255)") == 1

    # In the header: the menu's first link, by keyboard.
    tab_to(page, "e.closest('nav.nav')", most=5)
    ring = focused(page, "outlineColor")
    assert focused(page, "outlineStyle") == "solid" and focused(page, "outlineWidth") == "3px"
    assert contrast(ring, header) >= 3, (ring, header, contrast(ring, header))  # 3.95:1
    # On white: a link in a card of the page.
    tab_to(page, "e.closest('main .card')", most=40)
    ring = focused(page, "outlineColor")
    assert focused(page, "outlineStyle") == "solid" and focused(page, "outlineWidth") == "3px"
    assert contrast(ring, white) >= 3, (ring, white, contrast(ring, white))  # 3.99:1

    count = page.locator(".nav-count")
    expect(count).to_be_visible()
    text, ground = style(page, ".nav-count", "color"), style(page, ".nav-count", "backgroundColor")
    assert contrast(text, ground) >= 4.5, (text, ground, contrast(text, ground))  # 5.80:1


def test_the_lock_page_of_29_keys_fits_320_px_and_issue_a_key_is_a_few_tab_stops_away(
    module_chromium: Any, demo_site: Any
) -> None:
    lock = Lock.objects.get(serial="DK-2025-0001")
    narrow = module_chromium.new_page(
        demo_site.url, viewport={"width": 320, "height": 640}, email=demo.OWNER
    )
    narrow.goto(f"/locks/{lock.pk}/")
    expect(narrow.locator("#issue").get_by_label("Valid from")).to_be_visible()
    width = narrow.evaluate("document.documentElement.scrollWidth")
    assert width <= 320, f"the lock page is {width} px wide at 320 px"

    page = module_chromium.new_page(demo_site.url, email=demo.OWNER)
    page.goto(f"/locks/{lock.pk}/")
    assert page.locator("table.keys tbody tr").count() >= 25  # each with its own actions
    # The first Tab stop is the skip link; it leads past the menu into the page.
    page.keyboard.press("Tab")
    skip = page.get_by_role("link", name="Skip to content")
    expect(skip).to_be_focused()
    expect(skip).to_be_in_viewport()
    # Past the menu, "Issue a key" is a few Tab stops away, not ~110.
    page.keyboard.press("Enter")
    presses = tab_to(page, "e.textContent.trim() === 'Issue a key'", most=6)
    assert presses <= 5
    page.keyboard.press("Enter")
    tab_to(page, "e.closest('#issue form')", most=1)
    expect(page.locator("#issue").get_by_label("Existing person")).to_be_focused()


def test_a_failed_sign_in_puts_the_focus_on_the_address_and_marks_both_fields_invalid(
    module_chromium: Any, live_server: Any
) -> None:
    create_user("pia@example.com", PASSWORD, name="Pia")
    page = module_chromium.new_page(live_server.url)
    page.goto("/accounts/login/")
    page.get_by_label("Email").fill("pia@example.com")
    page.get_by_label("Password").fill("not the passphrase")
    page.get_by_label("Password").press("Enter")
    expect(page.locator("main .errorlist")).to_contain_text("not correct")

    address, password = page.get_by_label("Email"), page.get_by_label("Password")
    expect(address).to_be_focused()
    for field in (address, password):
        expect(field).to_have_attribute("aria-invalid", "true")
        expect(field).to_have_accessible_description(re.compile("not correct"))


def test_the_invite_form_s_entry_checkboxes_are_a_group_named_entries_to_share(
    module_chromium: Any, demo_site: Any
) -> None:
    page = module_chromium.new_page(demo_site.url, email=demo.RESIDENT)
    page.goto("/guests/")
    group = page.locator(".invite-form").get_by_role("group", name="Entries to share")
    expect(group.get_by_role("checkbox", name="Main entrance")).to_be_visible()
    expect(group.get_by_role("checkbox", name="Bike storage")).to_be_visible()
