"""API tokens, authentication, the OpenAPI schema and the shape of errors."""

from __future__ import annotations

from datetime import timedelta

import pytest
from apihelp import error_of, post_json
from django.test import Client
from django.utils import timezone

from doorkeep.accounts.models import ApiToken
from doorkeep.accounts.services import create_token, create_user
from doorkeep.api import api

PASSWORD = "correct horse battery staple"
TOKENS = "/api/v1/auth/tokens"


def ask_token(email: str, password: str, name: str = "CI", client: Client | None = None):
    return post_json(
        client or Client(), TOKENS, {"email": email, "password": password, "name": name}
    )


def bearer(token: str) -> Client:
    return Client(headers={"authorization": f"Bearer {token}"})


# --- creating tokens ----------------------------------------------------------------------------


def test_it_gives_a_token_for_the_right_password_that_works_as_a_bearer_token(world):
    response = ask_token("alice@example.com", PASSWORD, name="Home Assistant")

    assert response.status_code == 201
    body = response.json()
    assert body["token"].startswith("dk_")
    assert body["name"] == "Home Assistant"
    assert body["token"].startswith(body["hint"])
    assert body["revoked_at"] is None
    me = bearer(body["token"]).get("/api/v1/me")
    assert me.status_code == 200
    assert me.json()["email"] == "alice@example.com"


def test_it_stores_only_a_digest_of_the_token(world):
    token = ask_token("alice@example.com", PASSWORD).json()["token"]

    row = ApiToken.objects.get(user=world.alice, name="CI")
    assert row.digest == ApiToken.digest_of(token)
    assert token not in row.digest
    assert not ApiToken.objects.filter(digest=token).exists()


def test_it_accepts_the_email_address_in_any_case_and_with_spaces(world):
    response = ask_token("  Alice@Example.COM ", PASSWORD)

    assert response.status_code == 201


def test_it_rejects_a_wrong_password_with_bad_credentials(world):
    body = error_of(ask_token("alice@example.com", "wrong password"), 400, "bad_credentials")

    assert "token" not in body


def test_it_answers_an_unknown_email_address_exactly_like_a_wrong_password(world):
    unknown = error_of(ask_token("nobody@example.com", PASSWORD), 400, "bad_credentials")
    wrong = error_of(ask_token("alice@example.com", "nope"), 400, "bad_credentials")

    assert unknown["message"] == wrong["message"]


def test_it_refuses_a_token_to_an_account_whose_email_is_not_confirmed(db):
    create_user("new@example.com", PASSWORD, verified=False)

    error_of(ask_token("new@example.com", PASSWORD), 400, "email_unverified")


def test_it_refuses_a_token_to_a_deactivated_account(world):
    world.alice.is_active = False
    world.alice.save()

    error_of(ask_token("alice@example.com", PASSWORD), 400, "bad_credentials")


def test_it_rate_limits_repeated_failures_and_then_refuses_even_the_right_password(world, settings):
    assert settings.DOORKEEP["LOGIN_FAILURES_PER_ACCOUNT_ADDRESS"] == 10
    for _ in range(10):
        error_of(ask_token("alice@example.com", "guess"), 400, "bad_credentials")

    limited = ask_token("alice@example.com", "guess")
    error_of(limited, 429, "rate_limited")
    assert 0 < int(limited["Retry-After"]) <= 3601
    error_of(ask_token("alice@example.com", PASSWORD), 429, "rate_limited")


def test_it_accepts_the_right_password_again_once_the_hour_has_passed(
    world, settings, time_machine
):
    settings.DOORKEEP = {**settings.DOORKEEP, "LOGIN_FAILURES_PER_ACCOUNT_ADDRESS": 3}
    time_machine.move_to(timezone.now(), tick=False)
    for _ in range(3):
        ask_token("alice@example.com", "guess")
    error_of(ask_token("alice@example.com", PASSWORD), 429, "rate_limited")

    time_machine.shift(timedelta(minutes=59))
    error_of(ask_token("alice@example.com", PASSWORD), 429, "rate_limited")
    time_machine.shift(timedelta(minutes=1, seconds=1))
    assert ask_token("alice@example.com", PASSWORD).status_code == 201


