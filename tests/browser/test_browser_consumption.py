"""A resident's consumption in a real browser: the portal's page draws a
stacked SVG bar per month beside the table of the same figures; clicking a
month's bar opens its day view, a bar per day with the list of uses and
their prices; the energy link switches the charts, without any script. On
a phone the page fits the screen."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from browser_helpers import TIMEOUT_MS, sign_in
from django.conf import settings
from playwright.sync_api import expect

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # tests/: billing.…

from billing.consumption_world import PASSWORD, build

PHONE = {"width": 390, "height": 844}


def _shoot(page: Any, name: str) -> None:
    folder = Path(settings.DATA_DIR) / "browser-screenshots"
    folder.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(folder / f"{name}.png"), full_page=True)


def test_the_portal_draws_the_months_and_a_click_on_a_month_opens_its_days(
    browser_page: Any, transactional_db: None, world: Any
) -> None:
    c = build(world)
    page = browser_page
    sign_in(page, c.rosa.email, PASSWORD)
    page.goto("/portal/")
    page.locator("#consumption-link").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("My consumption")

    page.goto("/portal/consumption/?year=2025")
    chf = page.locator("#chart-chf")
    expect(chf.locator("g.bar")).to_have_count(12)
    july = chf.locator('g.bar[data-key="2025-07"]')
    expect(july.locator("rect.segment")).to_have_count(2)  # laundry and the extra badge
    height = float(july.locator("rect.kind-badge").get_attribute("height") or 0)
    assert height > 50  # CHF 15.00 is the largest part of the year
    box = july.locator("rect.kind-badge").bounding_box()
    assert box is not None and box["height"] > 20  # drawn, not only in the markup
    expect(page.locator("#chart-eur g.bar rect.segment")).to_have_count(2)
    expect(page.locator('#month-table tr[data-key="2025-07"]')).to_contain_text("CHF 17.59")
    _shoot(page, "consumption-months")

    # A month's bar leads to its days and uses.
    page.locator('#chart-chf a.bar-link[data-key="2025-07"]').click()
    expect(page.locator("h1 .month-name")).to_have_text("July 2025")
    days = page.locator("#days-chf g.bar")
    expect(days).to_have_count(31)
    expect(page.locator('#days-chf g.bar[data-key="2025-07-05"] rect.kind-badge')).to_have_count(1)
    uses = page.locator("table.uses tbody tr")
    expect(uses).to_have_count(4)
    expect(uses.nth(0)).to_contain_text("Laundry")
    expect(uses.nth(0)).to_contain_text("CHF 2.59")
    expect(uses.nth(3)).to_contain_text("CHF 15.00")
    _shoot(page, "consumption-month")

    # Energy instead of cost, through a plain link.
    page.locator("#measure-switch").get_by_role("link", name="Energy").click()
    expect(page.locator("#days-energy")).to_be_visible()
    expect(
        page.locator('#days-energy g.bar[data-key="2025-07-04"] rect.kind-charging')
    ).to_have_count(1)
    expect(page.locator("script:not([src])")).to_have_count(0)  # nothing a CSP would refuse


def test_the_consumption_page_fits_a_phone(
    browser_page: Any, transactional_db: None, world: Any, live_server: Any
) -> None:
    c = build(world)
    context = browser_page.context.browser.new_context(
        base_url=live_server.url, locale="en-US", viewport=PHONE, is_mobile=True, has_touch=True
    )
    context.set_default_timeout(TIMEOUT_MS)
    phone = context.new_page()
    try:
        sign_in(phone, c.rosa.email, PASSWORD)
        phone.goto("/portal/consumption/?year=2025")
        expect(phone.locator("#chart-chf svg")).to_be_visible()
        svg = phone.locator("#chart-chf svg").bounding_box()
        assert svg is not None and svg["width"] <= PHONE["width"]
        assert phone.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
        _shoot(phone, "consumption-phone")
    finally:
        context.close()
