"""Presence verification at entry panels (R27, R28) and what a guest unlock
does besides opening the door (R26).

A panel shows a time-based code (RFC 6238: HMAC-SHA1, 6 digits, a step of
DOORKEEP_PANEL_CODE_SECONDS) from its own secret, on its display and in the
URL of its NFC tag, so it needs no network. A code is accepted during its
step and the one after (an offline panel's clock may lag), and only once per
panel: a replayed code is refused."""

from __future__ import annotations

import hmac
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

import pyotp
from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from doorkeep import policy
from doorkeep.accounts.models import User
from doorkeep.core import ratelimit
from doorkeep.core.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from doorkeep.events.models import EventKind
from doorkeep.events.services import record
from doorkeep.guests import hooks
from doorkeep.guests.models import (
    GuestKey,
    GuestPolicy,
    Invitation,
    InvitationStatus,
    Panel,
    PanelTag,
    Presence,
)
from doorkeep.guests.services import policy_of, shareable_entry_ids
from doorkeep.licensing.upgrades import require_building_management
from doorkeep.locks.models import Lock
from doorkeep.properties.models import Entry


class PresenceRequired(PermissionDenied):
    code = "presence_required"


class ShareEnded(PermissionDenied):
    code = "share_ended"


# --- the guest's shares --------------------------------------------------------


def accepted_invitations(user: User) -> list[Invitation]:
    """The user's accepted invitations that have not ended, with entries."""
    now = timezone.now()
    rows = (
        Invitation.objects.filter(guest=user, status=InvitationStatus.ACCEPTED)
        .select_related("property", "inviter")
        .prefetch_related("entries")
        .order_by("property__name", "created_at")
    )
    return [inv for inv in rows if inv.state_at(now) == InvitationStatus.ACCEPTED]


def shared_entries(user: User, property_id: int) -> list[Entry]:
    """The entries shared with the guest that the policy still lets them use."""
    allowed = shareable_entry_ids(policy_of(property_id))
    seen: dict[int, Entry] = {}
    for inv in accepted_invitations(user):
        if inv.property_id == property_id:
            for entry in inv.entries.all():
                if entry.pk in allowed:
                    seen.setdefault(entry.pk, entry)
    return sorted(seen.values(), key=lambda e: (e.name, e.pk))


@dataclass(frozen=True)
class Standing:
    required: bool
    verified: bool
    reason: str  # "" when the guest may unlock, else why not


def standing(user: User, property_id: int) -> Standing:
    """Whether the guest must verify presence before unlocking at the property."""
    rules = policy_of(property_id)
    if not rules.require_presence:
        return Standing(False, True, "")
    found = Presence.objects.filter(guest=user, property_id=property_id).first()
    return standing_of(rules, found)


def standing_of(rules: GuestPolicy, found: Presence | None) -> Standing:
    """``standing`` from the property's policy and the guest's presence row."""
    if not rules.require_presence:
        return Standing(False, True, "")
    if found is None:
        return Standing(
            True,
            False,
            _("Verify your presence first: tap your phone on the panel of a shared entry."),
        )
    days = rules.reverify_after_days
    if days is not None and found.last_used_at < timezone.now() - timedelta(days=days):
        return Standing(
            True,
            False,
            _(
                "You have not used your guest key for more than %(days)d days: verify your "
                "presence again at the panel of a shared entry."
            )
            % {"days": days},
        )
    return Standing(True, True, "")


def _live_links(user: User, lock: Lock) -> list[GuestKey]:
    now = timezone.now()
    links = GuestKey.objects.filter(
        key__lock=lock,
        key__person__user=user,
        key__revoked_at__isnull=True,
        invitation__status=InvitationStatus.ACCEPTED,
    ).select_related("invitation__inviter", "key__person")
    return [link for link in links if link.invitation.state_at(now) == InvitationStatus.ACCEPTED]


