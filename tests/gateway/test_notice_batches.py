"""A change of many locks in one transaction (a lost badge): one notice to
each gateway after the commit, the differences read for many locks at once,
the acknowledgements recorded many at once. Each batched path against the
path of one lock, case by case."""

from __future__ import annotations

import contextlib
import json
import time
from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone
from gateway_helpers import (
    DEVICE_SECRET,
    PROMPTLY,
    badge_everywhere,
    eventually,
    give,
    more_locks,
    spy_on_reads,
    version,
)

from doorkeep.badges.services import report_lost
from doorkeep.gateway import lists, routing, services, syncing
from doorkeep.gateway.models import Device
from doorkeep.gateway.routing import Change
from doorkeep.keys.models import Key
from doorkeep.keys.services import (
    CredentialSpec,
    HolderSpec,
    KeySpec,
    bump_version,
    issue_key,
    revoke_key,
    update_key,
)
from doorkeep.locks.models import Lock


def give_on(world, lock, name: str, *, valid_from=None, valid_until=None, **creds: str) -> Key:
    spec = [CredentialSpec(kind, value) for kind, value in creds.items()]
    holder = HolderSpec(name=name, email=f"{name.lower()}@example.com")
    return issue_key(
        world.alice,
        lock.pk,
        KeySpec(holder, spec, valid_from=valid_from, valid_until=valid_until),
    )


def version_of(lock) -> int:
    return Lock.objects.values_list("credential_version", flat=True).get(pk=lock.pk)


@pytest.fixture
def announced(monkeypatch) -> list[list[Change]]:
    """Each call of ``routing.notify_changed_many`` (the changes it names)."""
    calls: list[list[Change]] = []
    monkeypatch.setattr(routing, "notify_changed_many", lambda changes: calls.append(list(changes)))
    return calls


# --- the notices: one call a transaction -------------------------------------------------------


def test_a_transaction_announces_its_changes_in_one_call_and_never_a_rolled_back_one(
    world, announced, django_capture_on_commit_callbacks
):
    locks = more_locks(world, 3)
    before = version_of(locks[1])

    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        bump_version(locks[0].pk, [11])
        with contextlib.suppress(RuntimeError), transaction.atomic():
            bump_version(locks[1].pk, [12])
            raise RuntimeError("rolled back: its version was never committed")
        with transaction.atomic():  # a savepoint released: its change stays
            bump_version(locks[2].pk, [13])
        bump_version(locks[3].pk)  # anything may have changed
        assert announced == []  # nothing before the commit

    assert version_of(locks[1]) == before
    assert announced == [
        [
            Change(locks[0].pk, (11,), version_of(locks[0])),
            Change(locks[2].pk, (13,), version_of(locks[2])),
            Change(locks[3].pk),
        ]
    ]


def test_services_called_one_after_the_other_in_a_transaction_make_one_call(
    world, announced, django_capture_on_commit_callbacks
):
    """Each issue_key runs in a savepoint of its own; their changes still go together."""
    locks = more_locks(world, 2)
    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        keys = [give_on(world, lock, f"User{i}", pin=f"{5000 + i}") for i, lock in enumerate(locks)]
    with django_capture_on_commit_callbacks(execute=True):
        give_on(world, locks[0], "Later", pin="6000")  # another transaction: another call

    assert [[c.lock for c in call] for call in announced] == [
        [lock.pk for lock in locks],
        [locks[0].pk],
    ]
    assert [c.keys for c in announced[0]] == [(key.pk,) for key in keys]


def test_a_transaction_rolled_back_announces_nothing(
    world, announced, django_capture_on_commit_callbacks
):
    with (
        django_capture_on_commit_callbacks(execute=True),
        contextlib.suppress(RuntimeError),
        transaction.atomic(),
    ):
        bump_version(world.lock.pk, [1])
        raise RuntimeError
    assert announced == []


