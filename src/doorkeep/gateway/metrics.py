"""A gateway's figures in the Prometheus text format, at GET /metrics on its
port (the same bearer token as the web workers', DOORKEEP_METRICS_TOKEN;
404 while none is set). A gateway is one process: its figures are its own.

- ``doorkeep_gateway_devices_connected{kind}``: locks, stations, machines
  connected to this gateway now;
- ``doorkeep_gateway_pushes_pending`` and ``..._pushes_pending_oldest_seconds``:
  lists sent to locks and not acknowledged yet, and the age of the oldest;
- ``doorkeep_gateway_syncs_queued``: locks with a change waiting to be pushed;
- ``doorkeep_gateway_unlock_seconds{outcome}``: unlocks this gateway asked of
  its locks, until their answer;
- the access-decision histogram and counters of core/metrics.py as observed
  in this process, and the process's CPU and memory."""

from __future__ import annotations

import hmac
import time
from collections.abc import Iterator
from http import HTTPStatus
from typing import TYPE_CHECKING

from django.conf import settings
from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from websockets.asyncio.server import ServerConnection
from websockets.datastructures import Headers
from websockets.http11 import Request, Response

from doorkeep.core import metrics as core_metrics
from doorkeep.core.metrics import LATENCY_BUCKETS

if TYPE_CHECKING:
    from doorkeep.gateway.server import Gateway

UNLOCK_SECONDS = Histogram(
    "doorkeep_gateway_unlock_seconds",
    "Unlocks a gateway asked of its locks, from the request to the lock's answer, by outcome",
    ["outcome"],
    buckets=LATENCY_BUCKETS,
)
outcome_of = core_metrics.outcome_of
DEVICES_SWEPT = Counter(
    "doorkeep_gateway_devices_swept",
    "Devices this gateway recorded offline because their gateway's lease ran out, by kind",
    ["kind"],
)
for _kind in ("lock", "station", "machine"):
    DEVICES_SWEPT.labels(_kind)  # exported as 0 from the start, so rate() sees the first
HANDSHAKES_REFUSED = Counter(
    "doorkeep_gateway_handshakes_refused",
    "Device handshakes answered 503: too many connections from the address had not said hello",
)


class GatewayCollector(Collector):
    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway

    def collect(self) -> Iterator[Metric]:
        gateway = self.gateway
        connected = GaugeMetricFamily(
            "doorkeep_gateway_devices_connected",
            "Devices connected to this gateway now, by kind",
            labels=["kind"],
        )
        connected.add_metric(["lock"], len(gateway.connections))
        connected.add_metric(["station"], len(gateway.stations))
        connected.add_metric(["machine"], len(gateway.machines))
        now = time.monotonic()
        in_flight = [c.inflight for c in gateway.connections.values() if c.inflight is not None]
        pending = GaugeMetricFamily(
            "doorkeep_gateway_pushes_pending",
            "Lists sent to locks of this gateway and not acknowledged yet",
        )
        pending.add_metric([], len(in_flight))
        oldest = GaugeMetricFamily(
            "doorkeep_gateway_pushes_pending_oldest_seconds",
            "Age of the oldest list push not acknowledged yet (0 when none)",
        )
        oldest.add_metric([], max((now - p.sent_at for p in in_flight), default=0.0))
        queued = GaugeMetricFamily(
            "doorkeep_gateway_syncs_queued",
            "Locks of this gateway with a change waiting to be pushed",
        )
        queued.add_metric([], sum(1 for c in gateway.connections.values() if c.queued))
        yield from (connected, pending, oldest, queued)


class _ProcessFigures(Collector):
    def collect(self) -> Iterator[Metric]:
        yield from REGISTRY.collect()


def respond(gateway: Gateway, connection: ServerConnection, request: Request) -> Response:
    """The answer to GET /metrics on the gateway's port."""
    token = settings.DOORKEEP_METRICS_TOKEN
    if not token:
        return _text(connection, HTTPStatus.NOT_FOUND, b"Metrics are off.\n")
    given = request.headers.get("Authorization", "")
    if not hmac.compare_digest(
        given.encode("utf-8", "surrogateescape"), f"Bearer {token}".encode()
    ):
        return _text(connection, HTTPStatus.UNAUTHORIZED, b"A bearer token is needed.\n")
    registry = CollectorRegistry()
    registry.register(_ProcessFigures())
    registry.register(GatewayCollector(gateway))
    return _text(connection, HTTPStatus.OK, generate_latest(registry), prometheus=True)


def _text(
    connection: ServerConnection, status: HTTPStatus, body: bytes, *, prometheus: bool = False
) -> Response:
    from prometheus_client import CONTENT_TYPE_LATEST

    response = connection.respond(status, "")
    response.body = body
    kind = CONTENT_TYPE_LATEST if prometheus else "text/plain; charset=utf-8"
    response.headers = Headers([("Content-Type", kind), ("Content-Length", str(len(body)))])
    return response
