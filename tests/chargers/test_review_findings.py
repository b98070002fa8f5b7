"""What an independent review of the charging stations found, each checked
here: a reading that would hold the gateway's loop, an unreadable integer,
answers to no call, a token that is no badge, a station clock ahead of ours,
a manager starting a charge the badge could not start, a station moved
between sites, Redis down."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest
from charger_values import UID
from csms_helpers import TOKEN_TYPE, Linked, frame, iso
from gateway_helpers import eventually
from ocpp.v16 import call as call16
from ocpp.v201 import call as call201

from doorkeep.accounts.models import Membership, Role
from doorkeep.accounts.services import create_user
from doorkeep.badges import services as badges
from doorkeep.chargers import services
from doorkeep.chargers.models import ChargingSession, Station
from doorkeep.core.errors import Conflict, NotFound
from doorkeep.events.models import Event, EventKind
from doorkeep.gateway.ocpp.common import readings
from doorkeep.gateway.routing import StationOffline, send_station_command
from doorkeep.properties.models import Property


def test_an_absurd_reading_is_left_out_at_once():
    started = time.monotonic()
    got = readings(
        [
            {"timestamp": "2026-12-06T10:00:00Z", "sampled_value": [{"value": "9e999990"}]},
            {
                "timestamp": "2026-12-06T10:01:00Z",
                "sampled_value": [{"value": 5, "unit_of_measure": {"multiplier": 99999999}}],
            },
            {
                "timestamp": "2026-12-06T10:02:00Z",
                "sampled_value": [{"value": "12.5", "unit": "kWh"}],
            },
        ]
    )
    assert time.monotonic() - started < 0.5
    assert [(r.energy_wh, r.power_w) for r in got] == [(12500, None)]


def test_an_integer_too_long_to_read_is_a_formation_violation(stations, gateway):
    with Linked(gateway, "CP-SHARED-1") as linked:
        answer = linked.raw('[2,"big","Heartbeat",{"n":' + "9" * 5000 + "}]", "big")
        assert answer[0] == 4 and answer[2] == "FormationViolation"
        assert linked.boot().status == "Accepted"  # the connection goes on


def test_answers_to_no_call_are_dropped_not_queued(stations, gateway):
    with Linked(gateway, "CP-SHARED-1") as linked:
        linked.boot()
        for n in range(20):
            linked.send_raw(f'[3,"nobody-asked-{n}",{{"pad":"{"x" * 1000}"}}]')
        assert linked.boot().status == "Accepted"  # read after them: they were handled
        link = gateway.gateway.stations[stations.shared.pk]
        assert link.point is not None
        assert link.point._response_queue.qsize() == 0


def test_a_201_token_that_is_no_badge_is_invalid(stations, gateway):
    with Linked(gateway, "CP-SHARED-1", "2.0.1") as linked:
        for kind in ("KeyCode", "eMAID", "Central"):
            answer = linked.call(call201.Authorize(id_token={"id_token": UID, "type": kind}))
            assert answer.id_token_info["status"] == "Invalid", kind
        ok = linked.call(call201.Authorize(id_token={"id_token": UID, "type": TOKEN_TYPE}))
        assert ok.id_token_info["status"] == "Accepted"


def test_a_16_start_sent_again_by_a_station_whose_clock_is_ahead_is_one_session(stations, gateway):
    ahead = (datetime.now(UTC) + timedelta(minutes=20)).replace(microsecond=0)
    start = call16.StartTransaction(
        connector_id=1, id_tag=UID, meter_start=10, timestamp=iso(ahead)
    )
    with Linked(gateway, "CP-SHARED-1") as linked:
        first = linked.call(start)
        again = linked.call(start)
    assert first.transaction_id == again.transaction_id
    assert ChargingSession.objects.filter(station=stations.shared).count() == 1
    session = ChargingSession.objects.get(station=stations.shared)
    assert session.started_at < ahead  # not believed: the platform's time
    started = Event.objects.filter(kind=EventKind.CHARGING_STARTED).count()
    allowed = Event.objects.filter(kind=EventKind.CHARGING_AUTHORIZED).count()
    assert (started, allowed) == (1, 1)  # the replay is answered, not logged again


def test_a_manager_cannot_start_a_charge_the_badge_could_not_start(stations):
    site = stations.site
    badges.report_lost(site.rosa, stations.badge.pk)
    Station.objects.filter(pk=stations.shared.pk).update(online=True, gateway="gw", gateway_url="x")
    with pytest.raises(Conflict) as refused:
        services.send_command(
            site.world.alice, stations.shared.pk, "remote_start", id_tag=UID, connector=1
        )
    assert refused.value.code == "charging_refused"
    assert "lost" in refused.value.message


def test_a_station_moved_to_another_site_shows_only_that_sites_sessions(stations):
    site = stations.site
    ChargingSession.objects.create(
        organization_id=stations.shared.organization_id,
        property_id=site.world.prop.pk,
        station=stations.shared,
        transaction_id="old-site",
        id_tag=UID,
        person=site.rosa_person,
    )
    elsewhere = Property.objects.create(organization=site.world.prop.organization, name="Else")
    services.remove_station(site.world.alice, stations.shared.pk)
    services.register_station(site.world.alice, elsewhere.pk, services.StationSpec("CP-SHARED-1"))
    agent = create_user("agent@example.com", "pw-123456789-abc")
    Membership.objects.create(
        user=agent, organization=site.world.org, role=Role.READ_ONLY, property=elsewhere
    )
    assert list(services.sessions(agent, station_id=stations.shared.pk)) == []
    with pytest.raises(NotFound):
        list(services.sessions(agent, property_id=site.world.prop.pk))
    assert [
        s.transaction_id
        for s in services.sessions(site.world.alice, property_id=site.world.prop.pk)
    ] == ["old-site"]


def test_redis_down_is_an_offline_station_not_an_error(stations, settings):
    from doorkeep.gateway import routing

    settings.DOORKEEP_GATEWAY_ROUTING = "redis"
    settings.REDIS_URL = "redis://127.0.0.1:9/0"  # nothing listens there
    routing._redis_client = None
    Station.objects.filter(pk=stations.shared.pk).update(online=True, gateway="gw", gateway_url="x")
    try:
        with pytest.raises(StationOffline):
            send_station_command(stations.shared.pk, "reset", {"hard": False}, timeout=2)
    finally:
        routing._redis_client = None


def test_a_station_that_keeps_sending_is_not_cut_for_answering_our_calls(stations, gateway):
    """Answers to the platform's own calls do not count against a station's
    message budget: a list update answered in a burst is not lost."""
    with Linked(gateway, "CP-SHARED-1", keeper=True) as linked:
        linked.boot()
        eventually(lambda: Station.objects.get(pk=stations.shared.pk).acked_version > 0)
        beats = [frame(f"hb-{n}", "Heartbeat", {}) for n in range(70)]
        linked.answers_to(beats)
        badges.report_lost(stations.site.rosa, stations.badge.pk)

        def blocked() -> bool:
            station = Station.objects.get(pk=stations.shared.pk)
            return station.acked_version == station.list_version and not station.last_error

        eventually(blocked)
        assert linked.cp.updates[-1].entries[UID] == "Blocked"


@pytest.mark.parametrize("change", ["rotate", "remove"])
def test_a_new_password_or_a_removal_ends_the_live_connection(stations, gateway, change):
    site = stations.site
    linked = Linked(gateway, "CP-SHARED-1").open()
    linked.boot()
    eventually(lambda: Station.objects.get(pk=stations.shared.pk).online)
    if change == "rotate":
        services.rotate_password(site.world.alice, stations.shared.pk)
    else:
        services.remove_station(site.world.alice, stations.shared.pk)
    assert linked.closed_with() == 4003
    eventually(lambda: not Station.objects.get(pk=stations.shared.pk).online)