def guard_unlock(user: User, lock: Lock) -> list[GuestKey]:
    """Called by remote unlock before deciding: for a guest, the links of the
    guest key it will use; raises PresenceRequired when the property wants
    presence verified (again). Empty for anyone who is not a guest here."""
    if lock.entry is None:
        return []
    links = _live_links(user, lock)
    if links:
        # A share lasts only while its resident can open the entry themselves
        # (a resident who moved out takes their guests' access with them).
        from doorkeep.guests.services import resident_entry_ids

        entry_id, property_id = lock.entry_id, lock.entry.property_id
        rules = policy_of(property_id)
        if entry_id not in shareable_entry_ids(rules):
            raise ShareEnded(
                _(
                    "The building manager no longer allows sharing this entry, so it does not "
                    "open for guests."
                )
            )
        links = [
            link
            for link in links
            if entry_id in resident_entry_ids(link.invitation.inviter, property_id)
        ]
        if not links:
            raise ShareEnded(
                _(
                    "The resident who shared this entry with you can no longer open it, so "
                    "neither can you. Ask them, or the building manager."
                )
            )
        found = (
            Presence.objects.filter(guest=user, property_id=property_id).first()
            if rules.require_presence
            else None
        )
        state = standing_of(rules, found)
        if not state.verified:
            raise PresenceRequired(state.reason)
    return links


def guest_attempt(user: User, lock: Lock, links: list[GuestKey]) -> tuple[str, dict[str, object]]:
    """What a guest's remote unlock adds to its one event: the summary the
    resident and the manager read, and the invitations it went through."""
    key = links[0].key
    guest_name = key.person.name if key.person else user.email
    entry_name = lock.entry.name if lock.entry else lock.serial
    summary = _("%(guest)s opened %(entry)s (guest)") % {"guest": guest_name, "entry": entry_name}
    return summary, {
        "invitations": sorted(link.invitation_id for link in links),
        "shared_by": sorted({link.invitation.inviter_id for link in links}),
    }


def guest_unlocked(user: User, lock: Lock, links: list[GuestKey], event_id: int) -> None:
    """The lock opened for a guest (its event written, ``event_id``), in the
    caller's transaction: the guest's presence is used now, the resident's
    notifications and the webhooks go out (R26)."""
    if not links or lock.entry is None:
        return
    entry = lock.entry
    key = links[0].key
    guest_name = key.person.name if key.person else user.email
    Presence.objects.filter(guest=user, property_id=entry.property_id).update(
        last_used_at=timezone.now()
    )
    hooks.guest_unlocked(
        user,
        [link.invitation for link in links],
        entry=entry,
        event_id=event_id,
        title=_("%(guest)s opened %(entry)s") % {"guest": guest_name, "entry": entry.name},
        body=_("Your guest used the entry you shared at %(property)s.")
        % {"property": entry.property.name},
    )


# --- panels --------------------------------------------------------------------


def _step_seconds() -> int:
    return int(settings.DOORKEEP["PANEL_CODE_SECONDS"])


