"""The lock's Device panel (E2), its device secret, and opening doors from the
web UI (R25). Against a real gateway: tests/gateway/test_surfaces.py."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from webhelp import text

from doorkeep.accounts.models import Membership, Role
from doorkeep.accounts.services import create_user
from doorkeep.events.models import Event, EventKind
from doorkeep.gateway import routing
from doorkeep.gateway.models import Device
from doorkeep.gateway.services import DeviceRefused, authenticate
from doorkeep.keys.services import CredentialSpec, HolderSpec, KeySpec, issue_key, revoke_key
from doorkeep.properties.models import Property

ALICE_SECRETS = (
    "Canal House",
    "Front door",
    "DK-TEST-0001",
    "Alice Locks",
    "Keizersgracht",
    "dks_",
)


def phone_key(world, name="Alice", email="alice@example.com"):
    return issue_key(
        world.alice,
        world.lock.pk,
        KeySpec(HolderSpec(name=name, email=email), [CredentialSpec("phone")]),
    )


def lock_url(world):
    return f"/locks/{world.lock.pk}/"


def panel(body: str) -> str:
    part = body[body.index('<section class="card" id="device">') :]
    return part[: part.index("</section>")]


def shown_secret(response) -> str:
    found = re.search(r'id="device-secret-value"[^>]*value="([^"]+)"', response.content.decode())
    assert found
    return found.group(1)


@pytest.fixture
def opens(monkeypatch):
    """The gateway, stubbed: each unlock sent is recorded and succeeds."""
    sent: list[int] = []

    def ok(lock_id: int, request_id: str, *, timeout: float) -> dict[str, object]:
        sent.append(lock_id)
        return {"ok": True}

    monkeypatch.setattr(routing, "send_unlock", ok)
    return sent


# --- the Device panel ---------------------------------------------------------------------------


def test_the_device_panel_shows_a_lock_that_never_connected_as_pending(world, alice):
    phone_key(world, name="Dana", email="dana@example.com")

    body = panel(text(alice.get(lock_url(world))))

    assert "Offline" in body and "never connected" in body
    assert "sync-pending" in body and "Pending" in body
    assert "version 1 on the platform, 0 acknowledged by the lock" in body
    assert "The lock receives the new list when it connects." in body
    assert "New device secret" in body and "data-confirm=" in body


def test_the_device_panel_shows_what_the_lock_reported_in_the_property_time_zone(world, alice):
    Property.objects.filter(pk=world.prop.pk).update(timezone="Asia/Tokyo")
    Device.objects.filter(lock=world.lock).update(
        online=True,
        connected_at=datetime(2030, 1, 1, 0, 0, tzinfo=UTC),
        last_seen_at=datetime(2030, 1, 1, 0, 5, 7, tzinfo=UTC),
        firmware="2.4.1",
        battery=81,
        clock_offset_ms=-350,
    )

    body = panel(text(alice.get(lock_url(world))))

    assert "Online" in body and "since 2030-01-01 09:00" in body
    assert "2030-01-01 09:05:07" in body  # last seen, Tokyo time
    assert "Synced" in body and "version 0 on the platform, 0 acknowledged" in body
    assert "2.4.1" in body and "81\xa0%" in body and "-350 ms" in body


def test_an_offline_lock_shows_when_it_was_last_seen(world, alice):
    Property.objects.filter(pk=world.prop.pk).update(timezone="America/New_York")
    Device.objects.filter(lock=world.lock).update(
        online=False, last_seen_at=datetime(2030, 6, 1, 12, 0, tzinfo=UTC)
    )

    assert "last seen 2030-06-01 08:00" in panel(text(alice.get(lock_url(world))))


def test_a_list_the_lock_did_not_take_is_failed_with_the_error(world, alice):
    phone_key(world, name="Dana", email="dana@example.com")
    Device.objects.filter(lock=world.lock).update(
        last_error="the lock did not acknowledge the list"
    )

    body = panel(text(alice.get(lock_url(world))))

    assert "sync-failed" in body and "Failed" in body
    assert "the lock did not acknowledge the list" in body


def test_a_lock_without_a_device_row_still_shows_its_panel(world, alice):
    Device.objects.filter(lock=world.lock).delete()

    response = alice.get(lock_url(world))

    assert response.status_code == 200
    body = panel(text(response))
    assert "Pending" in body and "Offline" in body and "none yet" in body


def test_a_member_sees_neither_the_panel_nor_the_button(world, bob):
    body = text(bob.get(lock_url(world)))

    assert 'id="device"' not in body and "New device secret" not in body
    assert f"/locks/{world.lock.pk}/open/" not in body


def test_a_building_manager_sees_the_panel_but_cannot_replace_the_secret(world, bob):
    Membership.objects.filter(user=world.bob).update(role=Role.BUILDING_MANAGER)
    digest = Device.objects.get(lock=world.lock).secret_digest

    body = text(bob.get(lock_url(world)))
    assert 'id="device"' in body and "New device secret" not in body

    response = bob.post(f"/locks/{world.lock.pk}/device-secret/")
    assert response.status_code == 403
    assert "Only lock owners can register or remove locks." in text(response)
    assert Device.objects.get(lock=world.lock).secret_digest == digest


# --- the device secret ---------------------------------------------------------------------------


def test_a_new_device_secret_is_shown_once_and_replaces_the_old(world, alice):
    old_digest = Device.objects.get(lock=world.lock).secret_digest

    response = alice.post(f"/locks/{world.lock.pk}/device-secret/")

    assert response.status_code == 200
    secret = shown_secret(response)
    body = text(response)
    assert "Copy it now: this is the only time it is shown." in body
    assert f"doorkeep simulate lock DK-TEST-0001 --secret {secret}" in body
    assert "The previous secret no longer works" in body
    assert "no-cache" in response["Cache-Control"] or "no-store" in response["Cache-Control"]
    assert Device.objects.get(lock=world.lock).secret_digest != old_digest
    assert authenticate("DK-TEST-0001", secret).lock_id == world.lock.pk
    event = Event.objects.get(lock=world.lock, kind=EventKind.DEVICE_SECRET_ROTATED)
    assert event.actor_id == world.alice.pk
    # The lock page does not show it again.
    assert secret not in alice.get(lock_url(world)).content.decode()


def test_a_member_cannot_replace_the_device_secret(world, bob):
    digest = Device.objects.get(lock=world.lock).secret_digest

    response = bob.post(f"/locks/{world.lock.pk}/device-secret/")

    assert response.status_code == 403
    assert "Only lock owners can register or remove locks." in text(response)
    assert "dks_" not in text(response)
    assert Device.objects.get(lock=world.lock).secret_digest == digest


def test_replacing_the_device_secret_needs_a_post(world, alice):
    assert alice.get(f"/locks/{world.lock.pk}/device-secret/").status_code == 405
    assert alice.get(f"/locks/{world.lock.pk}/open/").status_code == 405
    assert alice.get(f"/doors/{world.entry.pk}/open/").status_code == 405


def test_the_old_secret_is_refused_after_replacing_it(world, alice):
    from doorkeep.gateway.services import set_device_secret

    set_device_secret(world.lock, "dks_the-old-one")
    alice.post(f"/locks/{world.lock.pk}/device-secret/")

    with pytest.raises(DeviceRefused):
        authenticate("DK-TEST-0001", "dks_the-old-one")


# --- my doors and the Open buttons -------------------------------------------------------------


def test_my_doors_is_in_the_navigation_and_lists_the_entries_i_can_open(world, alice):
    body = text(alice.get("/doors/"))
    assert 'href="/doors/"' in body and "My doors" in body
    assert "You hold no phone key yet." in body

    phone_key(world)
    body = text(alice.get("/doors/"))

    assert "Front door" in body and "Canal House" in body
    assert f'action="/doors/{world.entry.pk}/open/"' in body


def test_the_lock_page_has_an_open_button_for_owners_managers_and_phone_key_holders(
    world, alice, bob
):
    # The owner opens without a phone key of her own (policy OPEN_ENTRIES).
    assert f'action="/locks/{world.lock.pk}/open/"' in text(alice.get(lock_url(world)))
    # A plain member only with a phone key.
    assert f'action="/locks/{world.lock.pk}/open/"' not in text(bob.get(lock_url(world)))
    key = phone_key(world, name="Bob", email="bob@example.com")
    assert f'action="/locks/{world.lock.pk}/open/"' in text(bob.get(lock_url(world)))
    revoke_key(world.alice, key.pk)
    assert f'action="/locks/{world.lock.pk}/open/"' not in text(bob.get(lock_url(world)))


def test_an_owner_without_a_phone_key_opens_from_the_lock_page_under_her_name(world, alice, opens):
    response = alice.post(f"/locks/{world.lock.pk}/open/")

    assert response.status_code == 302 and response["Location"] == lock_url(world) + "#open"
    assert opens == [world.lock.pk]
    assert "Opened Front door." in text(alice.get(lock_url(world)))
    [attempt] = Event.objects.filter(lock=world.lock, kind=EventKind.ACCESS_GRANTED)
    assert attempt.actor_id == world.alice.pk and attempt.key_id is None
    assert attempt.summary == "Opened from the lock page by Alice Owner"
    assert attempt.data["by"] == "staff" and attempt.lock_outcome == "opened"


def test_a_building_manager_without_a_phone_key_opens_from_the_lock_page(world, bob, opens):
    Membership.objects.filter(user=world.bob).update(role=Role.BUILDING_MANAGER)

    response = bob.post(f"/locks/{world.lock.pk}/open/")

    assert response.status_code == 302
    assert opens == [world.lock.pk]
    assert Event.objects.get(lock=world.lock, kind=EventKind.ACCESS_GRANTED).actor_id == (
        world.bob.pk
    )


def test_my_doors_still_needs_a_phone_key_even_for_the_owner(world, alice, opens):
    response = alice.post(f"/doors/{world.entry.pk}/open/")

    assert response.status_code == 302
    assert "you have no phone key for this entry" in text(alice.get("/doors/"))
    assert opens == []


def test_open_says_opened_and_returns_where_it_was_asked(world, alice, opens):
    phone_key(world)

    response = alice.post(f"/doors/{world.entry.pk}/open/", {"next": "/doors/"})

    assert response.status_code == 302 and response["Location"] == "/doors/"
    assert opens == [world.lock.pk]
    assert "Opened Front door." in text(alice.get("/doors/"))


def test_open_does_not_follow_a_next_to_another_site(world, alice, opens):
    phone_key(world)

    response = alice.post(f"/doors/{world.entry.pk}/open/", {"next": "https://evil.example/"})

    assert response["Location"] == "/doors/"


def test_the_lock_pages_open_button_opens_its_entry(world, alice, opens):
    phone_key(world)

    response = alice.post(f"/locks/{world.lock.pk}/open/")

    assert response.status_code == 302 and response["Location"] == lock_url(world) + "#open"
    assert opens == [world.lock.pk]
    assert "Opened Front door." in text(alice.get(lock_url(world)))
    # With her own phone key, it is her key that opened, not the staff's way.
    attempt = Event.objects.get(lock=world.lock, kind=EventKind.ACCESS_GRANTED)
    assert attempt.key_id is not None and "by" not in attempt.data


def test_an_offline_lock_redirects_with_the_reason_and_is_no_server_error(world, alice, caplog):
    phone_key(world)

    for url, back in (
        (f"/doors/{world.entry.pk}/open/", "/doors/"),
        (f"/locks/{world.lock.pk}/open/", lock_url(world) + "#open"),
    ):
        with caplog.at_level("WARNING"):
            response = alice.post(url)
        # Post/redirect/get: a reload of the page shown sends nothing again.
        assert response.status_code == 302 and response["Location"] == back, url
        body = text(alice.get(response["Location"]))
        assert "The lock is offline" in body, url
        assert "The lock is offline" not in text(alice.get(response["Location"]))  # shown once
    assert not [r for r in caplog.records if r.levelname in ("ERROR", "CRITICAL")]
    failed = Event.objects.filter(lock=world.lock, kind="unlock.failed", reason="lock_offline")
    assert failed.count() == 2
    assert not Event.objects.filter(lock=world.lock, kind=EventKind.ACCESS_GRANTED).exists()


@pytest.mark.parametrize(
    ("error", "message"),
    [
        (routing.LockTimeout("The lock did not answer in time."), "did not answer in time"),
        (routing.LockRefused("The lock refused to open: jammed"), "refused to open"),
    ],
)
def test_each_failure_shows_its_message_after_the_redirect(
    world, alice, monkeypatch, error, message
):
    phone_key(world)

    def fail(lock_id: int, request_id: str, *, timeout: float) -> dict[str, object]:
        raise error

    monkeypatch.setattr(routing, "send_unlock", fail)

    for url in (f"/doors/{world.entry.pk}/open/", f"/locks/{world.lock.pk}/open/"):
        response = alice.post(url, follow=True)
        assert response.redirect_chain and response.status_code == 200, url
        assert message in text(response), url


def test_a_key_taken_back_is_refused_with_the_reason(world, alice, opens):
    revoke_key(world.alice, phone_key(world).pk)

    response = alice.post(f"/doors/{world.entry.pk}/open/", follow=True)

    assert "You cannot open Front door: your key was taken back." in text(response)
    assert opens == []


def test_a_member_without_a_key_is_refused_with_the_reason(world, bob, opens):
    response = bob.post(f"/locks/{world.lock.pk}/open/", follow=True)

    assert "you have no phone key for this entry" in text(response)
    assert opens == []


def test_a_guest_outside_the_organization_opens_from_my_doors(world, opens):
    guest = create_user("gina@example.com", "correct horse battery staple", name="Gina")
    phone_key(world, name="Gina", email="gina@example.com")
    client = world.client(guest)

    assert "Front door" in text(client.get("/doors/"))
    assert client.get(lock_url(world)).status_code == 404  # not a member: no lock page

    response = client.post(f"/doors/{world.entry.pk}/open/")

    assert response.status_code == 302
    assert opens == [world.lock.pk]


# --- an outsider ---------------------------------------------------------------------------------


def test_an_outsider_gets_404_everywhere_and_changes_nothing(world, charlie, opens):
    phone_key(world)
    digest = Device.objects.get(lock=world.lock).secret_digest
    events = Event.objects.filter(organization=world.org).count()

    for url in (
        f"/locks/{world.lock.pk}/device-secret/",
        f"/locks/{world.lock.pk}/open/",
        f"/doors/{world.entry.pk}/open/",
    ):
        response = charlie.post(url, {"next": "/doors/"})
        assert response.status_code == 404, url
        body = text(response)
        for secret in ALICE_SECRETS:
            assert secret not in body, (url, secret)

    body = text(charlie.get("/doors/"))
    for secret in ALICE_SECRETS:
        assert secret not in body
    assert opens == []
    assert Device.objects.get(lock=world.lock).secret_digest == digest
    assert Event.objects.filter(organization=world.org).count() == events


def test_pages_need_a_sign_in(world):
    anonymous = world.client(None)
    assert anonymous.get("/doors/")["Location"].startswith("/accounts/login/")
    response = anonymous.post(f"/locks/{world.lock.pk}/device-secret/")
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


@pytest.mark.parametrize("entry_id", ["99999999999999999999", "9223372036854775808", "0"])
def test_opening_a_door_with_an_id_out_of_range_is_not_found(world, alice, entry_id):
    response = alice.post(f"/doors/{entry_id}/open/")

    assert response.status_code == 404
    assert not Event.objects.filter(kind__startswith="unlock").exists()
