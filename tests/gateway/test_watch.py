"""What reaches a lock without the gateway's watch round: the notice after a
change, and the end of a key window (timed from the lists in memory). The
round itself selects only the locks recorded as held by its gateway. And the
gateway's database threads."""

from __future__ import annotations

from datetime import timedelta

from django.db import connection
from django.utils import timezone
from gateway_helpers import PROMPTLY, eventually, give, start_gateway, version

from doorkeep.cli import build_parser
from doorkeep.gateway.models import Device
from doorkeep.keys.services import revoke_key

GATEWAY_POLL_INTERVAL = 60  # the watch round never comes during a test
# A window's end reaches the lock by its own timer: long before a round would
# come, with room for a busy machine (bench/ measures how soon).
ON_TIME = timedelta(seconds=5)


def test_a_change_reaches_the_lock_by_its_notice(world, gateway, device):
    gateway.run(device.connect())

    dana = give(world, pin="2580")
    gateway.run(device.wait_for_version(version(world), timeout=PROMPTLY))
    revoke_key(world.alice, dana.pk)
    gateway.run(device.wait_for_version(version(world), timeout=PROMPTLY))

    assert device.decide("pin", "2580").reason == "unknown_credential"


def test_a_window_that_ends_while_connected_leaves_the_list_on_time_without_a_round(
    world, gateway, device
):
    ends = timezone.now() + timedelta(seconds=3)
    give(world, pin="2580", valid_until=ends)
    give(world, "Erin", pin="1357")
    gateway.run(device.connect())
    start = version(world)
    assert device.decide("pin", "2580").granted

    eventually(lambda: len(device.entries) == 1)

    assert timezone.now() - ends < ON_TIME
    assert device.version > start  # the list changed by itself: a new version
    assert device.decide("pin", "2580").reason == "unknown_credential"
    assert device.decide("pin", "1357").granted


def test_a_short_window_issued_while_connected_ends_on_time_too(world, gateway, device):
    give(world, "Erin", pin="1357", valid_until=timezone.now() + timedelta(days=1))
    gateway.run(device.connect())
    ends = timezone.now() + timedelta(seconds=3)

    give(world, pin="2580", valid_until=ends)
    gateway.run(device.wait_for_version(version(world), timeout=PROMPTLY))
    assert device.decide("pin", "2580").granted
    eventually(lambda: len(device.entries) == 1)

    assert timezone.now() - ends < ON_TIME
    assert device.decide("pin", "1357").granted


def test_the_round_closes_a_connection_the_device_row_gives_to_another_gateway(world, device):
    running, stop = start_gateway(poll_interval=0.1)
    try:
        other = running.lock(world.lock.serial)
        running.run(other.connect())
        held_by = Device.objects.get(lock=world.lock).gateway
        assert held_by == running.gateway.id
        Device.objects.filter(lock=world.lock).update(gateway="gw-elsewhere")

        eventually(lambda: other.close_code is not None)

        assert other.close_code == 4009
        assert running.gateway.connections == {}
    finally:
        stop()


def test_the_database_threads_use_a_smaller_sqlite_cache(gateway):
    """On SQLite each database thread's connection gets the smaller cache; on
    PostgreSQL (the server owns its cache) the threads' connections are left
    as they are."""
    if connection.vendor != "sqlite":
        from django.db import connection as thread_connection

        def vendor_and_answer() -> tuple[str, int]:
            with thread_connection.cursor() as cursor:
                cursor.execute("SELECT 1")
                return thread_connection.vendor, int(cursor.fetchone()[0])

        assert gateway.run(gateway.gateway.db(vendor_and_answer)) == (connection.vendor, 1)
        return

    def cache_size() -> int:
        from django.db import connection as thread_connection

        with thread_connection.cursor() as cursor:
            cursor.execute("PRAGMA cache_size")
            return int(cursor.fetchone()[0])

    assert gateway.run(gateway.gateway.db(cache_size)) == -8192
    assert cache_size() == -65536  # this (web) connection keeps the settings' cache


def test_the_gateway_command_takes_the_number_of_database_threads(monkeypatch):
    monkeypatch.delenv("GATEWAY_DB_THREADS", raising=False)
    assert build_parser().parse_args(["gateway"]).db_threads == 4
    assert build_parser().parse_args(["gateway", "--db-threads", "2"]).db_threads == 2
    monkeypatch.setenv("GATEWAY_DB_THREADS", "3")
    assert build_parser().parse_args(["gateway"]).db_threads == 3


def test_a_gateway_runs_its_database_work_in_the_threads_it_was_given():
    from doorkeep.gateway.server import Gateway

    assert Gateway(db_threads=2).executor._max_workers == 2
