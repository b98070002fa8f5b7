"""Health, readiness and metrics of web workers and gateways (issue 16,
item 7): what a load balancer and Prometheus ask."""

from __future__ import annotations

import socket
import urllib.error
import urllib.request
from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from gateway_helpers import eventually
from prometheus_client.parser import text_string_to_metric_families

from doorkeep.core import ratelimit
from doorkeep.core.errors import RateLimited
from doorkeep.gateway import routing
from doorkeep.gateway.models import Device
from doorkeep.keys import access
from doorkeep.notify.models import Channel, OutboxMessage

TOKEN = "metrics-token-for-tests"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _value(text: str, name: str, **labels: str) -> float:
    """The sum of the samples called ``name`` whose labels include ``labels``."""
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items())
    )


def _scrape(client: Client) -> str:
    response = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain; version=")
    return response.content.decode()


@pytest.fixture
def metrics_on(settings: Any) -> None:
    settings.DOORKEEP_METRICS_TOKEN = TOKEN


def test_healthz_answers_without_a_session_or_the_database(client, django_assert_num_queries):
    with django_assert_num_queries(0):
        response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"ok": True}


def test_readyz_says_ready_when_the_database_and_the_gateway_answer(db, gateway, settings, client):
    settings.GATEWAY_PUBLIC_URL = gateway.url  # ws://127.0.0.1:port, read as its HTTP side
    response = client.get("/readyz")
    assert response.status_code == 200, response.content
    assert response.json()["ok"] is True and response.json()["failed"] == []


def test_readyz_answers_503_and_says_why_when_no_gateway_answers(db, settings, client):
    settings.GATEWAY_PUBLIC_URL = f"http://127.0.0.1:{_free_port()}"
    response = client.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["ok"] is False
    assert [problem.split(":")[0] for problem in body["failed"]] == ["gateway"]


def test_readyz_with_redis_routing_asks_redis(db, settings, client):
    settings.DOORKEEP_GATEWAY_ROUTING = "redis"
    settings.REDIS_URL = f"redis://127.0.0.1:{_free_port()}/0"
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["failed"][0].startswith("redis:")


def test_metrics_are_off_without_a_token_and_refused_with_a_wrong_one(db, settings, client):
    settings.DOORKEEP_METRICS_TOKEN = ""
    assert client.get("/metrics").status_code == 404
    settings.DOORKEEP_METRICS_TOKEN = TOKEN
    assert client.get("/metrics").status_code == 401
    wrong = client.get("/metrics", HTTP_AUTHORIZATION="Bearer not-the-token")
    assert wrong.status_code == 401
    assert wrong["WWW-Authenticate"].startswith("Bearer")


def test_the_outbox_backlog_counts_what_is_not_delivered_yet(world, metrics_on, client):
    before = _value(_scrape(client), "doorkeep_outbox_backlog", channel="email")
    for n in range(3):
        OutboxMessage.objects.create(channel=Channel.EMAIL, payload={"n": n})
    text = _scrape(client)
    assert _value(text, "doorkeep_outbox_backlog", channel="email") == before + 3
    assert _value(text, "doorkeep_outbox_oldest_seconds", channel="email") >= 0


def test_devices_online_and_lists_behind_come_from_the_database(world, metrics_on, client):
    Device.objects.update_or_create(
        lock=world.lock,
        defaults={"secret_digest": "x", "online": True, "acked_version": 0},
    )
    world.lock.credential_version = 3
    world.lock.save(update_fields=["credential_version"])
    text = _scrape(client)
    assert _value(text, "doorkeep_devices_online", kind="lock") == 1
    assert _value(text, "doorkeep_lists_behind", kind="lock") == 1
    Device.objects.filter(lock=world.lock).update(acked_version=3)
    assert _value(_scrape(client), "doorkeep_lists_behind", kind="lock") == 0


def test_each_access_decision_is_timed(world, metrics_on, client):
    before = _value(_scrape(client), "doorkeep_access_decision_seconds_count")
    access.decide(world.lock, "pin", "0000")
    access.decide(world.lock, "pin", "1111")
    assert _value(_scrape(client), "doorkeep_access_decision_seconds_count") == before + 2


