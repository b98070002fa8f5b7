"""A gateway that dies is noticed: gateways hold a lease they renew, and the
devices of a gateway whose lease ran out are recorded offline by the others
(gateway/leases.py); and one address cannot hold connections that never say
hello (DOORKEEP_GATEWAY_WAITING_PER_ADDRESS)."""

from __future__ import annotations

import asyncio
import ipaddress
import os
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.utils import timezone
from gateway_helpers import (
    DEVICE_SECRET,
    database_url,
    eventually,
    free_port,
    more_locks,
)
from websockets.exceptions import InvalidStatus
from websockets.sync.client import ClientConnection, connect

from doorkeep.events.models import Event, EventKind
from doorkeep.gateway import leases
from doorkeep.gateway.models import Device, GatewayLease
from doorkeep.gateway.services import set_device_secret

LEASE = 2  # seconds: renewed every half second, so these tests wait little
# The gateway that is killed runs in a process of its own, started while the
# machine is busy with the rest of the suite: a longer lease, so that it is not
# taken for dead before it is killed.
DOOMED_LEASE = 4


def row_of(lock) -> Device:
    return Device.objects.get(lock=lock)


def device_online(lock) -> bool:
    return row_of(lock).online


def offline_events(lock) -> list[Event]:
    return list(Event.objects.filter(lock=lock, kind=EventKind.DEVICE_DISCONNECTED))


