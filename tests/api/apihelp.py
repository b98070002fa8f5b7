"""Small assertions shared by the API tests."""

from __future__ import annotations

import base64
import os
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat


def error_of(response: Any, status: int, code: str | None = None) -> dict[str, Any]:
    """Assert that ``response`` is a JSON error with ``status`` (and ``code``),
    carrying a non-empty human message; return the body."""
    assert response.status_code == status, (response.status_code, response.content[:500])
    assert response["Content-Type"].startswith("application/json"), response["Content-Type"]
    body = response.json()
    assert isinstance(body.get("code"), str) and body["code"], body
    assert isinstance(body.get("message"), str) and body["message"].strip(), body
    if code is not None:
        assert body["code"] == code, body
    return body


def post_json(client: Any, url: str, body: Any) -> Any:
    return client.post(url, body, content_type="application/json")


def patch_json(client: Any, url: str, body: Any) -> Any:
    return client.patch(url, body, content_type="application/json")


def push_keys() -> dict[str, str]:
    """A browser's push keys: a P-256 public key and a 16-byte auth secret."""

    def b64(raw: bytes) -> str:
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    point = (
        ec.generate_private_key(ec.SECP256R1())
        .public_key()
        .public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
    )
    return {"p256dh": b64(point), "auth": b64(os.urandom(16))}
