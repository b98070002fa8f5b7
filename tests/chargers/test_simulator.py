"""The charger simulator against the real gateway, in OCPP 1.6J and 2.0.1:
boot, badges decided by the local list or the platform, sessions with meter
values, the offline queue, the local list kept in step, the platform's
commands, and `doorkeep simulate charger` itself."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from charger_values import PASSWORD, UID
from gateway_helpers import eventually

from doorkeep.accounts.services import create_user
from doorkeep.badges import services as badges
from doorkeep.chargers.models import ChargingSession, Connector, MeterSample, Station
from doorkeep.core.errors import InvalidInput
from doorkeep.events.models import Event, EventKind
from doorkeep.gateway.ocpp.simulator import NO_FREE_CONNECTOR, ListEntry, SimulatedCharger
from doorkeep.gateway.routing import StationOffline, send_station_command
from doorkeep.residents.services import ResidentSpec, add_resident

OTHER_UID = "04B0B1B2B3B4B5"
DOORKEEP = str(Path(sys.executable).with_name("doorkeep"))


@pytest.fixture(params=["1.6", "2.0.1"])
def version(request):
    return request.param


@pytest.fixture
def make(gateway, version):
    """Simulated chargers on the gateway's loop (50 kW, a meter value every
    0.2 s), closed after the test."""
    made = []

    def make_charger(cp_id="CP-SHARED-1", password=PASSWORD, heard=None, **kwargs):
        def on_event(text):
            print(f"{cp_id}: {text}")
            if heard is not None:
                heard.append(text)

        async def build():
            return SimulatedCharger(
                gateway.url,
                cp_id,
                password,
                ocpp=version,
                power_kw=50,
                meter_interval=0.2,
                on_event=on_event,
                **kwargs,
            )

        charger = gateway.run(build())
        made.append(charger)
        return charger

    yield make_charger
    for charger in made:
        gateway.run(charger.close())


def station(cp_id="CP-SHARED-1"):
    return Station.objects.get(charge_point_id=cp_id)


def connector_status(cp_id, number=1):
    found = Connector.objects.filter(station__charge_point_id=cp_id, number=number).first()
    return found.status if found else None


def bruno(site):
    """A second resident, in B-3, with an active badge of his own."""
    user = create_user("bruno@example.com", "long enough pw", name="Bruno Resident")
    residency = add_resident(
        site.world.alice,
        site.world.prop.pk,
        ResidentSpec(
            name="Bruno Resident",
            email="bruno@example.com",
            move_in=date(2024, 3, 1),
            unit_id=site.other_unit.pk,
        ),
    )
    req = badges.request_badge(user, badges.RequestSpec(property_id=site.world.prop.pk))
    badges.approve_request(site.operator, req.pk)
    badges.assign_badge(site.operator, req.pk, OTHER_UID)
    badges.deliver_badge(site.operator, req.pk, "handed_over")
    return residency.person


def test_it_boots_and_shows_online(stations, gateway, make, version):
    charger = make()
    gateway.run(charger.connect())

    assert charger.online
    eventually(lambda: station().online)
    found = station()
    assert (found.vendor, found.model, found.ocpp_version) == (
        "Doorkeep",
        "Simulated charger",
        version,
    )
    assert found.last_boot_at is not None
    eventually(lambda: connector_status("CP-SHARED-1") == "Available")

    gateway.run(charger.go_offline())
    eventually(lambda: not station().online)


def test_rosas_badge_charges_with_growing_meter_values_and_the_session_is_stored(
    stations, gateway, make, version
):
    charger = make()
    gateway.run(charger.connect())

    assert gateway.run(charger.present(UID)) == "Accepted"
    tx = charger.transactions[-1]
    session = ChargingSession.objects.get(station=stations.shared)
    assert session.running
    assert session.transaction_id == str(tx.transaction_id)
    charging = "Charging" if version == "1.6" else "Occupied"
    eventually(lambda: connector_status("CP-SHARED-1") == charging)

    def grew():
        session.refresh_from_db()
        readings = MeterSample.objects.filter(session=session, energy_wh__isnull=False)
        return (
            session.meter_last_wh is not None
            and session.meter_last_wh >= tx.meter_start_wh + 5
            and readings.count() >= 2  # stopped after one reading, it had only that one
        )

    eventually(grew)
    assert session.energy_wh is not None and session.energy_wh >= 5
    assert session.power_w == 50_000

    assert gateway.run(charger.stop())
    session.refresh_from_db()
    assert session.stopped_at is not None
    assert session.meter_start_wh == tx.meter_start_wh
    assert session.meter_stop_wh == tx.meter_stop_wh
    assert session.energy_wh == tx.meter_stop_wh - tx.meter_start_wh > 0
    assert session.person == stations.site.rosa_person
    assert session.badge == stations.badge
    assert session.unit is not None and session.unit.label == "A-12"
    assert session.stop_reason == "Local"
    assert session.review == ""
    assert MeterSample.objects.filter(session=session, energy_wh__isnull=False).count() >= 2
    eventually(lambda: connector_status("CP-SHARED-1") == "Available")
    if version == "1.6":
        assert isinstance(tx.transaction_id, int) and tx.transaction_id > 0


def test_meter_values_may_be_in_kwh(stations, gateway, make, version):
    charger = make(energy_unit="kWh")
    gateway.run(charger.connect())
    gateway.run(charger.present(UID))
    tx = charger.transactions[-1]
    session = ChargingSession.objects.get(station=stations.shared)
    eventually(lambda: MeterSample.objects.filter(session=session).count() >= 2)

    gateway.run(charger.stop())

    session.refresh_from_db()
    assert session.energy_wh == tx.meter_stop_wh - tx.meter_start_wh
    sent = [
        sample
        for payload in charger.sent
        for value in getattr(payload, "meter_value", None) or []
        for sample in value["sampled_value"]
        if sample["measurand"] == "Energy.Active.Import.Register"
    ]
    assert sent and {s.get("unit") or s["unit_of_measure"]["unit"] for s in sent} == {"kWh"}
    stored = MeterSample.objects.filter(session=session, energy_wh__isnull=False)
    assert set(stored.values_list("energy_wh", flat=True)) == {
        round(float(s["value"]) * 1000) for s in sent
    }  # read back in Wh


def test_another_residents_badge_is_refused_on_the_private_station_and_accepted_on_the_shared(
    stations, gateway, make, version
):
    person = bruno(stations.site)
    private, shared = make("CP-PRIVATE-7"), make("CP-SHARED-1")
    gateway.run(private.connect())
    gateway.run(shared.connect())
    eventually(lambda: private.local_list.get(OTHER_UID) == "Invalid")
    eventually(lambda: shared.local_list.get(OTHER_UID) == "Accepted")
    assert private.local_list.get(UID) == "Accepted"  # Rosa's space

    assert gateway.run(private.present(OTHER_UID)) == "Invalid"
    assert not ChargingSession.objects.filter(station=stations.private).exists()

    assert gateway.run(shared.present(OTHER_UID)) == "Accepted"
    gateway.run(shared.stop())
    session = ChargingSession.objects.get(station=stations.shared)
    assert session.person == person
    assert session.unit is not None and session.unit.label == "B-3"

    # A card the platform never knew is not in the list: asked online, refused.
    refused = Event.objects.filter(kind=EventKind.CHARGING_REFUSED).count()
    assert gateway.run(private.present("0A0B0C0D")) == "Invalid"
    assert Event.objects.filter(kind=EventKind.CHARGING_REFUSED).count() == refused + 1


def test_offline_the_station_charges_and_queues_then_everything_is_stored_once(
    stations, gateway, make, version
):
    charger = make()
    gateway.run(charger.connect())
    eventually(lambda: charger.local_list.get(UID) == "Accepted")
    gateway.run(charger.go_offline())
    eventually(lambda: not station().online)

    assert gateway.run(charger.present(UID)) == "Accepted"  # by the local list
    tx = charger.transactions[-1]
    eventually(lambda: len(charger.queue) >= 4)  # the start and three meter values
    assert gateway.run(charger.stop())
    if version == "1.6":
        assert isinstance(tx.transaction_id, int) and tx.transaction_id < 0  # a placeholder
    assert not ChargingSession.objects.filter(station=stations.shared).exists()
    queued = len(charger.queue)

    gateway.run(charger.go_online())

    assert charger.queue == []
    assert len(charger.sent) == queued
    session = ChargingSession.objects.get(station=stations.shared)
    assert session.transaction_id == str(tx.transaction_id)
    assert session.stopped_at is not None
    assert session.energy_wh == tx.meter_stop_wh - tx.meter_start_wh > 0
    assert session.person == stations.site.rosa_person
    assert session.review == ""
    if version == "1.6":
        assert isinstance(tx.transaction_id, int) and tx.transaction_id > 0
        assert {m.transaction_id for m in charger.sent[1:]} == {tx.transaction_id}
    samples = MeterSample.objects.filter(session=session).count()
    assert samples >= queued - 2  # every meter value
    started = Event.objects.filter(kind=EventKind.CHARGING_STARTED).count()
    stopped = Event.objects.filter(kind=EventKind.CHARGING_STOPPED).count()
    assert (started, stopped) == (1, 1)

    # The answers were lost: the station sends it all again.
    answers = gateway.run(charger.send_again(list(charger.sent)))

    assert len(answers) == queued
    if version == "1.6":
        assert answers[0].transaction_id == tx.transaction_id
    assert ChargingSession.objects.filter(station=stations.shared).count() == 1
    session.refresh_from_db()
    assert session.energy_wh == tx.meter_stop_wh - tx.meter_start_wh
    assert session.review == ""
    assert MeterSample.objects.filter(session=session).count() == samples
    assert Event.objects.filter(kind=EventKind.CHARGING_STARTED).count() == started
    assert Event.objects.filter(kind=EventKind.CHARGING_STOPPED).count() == stopped


def test_the_local_list_arrives_after_boot_and_a_lost_badge_is_blocked_promptly(
    stations, gateway, make, version
):
    charger = make()
    gateway.run(charger.connect())

    eventually(lambda: charger.local_list.get(UID) == "Accepted")

    def in_step():
        found = station()
        return found.acked_version == found.list_version == charger.list_version

    eventually(in_step)

    badges.report_lost(stations.site.rosa, stations.badge.pk)

    eventually(lambda: charger.local_list.get(UID) == "Blocked")
    eventually(in_step)
    assert gateway.run(charger.present(UID)) == "Blocked"
    assert not ChargingSession.objects.filter(station=stations.shared).exists()


def test_a_station_back_online_gets_the_difference(stations, gateway, make, version):
    heard = []
    charger = make(heard=heard)
    gateway.run(charger.connect())
    eventually(lambda: station().acked_version == charger.list_version > 0)
    held = charger.list_version
    gateway.run(charger.go_offline())
    eventually(lambda: not station().online)
    bruno(stations.site)  # the list changes while the station is away
    del heard[:]

    gateway.run(charger.connect())

    eventually(lambda: charger.local_list.get(OTHER_UID) == "Accepted")
    assert charger.list_version > held
    updates = [text for text in heard if text.startswith("local list")]
    assert updates == [f"local list version {charger.list_version} (1 change(s)): 2 badge(s)"]
    assert charger.local_list.get(UID) == "Accepted"
    eventually(lambda: station().acked_version == charger.list_version)


def test_a_differential_list_not_above_the_held_version_is_refused(stations, gateway, make):
    charger = make()
    accepted = ListEntry("Accepted")
    assert charger.take_list(5, True, {UID: accepted, "0A0B0C0D": accepted}) == "Accepted"
    assert charger.take_list(5, False, {OTHER_UID: accepted}) == "VersionMismatch"
    assert charger.take_list(4, False, {OTHER_UID: accepted}) == "VersionMismatch"
    assert charger.local_list == {UID: "Accepted", "0A0B0C0D": "Accepted"}
    assert charger.list_version == 5

    assert charger.take_list(6, False, {OTHER_UID: accepted, "0A0B0C0D": None}) == "Accepted"
    assert charger.local_list == {UID: "Accepted", OTHER_UID: "Accepted"}
    assert charger.list_version == 6
    assert charger.take_list(2, True, {}) == "Accepted"  # a full list replaces any version
    assert (charger.local_list, charger.list_version) == ({}, 2)


def test_after_a_version_mismatch_the_gateway_sends_the_whole_list(
    stations, gateway, make, version
):
    charger = make()
    gateway.run(charger.connect())
    eventually(lambda: station().acked_version == charger.list_version > 0)

    async def jump_ahead():
        charger.list_version = 10_000  # as if the station kept a list from elsewhere

    gateway.run(jump_ahead())
    badges.report_lost(stations.site.rosa, stations.badge.pk)

    eventually(lambda: charger.local_list.get(UID) == "Blocked")
    assert charger.list_version < 10_000  # the whole list, at the platform's version
    eventually(lambda: station().acked_version == charger.list_version)


def test_the_local_list_decides_offline_with_expiry_dates(stations, gateway, make):
    charger = make()
    entries = {
        UID: ListEntry("Accepted", expires=datetime(2020, 1, 1, tzinfo=UTC)),
        OTHER_UID: ListEntry("Accepted", expires=datetime.now(UTC) + timedelta(days=1)),
        "0A0B0C0D": ListEntry("Blocked"),
    }
    charger.take_list(3, True, entries)

    assert gateway.run(charger.present(UID)) == "Expired"
    assert gateway.run(charger.present("0A0B0C0D")) == "Blocked"
    assert gateway.run(charger.present("0E0E0E0E")) == "Invalid"  # offline, not in the list
    assert charger.transactions == []
    assert gateway.run(charger.present(OTHER_UID)) == "Accepted"
    assert [tx.id_tag for tx in charger.transactions] == [OTHER_UID]


def test_remote_start_and_stop_and_an_offline_station(stations, gateway, make, version):
    charger = make()
    gateway.run(charger.connect())
    shared = stations.shared.pk

    assert send_station_command(shared, "remote_start", {"id_tag": UID, "connector": 1}) == (
        "Accepted"
    )

    eventually(lambda: ChargingSession.objects.filter(station_id=shared).exists())
    session = ChargingSession.objects.get(station_id=shared)
    assert session.person == stations.site.rosa_person
    assert session.remote  # started by the platform's command, not at the station
    with pytest.raises(InvalidInput):  # a command the gateway does not give
        send_station_command(shared, "self_destruct", {})
    eventually(lambda: charger.running(1) is not None)
    assert (
        send_station_command(shared, "remote_start", {"id_tag": UID, "connector": 1}) == "Rejected"
    )

    assert (
        send_station_command(shared, "remote_stop", {"transaction_id": session.transaction_id})
        == "Accepted"
    )

    def stopped():
        session.refresh_from_db()
        return session.stopped_at is not None

    eventually(stopped)
    assert session.stop_reason == "Remote"
    assert session.energy_wh is not None
    eventually(lambda: connector_status("CP-SHARED-1") == "Available")
    assert (
        send_station_command(shared, "remote_stop", {"transaction_id": session.transaction_id})
        == "Rejected"
    )

    gateway.run(charger.go_offline())
    eventually(lambda: not station().online)
    with pytest.raises(StationOffline):
        send_station_command(shared, "remote_start", {"id_tag": UID, "connector": 1})


def test_unlock_availability_and_reset(stations, gateway, make, version):
    charger = make()
    gateway.run(charger.connect())
    shared = stations.shared.pk

    assert send_station_command(shared, "unlock_connector", {"connector": 1}) == "Unlocked"

    assert (
        send_station_command(shared, "change_availability", {"connector": 1, "available": False})
        == "Accepted"
    )
    eventually(lambda: connector_status("CP-SHARED-1") == "Unavailable")
    assert gateway.run(charger.present(UID)) == NO_FREE_CONNECTOR
    assert (
        send_station_command(shared, "change_availability", {"connector": 1, "available": True})
        == "Accepted"
    )
    eventually(lambda: connector_status("CP-SHARED-1") == "Available")

    booted = station().last_boot_at
    assert send_station_command(shared, "reset", {}) == "Accepted"
    eventually(lambda: station().online and station().last_boot_at != booted)
    eventually(lambda: charger.online)


def test_a_start_made_offline_with_a_badge_lost_meanwhile_stops_when_the_platform_answers(
    stations, gateway, make, version
):
    charger = make()
    gateway.run(charger.connect())
    eventually(lambda: charger.local_list.get(UID) == "Accepted")
    gateway.run(charger.go_offline())
    eventually(lambda: not station().online)
    badges.report_lost(stations.site.rosa, stations.badge.pk)
    assert gateway.run(charger.present(UID)) == "Accepted"  # the list it holds is old
    tx = charger.transactions[-1]

    gateway.run(charger.go_online())

    eventually(lambda: not tx.running and charger.queue == [])
    assert tx.stop_reason == "DeAuthorized"
    session = ChargingSession.objects.get(station=stations.shared)
    assert session.stopped_at is not None
    assert session.stop_reason == "DeAuthorized"
    assert session.review == "not_authorized"
    eventually(lambda: charger.local_list.get(UID) == "Blocked")
    eventually(lambda: connector_status("CP-SHARED-1") == "Available")


def test_commands_while_charging(stations, gateway, make, version):
    charger = make()
    gateway.run(charger.connect())
    shared = stations.shared.pk
    assert gateway.run(charger.present(UID)) == "Accepted"
    session = ChargingSession.objects.get(station_id=shared)

    assert (
        send_station_command(shared, "change_availability", {"connector": 1, "available": False})
        == "Scheduled"  # once the transaction ends
    )
    if version == "1.6":  # the transaction stops, then the connector unlocks
        assert send_station_command(shared, "unlock_connector", {"connector": 1}) == "Unlocked"
    else:
        assert (
            send_station_command(shared, "unlock_connector", {"connector": 1})
            == "OngoingAuthorizedTransaction"
        )
        gateway.run(charger.stop())

    def stopped():
        session.refresh_from_db()
        return session.stopped_at is not None

    eventually(stopped)
    assert session.stop_reason == ("UnlockCommand" if version == "1.6" else "Local")
    eventually(lambda: connector_status("CP-SHARED-1") == "Unavailable")


def test_a_reset_while_charging_ends_the_transaction_first(stations, gateway, make, version):
    charger = make()
    gateway.run(charger.connect())
    shared = stations.shared.pk
    assert gateway.run(charger.present(UID)) == "Accepted"
    session = ChargingSession.objects.get(station_id=shared)
    booted = station().last_boot_at

    if version == "1.6":  # a soft reset stops the transaction, then reboots
        assert send_station_command(shared, "reset", {}) == "Accepted"
        reason = "SoftReset"
    else:  # OnIdle: once the transaction ends
        assert send_station_command(shared, "reset", {}) == "Scheduled"
        session.refresh_from_db()
        assert session.running
        gateway.run(charger.stop())
        reason = "Local"

    eventually(lambda: station().last_boot_at != booted and station().online)
    session.refresh_from_db()
    assert session.stopped_at is not None
    assert session.stop_reason == reason
    eventually(lambda: charger.online)
    eventually(lambda: connector_status("CP-SHARED-1") == "Available")


# --- doorkeep simulate charger ---------------------------------------------------------------


def test_the_cli_says_when_the_password_is_wrong(stations, gateway):
    result = subprocess.run(
        [
            DOORKEEP,
            "simulate",
            "charger",
            "CP-SHARED-1",
            "--password",
            "not-the-password",
            "--ocpp",
            "1.6",
            "--url",
            gateway.url,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )

    assert result.returncode == 2
    assert "refused charging station CP-SHARED-1" in result.stderr
    assert "wrong password (HTTP 401)" in result.stderr
    assert "Traceback" not in result.stderr
    assert not station().online


def test_the_cli_connects_and_takes_commands(stations, gateway):
    result = subprocess.run(
        [
            DOORKEEP,
            "simulate",
            "charger",
            "CP-SHARED-1",
            "--password",
            PASSWORD,
            "--ocpp",
            "2.0.1",
            "--url",
            gateway.url,
            "--power",
            "22",
            "--meter-interval",
            "0.5",
        ],
        input="status\nhelp\nquit\n",
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert result.returncode == 0, result.stderr
    assert "online (OCPP 2.0.1): boot accepted" in result.stdout
    assert "CP-SHARED-1: online, OCPP 2.0.1, 22 kW" in result.stdout
    assert "tag UID" in result.stdout
    assert station().ocpp_version == "2.0.1"
    eventually(lambda: not station().online)


def test_the_cli_finds_the_gateway_of_a_platform_on_another_port(stations, gateway, tmp_path):
    # A second terminal in any folder: PORT as the platform was given, no
    # DOORKEEP_DATA_DIR, no --url (PORT=N puts the gateway on N + 1).
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DOORKEEP_", "GATEWAY_"))}
    env["PORT"] = str(gateway.gateway.port - 1)
    result = subprocess.run(
        [DOORKEEP, "simulate", "charger", "CP-SHARED-1", "--password", PASSWORD, "--ocpp", "1.6"],
        input="status\nquit\n",
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        env=env,
    )

    assert result.returncode == 0, result.stderr
    assert "online (OCPP 1.6): boot accepted" in result.stdout
    assert not (tmp_path / "var" / "doorkeep.sqlite3").exists()
