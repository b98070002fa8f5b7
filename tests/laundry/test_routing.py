"""Several gateways: a laundry machine held by one of them is found by the
web workers' commands and change notices, directly (the Machine row names
its gateway) or through Redis; a machine that reconnects elsewhere is
dropped by the gateway that held it."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from gateway_helpers import PROMPTLY, Running, eventually, start_gateway
from laundry_values import SECRET, UID, WASHER

from doorkeep.badges import services as badges
from doorkeep.gateway import routing
from doorkeep.gateway.laundry.simulator import SimulatedMachine
from doorkeep.laundry import services
from doorkeep.laundry.models import Machine

REDIS_URL = "redis://127.0.0.1:6379/15"  # a database of the tests' own


@pytest.fixture(params=["direct", "redis"])
def routed(request: pytest.FixtureRequest, settings: Any, transactional_db: None) -> Iterator[str]:
    """Direct routing, or Redis under a key prefix of this test's own."""
    if request.param == "direct":
        yield "direct"
        return
    import redis

    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1, socket_timeout=5)
    try:
        client.ping()
    except redis.RedisError as exc:
        pytest.skip(f"Redis is not reachable at {REDIS_URL}: {exc}")
    prefix = f"doorkeep-test-{uuid.uuid4().hex[:10]}"
    settings.DOORKEEP_GATEWAY_ROUTING = "redis"
    settings.REDIS_URL = REDIS_URL
    settings.DOORKEEP_GATEWAY_REDIS_PREFIX = prefix
    routing._redis_client = None
    yield "redis"
    if routing._redis_client is not None:
        routing._redis_client.close()
    routing._redis_client = None
    made = list(client.scan_iter(f"{prefix}:*"))
    if made:
        client.delete(*made)
    client.close()


@pytest.fixture
def two(routed: str) -> Iterator[tuple[Running, Running]]:
    """Gateways A and B, whose own watch rounds are slow: only a notice or a
    command is in time."""
    tag = uuid.uuid4().hex[:6]
    a, stop_a = start_gateway(gateway_id=f"gw-a-{tag}", poll_interval=60)
    b, stop_b = start_gateway(gateway_id=f"gw-b-{tag}", poll_interval=60)
    yield a, b
    stop_b()
    stop_a()


def machine_on(gateway: Running, **kwargs: Any) -> SimulatedMachine:
    async def build() -> SimulatedMachine:
        return SimulatedMachine(gateway.url, WASHER, SECRET, cycle_seconds=0.2, **kwargs)

    machine = gateway.run(build())
    gateway.run(machine.connect())
    return machine


def test_a_lost_badge_reaches_the_machine_on_the_other_gateway(laundry, two):
    _a, b = two
    machine = machine_on(b)
    assert UID in {e["match"] for e in machine.entries.values()}
    time.sleep(0.2)

    badges.report_lost(laundry.site.rosa, laundry.badge.pk)

    version = Machine.objects.get(pk=laundry.washer.pk).list_version
    b.run(machine.wait_for_version(version, timeout=PROMPTLY))
    assert machine.entries == {}
    b.run(machine.close())


def test_a_portal_start_finds_the_gateway_holding_the_machine(laundry, two):
    a, b = two
    machine = machine_on(b)

    answer = services.start_machine(laundry.site.rosa, laundry.washer.pk)

    assert machine.started == [answer.request_id]
    assert list(a.gateway.machines) == [] and list(b.gateway.machines) == [laundry.washer.pk]
    b.run(machine.close())


def test_a_machine_that_reconnects_elsewhere_is_dropped_by_the_first_gateway(laundry, two):
    a, b = two
    first = machine_on(a)
    second = machine_on(b)

    eventually(lambda: first.close_code == 4009)
    assert first.close_reason == "connected again elsewhere"
    eventually(lambda: laundry.washer.pk not in a.gateway.machines)
    row = Machine.objects.get(pk=laundry.washer.pk)
    assert row.online and row.gateway == b.gateway.id
    b.run(second.close())
