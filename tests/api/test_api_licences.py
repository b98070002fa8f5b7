"""Licences, prepaid codes and account upgrades through the API."""

from __future__ import annotations

from datetime import UTC, timedelta
from ipaddress import ip_network
from zoneinfo import ZoneInfo

import pytest
from apihelp import error_of, patch_json, post_json

from doorkeep.accounts.models import Membership, Role
from doorkeep.accounts.services import create_user
from doorkeep.events.models import Event, EventKind
from doorkeep.licensing import codes
from doorkeep.licensing.state import add_years, licence_of


def licence(client, lock_id):
    response = client.get(f"/api/v1/locks/{lock_id}/licence")
    assert response.status_code == 200, response.content
    return response.json()


def enter(client, lock_id, code, **extra):
    return client.post(
        f"/api/v1/locks/{lock_id}/licence/codes",
        {"code": code},
        content_type="application/json",
        **extra,
    )


def parse(moment: str):
    from datetime import datetime

    return datetime.fromisoformat(moment.replace("Z", "+00:00"))


def ms(moment):
    """A moment as the API shows it: to the millisecond."""
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


# --- the licence ----------------------------------------------------------------------------------


def test_a_new_lock_shows_its_free_period_and_its_25_keys(world, alice_api):
    body = licence(alice_api, world.lock.pk)

    state = body["state"]
    assert state["mode"] == "free"
    assert state["can_manage"] is True
    assert (state["keys_purchased"], state["keys_issued"], state["keys_available"]) == (25, 0, 25)
    assert parse(state["free_ends_at"]) == ms(licence_of(world.lock.pk).free_ends_at)
    assert state["full_until"] == state["free_ends_at"]
    assert state["management_ends_at"] is None
    assert state["option_active"] is False
    assert body["history"]["periods"] == [
        {
            "kind": "free",
            "starts_at": body["history"]["periods"][0]["starts_at"],
            "ends_at": state["free_ends_at"],
            "product": None,
            "sku": None,
        }
    ]
    (included,) = body["history"]["key_allotments"]
    assert (included["keys"], included["included"], included["product"]) == (25, True, None)


def test_the_history_names_the_product_of_each_code(world, alice_api, code):
    for sku in ("MGMT-5Y", "ORGS-5Y", "KEYS-100"):
        assert enter(alice_api, world.lock.pk, code(sku)).status_code == 200

    history = licence(alice_api, world.lock.pk)["history"]

    assert [(p["kind"], p["sku"]) for p in history["periods"]] == [
        ("free", None),
        ("management", "MGMT-5Y"),
        ("organizations_option", "ORGS-5Y"),
    ]
    assert history["periods"][1]["product"] == "Full management, 5 years"
    assert [(a["keys"], a["sku"]) for a in history["key_allotments"]] == [
        (25, None),
        (100, "KEYS-100"),
    ]


def test_a_building_manager_sees_the_licence(world):
    manager = create_user("manager@example.com", "correct horse battery staple")
    Membership.objects.create(user=manager, organization=world.org, role=Role.BUILDING_MANAGER)

    assert licence(world.bearer(manager), world.lock.pk)["state"]["mode"] == "free"


def test_the_licence_of_an_unknown_lock_is_not_found(world, alice_api):
    error_of(alice_api.get("/api/v1/locks/987654/licence"), 404)


# --- entering codes -------------------------------------------------------------------------------


def test_a_management_code_in_the_free_period_answers_what_it_did(world, alice_api, code, now):
    free_end = licence_of(world.lock.pk).free_ends_at

    response = enter(alice_api, world.lock.pk, code("MGMT-5Y").lower())

    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["sku"], body["kind"], body["product"]) == (
        "MGMT-5Y",
        "management",
        "Full management, 5 years",
    )
    assert parse(body["ends_at"]) == ms(add_years(free_end, 5))
    assert body["summary"].startswith("Full management until")
    assert body["licence"]["mode"] == "active"
    assert parse(body["licence"]["full_until"]) == ms(add_years(free_end, 5))


