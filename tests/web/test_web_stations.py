"""Charging stations in the web UI: a site's stations page, registering one
(the password shown once with the connection settings), a station's page
with its live state, commands (an offline station says so, never a 500),
settings, sessions and their CSV; a site's sessions by month; the resident
portal's Charging section (start with the refusal's reason, only their own
sessions). Owners and managers change, read-only collaborators look, a
plain member is told why not, an outsider finds nothing."""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from webhelp import text as page_text

from doorkeep.accounts.models import Membership, Organization, Role, User
from doorkeep.accounts.services import create_user
from doorkeep.badges import services as badges
from doorkeep.badges.models import Badge
from doorkeep.chargers import reports
from doorkeep.chargers.models import ChargingSession, Station
from doorkeep.events.models import Event, EventKind
from doorkeep.properties.models import Property
from doorkeep.residents.models import ParkingSpace, Unit
from doorkeep.residents.services import ResidentSpec, add_parking_space, add_resident, add_unit

PASSWORD = "correct horse battery staple"
STATION_PASSWORD = "station-password-0001"
ROSA_UID = "04A1B2C3D4E5F6"
BRUNO_UID = "04B0B1B2B3B4B5"
_CSRF = re.compile(r'<input type="hidden" name="csrfmiddlewaretoken" value="[^"]*">')
JAN = datetime(2026, 1, 15, 10, 0, tzinfo=UTC)


def text(response: Any) -> str:
    """The page as text, without its CSRF tokens (random letters that may spell anything)."""
    return _CSRF.sub("", page_text(response))


@dataclass
class Site:
    world: Any
    unit: Unit
    other_unit: Unit
    space: ParkingSpace
    shared_space: ParkingSpace
    rosa: User
    bruno: User
    operator: User
    shared: Station
    private: Station
    badge: Badge

    @property
    def prop(self) -> Property:
        return self.world.prop


def _resident(world: Any, user: User, unit: Unit) -> Any:
    return add_resident(
        world.alice,
        world.prop.pk,
        ResidentSpec(name=user.name, email=user.email, move_in=date(2024, 1, 1), unit_id=unit.pk),
    )


def _give_badge(operator: User, user: User, prop: Property, uid: str) -> Badge:
    req = badges.request_badge(user, badges.RequestSpec(property_id=prop.pk))
    badges.approve_request(operator, req.pk)
    badges.assign_badge(operator, req.pk, uid)
    badges.deliver_badge(operator, req.pk, "handed_over")
    req.refresh_from_db()
    assert req.badge is not None
    return req.badge


def _station(prop: Property, cp_id: str, space: ParkingSpace | None = None) -> Station:
    return Station.objects.create(
        organization_id=prop.organization_id,
        property=prop,
        parking_space=space,
        charge_point_id=cp_id,
        password_digest=Station.digest_of(STATION_PASSWORD),
    )


@pytest.fixture
def site(world: Any) -> Site:
    """Alice's Canal House in New York's time: Rosa in A-12 with a badge,
    Bruno in B-3 (a badge given by the tests that need it), P7 private to
    A-12 with a station, P9 shared; a station shared by everyone."""
    Property.objects.filter(pk=world.prop.pk).update(timezone="America/New_York")
    world.prop.refresh_from_db()
    unit = add_unit(world.alice, world.prop.pk, "A-12")
    other = add_unit(world.alice, world.prop.pk, "B-3")
    space = add_parking_space(world.alice, world.prop.pk, "P7", unit_id=unit.pk)
    shared_space = add_parking_space(world.alice, world.prop.pk, "P9")
    rosa = create_user("rosa@example.com", PASSWORD, name="Rosa Resident")
    bruno = create_user("bruno@example.com", PASSWORD, name="Bruno Resident")
    _resident(world, rosa, unit)
    _resident(world, bruno, other)
    operator = create_user("otto@example.com", PASSWORD, name="Otto Operator")
    platform = Organization.objects.create(name="Doorkeep platform", is_platform=True)
    platform.memberships.create(user=operator, role=Role.PLATFORM_OPERATOR)
    badge = _give_badge(operator, rosa, world.prop, ROSA_UID)
    shared = _station(world.prop, "CP-SHARED-1")
    private = _station(world.prop, "CP-PRIVATE-7", space)
    return Site(
        world, unit, other, space, shared_space, rosa, bruno, operator, shared, private, badge
    )


