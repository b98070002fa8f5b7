"""Keeping a lock's list in step (full list, differences, acknowledgements),
deciding offline with the platform's rules, and the events a lock uploads."""

from __future__ import annotations

import json
import time
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from django.utils import timezone
from gateway_helpers import PROMPTLY, eventually, give, slow_down, version

from doorkeep.events.models import Event
from doorkeep.events.selectors import page
from doorkeep.gateway import lists, protocol, server, services, syncing
from doorkeep.gateway.models import Device, SyncState
from doorkeep.keys import access
from doorkeep.keys.models import Key
from doorkeep.keys.services import (
    revoke_key,
    update_key,
)
from doorkeep.locks.models import Lock
from doorkeep.properties.models import Property


def list_messages(device) -> list[str]:
    return [m["type"] for m in device.received if m["type"].startswith("list.")]


def platform_list(world) -> dict[int, dict]:
    lock = Lock.objects.select_related("entry__property").get(pk=world.lock.pk)
    return {e["id"]: e for e in lists.build(lock).entries}


def acked(world) -> int:
    return Device.objects.get(lock=world.lock).acked_version


# --- full list, differences, list.ok ------------------------------------------------------------


def test_a_lock_reconnecting_with_the_version_it_acknowledged_and_no_change_gets_list_ok(
    world, gateway, device
):
    give(world, pin="2580")
    gateway.run(device.connect())
    eventually(lambda: acked(world) == device.version)
    gateway.run(device.go_offline())
    device.received.clear()

    gateway.run(device.connect())

    assert list_messages(device) == ["list.ok"]
    assert device.received[1] == {"type": "list.ok", "version": version(world)}
    assert device.decide("pin", "2580").granted


def test_small_changes_while_offline_come_as_a_difference_after_reconnecting(
    world, gateway, device
):
    dana = give(world, pin="2580")
    give(world, "Erin", tag="04A22B1C")
    gateway.run(device.connect())
    eventually(lambda: acked(world) == device.version)
    gateway.run(device.go_offline())
    before = device.version
    revoke_key(world.alice, dana.pk)
    give(world, "Finn", pin="1357")
    device.received.clear()

    gateway.run(device.connect())

    assert list_messages(device) == ["list.diff"]
    diff = device.received[1]
    assert diff["from"] == before
    assert diff["version"] == version(world) == device.version
    assert [e["kind"] for e in diff["add"]] == ["pin"]
    assert len(diff["remove"]) == 1
    assert device.decide("pin", "2580").reason == "unknown_credential"
    assert device.decide("pin", "1357").granted
    assert device.decide("tag", "04A22B1C").granted
    assert device.entries == platform_list(world)
    eventually(lambda: acked(world) == device.version)


def stored_snapshot(world) -> dict[str, str]:
    """The fingerprints stored for the version the lock acknowledged."""
    snapshot = services.snapshot_of(Device.objects.get(lock=world.lock))
    assert snapshot is not None, "the stored snapshot is not that of the acknowledged version"
    return snapshot


def test_after_a_difference_only_the_changed_fingerprints_are_written_and_they_match_the_list(
    world, gateway, device
):
    dana = give(world, pin="2580", tag="04A22B1C")
    give(world, "Erin", pin="1357")
    gateway.run(device.connect())
    eventually(lambda: acked(world) == device.version)
    assert stored_snapshot(world) == lists.build(world.lock).snapshot()
    untouched = {k: v for k, v in stored_snapshot(world).items()}

    revoke_key(world.alice, dana.pk)
    finn = give(world, "Finn", pin="4444")
    update_key(
        world.alice, finn.pk, valid_from=None, valid_until=timezone.now() + timedelta(days=3)
    )
    gateway.run(device.wait_for_version(version(world), timeout=PROMPTLY))
    eventually(lambda: acked(world) == version(world))

    assert [m["type"] for m in device.received if m["type"].startswith("list.")][-1] == "list.diff"
    now = lists.build(world.lock).snapshot()
    assert stored_snapshot(world) == now
    erin = [k for k in untouched if k in now]
    assert erin and all(now[k] == untouched[k] for k in erin)
    # A reconnect after more changes gets exactly the difference from it.
    gateway.run(device.go_offline())
    give(world, "Gus", pin="8642")
    device.received.clear()
    gateway.run(device.connect())
    assert list_messages(device) == ["list.diff"]
    assert [e["kind"] for e in device.received[1]["add"]] == ["pin"]
    assert device.received[1]["remove"] == []
    assert device.entries == platform_list(world)


