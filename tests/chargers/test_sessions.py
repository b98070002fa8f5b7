"""Charging sessions as stations report them, from the `ocpp` library's
ChargePoint over real WebSockets: OCPP 1.6 StartTransaction, MeterValues and
StopTransaction, OCPP 2.0.1 TransactionEvent. Messages sent twice are stored
once, whatever their order; what makes no sense is stored and flagged for
review, and answered as usual."""

from __future__ import annotations

from datetime import timedelta

import pytest
from charger_values import UID
from csms_helpers import TOKEN_TYPE, Linked, ago, iso
from gateway_helpers import eventually
from ocpp.v16 import call as call16
from ocpp.v201 import call as call201

from doorkeep.chargers.models import ChargingSession, MeterSample, Review
from doorkeep.events.models import Event, EventKind

ENERGY = "Energy.Active.Import.Register"
POWER = "Power.Active.Import"


def session_of(transaction_id: object) -> ChargingSession:
    return ChargingSession.objects.get(transaction_id=str(transaction_id))


def events(session: ChargingSession, kind: str) -> list[Event]:
    return [
        e
        for e in Event.objects.filter(station_id=session.station_id, kind=kind)
        if e.data.get("transaction") == session.transaction_id
    ]


def assert_whose(session: ChargingSession, stations) -> None:
    site = stations.site
    assert session.id_tag == UID
    assert session.badge_id == stations.badge.pk
    assert session.person_id == site.rosa_person.pk
    assert session.unit_id == site.unit.pk and session.unit.label == "A-12"


# --- OCPP 1.6 ----------------------------------------------------------------------------------


def values16(at, *samples: dict) -> list[dict]:
    return [{"timestamp": iso(at), "sampled_value": list(samples)}]


def start16(linked: Linked, at, meter: int = 1000, connector: int = 1):
    return linked.call(
        call16.StartTransaction(
            connector_id=connector, id_tag=UID, meter_start=meter, timestamp=iso(at)
        )
    )


def test_a_16_session_in_wh_and_kwh_keeps_its_energy_power_and_people(stations, gateway):
    t0 = ago(30)
    with Linked(gateway, "CP-SHARED-1") as linked:
        linked.boot()
        started = start16(linked, t0)
        assert started.id_tag_info["status"] == "Accepted"
        tx = started.transaction_id
        running = session_of(tx)
        assert running.running and running.started_at == t0 and running.meter_start_wh == 1000
        assert_whose(running, stations)
        linked.call(
            call16.MeterValues(
                connector_id=1,
                transaction_id=tx,
                meter_value=values16(
                    t0 + timedelta(minutes=5),
                    {"value": "1500", "measurand": ENERGY, "unit": "Wh"},
                    {"value": "7200", "measurand": POWER, "unit": "W"},
                ),
            )
        )
        assert (session_of(tx).energy_wh, session_of(tx).power_w) == (500, 7200)
        # kWh and kW, and no transaction id: the session running on the connector.
        linked.call(
            call16.MeterValues(
                connector_id=1,
                meter_value=values16(
                    t0 + timedelta(minutes=10),
                    {"value": "2.1", "measurand": ENERGY, "unit": "kWh"},
                    {"value": "7.4", "measurand": POWER, "unit": "kW"},
                ),
            )
        )
        middle = session_of(tx)
        assert (middle.meter_last_wh, middle.energy_wh, middle.power_w) == (2100, 1100, 7400)
        stopped = linked.call(
            call16.StopTransaction(
                meter_stop=2600,
                timestamp=iso(t0 + timedelta(minutes=15)),
                transaction_id=tx,
                reason="EVDisconnected",
                id_tag=UID,
            )
        )
        assert stopped.id_tag_info["status"] == "Accepted"
    session = session_of(tx)
    assert session.station_id == stations.shared.pk and session.connector == 1
    assert_whose(session, stations)
    assert session.started_at == t0 and session.stopped_at == t0 + timedelta(minutes=15)
    assert (session.meter_start_wh, session.meter_stop_wh, session.energy_wh) == (1000, 2600, 1600)
    assert session.stop_reason == "EVDisconnected" and session.review == ""
    assert [(s.energy_wh, s.power_w) for s in session.samples.all()] == [
        (1500, 7200),
        (2100, 7400),
    ]
    assert len(events(session, EventKind.CHARGING_STARTED)) == 1
    [stop_event] = events(session, EventKind.CHARGING_STOPPED)
    assert stop_event.data["energy_wh"] == 1600 and stop_event.person_id == session.person_id


