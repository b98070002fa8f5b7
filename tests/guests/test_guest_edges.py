"""Guests at the edges: other tenants, ended shares, licences, policy changes,
addresses that changed hands, out-of-range input."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import time_machine
from django.utils import timezone
from guest_helpers import PASSWORD, GuestWorld, open_policy, phone_key

from doorkeep.accounts.services import create_user
from doorkeep.core.errors import Conflict, PermissionDenied
from doorkeep.guests import presence, selectors
from doorkeep.guests import services as guests
from doorkeep.guests.models import InvitationStatus, Presence
from doorkeep.keys.models import Key
from doorkeep.licensing.models import Period
from doorkeep.licensing.state import licence_of
from doorkeep.locks.models import Lock


def test_tap_page_does_not_show_another_tenants_entry(gw: GuestWorld) -> None:
    """GET /guest/tap/ renders the entry's name for any entry id: any signed-in
    user can read the entry names of every organization. Must be 404."""
    w = gw.w
    page = w.client(gw.gina).get(f"/guest/tap/?entry={w.charlie_entry.pk}&panel=1&code=123456")
    assert page.status_code == 404
    assert "Shed door" not in page.content.decode()


def test_an_ended_share_gives_its_key_back(gw: GuestWorld) -> None:
    """ADR 0007: 'the last invitation ending takes the key back'. Nothing does:
    the guest's keys stay live forever, holding licence keys and user places."""
    invitation = gw.invite(ends_at=timezone.now() + timedelta(days=2))
    guests.accept(gw.gina, invitation.pk)
    before = licence_of(gw.w.lock.pk).keys_issued
    with time_machine.travel(timezone.now() + timedelta(days=3)):
        assert guests.report_expired() == 1
        invitation.refresh_from_db()
        assert invitation.state == InvitationStatus.EXPIRED
        assert not Key.objects.filter(person__user=gw.gina, revoked_at__isnull=True).exists()
        assert licence_of(gw.w.lock.pk).keys_issued == before - 1


def _end_management(lock: Lock) -> None:
    now = timezone.now()
    Period.objects.filter(lock=lock).update(
        starts_at=now - timedelta(days=200), ends_at=now - timedelta(days=1)
    )


def test_take_back_only_lock_does_not_extend_a_shared_guest_key(gw: GuestWorld) -> None:
    """On a lock whose management ended, nothing but taking back is allowed
    (R6). A second invitation of the same guest silently extends the existing
    guest key (valid_until, list version) without require_full_management."""
    first = gw.invite(ends_at=timezone.now() + timedelta(days=2), entry_ids=[gw.w.entry.pk])
    guests.accept(gw.gina, first.pk)
    key = Key.objects.get(person__user=gw.gina, lock=gw.w.lock, revoked_at__isnull=True)
    end = key.valid_until
    ron = create_user("ron@example.com", PASSWORD, name="Ron Resident")
    phone_key(gw.w.alice, gw.w.lock, ron)  # a second resident of the front door
    second = guests.invite(ron, gw.w.prop.pk, "gina@example.com", [gw.w.entry.pk]).invitation
    _end_management(gw.w.lock)
    version = Lock.objects.get(pk=gw.w.lock.pk).credential_version
    with pytest.raises(Conflict) as refused:  # as a new guest key would be refused
        guests.accept(gw.gina, second.pk)
    assert refused.value.code == "entry_unavailable"
    key.refresh_from_db()
    assert key.valid_until == end, "a take-back-only lock's key was extended"
    assert Lock.objects.get(pk=gw.w.lock.pk).credential_version == version


def test_an_entry_the_manager_stopped_sharing_is_not_shown_nor_verifiable(gw: GuestWorld) -> None:
    """Invited to both entries; before she accepts, the manager stops sharing
    the Garage. Accepting rightly writes no Garage key, but invitation.entries
    still lists it: the Guest Key shows it and presence verifies at its panel."""
    open_policy(gw.w, require_presence=True)
    invitation = gw.invite()
    open_policy(gw.w, require_presence=True, shareable_entry_ids=[gw.w.entry.pk])
    guests.accept(gw.gina, invitation.pk)
    assert not Key.objects.filter(person__user=gw.gina, lock=gw.garage_lock).exists()
    (place,) = selectors.locations(gw.gina)
    assert [e["id"] for e in place.entries] == [gw.w.entry.pk]
    panel, _secret = presence.add_panel(gw.w.alice, gw.w.entry2.pk, "Garage panel")
    code, _step = presence.code_at(panel.secret)
    with pytest.raises(PermissionDenied):
        presence.verify(gw.gina, gw.w.entry2.pk, code)
    assert not Presence.objects.filter(guest=gw.gina).exists()


