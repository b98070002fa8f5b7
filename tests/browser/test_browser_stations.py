"""Charging stations in real browsers, against a real gateway: the owner
registers a station and is shown its password once; the station page
follows a simulated station with that password (the `ocpp` library's
client side) as it comes online, as a badge starts a session whose energy
grows with each meter value, and as the owner stops it from the page, all
without reloading; a resident on a phone starts and stops charging from
the portal and finds the session in their list.

The pages refresh their live parts every 2 seconds (static/stations.js):
each step waits for the page to change on its own, within the generous
timeouts of browser_helpers."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from browser_helpers import TIMEOUT_MS, sign_in
from django.conf import settings
from gateway_helpers import Running, eventually, start_gateway
from playwright.sync_api import expect

from doorkeep.accounts.models import Organization, Role, User
from doorkeep.accounts.services import create_user
from doorkeep.badges import services as badges
from doorkeep.chargers.models import ChargingSession, Station
from doorkeep.gateway.ocpp.simulator import SimulatedCharger
from doorkeep.residents.services import ResidentSpec, add_resident, add_unit

PASSWORD = "correct horse battery staple"  # the world's (tests/conftest.py)
STATION_PASSWORD = "station-password-0001"
UID = "04A1B2C3D4E5F6"
PHONE = {"width": 390, "height": 844}


@dataclass
class ChargingWorld:
    world: Any
    rosa: User
    station: Station
    gateway: Running
    made: list[SimulatedCharger]

    @property
    def charger(self) -> SimulatedCharger:
        """The simulated station of ``station`` (not connected at first)."""
        return self.made[0]

    def simulate(self, charge_point_id: str, password: str) -> SimulatedCharger:
        """A simulated station (OCPP 1.6J, 50 kW, a meter value every 0.5 s)
        on the gateway's loop, closed after the test."""

        async def build() -> SimulatedCharger:
            return SimulatedCharger(
                self.gateway.url,
                charge_point_id,
                password,
                ocpp="1.6",
                power_kw=50,
                meter_interval=0.5,
                on_event=lambda line: print(f"{charge_point_id}: {line}"),
            )

        charger = self.gateway.run(build())
        self.made.append(charger)
        return charger


@pytest.fixture
def charging(
    transactional_db: None,
    world: Any,
    live_server: Any,
    settings: Any,
    _async_unsafe_allowed: None,
) -> Iterator[ChargingWorld]:
    """Rosa lives in A-12 with an active badge; a shared station "Garage"
    (CP-WEB-1) is registered and a real gateway runs; the simulated station
    is built, not connected."""
    unit = add_unit(world.alice, world.prop.pk, "A-12")
    rosa = create_user("rosa@example.com", PASSWORD, name="Rosa Resident")
    add_resident(
        world.alice,
        world.prop.pk,
        ResidentSpec(name=rosa.name, email=rosa.email, move_in=date(2024, 1, 1), unit_id=unit.pk),
    )
    operator = create_user("otto@example.com", PASSWORD, name="Otto Operator")
    platform = Organization.objects.create(name="Doorkeep platform", is_platform=True)
    platform.memberships.create(user=operator, role=Role.PLATFORM_OPERATOR)
    req = badges.request_badge(rosa, badges.RequestSpec(property_id=world.prop.pk))
    badges.approve_request(operator, req.pk)
    badges.assign_badge(operator, req.pk, UID)
    badges.deliver_badge(operator, req.pk, "handed_over")
    station = Station.objects.create(
        organization_id=world.org.pk,
        property=world.prop,
        charge_point_id="CP-WEB-1",
        name="Garage",
        password_digest=Station.digest_of(STATION_PASSWORD),
    )
    running, stop = start_gateway(poll_interval=0.5)
    settings.GATEWAY_PUBLIC_URL = running.url  # the address the pages tell stations to dial
    charging = ChargingWorld(world, rosa, station, running, [])
    charging.simulate("CP-WEB-1", STATION_PASSWORD)
    try:
        yield charging
    finally:
        for charger in charging.made:
            running.run(charger.close())
        stop()