def test_a_16_start_sent_twice_is_one_session(stations, gateway):
    t0 = ago(20)
    with Linked(gateway, "CP-SHARED-1") as linked:
        first = start16(linked, t0)
        again = start16(linked, t0)
    assert first.transaction_id == again.transaction_id
    assert ChargingSession.objects.filter(station=stations.shared).count() == 1
    assert len(events(session_of(first.transaction_id), EventKind.CHARGING_STARTED)) == 1


def test_a_16_stop_sent_twice_changes_nothing(stations, gateway):
    t0 = ago(20)
    with Linked(gateway, "CP-SHARED-1") as linked:
        tx = start16(linked, t0).transaction_id
        stop = call16.StopTransaction(
            meter_stop=1800, timestamp=iso(t0 + timedelta(minutes=10)), transaction_id=tx
        )
        linked.call(stop)
        before = session_of(tx)
        linked.call(
            call16.StopTransaction(
                meter_stop=9999,
                timestamp=iso(t0 + timedelta(minutes=12)),
                transaction_id=tx,
                reason="Other",
            )
        )
    after = session_of(tx)
    assert (after.stopped_at, after.meter_stop_wh, after.energy_wh, after.stop_reason) == (
        before.stopped_at,
        1800,
        800,
        "Local",
    )
    assert len(events(after, EventKind.CHARGING_STOPPED)) == 1


def test_a_16_stop_of_an_unknown_transaction_is_stored_flagged_and_answered(stations, gateway):
    with Linked(gateway, "CP-SHARED-1") as linked:
        answer = linked.call(
            call16.StopTransaction(
                meter_stop=5000,
                timestamp=iso(ago(5)),
                transaction_id=987654,
                id_tag=UID,
                reason="PowerLoss",
            )
        )
        assert answer.id_tag_info["status"] == "Accepted"
        assert linked.boot().status == "Accepted"  # the conversation goes on
    session = session_of(987654)
    assert session.review == Review.STOP_WITHOUT_START
    assert session.started_at is None and session.meter_stop_wh == 5000
    assert session.energy_wh is None and session.stop_reason == "PowerLoss"
    assert_whose(session, stations)
    [flagged] = events(session, EventKind.CHARGING_FLAGGED)
    assert flagged.reason == Review.STOP_WITHOUT_START


def test_a_16_start_never_takes_the_number_of_an_unknown_stop(stations, gateway):
    """The platform numbers 1.6 transactions with the session's id; a stop
    stored under the station's own number must not be taken by a later start
    (the same number twice at one station would make the start fail)."""
    from doorkeep.chargers.models import ChargingSession as Sessions

    marker = Sessions.objects.create(
        organization_id=stations.shared.organization_id,
        property_id=stations.shared.property_id,
        station=stations.shared,
        transaction_id="marker",
    )
    upcoming = marker.pk + 2  # the stop's row comes next, then the start's
    with Linked(gateway, "CP-SHARED-1") as linked:
        linked.call(
            call16.StopTransaction(meter_stop=5000, timestamp=iso(ago(50)), transaction_id=upcoming)
        )
        started = start16(linked, ago(10))
        assert started.id_tag_info["status"] == "Accepted"
    assert started.transaction_id != upcoming
    session = session_of(started.transaction_id)
    assert session.pk == upcoming and session.review == ""
    assert session_of(upcoming).review == Review.STOP_WITHOUT_START


def test_a_16_meter_going_backwards_is_flagged_and_its_energy_not_guessed(stations, gateway):
    t0 = ago(30)
    with Linked(gateway, "CP-SHARED-1") as linked:
        tx = start16(linked, t0).transaction_id
        for minutes, wh in ((5, "1500"), (10, "1200")):
            linked.call(
                call16.MeterValues(
                    connector_id=1,
                    transaction_id=tx,
                    meter_value=values16(t0 + timedelta(minutes=minutes), {"value": wh}),
                )
            )
        assert session_of(tx).review == Review.METER_BACKWARDS
        assert session_of(tx).energy_wh is None
        linked.call(
            call16.StopTransaction(
                meter_stop=1600, timestamp=iso(t0 + timedelta(minutes=15)), transaction_id=tx
            )
        )
    session = session_of(tx)
    assert session.review == Review.METER_BACKWARDS
    assert session.energy_wh is None and session.meter_stop_wh == 1600
    assert len(events(session, EventKind.CHARGING_FLAGGED)) == 1