def start_doomed_gateway(tmp_path: Path, gateway_id: str) -> tuple[subprocess.Popen[bytes], int]:
    """``doorkeep gateway`` in a process of its own, on the test database."""
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": database_url(),
        "DOORKEEP_DATA_DIR": str(django_settings.DATA_DIR),
        "DOORKEEP_GATEWAY_LEASE_SECONDS": str(DOOMED_LEASE),
    }
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    doorkeep = Path(sys.executable).with_name("doorkeep")
    log = (tmp_path / "doomed.log").open("wb")
    child = subprocess.Popen(
        [str(doorkeep), "gateway", "--id", gateway_id, "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 60
    while True:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1)
            return child, port
        except OSError:
            if child.poll() is not None or time.monotonic() > deadline:
                child.kill()
                pytest.fail(f"the gateway did not start:\n{(tmp_path / 'doomed.log').read_text()}")
            time.sleep(0.1)


def test_a_gateway_killed_is_noticed_and_its_locks_are_taken_over(
    world, gateway, settings, tmp_path
):
    settings.DOORKEEP_GATEWAY_LEASE_SECONDS = LEASE
    set_device_secret(world.lock, DEVICE_SECRET)
    doomed_id = f"gw-doomed-{uuid.uuid4().hex[:6]}"
    child, port = start_doomed_gateway(tmp_path, doomed_id)
    try:
        lock = gateway.lock(world.lock.serial)
        lock.url = f"ws://127.0.0.1:{port}"
        gateway.run(lock.connect())
        row = row_of(world.lock)
        assert row.online and row.gateway == doomed_id
        assert GatewayLease.objects.filter(gateway=doomed_id).exists()

        child.send_signal(signal.SIGKILL)  # no goodbye, nothing written
        child.wait(10)
        assert row_of(world.lock).gateway == doomed_id  # as it was left

        # The running gateway finds the lease run out and records the lock offline.
        eventually(lambda: not row_of(world.lock).online, timeout=DOOMED_LEASE * 5)
        assert row_of(world.lock).gateway == ""
        assert doomed_id in offline_events(world.lock)[-1].data["reason"]
        assert not GatewayLease.objects.filter(gateway=doomed_id).exists()

        # The lock reconnects, here to the running gateway, which takes it over.
        lock.url = gateway.url
        gateway.run(lock.connect())
        row = row_of(world.lock)
        assert row.online and row.gateway == gateway.gateway.id
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(10)
        gateway.run(lock.go_offline())


def test_a_dead_lease_is_swept_once_and_live_gateways_are_left_alone(world, gateway, device):
    others = more_locks(world, 2)[1:]  # before connecting: it sets the device secrets
    gateway.run(device.connect())
    ghost = f"gw-ghost-{uuid.uuid4().hex[:6]}"
    now = timezone.now()
    GatewayLease.objects.create(
        gateway=ghost,
        url="http://127.0.0.1:9",
        started_at=now - timedelta(minutes=5),
        renewed_at=now - timedelta(minutes=1),
        expires_at=now - timedelta(seconds=50),
    )
    for other in others:
        Device.objects.filter(lock=other).update(online=True, gateway=ghost, connected_at=now)

    swept = leases.sweep()
    again = leases.sweep()

    assert [(s.gateway, s.locks, s.stations, s.machines) for s in swept] == [(ghost, 2, 0, 0)]
    assert again == []
    for other in others:
        assert not device_online(other)
        assert len(offline_events(other)) == 1
    assert device_online(world.lock)  # the running gateway's lease is alive
    assert gateway.gateway.id in leases.live()


def test_a_gateway_taken_for_dead_takes_its_locks_back(world, gateway, device, settings):
    settings.DOORKEEP_GATEWAY_LEASE_SECONDS = LEASE
    gateway.run(device.connect())
    me = gateway.gateway.id
    # As if this gateway had stalled longer than its lease: another one swept it.
    GatewayLease.objects.filter(gateway=me).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert [s.gateway for s in leases.sweep()] == [me]
    assert not device_online(world.lock)

    eventually(lambda: device_online(world.lock), timeout=LEASE * 5)
    assert row_of(world.lock).gateway == me
    assert GatewayLease.objects.filter(gateway=me).exists()
    back = Event.objects.filter(lock=world.lock, kind=EventKind.DEVICE_CONNECTED)
    assert back.count() == 2  # the connection, and the lease taken back


def test_a_clean_stop_gives_the_lease_up(transactional_db):
    from gateway_helpers import start_gateway

    running, stop = start_gateway()
    me = running.gateway.id
    assert me in leases.live()
    stop()
    assert not GatewayLease.objects.filter(gateway=me).exists()


# --- connections that never say hello ------------------------------------------------


def opened(url: str, **headers: str) -> ClientConnection:
    return connect(url, additional_headers=headers or None, open_timeout=5)


def refused(url: str, **headers: str) -> int:
    with pytest.raises(InvalidStatus) as caught, opened(url, **headers):
        pass
    return caught.value.response.status_code


def test_one_address_cannot_hold_connections_that_never_say_hello(gateway, settings):
    settings.DOORKEEP_GATEWAY_WAITING_PER_ADDRESS = 2
    with opened(gateway.url) as first, opened(gateway.url):
        assert refused(gateway.url) == 503
        # A forwarded address is not believed from an untrusted peer.
        assert refused(gateway.url, **{"X-Forwarded-For": "198.51.100.7"}) == 503
        first.send('{"type": "hello"}')  # said something: no longer waiting
        eventually(lambda: len(gateway.gateway.waiting.get("127.0.0.1", ())) == 1)
        with opened(gateway.url):
            pass


def test_behind_a_trusted_proxy_each_client_address_counts_alone(gateway, settings):
    settings.DOORKEEP_GATEWAY_WAITING_PER_ADDRESS = 1
    settings.DOORKEEP_TRUSTED_PROXIES = [ipaddress.ip_network("127.0.0.1/32")]
    with opened(gateway.url, **{"X-Forwarded-For": "198.51.100.7"}):
        assert refused(gateway.url, **{"X-Forwarded-For": "198.51.100.7"}) == 503
        with opened(gateway.url, **{"X-Forwarded-For": "203.0.113.9"}):
            pass
    # Closed connections stop counting, whether or not they said hello.
    eventually(lambda: not refused_now(gateway.url, "198.51.100.7"))


def refused_now(url: str, address: str) -> bool:
    try:
        with opened(url, **{"X-Forwarded-For": address}):
            return False
    except InvalidStatus:
        return True


def test_a_gateway_started_under_the_id_of_one_that_crashed_records_its_devices_offline(
    world, transactional_db
):
    from gateway_helpers import start_gateway

    same = f"gw-same-{uuid.uuid4().hex[:6]}"
    # What a gateway killed with -9 leaves: its lock recorded online under it.
    Device.objects.filter(lock=world.lock).update(
        online=True, gateway=same, connected_at=timezone.now()
    )
    _running, stop = start_gateway(gateway_id=same)
    try:
        assert not device_online(world.lock)
        [event] = offline_events(world.lock)
        assert same in event.data["reason"] and "restarted" in event.data["reason"]
        assert same in leases.live()
    finally:
        stop()


# --- false alarms and edges (an independent review found each) -----------------------------


def test_a_gateway_whose_loop_stalls_longer_than_its_lease_closes_no_lock(
    world, gateway, device, settings
):
    """Taken for dead while its loop was blocked: when the loop runs again the
    lease round and the watch round are due together; the watch must not
    close the locks missing from a ``standing`` read before the reclaim."""
    settings.DOORKEEP_GATEWAY_LEASE_SECONDS = LEASE
    gateway.run(device.connect())
    time.sleep(LEASE * 1.3)  # a renewal with the short lease
    me = gateway.gateway.id
    gateway.loop.call_soon_threadsafe(time.sleep, LEASE + 2.5)  # a blocked loop
    time.sleep(LEASE + 1.0)
    assert [s.gateway for s in leases.sweep()] == [me]  # another gateway looks
    assert not device_online(world.lock)

    eventually(lambda: device_online(world.lock), timeout=LEASE * 5)
    time.sleep(1.0)  # several watch rounds (every 0.1 s here) after the reclaim
    assert device.close_code is None, (device.close_code, device.close_reason)
    assert device_online(world.lock) and row_of(world.lock).gateway == me
    assert world.lock.pk in gateway.gateway.connections


def test_a_lock_removed_while_its_gateway_is_dead_does_not_hold_up_any_sweep(world):
    from doorkeep.locks.models import Lock

    locks = more_locks(world, 2)
    now = timezone.now()
    first, second = f"gw-x-{uuid.uuid4().hex[:4]}", f"gw-y-{uuid.uuid4().hex[:4]}"
    for name, ago in ((first, 100), (second, 50)):
        GatewayLease.objects.create(
            gateway=name,
            url="",
            started_at=now - timedelta(minutes=5),
            renewed_at=now - timedelta(minutes=1),
            expires_at=now - timedelta(seconds=ago),
        )
    for lock, name in ((locks[0], first), (locks[1], first), (locks[2], second)):
        Device.objects.filter(lock=lock).update(online=True, gateway=name, connected_at=now)
    # The owner removes a lock the page still shows online (its gateway was killed).
    Lock.objects.filter(pk=locks[0].pk).update(organization=None, entry=None)

    swept = {s.gateway: s.locks for s in leases.sweep()}

    assert swept == {first: 2, second: 1}
    assert not Device.objects.filter(online=True).exists()
    assert not GatewayLease.objects.filter(gateway__in=[first, second]).exists()
    assert offline_events(locks[0]) == []  # no owner to tell
    assert len(offline_events(locks[1])) == len(offline_events(locks[2])) == 1


def test_a_gateway_restarted_under_the_id_of_one_holding_a_removed_lock_starts(
    world, transactional_db
):
    from gateway_helpers import start_gateway

    from doorkeep.locks.models import Lock

    same = f"gw-same-{uuid.uuid4().hex[:6]}"
    Device.objects.filter(lock=world.lock).update(
        online=True, gateway=same, connected_at=timezone.now()
    )
    Lock.objects.filter(pk=world.lock.pk).update(organization=None, entry=None)
    _running, stop = start_gateway(gateway_id=same)
    stop()
    assert not device_online(world.lock)


def test_a_lock_whose_connection_closed_while_its_gateway_reclaimed_it_is_offline(
    world, gateway, device, settings
):
    """The reclaim takes the list of connections, the connection closes and its
    goodbye finds the row already offline; the reclaim then recorded it
    online under a gateway that no longer held it."""
    settings.DOORKEEP_GATEWAY_LEASE_SECONDS = LEASE
    gateway.run(device.connect())
    running = gateway.gateway
    original = leases.reclaim

    def slow_reclaim(*args, **kwargs):
        # The lock goes away after the list was taken, before the reclaim writes.
        gateway.loop.call_soon_threadsafe(asyncio.ensure_future, device.go_offline())
        time.sleep(1.0)
        return original(*args, **kwargs)

    GatewayLease.objects.filter(gateway=running.id).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    leases.sweep()
    try:
        leases.reclaim = slow_reclaim
        eventually(lambda: not running.reclaim_pending and leases.held(running.id), LEASE * 5)
    finally:
        leases.reclaim = original
    eventually(lambda: not device_online(world.lock))
    time.sleep(0.5)
    assert not device_online(world.lock)
    assert world.lock.pk not in running.connections


def test_handshakes_that_fail_after_being_counted_are_forgotten(gateway, settings):
    """A plain GET (no WebSocket upgrade) is counted, then refused by the
    handshake itself, and never reaches the handler: the lease round forgets it."""
    import http.client

    settings.DOORKEEP_GATEWAY_LEASE_SECONDS = LEASE
    settings.DOORKEEP_TRUSTED_PROXIES = [ipaddress.ip_network("127.0.0.1/32")]
    for n in range(50):
        plain = http.client.HTTPConnection("127.0.0.1", gateway.gateway.port, timeout=5)
        plain.request("GET", "/", headers={"X-Forwarded-For": f"198.51.100.{n}"})
        assert plain.getresponse().status == 426
        plain.close()
    eventually(lambda: gateway.gateway.waiting == {}, timeout=LEASE * 3)


def test_two_forwarded_for_lines_are_read_as_one_list(gateway, settings):
    """A proxy that adds a line of its own instead of appending: no 500."""
    import http.client

    settings.DOORKEEP_TRUSTED_PROXIES = [ipaddress.ip_network("127.0.0.1/32")]
    settings.DOORKEEP_GATEWAY_WAITING_PER_ADDRESS = 1
    conn = http.client.HTTPConnection("127.0.0.1", gateway.gateway.port, timeout=5)
    conn.putrequest("GET", "/")
    for line in ("203.0.113.1", "198.51.100.7"):
        conn.putheader("X-Forwarded-For", line)
    for name, value in (
        ("Upgrade", "websocket"),
        ("Connection", "Upgrade"),
        ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
        ("Sec-WebSocket-Version", "13"),
    ):
        conn.putheader(name, value)
    conn.endheaders()
    assert conn.getresponse().status == 101
    try:
        # The right-most address is the client: it now has its one waiting connection.
        assert refused(gateway.url, **{"X-Forwarded-For": "198.51.100.7"}) == 503
    finally:
        conn.close()


def test_stations_and_machines_are_swept_and_reclaimed_with_their_events(world):
    """A dead gateway's charging station and laundry machine go offline with
    their own events; a reclaim brings them back online under the gateway."""
    from doorkeep.chargers.models import Station
    from doorkeep.laundry.models import Machine

    now = timezone.now()
    ghost = f"gw-ghost-{uuid.uuid4().hex[:6]}"
    held = {"online": True, "gateway": ghost, "connected_at": now}
    station = Station.objects.create(
        organization_id=world.prop.organization_id,
        property=world.prop,
        charge_point_id="CP-LEASE-1",
        password_digest="-",
        **held,
    )
    machine = Machine.objects.create(
        organization_id=world.prop.organization_id,
        property=world.prop,
        serial="LM-LEASE-1",
        name="Washer 2",
        secret_digest="-",
        **held,
    )
    GatewayLease.objects.create(
        gateway=ghost,
        url="",
        started_at=now - timedelta(minutes=5),
        renewed_at=now - timedelta(minutes=1),
        expires_at=now - timedelta(seconds=30),
    )

    [swept] = leases.sweep()

    assert (swept.locks, swept.stations, swept.machines) == (0, 1, 1)
    station.refresh_from_db()
    machine.refresh_from_db()
    assert not station.online and not machine.online and station.gateway == machine.gateway == ""
    gone = Event.objects.filter(kind=EventKind.STATION_DISCONNECTED, station=station).get()
    assert ghost in gone.data["reason"]
    down = Event.objects.filter(kind=EventKind.MACHINE_DISCONNECTED, machine=machine).get()
    assert down.summary == "Laundry machine Washer 2 offline"

    back = leases.reclaim(ghost, "http://ghost", stations=[station.pk], machines=[machine.pk])

    assert (back.stations, back.machines, len(back)) == ([station.pk], [machine.pk], 2)
    station.refresh_from_db()
    machine.refresh_from_db()
    assert station.online and station.gateway == ghost and station.gateway_url == "http://ghost"
    assert machine.online and machine.gateway == ghost
    assert Event.objects.filter(kind=EventKind.STATION_CONNECTED, station=station).count() == 1
    assert Event.objects.filter(kind=EventKind.MACHINE_CONNECTED, machine=machine).count() == 1