def test_a_key_pack_code_answers_the_keys_it_added(world, alice_api, code):
    body = enter(alice_api, world.lock.pk, code("KEYS-25")).json()

    assert body["ends_at"] is None
    assert body["summary"] == "25 more keys"
    assert body["licence"]["keys_available"] == 50


@pytest.mark.parametrize(
    ("make", "status", "error"),
    [
        (lambda code: "hello world", 400, "not_a_code"),
        (lambda code: codes.generate(), 404, "unknown_code"),
        (lambda code: code("ORG-MGMT"), 400, "wrong_product"),
        (lambda code: code("ORGS-5Y"), 400, "option_needs_management"),
        (
            lambda code: (lambda c: c[:5] + ("2" if c[5] != "2" else "3") + c[6:])(code("MGMT-5Y")),
            400,
            "code_typo",
        ),
    ],
    ids=["garbage", "unknown", "upgrade-on-a-lock", "option-in-free-period", "typo"],
)
def test_a_refused_code_answers_its_reason_and_is_logged(
    world, alice_api, code, make, status, error
):
    body = error_of(enter(alice_api, world.lock.pk, make(code)), status, error)

    event = Event.objects.get(kind=EventKind.CODE_REFUSED)
    assert (event.reason, event.lock_id) == (error, world.lock.pk)
    assert event.summary == body["message"][:300]


def test_a_used_code_is_a_conflict(world, alice_api, code):
    plain = code("KEYS-25")
    enter(alice_api, world.lock.pk, plain)

    error_of(enter(alice_api, world.lock.pk, plain), 409, "code_used")


def test_an_expired_code_is_refused(world, alice_api, code, travel, now):
    plain = code("MGMT-5Y", expires_at=now + timedelta(days=1))
    travel(now + timedelta(days=2))

    error_of(enter(alice_api, world.lock.pk, plain), 400, "code_expired")


def test_an_empty_or_overlong_code_is_a_validation_error(world, alice_api):
    error_of(enter(alice_api, world.lock.pk, ""), 422, "validation_error")
    error_of(enter(alice_api, world.lock.pk, "7" * 65), 422, "validation_error")


def test_a_building_manager_cannot_enter_codes(world, code):
    manager = create_user("manager@example.com", "correct horse battery staple")
    Membership.objects.create(user=manager, organization=world.org, role=Role.BUILDING_MANAGER)

    body = error_of(enter(world.bearer(manager), world.lock.pk, code("MGMT-5Y")), 403)

    assert "Only lock owners can enter prepaid codes" in body["message"]


def test_too_many_wrong_codes_from_one_address_answer_429_with_retry_after(
    world, alice_api, charlie_api, code, settings, register_charlies_lock
):
    settings.DOORKEEP = {**settings.DOORKEEP, "CODE_ATTEMPTS_PER_HOUR": 3}
    for _ in range(3):
        error_of(enter(alice_api, world.lock.pk, "wrong", REMOTE_ADDR="198.51.100.7"), 400)

    response = enter(alice_api, world.lock.pk, code("KEYS-25"), REMOTE_ADDR="198.51.100.8")
    error_of(response, 429, "rate_limited")
    assert 0 < int(response["Retry-After"]) <= 3601
    lock = register_charlies_lock()
    assert (
        enter(charlie_api, lock.pk, code("KEYS-25"), REMOTE_ADDR="198.51.100.7").status_code == 200
    )


def test_behind_a_trusted_proxy_wrong_codes_hold_back_only_the_guessers_address(
    world, alice_api, code, settings
):
    settings.DOORKEEP_TRUSTED_PROXIES = (ip_network("10.0.0.0/30"),)
    settings.DOORKEEP = {**settings.DOORKEEP, "CODE_ATTEMPTS_PER_ADDRESS_PER_HOUR": 3}

    def through_proxy(client, plain, forwarded):
        return enter(
            client,
            world.lock.pk,
            plain,
            REMOTE_ADDR="10.0.0.2",
            HTTP_X_FORWARDED_FOR=f"{forwarded}, 10.0.0.1",  # the client, then an inner proxy
        )

    for _ in range(3):
        error_of(through_proxy(alice_api, codes.generate(), "198.51.100.7"), 404, "unknown_code")
    guessers_colleague, elsewhere = (new_owner(world, name) for name in ("new1", "new2"))

    error_of(through_proxy(guessers_colleague, code("KEYS-25"), "198.51.100.7"), 429)
    assert through_proxy(elsewhere, code("KEYS-25"), "198.51.100.9").status_code == 200