def test_one_lock_is_a_notice_of_one(world, monkeypatch):
    sent = []
    monkeypatch.setattr(routing, "_direct_notify", lambda changes: sent.append(changes))
    routing.notify_changed(world.lock.pk, keys=[3, 4], version=9)
    routing.notify_changed(world.lock.pk)
    assert sent == [[Change(world.lock.pk, (3, 4), 9)], [Change(world.lock.pk)]]
    assert routing.changed_command(sent[0] + sent[1]) == {
        "op": "changed_many",
        "changes": [{"lock": world.lock.pk, "keys": [3, 4], "version": 9}, {"lock": world.lock.pk}],
    }


@pytest.mark.parametrize(
    "command",
    [
        {"op": "changed_many"},
        {"op": "changed_many", "changes": {"lock": 1}},
        {"op": "changed_many", "changes": [1, 2]},
        {"op": "changed_many", "changes": [{"lock": "1"}]},
        {"op": "changed_many", "changes": [{"lock": True}]},
        {"op": "changed"},
        {"op": "unlock", "lock": 1},
    ],
)
def test_a_malformed_notice_is_refused_whole(command):
    with pytest.raises(ValueError):
        routing.notice_changes(command)


def test_a_notice_item_with_odd_keys_means_the_whole_list():
    assert routing.notice_changes(
        {
            "op": "changed_many",
            "changes": [
                {"lock": 1, "keys": [2], "version": 3},
                {"lock": 4, "keys": ["x"], "version": 5},
                {"lock": 6, "keys": [7], "version": True},
                {"lock": 8},
            ],
        }
    ) == [(1, (3, (2,))), (4, None), (6, None), (8, None)]


# --- the list rows: of keys, for many locks, against the whole list ----------------------------


@pytest.fixture
def varied(world):
    """Four locks of Alice with keys of every sort: PIN, tag, phone (never
    in a list), taken back, ending tomorrow, starting tomorrow, and a badge
    reported lost (its credential switched off)."""
    locks = more_locks(world, 3)
    now = timezone.now()
    for i, lock in enumerate(locks):
        give_on(world, lock, f"Pin{i}", pin=f"{7000 + i}")
        give_on(world, lock, f"Tag{i}", tag=f"04A22B{i:02X}", pin=f"{7100 + i}")
        give_on(world, lock, f"Phone{i}", phone="")
        gone = give_on(world, lock, f"Gone{i}", pin=f"{7200 + i}")
        revoke_key(world.alice, gone.pk)
        give_on(world, lock, f"Brief{i}", pin=f"{7300 + i}", valid_until=now + timedelta(days=1))
        give_on(world, lock, f"Soon{i}", pin=f"{7400 + i}", valid_from=now + timedelta(days=1))
    badge, _keys = badge_everywhere(world, locks)
    report_lost(world.alice, badge.pk)
    give_on(world, locks[0], "Other", tag="04A22BFF")
    return locks


def keys_of(lock) -> list[int]:
    return list(Key.objects.filter(lock=lock).values_list("pk", flat=True))


def test_the_rows_of_every_key_of_many_locks_are_their_whole_lists(world, varied):
    owner = world.org.pk
    for at in (None, timezone.now() + timedelta(days=2), timezone.now() + timedelta(days=400)):
        wanted = {lock.pk: (owner, keys_of(lock)) for lock in varied}
        together = lists.rows_of_keys(wanted, at=at)
        assert together == {lock.pk: lists.rows(lock.pk, owner, at=at) for lock in varied}
        for lock in varied:  # one lock at a time, and some of its keys
            alone = lists.rows_of_keys({lock.pk: (owner, keys_of(lock))}, at=at)
            assert alone == {lock.pk: together[lock.pk]}
            some = keys_of(lock)[::2]
            assert lists.rows_of_keys({lock.pk: (owner, some)}, at=at)[lock.pk] == {
                pk: row for pk, row in together[lock.pk].items() if row[lists.KEY] in some
            }
    assert any(together.values())
    # Another owner's keys are in no list (a lock that changed hands).
    assert lists.rows_of_keys({varied[0].pk: (world.charlie_org.pk, keys_of(varied[0]))}) == {
        varied[0].pk: {}
    }
    assert lists.rows(varied[0].pk, world.charlie_org.pk) == {}
    # A key of another lock asked for under this one: not this lock's.
    assert lists.rows_of_keys({varied[0].pk: (owner, keys_of(varied[1]))}) == {varied[0].pk: {}}


