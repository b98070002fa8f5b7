"""Issuing, listing and taking back keys through the API."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from apihelp import error_of, post_json
from django.utils import timezone

from doorkeep.events.models import Event, EventKind
from doorkeep.keys.models import Credential, Key, KeyCredential, Person
from doorkeep.locks.models import Lock
from doorkeep.locks.services import register_lock

PIN = "73950264"


def version(lock) -> int:
    return Lock.objects.get(pk=lock.pk).credential_version


@pytest.fixture
def second_lock(world, manufacture):
    manufacture("DK-TEST-0002")
    return register_lock(
        world.alice,
        serial="DK-TEST-0002",
        claim_secret="ABCD-EFGH-JKLM-NPQR",
        entry_id=world.entry2.pk,
        name="Garage lock",
    )


# --- each kind of credential --------------------------------------------------------------------


def test_it_issues_a_pin_key(world, issue):
    response = issue(
        name="Dana",
        email="dana@example.com",
        credentials=[{"kind": "pin", "value": PIN}],
        note="cleaner",
    )

    assert response.status_code == 201
    body = response.json()
    assert body["person"] == "Dana"
    assert body["email"] == "dana@example.com"
    assert body["status"] == "active"
    assert body["note"] == "cleaner"
    assert body["lock_id"] == world.lock.pk
    assert body["credentials"] == [{"kind": "pin", "display": "••••", "active": True}]
    event = Event.objects.get(kind=EventKind.KEY_ISSUED)
    assert event.key_id == body["id"]
    assert event.person_id == body["person_id"]
    assert event.actor_id == world.alice.pk


def test_it_issues_a_remote_key_with_the_serial_in_capitals(world, issue):
    response = issue(name="Dana", credentials=[{"kind": "remote", "value": " rm-00a1 "}])

    assert response.status_code == 201
    assert response.json()["credentials"][0]["display"] == "RM-00A1"


@pytest.mark.parametrize("value", ["r", "RM_0001", "RM 00:01", "x" * 33])
def test_it_rejects_a_remote_serial_that_cannot_be_one(world, issue, value):
    error_of(
        issue(name="Dana", credentials=[{"kind": "remote", "value": value}]), 400, "invalid_remote"
    )


def test_it_issues_a_phone_key_linked_to_the_persons_account(world, issue):
    response = issue(name="Bob", email="Bob@Example.com", credentials=[{"kind": "phone"}])

    assert response.status_code == 201
    person = Person.objects.get(pk=response.json()["person_id"])
    assert person.user == world.bob
    assert person.email == "bob@example.com"
    assert response.json()["credentials"] == [
        {"kind": "phone", "display": "bob@example.com", "active": True}
    ]


def test_a_phone_key_for_someone_without_an_account_waits_for_their_sign_up(world, issue):
    response = issue(name="Erin", email="erin@example.com", credentials=[{"kind": "phone"}])

    assert response.status_code == 201
    assert Person.objects.get(pk=response.json()["person_id"]).user is None


def test_a_phone_key_needs_an_email_address(world, issue):
    body = error_of(issue(name="Nomail", credentials=[{"kind": "phone"}]), 400, "phone_needs_email")

    assert "email" in body["message"]
    assert not Person.objects.filter(name="Nomail").exists()
    assert not Key.objects.exists()
    assert version(world.lock) == 0


def test_it_issues_a_key_with_several_credentials(world, issue):
    response = issue(
        name="Dana",
        email="dana@example.com",
        credentials=[
            {"kind": "pin", "value": PIN},
            {"kind": "tag", "value": "04:a2:2b:1c"},
            {"kind": "remote", "value": "RM-0001"},
            {"kind": "phone"},
        ],
    )

    assert response.status_code == 201
    assert sorted(c["kind"] for c in response.json()["credentials"]) == [
        "phone",
        "pin",
        "remote",
        "tag",
    ]
    assert version(world.lock) == 1


def test_it_refuses_two_credentials_of_the_same_kind(world, issue):
    error_of(
        issue(
            name="Dana",
            credentials=[{"kind": "pin", "value": "1234"}, {"kind": "pin", "value": "5678"}],
        ),
        400,
        "duplicate_credential_kind",
    )


def test_it_refuses_a_key_without_credentials(world, issue):
    error_of(issue(name="Dana", credentials=[]), 422, "validation_error")


def test_it_refuses_an_unknown_kind_of_credential(world, issue):
    error_of(
        issue(name="Dana", credentials=[{"kind": "retina", "value": "x"}]), 422, "validation_error"
    )


# --- PIN codes ----------------------------------------------------------------------------------


@pytest.mark.parametrize("pin", ["1234", "12345678", " 0000 "])
def test_it_accepts_a_pin_of_4_to_8_digits(world, issue, pin):
    assert issue(name="Dana", credentials=[{"kind": "pin", "value": pin}]).status_code == 201


@pytest.mark.parametrize(
    "pin",
    [
        "123",
        "123456789",
        "12a4",
        "abcd",
        "",
        "12 34",
        "-1234",
        "1234.5",
        "\u0661\u0662\u0663\u0664",
        "\uff11\uff12\uff13\uff14",
    ],
)
def test_it_refuses_a_pin_that_is_not_4_to_8_digits(world, issue, pin):
    body = error_of(
        issue(name="Dana", credentials=[{"kind": "pin", "value": pin}]), 400, "invalid_pin"
    )

    assert "4 to 8 digits" in body["message"]
    assert not Key.objects.exists()


def test_the_pin_is_never_returned_nor_stored(world, alice_api, issue):
    created = issue(
        name="Dana", email="dana@example.com", credentials=[{"kind": "pin", "value": PIN}]
    )
    key_id = created.json()["id"]
    post_json(
        alice_api, f"/api/v1/locks/{world.lock.pk}/access-decisions", {"kind": "pin", "value": PIN}
    )
    revoked = post_json(alice_api, f"/api/v1/keys/{key_id}/revoke", {})

    responses = [
        created,
        alice_api.get(f"/api/v1/keys/{key_id}"),
        alice_api.get(f"/api/v1/locks/{world.lock.pk}/keys?status="),
        alice_api.get(f"/api/v1/locks/{world.lock.pk}/events"),
        alice_api.get(f"/api/v1/properties/{world.prop.pk}/events"),
        revoked,
    ]
    for response in responses:
        assert response.status_code in (200, 201)
        assert PIN not in response.content.decode()
    csv = b"".join(alice_api.get(f"/api/v1/locks/{world.lock.pk}/events.csv").streaming_content)
    assert PIN.encode() not in csv
    credential = Credential.objects.get(kind="pin")
    assert PIN not in credential.lookup
    assert PIN not in credential.display
    assert all(PIN not in str(e.data) and PIN not in e.summary for e in Event.objects.all())


def test_a_pin_is_unique_on_a_lock(world, issue):
    issue(name="Dana", credentials=[{"kind": "pin", "value": PIN}])

    body = error_of(
        issue(name="Erik", credentials=[{"kind": "pin", "value": PIN}]), 409, "credential_in_use"
    )

    assert "PIN" in body["message"]
    assert PIN not in body["message"]
    assert not Person.objects.filter(name="Erik").exists()
    assert version(world.lock) == 1


def test_the_same_pin_may_open_a_different_lock(world, issue, second_lock):
    issue(name="Dana", credentials=[{"kind": "pin", "value": PIN}])

    response = issue(second_lock.pk, name="Erik", credentials=[{"kind": "pin", "value": PIN}])

    assert response.status_code == 201


def test_a_pin_is_free_again_once_its_key_is_taken_back(world, alice_api, issue):
    key_id = issue(name="Dana", credentials=[{"kind": "pin", "value": PIN}]).json()["id"]
    post_json(alice_api, f"/api/v1/keys/{key_id}/revoke", {})

    assert issue(name="Erik", credentials=[{"kind": "pin", "value": PIN}]).status_code == 201


# --- RFID tags ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("typed", "stored"),
    [
        ("04:a2:2b:1c", "04A22B1C"),
        ("04 A2 2B 1C", "04A22B1C"),
        ("0x04a22b1c", "04A22B1C"),
        ("04-a2-2b-1c-5d-6e-7f", "04A22B1C5D6E7F"),
        ("04a22b1c5d6e7f8091a2", "04A22B1C5D6E7F8091A2"),
    ],
)
def test_it_normalises_a_tag_uid(world, issue, typed, stored):
    response = issue(name="Dana", credentials=[{"kind": "tag", "value": typed}])

    assert response.status_code == 201
    assert response.json()["credentials"][0]["display"] == stored
    assert KeyCredential.objects.get().lookup == stored


@pytest.mark.parametrize("typed", ["04:a2:2b:1c:5d", "04A22B", "04A22B1CZZ", "", "hello"])
def test_it_refuses_a_tag_uid_of_the_wrong_length_or_not_hex(world, issue, typed):
    error_of(issue(name="Dana", credentials=[{"kind": "tag", "value": typed}]), 400, "invalid_tag")


def test_a_tag_is_unique_on_a_lock_however_it_is_written(world, issue):
    issue(name="Dana", credentials=[{"kind": "tag", "value": "04:a2:2b:1c"}])

    error_of(
        issue(name="Erik", credentials=[{"kind": "tag", "value": "04A22B1C"}]),
        409,
        "credential_in_use",
    )


def test_one_tag_serves_every_lock_the_person_has_a_key_for(world, issue, second_lock):
    first = issue(
        name="Dana", email="dana@example.com", credentials=[{"kind": "tag", "value": "04A22B1C"}]
    ).json()
    second = issue(
        second_lock.pk,
        person_id=first["person_id"],
        credentials=[{"kind": "tag", "value": "04:a2:2b:1c"}],
    )

    assert second.status_code == 201
    assert Credential.objects.filter(kind="tag").count() == 1


# --- holders ------------------------------------------------------------------------------------


def test_it_issues_to_an_existing_person_by_id(world, issue, second_lock):
    person_id = issue(name="Dana", email="dana@example.com").json()["person_id"]

    response = issue(
        second_lock.pk, person_id=person_id, credentials=[{"kind": "remote", "value": "RM-0002"}]
    )

    assert response.json()["person_id"] == person_id


def test_the_same_email_address_means_the_same_person(world, issue, second_lock):
    first = issue(name="Dana", email="dana@example.com").json()
    second = issue(
        second_lock.pk,
        name="Dana D.",
        email="DANA@example.com",
        credentials=[{"kind": "remote", "value": "RM-0002"}],
    ).json()

    assert first["person_id"] == second["person_id"]


def test_a_person_of_another_organization_is_not_found(world, issue, charlie_api, manufacture):
    dana = issue(name="Dana", email="dana@example.com").json()
    manufacture("DK-CHAR-0001")
    register_lock(
        world.charlie,
        serial="DK-CHAR-0001",
        claim_secret="ABCD-EFGH-JKLM-NPQR",
        entry_id=world.charlie_entry.pk,
    )
    charlie_lock = Lock.objects.get(serial="DK-CHAR-0001")

    response = issue(charlie_lock.pk, client=charlie_api, person_id=dana["person_id"])

    error_of(response, 404, "person_not_found")


def test_it_needs_to_know_who_receives_the_key(world, issue):
    error_of(issue(), 400, "holder_required")


def test_it_refuses_an_email_address_that_is_not_one(world, issue):
    error_of(issue(name="Dana", email="dana-at-example"), 400, "invalid_email")


def test_a_person_has_at_most_one_live_key_on_a_lock(world, issue):
    issue(name="Dana", email="dana@example.com")

    body = error_of(
        issue(email="dana@example.com", credentials=[{"kind": "remote", "value": "RM-0002"}]),
        409,
        "key_exists",
    )

    assert "Dana" in body["message"]


# --- validity window and schedule ---------------------------------------------------------------


def test_it_issues_a_key_with_a_validity_window(world, issue):
    start = timezone.now() + timedelta(days=1)
    response = issue(
        name="Guest",
        valid_from=start.isoformat(),
        valid_until=(start + timedelta(days=3)).isoformat(),
    )

    assert response.status_code == 201
    assert response.json()["status"] == "scheduled"
    key = Key.objects.get()
    assert key.valid_from == start.replace(microsecond=key.valid_from.microsecond)
    assert key.valid_until - key.valid_from == timedelta(days=3)


def test_it_refuses_a_window_that_ends_before_it_starts(world, issue):
    start = datetime(2030, 5, 2, tzinfo=UTC)

    body = error_of(
        issue(
            name="Guest",
            valid_from=start.isoformat(),
            valid_until=(start - timedelta(hours=1)).isoformat(),
        ),
        400,
        "invalid_window",
    )

    assert "start before it ends" in body["message"]


def test_it_refuses_a_window_that_ends_when_it_starts(world, issue):
    start = datetime(2030, 5, 2, tzinfo=UTC).isoformat()

    error_of(issue(name="Guest", valid_from=start, valid_until=start), 400, "invalid_window")


@pytest.mark.parametrize("field", ["valid_from", "valid_until"])
def test_it_refuses_a_moment_without_a_time_zone(world, issue, field):
    body = error_of(issue(name="Guest", **{field: "2030-05-02T10:00:00"}), 422, "validation_error")

    assert field in body["message"]


def test_it_issues_a_key_with_a_weekly_schedule(world, issue):
    response = issue(
        name="Cleaner",
        schedule=[
            {"days": ["Fri", "mon", "wed", "mon"], "start": "07:00", "end": "19:00"},
            {"days": ["sat"], "start": "22:00", "end": "06:00"},
        ],
    )

    assert response.status_code == 201
    assert response.json()["schedule"] == [
        {"days": ["mon", "wed", "fri"], "start": "07:00", "end": "19:00"},
        {"days": ["sat"], "start": "22:00", "end": "06:00"},
    ]


@pytest.mark.parametrize(
    "rule",
    [
        {"days": ["funday"], "start": "07:00", "end": "19:00"},
        {"days": ["monkey"], "start": "07:00", "end": "19:00"},
        {"days": [], "start": "07:00", "end": "19:00"},
        {"days": ["mon"], "start": "25:00", "end": "26:00"},
        {"days": ["mon"], "start": "7:00", "end": "19:00"},
        {"days": ["mon"], "start": "07:60", "end": "19:00"},
        {"days": ["mon"], "start": "07:00", "end": "07:00"},
        {"days": ["mon"], "start": "24:00", "end": "06:00"},
        {"days": ["mon"], "start": "07:00", "end": "19:00\n"},
        {"days": ["mon"], "start": "noon", "end": "19:00"},
    ],
)
def test_it_refuses_a_schedule_rule_that_cannot_be_one(world, issue, rule):
    body = error_of(issue(name="Cleaner", schedule=[rule]), 400, "invalid_schedule")

    assert "rule 1" in body["message"]


# --- listing and searching ----------------------------------------------------------------------


@pytest.fixture
def keyring(world, issue, alice_api):
    now = timezone.now()
    ids = {
        "dana": issue(
            name="Dana Active",
            email="dana@example.com",
            credentials=[{"kind": "tag", "value": "04:a2:2b:1c"}],
        ).json()["id"],
        "erik": issue(
            name="Erik Later",
            email="erik@example.org",
            valid_from=(now + timedelta(days=2)).isoformat(),
            credentials=[{"kind": "remote", "value": "RM-7777"}],
        ).json()["id"],
        "fay": issue(
            name="Fay Expired",
            valid_from=(now - timedelta(days=3)).isoformat(),
            valid_until=(now - timedelta(days=1)).isoformat(),
            credentials=[{"kind": "pin", "value": "4321"}],
        ).json()["id"],
        "gus": issue(
            name="Gus Gone", note="old tenant", credentials=[{"kind": "pin", "value": "9876"}]
        ).json()["id"],
    }
    post_json(alice_api, f"/api/v1/keys/{ids['gus']}/revoke", {})
    return ids


def names(client, lock, query=""):
    body = client.get(f"/api/v1/locks/{lock.pk}/keys{query}").json()
    assert body["count"] == len(body["items"]) or "limit" in query
    return [k["person"] for k in body["items"]]


def test_it_lists_the_live_keys_by_default(world, alice_api, keyring):
    assert names(alice_api, world.lock) == ["Dana Active", "Erik Later", "Fay Expired"]


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ("active", ["Dana Active"]),
        ("scheduled", ["Erik Later"]),
        ("expired", ["Fay Expired"]),
        ("revoked", ["Gus Gone"]),
        ("live", ["Dana Active", "Erik Later", "Fay Expired"]),
        ("", ["Dana Active", "Erik Later", "Fay Expired", "Gus Gone"]),
    ],
)
def test_it_filters_keys_by_status(world, alice_api, keyring, status, expected):
    assert names(alice_api, world.lock, f"?status={status}") == expected


def test_each_key_reports_its_status(world, alice_api, keyring):
    items = alice_api.get(f"/api/v1/locks/{world.lock.pk}/keys?status=").json()["items"]

    assert {k["person"]: k["status"] for k in items} == {
        "Dana Active": "active",
        "Erik Later": "scheduled",
        "Fay Expired": "expired",
        "Gus Gone": "revoked",
    }


def test_it_refuses_an_unknown_status(world, alice_api):
    error_of(
        alice_api.get(f"/api/v1/locks/{world.lock.pk}/keys?status=lost"), 400, "invalid_status"
    )


@pytest.mark.parametrize(
    ("q", "expected"),
    [
        ("dana", ["Dana Active"]),
        ("LATER", ["Erik Later"]),
        ("example.org", ["Erik Later"]),
        ("04:a2:2b", ["Dana Active"]),
        ("04a22b1c", ["Dana Active"]),
        ("rm-77", ["Erik Later"]),
        ("old tenant", ["Gus Gone"]),
        ("nobody", []),
    ],
)
def test_it_searches_keys_by_name_email_tag_remote_and_note(world, alice_api, keyring, q, expected):
    assert names(alice_api, world.lock, f"?status=&q={q}") == expected


def test_searching_for_a_pin_finds_nothing(world, alice_api, keyring):
    assert names(alice_api, world.lock, "?status=&q=4321") == []


def test_it_pages_through_keys_with_limit_and_offset(world, alice_api, keyring):
    first = alice_api.get(f"/api/v1/locks/{world.lock.pk}/keys?status=&limit=3").json()
    rest = alice_api.get(f"/api/v1/locks/{world.lock.pk}/keys?status=&limit=3&offset=3").json()

    assert first["count"] == rest["count"] == 4
    assert [k["person"] for k in first["items"] + rest["items"]] == [
        "Dana Active",
        "Erik Later",
        "Fay Expired",
        "Gus Gone",
    ]


@pytest.mark.parametrize("query", ["limit=0", "limit=501", "offset=-1", "limit=ten"])
def test_it_refuses_a_page_size_out_of_bounds(world, alice_api, query):
    error_of(alice_api.get(f"/api/v1/locks/{world.lock.pk}/keys?{query}"), 422, "validation_error")


def test_it_shows_one_key(world, alice_api, keyring):
    response = alice_api.get(f"/api/v1/keys/{keyring['dana']}")

    assert response.status_code == 200
    assert response.json()["person"] == "Dana Active"
    assert response.json()["credentials"][0]["display"] == "04A22B1C"


def test_an_unknown_key_is_not_found(world, alice_api):
    error_of(alice_api.get("/api/v1/keys/999999"), 404, "key_not_found")
    error_of(post_json(alice_api, "/api/v1/keys/999999/revoke", {}), 404, "key_not_found")


# --- taking back, and the credential-list version -----------------------------------------------


def test_taking_back_a_key_marks_it_revoked(world, alice_api, issue):
    key_id = issue(name="Dana", credentials=[{"kind": "pin", "value": PIN}]).json()["id"]

    response = post_json(alice_api, f"/api/v1/keys/{key_id}/revoke", {})

    assert response.status_code == 200
    assert response.json()["status"] == "revoked"
    assert response.json()["revoked_at"] is not None
    assert response.json()["credentials"][0]["active"] is False
    key = Key.objects.get(pk=key_id)
    assert key.revoked_by == world.alice
    event = Event.objects.get(kind=EventKind.KEY_REVOKED)
    assert event.key_id == key_id


def test_taking_back_a_key_twice_is_a_conflict(world, alice_api, issue):
    key_id = issue(name="Dana").json()["id"]
    post_json(alice_api, f"/api/v1/keys/{key_id}/revoke", {})
    before = version(world.lock)

    body = error_of(
        post_json(alice_api, f"/api/v1/keys/{key_id}/revoke", {}), 409, "already_revoked"
    )

    assert "already" in body["message"]
    assert version(world.lock) == before
    assert Event.objects.filter(kind=EventKind.KEY_REVOKED).count() == 1


def test_the_credential_version_grows_by_exactly_one_per_issue_and_per_revoke(
    world, alice_api, issue
):
    assert version(world.lock) == 0
    first = issue(
        name="Dana",
        credentials=[{"kind": "pin", "value": "1111"}, {"kind": "tag", "value": "04A22B1C"}],
    ).json()
    assert version(world.lock) == 1
    issue(name="Erik", credentials=[{"kind": "remote", "value": "RM-0002"}])
    assert version(world.lock) == 2
    post_json(alice_api, f"/api/v1/keys/{first['id']}/revoke", {})
    assert version(world.lock) == 3
    issue(name="Fay", credentials=[{"kind": "pin", "value": "1111"}])
    assert version(world.lock) == 4
    assert alice_api.get(f"/api/v1/locks/{world.lock.pk}").json()["credential_version"] == 4


def test_a_refused_issue_does_not_change_the_version(world, issue):
    issue(name="Dana", credentials=[{"kind": "pin", "value": PIN}])
    for bad in (
        {"name": "Erik", "credentials": [{"kind": "pin", "value": PIN}]},
        {"name": "Erik", "credentials": [{"kind": "pin", "value": "12"}]},
        {"name": "Erik", "credentials": [{"kind": "phone"}]},
        {"email": "nope"},
    ):
        assert issue(**bad).status_code in (400, 409)

    assert version(world.lock) == 1
    assert Key.objects.count() == 1


def test_the_version_of_another_lock_does_not_change(world, alice_api, issue, second_lock):
    key_id = issue(name="Dana").json()["id"]
    post_json(alice_api, f"/api/v1/keys/{key_id}/revoke", {})

    assert version(second_lock) == 0


# --- how many users a lock can hold ------------------------------------------------------------


def test_a_full_lock_refuses_another_user_and_says_why(world, alice_api, issue, settings):
    settings.DOORKEEP = {**settings.DOORKEEP, "MAX_USERS_PER_LOCK": 3}
    ids = [
        issue(name=f"P{n}", credentials=[{"kind": "remote", "value": f"RM-{n:04}"}]).json()["id"]
        for n in range(3)
    ]

    body = error_of(
        issue(name="P3", credentials=[{"kind": "remote", "value": "RM-0003"}]), 409, "lock_full"
    )

    assert "3 users" in body["message"]
    assert "Take back a key" in body["message"]
    assert version(world.lock) == 3
    post_json(alice_api, f"/api/v1/keys/{ids[0]}/revoke", {})
    assert issue(name="P3", credentials=[{"kind": "remote", "value": "RM-0003"}]).status_code == 201


def test_keys_that_are_not_yet_valid_or_expired_count_towards_the_limit(world, issue, settings):
    settings.DOORKEEP = {**settings.DOORKEEP, "MAX_USERS_PER_LOCK": 2}
    now = timezone.now()
    issue(
        name="Later",
        valid_from=(now + timedelta(days=1)).isoformat(),
        credentials=[{"kind": "remote", "value": "RM-0001"}],
    )
    issue(
        name="Past",
        valid_until=(now - timedelta(days=1)).isoformat(),
        valid_from=(now - timedelta(days=2)).isoformat(),
        credentials=[{"kind": "remote", "value": "RM-0002"}],
    )

    error_of(
        issue(name="Now", credentials=[{"kind": "remote", "value": "RM-0003"}]), 409, "lock_full"
    )


def test_the_2501st_user_of_a_lock_is_refused(world, alice_api, issue, settings):
    assert settings.DOORKEEP["MAX_USERS_PER_LOCK"] == 2500
    people = Person.objects.bulk_create(
        Person(organization=world.org, name=f"Tenant {n:04}", email=f"tenant{n}@example.com")
        for n in range(2500)
    )
    Key.objects.bulk_create(
        Key(
            lock=world.lock,
            organization=world.org,
            lock_owner=world.org,
            person=person,
            issued_by=world.alice,
        )
        for person in people
    )

    body = error_of(
        issue(name="One too many", credentials=[{"kind": "pin", "value": "2501"}]), 409, "lock_full"
    )

    assert "2,500 users" in body["message"]
    assert "the most it can hold" in body["message"]
    assert alice_api.get(f"/api/v1/locks/{world.lock.pk}").json()["live_keys"] == 2500
    assert Key.objects.filter(lock=world.lock).count() == 2500
    assert not Person.objects.filter(name="One too many").exists()
    assert version(world.lock) == 0