def new_owner(world, name):
    """An account made today, a lock owner of alice's organization."""
    user = create_user(f"{name}@example.com", "correct horse battery staple")
    Membership.objects.create(user=user, organization=world.org, role=Role.LOCK_OWNER)
    return world.bearer(user)


@pytest.fixture
def register_charlies_lock(world, manufacture):
    from doorkeep.locks.services import register_lock

    def make():
        manufacture("DK-CHAR-0001")
        return register_lock(
            world.charlie,
            serial="DK-CHAR-0001",
            claim_secret="ABCD-EFGH-JKLM-NPQR",
            entry_id=world.charlie_entry.pk,
        )

    return make


# --- take-back-only through the API ---------------------------------------------------------------


@pytest.fixture
def expired(world, issue, travel):
    key = issue(name="Dana", credentials=[{"kind": "pin", "value": "482916"}]).json()
    travel(licence_of(world.lock.pk).free_ends_at + timedelta(days=1))
    return key


def test_after_the_free_period_issuing_and_changing_keys_answer_management_ended(
    world, alice_api, issue, expired
):
    refused = error_of(issue(name="Eve"), 403, "management_ended")
    changed = error_of(
        patch_json(alice_api, f"/api/v1/keys/{expired['id']}", {"note": "x"}),
        403,
        "management_ended",
    )

    for body in (refused, changed):
        assert "Enter a prepaid management code" in body["message"]
    assert licence(alice_api, world.lock.pk)["state"]["mode"] == "take_back_only"
    assert licence(alice_api, world.lock.pk)["state"]["ended_at"] is not None


def test_after_the_free_period_keys_can_be_taken_back(world, alice_api, expired):
    response = post_json(alice_api, f"/api/v1/keys/{expired['id']}/revoke", {})

    assert response.status_code == 200
    assert response.json()["status"] == "revoked"


def test_a_late_code_through_the_api_restores_management(world, alice_api, issue, expired, code):
    body = enter(alice_api, world.lock.pk, code("MGMT-5Y")).json()

    assert body["licence"]["mode"] == "active"
    changed = patch_json(alice_api, f"/api/v1/keys/{expired['id']}", {"note": "back"})
    assert changed.status_code == 200 and changed.json()["note"] == "back"
    assert issue(name="Eve").status_code == 201


def test_the_26th_key_answers_no_keys_available(world, alice_api, issue):
    for n in range(25):
        response = issue(
            name=f"Holder {n}", credentials=[{"kind": "remote", "value": f"RM-{n:04}"}]
        )
        assert response.status_code == 201

    body = error_of(
        issue(name="Number 26", credentials=[{"kind": "remote", "value": "RM-0026"}]),
        409,
        "no_keys_available",
    )

    assert "key pack" in body["message"]


# --- locks ending soon ----------------------------------------------------------------------------


def test_ending_soon_lists_the_locks_whose_management_ends_within_the_days(
    world, alice_api, travel
):
    ends = licence_of(world.lock.pk).full_until
    # Twenty days before, at the same time of day on the property's clock:
    # days are counted on its calendar, so a moment near midnight there (the
    # licence starts whenever the test runs) must not fall on the other day.
    zone = ZoneInfo(world.prop.timezone)
    travel((ends.astimezone(zone) - timedelta(days=20)).astimezone(UTC))

    (row,) = alice_api.get("/api/v1/licences/ending-soon").json()
    assert row == {
        "lock_id": world.lock.pk,
        "name": "Front door lock",
        "serial": "DK-TEST-0001",
        "organization_id": world.org.pk,
        "property_id": world.prop.pk,
        "property": "Canal House",
        "entry": "Front door",
        "mode": "free",
        "full_until": row["full_until"],
        "days_left": 20,
    }
    assert parse(row["full_until"]) == ms(ends)
    assert alice_api.get("/api/v1/licences/ending-soon?days=19").json() == []


