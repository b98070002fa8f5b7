"""A tag whose key was taken back, at the door: the lock no longer holds it
and refuses it as unknown; the platform still knows whose it was, so the
event log reads "key taken back" with the holder's name."""

from __future__ import annotations

from gateway_helpers import PROMPTLY, eventually, version

from doorkeep.events.models import DenyReason, Event, EventKind
from doorkeep.keys.models import CredentialKind
from doorkeep.keys.services import CredentialSpec, HolderSpec, KeySpec, issue_key, revoke_key

UID = "04B1C2D3"


def test_a_tag_whose_key_was_taken_back_is_logged_as_taken_back_with_the_holders_name(
    world, gateway, device
):
    key = issue_key(
        world.alice,
        world.lock.pk,
        KeySpec(
            HolderSpec(name="Tom Tenant", email="tom@example.com"), [CredentialSpec("tag", UID)]
        ),
    )
    gateway.run(device.connect())
    assert gateway.run(device.present("tag", UID)).granted

    revoke_key(world.alice, key.pk)
    gateway.run(device.wait_for_version(version(world), timeout=PROMPTLY))
    refused = gateway.run(device.present("tag", UID))

    assert not refused.granted and refused.reason == "unknown_credential"
    eventually(lambda: device.outbox == [])
    event = Event.objects.get(lock=world.lock, device_seq=refused.seq)
    assert event.kind == EventKind.ACCESS_DENIED
    assert event.reason == DenyReason.REVOKED
    assert (event.person_id, event.key_id) == (key.person_id, key.pk)
    assert event.summary == "Tom Tenant"
    assert event.credential_kind == CredentialKind.TAG
    assert event.lock_outcome == "refused"


def test_a_tag_the_platform_never_knew_stays_unknown(world, gateway, device):
    gateway.run(device.connect())
    refused = gateway.run(device.present("tag", "04EEEEEE"))

    eventually(lambda: device.outbox == [])
    event = Event.objects.get(lock=world.lock, device_seq=refused.seq)
    assert event.reason == DenyReason.UNKNOWN_CREDENTIAL and event.person_id is None