def test_it_rate_limits_one_client_guessing_at_many_accounts(world, settings):
    settings.DOORKEEP = {**settings.DOORKEEP, "LOGIN_FAILURES_PER_ADDRESS": 3}
    for email in ("a@example.com", "b@example.com", "c@example.com"):
        error_of(ask_token(email, "guess"), 400, "bad_credentials")

    error_of(ask_token("bob@example.com", PASSWORD), 429, "rate_limited")
    other_client = Client(REMOTE_ADDR="10.0.0.7")
    assert ask_token("bob@example.com", PASSWORD, client=other_client).status_code == 201


def test_it_does_not_count_successful_sign_ins_against_the_limit(world, settings):
    settings.DOORKEEP = {
        **settings.DOORKEEP,
        "LOGIN_FAILURES_PER_ACCOUNT_ADDRESS": 2,
        "LOGIN_FAILURES_PER_ACCOUNT": 2,
        "LOGIN_FAILURES_PER_ADDRESS": 2,
    }
    for _ in range(5):
        assert ask_token("alice@example.com", PASSWORD).status_code == 201


def test_it_validates_the_token_request_body(world):
    body = error_of(
        post_json(Client(), TOKENS, {"email": "alice@example.com"}), 422, "validation_error"
    )

    assert any(e["field"].endswith("password") for e in body["details"]["errors"])


def test_it_answers_a_body_that_is_not_json_with_a_json_error(world):
    response = Client().post(TOKENS, "{not json", content_type="application/json")

    error_of(response, 400)


# --- listing and revoking tokens ----------------------------------------------------------------


def test_it_lists_only_your_own_tokens_and_never_the_token_itself(world):
    mine = ask_token("alice@example.com", PASSWORD, name="mine").json()
    ask_token("charlie@example.com", PASSWORD, name="charlies")

    response = bearer(mine["token"]).get(TOKENS)

    assert response.status_code == 200
    names = [t["name"] for t in response.json()]
    assert "mine" in names
    assert "charlies" not in names
    assert mine["token"] not in response.content.decode()
    assert all("token" not in t and "digest" not in t for t in response.json())


def test_a_revoked_token_no_longer_works(world):
    created = ask_token("alice@example.com", PASSWORD).json()
    client = bearer(created["token"])
    other = world.bearer(world.alice)

    assert other.delete(f"{TOKENS}/{created['id']}").status_code == 204

    error_of(client.get("/api/v1/me"), 401, "unauthorized")
    listed = {t["id"]: t for t in other.get(TOKENS).json()}
    assert listed[created["id"]]["revoked_at"] is not None


def test_a_token_can_revoke_itself(world):
    created = ask_token("alice@example.com", PASSWORD).json()
    client = bearer(created["token"])

    assert client.delete(f"{TOKENS}/{created['id']}").status_code == 204
    error_of(client.get(TOKENS), 401, "unauthorized")


def test_revoking_a_token_twice_answers_not_found(world):
    created = ask_token("alice@example.com", PASSWORD).json()
    client = world.bearer(world.alice)
    client.delete(f"{TOKENS}/{created['id']}")

    error_of(client.delete(f"{TOKENS}/{created['id']}"), 404, "token_not_found")


def test_nobody_can_revoke_another_persons_token(world):
    created = ask_token("alice@example.com", PASSWORD).json()

    error_of(world.bearer(world.charlie).delete(f"{TOKENS}/{created['id']}"), 404)

    assert bearer(created["token"]).get("/api/v1/me").status_code == 200


def test_a_token_of_a_deactivated_account_no_longer_works(world):
    client = world.bearer(world.alice)
    world.alice.is_active = False
    world.alice.save()

    error_of(client.get("/api/v1/me"), 401, "unauthorized")


@pytest.mark.parametrize(
    "header",
    [
        "Bearer dk_not-a-real-token",
        "Bearer not-even-prefixed",
        "Bearer ",
        "Basic YWxpY2U6eA==",
        "dk_without_scheme",
    ],
)
def test_it_answers_a_bad_authorization_header_with_401_json(world, header):
    client = Client(headers={"authorization": header})

    error_of(client.get("/api/v1/me"), 401, "unauthorized")


# --- unauthenticated calls ----------------------------------------------------------------------


def _operations() -> list[tuple[str, str]]:
    schema = api.get_openapi_schema()
    return [
        (method.upper(), path)
        for path, ops in schema["paths"].items()
        for method in ops
        if not (path == TOKENS and method == "post") and path not in PUBLIC
    ]