def test_heads_of_many_locks_are_each_ones_head(world, varied):
    heads = lists.heads([lock.pk for lock in varied] + [999_999])
    assert heads == {lock.pk: lists.head(lock.pk) for lock in varied}
    with pytest.raises(Lock.DoesNotExist):
        lists.head(999_999)


# --- the differences: many locks in one call, against each lock's whole list -------------------


def test_the_differences_of_many_locks_read_by_keys_are_those_of_their_whole_lists(
    world, varied, monkeypatch, django_capture_on_commit_callbacks
):
    acked = {lock.pk: lists.build(lock.pk) for lock in varied}
    calls: list[Change] = []
    monkeypatch.setattr(routing, "notify_changed_many", lambda changes: calls.extend(changes))
    a, b, c, d = varied
    with django_capture_on_commit_callbacks(execute=True):
        give_on(world, a, "Dana", pin="2580", tag="04CAFE01")  # added
        revoke_key(world.alice, Key.objects.get(lock=b, person__name="Pin1").pk)  # removed
        brief = Key.objects.get(lock=c, person__name="Brief2")
        update_key(  # replaced
            world.alice, brief.pk, valid_from=None, valid_until=timezone.now() + timedelta(days=9)
        )
        give_on(world, d, "Erin", pin="1357")  # two changes: the first notice is behind
        give_on(world, d, "Finn", pin="4444")
    hint = {}
    for change in calls:
        hint.setdefault(change.lock, (change.version, change.keys))
    syncs = [
        syncing.Sync(lock.pk, acked[lock.pk].version, acked[lock.pk].rows, {}, False, hint[lock.pk])
        for lock in varied
    ]
    syncs.append(syncs[0])  # the same lock twice: the second reads its whole list
    syncs.append(syncing.Sync(999_999, 3, {}, {}, False, (4, (1,))))  # a lock that is gone
    reads = spy_on_reads(monkeypatch)

    batched = syncing.prepare_many(syncs)

    assert sorted(reads, key=repr) == sorted(
        [(hint[lock.pk][1], n) for lock, n in zip((a, b, c), (2, 0, 1), strict=True)]
        + [(None, len(lists.rows(lock.pk, world.org.pk))) for lock in (d, a)],
        key=repr,
    )
    assert isinstance(batched[-1], Lock.DoesNotExist)
    for sync, prepared in zip(syncs[:-1], batched[:-1], strict=True):
        whole = syncing.prepare(
            sync.lock_id, sync.acked_version, sync.acked_rows, {}, False, hint=None
        )
        assert isinstance(prepared, syncing.Prepared) and prepared.push and whole.push
        assert prepared.push.rows == whole.push.rows
        assert (prepared.push.version, prepared.push.since) == (
            whole.push.version,
            whole.push.since,
        )
        assert sorted(prepared.push.changed) == sorted(whole.push.changed)
        assert prepared.push.removed == whole.push.removed
        assert prepared.next_end == whole.next_end
        assert _sorted(json.loads(prepared.text)) == _sorted(json.loads(whole.text))
        assert json.loads(prepared.text)["type"] == "list.diff"


def _sorted(message: dict) -> dict:
    return {**message, "add": sorted(message["add"], key=lambda e: e["id"])}


# --- the acknowledgements: many in one call ---------------------------------------------------


