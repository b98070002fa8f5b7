"""An entry with two locks (a door with two readers, a gate with a lock on
each side): remote unlock goes to each lock there that the person's key
opens, succeeds when one of them opened and fails only when none did; the
attempt is one record, which says what each lock did."""

from __future__ import annotations

import time
from typing import Any

import pytest
from gateway_helpers import DEVICE_SECRET, deafen
from guest_helpers import GuestWorld, new_lock, phone_key

from doorkeep.events.models import Event, EventKind
from doorkeep.gateway.remote import remote_unlock
from doorkeep.gateway.routing import LockOffline
from doorkeep.gateway.services import set_device_secret
from doorkeep.guests import services as guests
from doorkeep.locks.models import Lock
from doorkeep.locks.services import register_lock

ATTEMPTS = (EventKind.ACCESS_GRANTED, EventKind.ACCESS_DENIED, EventKind.UNLOCK_FAILED)


@pytest.fixture
def back_reader(gw: GuestWorld) -> Lock:
    """A second lock at the front door, registered before Gina is invited."""
    new_lock("DK-TEST-0003")
    lock = register_lock(
        gw.w.alice,
        serial="DK-TEST-0003",
        claim_secret="ABCD-EFGH-JKLM-NPQR",
        entry_id=gw.w.entry.pk,
        name="Front door, inner reader",
    )
    set_device_secret(lock, DEVICE_SECRET)
    return lock


def attempts_at(entry_id: int) -> list[Event]:
    return list(
        Event.objects.filter(
            lock__entry_id=entry_id, kind__in=(*ATTEMPTS, EventKind.GUEST_UNLOCKED)
        ).order_by("id")
    )


def test_a_guest_opens_an_entry_whose_other_lock_is_offline(
    gw: GuestWorld, back_reader: Lock, gateway: Any
) -> None:
    # The front door's first lock (the lower id) is offline; the inner reader is online.
    inner = gateway.lock(back_reader.serial)
    gateway.run(inner.connect())
    guests.accept(gw.gina, gw.invite().pk)

    result = remote_unlock(gw.gina, gw.w.entry.pk)

    assert result.lock_ids == (back_reader.pk,) and result.lock_id == back_reader.pk
    assert len(inner.opened) == 1
    [attempt] = attempts_at(gw.w.entry.pk)
    assert attempt.kind == EventKind.GUEST_UNLOCKED and attempt.lock_id == back_reader.pk
    assert attempt.person.name == "Gina Guest" and attempt.actor_id == gw.gina.pk
    assert (attempt.decision, attempt.lock_outcome) == ("granted", "opened")
    assert {(x["lock_id"], x["outcome"]) for x in attempt.data["locks"]} == {
        (gw.w.lock.pk, "offline"),
        (back_reader.pk, "opened"),
    }


def test_an_entry_fails_only_when_none_of_its_locks_answers_and_says_so_once(
    gw: GuestWorld, back_reader: Lock, gateway: Any
) -> None:
    guests.accept(gw.gina, gw.invite().pk)

    with pytest.raises(LockOffline):
        remote_unlock(gw.gina, gw.w.entry.pk)

    [attempt] = attempts_at(gw.w.entry.pk)
    assert attempt.kind == EventKind.UNLOCK_FAILED and attempt.reason == "lock_offline"
    assert attempt.person.name == "Gina Guest" and attempt.actor_id == gw.gina.pk
    assert (attempt.decision, attempt.lock_outcome) == ("granted", "offline")
    assert [x["outcome"] for x in attempt.data["locks"]] == ["offline", "offline"]


def test_a_resident_with_keys_to_both_locks_opens_both(
    gw: GuestWorld, back_reader: Lock, front_door: Any, gateway: Any
) -> None:
    phone_key(gw.w.alice, back_reader, gw.rita)
    inner = gateway.lock(back_reader.serial)
    gateway.run(inner.connect())

    result = remote_unlock(gw.rita, gw.w.entry.pk)

    assert set(result.lock_ids) == {gw.w.lock.pk, back_reader.pk}
    assert len(front_door.opened) == 1 and len(inner.opened) == 1
    [attempt] = attempts_at(gw.w.entry.pk)
    assert attempt.kind == EventKind.ACCESS_GRANTED and attempt.lock_outcome == "opened"