def test_a_snapshot_that_moved_on_is_not_patched_but_written_whole(world, gateway, device):
    give(world, pin="2580")
    gateway.run(device.connect())
    eventually(lambda: acked(world) == device.version)
    session = gateway.gateway.connections[world.lock.pk].session
    current = lists.build(world.lock)

    sent = timezone.now()
    ack = services.Ack(session, current.version, sent, since=current.version - 5, patch={})

    assert services.acknowledged_many([ack]) == [ack]  # not patched
    assert stored_snapshot(world) == current.snapshot()
    services.acknowledged_many([services.Ack(session, current.version, sent, current.snapshot())])
    assert stored_snapshot(world) == current.snapshot()


def test_a_lock_whose_stored_snapshot_is_of_another_version_gets_the_full_list(
    world, gateway, device
):
    """A gateway that stopped between recording the ack and storing the
    fingerprints leaves a snapshot of an older version behind."""
    give(world, pin="2580")
    gateway.run(device.connect())
    eventually(lambda: acked(world) == device.version)
    gateway.run(device.go_offline())
    row = Device.objects.get(lock=world.lock)
    Device.objects.filter(pk=row.pk).update(
        acked_entries={**row.acked_entries, services.SNAPSHOT_VERSION: row.acked_version - 1}
    )
    give(world, "Erin", pin="1357")
    device.received.clear()

    gateway.run(device.connect())

    assert list_messages(device) == ["list.full"]
    assert device.entries == platform_list(world)
    eventually(lambda: acked(world) == device.version)
    assert stored_snapshot(world) == lists.build(world.lock).snapshot()


def test_fingerprints_change_with_every_field_of_an_entry():
    row = (7, "pin", "ab" * 32, None, None, None, None, None)
    seen = {lists.fingerprint(row)}
    moment = datetime(2026, 1, 2, 3, 4, 5, tzinfo=ZoneInfo("UTC"))
    for changed in [
        (7, "tag", "ab" * 32, None, None, None, None, None),
        (7, "pin", "cd" * 32, None, None, None, None, None),
        (7, "pin", "ab" * 32, moment, None, None, None, None),
        (7, "pin", "ab" * 32, None, moment, None, None, None),
        (
            7,
            "pin",
            "ab" * 32,
            None,
            None,
            '[{"days":["mon"],"start":"07:00","end":"09:00"}]',
            None,
            None,
        ),
        (7, "pin", "ab" * 32, None, None, None, None, moment + timedelta(days=1)),
    ]:
        seen.add(lists.fingerprint(changed))
    assert len(seen) == 7
    # The same entry from a naive (SQLite) or an aware time is the same fingerprint.
    naive = (7, "pin", "x", moment.replace(tzinfo=None), None, None, None, None)
    assert lists.fingerprint(naive) == lists.fingerprint(
        (7, "pin", "x", moment, None, None, None, None)
    )


def test_a_lock_that_reports_version_0_gets_the_full_list(world, gateway, device):
    give(world, pin="2580")
    gateway.run(device.connect())
    eventually(lambda: acked(world) == device.version)
    gateway.run(device.go_offline())
    device.version, device.entries = 0, {}  # it lost its memory
    device.received.clear()

    gateway.run(device.connect())

    assert list_messages(device) == ["list.full"]
    assert device.entries == platform_list(world)
    assert device.decide("pin", "2580").granted


def test_a_lock_that_reports_a_version_it_never_acknowledged_gets_the_full_list(
    world, gateway, device
):
    give(world, pin="2580")
    gateway.run(device.connect())
    eventually(lambda: acked(world) == device.version)
    gateway.run(device.go_offline())
    give(world, "Erin", pin="1357")
    device.version += 1  # claims the newer version, which it never received
    device.received.clear()

    gateway.run(device.connect())

    assert list_messages(device) == ["list.full"]
    assert device.entries == platform_list(world)
    assert device.decide("pin", "1357").granted


