"""Invitations: sending (R20, R21), the link, accepting and declining with
exactly the invited address (R22, R23), the lifecycle (E5), revocation."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
import time_machine
from django.utils import timezone
from guest_helpers import PASSWORD, GuestWorld, open_policy, phone_key

from doorkeep.accounts.services import create_user
from doorkeep.core.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from doorkeep.events.models import Event, EventKind
from doorkeep.guests import services as guests
from doorkeep.guests.models import GuestKey, InvitationStatus
from doorkeep.keys import access
from doorkeep.keys.models import Key
from doorkeep.locks.models import Lock


def link_in(message: object) -> str:
    body = message.get_body(preferencelist=("plain",)).get_content()  # type: ignore[attr-defined]
    found = re.search(r"http://\S+/invitations/(\S+)/", body)
    assert found, body
    return found.group(1)


def test_invite_sends_a_real_email_with_a_working_link(gw: GuestWorld, smtp: Any) -> None:
    sent = guests.invite(gw.rita, gw.w.prop.pk, " Gina@Example.com ", [gw.w.entry.pk])
    assert sent.emailed
    message = smtp.last_to("gina@example.com")
    assert message["Subject"] == "Rita Resident added you as an auto-verified guest"
    body = message.get_body(preferencelist=("plain",)).get_content()
    assert "Front door" in body and "Garage" not in body
    assert "gina@example.com" in body  # says which address to use
    html = message.get_body(preferencelist=("html",)).get_content()
    assert "Accept the invitation" in html
    token = link_in(message)
    assert guests.read_token(token).pk == sent.invitation.pk
    assert sent.invitation.email == "gina@example.com"
    assert sent.invitation.state == InvitationStatus.SENT
    assert Event.objects.filter(kind=EventKind.INVITATION_SENT, property=gw.w.prop).exists()


def test_accept_gives_phone_keys_on_the_shared_entries_locks(gw: GuestWorld) -> None:
    invitation = gw.invite()
    versions = {lock.pk: lock.credential_version for lock in Lock.objects.all()}
    guests.accept(gw.gina, invitation.pk)
    invitation.refresh_from_db()
    assert invitation.status == InvitationStatus.ACCEPTED and invitation.guest == gw.gina
    keys = Key.objects.filter(person__user=gw.gina, revoked_at__isnull=True)
    assert {k.lock_id for k in keys} == {gw.w.lock.pk, gw.garage_lock.pk}
    for lock in Lock.objects.filter(pk__in=[gw.w.lock.pk, gw.garage_lock.pk]):
        assert lock.credential_version > versions[lock.pk]  # the locks learn it
    decision = access.decide(Lock.objects.get(pk=gw.w.lock.pk), "phone", gw.gina)
    assert decision.granted


def test_the_link_works_once(gw: GuestWorld, smtp: Any) -> None:
    guests.invite(gw.rita, gw.w.prop.pk, "gina@example.com", [gw.w.entry.pk])
    token = link_in(smtp.last_to("gina@example.com"))
    invitation = guests.read_token(token)
    guests.accept(gw.gina, invitation.pk, nonce=invitation.nonce)
    with pytest.raises(guests.LinkUnusable) as used:
        guests.read_token(token)
    assert used.value.code == "invitation_used" and used.value.status == 410


def test_a_tampered_link_is_not_found(gw: GuestWorld) -> None:
    with pytest.raises(NotFound):
        guests.read_token("not-a-token")
    invitation = gw.invite()
    token = guests.make_token(invitation)
    with pytest.raises(NotFound):
        guests.read_token(token[:-2] + ("AA" if not token.endswith("AA") else "BB"))


def test_the_link_expires(gw: GuestWorld) -> None:
    invitation = gw.invite()
    token = guests.make_token(invitation)
    with time_machine.travel(timezone.now() + timedelta(days=8)):
        with pytest.raises(guests.LinkUnusable) as expired:
            guests.read_token(token)
        assert expired.value.code == "invitation_expired"
        invitation.refresh_from_db()
        assert invitation.state == InvitationStatus.EXPIRED
        with pytest.raises(guests.LinkUnusable):
            guests.accept(gw.gina, invitation.pk)


def test_resend_replaces_the_link(gw: GuestWorld, smtp: Any) -> None:
    invitation = gw.invite()
    first = link_in(smtp.last_to("gina@example.com"))
    guests.resend(gw.rita, invitation.pk)
    second = link_in(smtp.last_to("gina@example.com"))
    assert first != second
    with pytest.raises(guests.LinkUnusable) as old:
        guests.read_token(first)
    assert old.value.code == "invitation_link_replaced"
    assert guests.read_token(second).times_sent == 2


def test_another_account_cannot_accept(gw: GuestWorld) -> None:
    invitation = gw.invite()
    other = create_user("gina.other@example.com", PASSWORD)
    with pytest.raises(PermissionDenied) as wrong:
        guests.accept(other, invitation.pk, nonce=invitation.nonce)
    assert wrong.value.code == "wrong_account"
    assert "gina@example.com" in wrong.value.message
    with pytest.raises(NotFound):  # by id, without the link: it does not exist for them
        guests.accept(other, invitation.pk)
    invitation.refresh_from_db()
    assert invitation.status == InvitationStatus.SENT
    assert not Key.objects.filter(person__email="gina.other@example.com").exists()


def test_an_unverified_address_cannot_accept(gw: GuestWorld) -> None:
    invitation = gw.invite("gale@example.com")
    gale = create_user("gale@example.com", PASSWORD, verified=False)
    with pytest.raises(PermissionDenied):
        guests.accept(gale, invitation.pk)


def test_decline(gw: GuestWorld) -> None:
    invitation = gw.invite()
    guests.decline(gw.gina, invitation.pk)
    invitation.refresh_from_db()
    assert invitation.state == InvitationStatus.DECLINED
    assert not Key.objects.filter(person__user=gw.gina).exists()
    with pytest.raises(guests.LinkUnusable):
        guests.accept(gw.gina, invitation.pk)


def test_revoke_takes_the_keys_back_at_once(gw: GuestWorld) -> None:
    invitation = gw.invite()
    guests.accept(gw.gina, invitation.pk)
    version = Lock.objects.get(pk=gw.w.lock.pk).credential_version
    guests.revoke(gw.rita, invitation.pk)
    invitation.refresh_from_db()
    assert invitation.state == InvitationStatus.REVOKED
    assert not Key.objects.filter(person__user=gw.gina, revoked_at__isnull=True).exists()
    assert Lock.objects.get(pk=gw.w.lock.pk).credential_version > version
    assert not access.decide(Lock.objects.get(pk=gw.w.lock.pk), "phone", gw.gina).granted
    with pytest.raises(Conflict):
        guests.revoke(gw.rita, invitation.pk)


def test_an_accepted_invitation_expires_with_its_end_date(gw: GuestWorld) -> None:
    end = timezone.now() + timedelta(days=2)
    invitation = gw.invite(ends_at=end)
    guests.accept(gw.gina, invitation.pk)
    lock = Lock.objects.get(pk=gw.w.lock.pk)
    assert Key.objects.get(person__user=gw.gina, lock=lock).valid_until == end
    with time_machine.travel(end + timedelta(minutes=1)):
        invitation.refresh_from_db()
        assert invitation.state == InvitationStatus.EXPIRED
        decision = access.decide(lock, "phone", gw.gina)
        assert not decision.granted and decision.reason == "expired"


def test_two_residents_share_one_key_and_revoking_one_keeps_the_other(gw: GuestWorld) -> None:
    from doorkeep.accounts.services import create_user as new_user

    ron = new_user("ron@example.com", PASSWORD, name="Ron Resident")
    phone_key(gw.w.alice, gw.w.lock, ron)
    first = gw.invite(entry_ids=[gw.w.entry.pk])
    second = guests.invite(ron, gw.w.prop.pk, "gina@example.com", [gw.w.entry.pk]).invitation
    guests.accept(gw.gina, first.pk)
    guests.accept(gw.gina, second.pk)
    live = Key.objects.filter(person__user=gw.gina, lock=gw.w.lock, revoked_at__isnull=True)
    assert live.count() == 1
    assert GuestKey.objects.filter(key=live.get()).count() == 2
    guests.revoke(gw.rita, first.pk)
    assert live.count() == 1  # Ron's invitation still needs it
    guests.revoke(ron, second.pk)
    assert live.count() == 0


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"sharing_enabled": False}, "sharing_disabled"),
        ({"shareable_entry_ids": []}, "entry_not_shareable"),
        ({"max_guests_per_resident": 1}, "too_many_guests"),
    ],
)
def test_the_policy_limits_invitations(
    gw: GuestWorld, change: dict[str, object], code: str
) -> None:
    if code == "too_many_guests":
        open_policy(gw.w, **change)
        gw.invite("first@example.com")
    else:
        open_policy(gw.w, **change)
    before = guests.Invitation.objects.count()
    with pytest.raises((PermissionDenied, Conflict)) as refused:
        gw.invite()
    assert refused.value.code == code
    assert guests.Invitation.objects.count() == before


def test_only_residents_share_only_their_own_entries(gw: GuestWorld) -> None:
    with pytest.raises(PermissionDenied) as not_resident:  # bob: a member without a key
        guests.invite(gw.w.bob, gw.w.prop.pk, "x@example.com", [gw.w.entry.pk])
    assert not_resident.value.code == "not_a_resident"
    with pytest.raises(NotFound):  # charlie: an outsider
        guests.invite(gw.w.charlie, gw.w.prop.pk, "x@example.com", [gw.w.entry.pk])
    phone_key(gw.w.alice, gw.w.lock, gw.w.bob)  # bob opens the front door only
    with pytest.raises(PermissionDenied) as not_his:
        guests.invite(gw.w.bob, gw.w.prop.pk, "x@example.com", [gw.w.entry2.pk])
    assert not_his.value.code == "no_access_to_entry"
    # a guest is not a resident: cannot invite others
    guests.accept(gw.gina, gw.invite().pk)
    with pytest.raises(PermissionDenied) as guest:
        guests.invite(gw.gina, gw.w.prop.pk, "y@example.com", [gw.w.entry.pk])
    assert guest.value.code == "not_a_resident"


@pytest.mark.parametrize(
    ("email", "entries", "code"),
    [
        ("not-an-address", None, "invalid_email"),
        ("rita@example.com", None, "invalid_email"),
        ("x@example.com", [], "entries_required"),
        ("x@example.com", [999999], "unknown_entry"),
    ],
)
def test_bad_invitations_are_refused(
    gw: GuestWorld, email: str, entries: list[int] | None, code: str
) -> None:
    with pytest.raises(InvalidInput) as bad:
        guests.invite(gw.rita, gw.w.prop.pk, email, [gw.w.entry.pk] if entries is None else entries)
    assert bad.value.code == code
    assert not guests.Invitation.objects.exists()


def test_an_end_date_in_the_past_is_refused(gw: GuestWorld) -> None:
    with pytest.raises(InvalidInput):
        gw.invite(ends_at=timezone.now() - timedelta(hours=1))


def test_policy_needs_a_manager_and_own_entries(gw: GuestWorld) -> None:
    spec = guests.PolicySpec(sharing_enabled=True, shareable_entry_ids=[gw.w.entry.pk])
    with pytest.raises(PermissionDenied):
        guests.set_policy(gw.w.bob, gw.w.prop.pk, spec)
    with pytest.raises(NotFound):
        guests.set_policy(gw.w.charlie, gw.w.prop.pk, spec)
    spec.shareable_entry_ids = [gw.w.charlie_entry.pk]
    with pytest.raises(InvalidInput):
        guests.set_policy(gw.w.alice, gw.w.prop.pk, spec)


def test_accept_fails_whole_when_a_lock_cannot_take_a_guest(gw: GuestWorld) -> None:
    with time_machine.travel(timezone.now() + timedelta(days=200)):  # free period over
        invitation = gw.invite()
        with pytest.raises(Conflict) as refused:
            guests.accept(gw.gina, invitation.pk)
        assert refused.value.code == "entry_unavailable"
        assert "Management of this lock ended" in refused.value.message
    invitation.refresh_from_db()
    assert invitation.status == InvitationStatus.SENT
    assert not Key.objects.filter(person__user=gw.gina).exists()