def test_a_silent_lock_costs_its_timeout_and_the_next_lock_is_still_asked(
    gw: GuestWorld, back_reader: Lock, front_door: Any, gateway: Any
) -> None:
    """All the locks of an entry get twice the timeout together: the first,
    connected but silent, takes its second; the inner reader still opens."""
    phone_key(gw.w.alice, back_reader, gw.rita)
    deafen(front_door)
    inner = gateway.lock(back_reader.serial)
    gateway.run(inner.connect())

    started = time.monotonic()
    result = remote_unlock(gw.rita, gw.w.entry.pk, timeout=1)
    took = time.monotonic() - started

    assert result.lock_ids == (back_reader.pk,)
    assert 1 <= took < 2.5
    [attempt] = attempts_at(gw.w.entry.pk)
    assert {(x["lock_id"], x["outcome"]) for x in attempt.data["locks"]} == {
        (gw.w.lock.pk, "no_answer"),
        (back_reader.pk, "opened"),
    }


def test_a_lock_left_when_the_time_is_up_is_not_asked(monkeypatch: Any) -> None:
    """The two-timeouts budget: with less than MIN_WAIT left, a lock is not
    asked and counts as no answer."""
    from doorkeep.gateway import remote, routing

    asked: list[int] = []

    def slow(lock_id: int, request_id: str, *, timeout: float) -> dict[str, Any]:
        asked.append(lock_id)
        time.sleep(timeout)
        raise routing.LockTimeout("no answer")

    monkeypatch.setattr(routing, "send_unlock", slow)
    locks = [(Lock(pk=n), None) for n in (1, 2, 3)]
    sent = remote._ask_each(locks, timeout=0.3)
    assert asked == [1, 2]
    assert [s.outcome for s in sent] == ["no_answer", "no_answer", "no_answer"]


def test_a_lock_at_the_entry_the_person_holds_no_key_to_is_not_sent_the_command(
    gw: GuestWorld, back_reader: Lock, front_door: Any, gateway: Any
) -> None:
    inner = gateway.lock(back_reader.serial)
    gateway.run(inner.connect())

    result = remote_unlock(gw.rita, gw.w.entry.pk)  # Rita's key is on the front door lock only

    assert result.lock_ids == (gw.w.lock.pk,)
    assert len(front_door.opened) == 1 and inner.opened == []


def test_a_phone_key_of_the_locks_previous_owner_says_nothing_of_the_new_owners_entry(world):
    """Someone who held a phone key while Alice owned the lock asks to open the
    entry of its new owner, Charlie: 404, and nothing is written to Charlie's log."""
    from django.test import Client

    from doorkeep.accounts.services import create_token, create_user
    from doorkeep.events.models import Event
    from doorkeep.keys.services import CredentialSpec, HolderSpec, KeySpec, issue_key
    from doorkeep.locks.services import register_lock, remove_lock

    eve = create_user("eve@example.com", "correct horse battery staple", name="Eve")
    issue_key(
        world.alice,
        world.lock.pk,
        KeySpec(HolderSpec(name="Eve", email=eve.email), [CredentialSpec("phone")]),
    )
    serial = world.lock.serial
    remove_lock(world.alice, world.lock.pk)
    register_lock(
        world.charlie,
        serial=serial,
        claim_secret="ABCD-EFGH-JKLM-NPQR",
        entry_id=world.charlie_entry.pk,
    )
    before = Event.objects.filter(organization=world.charlie_org).count()
    _row, token = create_token(eve, "eve")

    answer = Client().post(
        f"/api/v1/entries/{world.charlie_entry.pk}/unlock",
        HTTP_AUTHORIZATION=f"Bearer {token}",
    )

    assert answer.status_code == 404, answer.content
    assert Event.objects.filter(organization=world.charlie_org).count() == before