def test_a_lock_far_behind_gets_the_full_list(world, gateway, device, monkeypatch):
    monkeypatch.setattr(syncing, "MAX_DIFF_ENTRIES", 3)
    give(world, pin="2580")
    gateway.run(device.connect())
    eventually(lambda: acked(world) == device.version)
    gateway.run(device.go_offline())
    for n, pin in enumerate(["1111", "2222", "3333", "4444", "5555"]):
        give(world, f"Guest{n}", pin=pin)
    device.received.clear()

    gateway.run(device.connect())

    assert list_messages(device) == ["list.full"]
    assert len(device.entries) == 6
    assert device.entries == platform_list(world)


def test_changes_while_a_push_waits_for_its_ack_arrive_as_a_difference_from_what_the_lock_holds(
    world, gateway, device
):
    """A key issued and taken back while the lock is slow to acknowledge must
    not stay on the lock (a difference is always from the version it holds)."""
    give(world, "Erin", tag="04A22B1C")
    gateway.run(device.connect())
    eventually(lambda: acked(world) == device.version)
    slow_down(device, 0.3)
    quick = give(world, "Quick", pin="2580")
    give(world, "Stays", pin="1357")
    revoke_key(world.alice, quick.pk)

    gateway.run(device.wait_for_version(version(world), timeout=PROMPTLY))

    assert device.decide("pin", "2580").reason == "unknown_credential"
    assert device.decide("pin", "1357").granted
    assert device.entries == platform_list(world)
    assert not device.errors
    eventually(lambda: acked(world) == version(world))


def test_a_window_that_ended_while_the_lock_was_offline_comes_as_a_new_version(
    world, gateway, device
):
    give(world, pin="2580", valid_until=timezone.now() + timedelta(seconds=0.5))
    give(world, "Erin", pin="1357")
    gateway.run(device.connect())
    eventually(lambda: acked(world) == device.version)
    gateway.run(device.go_offline())
    before = device.version
    time.sleep(0.7)

    gateway.run(device.connect())

    assert device.version > before
    assert device.decide("pin", "2580").reason in ("expired", "unknown_credential")
    assert device.entries == platform_list(world)


# --- the same rules as the platform -------------------------------------------------------------


def test_the_lock_decides_as_the_platform_does_with_windows_and_schedules_in_local_time(
    world, gateway, device
):
    tz = ZoneInfo("America/New_York")
    Property.objects.filter(pk=world.prop.pk).update(timezone="America/New_York")
    today = timezone.now().astimezone(tz).date()
    monday = today + timedelta(days=7 + (7 - today.weekday()) % 7)  # a Monday, a week or more away

    def local(day: int, hh: int, mm: int = 0) -> datetime:
        return datetime(monday.year, monday.month, monday.day, hh, mm, tzinfo=tz) + timedelta(
            days=day
        )

    window_start, window_end = local(0, 0), local(14, 0)
    give(
        world,
        pin="2580",
        tag="04A22B1C",
        valid_from=window_start,
        valid_until=window_end,
        schedule=[
            {"days": ["mon", "tue", "wed", "thu", "fri"], "start": "09:00", "end": "17:00"},
            {"days": ["fri"], "start": "22:00", "end": "02:00"},  # past midnight into Saturday
        ],
    )
    gateway.run(device.connect())
    assert device.timezone == "America/New_York"
    lock = Lock.objects.select_related("entry__property").get(pk=world.lock.pk)

    moments = {
        "the Sunday before the window": local(-1, 10),
        "Monday 10:00": local(0, 10),
        "Monday 08:59": local(0, 8, 59),
        "Monday 17:00 (the end is not in)": local(0, 17),
        "Friday 23:30": local(4, 23, 30),
        "Saturday 01:59, after midnight": local(5, 1, 59),
        "Saturday 02:00": local(5, 2),
        "Saturday 10:00": local(5, 10),
        "Wednesday of the second week 12:00": local(9, 12),
        "the Monday the window ends, 10:00": local(14, 10),
    }
    seen = {}
    for label, moment in moments.items():
        for kind, value in (("pin", "2580"), ("tag", "04:a2:2b:1c")):
            here = device.decide(kind, value, at=moment)
            there = access.decide(lock, kind, value, at=moment)
            assert (here.granted, here.reason) == (there.granted, there.reason), (label, kind)
        seen[label] = here.reason or "granted"

    assert seen == {
        "the Sunday before the window": "not_yet_valid",
        "Monday 10:00": "granted",
        "Monday 08:59": "outside_schedule",
        "Monday 17:00 (the end is not in)": "outside_schedule",
        "Friday 23:30": "granted",
        "Saturday 01:59, after midnight": "granted",
        "Saturday 02:00": "outside_schedule",
        "Saturday 10:00": "outside_schedule",
        "Wednesday of the second week 12:00": "granted",
        "the Monday the window ends, 10:00": "expired",
    }
    # In UTC, Monday 10:00 in New York is 14:00 or 15:00: the zone matters.
    assert device.decide("pin", "2580", at=local(0, 8, 30)).reason == "outside_schedule"


