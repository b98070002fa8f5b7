"""Charging stations in the API: registering (the password in the answer
once), the live state, changes, sessions as JSON and CSV, commands, and a
resident's start and stop. Commands reach real stations (the `ocpp`
library's ChargePoint, OCPP 1.6 and 2.0.1) through a real gateway."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from charger_values import PASSWORD, UID
from gateway_helpers import eventually
from ocpp.routing import after, on
from ocpp.v16 import ChargePoint as ChargePoint16
from ocpp.v16 import call as call16
from ocpp.v16 import call_result as result16
from ocpp.v16.enums import Action as Action16
from ocpp.v201 import ChargePoint as ChargePoint201
from ocpp.v201 import call as call201
from ocpp.v201 import call_result as result201
from ocpp.v201.enums import Action as Action201
from websockets.asyncio.client import ClientConnection, connect

from doorkeep.badges import services as badges
from doorkeep.chargers import reports, services
from doorkeep.chargers.models import ChargingSession, Station
from doorkeep.events.models import Event, EventKind
from doorkeep.gateway.routing import StationTimeout

JAN = datetime(2026, 1, 15, 10, 0, tzinfo=UTC)


def error_of(response: Any, status: int, code: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, (response.status_code, response.content[:500])
    body = response.json()
    assert body["message"].strip(), body
    if code is not None:
        assert body["code"] == code, body
    return body


def post(client: Any, url: str, body: Any = None) -> Any:
    return client.post(url, {} if body is None else body, content_type="application/json")


def patch(client: Any, url: str, body: Any) -> Any:
    return client.patch(url, body, content_type="application/json")


@pytest.fixture
def alice(site: Any) -> Any:
    return site.world.bearer(site.world.alice)


@pytest.fixture
def rosa(site: Any) -> Any:
    return site.world.bearer(site.rosa)


def session_of(station: Station, *, at: datetime = JAN, stop: bool = True) -> ChargingSession:
    started = reports.start(station.pk, connector=1, id_tag=UID, meter_start_wh=1_000, at=at)
    if stop:
        reports.stop(
            station.pk,
            started.transaction_id,
            meter_stop_wh=8_250,
            at=at + timedelta(hours=1),
            reason="EVDisconnected",
        )
    return ChargingSession.objects.get(station=station, transaction_id=started.transaction_id)


# --- stations ---------------------------------------------------------------------------------


def test_registering_answers_the_password_once_and_the_address_to_dial(site, alice):
    response = post(
        alice,
        f"/api/v1/properties/{site.world.prop.pk}/stations",
        {"charge_point_id": "CP-NEW-1", "name": "Garage", "parking_space": "P7"},
    )

    assert response.status_code == 201, response.content
    body = response.json()
    assert len(body["password"]) == 24
    assert body["ocpp_url"].endswith("/ocpp/CP-NEW-1")
    assert body["ocpp_url"].startswith(("ws://", "wss://"))
    assert (body["parking_space"], body["private"], body["unit"]) == ("P7", True, "A-12")
    assert body["status"]["online"] is False
    assert reports.authenticate("CP-NEW-1", body["password"]).station_id == body["id"]
    listed = alice.get(f"/api/v1/properties/{site.world.prop.pk}/stations")
    assert body["password"] not in listed.content.decode()
    assert "password" not in listed.json()[0]
    shown = alice.get(f"/api/v1/stations/{body['id']}").json()
    assert "password" not in shown and shown["charge_point_id"] == "CP-NEW-1"


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"charge_point_id": "CP 1"}, 400, "invalid_charge_point_id"),
        ({"charge_point_id": "CP-SHARED-1"}, 409, "station_exists"),
        ({"charge_point_id": "CP-2", "parking_space": "P99"}, 404, "parking_space_not_found"),
        ({"charge_point_id": "x" * 101}, 422, "validation_error"),
        ({"name": "no id"}, 422, "validation_error"),
    ],
)
def test_registering_refuses_with_a_code_and_a_message(site, stations, alice, body, status, code):
    response = post(alice, f"/api/v1/properties/{site.world.prop.pk}/stations", body)

    error_of(response, status, code)
    assert Station.objects.count() == 2


def test_a_station_shows_its_live_state(site, stations, alice):
    reports.booted(stations.shared.pk, vendor="Alfen", model="Eve", serial="A1", firmware="5.1")
    reports.connector_status(stations.shared.pk, 1, "Charging")
    session_of(stations.shared, at=datetime.now(UTC) - timedelta(minutes=10), stop=False)

    body = alice.get(f"/api/v1/stations/{stations.shared.pk}").json()

    status = body["status"]
    assert (status["vendor"], status["model"], status["firmware"]) == ("Alfen", "Eve", "5.1")
    (connector,) = status["connectors"]
    assert connector["status"] == "Charging"
    assert connector["session"]["person"] == "Rosa Resident"
    assert status["local_list"]["state"] == "pending"


def test_the_list_of_stations_costs_the_same_queries_for_more_stations(
    site, stations, alice, django_assert_max_num_queries
):
    for n in range(5):
        station = Station.objects.create(
            organization_id=site.world.org.pk,
            property=site.world.prop,
            charge_point_id=f"CP-MORE-{n}",
            password_digest="x",
        )
        reports.connector_status(station.pk, 1, "Available")
        session_of(station, at=datetime.now(UTC) - timedelta(minutes=5), stop=False)

    with django_assert_max_num_queries(12):
        response = alice.get(f"/api/v1/properties/{site.world.prop.pk}/stations")

    assert len(response.json()) == 7


def test_changing_and_removing_a_station(site, stations, alice):
    url = f"/api/v1/stations/{stations.private.pk}"

    renamed = patch(alice, url, {"name": "Rosa's"}).json()
    assert (renamed["name"], renamed["parking_space"]) == ("Rosa's", "P7")
    moved = patch(alice, url, {"parking_space": None}).json()
    assert (moved["name"], moved["parking_space"], moved["private"]) == ("Rosa's", None, False)
    back = patch(alice, url, {"parking_space_id": site.space.pk}).json()
    assert back["private"] is True
    error_of(patch(alice, url, {"parking_space": "P99"}), 404, "parking_space_not_found")

    assert alice.delete(url).status_code == 204
    error_of(alice.get(url), 404, "station_not_found")
    listed = alice.get(f"/api/v1/properties/{site.world.prop.pk}/stations").json()
    assert [s["charge_point_id"] for s in listed] == ["CP-SHARED-1"]


def test_a_new_password_is_answered_once_and_the_old_one_stops_working(site, stations, alice):
    response = post(alice, f"/api/v1/stations/{stations.shared.pk}/password")

    assert response.status_code == 200
    password = response.json()["password"]
    assert reports.authenticate("CP-SHARED-1", password)
    with pytest.raises(reports.StationRefused):
        reports.authenticate("CP-SHARED-1", PASSWORD)


def test_a_plain_member_may_not_look_and_an_outsider_finds_nothing(site, stations):
    world = site.world
    bob, charlie = world.bearer(world.bob), world.bearer(world.charlie)
    url = f"/api/v1/stations/{stations.shared.pk}"

    body = error_of(bob.get(url), 403, "forbidden")
    assert "charging stations" in body["message"]
    error_of(charlie.get(url), 404, "station_not_found")
    error_of(post(charlie, f"{url}/commands", {"action": "reset"}), 404)
    error_of(charlie.get(f"/api/v1/properties/{world.prop.pk}/charging-sessions"), 404)


# --- sessions ---------------------------------------------------------------------------------


def test_sessions_per_station_per_site_and_mine(site, stations, alice, rosa):
    first = session_of(stations.shared)
    second = session_of(stations.private, at=JAN + timedelta(days=1))

    per_station = alice.get(f"/api/v1/stations/{stations.shared.pk}/sessions").json()
    per_site = alice.get(f"/api/v1/properties/{site.world.prop.pk}/charging-sessions").json()
    mine = rosa.get("/api/v1/me/charging-sessions").json()

    assert [s["id"] for s in per_station] == [first.pk]
    assert [s["id"] for s in per_site] == [second.pk, first.pk]
    assert [s["id"] for s in mine] == [second.pk, first.pk]
    row = per_station[0]
    assert (row["person"], row["unit"], row["energy_wh"]) == ("Rosa Resident", "A-12", 7250)
    assert (row["station"], row["connector"], row["running"]) == ("CP-SHARED-1", 1, False)
    assert row["stop_reason"] == "EVDisconnected"
    assert row["started_at"].startswith("2026-01-15T10:00:00")
    later = alice.get(
        f"/api/v1/properties/{site.world.prop.pk}/charging-sessions"
        "?since=2026-01-16T00:00:00Z&limit=10"
    ).json()
    assert [s["id"] for s in later] == [second.pk]
    assert site.world.bearer(site.world.charlie).get("/api/v1/me/charging-sessions").json() == []


def test_the_sites_sessions_as_csv(site, stations, alice):
    session = session_of(stations.shared)

    response = alice.get(f"/api/v1/properties/{site.world.prop.pk}/charging-sessions.csv")

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert "attachment" in response["Content-Disposition"]
    (row,) = csv.DictReader(io.StringIO(response.content.decode()))
    assert row["id"] == str(session.pk)
    assert (row["badge_uid"], row["person"], row["energy_kwh"]) == (UID, "Rosa Resident", "7.250")
    assert row["started_local"] == "2026-01-15T11:00:00+01:00"


def test_a_station_and_a_resident_have_their_csv_too(site, stations, alice, rosa):
    session_of(stations.shared)

    for client, url in (
        (alice, f"/api/v1/stations/{stations.shared.pk}/sessions.csv"),
        (rosa, "/api/v1/me/charging-sessions.csv"),
    ):
        response = client.get(url)
        assert response.status_code == 200
        lines = response.content.decode().splitlines()
        assert lines[0].startswith("id,station,connector")
        assert len(lines) == 2 and "Rosa Resident" in lines[1]


def test_a_member_gets_no_csv_of_the_sites_sessions(site, stations):
    session_of(stations.shared)
    bob = site.world.bearer(site.world.bob)

    body = error_of(bob.get(f"/api/v1/properties/{site.world.prop.pk}/charging-sessions.csv"), 403)

    assert "Rosa" not in str(body)


# --- commands to an offline station, and the portal --------------------------------------------


def test_a_command_to_an_offline_station_is_503_with_a_message_and_logged(site, stations, alice):
    response = post(
        alice,
        f"/api/v1/stations/{stations.shared.pk}/commands",
        {"action": "change_availability", "connector": 0, "available": False},
    )

    body = error_of(response, 503, "station_offline")
    assert "offline" in body["message"]
    event = Event.objects.get(kind=EventKind.STATION_COMMAND)
    assert event.data["args"] == {"connector": 0, "available": False}
    assert event.data["error"] == "station_offline"


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"action": "explode"}, 422, "validation_error"),
        ({"action": "reset", "connector": 2}, 400, "unexpected_argument"),
        ({"action": "remote_start"}, 400, "id_tag_required"),
        ({"action": "remote_stop", "transaction_id": "T-1"}, 400, "invalid_transaction_id"),
        ({"action": "unlock_connector", "connector": 5000}, 422, "validation_error"),
    ],
)
def test_a_malformed_command_is_refused_before_it_is_sent(
    site, stations, alice, body, status, code
):
    error_of(post(alice, f"/api/v1/stations/{stations.shared.pk}/commands", body), status, code)

    assert not Event.objects.filter(kind=EventKind.STATION_COMMAND).exists()


def test_a_read_only_member_may_not_send_commands(site, stations):
    bob = site.world.bearer(site.world.bob)

    error_of(post(bob, f"/api/v1/stations/{stations.shared.pk}/commands", {"action": "reset"}), 403)


def test_the_portal_start_says_why_a_lost_badge_does_not_charge(site, stations, rosa):
    badges.report_lost(site.rosa, stations.badge.pk)

    body = error_of(
        post(rosa, "/api/v1/me/charging", {"station_id": stations.shared.pk}),
        403,
        "charging_refused",
    )

    assert "reported lost" in body["message"]
    assert body["details"]["reason"] == "badge_lost"


def test_the_portal_start_to_an_offline_station_is_503(site, stations, rosa):
    error_of(
        post(rosa, "/api/v1/me/charging", {"station_id": stations.private.pk, "connector": 1}),
        503,
        "station_offline",
    )


def test_nobody_stops_anothers_session_from_the_portal(site, stations, alice):
    session = session_of(stations.shared, at=datetime.now(UTC) - timedelta(minutes=3), stop=False)

    error_of(
        post(alice, f"/api/v1/me/charging-sessions/{session.pk}/stop"),
        404,
        "charging_session_not_found",
    )


# --- through a real gateway, to stations of the `ocpp` library ----------------------------------


def _now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


class Station16(ChargePoint16):
    """A 1.6 station that does what it is asked: it keeps the list of badges
    it is sent, starts the transaction a remote start asks for, and stops the
    one a remote stop names. Made ``slow``, it answers a Reset only once
    ``released`` (or after that many seconds)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.asked: list[tuple[str, dict[str, Any]]] = []
        self.slow = 0.0
        self.released = asyncio.Event()
        self.version = 0

    @on(Action16.get_local_list_version)
    async def on_list_version(self, **kw: Any) -> Any:
        return result16.GetLocalListVersion(list_version=self.version)

    @on(Action16.send_local_list)
    async def on_local_list(self, list_version: int, **kw: Any) -> Any:
        self.version = list_version
        return result16.SendLocalList(status="Accepted")

    @on(Action16.reset)
    async def on_reset(self, type: str, **kw: Any) -> Any:
        self.asked.append(("Reset", {"type": type}))
        if self.slow:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.released.wait(), self.slow)
        return result16.Reset(status="Accepted")

    @on(Action16.unlock_connector)
    async def on_unlock(self, connector_id: int, **kw: Any) -> Any:
        self.asked.append(("UnlockConnector", {"connector_id": connector_id}))
        return result16.UnlockConnector(status="Unlocked")

    @on(Action16.change_availability)
    async def on_availability(self, connector_id: int, type: str, **kw: Any) -> Any:
        self.asked.append(("ChangeAvailability", {"connector_id": connector_id, "type": type}))
        return result16.ChangeAvailability(status="Scheduled")

    @on(Action16.remote_start_transaction)
    async def on_remote_start(self, id_tag: str, **kw: Any) -> Any:
        self.asked.append(("RemoteStartTransaction", {"id_tag": id_tag, **kw}))
        return result16.RemoteStartTransaction(status="Accepted")

    @after(Action16.remote_start_transaction)
    async def start_it(self, id_tag: str, connector_id: int = 1, **kw: Any) -> None:
        await self.call(
            call16.StartTransaction(
                connector_id=connector_id, id_tag=id_tag, meter_start=2_000, timestamp=_now()
            )
        )

    @on(Action16.remote_stop_transaction)
    async def on_remote_stop(self, transaction_id: int, **kw: Any) -> Any:
        self.asked.append(("RemoteStopTransaction", {"transaction_id": transaction_id}))
        return result16.RemoteStopTransaction(status="Accepted")

    @after(Action16.remote_stop_transaction)
    async def stop_it(self, transaction_id: int, **kw: Any) -> None:
        await self.call(
            call16.StopTransaction(
                meter_stop=9_500, timestamp=_now(), transaction_id=transaction_id, reason="Remote"
            )
        )