def _member(world: Any, email: str, role: str, name: str) -> Any:
    user = create_user(email, PASSWORD, name=name)
    Membership.objects.create(user=user, organization=world.org, role=role)
    return world.client(user)


@pytest.fixture
def manager(world: Any) -> Any:
    return _member(world, "mona@example.com", Role.BUILDING_MANAGER, "Mona Manager")


@pytest.fixture
def reader(world: Any) -> Any:
    return _member(world, "rex@example.com", Role.READ_ONLY, "Rex Reader")


@pytest.fixture
def rosa(site: Site) -> Any:
    return site.world.client(site.rosa)


@pytest.fixture
def bruno(site: Site) -> Any:
    return site.world.client(site.bruno)


def _session(
    station: Station, uid: str = ROSA_UID, *, at: datetime = JAN, stop: bool = True
) -> ChargingSession:
    started = reports.start(station.pk, connector=1, id_tag=uid, meter_start_wh=1_000, at=at)
    if stop:
        reports.stop(
            station.pk,
            started.transaction_id,
            meter_stop_wh=8_250,
            at=at + timedelta(hours=1),
            reason="EVDisconnected",
        )
    return ChargingSession.objects.get(station=station, transaction_id=started.transaction_id)


def _stations_url(site: Site, tail: str = "") -> str:
    return f"/properties/{site.prop.pk}/stations/{tail}"


# --- the site's stations ------------------------------------------------------------------


def test_the_property_page_links_the_stations_page_for_those_who_may_see_it(site, alice, bob):
    link = f'href="/properties/{site.prop.pk}/stations/"'
    assert link in alice.get(f"/properties/{site.prop.pk}/").content.decode()
    assert link not in bob.get(f"/properties/{site.prop.pk}/").content.decode()


def test_the_stations_page_shows_each_station_with_its_state_to_owner_and_manager(
    site, alice, manager
):
    reports.booted(site.shared.pk, vendor="Alfen", model="Eve", serial="A1", firmware="5.1")
    reports.connector_status(site.shared.pk, 1, "Charging")
    _session(site.shared, at=datetime.now(UTC) - timedelta(minutes=10), stop=False)
    for client in (alice, manager):
        response = client.get(_stations_url(site))
        assert response.status_code == 200
        body = text(response)
        for shown in (
            "CP-SHARED-1",
            "CP-PRIVATE-7",
            "Parking space P7, private to A-12",
            "Shared, at no parking space",
            "Offline",
            "never connected",
            "Pending",  # the list of badges is not on the stations yet
            "Charging",
            "Rosa Resident",
            "Add a station",
            "P9 (shared)",
            "P7 (private to A-12)",
        ):
            assert shown in body, shown


def test_a_read_only_collaborator_sees_the_stations_without_the_form(site, reader):
    response = reader.get(_stations_url(site))
    assert response.status_code == 200
    body = text(response)
    assert "CP-SHARED-1" in body
    assert "Add a station" not in body


def test_a_plain_member_is_told_why_and_an_outsider_finds_nothing(site, bob, charlie):
    for url in (
        _stations_url(site),
        _stations_url(site, "live/"),
        f"/properties/{site.prop.pk}/charging-sessions/",
        f"/properties/{site.prop.pk}/charging-sessions.csv",
        f"/stations/{site.shared.pk}/",
        f"/stations/{site.shared.pk}/live/",
        f"/stations/{site.shared.pk}/sessions.csv",
    ):
        response = bob.get(url)
        assert response.status_code == 403, url
        assert "read-only collaborators can see the charging stations" in text(response), url
        response = charlie.get(url)
        assert response.status_code == 404, url
        body = text(response)
        for secret in ("CP-SHARED-1", "Canal House", "Rosa"):
            assert secret not in body, (url, secret)