def test_a_key_under_an_organization_key_ends_on_the_lock_when_the_organization_key_ends(
    world, gateway, device
):
    now = timezone.now()
    parent = Key.objects.create(
        lock=world.lock,
        organization=world.org,
        lock_owner=world.org,
        holder_organization=world.charlie_org,
        valid_until=now + timedelta(days=3),
    )
    child = give(world, pin="2580", valid_until=now + timedelta(days=30))
    Key.objects.filter(pk=child.pk).update(parent=parent, organization=world.charlie_org)
    gateway.run(device.connect())
    lock = Lock.objects.select_related("entry__property").get(pk=world.lock.pk)

    for moment in (now + timedelta(days=1), now + timedelta(days=5)):
        here = device.decide("pin", "2580", at=moment)
        there = access.decide(lock, "pin", "2580", at=moment)
        assert (here.granted, here.reason) == (there.granted, there.reason)
    assert device.decide("pin", "2580", at=now + timedelta(days=5)).reason == "expired"


def test_a_changed_window_reaches_the_lock(world, gateway, device):
    key = give(world, pin="2580")
    gateway.run(device.connect())
    later = timezone.now() + timedelta(days=2)

    update_key(world.alice, key.pk, valid_from=later, valid_until=None)

    gateway.run(device.wait_for_version(version(world), timeout=PROMPTLY))
    assert device.decide("pin", "2580").reason == "not_yet_valid"
    assert device.decide("pin", "2580", at=later + timedelta(hours=1)).granted


# --- events ------------------------------------------------------------------------------------


def test_events_uploaded_out_of_order_are_shown_in_the_order_they_happened_and_stored_once(
    world, gateway, device
):
    give(world, pin="2580")
    gateway.run(device.connect())
    gateway.run(device.go_offline())
    base = timezone.now() - timedelta(hours=2)
    # The lock's clock was set back in between: its numbering is not the order in time.
    third = device.decide("pin", "2580", at=base + timedelta(minutes=30))
    first = device.decide("pin", "0000", at=base)
    second = device.decide("pin", "2580", at=base + timedelta(minutes=10))
    kept = list(device.outbox)

    gateway.run(device.connect())
    assert device.outbox == []
    device.outbox = [kept[2], kept[0]]  # the ack got lost: sent again, in another batch
    gateway.run(device.flush())
    device.outbox = list(reversed(kept))
    gateway.run(device.flush())

    uploaded = Event.objects.filter(lock=world.lock, device_seq__isnull=False)
    shown = page(uploaded, cursor=None, limit=50).events
    assert [e.device_seq for e in shown] == [third.seq, second.seq, first.seq]  # newest first
    assert [e.kind for e in shown] == ["access.granted", "access.granted", "access.denied"]
    assert all(e.received_at > e.occurred_at + timedelta(minutes=80) for e in shown)
    assert shown[2].data["device_clock"] == kept[1]["at"]
    assert shown[2].reason == "unknown_credential"