def test_a_16_stop_lower_than_a_reading_is_flagged(stations, gateway):
    t0 = ago(30)
    with Linked(gateway, "CP-SHARED-1") as linked:
        tx = start16(linked, t0).transaction_id
        linked.call(
            call16.MeterValues(
                connector_id=1,
                transaction_id=tx,
                meter_value=values16(t0 + timedelta(minutes=5), {"value": "3000"}),
            )
        )
        linked.call(
            call16.StopTransaction(
                meter_stop=2000, timestamp=iso(t0 + timedelta(minutes=9)), transaction_id=tx
            )
        )
    session = session_of(tx)
    assert (session.review, session.energy_wh) == (Review.METER_BACKWARDS, None)


def test_a_16_reading_sent_twice_is_stored_once(stations, gateway):
    t0 = ago(30)
    with Linked(gateway, "CP-SHARED-1") as linked:
        tx = start16(linked, t0).transaction_id
        values = call16.MeterValues(
            connector_id=1,
            transaction_id=tx,
            meter_value=values16(t0 + timedelta(minutes=5), {"value": "1500", "unit": "Wh"}),
        )
        linked.call(values)
        linked.call(values)
    session = session_of(tx)
    assert MeterSample.objects.filter(session=session).count() == 1
    assert session.energy_wh == 500 and session.review == ""


def test_a_16_start_with_a_refused_badge_is_answered_and_flagged(stations, gateway):
    with Linked(gateway, "CP-SHARED-1") as linked:
        started = linked.call(
            call16.StartTransaction(
                connector_id=1, id_tag="04FFFFFFFFFFFF", meter_start=0, timestamp=iso(ago(1))
            )
        )
    assert started.id_tag_info["status"] == "Invalid"
    session = session_of(started.transaction_id)
    assert session.review == Review.NOT_AUTHORIZED and session.badge_id is None
    [flagged] = events(session, EventKind.CHARGING_FLAGGED)
    assert flagged.reason == Review.NOT_AUTHORIZED


# --- OCPP 2.0.1 ---------------------------------------------------------------------------------


def values201(at, wh: int | None = None, *, kwh: float | None = None, w: int | None = None):
    samples = []
    if wh is not None:
        samples.append({"value": wh, "measurand": ENERGY, "unit_of_measure": {"unit": "Wh"}})
    if kwh is not None:
        samples.append({"value": kwh, "measurand": ENERGY, "unit_of_measure": {"unit": "kWh"}})
    if w is not None:
        samples.append({"value": w, "measurand": POWER, "unit_of_measure": {"unit": "W"}})
    return [{"timestamp": iso(at), "sampled_value": samples}]


def event201(kind: str, seq: int, at, tx: str, *, token: bool = True, **extra):
    info = {"transaction_id": tx}
    if kind == "Ended":
        info["stopped_reason"] = extra.pop("stopped_reason", "EVDisconnected")
    return call201.TransactionEvent(
        event_type=kind,
        timestamp=iso(at),
        trigger_reason={"Started": "Authorized", "Updated": "MeterValuePeriodic"}.get(
            kind, "EVCommunicationLost"
        ),
        seq_no=seq,
        transaction_info=info,
        evse={"id": 1, "connector_id": 1} if kind == "Started" else None,
        id_token={"id_token": UID, "type": TOKEN_TYPE} if token else None,
        **extra,
    )


def test_a_201_session_started_updated_ended(stations, gateway):
    t0 = ago(40)
    with Linked(gateway, "CP-PRIVATE-7", "2.0.1") as linked:
        linked.boot()
        started = linked.call(
            event201("Started", 0, t0, "TX-201-A", meter_value=values201(t0, 10_000))
        )
        assert started.id_token_info["status"] == "Accepted"
        assert session_of("TX-201-A").running
        linked.call(
            event201(
                "Updated",
                1,
                t0 + timedelta(minutes=10),
                "TX-201-A",
                token=False,
                meter_value=values201(t0 + timedelta(minutes=10), kwh=11.5, w=11_000),
            )
        )
        middle = session_of("TX-201-A")
        assert (middle.energy_wh, middle.power_w) == (1500, 11_000)
        linked.call(
            event201(
                "Ended",
                2,
                t0 + timedelta(minutes=20),
                "TX-201-A",
                token=False,
                meter_value=values201(t0 + timedelta(minutes=20), 13_250),
            )
        )
    session = session_of("TX-201-A")
    assert session.station_id == stations.private.pk and session.connector == 1
    assert_whose(session, stations)
    assert session.started_at == t0 and session.stopped_at == t0 + timedelta(minutes=20)
    assert (session.meter_start_wh, session.meter_stop_wh, session.energy_wh) == (
        10_000,
        13_250,
        3250,
    )
    assert session.stop_reason == "EVDisconnected" and session.review == ""
    assert MeterSample.objects.filter(session=session).count() == 3