def test_another_tenants_station_answers_404_to_every_post_and_nothing_changes(site, charlie):
    _session(site.shared, stop=False)
    events = Event.objects.count()
    digest = site.shared.password_digest
    station = site.shared.pk
    posts = [
        (f"/stations/{station}/commands/", {"action": "reset"}),
        (f"/stations/{station}/change/", {"name": "Mine now"}),
        (f"/stations/{station}/password/", {}),
        (f"/stations/{station}/remove/", {"confirm": "on"}),
        (_stations_url(site, "add/"), {"charge_point_id": "CP-EVIL"}),
    ]
    for url, data in posts:
        response = charlie.post(url, data)
        assert response.status_code == 404, url
        assert "CP-SHARED-1" not in text(response)
    site.shared.refresh_from_db()
    assert (site.shared.name, site.shared.removed_at, site.shared.password_digest) == (
        "",
        None,
        digest,
    )
    assert not Station.objects.filter(charge_point_id="CP-EVIL").exists()
    assert Event.objects.count() == events


# --- registering ----------------------------------------------------------------------------


def test_registering_shows_the_password_once_with_the_settings_for_the_station(site, alice):
    response = alice.post(
        _stations_url(site, "add/"),
        {"charge_point_id": "CP-NEW-1", "name": "Garage", "parking_space": site.space.pk},
    )

    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    body = text(response)
    station = Station.objects.get(charge_point_id="CP-NEW-1")
    password = re.search(r'id="shown-once"[^>]*value="([^"]+)"', body)
    assert password is not None
    password = password.group(1)
    assert len(password) == 24
    assert reports.authenticate("CP-NEW-1", password).station_id == station.pk
    assert "Charging station Garage is registered" in body
    assert "this is the only time it is shown" in body
    assert re.search(r"ws://[^<\s]+/ocpp/CP-NEW-1", body)
    assert "Security profile" in body and "1: HTTP Basic authentication without TLS" in body
    assert "OCPP 1.6J or OCPP 2.0.1" in body
    assert f"doorkeep simulate charger CP-NEW-1 --password {password}" in body
    assert (station.name, station.parking_space_id) == ("Garage", site.space.pk)
    # Never again: not on the station's page, nor on the site's.
    for url in (f"/stations/{station.pk}/", _stations_url(site)):
        assert password not in alice.get(url).content.decode()


def test_behind_a_tls_proxy_the_address_is_wss_and_the_profile_2(site, alice, settings):
    settings.GATEWAY_PUBLIC_URL = "https://gw.example.com"
    body = text(alice.post(_stations_url(site, "add/"), {"charge_point_id": "CP-TLS"}))
    assert "wss://gw.example.com/ocpp/CP-TLS" in body
    assert "2: TLS with HTTP Basic authentication" in body


@pytest.mark.parametrize(
    ("data", "status", "message"),
    [
        ({"charge_point_id": ""}, 400, "This field is required."),
        ({"charge_point_id": "CP 1"}, 400, "A charge point id is up to 48 letters"),
        ({"charge_point_id": "CP-SHARED-1"}, 409, "A charging station with the id CP-SHARED-1"),
        (
            {"charge_point_id": "CP-2", "parking_space": 987654},
            404,
            "Parking space 987654 is not a space of this site.",
        ),
        ({"charge_point_id": "CP-2", "name": "n" * 101}, 400, "at most 100 characters"),
        ({"charge_point_id": "CP-2", "parking_space": "P7"}, 400, "Enter a whole number."),
    ],
)
def test_registering_refuses_with_a_clear_message_on_the_form(site, alice, data, status, message):
    response = alice.post(_stations_url(site, "add/"), data)

    assert response.status_code == status
    body = text(response)
    assert message in body
    assert 'class="field-error"' in body or 'class="alert error"' in body
    assert Station.objects.count() == 2


def test_a_read_only_collaborator_cannot_register_and_is_told_why(site, reader):
    response = reader.post(_stations_url(site, "add/"), {"charge_point_id": "CP-RO"})
    assert response.status_code == 403
    assert "Only lock owners and building managers can manage charging stations." in text(response)
    assert not Station.objects.filter(charge_point_id="CP-RO").exists()


