"""Access decisions: the API endpoint and the access.decide service behind it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from apihelp import error_of, post_json
from django.utils import timezone

from doorkeep.accounts.services import create_user
from doorkeep.core.errors import NotFound
from doorkeep.events.models import Event, EventKind
from doorkeep.keys import access
from doorkeep.keys.models import Credential
from doorkeep.keys.services import CredentialSpec, HolderSpec, KeySpec, issue_key, link_account
from doorkeep.locks.services import remove_lock

PIN = "73950264"
MONDAY = datetime(2030, 1, 7, tzinfo=UTC)  # a Monday in winter: Amsterdam is UTC+1
SUMMER_MONDAY = datetime(2030, 7, 1, tzinfo=UTC)  # Amsterdam is UTC+2


def decide(client, lock, kind, value, at=None):
    body = {"kind": kind, "value": value}
    if at is not None:
        body["at"] = at.isoformat()
    return post_json(client, f"/api/v1/locks/{lock.pk}/access-decisions", body)


def give(world, *, name="Dana", email="dana@example.com", credentials=None, **extra):
    return issue_key(
        world.alice,
        world.lock.pk,
        KeySpec(
            holder=HolderSpec(name=name, email=email),
            credentials=credentials or [CredentialSpec("pin", PIN)],
            **extra,
        ),
    )


# --- through the API ---------------------------------------------------------------------------


def test_a_valid_pin_is_granted(world, alice_api):
    key = give(world)

    response = decide(alice_api, world.lock, "pin", PIN)

    assert response.status_code == 200
    body = response.json()
    assert body["granted"] is True
    assert body["outcome"] == "granted"
    assert body["reason"] == ""
    assert body["key_id"] == key.pk
    assert body["person"] == "Dana"
    event = Event.objects.get(pk=body["event_id"])
    assert event.kind == EventKind.ACCESS_GRANTED
    assert event.lock_id == world.lock.pk
    assert event.key_id == key.pk
    assert event.person_id == key.person_id
    assert event.property_id == world.prop.pk
    assert event.actor_id == world.alice.pk
    assert event.credential_kind == "pin"
    assert event.data == {"source": "api"}


@pytest.mark.parametrize("typed", ["04a22b1c", "04:A2:2B:1C", "0x04A22B1C"])
def test_a_tag_is_recognised_however_its_uid_is_written(world, alice_api, typed):
    give(world, credentials=[CredentialSpec("tag", "04:a2:2b:1c")])

    assert decide(alice_api, world.lock, "tag", typed).json()["granted"] is True


def test_a_remote_is_granted(world, alice_api):
    give(world, credentials=[CredentialSpec("remote", "RM-0001")])

    assert decide(alice_api, world.lock, "remote", "rm-0001").json()["granted"] is True


def test_a_phone_is_granted_to_the_linked_account(world, alice_api):
    give(world, name="Bob", email="bob@example.com", credentials=[CredentialSpec("phone")])

    body = decide(alice_api, world.lock, "phone", "BOB@example.com").json()

    assert body["granted"] is True
    assert body["person"] == "Bob"


def test_a_phone_opens_once_the_person_signs_up_and_is_linked(world, alice_api):
    give(world, name="Erin", email="erin@example.com", credentials=[CredentialSpec("phone")])
    erin = create_user("erin@example.com", "pw-erin-123456")

    assert decide(alice_api, world.lock, "phone", "erin@example.com").json()["reason"] == (
        "unknown_credential"
    )
    assert link_account(erin) == 1
    assert decide(alice_api, world.lock, "phone", "erin@example.com").json()["granted"] is True


def test_a_phone_of_an_account_without_a_key_is_an_unknown_credential(world, alice_api):
    body = decide(alice_api, world.lock, "phone", "charlie@example.com").json()

    assert body["granted"] is False
    assert body["reason"] == "unknown_credential"


def test_a_phone_decision_for_an_address_without_an_account_is_refused(world, alice_api):
    error_of(decide(alice_api, world.lock, "phone", "ghost@example.com"), 400, "user_not_found")


def test_an_unknown_pin_is_denied(world, alice_api):
    give(world)

    body = decide(alice_api, world.lock, "pin", "11112222").json()

    assert body == {
        "granted": False,
        "outcome": "denied",
        "reason": "unknown_credential",
        "key_id": None,
        "person": None,
        "event_id": body["event_id"],
    }
    event = Event.objects.get(pk=body["event_id"])
    assert event.kind == EventKind.ACCESS_DENIED
    assert event.reason == "unknown_credential"
    assert event.person_id is None


def test_a_revoked_key_is_denied_as_revoked(world, alice_api):
    key = give(world)
    post_json(alice_api, f"/api/v1/keys/{key.pk}/revoke", {})

    body = decide(alice_api, world.lock, "pin", PIN).json()

    assert body["granted"] is False
    assert body["reason"] == "revoked"
    assert body["key_id"] == key.pk


def test_a_new_key_with_the_pin_of_a_revoked_one_is_granted(world, alice_api):
    old = give(world)
    post_json(alice_api, f"/api/v1/keys/{old.pk}/revoke", {})
    new = give(world, name="Erik", email="erik@example.com")

    body = decide(alice_api, world.lock, "pin", PIN).json()

    assert body["granted"] is True
    assert body["key_id"] == new.pk


def test_a_switched_off_credential_is_denied(world, alice_api):
    give(world)
    Credential.objects.update(deactivated_at=timezone.now())

    assert decide(alice_api, world.lock, "pin", PIN).json()["reason"] == "credential_deactivated"


def test_a_key_before_its_window_is_not_yet_valid(world, alice_api):
    give(world, valid_from=MONDAY, valid_until=MONDAY + timedelta(days=2))

    before = decide(alice_api, world.lock, "pin", PIN, at=MONDAY - timedelta(seconds=1)).json()
    start = decide(alice_api, world.lock, "pin", PIN, at=MONDAY).json()

    assert before["reason"] == "not_yet_valid"
    assert start["granted"] is True


def test_a_key_at_or_after_the_end_of_its_window_is_expired(world, alice_api):
    give(world, valid_from=MONDAY, valid_until=MONDAY + timedelta(days=2))

    last = decide(
        alice_api, world.lock, "pin", PIN, at=MONDAY + timedelta(days=2, seconds=-1)
    ).json()
    end = decide(alice_api, world.lock, "pin", PIN, at=MONDAY + timedelta(days=2)).json()

    assert last["granted"] is True
    assert end["reason"] == "expired"


def test_the_schedule_is_read_in_the_time_zone_of_the_property(world, alice_api):
    give(world, schedule=[{"days": ["mon"], "start": "09:00", "end": "17:00"}])

    def reason(at):
        return decide(alice_api, world.lock, "pin", PIN, at=at).json()["reason"]

    assert reason(MONDAY.replace(hour=7, minute=59)) == "outside_schedule"  # 08:59 local
    assert reason(MONDAY.replace(hour=8)) == ""  # 09:00 local
    assert reason(MONDAY.replace(hour=15, minute=59)) == ""  # 16:59 local
    assert reason(MONDAY.replace(hour=16)) == "outside_schedule"  # 17:00 local, 16:00 UTC
    assert reason(SUMMER_MONDAY.replace(hour=7)) == ""  # 09:00 local in summer
    assert reason(SUMMER_MONDAY.replace(hour=15)) == "outside_schedule"  # 17:00 local


def test_the_schedule_follows_a_change_of_the_propertys_time_zone(world, alice_api):
    give(world, schedule=[{"days": ["mon"], "start": "09:00", "end": "17:00"}])
    world.prop.timezone = "America/New_York"  # UTC-5 in January
    world.prop.save()

    at = MONDAY.replace(hour=15)  # 10:00 in New York, 16:00 in Amsterdam
    assert decide(alice_api, world.lock, "pin", PIN, at=at).json()["granted"] is True
    at = MONDAY.replace(hour=13)  # 08:00 in New York
    assert decide(alice_api, world.lock, "pin", PIN, at=at).json()["reason"] == "outside_schedule"


def test_a_rule_past_midnight_runs_into_the_next_morning(world, alice_api):
    give(world, schedule=[{"days": ["fri"], "start": "22:00", "end": "06:00"}])
    friday = MONDAY - timedelta(days=3)

    def granted(local_day, hour, minute=0):
        at = local_day.replace(hour=hour, minute=minute) - timedelta(hours=1)  # local is UTC+1
        return decide(alice_api, world.lock, "pin", PIN, at=at).json()["granted"]

    assert not granted(friday, 21, 59)
    assert granted(friday, 22)
    assert granted(friday, 23, 59)
    assert granted(friday + timedelta(days=1), 0)
    assert granted(friday + timedelta(days=1), 5, 59)
    assert not granted(friday + timedelta(days=1), 6)
    assert not granted(friday + timedelta(days=1), 23)  # Saturday night is not in the rule
    assert not granted(friday - timedelta(days=1), 23)  # nor is Thursday night


@pytest.mark.parametrize(
    ("kind", "value"), [("pin", "12ab"), ("pin", "123"), ("tag", "zz"), ("remote", "!")]
)
def test_a_malformed_credential_is_denied_not_an_error(world, alice_api, kind, value):
    response = decide(alice_api, world.lock, kind, value)

    assert response.status_code == 200
    assert response.json()["reason"] == "malformed_credential"
    event = Event.objects.get(pk=response.json()["event_id"])
    assert event.reason == "malformed_credential"
    assert event.credential_kind == kind


def test_a_check_for_another_moment_answers_every_reason_and_writes_no_attempt(world, alice_api):
    give(
        world,
        valid_from=MONDAY,
        valid_until=MONDAY + timedelta(days=1),
        schedule=[{"days": ["mon"], "start": "09:00", "end": "17:00"}],
    )
    cases = [
        ("pin", PIN, MONDAY.replace(hour=9), True, ""),
        ("pin", "99998888", MONDAY.replace(hour=9), False, "unknown_credential"),
        ("pin", PIN, MONDAY - timedelta(hours=1), False, "not_yet_valid"),
        ("pin", PIN, MONDAY + timedelta(days=1), False, "expired"),
        ("pin", PIN, MONDAY.replace(hour=20), False, "outside_schedule"),
        ("pin", "x", MONDAY.replace(hour=9), False, "malformed_credential"),
    ]
    before = Event.objects.count()
    for kind, value, at, granted, reason in cases:
        body = decide(alice_api, world.lock, kind, value, at=at).json()
        assert (body["granted"], body["reason"], body["event_id"]) == (granted, reason, None)
    # A what-if is not an attempt at that moment: nothing in the log.
    assert Event.objects.count() == before


def test_every_decision_for_now_writes_exactly_one_event_with_its_reason(
    world, alice_api, time_machine
):
    give(
        world,
        valid_from=MONDAY,
        valid_until=MONDAY + timedelta(days=1),
        schedule=[{"days": ["mon"], "start": "09:00", "end": "17:00"}],
    )
    cases = [
        ("pin", PIN, MONDAY.replace(hour=9), "access.granted", ""),
        ("pin", "99998888", MONDAY.replace(hour=9), "access.denied", "unknown_credential"),
        ("pin", PIN, MONDAY - timedelta(hours=1), "access.denied", "not_yet_valid"),
        ("pin", PIN, MONDAY + timedelta(days=1), "access.denied", "expired"),
        ("pin", PIN, MONDAY.replace(hour=20), "access.denied", "outside_schedule"),
        ("pin", "x", MONDAY.replace(hour=9), "access.denied", "malformed_credential"),
    ]
    for kind, value, at, event_kind, reason in cases:
        time_machine.move_to(at, tick=False)
        before = Event.objects.count()
        body = decide(alice_api, world.lock, kind, value).json()
        assert Event.objects.count() == before + 1
        event = Event.objects.order_by("-id").first()
        assert event.pk == body["event_id"]
        assert (event.kind, event.reason) == (event_kind, reason)
        assert event.occurred_at == at
        assert body["reason"] == reason


def test_a_decision_moment_needs_a_time_zone(world, alice_api):
    response = post_json(
        alice_api,
        f"/api/v1/locks/{world.lock.pk}/access-decisions",
        {"kind": "pin", "value": PIN, "at": "2030-01-07T09:00:00"},
    )

    error_of(response, 422, "validation_error")
    assert not Event.objects.filter(kind__startswith="access.").exists()


def test_a_member_may_not_ask_for_access_decisions(world, bob_api):
    give(world)

    error_of(decide(bob_api, world.lock, "pin", PIN), 403, "forbidden")
    assert not Event.objects.filter(kind__startswith="access.").exists()


# --- the service ---------------------------------------------------------------------------------


def test_the_service_decides_now_when_no_moment_is_given(world, time_machine):
    give(world, valid_from=MONDAY, valid_until=MONDAY + timedelta(hours=12))
    time_machine.move_to(MONDAY.replace(hour=10), tick=False)  # years later: keys still open

    decision = access.decide(world.lock, "pin", PIN)

    assert decision.granted
    assert decision.event.occurred_at == MONDAY.replace(hour=10)
    assert decision.event.data == {"source": "platform"}
    assert decision.event.actor_id is None


def test_the_service_refuses_a_phone_credential_that_is_not_an_account(world):
    decision = access.decide(world.lock, "phone", "bob@example.com")

    assert decision.reason == "malformed_credential"


def test_the_service_refuses_a_lock_that_is_not_registered(world):
    remove_lock(world.alice, world.lock.pk)
    world.lock.refresh_from_db()

    with pytest.raises(NotFound):
        access.decide(world.lock, "pin", PIN)


def test_a_lock_without_an_entry_reads_schedules_in_utc(world):
    give(world, schedule=[{"days": ["mon"], "start": "09:00", "end": "17:00"}])
    world.lock.entry = None
    world.lock.save()

    assert access.decide(world.lock, "pin", PIN, at=MONDAY.replace(hour=16, minute=30)).granted
    assert not access.decide(world.lock, "pin", PIN, at=MONDAY.replace(hour=8, minute=30)).granted