def test_acknowledgements_of_many_locks_are_recorded_as_each_alone_would_be(world, varied):
    sessions = [services.authenticate(lock.serial, DEVICE_SECRET) for lock in varied]
    snapshots = [lists.build(lock.pk).snapshot() for lock in varied]
    sent = timezone.now() - timedelta(seconds=5)
    assert (
        services.acknowledged_many(
            [
                services.Ack(s, 10, sent, snapshot)
                for s, snapshot in zip(sessions, snapshots, strict=True)
            ]
        )
        == []
    )
    stored = stored_rows(varied)
    for row, snapshot in zip(stored, snapshots, strict=True):
        assert row == (10, "", sent, {**snapshot, services.SNAPSHOT_VERSION: 10})
    Device.objects.filter(lock__in=varied).update(last_error="the lock did not acknowledge")
    one, two, three, four = sessions
    gone = next(iter(snapshots[0]))
    patch: dict[str, str | None] = {gone: None, "999001": "abcdefabcdef"}
    later = timezone.now() - timedelta(seconds=1)
    missed = services.Ack(two, 11, later, since=9, patch={"999002": "abcdefabcdef"})

    assert services.acknowledged_many(
        [
            services.Ack(one, 11, later, since=10, patch=patch),  # applies
            missed,  # the stored fingerprints are not of version 9: not written
            services.Ack(three, 11, later),  # no fingerprints
            services.Ack(four, 11, later, snapshot={"1": "aaaaaaaaaaaa"}),
        ]
    ) == [missed]

    first, second, third, fourth = stored_rows(varied)
    patched = {k: v for k, v in snapshots[0].items() if k != gone}
    assert first == (11, "", later, {**patched, "999001": "abcdefabcdef", "v": 11})
    assert second == (11, "", later, {**snapshots[1], "v": 10})
    assert third == (11, "", later, {**snapshots[2], "v": 10})
    assert fourth == (11, "", later, {"1": "aaaaaaaaaaaa", "v": 11})
    # The one that missed, acknowledged again whole (as syncing.record_acks does).
    services.acknowledged_many([services.Ack(two, 11, later, snapshot=snapshots[1])])
    assert stored_rows(varied)[1] == (11, "", later, {**snapshots[1], "v": 11})


def stored_rows(locks) -> list[tuple]:
    rows = {
        lock_id: rest
        for lock_id, *rest in Device.objects.filter(lock__in=locks).values_list(
            "lock_id", "acked_version", "last_error", "last_push_at", "acked_entries"
        )
    }
    return [tuple(rows[lock.pk]) for lock in locks]


# --- the gateway: the watch round leaves a lock to the sync on its way -------------------------


def test_the_watch_round_leaves_a_lock_to_the_sync_its_notice_asked_for(
    world, gateway, device, monkeypatch
):
    """The notice's sync waits for its batch; the 2-second round (here every
    0.1 s) sees the version raised meanwhile and must not read the whole list
    besides (for 1,000 locks, 1,000 whole lists in the database threads)."""
    gateway.run(device.connect())
    eventually(lambda: acked_version(world) == device.version)
    batched = gateway.gateway._by_keys
    prepare = batched.func

    def slowly(syncs):
        time.sleep(0.5)  # five watch rounds
        return prepare(syncs)

    monkeypatch.setattr(batched, "func", slowly)
    reads = spy_on_reads(monkeypatch)

    dana = give(world, "Dana", pin="2580")

    gateway.run(device.wait_for_version(version(world), timeout=PROMPTLY))
    assert device.decide("pin", "2580").granted
    time.sleep(0.3)
    assert reads == [((dana.pk,), 1)]


def acked_version(world) -> int:
    return Device.objects.values_list("acked_version", flat=True).get(lock=world.lock)


def test_a_notice_names_at_most_a_part_of_the_locks_so_it_fits_a_frame(monkeypatch):
    sent: list[list[int]] = []
    monkeypatch.setattr(routing, "NOTICE_PART", 2)
    monkeypatch.setattr(routing, "_backend", lambda: "direct")
    monkeypatch.setattr(routing, "_direct_notify", lambda part: sent.append([c.lock for c in part]))

    routing.notify_changed_many(Change(lock) for lock in range(1, 6))

    assert sent == [[1, 2], [3, 4], [5]]