def test_the_stations_page_costs_the_same_queries_for_more_stations(
    site, alice, django_assert_max_num_queries
):
    def more(start: int) -> None:
        for n in range(start, start + 4):
            station = _station(site.prop, f"CP-MORE-{n}")
            reports.connector_status(station.pk, 1, "Available")
            reports.connector_status(station.pk, 2, "Charging")

    more(0)
    alice.get(_stations_url(site))  # warm
    with django_assert_max_num_queries(20) as few:
        alice.get(_stations_url(site, "live/"))
    more(10)
    with django_assert_max_num_queries(len(few.captured_queries)):
        response = alice.get(_stations_url(site, "live/"))
    assert "CP-MORE-13" in text(response)


# --- a station's page ---------------------------------------------------------------------


def test_the_station_page_shows_the_running_session_in_the_sites_time(site, alice):
    reports.booted(site.shared.pk, vendor="Alfen", model="Eve", serial="A1", firmware="5.1")
    reports.connector_status(site.shared.pk, 1, "Charging")
    started = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=30)
    session = _session(site.shared, at=started, stop=False)
    reports.meter_values(
        site.shared.pk,
        [reports.Reading(started + timedelta(minutes=20), 13_345, 7_400)],
        transaction_id=session.transaction_id,
        connector=1,
    )
    _session(site.shared, at=JAN)  # an earlier one, stopped

    response = alice.get(f"/stations/{site.shared.pk}/")

    assert response.status_code == 200
    body = text(response)
    local = started.astimezone(_ny())
    for shown in (
        "Alfen Eve",
        "5.1",
        "Rosa Resident",
        "A-12",
        local.strftime("%Y-%m-%d %H:%M"),  # New York time, not UTC
        "12.345 kWh",  # 13,345 Wh on the meter, 1,000 at the start
        "7.4 kW",
        "7.250 kWh",  # the stopped session of January
        "EVDisconnected",
        "America/New_York",
        "Restart",
        "Hard restart",
        "Unlock",
        "Make unavailable",
        "Start charging for a badge",
        "New password",
        "Remove this station",
        "Charging started",  # its events
    ):
        assert shown in body, shown
    assert started.strftime("%Y-%m-%d %H:%M") not in body  # not in UTC
    assert f'data-live-url="/stations/{site.shared.pk}/live/"' in body


def _ny() -> Any:
    from zoneinfo import ZoneInfo

    return ZoneInfo("America/New_York")


def test_the_live_part_holds_the_status_and_the_sessions_and_is_never_cached(site, alice):
    reports.connector_status(site.shared.pk, 1, "Available")
    response = alice.get(f"/stations/{site.shared.pk}/live/")

    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    body = response.content.decode()
    assert 'id="station-status" data-live-part' in body
    assert 'id="station-sessions" data-live-part' in body
    assert "<html" not in body and "csrfmiddlewaretoken" not in body
    assert "Available" in body
    # The same markup twice in a row: the page replaces nothing when nothing changed.
    assert alice.get(f"/stations/{site.shared.pk}/live/").content.decode() == body


def test_a_read_only_collaborator_sees_the_station_without_commands_or_settings(site, reader):
    _session(site.shared, stop=False)
    body = text(reader.get(f"/stations/{site.shared.pk}/"))
    assert "Rosa Resident" in body
    for hidden in ("Hard restart", "New password", "Remove this station", 'id="stop-session"'):
        assert hidden not in body, hidden