def test_ending_soon_is_empty_when_nothing_ends_within_the_days(world, alice_api):
    assert alice_api.get("/api/v1/licences/ending-soon").json() == []
    assert len(alice_api.get("/api/v1/licences/ending-soon?days=365").json()) == 1


@pytest.mark.parametrize("days", ["0", "366", "-1", "soon"])
def test_ending_soon_takes_1_to_365_days(world, alice_api, days):
    error_of(alice_api.get(f"/api/v1/licences/ending-soon?days={days}"), 422, "validation_error")


# --- organizations and upgrades -------------------------------------------------------------------


def test_it_lists_your_organizations_with_your_role_and_their_upgrades(world, charlie_api):
    assert charlie_api.get("/api/v1/organizations").json() == [
        {
            "id": world.charlie_org.pk,
            "name": "Charlie Locks",
            "role": "lock_owner",
            "building_management_since": None,
            "organization_management_since": None,
        }
    ]


def test_building_management_is_activated_once_and_logged(world, charlie_api, now, travel):
    url = f"/api/v1/organizations/{world.charlie_org.pk}/upgrades/building-management"

    first = post_json(charlie_api, url, {})
    travel(now + timedelta(days=3))
    again = post_json(charlie_api, url, {})

    assert first.status_code == again.status_code == 200
    assert parse(first.json()["building_management_since"]) == ms(now)
    assert again.json() == first.json()
    upgrades = Event.objects.filter(kind=EventKind.ACCOUNT_UPGRADED, organization=world.charlie_org)
    assert upgrades.count() == 1
    listed = charlie_api.get("/api/v1/organizations").json()[0]
    assert listed["building_management_since"] == first.json()["building_management_since"]


def test_organization_management_comes_with_a_code(world, alice_api, code, now):
    url = f"/api/v1/organizations/{world.org.pk}/upgrades/codes"

    response = post_json(alice_api, url, {"code": code("ORG-MGMT")})

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["sku"] == "ORG-MGMT"
    assert body["summary"] == "Organization management activated"
    assert parse(body["organization"]["organization_management_since"]) == ms(now)
    assert body["organization"]["role"] == "lock_owner"
    error_of(post_json(alice_api, url, {"code": code("ORG-MGMT")}), 409, "already_upgraded")


def test_a_lock_code_entered_as_an_upgrade_is_the_wrong_product(world, alice_api, code):
    url = f"/api/v1/organizations/{world.org.pk}/upgrades/codes"

    body = error_of(post_json(alice_api, url, {"code": code("MGMT-5Y")}), 400, "wrong_product")

    assert "licence panel" in body["message"]


def test_an_upgrade_of_an_unknown_organization_is_not_found(world, alice_api, code):
    error_of(
        post_json(alice_api, "/api/v1/organizations/987654/upgrades/building-management", {}), 404
    )
    error_of(
        post_json(
            alice_api, "/api/v1/organizations/987654/upgrades/codes", {"code": code("ORG-MGMT")}
        ),
        404,
    )


def test_ending_soon_takes_the_same_queries_for_40_locks_as_for_1(world, alice_api, manufacture):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from doorkeep.locks.services import register_lock

    url = "/api/v1/licences/ending-soon?days=365"
    alice_api.get(url)  # warm up: the token's last use is written once
    with CaptureQueriesContext(connection) as one:
        assert len(alice_api.get(url).json()) == 1
    for n in range(39):
        manufacture(f"DK-MANY-{n:04}")
        register_lock(
            world.alice,
            serial=f"DK-MANY-{n:04}",
            claim_secret="ABCD-EFGH-JKLM-NPQR",
            entry_id=world.entry2.pk,
        )

    with CaptureQueriesContext(connection) as forty:
        assert len(alice_api.get(url).json()) == 40

    assert len(forty) == len(one)