# Asking for a portal login and confirming its address need no account (R40).
PUBLIC = {"/api/v1/portal/login-requests", "/api/v1/portal/login-requests/confirm"}


def test_only_the_portal_login_requests_are_public(world):
    schema = api.get_openapi_schema()
    open_paths = {
        path
        for path, ops in schema["paths"].items()
        for op in ops.values()
        if not op.get("security")
    }
    assert open_paths == PUBLIC | {TOKENS}


@pytest.mark.parametrize(("method", "path"), _operations())
def test_every_endpoint_but_token_creation_answers_401_json_without_credentials(
    world, method, path
):
    url = path.format(
        lock_id=world.lock.pk,
        property_id=world.prop.pk,
        key_id=1,
        token_id=1,
        organization_id=world.org.pk,
        shared_key_id=1,
        entry_id=world.entry.pk,
        invitation_id=1,
        panel_id=1,
        notification_id=1,
        webhook_id=1,
        residency_id=1,
        badge_id=1,
        request_id=1,
        installation_id=1,
        login_request_id=1,
        membership_id=1,
        collaborator_invitation_id=1,
        station_id=1,
        session_id=1,
        tariff_id=1,
        run_id=1,
        invoice_id=1,
        machine_id=1,
        unit_id=1,
        person_id=1,
        month="2026-11",
        bank_file_id=1,
    )

    response = Client().generic(method, url, "{}", content_type="application/json")

    error_of(response, 401, "unauthorized")


def test_the_signed_in_web_session_also_works_for_the_api(world):
    response = world.client(world.alice).get("/api/v1/me")

    assert response.status_code == 200
    assert response.json()["email"] == "alice@example.com"


# --- the schema, the docs, and "me" ------------------------------------------------------------


def test_the_openapi_schema_lists_every_v1_path(world):
    response = Client().get("/api/openapi.json")

    assert response.status_code == 200
    paths = response.json()["paths"]
    for path in [
        "/api/v1/auth/tokens",
        "/api/v1/auth/tokens/{token_id}",
        "/api/v1/me",
        "/api/v1/properties",
        "/api/v1/properties/{property_id}",
        "/api/v1/properties/{property_id}/entries",
        "/api/v1/properties/{property_id}/events",
        "/api/v1/properties/{property_id}/events.csv",
        "/api/v1/locks",
        "/api/v1/locks/{lock_id}",
        "/api/v1/locks/{lock_id}/keys",
        "/api/v1/locks/{lock_id}/access-decisions",
        "/api/v1/locks/{lock_id}/events",
        "/api/v1/locks/{lock_id}/events.csv",
        "/api/v1/keys/{key_id}",
        "/api/v1/keys/{key_id}/revoke",
    ]:
        assert path in paths, path
    assert set(paths["/api/v1/locks/{lock_id}"]) == {"get", "patch", "delete"}
    assert response.json()["components"]["securitySchemes"]


def test_the_api_docs_page_renders(world):
    response = Client().get("/api/docs")

    assert response.status_code == 200
    html = response.content.decode()
    assert "Doorkeep API" in html
    assert "openapi.json" in html


def test_me_describes_the_account_and_its_memberships(world):
    body = world.bearer(world.bob).get("/api/v1/me").json()

    assert body["email"] == "bob@example.com"
    assert body["name"] == "Bob Member"
    assert body["platform_operator"] is False
    assert body["memberships"] == [
        {
            "organization_id": world.org.pk,
            "organization": "Alice Locks",
            "role": "member",
            "property_id": None,  # every site
            "ends_at": None,
        }
    ]


def test_a_signed_in_browser_session_cannot_change_anything_without_a_csrf_token(world):
    client = Client(enforce_csrf_checks=True)
    client.force_login(world.alice)

    response = post_json(client, f"/api/v1/properties/{world.prop.pk}/entries", {"name": "Roof"})

    error_of(response, 403)
    assert client.get("/api/v1/me").status_code == 200
    assert not world.prop.entries.filter(name="Roof").exists()


def test_a_bearer_token_needs_no_csrf_token(world):
    _row, token = create_token(world.alice, "script")
    client = Client(enforce_csrf_checks=True, headers={"authorization": f"Bearer {token}"})

    response = post_json(client, f"/api/v1/properties/{world.prop.pk}/entries", {"name": "Roof"})

    assert response.status_code == 201