def test_a_command_to_an_offline_station_says_so_and_is_logged(site, alice):
    response = alice.post(f"/stations/{site.shared.pk}/commands/", {"action": "reset"})

    assert response.status_code == 503
    body = text(response)
    assert "Restart: The charging station is offline." in body
    assert 'role="alert"' in body
    command = Event.objects.get(kind=EventKind.STATION_COMMAND, station=site.shared)
    assert command.reason == "station_offline"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"action": "unlock_connector", "connector": "1", "hard": "1"}, "Unlock connector 1"),
        ({"action": "change_availability", "connector": "0", "available": "no"}, "whole station"),
        ({"action": "remote_start", "id_tag": ROSA_UID, "connector": "1"}, "Start charging"),
        ({"action": "reset", "hard": "1"}, "Hard restart"),
    ],
)
def test_every_command_reaches_the_service_and_says_the_station_is_offline(
    site, alice, data, message
):
    response = alice.post(f"/stations/{site.shared.pk}/commands/", data)
    assert response.status_code == 503, text(response)[:300]
    assert f"{message}" in text(response)
    assert "The charging station is offline." in text(response)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"action": "remote_start", "id_tag": "", "connector": "1"}, "Say which badge"),
        ({"action": "remote_start", "id_tag": "ZZ-NOT-HEX", "connector": "1"}, ""),
        ({"action": "unlock_connector", "connector": "abc"}, "Enter a whole number."),
        ({"action": "unlock_connector", "connector": "1000"}, "less than or equal to 999"),
        ({"action": "change_availability", "connector": "0"}, "available is true or false."),
        ({"action": "explode"}, "Select a valid choice."),
        ({"action": "remote_stop", "session_id": "999999"}, "has no charging session 999999"),
    ],
)
def test_a_malformed_command_is_refused_with_a_message_before_it_is_sent(
    site, alice, data, message
):
    response = alice.post(f"/stations/{site.shared.pk}/commands/", data)

    assert response.status_code in (400, 404, 422), response.status_code
    body = text(response)
    assert 'class="alert error"' in body
    assert message in body
    assert not Event.objects.filter(kind=EventKind.STATION_COMMAND).exists()


def test_a_read_only_collaborator_may_not_send_commands(site, reader):
    response = reader.post(f"/stations/{site.shared.pk}/commands/", {"action": "reset"})
    assert response.status_code == 403
    assert "Only lock owners and building managers can manage charging stations." in text(response)
    assert not Event.objects.filter(kind=EventKind.STATION_COMMAND).exists()


def test_renaming_and_moving_a_station(site, alice):
    response = alice.post(
        f"/stations/{site.shared.pk}/change/",
        {"name": "Garage north", "parking_space": site.shared_space.pk},
    )
    assert response.status_code == 302
    site.shared.refresh_from_db()
    assert (site.shared.name, site.shared.parking_space_id) == (
        "Garage north",
        site.shared_space.pk,
    )
    body = text(alice.get(response["Location"]))
    assert "Charging station Garage north: Parking space P9, shared." in body

    alice.post(f"/stations/{site.shared.pk}/change/", {"name": "Garage north", "parking_space": ""})
    site.shared.refresh_from_db()
    assert site.shared.parking_space_id is None

    response = alice.post(
        f"/stations/{site.shared.pk}/change/", {"name": "x" * 101, "parking_space": ""}
    )
    assert response.status_code == 400
    assert "Ensure this value has at most 100 characters" in text(response)
    response = alice.post(
        f"/stations/{site.shared.pk}/change/", {"name": "Ok", "parking_space": "424242"}
    )
    assert response.status_code == 404
    assert "Parking space 424242 is not a space of this site." in text(response)
    site.shared.refresh_from_db()
    assert site.shared.name == "Garage north"


def test_a_new_password_is_shown_once_and_the_old_one_stops_working(site, alice):
    response = alice.post(f"/stations/{site.shared.pk}/password/")

    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    body = text(response)
    password = re.search(r'id="shown-once"[^>]*value="([^"]+)"', body).group(1)
    assert "New station password" in body and "the previous password is refused" in body
    site.shared.refresh_from_db()
    assert site.shared.password_digest == Station.digest_of(password)
    assert password not in alice.get(f"/stations/{site.shared.pk}/").content.decode()


def test_removing_asks_for_confirmation_then_keeps_the_sessions(site, alice):
    _session(site.shared)
    response = alice.post(f"/stations/{site.shared.pk}/remove/", {})
    assert response.status_code == 400
    assert "Tick the box to confirm that the station is to be removed." in text(response)
    site.shared.refresh_from_db()
    assert site.shared.removed_at is None

    response = alice.post(f"/stations/{site.shared.pk}/remove/", {"confirm": "on"})
    assert response.status_code == 302
    assert response["Location"] == _stations_url(site)
    body = text(alice.get(response["Location"]))
    assert "Charging station CP-SHARED-1 is removed" in body
    assert alice.get(f"/stations/{site.shared.pk}/").status_code == 404
    # Its sessions are billing records: still in the site's list and in its CSV.
    assert "CP-SHARED-1" in text(alice.get(f"/properties/{site.prop.pk}/charging-sessions/"))
    assert alice.get(f"/stations/{site.shared.pk}/sessions.csv").status_code == 200