def code_at(secret: str, moment: float | None = None) -> tuple[str, int]:
    """The panel's code at ``moment`` (Unix seconds) and its time step."""
    step = int((time.time() if moment is None else moment) // _step_seconds())
    return pyotp.TOTP(secret, interval=_step_seconds()).generate_otp(step), step


def tag_url(entry_id: int, panel_id: int, code: str, *, base: str | None = None) -> str:
    """What the panel's NFC tag holds (an NDEF URI record)."""
    query = urlencode({"entry": entry_id, "panel": panel_id, "code": code})
    return f"{(base or settings.SITE_URL).rstrip('/')}/guest/tap/?{query}"


def provisioning_uri(panel: Panel, secret: str) -> str:
    """The panel's secret as an otpauth:// URI, to configure a panel with it."""
    return pyotp.TOTP(secret, interval=_step_seconds()).provisioning_uri(
        name=f"{panel.entry.name} · {panel.name}", issuer_name="Doorkeep"
    )


def _managed_entry(actor: User, entry_id: int) -> Entry:
    entry = Entry.objects.select_related("property").filter(pk=entry_id).first()
    if entry is None:
        raise NotFound(_("Entry not found."))
    policy.require(
        actor,
        policy.Action.MANAGE_PROPERTIES,
        entry.property.organization_id,
        what=_("Entry"),
        property_id=entry.property_id,
    )
    return entry


def add_panel(actor: User, entry_id: int, name: str) -> tuple[Panel, str]:
    """Install a code panel at an entry; its secret is returned once, to configure it."""
    secret = pyotp.random_base32(32)
    return install_panel(actor, entry_id, name, tag=PanelTag.CODE, secret=secret), secret


def install_panel(actor: User, entry_id: int, name: str, **fields: str) -> Panel:
    """A new panel of the entry with ``fields`` (its kind and secrets), logged."""
    entry = _managed_entry(actor, entry_id)
    require_building_management(entry.property.organization_id, _("Installing entry panels"))
    name = name.strip() or _("Panel")
    with transaction.atomic():
        panel = Panel.objects.create(entry=entry, name=name[:100], **fields)
        record(
            EventKind.PANEL_ADDED,
            organization_id=entry.property.organization_id,
            property_id=entry.property_id,
            actor=actor,
            summary=_("Panel %(name)s added at %(entry)s")
            % {"name": panel.name, "entry": entry.name},
            data={"panel_id": panel.pk, "entry_id": entry.pk, "tag": panel.tag},
        )
    return panel


def remove_panel(actor: User, panel_id: int) -> None:
    panel = Panel.objects.select_related("entry__property").filter(pk=panel_id).first()
    if panel is None:
        raise NotFound(_("Panel not found."))
    entry = _managed_entry(actor, panel.entry_id)
    with transaction.atomic():
        Panel.objects.filter(pk=panel.pk).delete()
        record(
            EventKind.PANEL_REMOVED,
            organization_id=entry.property.organization_id,
            property_id=entry.property_id,
            actor=actor,
            summary=_("Panel %(name)s removed from %(entry)s")
            % {"name": panel.name, "entry": entry.name},
            data={"panel_id": panel_id, "entry_id": entry.pk},
        )


# --- verifying -------------------------------------------------------------------


def _normalize(code: str) -> str:
    digits = "".join(ch for ch in code if not ch.isspace() and ch != "-")
    if len(digits) != 6 or not digits.isascii() or not digits.isdigit():
        raise InvalidInput(
            _("A panel code has 6 digits; enter the code the panel shows."), code="invalid_code"
        )
    return digits


def shared_entry_for(user: User, entry_id: int) -> Entry:
    """The entry ``entry_id`` if it is shared with the guest and the policy
    still allows it (the first checks of every way to verify presence): 404
    for someone who is not a guest at its property, 403 (logged) if the entry
    is not shared with them."""
    entry = Entry.objects.select_related("property").filter(pk=entry_id).first()
    invitations = accepted_invitations(user)
    properties = {inv.property_id for inv in invitations}
    if entry is None or entry.property_id not in properties:
        raise NotFound(_("Entry not found."))
    shared = shared_entries(user, entry.property_id)
    if entry.pk not in {e.pk for e in shared}:
        record_refusal(user, entry, "entry_not_shared")
        raise PermissionDenied(
            _(
                "%(entry)s is not shared with you, so nothing was verified. Go to a shared "
                "entry (%(shared)s) and tap its panel."
            )
            % {"entry": entry.name, "shared": ", ".join(e.name for e in shared)},
            code="entry_not_shared",
        )
    return entry


def verify(user: User, entry_id: int, code: str, *, panel_id: int | None = None) -> Entry:
    """R27: the guest presents the code of the panel at ``entry_id``. If the
    entry is shared with the guest and the code is good (and unused), presence
    is verified for the whole property. Nothing changes otherwise. A property
    whose policy requires the tag (NTAG 424 DNA, guests/tags.py) refuses codes."""
    entry = shared_entry_for(user, entry_id)
    if policy_of(entry.property_id).require_tag:
        record_refusal(user, entry, "tag_required")
        raise PermissionDenied(
            _(
                "At %(property)s presence is verified only by tapping a panel's tag with your "
                "phone; codes are not accepted. Hold your phone to the panel."
            )
            % {"property": entry.property.name},
            code="tag_required",
        )
    # A slot is taken first, so that a burst cannot get past the limit, and
    # given back unless the code was wrong (docs/decisions/0021).
    limit_key, hour = f"panel:{user.pk}", timedelta(hours=1)
    ratelimit.take(
        limit_key,
        limit=int(settings.DOORKEEP["PANEL_ATTEMPTS_PER_HOUR"]),
        window=timedelta(hours=1),
        message=_("Too many wrong panel codes. Wait a while and try again."),
    )
    try:
        digits = _normalize(code)
    except InvalidInput:
        ratelimit.give_back(limit_key, window=hour)
        raise
    panels = list(
        Panel.objects.filter(
            entry=entry, tag=PanelTag.CODE, **({"pk": panel_id} if panel_id else {})
        )
    )
    if not panels:
        ratelimit.give_back(limit_key, window=hour)
        raise Conflict(
            _("%(entry)s has no panel to verify at. Ask your host where the panel is.")
            % {"entry": entry.name},
            code="no_panel",
        )
    now = time.time()
    match: tuple[Panel, int] | None = None
    for panel in panels:
        current, step = code_at(panel.secret, now)
        previous, _step = code_at(panel.secret, now - _step_seconds())
        if hmac.compare_digest(current, digits):
            match = (panel, step)
        elif hmac.compare_digest(previous, digits):
            match = (panel, step - 1)
        if match:
            break
    if match is None:  # a wrong code: its slot stays taken
        record_refusal(user, entry, "invalid_code")
        raise InvalidInput(
            _(
                "This code is wrong or has expired (codes change every %(s)d seconds). "
                "Enter the code the panel shows now."
            )
            % {"s": _step_seconds()},
            code="invalid_code",
        )
    panel, step = match
    ratelimit.give_back(limit_key, window=hour)
    with transaction.atomic():
        if not Panel.objects.filter(pk=panel.pk, last_step__lt=step).update(last_step=step):
            raise Conflict(
                _("This code was already used. Wait for the panel's next code and try again."),
                code="code_used",
            )
        record_presence(user, entry, panel)
    return entry


def record_presence(
    user: User, entry: Entry, panel: Panel, details: dict[str, Any] | None = None
) -> None:
    """Presence verified at ``entry`` with ``panel`` (in the caller's
    transaction); ``details`` go into the event's data."""
    moment = timezone.now()
    Presence.objects.update_or_create(
        guest=user,
        property=entry.property,
        defaults={"verified_at": moment, "last_used_at": moment, "entry": entry},
    )
    record(
        EventKind.PRESENCE_VERIFIED,
        organization_id=entry.property.organization_id,
        property_id=entry.property_id,
        actor=user,
        summary=_("%(guest)s verified presence at %(entry)s")
        % {"guest": user.name or user.email, "entry": entry.name},
        data={"entry_id": entry.pk, "panel_id": panel.pk, "tag": panel.tag, **(details or {})},
    )


def record_refusal(user: User, entry: Entry, reason: str) -> None:
    """A guest's attempt to verify presence at ``entry`` failed for ``reason``."""
    record(
        EventKind.PRESENCE_REFUSED,
        organization_id=entry.property.organization_id,
        property_id=entry.property_id,
        actor=user,
        reason=reason,
        summary=_("%(guest)s could not verify presence at %(entry)s")
        % {"guest": user.name or user.email, "entry": entry.name},
        data={"entry_id": entry.pk},
    )
