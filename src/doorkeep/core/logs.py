"""Log lines that can be followed: a request id for every HTTP request, the
same id in the gateway's lines about what that request asked of it, and
optional JSON lines (LOG_FORMAT=json) for a log collector.

- ``RequestIds`` (wsgi.py) wraps the whole web application, the unlock front
  door included: it takes ``X-Request-ID`` when a trusted proxy
  (DOORKEEP_TRUSTED_PROXIES) sent it and it is a sane token, or makes one,
  keeps it in ``REQUEST_ID`` while the request is answered, and sends it back
  in the response's ``X-Request-ID``.
- A remote unlock carries it to the gateway as ``trace`` (gateway.routing);
  the gateway sets ``REQUEST_ID`` from it while it handles that command, so
  "unlock of lock 12: opened" in the gateway's log has the id of the web
  request that asked.
- ``RequestIdFilter`` puts ``request_id`` on every record ("-" outside a
  request); ``JsonFormatter`` writes one JSON object a line."""

from __future__ import annotations

import json
import logging
import re
import uuid
from collections.abc import Callable, Iterable
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

from doorkeep.core.clientip import from_trusted_proxy

REQUEST_ID: ContextVar[str] = ContextVar("doorkeep_request_id", default="")
_SANE = re.compile(r"[A-Za-z0-9._:-]{1,64}")


def sane_id(value: object) -> str:
    """``value`` if it is a request id we may repeat in logs and headers
    (letters, digits, ``._:-``, at most 64), else ""."""
    text = str(value or "")
    return text if _SANE.fullmatch(text) else ""


def current_request_id() -> str:
    return REQUEST_ID.get()


class RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = REQUEST_ID.get() or "-"
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time (UTC, ISO 8601), level, logger, message,
    request_id, and the traceback when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", "-"),
        }
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False)


StartResponse = Callable[..., Any]
WsgiApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


class RequestIds:
    """WSGI middleware: a request id for each request (see the module's text)."""

    def __init__(self, app: WsgiApp) -> None:
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        given = ""
        if environ.get("HTTP_X_REQUEST_ID") and from_trusted_proxy(
            str(environ.get("REMOTE_ADDR") or "")
        ):
            given = sane_id(environ["HTTP_X_REQUEST_ID"])
        request_id = given or uuid.uuid4().hex
        environ["HTTP_X_REQUEST_ID"] = request_id
        # Set for this thread until its next request: a worker thread logs
        # nothing between two requests, and a new thread starts without it.
        REQUEST_ID.set(request_id)

        def start(status: str, headers: list[tuple[str, str]], *args: Any) -> Any:
            headers = [(k, v) for k, v in headers if k.lower() != "x-request-id"]
            return start_response(status, [*headers, ("X-Request-ID", request_id)], *args)

        return self.app(environ, start)
