"""keys.services: issuing under concurrency, taking back, linking accounts."""

from __future__ import annotations

import threading

import pytest
from django.db import connection
from django.db.models import QuerySet

from doorkeep.accounts.services import create_user
from doorkeep.core.errors import Conflict, NotFound
from doorkeep.events.models import Event, EventKind
from doorkeep.keys.models import Key, KeyCredential, Person
from doorkeep.keys.services import (
    CredentialSpec,
    HolderSpec,
    KeySpec,
    issue_key,
    link_account,
    revoke_all_on_lock,
    revoke_key,
)
from doorkeep.locks.models import Lock


def spec(name, *credentials, email=""):
    return KeySpec(
        holder=HolderSpec(name=name, email=email),
        credentials=[CredentialSpec(kind, value) for kind, value in credentials],
    )


def version(world):
    return Lock.objects.get(pk=world.lock.pk).credential_version


@pytest.fixture
def racing(monkeypatch):
    """Make every existence check answer "no", as when two requests run the
    checks at the same moment, before either has written anything."""
    monkeypatch.setattr(QuerySet, "exists", lambda self: False)


def test_a_race_for_the_same_pin_is_caught_by_the_database(world, racing):
    issue_key(world.alice, world.lock.pk, spec("Dana", ("pin", "482916")))

    with pytest.raises(Conflict) as caught:
        issue_key(world.alice, world.lock.pk, spec("Erik", ("pin", "482916")))

    assert caught.value.code == "concurrent_change"
    assert "try again" in caught.value.message
    assert Key.objects.count() == 1
    assert not Person.objects.filter(name="Erik").exists()
    assert version(world) == 1
    assert Event.objects.filter(kind=EventKind.KEY_ISSUED).count() == 1


def test_a_race_for_a_second_live_key_of_one_person_is_caught_by_the_database(world, racing):
    issue_key(world.alice, world.lock.pk, spec("Dana", ("remote", "RM-1"), email="d@example.com"))

    with pytest.raises(Conflict) as caught:
        issue_key(
            world.alice, world.lock.pk, spec("Dana", ("remote", "RM-2"), email="d@example.com")
        )

    assert caught.value.code == "concurrent_change"
    assert Key.objects.count() == 1
    assert KeyCredential.objects.count() == 1
    assert version(world) == 1


def test_without_a_race_the_checks_answer_first_with_a_clear_code(world):
    issue_key(world.alice, world.lock.pk, spec("Dana", ("pin", "482916")))

    with pytest.raises(Conflict) as caught:
        issue_key(world.alice, world.lock.pk, spec("Erik", ("pin", "482916")))

    assert caught.value.code == "credential_in_use"


def test_issuing_on_an_unregistered_lock_is_not_found(world, manufacture_lock):
    with pytest.raises(NotFound):
        issue_key(world.alice, manufacture_lock.pk, spec("Dana", ("pin", "1234")))


@pytest.fixture
def manufacture_lock(db):
    from doorkeep.locks.services import add_manufactured_lock

    add_manufactured_lock("DK-LOOSE-0001", claim_secret="ABCD-EFGH-JKLM-NPQR")
    return Lock.objects.get(serial="DK-LOOSE-0001")


def test_taking_back_every_key_of_a_lock_bumps_the_version_once(world):
    for n in range(3):
        issue_key(world.alice, world.lock.pk, spec(f"P{n}", ("remote", f"RM-{n}")))
    lock = Lock.objects.get(pk=world.lock.pk)

    assert revoke_all_on_lock(world.alice, lock, reason="test") == 3

    assert version(world) == 4
    assert not Key.objects.filter(revoked_at__isnull=True).exists()
    assert not KeyCredential.objects.filter(active=True).exists()
    assert revoke_all_on_lock(world.alice, lock, reason="test") == 0
    assert version(world) == 4


def test_an_outsider_cannot_take_back_a_key(world):
    key = issue_key(world.alice, world.lock.pk, spec("Dana", ("pin", "1234")))

    with pytest.raises(NotFound):
        revoke_key(world.charlie, key.pk)

    assert Key.objects.get(pk=key.pk).revoked_at is None


def test_linking_an_account_links_every_person_with_its_address(world):
    Person.objects.create(organization=world.org, name="Erin", email="erin@example.com")
    Person.objects.create(organization=world.charlie_org, name="Erin", email="erin@example.com")
    Person.objects.create(organization=world.org, name="Other", email="other@example.com")
    erin = create_user("erin@example.com", "pw-123456789")

    assert link_account(erin) == 2
    assert Person.objects.filter(user=erin).count() == 2
    assert link_account(erin) == 0


# --- real concurrency, on PostgreSQL -----------------------------------------------------------


def _in_threads(count, work):
    barrier = threading.Barrier(count)
    results: list[object] = [None] * count

    def run(index):
        try:
            barrier.wait()
            results[index] = work(index)
        except Exception as exc:
            results[index] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    return results


postgres_only = pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="PostgreSQL only: SQLite serializes writers (BEGIN IMMEDIATE), so these races cannot "
    "happen there; CI runs them on PostgreSQL",
)


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_concurrent_issues_of_one_pin_give_it_to_exactly_one_person(world):
    results = _in_threads(
        6, lambda n: issue_key(world.alice, world.lock.pk, spec(f"Racer {n}", ("pin", "482916")))
    )

    keys = [r for r in results if isinstance(r, Key)]
    refused = [r for r in results if isinstance(r, Conflict)]
    assert len(keys) == 1, results
    assert len(refused) == 5, results
    assert {r.code for r in refused} <= {"credential_in_use", "concurrent_change"}
    assert KeyCredential.objects.filter(lock=world.lock, active=True).count() == 1
    assert version(world) == 1


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_concurrent_issues_never_exceed_the_users_a_lock_can_hold(world, settings):
    settings.DOORKEEP = {**settings.DOORKEEP, "MAX_USERS_PER_LOCK": 3}

    results = _in_threads(
        8,
        lambda n: issue_key(
            world.alice, world.lock.pk, spec(f"Racer {n}", ("remote", f"RM-{n:04}"))
        ),
    )

    assert sum(isinstance(r, Key) for r in results) == 3, results
    assert all(isinstance(r, Key) or getattr(r, "code", "") == "lock_full" for r in results)
    assert Key.objects.filter(lock=world.lock, revoked_at__isnull=True).count() == 3
    assert version(world) == 3