def test_a_201_ended_before_started_is_one_complete_session(stations, gateway):
    """A station's offline queue, sent out of order: the end first."""
    t0 = ago(60)
    with Linked(gateway, "CP-SHARED-1", "2.0.1") as linked:
        linked.call(
            event201(
                "Ended",
                2,
                t0 + timedelta(minutes=30),
                "TX-OFFLINE",
                token=False,
                offline=True,
                meter_value=values201(t0 + timedelta(minutes=30), 4000),
            )
        )
        waiting = session_of("TX-OFFLINE")
        assert waiting.review == Review.STOP_WITHOUT_START and waiting.started_at is None
        linked.call(
            event201("Started", 0, t0, "TX-OFFLINE", offline=True, meter_value=values201(t0, 1000))
        )
        linked.call(
            event201(
                "Updated",
                1,
                t0 + timedelta(minutes=15),
                "TX-OFFLINE",
                token=False,
                offline=True,
                meter_value=values201(t0 + timedelta(minutes=15), 2500),
            )
        )
    [session] = ChargingSession.objects.filter(station=stations.shared)
    assert session.review == ""
    assert session.started_at == t0 and session.stopped_at == t0 + timedelta(minutes=30)
    assert (session.meter_start_wh, session.meter_stop_wh, session.energy_wh) == (1000, 4000, 3000)
    assert session.connector == 1
    assert_whose(session, stations)
    assert list(session.samples.values_list("energy_wh", flat=True)) == [1000, 2500, 4000]


def test_a_201_event_sent_twice_is_stored_once(stations, gateway):
    t0 = ago(30)
    with Linked(gateway, "CP-SHARED-1", "2.0.1") as linked:
        start = event201("Started", 0, t0, "TX-TWICE", meter_value=values201(t0, 500))
        linked.call(start)
        linked.call(start)
        update = event201(
            "Updated",
            1,
            t0 + timedelta(minutes=5),
            "TX-TWICE",
            token=False,
            meter_value=values201(t0 + timedelta(minutes=5), 900),
        )
        linked.call(update)
        linked.call(update)
    [session] = ChargingSession.objects.filter(station=stations.shared)
    assert MeterSample.objects.filter(session=session).count() == 2
    assert session.energy_wh == 400
    assert len(events(session, EventKind.CHARGING_STARTED)) == 1


def test_a_201_badge_presented_after_plugging_in_is_kept(stations, gateway):
    t0 = ago(30)
    with Linked(gateway, "CP-SHARED-1", "2.0.1") as linked:
        linked.call(
            event201("Started", 0, t0, "TX-PLUG", token=False, meter_value=values201(t0, 0))
        )
        assert session_of("TX-PLUG").badge_id is None
        answer = linked.call(event201("Updated", 1, t0 + timedelta(minutes=1), "TX-PLUG"))
        assert answer.id_token_info["status"] == "Accepted"
    assert_whose(session_of("TX-PLUG"), stations)


@pytest.mark.parametrize("version", ["1.6", "2.0.1"])
def test_sessions_show_up_online_while_charging(stations, gateway, version):
    """The energy grows while the session runs (the page reads it)."""
    t0 = ago(10)
    with Linked(gateway, "CP-SHARED-1", version) as linked:
        if version == "1.6":
            tx = start16(linked, t0, meter=0).transaction_id
            for minute in (1, 2):
                linked.call(
                    call16.MeterValues(
                        connector_id=1,
                        transaction_id=tx,
                        meter_value=values16(
                            t0 + timedelta(minutes=minute), {"value": str(minute * 100)}
                        ),
                    )
                )
                eventually(lambda m=minute: session_of(tx).energy_wh == m * 100)
        else:
            tx = "TX-LIVE"
            linked.call(event201("Started", 0, t0, tx, meter_value=values201(t0, 0)))
            for minute in (1, 2):
                at = t0 + timedelta(minutes=minute)
                linked.call(
                    event201(
                        "Updated",
                        minute,
                        at,
                        tx,
                        token=False,
                        meter_value=values201(at, minute * 100),
                    )
                )
                eventually(lambda m=minute: session_of(tx).energy_wh == m * 100)
        assert session_of(tx).running
