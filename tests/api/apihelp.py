"""Small assertions shared by the API tests."""

from __future__ import annotations

from typing import Any


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
