"""What stations say to the CSMS, and what it answers, in OCPP 1.6J and
2.0.1 from the `ocpp` library's ChargePoint: boot, status, heartbeat,
Authorize through the one equipment rule, bad input answered with the
CALLERROR the specification names, and the local authorization list."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from charger_values import UID
from csms_helpers import VERSIONS, Linked, frame, iso
from django.utils import timezone
from gateway_helpers import eventually
from ocpp.exceptions import OCPPError
from ocpp.v16 import call as call16
from ocpp.v201 import call as call201

from doorkeep.badges import services as badges
from doorkeep.chargers.models import Connector, Station
from doorkeep.events.models import Event, EventKind
from doorkeep.gateway import protocol
from doorkeep.gateway.ocpp import csms
from doorkeep.residents.services import (
    ResidentSpec,
    add_resident,
    change_residency,
    set_billing_mode,
    site_today,
)

OTHER_UID = "04B0B1B2B3B4B5"


def station_row(station: Station) -> Station:
    return Station.objects.get(pk=station.pk)


def fresh_station_boots(gateway, version: str = "1.6") -> None:
    """Whatever happened before, the gateway still serves a new station."""
    with Linked(gateway, "CP-PRIVATE-7", version) as other:
        assert other.boot().status == "Accepted"


# --- boot, status, heartbeat, online ----------------------------------------------------------


@pytest.mark.parametrize("version", VERSIONS)
def test_boot_status_and_heartbeat_are_stored(stations, gateway, version):
    with Linked(gateway, "CP-SHARED-1", version) as station:
        if version == "1.6":
            boot = station.call(
                call16.BootNotification(
                    charge_point_vendor="Wallbox",
                    charge_point_model="Pulsar Plus",
                    charge_point_serial_number="SN-0042",
                    firmware_version="5.17.1",
                )
            )
            station.call(
                call16.StatusNotification(connector_id=1, error_code="NoError", status="Available")
            )
            station.call(
                call16.StatusNotification(
                    connector_id=2, error_code="GroundFailure", status="Faulted"
                )
            )
        else:
            boot = station.call(
                call201.BootNotification(
                    charging_station={
                        "vendor_name": "Wallbox",
                        "model": "Pulsar Plus",
                        "serial_number": "SN-0042",
                        "firmware_version": "5.17.1",
                    },
                    reason="PowerUp",
                )
            )
            for evse, status in ((1, "Available"), (2, "Faulted")):
                station.call(
                    call201.StatusNotification(
                        timestamp=iso(timezone.now()),
                        connector_status=status,
                        evse_id=evse,
                        connector_id=1,
                    )
                )
        assert boot.status == "Accepted"
        assert boot.interval == csms.HEARTBEAT_INTERVAL
        row = station_row(stations.shared)
        assert (row.vendor, row.model, row.serial_number, row.firmware) == (
            "Wallbox",
            "Pulsar Plus",
            "SN-0042",
            "5.17.1",
        )
        assert row.last_boot_at is not None
        connectors = {c.number: c for c in Connector.objects.filter(station=stations.shared)}
        assert connectors[1].status == "Available"
        assert connectors[2].status == "Faulted"
        if version == "1.6":
            assert connectors[2].error_code == "GroundFailure"
            assert connectors[1].error_code == ""
        assert row.last_heartbeat_at is None
        before = timezone.now()
        station.call(call16.Heartbeat() if version == "1.6" else call201.Heartbeat())
        assert station_row(stations.shared).last_heartbeat_at >= before


@pytest.mark.parametrize("version", VERSIONS)
def test_a_station_is_online_while_connected(stations, gateway, version):
    station = Linked(gateway, "CP-SHARED-1", version).open()
    eventually(lambda: station_row(stations.shared).online)
    row = station_row(stations.shared)
    assert row.gateway == gateway.gateway.id and row.connected_at is not None
    connected = Event.objects.filter(station=stations.shared, kind=EventKind.STATION_CONNECTED)
    eventually(connected.exists)
    assert version in connected.get().summary
    station.close()
    eventually(lambda: not station_row(stations.shared).online)
    assert station_row(stations.shared).gateway == ""
    assert (
        Event.objects.filter(station=stations.shared, kind=EventKind.STATION_DISCONNECTED).count()
        == 1
    )
    assert stations.shared.pk not in gateway.gateway.stations


# --- Authorize: the one rule ----------------------------------------------------------------


def answers(station: Station) -> list[Event]:
    return list(
        Event.objects.filter(
            station=station,
            kind__in=[EventKind.CHARGING_AUTHORIZED, EventKind.CHARGING_REFUSED],
        ).order_by("id")
    )


def asked(linked: Linked, station: Station, uid: str) -> tuple[str, Event]:
    """The status answered for ``uid``, and the one event of that answer."""
    before = len(answers(station))
    status = linked.authorize(uid)
    after = answers(station)
    assert len(after) == before + 1, "each answer is one event"
    event = after[-1]
    assert event.station_id == station.pk
    assert event.data["status"] == status
    return status, event


def bruno(site):
    """A resident of B-3 with an existing (third-party) badge."""
    residency = add_resident(
        site.world.alice,
        site.world.prop.pk,
        ResidentSpec(
            name="Bruno Neighbour",
            email="bruno@example.com",
            move_in=date(2024, 1, 1),
            unit_id=site.other_unit.pk,
        ),
    )
    return badges.register_existing_badge(
        site.world.alice,
        site.world.prop.pk,
        residency.person_id,
        uid=OTHER_UID,
        atqa="0044",
        sak="08",
    )


@pytest.mark.parametrize("version", VERSIONS)
def test_authorize_accepts_a_resident_on_the_shared_and_her_private_station(
    stations, gateway, version
):
    for cp_id, station in (("CP-SHARED-1", stations.shared), ("CP-PRIVATE-7", stations.private)):
        with Linked(gateway, cp_id, version) as linked:
            status, event = asked(linked, station, UID)
            assert status == "Accepted"
            assert event.kind == EventKind.CHARGING_AUTHORIZED
            assert event.reason == ""
            assert event.person_id == stations.site.rosa_person.pk


@pytest.mark.parametrize("version", VERSIONS)
def test_authorize_refuses_an_unknown_badge_and_a_neighbour_on_a_private_station(
    stations, gateway, version
):
    badge = bruno(stations.site)
    with Linked(gateway, "CP-PRIVATE-7", version) as private:
        status, event = asked(private, stations.private, "04FFFFFFFFFFFF")
        assert (status, event.kind, event.reason) == (
            "Invalid",
            EventKind.CHARGING_REFUSED,
            "unknown_credential",
        )
        status, event = asked(private, stations.private, OTHER_UID)
        assert (status, event.reason) == ("Invalid", "not_their_space")
        assert event.person_id == badge.person_id
    with Linked(gateway, "CP-SHARED-1", version) as shared:
        assert asked(shared, stations.shared, OTHER_UID)[0] == "Accepted"


@pytest.mark.parametrize("version", VERSIONS)
def test_authorize_blocks_a_lost_badge(stations, gateway, version):
    badges.report_lost(stations.site.rosa, stations.badge.pk)
    with Linked(gateway, "CP-SHARED-1", version) as linked:
        status, event = asked(linked, stations.shared, UID)
    assert (status, event.kind, event.reason) == (
        "Blocked",
        EventKind.CHARGING_REFUSED,
        "badge_lost",
    )


@pytest.mark.parametrize("version", VERSIONS)
def test_authorize_answers_expired_once_the_resident_moved_out(stations, gateway, version):
    site = stations.site
    change_residency(
        site.world.alice,
        site.residency.pk,
        move_out=site_today(site.world.prop) - timedelta(days=3),
    )
    with Linked(gateway, "CP-SHARED-1", version) as linked:
        status, event = asked(linked, stations.shared, UID)
    assert (status, event.reason) == ("Expired", "moved_out")


@pytest.mark.parametrize("version", VERSIONS)
def test_authorize_refuses_a_third_party_badge_in_a_billing_and_payments_site(
    stations, gateway, version
):
    bruno(stations.site)
    set_billing_mode(
        stations.site.world.alice,
        stations.site.world.prop.pk,
        "billing_and_payments",
        confirm=True,
    )
    with Linked(gateway, "CP-SHARED-1", version) as linked:
        status, event = asked(linked, stations.shared, OTHER_UID)
        assert (status, event.reason) == ("Invalid", "platform_badges_only")
        # Rosa's badge is the platform's: still accepted.
        assert asked(linked, stations.shared, UID)[0] == "Accepted"


def test_authorize_in_201_answers_the_id_token_of_type_iso14443(stations, gateway):
    with Linked(gateway, "CP-SHARED-1", "2.0.1") as linked:
        answer = linked.call(
            call201.Authorize(id_token={"id_token": UID.lower(), "type": "ISO14443"})
        )
    assert answer.id_token_info["status"] == "Accepted"


# --- bad input (issue 13, item 9) --------------------------------------------------------------


MALFORMED = {"1.6": "FormationViolation", "2.0.1": "FormatViolation"}
# A required field missing: OCPP 1.6 names an incomplete payload ProtocolError;
# OCPP 2.0.1 names it an occurrence constraint violation (spelt as 1.6 and
# 2.0.1 spell it; the corrected spelling comes with 2.1).
MISSING = {"1.6": "ProtocolError", "2.0.1": "OccurenceConstraintViolation"}


@pytest.mark.parametrize("version", VERSIONS)
def test_malformed_json_gets_the_formation_or_format_violation(stations, gateway, version):
    with Linked(gateway, "CP-SHARED-1", version) as linked:
        linked.boot()
        answer = linked.raw('[2, "m-1", "Heartbeat", {', "m-1")  # its id read from its start
        assert answer[0] == 4 and answer[2] == MALFORMED[version]
        # A frame that is JSON but no OCPP message, and a call whose payload is no object.
        answer = linked.raw('{"hello": "there"}', "-1")
        assert answer[2] in (MALFORMED[version], "ProtocolError", "RpcFrameworkError")
        answer = linked.raw('[2, "m-2", "Heartbeat", ["not", "an", "object"]]', "m-2")
        assert answer[2] in (MALFORMED[version], "TypeConstraintViolation")
        assert linked.boot().status == "Accepted"  # the connection goes on
    fresh_station_boots(gateway, version)


@pytest.mark.parametrize("version", VERSIONS)
def test_a_field_of_the_wrong_type_is_a_type_constraint_violation(stations, gateway, version):
    with Linked(gateway, "CP-SHARED-1", version) as linked:
        if version == "1.6":
            payload = call16.StatusNotification(
                connector_id="one",  # type: ignore[arg-type]
                error_code="NoError",
                status="Available",
            )
        else:
            payload = call201.StatusNotification(
                timestamp=iso(timezone.now()),
                connector_status="Available",
                evse_id="one",  # type: ignore[arg-type]
                connector_id=1,
            )
        with pytest.raises(OCPPError) as raised:
            linked.call(payload, skip_schema_validation=True)
        assert raised.value.code == "TypeConstraintViolation"
        assert not Connector.objects.filter(station=stations.shared).exists()
        assert linked.boot().status == "Accepted"
    fresh_station_boots(gateway, version)


@pytest.mark.parametrize("version", VERSIONS)
def test_an_unknown_action_is_not_implemented(stations, gateway, version):
    with Linked(gateway, "CP-SHARED-1", version) as linked:
        answer = linked.raw(frame("u-1", "FlyToTheMoon", {}), "u-1")
        assert answer[0] == 4 and answer[2] == "NotImplemented"
        # An action OCPP knows, from the other side (the CSMS never receives it).
        other = "RemoteStartTransaction" if version == "1.6" else "RequestStartTransaction"
        answer = linked.raw(frame("u-2", other, {}), "u-2")
        assert answer[0] == 4 and answer[2] == "NotSupported"
        assert linked.boot().status == "Accepted"
    fresh_station_boots(gateway, version)


@pytest.mark.parametrize("version", VERSIONS)
def test_a_missing_required_field_gets_the_code_the_specification_names(stations, gateway, version):
    with Linked(gateway, "CP-SHARED-1", version) as linked:
        if version == "1.6":
            payload = call16.Authorize(id_tag=None)  # type: ignore[arg-type]
        else:
            payload = call201.Authorize(id_token=None)  # type: ignore[arg-type]
        with pytest.raises(OCPPError) as raised:
            linked.call(payload, skip_schema_validation=True)
        assert raised.value.code == MISSING[version]
        assert answers(stations.shared) == []
        assert linked.boot().status == "Accepted"
    fresh_station_boots(gateway, version)


@pytest.mark.parametrize("version", VERSIONS)
def test_an_oversized_frame_closes_only_that_connection(stations, gateway, version):
    with Linked(gateway, "CP-PRIVATE-7", version) as bystander:
        bystander.boot()
        big = Linked(gateway, "CP-SHARED-1", version).open()
        padding = "x" * (protocol.MAX_FRAME_BYTES + 1)
        big.send_raw(frame("big-1", "DataTransfer", {"vendorId": "V", "data": padding}))
        assert big.closed_with() == 1009
        eventually(lambda: not station_row(stations.shared).online)
        assert bystander.authorize(UID) == "Accepted"
    fresh_station_boots(gateway, version)


@pytest.mark.parametrize("version", VERSIONS)
def test_a_binary_frame_is_refused_and_the_connection_goes_on(stations, gateway, version):
    with Linked(gateway, "CP-SHARED-1", version) as linked:
        answer = linked.raw(frame("b-1", "Heartbeat", {}).encode(), "b-1")
        assert answer[0] == 4 and answer[2] == MALFORMED[version]
        assert station_row(stations.shared).last_heartbeat_at is None
        assert linked.boot().status == "Accepted"


@pytest.mark.parametrize("version", VERSIONS)
def test_a_flooding_station_is_throttled_then_closed(stations, gateway, version):
    with Linked(gateway, "CP-PRIVATE-7", version) as bystander:
        bystander.boot()
        flood = Linked(gateway, "CP-SHARED-1", version).open()
        # A burst a little over the budget: some answered, the rest told to slow down.
        count = csms.BURST + csms.MAX_DROPPED // 2
        got = flood.answers_to([frame(f"f-{n}", "Heartbeat", {}) for n in range(count)])
        assert len(got) == count, "every call is answered"
        refused = [a for a in got if a[0] == 4]
        assert refused and all(a[2] == "GenericError" for a in refused)
        # The station's own answers to the gateway's list questions count too.
        assert len([a for a in got if a[0] == 3]) >= csms.BURST // 2
        # Going on: closed.
        flood.send_many([frame(f"g-{n}", "Heartbeat", {}) for n in range(csms.MAX_DROPPED * 3)])
        assert flood.closed_with() == 4008
        assert bystander.authorize(UID) == "Accepted"
    fresh_station_boots(gateway, version)


# --- the local authorization list --------------------------------------------------------------


def link_of(gateway, station: Station) -> csms.StationLink:
    return gateway.gateway.stations[station.pk]


@pytest.mark.parametrize("version", VERSIONS)
def test_a_booted_station_gets_the_full_list(stations, gateway, version):
    with Linked(gateway, "CP-SHARED-1", version, keeper=True) as linked:
        linked.boot()
        eventually(lambda: station_row(stations.shared).acked_version > 0)
        update = linked.cp.updates[0]
        row = station_row(stations.shared)
        assert update.kind == "Full"
        assert update.version == row.list_version == row.acked_version
        assert update.entries == {UID: "Accepted"}
        assert set(row.acked_entries) == {UID}
        assert row.last_error == ""
        # A lost badge: a Differential with Rosa Blocked, at a higher version.
        badges.report_lost(stations.site.rosa, stations.badge.pk)
        eventually(lambda: len(linked.cp.updates) == 2)
        lost = linked.cp.updates[1]
        assert lost.kind == "Differential"
        assert lost.entries == {UID: "Blocked"}
        assert lost.version > update.version
        eventually(lambda: station_row(stations.shared).acked_version == lost.version)
        assert station_row(stations.shared).acked_entries[UID].startswith("Blocked")


@pytest.mark.parametrize("version", VERSIONS)
def test_a_station_without_a_local_list_is_marked_and_not_asked_again(stations, gateway, version):
    with Linked(gateway, "CP-SHARED-1", version) as linked:  # no list handlers
        linked.boot()
        eventually(lambda: station_row(stations.shared).last_error != "")
        assert "no local list" in station_row(stations.shared).last_error
        assert station_row(stations.shared).acked_version == 0
        link = gateway.gateway.stations[stations.shared.pk]
        assert not link.list_supported
        # A change: nothing is sent to it (its answers would show as errors).
        badges.report_lost(stations.site.rosa, stations.badge.pk)
        gateway.run(csms.sync(gateway.gateway, link))
        assert linked.authorize(UID) == "Blocked"
        assert station_row(stations.shared).acked_version == 0


@pytest.mark.parametrize("version", VERSIONS)
def test_a_station_holding_the_acknowledged_list_gets_nothing_new(stations, gateway, version):
    with Linked(gateway, "CP-SHARED-1", version, keeper=True) as first:
        first.boot()
        eventually(lambda: station_row(stations.shared).acked_version > 0)
        held = first.cp.list_version
    eventually(lambda: not station_row(stations.shared).online)
    again = Linked(gateway, "CP-SHARED-1", version, keeper=True).open(version=held)
    try:
        again.boot()
        eventually(lambda: again.cp.asked_version == 1)
        eventually(lambda: link_of(gateway, stations.shared).acked_version == held)
        gateway.run(csms.sync(gateway.gateway, link_of(gateway, stations.shared)))
        assert again.cp.updates == []
        # A change while it is connected is a difference, not a whole list.
        badges.report_lost(stations.site.rosa, stations.badge.pk)
        eventually(lambda: len(again.cp.updates) == 1)
        assert again.cp.updates[0].kind == "Differential"
    finally:
        again.close()


@pytest.mark.parametrize("version", VERSIONS)
def test_a_station_answering_version_mismatch_gets_the_full_list(stations, gateway, version):
    with Linked(gateway, "CP-SHARED-1", version, keeper=True) as first:
        first.boot()
        eventually(lambda: station_row(stations.shared).acked_version > 0)
        held = first.cp.list_version
    eventually(lambda: not station_row(stations.shared).online)
    again = Linked(gateway, "CP-SHARED-1", version, keeper=True).open(
        version=held, answers=["VersionMismatch"]
    )
    try:
        again.boot()
        eventually(lambda: again.cp.asked_version == 1)
        eventually(lambda: link_of(gateway, stations.shared).acked_version == held)
        badges.report_lost(stations.site.rosa, stations.badge.pk)
        eventually(lambda: len(again.cp.updates) == 2)
        refused, whole = again.cp.updates
        assert refused.kind == "Differential"
        assert whole.kind == "Full" and whole.entries == {UID: "Blocked"}
        eventually(lambda: station_row(stations.shared).acked_version == whole.version)
    finally:
        again.close()