def test_an_unlock_of_an_offline_lock_is_timed_as_offline(world, metrics_on, settings, client):
    settings.GATEWAY_PUBLIC_URL = f"http://127.0.0.1:{_free_port()}"
    before = _value(_scrape(client), "doorkeep_unlock_seconds_count", outcome="offline")
    with pytest.raises(routing.LockOffline):
        routing.send_unlock(world.lock.pk, "r-1", timeout=1)
    after = _value(_scrape(client), "doorkeep_unlock_seconds_count", outcome="offline")
    assert after == before + 1


def _gateway_metrics(gateway: Any, token: str | None) -> tuple[int, str]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    request = urllib.request.Request(
        f"http://127.0.0.1:{gateway.gateway.port}/metrics", headers=headers
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as answer:  # noqa: S310
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def test_a_gateway_counts_its_connected_locks_and_times_its_unlocks(
    world, alice_lock, gateway, device, settings
):
    settings.DOORKEEP_METRICS_TOKEN = TOKEN
    assert _gateway_metrics(gateway, None)[0] == 401
    assert _gateway_metrics(gateway, "wrong")[0] == 401
    status, text = _gateway_metrics(gateway, TOKEN)
    assert status == 200
    assert _value(text, "doorkeep_gateway_devices_connected", kind="lock") == 0

    gateway.run(device.connect())
    eventually(lambda: world.lock.pk in gateway.gateway.connections)
    before = _value(text, "doorkeep_gateway_unlock_seconds_count", outcome="opened")
    answer = gateway.run(gateway.gateway.unlock(world.lock.pk, "r-2", 5))
    assert answer["ok"] is True
    text = _gateway_metrics(gateway, TOKEN)[1]
    assert _value(text, "doorkeep_gateway_devices_connected", kind="lock") == 1
    assert _value(text, "doorkeep_gateway_unlock_seconds_count", outcome="opened") == before + 1
    assert _value(text, "doorkeep_gateway_pushes_pending") >= 0


def test_a_gateway_without_a_metrics_token_answers_404(gateway, settings):
    settings.DOORKEEP_METRICS_TOKEN = ""
    assert _gateway_metrics(gateway, TOKEN)[0] == 404


def test_every_metric_the_docs_and_alerts_name_is_exported(
    world, alice_lock, gateway, device, settings, client
):
    """docs/monitoring.md and docs/monitoring/alerts.yml name only metrics
    that a web worker or a gateway exports."""
    import re
    from pathlib import Path

    settings.DOORKEEP_METRICS_TOKEN = TOKEN
    gateway.run(device.connect())
    access.decide(world.lock, "pin", "0000")
    eventually(lambda: world.lock.pk in gateway.gateway.connections)
    routing.send_unlock(world.lock.pk, "r-3", timeout=5)  # web worker -> gateway -> lock
    OutboxMessage.objects.create(channel=Channel.EMAIL, payload={})
    ratelimit.take("metrics-test:1", limit=1, window=timedelta(hours=1), message="-")
    with pytest.raises(RateLimited):
        ratelimit.take("metrics-test:1", limit=1, window=timedelta(hours=1), message="-")
    exported = {
        sample.name
        for text in (_scrape(client), _gateway_metrics(gateway, TOKEN)[1])
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }
    docs = Path(__file__).resolve().parents[2] / "docs"
    named = set()
    for path in (docs / "monitoring.md", docs / "monitoring" / "alerts.yml"):
        named |= set(re.findall(r"\bdoorkeep_[a-z_]+", path.read_text()))
    named = {n for n in named if not n.endswith("_")}  # not a prefix such as doorkeep_
    # A histogram is exported as its _bucket, _count and _sum samples.
    missing = sorted(n for n in named if n not in exported and f"{n}_count" not in exported)
    assert missing == []


def test_a_refused_attempt_is_counted_by_its_limit_without_the_address(world, metrics_on, client):
    window = timedelta(hours=1)
    before = _value(_scrape(client), "doorkeep_rate_limit_hits_total", limit="login")
    ratelimit.take("login:203.0.113.9", limit=1, window=window, message="-")
    for _ in range(2):
        with pytest.raises(RateLimited):
            ratelimit.take("login:203.0.113.9", limit=1, window=window, message="-")
    text = _scrape(client)
    assert _value(text, "doorkeep_rate_limit_hits_total", limit="login") == before + 2
    assert "203.0.113.9" not in text