def _energy(page: Any, selector: str) -> int:
    """The energy (Wh) a live part shows now, from its data-energy attribute."""
    value = page.locator(selector).first.get_attribute("data-energy", timeout=TIMEOUT_MS)
    return int(value or 0)


def _grows(page: Any, selector: str, above: int) -> None:
    """Wait until the page, on its own, shows more energy than ``above``."""
    page.wait_for_function(
        "([selector, above]) => { const e = document.querySelector(selector);"
        " return e !== null && Number(e.dataset.energy || 0) > above; }",
        arg=[selector, above],
        timeout=TIMEOUT_MS,
    )


def _rounds(page: Any, count: int) -> None:
    """Wait for ``count`` more rounds of the page's live refresh."""
    for _ in range(count):
        stamp = page.locator("[data-live-url]").first.get_attribute("data-live-at") or ""
        page.wait_for_function(
            "(stamp) => (document.querySelector('[data-live-url]').dataset.liveAt || '') !== stamp",
            arg=stamp,
            timeout=TIMEOUT_MS,
        )


def _shoot(page: Any, name: str) -> Path:
    """A screenshot to look at, kept with the test run's data."""
    folder = Path(settings.DATA_DIR) / "browser-screenshots"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    print(f"screenshot: {path}")
    return path


def test_the_owner_registers_a_station_and_its_page_follows_it_online_charging_and_stopped(
    browser_page: Any, charging: ChargingWorld
) -> None:
    page, gateway = browser_page, charging.gateway
    page.on("dialog", lambda dialog: dialog.accept())  # "Stop this charging session?"
    sign_in(page, charging.world.alice.email, PASSWORD)
    page.goto(f"/properties/{charging.world.prop.pk}/")
    page.locator("main").get_by_role("link", name="Charging stations").click()
    listed = page.locator(f"#station-{charging.station.pk}")
    expect(listed).to_contain_text("Garage")
    expect(listed.locator("[data-online]")).to_have_attribute("data-online", "no")
    _shoot(page, "stations-page")

    # 0. A new station: its password is shown once, with what to enter in it.
    form = page.locator("#add")
    form.get_by_label("Charge point id").fill("CP-WEB-2")
    form.get_by_label("Name (optional)").fill("Visitors")
    form.get_by_role("button", name="Add station").click()
    expect(page.get_by_role("heading", level=1)).to_have_text(
        "Charging station Visitors is registered"
    )
    expect(page.locator("#ocpp-url")).to_have_text(f"{gateway.url}/ocpp/CP-WEB-2")
    password = page.locator("#shown-once").input_value()
    assert len(password) == 24
    _shoot(page, "station-registered")
    page.get_by_role("link", name="Go to the station").click()
    charger = charging.simulate("CP-WEB-2", password)
    status = page.locator("#station-status")
    expect(status.locator("[data-online]").first).to_have_attribute("data-online", "no")
    expect(status).to_contain_text("never connected")
    page.evaluate("window.notReloaded = true")

    # 1. The station connects: the page says so on its own.
    gateway.run(charger.connect())
    expect(status.locator("[data-online]").first).to_have_attribute("data-online", "yes")
    expect(status).to_contain_text("Doorkeep Simulated charger")
    expect(status).to_contain_text("1.6")
    expect(status.locator("[data-connector='1'] [data-state]")).to_have_text("Available")
    expect(status.locator("[data-sync]")).to_have_attribute("data-sync", "synced")

    # 2. Rosa's badge at the station: a session runs, its energy grows on the page.
    assert gateway.run(charger.present(UID)) == "Accepted"
    row = status.locator("[data-connector='1']")
    expect(row).to_contain_text("Rosa Resident")
    expect(row.locator("[data-state]")).to_have_text("Charging")
    expect(row).to_contain_text("50.0 kW")
    energy = "#station-status [data-connector='1'] [data-energy]"
    _grows(page, energy, 0)
    first = _energy(page, energy)
    _grows(page, energy, first)
    assert page.evaluate("window.notReloaded === true")
    session = ChargingSession.objects.get(station__charge_point_id="CP-WEB-2")
    expect(page.locator(f"#session-{session.pk}")).to_contain_text("Charging")
    shot = _shoot(page, "station-page-charging")
    assert shot.stat().st_size > 10_000

    # 3. The owner stops it from the page: the station's answer, then the
    # session in the list with its stop time and energy.
    row.get_by_role("button", name="Stop").click()
    expect(page.get_by_role("status")).to_contain_text(
        "Stop charging: the station accepted (Accepted)."
    )
    eventually(lambda: ChargingSession.objects.get(pk=session.pk).stopped_at is not None, 20)
    stopped = page.locator(f"#session-{session.pk}")
    expect(stopped).to_contain_text("Remote")  # the stop reason the station gave
    expect(stopped.locator("time")).to_have_count(2)  # started and stopped
    expect(stopped).to_contain_text("kWh")
    expect(status.locator("[data-connector='1'] [data-state]")).to_have_text("Available")
    session.refresh_from_db()
    assert session.energy_wh is not None and session.energy_wh > first
    _shoot(page, "station-page-stopped")

    # 4. The station goes away: offline again, without reloading.
    page.evaluate("window.notReloaded = true")
    gateway.run(charger.go_offline())
    expect(status.locator("[data-online]").first).to_have_attribute("data-online", "no")
    assert page.evaluate("window.notReloaded === true")

    # 5. Nothing changes any more: the page leaves its parts as they are.
    _rounds(page, 2)
    page.evaluate("document.getElementById('station-status').dataset.kept = 'yes'")
    _rounds(page, 2)
    expect(page.locator("#station-status")).to_have_attribute("data-kept", "yes")


