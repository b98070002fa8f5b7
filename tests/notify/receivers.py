"""Real receivers on 127.0.0.1 for the notification tests: an HTTP server in
a thread that records what it is sent and answers with the statuses it is
told, standing in for a push service or an integrator's webhook endpoint."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    url: str
    requests: list[Received] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)  # answered in turn; then `default`
    default: int = 200
    delay: float = 0.0

    def next_status(self) -> int:
        return self.statuses.pop(0) if self.statuses else self.default


@pytest.fixture
def receiver() -> Iterator[Callable[..., Receiver]]:
    servers: list[ThreadingHTTPServer] = []
    lock = threading.Lock()

    def start(*statuses: int, default: int = 200, delay: float = 0.0) -> Receiver:
        box = Receiver(url="", statuses=list(statuses), default=default, delay=delay)

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length)
                if box.delay:
                    threading.Event().wait(box.delay)
                with lock:
                    box.requests.append(
                        Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                    )
                    status = box.next_status()
                self.send_response(status)
                self.send_header("content-length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, format: str, *args: Any) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        servers.append(server)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        box.url = f"http://127.0.0.1:{server.server_address[1]}"
        return box

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()