# --- sessions and CSV -----------------------------------------------------------------------


def _csv_rows(response: Any) -> list[dict[str, str]]:
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert "attachment" in response["Content-Disposition"]
    return list(csv.DictReader(io.StringIO(response.content.decode())))


def test_a_stations_sessions_download_as_csv(site, alice):
    _session(site.shared)
    rows = _csv_rows(alice.get(f"/stations/{site.shared.pk}/sessions.csv"))
    (row,) = rows
    assert (row["station"], row["person"], row["energy_kwh"]) == (
        "CP-SHARED-1",
        "Rosa Resident",
        "7.250",
    )
    assert row["started_local"].startswith("2026-01-15T05:00:00-05:00")


def test_the_sites_sessions_by_month_with_their_csv(site, alice, reader):
    _session(site.shared, at=JAN)
    _session(site.private, at=datetime(2026, 2, 1, 4, 30, tzinfo=UTC))  # Jan 31 in New York
    _session(site.shared, at=datetime(2026, 3, 3, 12, 0, tzinfo=UTC))

    for client in (alice, reader):
        response = client.get(f"/properties/{site.prop.pk}/charging-sessions/?month=2026-01")
        assert response.status_code == 200
        body = text(response)
        assert "In January 2026:" in body
        assert "2 sessions" in body and "14.500 kWh" in body
        assert "2026-01-31 23:30" in body  # in the site's time
        assert "2026-03-03" not in body
        assert f"/properties/{site.prop.pk}/charging-sessions.csv?month=2026-01" in body

    rows = _csv_rows(alice.get(f"/properties/{site.prop.pk}/charging-sessions.csv?month=2026-01"))
    assert sorted(r["station"] for r in rows) == ["CP-PRIVATE-7", "CP-SHARED-1"]
    everything = _csv_rows(alice.get(f"/properties/{site.prop.pk}/charging-sessions.csv"))
    assert len(everything) == 3
    assert "3 sessions" in text(alice.get(f"/properties/{site.prop.pk}/charging-sessions/"))


def test_a_month_that_is_not_one_is_refused_with_a_message(site, alice):
    response = alice.get(f"/properties/{site.prop.pk}/charging-sessions/?month=January")
    assert response.status_code == 400
    assert "Enter a month as YYYY-MM" in text(response)
    response = alice.get(f"/properties/{site.prop.pk}/charging-sessions.csv?month=2026-13")
    assert response.status_code == 400
    assert "Enter a month as YYYY-MM" in response.content.decode()
    assert (
        alice.get(f"/properties/{site.prop.pk}/charging-sessions/?month=9999-12").status_code == 200
    )


# --- the resident portal ------------------------------------------------------------------


def test_the_portal_lists_the_stations_a_resident_may_use(site, rosa, bruno):
    reports.connector_status(site.shared.pk, 1, "Available")
    Station.objects.filter(pk=site.shared.pk).update(online=True)

    body = text(rosa.get("/portal/"))
    assert 'id="charging"' in body
    assert "CP-SHARED-1" in body and "CP-PRIVATE-7" in body
    assert "Your parking space P7" in body
    assert f"/portal/charging/stations/{site.shared.pk}/connectors/1/start/" in body
    # Offline: no Start button, and it says why.
    assert f"/portal/charging/stations/{site.private.pk}/connectors/1/start/" not in body
    assert "The station is offline" in body

    other = text(bruno.get("/portal/"))
    assert "CP-SHARED-1" in other
    assert "CP-PRIVATE-7" not in other  # private to A-12


