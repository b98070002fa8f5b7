"""The CSMS's handshake: HTTP Basic authentication before the WebSocket
upgrade (OCPP security profiles 1 and 2), the OCPP subprotocol negotiated
per connection, locks beside stations on the same server, and a station
that connects again replacing its older connection."""

from __future__ import annotations

import asyncio
import logging

import pytest
from charger_values import PASSWORD
from csms_helpers import VERSIONS, Linked, basic
from django.utils import timezone
from gateway_helpers import DEVICE_SECRET, eventually
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from doorkeep.chargers.models import Station
from doorkeep.events.models import Event, EventKind
from doorkeep.gateway.models import Device
from doorkeep.gateway.services import set_device_secret


def refused(gateway, path, *, headers=None, subprotocols=("ocpp1.6",)) -> int:
    """The HTTP status of a handshake the gateway refuses (it must refuse it)."""

    async def go() -> int:
        try:
            async with connect(
                f"{gateway.url}{path}",
                subprotocols=list(subprotocols) or None,
                additional_headers=headers or {},
            ):
                pass
        except InvalidStatus as exc:
            return exc.response.status_code
        raise AssertionError("the gateway accepted the connection")

    return gateway.run(go())


def refusals(station: Station) -> int:
    return Event.objects.filter(station=station, kind=EventKind.STATION_REFUSED).count()


def test_an_unknown_station_is_refused_before_the_upgrade_and_logged(stations, gateway, caplog):
    with caplog.at_level(logging.INFO):
        status = refused(gateway, "/ocpp/CP-NOBODY-9", headers=basic("CP-NOBODY-9"))
    assert status == 401
    assert "CP-NOBODY-9" in caplog.text and "unknown id" in caplog.text
    assert not gateway.gateway.stations


def test_a_wrong_password_is_refused_logged_and_one_event_a_minute(stations, gateway, caplog):
    with caplog.at_level(logging.INFO):
        first = refused(gateway, "/ocpp/CP-SHARED-1", headers=basic("CP-SHARED-1", "guess-1"))
        second = refused(gateway, "/ocpp/CP-SHARED-1", headers=basic("CP-SHARED-1", "guess-2"))
    assert (first, second) == (401, 401)
    assert caplog.text.count("refused station CP-SHARED-1") == 2
    assert "wrong password" in caplog.text
    event = Event.objects.get(station=stations.shared, kind=EventKind.STATION_REFUSED)
    assert event.reason == "wrong_password"
    assert event.property_id == stations.shared.property_id
    assert event.data["peer"].startswith("127.0.0.1:")


def test_wrong_passwords_at_once_make_one_event(stations, gateway):
    async def attempt(n: int) -> int:
        try:
            async with connect(
                f"{gateway.url}/ocpp/CP-SHARED-1",
                subprotocols=["ocpp1.6"],
                additional_headers=basic("CP-SHARED-1", f"guess-{n}"),
            ):
                return 101
        except InvalidStatus as exc:
            return exc.response.status_code

    async def together() -> list[int]:
        return list(await asyncio.gather(*(attempt(n) for n in range(6))))

    assert gateway.run(together()) == [401] * 6
    assert refusals(stations.shared) == 1


def test_a_station_without_authorization_is_refused(stations, gateway, caplog):
    with caplog.at_level(logging.INFO):
        assert refused(gateway, "/ocpp/CP-SHARED-1") == 401
        assert refused(gateway, "/ocpp/CP-SHARED-1", headers={"Authorization": "Bearer x"}) == 401
    assert "no Basic authentication" in caplog.text
    assert refusals(stations.shared) == 0


def test_another_stations_credentials_do_not_open_a_station(stations, gateway, caplog):
    # CP-PRIVATE-7's own id and (right) password, on CP-SHARED-1's address.
    with caplog.at_level(logging.INFO):
        status = refused(gateway, "/ocpp/CP-SHARED-1", headers=basic("CP-PRIVATE-7"))
    assert status == 401
    assert "is not its id" in caplog.text
    assert not Station.objects.get(pk=stations.shared.pk).online


def test_a_removed_station_is_refused(stations, gateway):
    Station.objects.filter(pk=stations.shared.pk).update(removed_at=timezone.now())
    assert refused(gateway, "/ocpp/CP-SHARED-1", headers=basic("CP-SHARED-1")) == 401
    assert not gateway.gateway.stations


def test_a_station_offering_no_ocpp_subprotocol_gets_a_400(stations, gateway):
    headers = basic("CP-SHARED-1")
    assert refused(gateway, "/ocpp/CP-SHARED-1", headers=headers, subprotocols=()) == 400
    assert refused(gateway, "/ocpp/CP-SHARED-1", headers=headers, subprotocols=("ocpp1.5",)) == 400


@pytest.mark.parametrize("version", VERSIONS)
def test_each_subprotocol_negotiates_its_version(stations, gateway, version):
    with Linked(gateway, "CP-SHARED-1", version) as station:
        assert station.ws.subprotocol == f"ocpp{version}"
        eventually(lambda: Station.objects.get(pk=stations.shared.pk).online)
        assert Station.objects.get(pk=stations.shared.pk).ocpp_version == version
        assert gateway.gateway.stations[stations.shared.pk].version == version
        assert station.boot().status == "Accepted"


def test_a_station_offering_both_gets_the_one_it_prefers(stations, gateway):
    async def go() -> str | None:
        async with connect(
            f"{gateway.url}/ocpp/CP-SHARED-1",
            subprotocols=["ocpp2.0.1", "ocpp1.6"],
            additional_headers=basic("CP-SHARED-1"),
        ) as ws:
            return ws.subprotocol

    assert gateway.run(go()) == "ocpp2.0.1"


def test_a_lock_still_connects_beside_stations(world, stations, gateway):
    with Linked(gateway, "CP-SHARED-1", "2.0.1") as station:
        station.boot()
        set_device_secret(world.lock, DEVICE_SECRET)
        lock = gateway.lock(world.lock.serial)
        gateway.run(lock.connect())
        eventually(lambda: Device.objects.get(lock=world.lock).online)
        assert lock.version > 0
        # The station is still served.
        assert station.authorize("04A1B2C3D4E5F6") == "Accepted"
        gateway.run(lock.go_offline())


def test_the_same_station_connecting_again_replaces_the_older_connection(stations, gateway, caplog):
    caplog.set_level(logging.INFO)
    older = Linked(gateway, "CP-SHARED-1", "1.6").open()
    older.boot()
    newer = Linked(gateway, "CP-SHARED-1", "1.6").open()
    assert older.closed_with() == 4009
    assert newer.boot().status == "Accepted"
    assert (
        gateway.gateway.stations[stations.shared.pk].ws.remote_address[1]
        == (newer.ws.local_address[1])
    )
    # The older connection's end does not make the station offline.
    eventually(lambda: "station CP-SHARED-1 disconnected" in caplog.text)
    assert Station.objects.get(pk=stations.shared.pk).online
    assert not Event.objects.filter(kind=EventKind.STATION_DISCONNECTED).exists()
    newer.close()
    eventually(lambda: not Station.objects.get(pk=stations.shared.pk).online)


def test_the_password_is_checked_not_just_the_id(stations, gateway):
    Station.objects.filter(pk=stations.private.pk).update(
        password_digest=Station.digest_of("another-password-0002")
    )
    assert refused(gateway, "/ocpp/CP-PRIVATE-7", headers=basic("CP-PRIVATE-7", PASSWORD)) == 401
    with Linked(gateway, "CP-PRIVATE-7", password="another-password-0002") as station:
        assert station.boot().status == "Accepted"
