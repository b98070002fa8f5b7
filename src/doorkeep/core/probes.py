"""What operators and load balancers ask of a web worker:

- ``GET /healthz``: the process answers (liveness; no database).
- ``GET /readyz``: it can serve: the database answers, and so does a gateway
  (the one this worker dials: GATEWAY_URL, else GATEWAY_HOST:GATEWAY_PORT;
  with Redis routing, Redis). 503 with what failed otherwise.
- ``GET /metrics``: the Prometheus figures (core/metrics.py), with the bearer
  token of DOORKEEP_METRICS_TOKEN; 404 while no token is set.

None of them needs a session, and none is counted by a rate limit."""

from __future__ import annotations

import hmac
import json
import time
import urllib.request
from typing import Any

from django.conf import settings
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

CHECK_TIMEOUT = 1.0  # seconds a readiness check waits for the gateway or Redis


@never_cache
@require_GET
def healthz(request: HttpRequest) -> HttpResponse:
    return JsonResponse({"ok": True})


def _database() -> str | None:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as error:  # any failure means: not ready
        return f"database: {type(error).__name__}"
    return None


def gateway_url() -> str:
    """The HTTP base of the gateway this worker dials."""
    from doorkeep.gateway.routing import internal_base

    url = settings.GATEWAY_PUBLIC_URL or f"http://{settings.GATEWAY_HOST}:{settings.GATEWAY_PORT}"
    return internal_base(url)


def _gateway() -> str | None:
    if settings.DOORKEEP_GATEWAY_ROUTING == "redis":
        import redis

        try:
            client = redis.Redis.from_url(
                settings.REDIS_URL,
                socket_timeout=CHECK_TIMEOUT,
                socket_connect_timeout=CHECK_TIMEOUT,
            )
            client.ping()
        except Exception as error:  # any failure means: not ready
            return f"redis: {type(error).__name__}"
        return None
    url = gateway_url() + "/healthz"
    try:
        with urllib.request.urlopen(url, timeout=CHECK_TIMEOUT) as answer:  # noqa: S310 - our own gateway
            body: dict[str, Any] = json.loads(answer.read())
        if not body.get("ok"):
            return "gateway: not ok"
    except Exception as error:  # refused, timed out, not JSON: not ready
        return f"gateway: {type(error).__name__}"
    return None


@never_cache
@require_GET
def readyz(request: HttpRequest) -> HttpResponse:
    started = time.perf_counter()
    failed = [problem for problem in (_database(), _gateway()) if problem]
    body = {"ok": not failed, "failed": failed, "ms": round((time.perf_counter() - started) * 1000)}
    return JsonResponse(body, status=503 if failed else 200)


@never_cache
@require_GET
def metrics(request: HttpRequest) -> HttpResponse:
    from prometheus_client import CONTENT_TYPE_LATEST

    from doorkeep.core.metrics import exposition

    token = settings.DOORKEEP_METRICS_TOKEN
    if not token:
        return HttpResponse(
            "Metrics are off: set DOORKEEP_METRICS_TOKEN.\n", status=404, content_type="text/plain"
        )
    given = request.headers.get("Authorization", "")
    if not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
        response = HttpResponse(
            "A bearer token is needed.\n", status=401, content_type="text/plain"
        )
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    return HttpResponse(exposition(), content_type=CONTENT_TYPE_LATEST)