def test_a_lock_that_lost_its_event_counter_numbers_new_events_above_the_stored_ones(
    world, gateway, device
):
    give(world, pin="2580")
    gateway.run(device.connect())
    for _ in range(3):
        gateway.run(device.present("pin", "2580"))
    assert Event.objects.filter(lock=world.lock, device_seq__isnull=False).count() == 3
    gateway.run(device.go_offline())
    reborn = gateway.lock(world.lock.serial)  # the same lock after a reset: counter at 0
    reborn.decide("pin", "0000")  # decided before it reached the platform

    gateway.run(reborn.connect())
    gateway.run(reborn.present("pin", "1234"))

    stored = Event.objects.filter(lock=world.lock, device_seq__isnull=False)
    assert stored.count() == 5
    assert sorted(stored.values_list("device_seq", flat=True)) == [1, 2, 3, 4, 5]


def test_a_lock_back_after_a_long_time_offline_uploads_every_kept_event_in_batches(
    world, gateway, device
):
    give(world, pin="2580")
    gateway.run(device.connect())
    gateway.run(device.go_offline())
    start = timezone.now() - timedelta(days=3)
    for n in range(1200):
        device.decide("pin", "2580" if n % 3 else "99999999", at=start + timedelta(minutes=n))
    sent = []
    device.trace = lambda way, m: sent.append(m) if m["type"] == "events" else None

    gateway.run(device.connect(timeout=20))

    assert device.outbox == []
    assert Event.objects.filter(lock=world.lock, device_seq__isnull=False).count() == 1200
    assert len(sent) >= 3
    assert all(len(json.dumps(m).encode()) <= protocol.MAX_MESSAGE_BYTES for m in sent)
    assert not device.errors


# --- acknowledgements and the sync state ----------------------------------------------------------


def test_a_list_push_never_acknowledged_marks_the_sync_state_failed(
    world, gateway, device, monkeypatch
):
    monkeypatch.setattr(server, "ACK_TIMEOUT", 0.3)
    gateway.run(device.connect())
    apply = device._apply

    async def silent(message):  # applies the list but never says so
        device.version = message["version"]

    device._apply = silent
    give(world, pin="2580")

    eventually(lambda: Device.objects.get(lock=world.lock).last_error != "")
    row = Device.objects.get(lock=world.lock)
    assert row.sync_state(version(world)) == SyncState.FAILED
    assert f"list version {version(world)}" in row.last_error
    assert row.acked_version < version(world)

    # A lock that acknowledges again is in step again.
    device._apply = apply
    gateway.run(device.go_offline())
    device.version = 0
    gateway.run(device.connect())
    eventually(lambda: acked(world) == version(world))
    row = Device.objects.get(lock=world.lock)
    assert row.sync_state(version(world)) == SyncState.SYNCED
    assert row.last_error == ""


def test_the_list_holds_exactly_the_live_credentials_of_the_current_owner(world):
    from doorkeep.keys.models import Credential, KeyCredential

    live = give(world, "Live", pin="1111", tag="04A22B1C")
    later = give(world, "Later", pin="2222", valid_from=timezone.now() + timedelta(days=2))
    taken_back = give(world, "Gone", pin="3333")
    revoke_key(world.alice, taken_back.pk)
    expired = give(world, "Expired", pin="4444", valid_until=timezone.now() + timedelta(days=1))
    Key.objects.filter(pk=expired.pk).update(valid_until=timezone.now() - timedelta(minutes=1))
    switched_off = give(world, "Off", tag="0A0B0C0D")
    Credential.objects.filter(person=switched_off.person).update(deactivated_at=timezone.now())
    give(world, "Phone", phone="")
    old_owner = give(world, "Old", pin="5555")
    Key.objects.filter(pk=old_owner.pk).update(lock_owner=world.charlie_org)

    listed = lists.build(world.lock.pk)

    expected = set(
        KeyCredential.objects.filter(key__in=[live, later], active=True).values_list(
            "pk", flat=True
        )
    )
    assert set(listed.rows) == expected
    assert {e["kind"] for e in listed.entries} == {"pin", "tag"}
    assert next(e for e in listed.entries if "from" in e)["from"].endswith("Z")
