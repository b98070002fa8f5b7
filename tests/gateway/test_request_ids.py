"""A request id on every web request, carried to the gateway with a remote
unlock, and JSON log lines (core/logs.py)."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from gateway_helpers import eventually

from doorkeep.core import logs
from doorkeep.gateway import routing


def _get(path: str, **headers: str) -> tuple[str, dict[str, str]]:
    from doorkeep.wsgi import application

    environ: dict[str, Any] = {
        "REQUEST_METHOD": "GET",
        "PATH_INFO": path,
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8000",
        "HTTP_HOST": "127.0.0.1",
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(b""),
        "wsgi.errors": io.StringIO(),
        "REMOTE_ADDR": headers.pop("remote_addr", "127.0.0.1"),
        **{f"HTTP_{k.upper().replace('-', '_')}": v for k, v in headers.items()},
    }
    answer: dict[str, Any] = {}

    def start_response(status: str, headers: list[tuple[str, str]], *args: Any) -> None:
        answer["status"], answer["headers"] = status, dict(headers)

    body = application(environ, start_response)
    b"".join(body)
    return answer["status"], answer["headers"]


def test_every_response_carries_a_new_request_id(db):
    status, headers = _get("/healthz")
    assert status.startswith("200")
    first = headers["X-Request-ID"]
    assert len(first) == 32 and int(first, 16) >= 0
    assert _get("/healthz")[1]["X-Request-ID"] != first


def test_a_sane_request_id_from_a_trusted_proxy_is_kept_and_a_strange_one_replaced(db, settings):
    import ipaddress

    settings.DOORKEEP_TRUSTED_PROXIES = [ipaddress.ip_network("10.0.0.5/32")]
    proxy = {"remote_addr": "10.0.0.5"}
    given = _get("/healthz", **{"X-Request-ID": "lb-7f3a.42"}, **proxy)[1]["X-Request-ID"]
    assert given == "lb-7f3a.42"
    strange = _get("/healthz", **{"X-Request-ID": "a b<script>"}, **proxy)[1]["X-Request-ID"]
    assert strange != "a b<script>" and len(strange) == 32


def test_a_request_id_from_anyone_else_is_not_believed(db):
    answer = _get("/healthz", **{"X-Request-ID": "forged-id"}, remote_addr="203.0.113.9")
    assert answer[1]["X-Request-ID"] != "forged-id"


def test_json_log_lines_carry_the_request_id():
    record = logging.LogRecord("doorkeep.x", logging.WARNING, __file__, 1, "door %s", ("A",), None)
    logs.REQUEST_ID.set("req-1")
    assert logs.RequestIdFilter().filter(record)
    line = json.loads(logs.JsonFormatter().format(record))
    assert line["message"] == "door A" and line["level"] == "WARNING"
    assert line["request_id"] == "req-1" and line["logger"] == "doorkeep.x"
    assert line["time"].endswith("+00:00")


@pytest.fixture
def gateway_lines() -> Iterator[list[logging.LogRecord]]:
    """The gateway's log records, with their request id, as the console
    handler sees them."""
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    handler = Keep()
    handler.addFilter(logs.RequestIdFilter())
    logger = logging.getLogger("doorkeep.gateway")
    logger.addHandler(handler)
    yield records
    logger.removeHandler(handler)


def test_the_gateway_logs_an_unlock_with_the_id_of_the_web_request_that_asked(
    world, alice_lock, gateway, device, gateway_lines
):
    gateway.run(device.connect())
    eventually(lambda: world.lock.pk in gateway.gateway.connections)
    logs.REQUEST_ID.set("web-req-42")  # as RequestIds sets it for a web request
    try:
        routing.send_unlock(world.lock.pk, "u-1", timeout=5)
    finally:
        logs.REQUEST_ID.set("")
    unlocks = [r for r in gateway_lines if r.getMessage().startswith("unlock of lock")]
    assert [(r.getMessage().split(" in ")[0], r.request_id) for r in unlocks] == [
        (f"unlock of lock {world.lock.pk}: opened", "web-req-42")
    ]