class Station201(ChargePoint201):
    """A 2.0.1 station: it keeps its list, and declines remote starts."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.asked: list[tuple[str, dict[str, Any]]] = []
        self.version = 0

    @on(Action201.get_local_list_version)
    async def on_list_version(self, **kw: Any) -> Any:
        return result201.GetLocalListVersion(version_number=self.version)

    @on(Action201.send_local_list)
    async def on_local_list(self, version_number: int, **kw: Any) -> Any:
        self.version = version_number
        return result201.SendLocalList(status="Accepted")

    @on(Action201.reset)
    async def on_reset(self, type: str, **kw: Any) -> Any:
        self.asked.append(("Reset", {"type": type}))
        return result201.Reset(status="Accepted")

    @on(Action201.request_start_transaction)
    async def on_request_start(self, id_token: dict[str, Any], remote_start_id: int, **kw: Any):
        self.asked.append(("RequestStartTransaction", {"id_token": id_token, **kw}))
        return result201.RequestStartTransaction(status="Rejected")


@dataclass
class Connected:
    point: Any
    ws: ClientConnection
    task: asyncio.Task[Any]


@pytest.fixture
def station(stations: Any, gateway: Any) -> Iterator[Any]:
    """Connect a station of the `ocpp` library to the gateway (on its loop):
    ``station("CP-SHARED-1")``, ``station("CP-PRIVATE-7", "2.0.1")``."""
    opened: list[Connected] = []

    def open_one(cp_id: str = "CP-SHARED-1", version: str = "1.6") -> Any:
        auth = base64.b64encode(f"{cp_id}:{PASSWORD}".encode()).decode()

        async def go() -> Connected:
            ws = await connect(
                f"{gateway.url}/ocpp/{cp_id}",
                subprotocols=[f"ocpp{version}"],  # type: ignore[list-item]
                additional_headers={"Authorization": f"Basic {auth}"},
            )
            point = (Station16 if version == "1.6" else Station201)(cp_id, ws)
            task = asyncio.create_task(point.start())
            if version == "1.6":
                await point.call(
                    call16.BootNotification(charge_point_model="M", charge_point_vendor="V")
                )
            else:
                await point.call(
                    call201.BootNotification(
                        charging_station={"model": "M", "vendor_name": "V"}, reason="PowerUp"
                    )
                )
            return Connected(point, ws, task)

        connected = gateway.run(go())
        opened.append(connected)
        # Online, and done with its first list update: commands come after it.
        eventually(lambda: Station.objects.get(charge_point_id=cp_id).acked_version > 0)
        assert Station.objects.get(charge_point_id=cp_id).online
        return connected.point

    yield open_one

    async def close(item: Connected) -> None:
        item.task.cancel()
        await item.ws.close()

    for item in opened:
        gateway.run(close(item))


def test_a_command_reaches_the_station_and_its_answer_comes_back_and_is_logged(
    site, stations, station, alice
):
    point = station()
    url = f"/api/v1/stations/{stations.shared.pk}/commands"

    reset = post(alice, url, {"action": "reset", "hard": True})
    unlock = post(alice, url, {"action": "unlock_connector", "connector": 2})
    available = post(alice, url, {"action": "change_availability", "available": True})

    assert reset.status_code == 200, reset.content
    assert reset.json() == {
        "station_id": stations.shared.pk,
        "action": "reset",
        "status": "Accepted",
        "accepted": True,
    }
    assert (unlock.json()["status"], unlock.json()["accepted"]) == ("Unlocked", True)
    assert available.json()["status"] == "Scheduled"
    assert point.asked == [
        ("Reset", {"type": "Hard"}),
        ("UnlockConnector", {"connector_id": 2}),
        ("ChangeAvailability", {"connector_id": 0, "type": "Operative"}),
    ]
    events = Event.objects.filter(kind=EventKind.STATION_COMMAND).order_by("pk")
    assert [(e.data["action"], e.data["status"]) for e in events] == [
        ("reset", "Accepted"),
        ("unlock_connector", "Unlocked"),
        ("change_availability", "Scheduled"),
    ]
    assert all(e.actor == site.world.alice for e in events)
    assert "Hard reset" in events[0].summary and "Accepted" in events[0].summary


def test_a_resident_starts_and_stops_charging_from_the_portal(site, stations, station, rosa):
    point = station()

    started = post(rosa, "/api/v1/me/charging", {"station_id": stations.shared.pk, "connector": 1})

    assert started.status_code == 200, started.content
    assert started.json()["accepted"] is True
    assert point.asked[0] == ("RemoteStartTransaction", {"id_tag": UID, "connector_id": 1})
    eventually(lambda: ChargingSession.objects.filter(station=stations.shared).exists())
    session = ChargingSession.objects.get(station=stations.shared)
    assert session.person == site.rosa_person and session.running
    running = rosa.get("/api/v1/me/charging-sessions").json()
    assert [(s["id"], s["running"]) for s in running] == [(session.pk, True)]

    stopped = post(rosa, f"/api/v1/me/charging-sessions/{session.pk}/stop")

    assert stopped.json() == {"session_id": session.pk, "status": "Accepted", "accepted": True}
    assert point.asked[1] == (
        "RemoteStopTransaction",
        {"transaction_id": int(session.transaction_id)},
    )
    eventually(lambda: not ChargingSession.objects.get(pk=session.pk).running)
    session.refresh_from_db()
    assert (session.energy_wh, session.stop_reason) == (7_500, "Remote")
    kinds = list(
        Event.objects.filter(kind=EventKind.STATION_COMMAND)
        .order_by("pk")
        .values_list("data", flat=True)
    )
    assert [(d["action"], d["status"], d["portal"]) for d in kinds] == [
        ("remote_start", "Accepted", True),
        ("remote_stop", "Accepted", True),
    ]


def test_an_owners_remote_stop_names_the_session(site, stations, station, alice):
    point = station()
    session = session_of(stations.shared, at=datetime.now(UTC) - timedelta(minutes=2), stop=False)

    response = post(
        alice,
        f"/api/v1/stations/{stations.shared.pk}/commands",
        {"action": "remote_stop", "session_id": session.pk},
    )

    assert response.json()["status"] == "Accepted"
    assert point.asked == [
        ("RemoteStopTransaction", {"transaction_id": int(session.transaction_id)})
    ]
    eventually(lambda: not ChargingSession.objects.get(pk=session.pk).running)


def test_a_station_that_does_not_answer_in_time_is_504_and_its_late_answer_harms_nothing(
    site, stations, station, gateway
):
    point = station()
    point.slow = 30.0

    with pytest.raises(StationTimeout) as late:
        services.send_command(site.world.alice, stations.shared.pk, "reset", timeout=1)

    assert late.value.status == 504
    assert "did not answer in time" in late.value.message
    event = Event.objects.get(kind=EventKind.STATION_COMMAND)
    assert (event.reason, event.data["error"]) == ("station_timeout", "station_timeout")

    async def release() -> None:
        point.slow = 0.0
        point.released.set()

    gateway.run(release())  # the answer comes now, to a call that gave up
    again = services.send_command(site.world.alice, stations.shared.pk, "reset", timeout=10)
    assert again.status == "Accepted"


def test_a_201_station_gets_the_same_commands_in_its_words(site, stations, station, rosa, alice):
    point = station("CP-PRIVATE-7", "2.0.1")

    reset = post(alice, f"/api/v1/stations/{stations.private.pk}/commands", {"action": "reset"})
    start = post(rosa, "/api/v1/me/charging", {"station_id": stations.private.pk, "connector": 1})

    assert reset.json()["status"] == "Accepted"
    assert (start.json()["status"], start.json()["accepted"]) == ("Rejected", False)
    assert point.asked[0] == ("Reset", {"type": "OnIdle"})
    name, asked = point.asked[1]
    assert name == "RequestStartTransaction"
    assert asked["id_token"] == {"id_token": UID, "type": "ISO14443"}
    assert asked["evse_id"] == 1
