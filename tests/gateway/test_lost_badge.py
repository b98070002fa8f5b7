"""A badge reported lost, at the door: it leaves the lock's list at once, the
lock refuses it, and the event log says why (the lock sends the UID it read,
the platform recognises a lost badge) rather than "unknown credential"."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from gateway_helpers import DEVICE_SECRET, PROMPTLY, eventually, version

from doorkeep.badges.models import Badge
from doorkeep.badges.services import reactivate, register_existing_badge, report_lost
from doorkeep.events.models import DenyReason, Event, EventKind
from doorkeep.gateway import protocol, services
from doorkeep.gateway.services import set_device_secret
from doorkeep.keys.access import decide
from doorkeep.keys.models import Credential, CredentialKind, Key, Person
from doorkeep.keys.services import CredentialSpec, HolderSpec, KeySpec, issue_key
from doorkeep.residents.services import ResidentSpec, add_resident, add_unit

UID = "04A22B1C"
MIFARE_CLASSIC_1K = {"atqa": "0004", "sak": "08"}


@dataclass
class Holder:
    person: Person
    key: Key
    badge: Badge


@pytest.fixture
def rosa(world: Any) -> Holder:
    """Rosa lives at Alice's Canal House, holds a key to Alice's lock (a PIN)
    and has an active badge, registered through the badge service: it opens
    the lock under her key."""
    unit = add_unit(world.alice, world.prop.pk, "A-12")
    residency = add_resident(
        world.alice,
        world.prop.pk,
        ResidentSpec(
            name="Rosa Resident",
            email="rosa@example.com",
            move_in=date(2024, 1, 1),
            unit_id=unit.pk,
        ),
    )
    key = issue_key(
        world.alice,
        world.lock.pk,
        KeySpec(HolderSpec(person_id=residency.person_id), [CredentialSpec("pin", "24681357")]),
    )
    badge = register_existing_badge(
        world.alice, world.prop.pk, residency.person_id, uid=UID, **MIFARE_CLASSIC_1K
    )
    assert badge.is_active
    return Holder(residency.person, key, badge)


def tags_on(device: Any) -> set[str]:
    return {e["match"] for e in device.entries.values() if e["kind"] == "tag"}


def test_a_lost_badge_leaves_the_lock_at_once_and_its_refusal_is_logged_as_lost(
    world, gateway, device, rosa
):
    gateway.run(device.connect())
    assert UID in tags_on(device)
    assert gateway.run(device.present("tag", UID)).granted

    report = report_lost(world.alice, rosa.badge.pk)
    assert report.changed and report.locks == 1
    gateway.run(device.wait_for_version(version(world), timeout=PROMPTLY))
    assert UID not in tags_on(device)

    refused = gateway.run(device.present("tag", "04:a2:2b:1c"))
    assert not refused.granted and refused.reason == "unknown_credential"
    eventually(lambda: device.outbox == [])
    event = Event.objects.get(lock=world.lock, device_seq=refused.seq)
    assert event.kind == EventKind.ACCESS_DENIED
    assert event.reason == DenyReason.BADGE_LOST
    assert event.person_id == rosa.person.pk
    assert event.key_id == rosa.key.pk
    assert event.summary == "Rosa Resident"
    assert event.credential_kind == CredentialKind.TAG
    assert event.data["tag"] == UID
    # The opening before it still names her, as granted.
    opened = Event.objects.get(lock=world.lock, device_seq=refused.seq - 1)
    assert opened.kind == EventKind.ACCESS_GRANTED and opened.person_id == rosa.person.pk


def test_the_platform_decides_a_lost_badge_is_lost(world, rosa):
    assert decide(world.lock, "tag", UID).granted
    report_lost(world.alice, rosa.badge.pk)
    decision = decide(world.lock, "tag", UID)
    assert not decision.granted
    assert decision.reason == DenyReason.BADGE_LOST
    assert decision.key is not None and decision.key.person_id == rosa.person.pk


def test_a_found_badge_switched_on_again_opens_the_lock_again(world, gateway, device, rosa):
    gateway.run(device.connect())
    report_lost(world.alice, rosa.badge.pk)
    gateway.run(device.wait_for_version(version(world), timeout=PROMPTLY))
    assert UID not in tags_on(device)
    reactivate(world.alice, rosa.badge.pk)
    gateway.run(device.wait_for_version(version(world), timeout=PROMPTLY))
    assert UID in tags_on(device)
    assert gateway.run(device.present("tag", UID)).granted


def test_a_tag_nobody_lost_stays_unknown_and_a_pin_never_travels(world, gateway, device, rosa):
    gateway.run(device.connect())
    stranger = gateway.run(device.present("tag", "04FFEEDD"))
    wrong_pin = gateway.run(device.present("pin", "13572468"))
    eventually(lambda: device.outbox == [])
    unknown = Event.objects.get(lock=world.lock, device_seq=stranger.seq)
    assert unknown.reason == DenyReason.UNKNOWN_CREDENTIAL
    assert unknown.person_id is None and unknown.summary == ""
    assert unknown.data["tag"] == "04FFEEDD"
    pin = Event.objects.get(lock=world.lock, device_seq=wrong_pin.seq)
    assert pin.reason == DenyReason.UNKNOWN_CREDENTIAL and "tag" not in pin.data


def test_the_simulated_lock_sends_the_uid_of_an_unknown_tag_only(world, gateway, device, rosa):
    gateway.run(device.connect())
    gateway.run(device.go_offline())
    device.decide("tag", "04ffeedd")
    device.decide("tag", UID)
    device.decide("pin", "13572468")
    device.decide("tag", "not a tag")
    unknown, known, pin, malformed = device.outbox
    assert unknown["tag"] == "04FFEEDD" and unknown["entry"] is None
    assert "tag" not in known and known["outcome"] == "granted"
    assert "tag" not in pin and "tag" not in malformed


# --- the gateway's side, without the wire ----------------------------------------------------


def session_of(world: Any) -> services.Session:
    set_device_secret(world.lock, DEVICE_SECRET)
    return services.authenticate(world.lock.serial, DEVICE_SECRET)


def denied_tag(seq: int, tag: str | None = None, **extra: Any) -> dict[str, Any]:
    event = {
        "seq": seq,
        "at": protocol.now_iso(),
        "outcome": "denied",
        "reason": "unknown_credential",
        "kind": "tag",
        "entry": None,
    }
    if tag is not None:
        event["tag"] = tag
    return event | extra


def test_lost_badges_of_a_whole_batch_are_found_in_one_query(world, rosa):
    report_lost(world.alice, rosa.badge.pk)
    session = session_of(world)
    batch = protocol.events(
        {
            "type": "events",
            "events": [denied_tag(1, UID), denied_tag(2, "04FFEEDD"), denied_tag(3, UID.lower())],
        }
    )
    with CaptureQueriesContext(connection) as queries:
        assert services.store_events(session, batch) == [1, 2, 3]
    credential_reads = [q for q in queries if 'FROM "keys_credential"' in q["sql"]]
    assert len(credential_reads) == 1
    stored = {e.device_seq: e for e in Event.objects.filter(lock=world.lock, device_seq__gt=0)}
    assert stored[1].reason == stored[3].reason == DenyReason.BADGE_LOST
    assert stored[1].person_id == stored[3].person_id == rosa.person.pk
    assert stored[2].reason == DenyReason.UNKNOWN_CREDENTIAL and stored[2].person_id is None


def test_a_batch_without_tags_reads_no_credential(world, rosa):
    session = session_of(world)
    batch = protocol.events({"type": "events", "events": [denied_tag(1)]})
    with CaptureQueriesContext(connection) as queries:
        services.store_events(session, batch)
    assert not [q for q in queries if 'FROM "keys_credential"' in q["sql"]]


def test_another_organizations_lost_badge_is_not_named(world, rosa):
    """The same UID, lost in Charlie's organization: Alice's lock does not
    know it, and Alice's log must not name Charlie's people."""
    other = Person.objects.create(organization=world.charlie_org, name="Carl Charlie")
    Credential.objects.create(
        person=other,
        kind=CredentialKind.TAG,
        lookup="04AABBCC",
        display="04AABBCC",
        deactivated_at=timezone.now(),
        deactivated_reason=DenyReason.BADGE_LOST,
    )
    batch = protocol.events({"type": "events", "events": [denied_tag(1, "04AABBCC")]})
    services.store_events(session_of(world), batch)
    event = Event.objects.get(lock=world.lock, device_seq=1)
    assert event.reason == DenyReason.UNKNOWN_CREDENTIAL and event.person_id is None


def test_a_credential_switched_off_for_another_reason_is_not_a_lost_badge(world, rosa):
    Credential.objects.filter(pk=rosa.badge.credential_id).update(
        deactivated_at=timezone.now(), deactivated_reason=DenyReason.CREDENTIAL_DEACTIVATED
    )
    batch = protocol.events({"type": "events", "events": [denied_tag(1, UID)]})
    services.store_events(session_of(world), batch)
    assert Event.objects.get(lock=world.lock, device_seq=1).reason == "unknown_credential"


@pytest.mark.parametrize(
    ("given", "kept"),
    [
        ("04A22B1C", "04A22B1C"),
        ("04a22b1c", "04A22B1C"),
        ("04A22B1C2D3E4F", "04A22B1C2D3E4F"),
        ("04A22B1C2D3E4F5A6B7C", "04A22B1C2D3E4F5A6B7C"),
        ("04:A2:2B:1C", None),  # separators: not the form the protocol asks for
        ("04A22B1", None),
        ("04A22B1C2D", None),
        ("04A22B1G", None),
        ("04A22B1C" * 3, None),
        ("０４Ａ２２Ｂ１Ｃ", None),  # full-width digits are not hex
        (12345678, None),
        (None, None),
        ("", None),
    ],
)
def test_a_malformed_tag_is_dropped_and_the_event_kept(given, kept):
    [event] = protocol.events({"type": "events", "events": [denied_tag(7, given)]})
    assert event["seq"] == 7 and event["reason"] == "unknown_credential"
    assert event.get("tag") == kept


@pytest.mark.parametrize(
    "other",
    [
        {"outcome": "granted", "reason": ""},
        {"kind": "pin"},
        {"kind": "remote"},
        {"entry": 3, "reason": "expired"},
    ],
)
def test_a_tag_on_any_other_event_is_ignored(other):
    [event] = protocol.events({"type": "events", "events": [denied_tag(8, UID, **other)]})
    assert "tag" not in event
