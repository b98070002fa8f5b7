"""Registering, listing, changing and removing locks through the API."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from apihelp import error_of, patch_json, post_json
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from doorkeep.accounts.models import Membership, Role
from doorkeep.accounts.services import create_token
from doorkeep.events.models import Event, EventKind
from doorkeep.keys.models import Key, KeyCredential
from doorkeep.locks.models import Lock

SECRET = "ABCD-EFGH-JKLM-NPQR"


def register(client, entry_id, serial="DK-NEW-0001", secret=SECRET, **extra):
    body = {"serial": serial, "claim_secret": secret, "entry_id": entry_id, **extra}
    return post_json(client, "/api/v1/locks", body)


# --- registering --------------------------------------------------------------------------------


def test_it_registers_a_lock_with_its_serial_and_claim_secret(world, alice_api, manufacture):
    manufacture("DK-NEW-0001")

    response = register(alice_api, world.entry2.pk, name="Garage lock")

    assert response.status_code == 201
    body = response.json()
    assert body["serial"] == "DK-NEW-0001"
    assert body["name"] == "Garage lock"
    assert body["organization_id"] == world.org.pk
    assert body["entry_id"] == world.entry2.pk
    assert body["entry"] == "Garage"
    assert body["property_id"] == world.prop.pk
    assert body["property"] == "Canal House"
    assert body["registered_at"] is not None
    assert body["live_keys"] == 0
    lock = Lock.objects.get(serial="DK-NEW-0001")
    assert lock.organization_id == world.org.pk
    assert lock.first_registered_at is not None
    event = Event.objects.get(lock=lock, kind=EventKind.LOCK_REGISTERED)
    assert event.actor_id == world.alice.pk
    assert event.property_id == world.prop.pk


def test_a_second_lock_at_an_entry_is_answered_with_a_note_on_what_that_means(
    world, alice_api, manufacture
):
    manufacture("DK-NEW-0001")
    manufacture("DK-NEW-0002")

    first = register(alice_api, world.entry2.pk).json()
    second = register(alice_api, world.entry.pk, serial="DK-NEW-0002").json()
    moved = patch_json(alice_api, f"/api/v1/locks/{first['id']}", {"entry_id": world.entry.pk})

    assert first["note"] is None  # the Garage's only lock
    assert second["note"].startswith("Front door now has 2 locks.")
    assert "every lock there that the person's key opens" in second["note"]
    assert moved.json()["note"].startswith("Front door now has 3 locks.")


def test_a_lock_registered_without_a_name_is_named_after_its_serial(world, alice_api, manufacture):
    manufacture("DK-NEW-0001")

    assert register(alice_api, world.entry2.pk).json()["name"] == "DK-NEW-0001"


@pytest.mark.parametrize(
    "typed", ["dk-new-0001", " DK-NEW-0001 ", "dk - new - 0001", "DK-NEW-\t0001"]
)
def test_it_normalises_the_serial_as_typed(world, alice_api, manufacture, typed):
    manufacture("DK-NEW-0001")

    response = register(alice_api, world.entry2.pk, serial=typed)

    assert response.status_code == 201, response.json()
    assert response.json()["serial"] == "DK-NEW-0001"


@pytest.mark.parametrize(
    "typed", ["abcd-efgh-jklm-npqr", "ABCDEFGHJKLMNPQR", " abcd efgh jklm npqr "]
)
def test_it_accepts_the_claim_secret_in_any_case_with_or_without_dashes(
    world, alice_api, manufacture, typed
):
    manufacture("DK-NEW-0001")

    assert register(alice_api, world.entry2.pk, secret=typed).status_code == 201


@pytest.mark.parametrize("serial", ["ab", "-DK-1", "DK_0001", "x" * 33])
def test_it_rejects_a_serial_that_cannot_be_one(world, alice_api, serial):
    error_of(register(alice_api, world.entry2.pk, serial=serial), 400, "invalid_serial")


def test_it_answers_an_unknown_serial_with_404_unknown_serial(world, alice_api):
    body = error_of(
        register(alice_api, world.entry2.pk, serial="DK-NOPE-0001"), 404, "unknown_serial"
    )

    assert "DK-NOPE-0001" in body["message"]
    event = Event.objects.get(kind=EventKind.LOCK_CLAIM_FAILED)
    assert event.reason == "unknown_serial"
    assert event.data == {"serial": "DK-NOPE-0001"}


def test_it_rejects_a_wrong_claim_secret(world, alice_api, manufacture):
    manufacture("DK-NEW-0001")

    body = error_of(
        register(alice_api, world.entry2.pk, secret="WRONG-WRONG-WRONG"), 400, "wrong_claim_secret"
    )

    assert "claim secret" in body["message"]
    assert Lock.objects.get(serial="DK-NEW-0001").organization_id is None
    assert (
        Event.objects.filter(kind=EventKind.LOCK_CLAIM_FAILED, reason="wrong_claim_secret").count()
        == 1
    )


def test_it_says_so_when_you_registered_the_lock_already(world, alice_api):
    response = register(alice_api, world.entry2.pk, serial="DK-TEST-0001")

    error_of(response, 409, "already_registered")
    world.lock.refresh_from_db()
    assert world.lock.entry_id == world.entry.pk


def test_it_refuses_a_lock_registered_to_another_owner(world, charlie_api):
    body = error_of(
        register(charlie_api, world.charlie_entry.pk, serial="DK-TEST-0001"),
        409,
        "registered_to_other",
    )

    assert "another owner" in body["message"]
    assert "Alice" not in body["message"]
    world.lock.refresh_from_db()
    assert world.lock.organization_id == world.org.pk


def test_a_wrong_secret_for_a_lock_of_another_owner_is_just_a_wrong_secret(world, charlie_api):
    error_of(
        register(
            charlie_api, world.charlie_entry.pk, serial="DK-TEST-0001", secret="NOT-THE-SECRET"
        ),
        400,
        "wrong_claim_secret",
    )


def test_repeated_wrong_secrets_lock_out_the_serial_even_for_the_right_secret(
    world, alice_api, manufacture, settings
):
    assert settings.DOORKEEP["CLAIM_ATTEMPTS_PER_HOUR"] == 5
    manufacture("DK-NEW-0001")
    for _ in range(5):
        error_of(register(alice_api, world.entry2.pk, secret="GUESS"), 400, "wrong_claim_secret")

    limited = register(alice_api, world.entry2.pk, secret="GUESS")
    error_of(limited, 429, "rate_limited")
    assert 0 < int(limited["Retry-After"]) <= 3600
    error_of(register(alice_api, world.entry2.pk), 429, "rate_limited")
    assert Lock.objects.get(serial="DK-NEW-0001").organization_id is None


def test_the_lockout_of_a_serial_holds_for_other_owners_too(
    world, alice_api, charlie_api, manufacture
):
    manufacture("DK-NEW-0001")
    for _ in range(5):
        register(charlie_api, world.charlie_entry.pk, secret="GUESS")

    error_of(register(alice_api, world.entry2.pk), 429, "rate_limited")


def test_the_right_secret_works_again_once_the_hour_has_passed(
    world, alice_api, manufacture, time_machine
):
    time_machine.move_to(timezone.now(), tick=False)
    manufacture("DK-NEW-0001")
    for _ in range(5):
        register(alice_api, world.entry2.pk, secret="GUESS")

    time_machine.shift(timedelta(minutes=59, seconds=59))
    error_of(register(alice_api, world.entry2.pk), 429, "rate_limited")
    time_machine.shift(timedelta(seconds=2))
    assert register(alice_api, world.entry2.pk).status_code == 201


def test_a_person_guessing_across_many_serials_is_rate_limited(world, alice_api, manufacture):
    for n in range(20):
        register(alice_api, world.entry2.pk, serial=f"DK-GUESS-{n:04}")
    manufacture("DK-NEW-0001")

    error_of(register(alice_api, world.entry2.pk), 429, "rate_limited")


@pytest.mark.django_db(transaction=True)
def test_a_burst_of_wrong_claim_secrets_gets_exactly_the_limit_through(world, manufacture):
    manufacture("DK-NEW-0001")
    _row, token = create_token(world.alice, "burst")
    barrier = threading.Barrier(12)
    statuses: list[int] = []

    def guess() -> None:
        try:
            client = Client(headers={"authorization": f"Bearer {token}"})
            barrier.wait(timeout=10)
            statuses.append(register(client, world.entry2.pk, secret="GUESS").status_code)
        finally:
            connection.close()

    threads = [threading.Thread(target=guess) for _ in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)

    assert sorted(statuses) == [400] * 5 + [429] * 7


def test_registering_at_an_entry_of_another_organization_is_not_found(
    world, charlie_api, manufacture
):
    manufacture("DK-NEW-0001")

    error_of(register(charlie_api, world.entry2.pk), 404, "not_found")

    assert Lock.objects.get(serial="DK-NEW-0001").organization_id is None


def test_a_member_may_not_register_a_lock(world, bob_api, manufacture):
    manufacture("DK-NEW-0001")

    body = error_of(register(bob_api, world.entry2.pk), 403, "forbidden")

    assert "lock owners" in body["message"]


def test_a_building_manager_may_not_register_a_lock(world, bob_api, manufacture):
    Membership.objects.filter(user=world.bob).update(role=Role.BUILDING_MANAGER)
    manufacture("DK-NEW-0001")

    error_of(register(bob_api, world.entry2.pk), 403, "forbidden")


# --- listing and reading ------------------------------------------------------------------------


def test_it_lists_your_locks_with_their_live_key_count(world, alice_api, issue):
    issue(name="Dana", credentials=[{"kind": "remote", "value": "RM-1"}])
    issue(name="Erik", credentials=[{"kind": "remote", "value": "RM-2"}])

    [lock] = alice_api.get("/api/v1/locks").json()

    assert lock["id"] == world.lock.pk
    assert lock["live_keys"] == 2
    assert lock["credential_version"] == 2


def test_it_filters_the_lock_list_by_text_and_property(world, alice_api, manufacture):
    manufacture("DK-NEW-0001")
    register(alice_api, world.entry2.pk, name="Garage lock")

    def names(query):
        return sorted(lock["name"] for lock in alice_api.get(f"/api/v1/locks{query}").json())

    assert names("") == ["Front door lock", "Garage lock"]
    assert names("?q=garage") == ["Garage lock"]
    assert names("?q=dk-test") == ["Front door lock"]
    assert names(f"?property_id={world.prop.pk}") == ["Front door lock", "Garage lock"]
    assert names(f"?property_id={world.charlie_prop.pk}") == []


def test_listing_locks_takes_a_bounded_number_of_queries(world, alice_api, manufacture):
    def count_queries():
        with CaptureQueriesContext(connection) as ctx:
            assert alice_api.get("/api/v1/locks").status_code == 200
        return len(ctx.captured_queries)

    alice_api.get("/api/v1/me")  # the first use of a token also notes when it was used
    few = count_queries()
    for n in range(5):
        manufacture(f"DK-MORE-{n:04}")
        register(alice_api, world.entry2.pk, serial=f"DK-MORE-{n:04}")

    assert count_queries() == few


def test_it_shows_one_lock(world, bob_api):
    response = bob_api.get(f"/api/v1/locks/{world.lock.pk}")

    assert response.status_code == 200
    assert response.json()["serial"] == "DK-TEST-0001"


def test_a_manufactured_but_unregistered_lock_is_not_found(world, alice_api, manufacture):
    lock = manufacture("DK-NEW-0001")

    error_of(alice_api.get(f"/api/v1/locks/{lock.pk}"), 404, "not_found")


# --- changing -----------------------------------------------------------------------------------


def test_it_renames_and_moves_a_lock(world, alice_api):
    response = patch_json(
        alice_api,
        f"/api/v1/locks/{world.lock.pk}",
        {"name": "Garage lock", "entry_id": world.entry2.pk},
    )

    assert response.status_code == 200
    assert response.json()["name"] == "Garage lock"
    assert response.json()["entry"] == "Garage"
    event = Event.objects.get(kind=EventKind.LOCK_UPDATED)
    assert event.data == {"entry": "Garage", "name": "Garage lock"}


def test_it_refuses_an_empty_lock_name(world, alice_api):
    error_of(
        patch_json(alice_api, f"/api/v1/locks/{world.lock.pk}", {"name": "  "}), 400, "invalid_name"
    )


def test_a_lock_cannot_be_moved_to_an_entry_of_another_organization(world, alice_api):
    error_of(
        patch_json(
            alice_api, f"/api/v1/locks/{world.lock.pk}", {"entry_id": world.charlie_entry.pk}
        ),
        404,
        "not_found",
    )

    world.lock.refresh_from_db()
    assert world.lock.entry_id == world.entry.pk


def test_a_member_may_not_change_a_lock(world, bob_api):
    error_of(
        patch_json(bob_api, f"/api/v1/locks/{world.lock.pk}", {"name": "Mine"}), 403, "forbidden"
    )


# --- removing -----------------------------------------------------------------------------------


def test_removing_a_lock_takes_back_its_keys_and_bumps_its_version(world, alice_api, issue):
    issue(name="Dana", credentials=[{"kind": "pin", "value": "73950264"}])
    issue(name="Erik", credentials=[{"kind": "tag", "value": "04A22B1C"}])
    world.lock.refresh_from_db()
    before = world.lock.credential_version

    assert alice_api.delete(f"/api/v1/locks/{world.lock.pk}").status_code == 204

    world.lock.refresh_from_db()
    assert world.lock.organization_id is None
    assert world.lock.entry_id is None
    assert world.lock.credential_version > before
    assert not Key.objects.filter(lock=world.lock, revoked_at__isnull=True).exists()
    assert not KeyCredential.objects.filter(lock=world.lock, active=True).exists()
    event = Event.objects.get(kind=EventKind.LOCK_REMOVED)
    assert event.data == {"keys_taken_back": 2}


def test_a_removed_lock_disappears_from_the_list_and_is_not_found(world, alice_api):
    alice_api.delete(f"/api/v1/locks/{world.lock.pk}")

    assert alice_api.get("/api/v1/locks").json() == []
    error_of(alice_api.get(f"/api/v1/locks/{world.lock.pk}"), 404, "not_found")
    error_of(alice_api.delete(f"/api/v1/locks/{world.lock.pk}"), 404, "not_found")


def test_another_owner_can_register_a_removed_lock(world, alice_api, charlie_api):
    alice_api.delete(f"/api/v1/locks/{world.lock.pk}")

    response = register(charlie_api, world.charlie_entry.pk, serial="DK-TEST-0001")

    assert response.status_code == 201
    assert response.json()["organization_id"] == world.charlie_org.pk
    assert response.json()["entry"] == "Shed door"
    assert [lock["serial"] for lock in charlie_api.get("/api/v1/locks").json()] == ["DK-TEST-0001"]


def test_the_next_owner_inherits_nothing_of_the_previous_owner(
    world, alice_api, charlie_api, issue
):
    issue(
        name="Dana Secret",
        email="dana@example.com",
        credentials=[{"kind": "pin", "value": "73950264"}],
    )
    alice_api.delete(f"/api/v1/locks/{world.lock.pk}")

    registered = register(charlie_api, world.charlie_entry.pk, serial="DK-TEST-0001").json()

    assert registered["name"] == "DK-TEST-0001"  # not Alice's "Front door lock"
    assert registered["live_keys"] == 0
    keys = charlie_api.get(f"/api/v1/locks/{world.lock.pk}/keys?status=").json()
    assert keys == {"count": 0, "items": []}
    events = charlie_api.get(f"/api/v1/locks/{world.lock.pk}/events").json()["items"]
    assert [e["kind"] for e in events] == ["lock.registered"]
    decision = post_json(
        charlie_api,
        f"/api/v1/locks/{world.lock.pk}/access-decisions",
        {"kind": "pin", "value": "73950264"},
    ).json()
    assert decision["granted"] is False
    assert decision["person"] is None
    assert decision["key_id"] is None
    assert decision["reason"] == "unknown_credential"
    csv = b"".join(charlie_api.get(f"/api/v1/locks/{world.lock.pk}/events.csv").streaming_content)
    assert b"Dana" not in csv
    assert b"Front door lock" not in csv


def test_the_previous_owner_keeps_the_history_of_a_removed_lock(
    world, alice_api, charlie_api, issue
):
    issue(name="Dana")
    alice_api.delete(f"/api/v1/locks/{world.lock.pk}")
    register(charlie_api, world.charlie_entry.pk, serial="DK-TEST-0001")

    kinds = [
        e["kind"]
        for e in alice_api.get(f"/api/v1/properties/{world.prop.pk}/events").json()["items"]
    ]

    assert kinds == ["lock.removed", "key.issued", "lock.registered"]


def test_a_member_may_not_remove_a_lock(world, bob_api):
    body = error_of(bob_api.delete(f"/api/v1/locks/{world.lock.pk}"), 403, "forbidden")

    assert "lock owners" in body["message"]
    world.lock.refresh_from_db()
    assert world.lock.organization_id == world.org.pk
