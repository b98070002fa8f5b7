"""Presence verification at the panel (R27, R28) and guest unlocks (R26),
through the real gateway and a simulated lock."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

import pytest
import time_machine
from django.utils import timezone
from guest_helpers import GuestWorld, open_policy

from doorkeep.core.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from doorkeep.events.models import Event, EventKind
from doorkeep.gateway.remote import remote_unlock
from doorkeep.guests import presence
from doorkeep.guests import services as guests
from doorkeep.guests.models import Panel, Presence


def accepted(gw: GuestWorld, entry_ids: list[int] | None = None) -> None:
    invitation = gw.invite(**({"entry_ids": entry_ids} if entry_ids else {}))
    guests.accept(gw.gina, invitation.pk)


def panel_at(gw: GuestWorld, entry_id: int) -> Panel:
    panel, _secret = presence.add_panel(gw.w.alice, entry_id, "Panel")
    return panel


def test_a_guest_unlocks_and_the_event_names_who_shared(gw: GuestWorld, front_door: Any) -> None:
    accepted(gw)
    result = remote_unlock(gw.gina, gw.w.entry.pk)
    assert front_door.opened == [result.request_id]
    event = Event.objects.get(kind=EventKind.GUEST_UNLOCKED)
    assert event.actor == gw.gina and event.lock_id == gw.w.lock.pk
    assert event.data["shared_by"] == [gw.rita.pk]
    assert event.property_id == gw.w.prop.pk  # the manager's property log shows it


def test_presence_required_refuses_until_verified_then_opens(
    gw: GuestWorld, front_door: Any
) -> None:
    open_policy(gw.w, require_presence=True)
    accepted(gw)
    with pytest.raises(presence.PresenceRequired) as refused:
        remote_unlock(gw.gina, gw.w.entry.pk)
    assert refused.value.status == 403 and "panel" in refused.value.message
    assert front_door.opened == []
    panel = panel_at(gw, gw.w.entry.pk)
    code, _step = presence.code_at(panel.secret)
    entry = presence.verify(gw.gina, gw.w.entry.pk, code)
    assert entry.pk == gw.w.entry.pk
    assert Presence.objects.filter(guest=gw.gina, property=gw.w.prop).exists()
    result = remote_unlock(gw.gina, gw.w.entry.pk)
    assert front_door.opened == [result.request_id]


def test_a_replayed_code_is_refused(gw: GuestWorld) -> None:
    open_policy(gw.w, require_presence=True)
    accepted(gw)
    panel = panel_at(gw, gw.w.entry.pk)
    code, _step = presence.code_at(panel.secret)
    presence.verify(gw.gina, gw.w.entry.pk, code)
    with pytest.raises(Conflict) as replay:
        presence.verify(gw.gina, gw.w.entry.pk, code)
    assert replay.value.code == "code_used"


def test_an_expired_code_is_refused(gw: GuestWorld) -> None:
    open_policy(gw.w, require_presence=True)
    accepted(gw)
    panel = panel_at(gw, gw.w.entry.pk)
    now = time.time()
    valid = {presence.code_at(panel.secret, now - d)[0] for d in (0, 30)}
    # A code from three or more steps ago (the first that differs from the two
    # valid ones: two steps can share a code, one time in a million).
    old = next(
        code
        for back in range(95, 3000, 30)
        if (code := presence.code_at(panel.secret, now - back)[0]) not in valid
    )
    with pytest.raises(InvalidInput) as expired:
        presence.verify(gw.gina, gw.w.entry.pk, old)
    assert expired.value.code == "invalid_code"
    assert not Presence.objects.exists()


def test_the_previous_step_is_still_accepted(gw: GuestWorld) -> None:
    accepted(gw)
    panel = panel_at(gw, gw.w.entry.pk)
    code, _step = presence.code_at(panel.secret, time.time() - 30)
    presence.verify(gw.gina, gw.w.entry.pk, code)
    assert Presence.objects.filter(guest=gw.gina).exists()


def test_an_entry_not_shared_verifies_nothing(gw: GuestWorld) -> None:
    open_policy(gw.w, require_presence=True)
    accepted(gw, entry_ids=[gw.w.entry.pk])  # the front door only
    garage_panel = panel_at(gw, gw.w.entry2.pk)
    code, _step = presence.code_at(garage_panel.secret)
    with pytest.raises(PermissionDenied) as refused:
        presence.verify(gw.gina, gw.w.entry2.pk, code)
    assert refused.value.code == "entry_not_shared"
    assert "Front door" in refused.value.message  # says where to go instead
    assert not Presence.objects.exists()
    assert Event.objects.filter(kind=EventKind.PRESENCE_REFUSED, reason="entry_not_shared").exists()


def test_someone_who_is_not_a_guest_there_gets_not_found(gw: GuestWorld) -> None:
    panel = panel_at(gw, gw.w.entry.pk)
    code, _step = presence.code_at(panel.secret)
    with pytest.raises(NotFound):
        presence.verify(gw.w.charlie, gw.w.entry.pk, code)


def test_malformed_codes_and_the_rate_limit(gw: GuestWorld, settings: Any) -> None:
    settings.DOORKEEP = {**settings.DOORKEEP, "PANEL_ATTEMPTS_PER_HOUR": 2}
    accepted(gw)
    panel_at(gw, gw.w.entry.pk)
    with pytest.raises(InvalidInput):
        presence.verify(gw.gina, gw.w.entry.pk, "12ab")
    for _ in range(2):
        with pytest.raises(InvalidInput):
            presence.verify(gw.gina, gw.w.entry.pk, "000000" if _ else "999999")
    from doorkeep.core.errors import RateLimited

    with pytest.raises(RateLimited):
        presence.verify(gw.gina, gw.w.entry.pk, "123456")


def test_verify_again_after_the_inactivity_period(gw: GuestWorld) -> None:
    open_policy(gw.w, require_presence=True, reverify_after_days=30)
    accepted(gw)
    panel = panel_at(gw, gw.w.entry.pk)
    presence.verify(gw.gina, gw.w.entry.pk, presence.code_at(panel.secret)[0])
    assert presence.standing(gw.gina, gw.w.prop.pk).verified
    with time_machine.travel(timezone.now() + timedelta(days=29)):
        assert presence.standing(gw.gina, gw.w.prop.pk).verified
    with time_machine.travel(timezone.now() + timedelta(days=31)):
        state = presence.standing(gw.gina, gw.w.prop.pk)
        assert not state.verified and "30 days" in state.reason


def test_panels_are_managed_by_the_building_manager(gw: GuestWorld) -> None:
    with pytest.raises(PermissionDenied):
        presence.add_panel(gw.w.bob, gw.w.entry.pk, "P")
    with pytest.raises(NotFound):
        presence.add_panel(gw.w.charlie, gw.w.entry.pk, "P")
    panel, secret = presence.add_panel(gw.w.alice, gw.w.entry.pk, "Lobby panel")
    assert len(secret) == 32 and panel.secret == secret
    url = presence.tag_url(gw.w.entry.pk, panel.pk, "123456", base="https://dk.example")
    assert (
        url == f"https://dk.example/guest/tap/?entry={gw.w.entry.pk}&panel={panel.pk}&code=123456"
    )
    with pytest.raises(NotFound):
        presence.remove_panel(gw.w.charlie, panel.pk)
    presence.remove_panel(gw.w.alice, panel.pk)
    assert not Panel.objects.exists()


def test_a_share_ends_when_its_resident_loses_the_entry(gw: GuestWorld, front_door: Any) -> None:
    from doorkeep.keys.models import Key
    from doorkeep.keys.services import revoke_key

    accepted(gw)
    ritas = Key.objects.get(person__user=gw.rita, lock=gw.w.lock, revoked_at__isnull=True)
    revoke_key(gw.w.alice, ritas.pk)
    with pytest.raises(PermissionDenied) as ended:
        remote_unlock(gw.gina, gw.w.entry.pk)
    assert ended.value.code == "share_ended"
    assert front_door.opened == []