def test_a_resident_sees_only_their_own_sessions(site, rosa, bruno):
    _give_badge(site.operator, site.bruno, site.prop, BRUNO_UID)
    _session(site.shared, ROSA_UID, at=JAN)
    running = _session(site.shared, ROSA_UID, at=datetime.now(UTC), stop=False)
    _session(site.shared, BRUNO_UID, at=JAN + timedelta(days=1))

    mine = text(rosa.get("/portal/"))
    assert f'id="my-session-{running.pk}"' in mine  # running, with a Stop button
    assert f"/portal/charging/sessions/{running.pk}/stop/" in mine
    assert "7.250 kWh" in mine
    assert mine.count('class="session-row"') == 1
    his = text(bruno.get("/portal/"))
    assert his.count('class="session-row"') == 1
    assert f'id="my-session-{running.pk}"' not in his
    assert "In use" in his and "Rosa" not in his  # never who charges

    rows = _csv_rows(rosa.get("/portal/charging-sessions.csv"))
    assert {r["person"] for r in rows} == {"Rosa Resident"} and len(rows) == 2
    rows = _csv_rows(bruno.get("/portal/charging-sessions.csv"))
    assert {r["person"] for r in rows} == {"Bruno Resident"} and len(rows) == 1

    # Nobody stops another's session: it does not exist for them.
    response = bruno.post(f"/portal/charging/sessions/{running.pk}/stop/")
    assert response.status_code == 404
    assert not Event.objects.filter(kind=EventKind.STATION_COMMAND).exists()


def test_the_portals_live_part_follows_the_running_session(site, rosa):
    Station.objects.filter(pk=site.shared.pk).update(online=True)
    reports.connector_status(site.shared.pk, 1, "Available")
    body = rosa.get("/portal/charging/live/").content.decode()
    assert 'id="charging-live" data-live-part' in body and "Free" in body
    session = _session(site.shared, at=datetime.now(UTC), stop=False)
    reports.meter_values(
        site.shared.pk,
        [reports.Reading(datetime.now(UTC), 3_500, 11_000)],
        transaction_id=session.transaction_id,
        connector=1,
    )
    body = page_text(rosa.get("/portal/charging/live/"))
    assert "2.500 kWh" in body and "11.0 kW" in body
    assert "Your car is charging" in body


def test_a_resident_without_a_badge_is_told_so_when_starting(site, bruno):
    response = bruno.post(f"/portal/charging/stations/{site.shared.pk}/connectors/1/start/")
    assert response.status_code == 409
    body = text(response)
    assert "You have no badge yet: charging starts with one." in body
    assert 'id="portal-error"' in body


def test_a_lost_badge_is_refused_with_the_reason(site, rosa):
    badges.report_lost(site.rosa, site.badge.pk, replacement=False, property_id=site.prop.pk)
    response = rosa.post(f"/portal/charging/stations/{site.shared.pk}/connectors/1/start/")
    assert response.status_code == 403
    assert "Your badge was reported lost, so it starts no charging." in text(response)
    assert Event.objects.filter(kind=EventKind.CHARGING_REFUSED, reason="badge_lost").exists()


def test_starting_at_an_offline_station_says_it_is_offline(site, rosa):
    response = rosa.post(f"/portal/charging/stations/{site.shared.pk}/connectors/1/start/")
    assert response.status_code == 503
    assert "The charging station is offline." in text(response)


def test_a_station_elsewhere_does_not_exist_for_a_resident(site, rosa, charlie):
    other = _station(site.world.charlie_prop, "CP-CHARLIE")
    response = rosa.post(f"/portal/charging/stations/{other.pk}/connectors/1/start/")
    assert response.status_code == 404
    # Nor does the site's page for a resident who is no member.
    assert rosa.get(_stations_url(site)).status_code == 404
    assert rosa.get(f"/stations/{site.shared.pk}/").status_code == 404


def test_a_person_who_lives_nowhere_has_no_charging_section(world, charlie):
    body = text(charlie.get("/portal/"))
    assert 'id="charging"' not in body


def test_a_resident_of_a_site_without_stations_has_no_charging_section(site, rosa):
    Station.objects.update(removed_at=JAN)
    assert 'id="charging"' not in text(rosa.get("/portal/"))
    _session(site.shared, at=JAN)  # a session of theirs: the section shows it
    body = text(rosa.get("/portal/"))
    assert 'id="charging"' in body and "7.250 kWh" in body