def test_a_resident_starts_and_stops_charging_from_the_portal_on_a_phone(
    browser_page: Any, charging: ChargingWorld, live_server: Any
) -> None:
    gateway, charger = charging.gateway, charging.charger
    gateway.run(charger.connect())
    eventually(lambda: Station.objects.get(pk=charging.station.pk).online)
    context = browser_page.context.browser.new_context(
        base_url=live_server.url, locale="en-US", viewport=PHONE, is_mobile=True, has_touch=True
    )
    context.set_default_timeout(TIMEOUT_MS)
    phone = context.new_page()
    try:
        sign_in(phone, charging.rosa.email, PASSWORD)
        phone.goto("/portal/")
        card = phone.locator(f"#charge-{charging.station.pk}")
        expect(card).to_contain_text("Garage")
        expect(card).to_contain_text("Free")
        card.get_by_role("button", name="Start charging").click()
        expect(phone.get_by_role("status")).to_contain_text(
            "Garage accepted: charging starts on connector 1."
        )

        # The session the station started: the energy grows as the phone looks.
        eventually(lambda: ChargingSession.objects.filter(station=charging.station).exists(), 20)
        session = ChargingSession.objects.get(station=charging.station)
        running = phone.locator(f"#my-session-{session.pk}")
        expect(running).to_contain_text("Garage")
        selector = f"#my-session-{session.pk} [data-energy]"
        _grows(phone, selector, 0)
        _grows(phone, selector, _energy(phone, selector))
        assert phone.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
        _shoot(phone, "portal-charging")

        running.get_by_role("button", name="Stop charging").click()
        expect(phone.get_by_role("status")).to_contain_text("Garage accepted: charging stops.")
        expect(phone.locator(f"#my-session-{session.pk}")).to_have_count(0)
        expect(phone.locator(f"#my-past-session-{session.pk}")).to_contain_text("kWh")
        session.refresh_from_db()
        assert session.stopped_at is not None and session.remote
        _shoot(phone, "portal-charged")
    finally:
        context.close()
