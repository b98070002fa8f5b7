"""A badge from request to lost, in real browsers: a resident on a phone asks
for one in the portal; the platform operator, at a desk, assigns its UID
the way a desk reader does (typed into the focused field, then Enter) and
hands it over; the resident sees it active, then reports it lost."""

from __future__ import annotations

from typing import Any

from browser_helpers import TIMEOUT_MS, sign_in, signed_in_user
from playwright.sync_api import expect

from doorkeep.accounts.models import Membership, Organization, Role
from doorkeep.accounts.services import create_user
from doorkeep.badges.models import Badge, BadgeRequest, BadgeStatus, RequestStatus
from doorkeep.residents.services import ResidentSpec, add_resident, add_unit, site_today

PASSWORD = "correct horse battery staple"  # the world's (tests/conftest.py)
PHONE = {"width": 390, "height": 844}


def phone_page(page: Any, url: str) -> Any:
    """A page in a fresh, phone-sized context of ``page``'s browser: nobody
    signed in; relative URLs go to ``url`` (the live server)."""
    context = page.context.browser.new_context(
        base_url=url, locale="en-US", viewport=PHONE, is_mobile=True, has_touch=True
    )
    context.set_default_timeout(TIMEOUT_MS)
    return context.new_page()


def fits_the_screen(page: Any) -> bool:
    return bool(page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"))


def test_a_resident_asks_for_a_badge_the_operator_assigns_it_and_the_resident_reports_it_lost(
    browser_page: Any, transactional_db: None, world: Any, live_server: Any
) -> None:
    rita = create_user("rita@example.com", PASSWORD, name="Rita Resident")
    unit = add_unit(world.alice, world.prop.pk, "2B")
    add_resident(
        world.alice,
        world.prop.pk,
        ResidentSpec(
            name=rita.name, email=rita.email, move_in=site_today(world.prop), unit_id=unit.pk
        ),
    )
    olga = create_user("olga@example.com", PASSWORD, name="Olga Operator")
    platform = Organization.objects.create(name="Doorkeep platform", is_platform=True)
    Membership.objects.create(user=olga, organization=platform, role=Role.PLATFORM_OPERATOR)

    # 1. The resident, on her phone: the portal from the menu, then ask.
    phone = phone_page(browser_page, live_server.url)
    sign_in(phone, rita.email, PASSWORD)
    assert signed_in_user(phone) == rita
    phone.get_by_role("navigation", name="Main").get_by_role("link", name="My home").click()
    site = phone.locator(f"#site-{world.prop.pk}")
    expect(site.get_by_role("heading", level=2)).to_have_text("Canal House")
    expect(site).to_contain_text("2B")
    expect(site).to_contain_text("Your first badge is included.")
    assert fits_the_screen(phone)
    site.get_by_role("button", name="Ask for a badge").click()
    expect(phone.get_by_role("status")).to_contain_text(
        "Your badge request for Canal House is sent."
    )
    request = BadgeRequest.objects.get()
    card = phone.locator(f"#request-{request.pk}")
    expect(card.locator("[data-status]")).to_have_text("Requested")
    assert fits_the_screen(phone)

    # 2. The operator, at the desk: the queue, the UID field ready for the reader.
    desk = browser_page
    sign_in(desk, olga.email, PASSWORD)
    desk.get_by_role("navigation", name="Main").get_by_role("link", name="Badge requests").click()
    row = desk.locator(f"#queue-{request.pk}")
    expect(row).to_contain_text("Rita Resident")
    expect(row).to_contain_text("Canal House · 2B")
    uid_field = row.get_by_label("Badge UID")
    expect(uid_field).to_be_focused()
    desk.keyboard.type("04A1B2C3")  # what a desk reader does: type, then Enter
    desk.keyboard.press("Enter")
    expect(desk.get_by_role("status")).to_contain_text(
        "Badge 04A1B2C3 is assigned to Rita Resident."
    )
    row = desk.locator(f"#queue-{request.pk}")
    expect(row.locator("[data-status]")).to_have_text("Badge assigned")
    row.get_by_role("button", name="Mark handed over").click()
    expect(desk.get_by_role("status")).to_contain_text(
        "The badge of Rita Resident is handed over and active."
    )
    expect(desk.locator(f"#queue-{request.pk}")).to_have_count(0)
    request.refresh_from_db()
    assert request.status == RequestStatus.ACTIVE

    # 3. The resident's portal: the badge is active; she reports it lost.
    phone.reload()
    badge = Badge.objects.get()
    mine = phone.locator(f"#my-badge-{badge.pk}")
    expect(mine.locator("[data-status]")).to_have_text("Active")
    expect(phone.locator(f"#request-{request.pk} [data-status]")).to_have_text("Active")
    assert fits_the_screen(phone)
    mine.get_by_role("button", name="Report lost").click()
    expect(phone.get_by_role("status")).to_contain_text(
        "Badge 04A1B2C3 is reported lost and switched off everywhere."
    )
    expect(phone.locator(f"#my-badge-{badge.pk} [data-status]")).to_have_text("Reported lost")
    badge.refresh_from_db()
    assert badge.status == BadgeStatus.LOST
    phone.context.close()