def test_resend_of_a_lapsed_invitation_respects_the_most_guests(gw: GuestWorld) -> None:
    """A sent invitation whose link ran out does not count; resending brings it
    back to life without checking the policy's most guests per resident."""
    open_policy(gw.w, max_guests_per_resident=1)
    lapsed = gw.invite("one@example.com")
    with time_machine.travel(timezone.now() + timedelta(days=8)):
        gw.invite("two@example.com")  # allowed: the first no longer counts
        with pytest.raises(Conflict):
            guests.resend(gw.rita, lapsed.pk)


def test_switching_sharing_off_stops_guests_already_in(gw: GuestWorld, front_door: Any) -> None:
    """The building manager switches sharing off (or stops sharing an entry):
    accepted guests keep opening the door, since neither set_policy nor
    guard_unlock looks at the policy again."""
    from doorkeep.gateway.remote import remote_unlock

    invitation = gw.invite()
    guests.accept(gw.gina, invitation.pk)
    open_policy(gw.w, sharing_enabled=False)
    with pytest.raises(PermissionDenied):
        remote_unlock(gw.gina, gw.w.entry.pk)
    assert front_door.opened == []


def test_the_guest_key_goes_to_the_guest_not_to_whoever_holds_the_address_record(
    gw: GuestWorld,
) -> None:
    """_guest_person reuses the organization's Person with the invited address
    even when it is linked to another account (someone who has since changed
    their address): that account gets the key, the guest gets nothing."""
    from doorkeep.keys.models import Person

    old = create_user("old@example.com", PASSWORD, name="Old Owner")
    Person.objects.create(
        organization=gw.w.org, name="Old Owner", email="gina@example.com", user=old
    )
    invitation = gw.invite()
    guests.accept(gw.gina, invitation.pk)
    assert not Key.objects.filter(person__user=old).exists()
    assert Key.objects.filter(person__user=gw.gina, revoked_at__isnull=True).count() == 2


def test_a_far_end_date_is_refused_not_a_server_error(gw: GuestWorld) -> None:
    """Year 9999 at a property west of UTC is year 10000 in UTC: saving the
    invitation raises OverflowError (500) in the web form and the API."""
    from doorkeep.properties.models import Property

    w = gw.w
    Property.objects.filter(pk=w.prop.pk).update(timezone="America/New_York")
    rita = w.client(gw.rita)
    rita.raise_request_exception = False
    page = rita.post(
        f"/guests/{w.prop.pk}/invite/",
        {"email": "far@example.com", "entries": [str(w.entry.pk)], "ends_on": "9999-12-31"},
    )
    assert page.status_code == 400
    api = w.bearer(gw.rita)
    api.raise_request_exception = False
    answer = api.post(
        "/api/v1/invitations",
        {
            "property_id": w.prop.pk,
            "email": "far2@example.com",
            "entry_ids": [w.entry.pk],
            "ends_at": "9999-12-31T23:59:59-05:00",
        },
        content_type="application/json",
    )
    assert answer.status_code in (400, 422)


def test_entry_ids_out_of_range_are_refused_not_a_server_error(gw: GuestWorld) -> None:
    """list[int] bodies take any integer; on SQLite pk__in with one beyond 64
    bits raises OverflowError (500)."""
    w = gw.w
    big = 10**20
    rita = w.bearer(gw.rita)
    rita.raise_request_exception = False
    answer = rita.post(
        "/api/v1/invitations",
        {"property_id": w.prop.pk, "email": "big@example.com", "entry_ids": [big]},
        content_type="application/json",
    )
    assert answer.status_code in (400, 422)
    alice = w.bearer(w.alice)
    alice.raise_request_exception = False
    answer = alice.put(
        f"/api/v1/properties/{w.prop.pk}/guest-policy",
        {"sharing_enabled": True, "shareable_entry_ids": [big]},
        content_type="application/json",
    )
    assert answer.status_code in (400, 422)


def test_another_tenants_property_is_not_found_even_with_a_bad_form(gw: GuestWorld) -> None:
    """POST /guests/<charlie's property>/invite/ with an invalid form answers
    400 (a property that does not exist: 404): an existence oracle."""
    w = gw.w
    rita = w.client(gw.rita)
    assert rita.post("/guests/999999/invite/", {"email": ""}).status_code == 404
    assert rita.post(f"/guests/{w.charlie_prop.pk}/invite/", {"email": ""}).status_code == 404


def test_deleting_a_resident_takes_their_guests_keys_back(gw: GuestWorld) -> None:
    guests.accept(gw.gina, gw.invite().pk)
    assert Key.objects.filter(person__user=gw.gina, revoked_at__isnull=True).count() == 2
    gw.rita.delete()
    assert not Key.objects.filter(person__user=gw.gina, revoked_at__isnull=True).exists()
    assert not guests.resident_entry_ids(gw.gina, gw.w.prop.pk)  # no resident by accident
