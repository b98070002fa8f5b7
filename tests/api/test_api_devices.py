"""The lock as a device through the API (E2): its device secret at
registration and on rotation, its sync state; and remote unlock (R25) up to
the gateway (the gateway itself is in tests/gateway/test_surfaces.py)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from apihelp import error_of, post_json
from django.utils import timezone

from doorkeep.accounts.models import Membership, Role
from doorkeep.accounts.services import create_user
from doorkeep.api import api
from doorkeep.core.errors import DomainError
from doorkeep.events.models import Event, EventKind
from doorkeep.gateway import routing
from doorkeep.gateway.models import Device
from doorkeep.gateway.services import CLOSE_REFUSED, DeviceRefused, authenticate
from doorkeep.keys.services import CredentialSpec, HolderSpec, KeySpec, issue_key, revoke_key
from doorkeep.locks.models import Lock

SECRET = "ABCD-EFGH-JKLM-NPQR"


def phone_key(world, name="Alice", email="alice@example.com", **window):
    return issue_key(
        world.alice,
        world.lock.pk,
        KeySpec(HolderSpec(name=name, email=email), [CredentialSpec("phone")], **window),
    )


def device_url(world):
    return f"/api/v1/locks/{world.lock.pk}/device"


def unlock_url(entry_id):
    return f"/api/v1/entries/{entry_id}/unlock"


# --- the device secret --------------------------------------------------------------------------


def test_registering_a_lock_answers_its_device_secret_once(world, alice_api, manufacture):
    manufacture("DK-NEW-0001")

    body = post_json(
        alice_api,
        "/api/v1/locks",
        {"serial": "DK-NEW-0001", "claim_secret": SECRET, "entry_id": world.entry2.pk},
    ).json()

    secret = body["device_secret"]
    assert secret.startswith("dks_") and len(secret) > 20
    session = authenticate("DK-NEW-0001", secret)
    assert session.lock_id == body["id"]
    # Only the digest is stored, and the secret is never shown again.
    device = Device.objects.get(lock_id=body["id"])
    assert secret not in device.secret_digest
    assert alice_api.get(f"/api/v1/locks/{body['id']}").json()["device_secret"] is None
    listed = {lock["id"]: lock for lock in alice_api.get("/api/v1/locks").json()}
    assert listed[body["id"]]["device_secret"] is None


def test_rotating_the_device_secret_refuses_the_old_one(world, alice_api):
    first = post_json(alice_api, f"/api/v1/locks/{world.lock.pk}/device-secret", {})
    assert first.status_code == 200
    old = first.json()["device_secret"]
    assert first.json()["note"] == "shown once"

    new = post_json(alice_api, f"/api/v1/locks/{world.lock.pk}/device-secret", {}).json()

    assert new["device_secret"] != old
    assert authenticate(world.lock.serial, new["device_secret"]).lock_id == world.lock.pk
    with pytest.raises(DeviceRefused) as refused:
        authenticate(world.lock.serial, old)
    assert refused.value.close_code == CLOSE_REFUSED
    rotated = Event.objects.filter(lock=world.lock, kind=EventKind.DEVICE_SECRET_ROTATED)
    assert rotated.count() == 2
    assert rotated.first().actor_id == world.alice.pk
    state = alice_api.get(device_url(world)).json()
    assert state["secret_set_at"] is not None


def test_only_lock_owners_rotate_the_device_secret(world, bob_api):
    digest = Device.objects.get(lock=world.lock).secret_digest
    url = f"/api/v1/locks/{world.lock.pk}/device-secret"

    body = error_of(post_json(bob_api, url, {}), 403, "forbidden")
    assert "Only lock owners" in body["message"]
    Membership.objects.filter(user=world.bob).update(role=Role.BUILDING_MANAGER)
    error_of(post_json(bob_api, url, {}), 403, "forbidden")

    assert Device.objects.get(lock=world.lock).secret_digest == digest


def test_an_outsider_cannot_rotate_or_read_the_device_and_learns_nothing(world, charlie_api):
    digest = Device.objects.get(lock=world.lock).secret_digest
    missing = error_of(post_json(charlie_api, "/api/v1/locks/987654/device-secret", {}), 404)

    rotated = error_of(
        post_json(charlie_api, f"/api/v1/locks/{world.lock.pk}/device-secret", {}), 404
    )
    read = error_of(charlie_api.get(device_url(world)), 404)

    assert rotated == missing
    assert read == error_of(charlie_api.get("/api/v1/locks/987654/device"), 404)
    assert Device.objects.get(lock=world.lock).secret_digest == digest


# --- the sync state ---------------------------------------------------------------------------


def test_the_device_state_follows_the_list_versions(world, alice_api):
    state = alice_api.get(device_url(world)).json()
    assert state == {
        "lock_id": world.lock.pk,
        "platform_version": 0,
        "acked_version": 0,
        "state": "synced",
        "online": False,
        "last_seen_at": None,
        "connected_at": None,
        "firmware": "",
        "battery": None,
        "clock_offset_ms": None,
        "last_error": "",
        "secret_set_at": state["secret_set_at"],
    }

    phone_key(world, name="Dana", email="dana@example.com")
    state = alice_api.get(device_url(world)).json()
    assert (state["platform_version"], state["acked_version"], state["state"]) == (1, 0, "pending")

    Device.objects.filter(lock=world.lock).update(last_error="the lock did not acknowledge")
    state = alice_api.get(device_url(world)).json()
    assert state["state"] == "failed"
    assert state["last_error"] == "the lock did not acknowledge"

    seen = timezone.now()
    Device.objects.filter(lock=world.lock).update(
        acked_version=1,
        last_error="",
        online=True,
        last_seen_at=seen,
        connected_at=seen - timedelta(hours=1),
        firmware="2.4.1",
        battery=81,
        clock_offset_ms=-350,
    )
    state = alice_api.get(device_url(world)).json()
    assert state["state"] == "synced" and state["online"] is True
    assert (state["firmware"], state["battery"], state["clock_offset_ms"]) == ("2.4.1", 81, -350)
    assert state["last_seen_at"] is not None and state["connected_at"] is not None


def test_a_lock_without_a_device_row_is_pending_and_offline(world, alice_api):
    Device.objects.filter(lock=world.lock).delete()

    state = alice_api.get(device_url(world)).json()

    assert state["state"] == "pending"
    assert state["online"] is False
    assert state["acked_version"] == 0
    assert state["secret_set_at"] is None


def test_building_managers_see_the_device_state_members_do_not(world, bob_api):
    body = error_of(bob_api.get(device_url(world)), 403, "forbidden")
    assert "device status" in body["message"]

    Membership.objects.filter(user=world.bob).update(role=Role.BUILDING_MANAGER)

    assert bob_api.get(device_url(world)).json()["lock_id"] == world.lock.pk


# --- the entries one can open ---------------------------------------------------------------------


def test_my_entries_lists_the_entries_where_i_hold_a_phone_key(world, alice_api, bob_api):
    assert alice_api.get("/api/v1/me/entries").json() == []
    key = phone_key(world)

    assert alice_api.get("/api/v1/me/entries").json() == [
        {
            "id": world.entry.pk,
            "name": "Front door",
            "property_id": world.prop.pk,
            "property": "Canal House",
        }
    ]
    assert bob_api.get("/api/v1/me/entries").json() == []  # a member holds no key
    revoke_key(world.alice, key.pk)
    assert alice_api.get("/api/v1/me/entries").json() == []


def test_a_guest_from_outside_the_organization_sees_the_entry_shared_with_him(world):
    guest = create_user("gina@example.com", "correct horse battery staple", name="Gina")
    phone_key(world, name="Gina", email="gina@example.com")

    entries = world.bearer(guest).get("/api/v1/me/entries").json()

    assert [(e["name"], e["property"]) for e in entries] == [("Front door", "Canal House")]


# --- remote unlock, up to the gateway -------------------------------------------------------------


def test_unlocking_an_offline_lock_is_503_lock_offline_and_one_record_of_the_person(
    world, alice_api, caplog
):
    key = phone_key(world)

    with caplog.at_level("WARNING"):
        response = post_json(alice_api, unlock_url(world.entry.pk), {})
    body = error_of(response, 503, "lock_offline")

    # The lock's state, not a server error: a warning, no ERROR in the log.
    assert not [r for r in caplog.records if r.levelname in ("ERROR", "CRITICAL")]
    assert any("lock_offline" in r.getMessage() for r in caplog.records)

    assert "offline" in body["message"]
    # One attempt, one record: the person, the decision (granted) and what the
    # lock did (offline); never "Access granted" for a door that stayed shut.
    attempts = ("access.granted", "access.denied", "unlock.failed", "unlock.requested")
    [attempt] = Event.objects.filter(lock=world.lock, kind__in=attempts)
    assert attempt.kind == EventKind.UNLOCK_FAILED and attempt.reason == "lock_offline"
    assert attempt.actor_id == world.alice.pk
    assert (attempt.person_id, attempt.key_id) == (key.person_id, key.pk)
    assert attempt.data["decision"] == "granted" and attempt.data["outcome"] == "offline"
    assert attempt.data["request_id"]
    log = alice_api.get(
        f"/api/v1/locks/{world.lock.pk}/events", {"person_id": key.person_id}
    ).json()["items"]
    assert [(e["kind"], e["decision"], e["lock_outcome"]) for e in log] == [
        ("unlock.failed", "granted", "offline"),
        ("key.issued", None, None),
    ]


@pytest.mark.parametrize(
    ("error", "status", "code"),
    [
        (routing.LockTimeout("The lock did not answer in time."), 504, "lock_timeout"),
        (routing.LockRefused("The lock refused to open: jammed"), 409, "lock_refused"),
        (routing.LockOffline("The lock is offline."), 503, "lock_offline"),
    ],
)
def test_each_gateway_failure_is_its_own_json_error_and_logged(
    world, alice_api, monkeypatch, error, status, code
):
    phone_key(world)

    def fail(lock_id: int, request_id: str, *, timeout: float) -> dict[str, object]:
        raise error

    monkeypatch.setattr(routing, "send_unlock", fail)

    error_of(post_json(alice_api, unlock_url(world.entry.pk), {}), status, code)

    assert Event.objects.filter(lock=world.lock, kind="unlock.failed", reason=code).exists()


def test_a_granted_unlock_answers_the_lock_and_request(world, alice_api, monkeypatch):
    phone_key(world)
    sent: list[tuple[int, str]] = []

    def ok(lock_id: int, request_id: str, *, timeout: float) -> dict[str, object]:
        sent.append((lock_id, request_id))
        return {"ok": True}

    monkeypatch.setattr(routing, "send_unlock", ok)

    response = post_json(alice_api, unlock_url(world.entry.pk), {})

    assert response.status_code == 200, response.content
    assert response.json() == {
        "opened": True,
        "entry_id": world.entry.pk,
        "lock_id": world.lock.pk,
        "lock_ids": [world.lock.pk],
        "request_id": sent[0][1],
    }
    assert sent[0][0] == world.lock.pk


@pytest.mark.parametrize(("days_later", "reason"), [(0, "not valid yet"), (5, "expired")])
def test_a_key_outside_its_window_is_403_with_the_reason(
    world, alice_api, time_machine, days_later, reason
):
    now = timezone.now()
    phone_key(world, valid_from=now + timedelta(days=2), valid_until=now + timedelta(days=4))
    time_machine.move_to(now + timedelta(days=days_later), tick=False)

    body = error_of(post_json(alice_api, unlock_url(world.entry.pk), {}), 403, "access_denied")

    assert reason in body["message"] and "Front door" in body["message"]
    assert Event.objects.filter(lock=world.lock, kind=EventKind.ACCESS_DENIED).exists()
    assert not Event.objects.filter(lock=world.lock, kind=EventKind.UNLOCK_FAILED).exists()


def test_a_key_taken_back_is_403_taken_back(world, alice_api):
    revoke_key(world.alice, phone_key(world).pk)

    body = error_of(post_json(alice_api, unlock_url(world.entry.pk), {}), 403, "access_denied")

    assert "taken back" in body["message"]


def test_a_member_without_a_phone_key_is_refused_and_the_attempt_logged(world, bob_api):
    body = error_of(post_json(bob_api, unlock_url(world.entry.pk), {}), 403, "access_denied")

    assert "no phone key" in body["message"]
    assert Event.objects.filter(
        lock=world.lock, kind=EventKind.ACCESS_DENIED, actor=world.bob
    ).exists()


def test_an_outsider_gets_the_same_404_as_for_an_entry_that_does_not_exist(
    world, charlie_api, alice_api
):
    phone_key(world)
    events = Event.objects.count()

    alices = error_of(post_json(charlie_api, unlock_url(world.entry.pk), {}), 404, "not_found")

    assert alices == error_of(post_json(charlie_api, unlock_url(987654), {}), 404)
    # An entry without a lock is not found either, even for its owner.
    error_of(post_json(alice_api, unlock_url(world.entry2.pk), {}), 404, "not_found")
    assert Event.objects.count() == events


def test_a_lock_removed_from_the_platform_cannot_be_opened(world, alice_api):
    phone_key(world)
    alice_api.delete(f"/api/v1/locks/{world.lock.pk}")
    assert Lock.objects.get(pk=world.lock.pk).organization_id is None

    error_of(post_json(alice_api, unlock_url(world.entry.pk), {}), 404, "not_found")
    assert alice_api.get("/api/v1/me/entries").json() == []


def test_the_schema_documents_the_unlock_errors(world):
    operation = api.get_openapi_schema()["paths"]["/api/v1/entries/{entry_id}/unlock"]["post"]

    assert {"200", "403", "404", "409", "503", "504"} <= {str(c) for c in operation["responses"]}
    for code in ("lock_offline", "lock_timeout", "lock_refused", "access_denied"):
        assert code in operation["description"]


def test_domain_errors_of_the_gateway_are_domain_errors():
    # The web UI and the API rely on it: none of them is a 500.
    for cls in (routing.LockOffline, routing.LockTimeout, routing.LockRefused):
        assert issubclass(cls, DomainError)


def test_at_an_entry_with_two_locks_it_opens_the_one_i_hold_a_key_to(
    world, alice_api, manufacture, monkeypatch
):
    from doorkeep.locks.services import register_lock

    manufacture("DK-SIDE-0001")
    second = register_lock(
        world.alice, serial="DK-SIDE-0001", claim_secret=SECRET, entry_id=world.entry.pk
    )
    issue_key(
        world.alice,
        second.pk,
        KeySpec(HolderSpec(name="Alice", email="alice@example.com"), [CredentialSpec("phone")]),
    )
    sent: list[int] = []

    def ok(lock_id: int, request_id: str, *, timeout: float) -> dict[str, object]:
        sent.append(lock_id)
        return {"ok": True}

    monkeypatch.setattr(routing, "send_unlock", ok)

    assert [e["id"] for e in alice_api.get("/api/v1/me/entries").json()] == [world.entry.pk]
    response = post_json(alice_api, unlock_url(world.entry.pk), {})

    assert response.status_code == 200, response.content
    assert response.json()["lock_id"] == second.pk
    assert sent == [second.pk]
