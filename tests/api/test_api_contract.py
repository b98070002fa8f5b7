"""The API's contract (doorkeep/api/contract.py): 64-bit integers, JSON
object bodies, every error answer in the OpenAPI; and the answers docs/api.md
promises where they were not what the API said."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

from doorkeep.accounts.services import create_user
from doorkeep.api.contract import ERROR_STATUSES, INT64_MAX
from doorkeep.guests.models import Panel

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "guests"))
from guest_helpers import make_guest_world

DOCS = Path(__file__).resolve().parents[2] / "docs" / "api.md"
TOO_BIG = INT64_MAX + 1


def answer(response: Any) -> tuple[int, str]:
    assert response["Content-Type"].startswith("application/json"), response.content[:200]
    return response.status_code, response.json()["code"]


@pytest.fixture
def api(world: Any) -> Any:
    client = world.bearer(world.alice)
    client.raise_request_exception = False
    return client


@pytest.mark.parametrize(
    ("path", "field"),
    [
        (f"/api/v1/notifications?offset={TOO_BIG}", "query.offset"),
        (f"/api/v1/notifications?limit=10&offset={10**30}", "query.offset"),
        (f"/api/v1/locks/{TOO_BIG}", "path.lock_id"),
        (f"/api/v1/locks/{10**20}/events", "path.lock_id"),
        (f"/api/v1/invitations?property_id={TOO_BIG}", "query.property_id"),
    ],
)
def test_an_offset_or_id_beyond_64_bits_is_a_422_naming_the_field(
    api: Any, path: str, field: str
) -> None:
    response = api.get(path)
    assert answer(response) == (422, "validation_error")
    assert response.json()["details"]["errors"][0]["field"] == field
    assert "9223372036854775807" in response.json()["message"]


def test_the_largest_64_bit_offset_and_id_are_answered(api: Any) -> None:
    assert api.get(f"/api/v1/notifications?offset={INT64_MAX}").status_code == 200
    assert answer(api.get(f"/api/v1/locks/{INT64_MAX}")) == (404, "not_found")


def test_an_integer_beyond_64_bits_inside_a_body_is_a_422(api: Any, world: Any) -> None:
    body = f'{{"property_id": {world.prop.pk}, "email": "b@example.com", "entry_ids": [{TOO_BIG}]}}'
    response = api.post("/api/v1/invitations", body, content_type="application/json")
    assert answer(response) == (422, "validation_error")
    assert response.json()["details"]["errors"][0]["field"] == "body.body.entry_ids.0"


def test_unlock_with_an_id_beyond_64_bits_is_a_422(api: Any) -> None:
    # Through the fast unlock path in front of Django: tests/gateway/test_fast_unlock.py
    response = api.post(f"/api/v1/entries/{TOO_BIG}/unlock")
    assert answer(response) == (422, "validation_error")


@pytest.mark.parametrize("body", ["true", "[1]", '"panel"', "3", "null"])
def test_a_body_of_the_wrong_json_type_is_a_422_and_creates_nothing(
    api: Any, world: Any, body: str
) -> None:
    response = api.post(
        f"/api/v1/entries/{world.entry.pk}/panels", body, content_type="application/json"
    )
    assert answer(response) == (422, "validation_error")
    assert "JSON object" in response.json()["message"]
    assert not Panel.objects.exists()


def test_a_body_that_is_not_json_is_a_400_invalid_json(api: Any, world: Any) -> None:
    for body in ("{bad", '{"name": "x"', b"\xff\xfe{}"):
        response = api.post(
            f"/api/v1/entries/{world.entry.pk}/panels", body, content_type="application/json"
        )
        assert answer(response) == (400, "invalid_json")
        assert response.json()["message"].startswith("The body is not valid JSON")
    assert not Panel.objects.exists()


def test_a_body_larger_than_the_server_takes_is_a_413(api: Any, world: Any, settings: Any) -> None:
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    body = '{"name": "' + "x" * 2000 + '"}'
    response = api.post(
        f"/api/v1/entries/{world.entry.pk}/panels", body, content_type="application/json"
    )
    assert answer(response) == (413, "request_too_large")
    assert response.json()["details"]["max_bytes"] == 1000


def test_every_operation_lists_its_error_answers_with_the_error_schema(client: Any) -> None:
    schema = client.get("/api/openapi.json").json()
    error = "#/components/schemas/ErrorOut"
    assert set(schema["components"]["schemas"]["ErrorOut"]["required"]) == {
        "code",
        "message",
        "details",
    }
    operations = [
        (path, method, operation)
        for path, methods in schema["paths"].items()
        for method, operation in methods.items()
    ]
    assert len(operations) > 100
    for path, method, operation in operations:
        responses = operation["responses"]
        expected = {
            status
            for status in ERROR_STATUSES
            if (status != 401 or operation.get("security"))
            and (status != 413 or "requestBody" in operation)
        }
        assert {400, 403, 404, 409, 422, 429, 503, 504} <= expected
        for status in expected:
            assert str(status) in responses, f"{method.upper()} {path} lacks {status}"
            content = responses[str(status)]["content"]["application/json"]["schema"]
            assert content == {"$ref": error}, f"{method.upper()} {path} {status}"


def test_every_integer_in_the_openapi_says_its_64_bit_range(client: Any) -> None:
    schema = client.get("/api/openapi.json").json()
    unbounded = []

    def walk(node: Any, where: str) -> None:
        if isinstance(node, dict):
            if node.get("type") == "integer" and not (
                node.get("maximum", INT64_MAX + 1) <= INT64_MAX
                and node.get("minimum", -INT64_MAX - 2) >= -INT64_MAX - 1
            ):
                unbounded.append(where)
            for key, value in node.items():
                walk(value, f"{where}/{key}")
        elif isinstance(node, list):
            for index, value in enumerate(node):
                walk(value, f"{where}/{index}")

    walk(schema, "")
    assert unbounded == []
    offset = next(
        p
        for p in schema["paths"]["/api/v1/notifications"]["get"]["parameters"]
        if p["name"] == "offset"
    )
    assert offset["schema"]["maximum"] == INT64_MAX


def test_accepting_an_invitation_to_another_address_answers_what_the_docs_say(
    world: Any,
) -> None:
    """docs/api.md: through the API an invitation exists only for its
    address (404 `not_found`); the invited address, not yet confirmed,
    gets 403 `wrong_account`."""
    gw = make_guest_world(world)
    invitation = gw.invite()
    other = world.bearer(world.charlie)
    for verb in ("accept", "decline"):
        response = other.post(f"/api/v1/guest/invitations/{invitation.pk}/{verb}")
        assert answer(response) == (404, "not_found")
    gw.gina.delete()
    unconfirmed = create_user("gina@example.com", "pw-unconfirmed-123", verified=False)
    response = world.bearer(unconfirmed).post(f"/api/v1/guest/invitations/{invitation.pk}/accept")
    assert answer(response) == (403, "wrong_account")
    invitation.refresh_from_db()
    assert invitation.status == "sent"

    guests = DOCS.read_text().split("## Guests", 1)[1].split("\n## ", 1)[0]
    said = " ".join(guests.split())
    assert "invitation to another address answers 404 `not_found`" in said
    assert "not confirmed yet answers 403 `wrong_account`" in said


def test_a_session_call_without_its_csrf_token_is_a_403_csrf_failed(world: Any) -> None:
    from django.test import Client

    browser = Client(enforce_csrf_checks=True)
    browser.force_login(world.alice)
    response = browser.post(
        f"/api/v1/entries/{world.entry.pk}/panels", {"name": "x"}, content_type="application/json"
    )
    assert answer(response) == (403, "csrf_failed")
    assert not Panel.objects.exists()


def test_a_host_the_server_does_not_answer_for_is_a_json_400_under_api(client: Any) -> None:
    """Django refuses the request before any view; under /api/ the answer is
    still the API's JSON error, and a page elsewhere is still a page."""
    refused = client.get("/api/v1/me", HTTP_HOST="evil.example")
    assert answer(refused) == (400, "bad_request")
    assert "Host header" in refused.json()["message"]
    page = client.get("/", HTTP_HOST="evil.example")
    assert page.status_code == 400
    assert not page["Content-Type"].startswith("application/json")
