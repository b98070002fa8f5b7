"""May this badge run this site's shared equipment (a laundry machine, a
charging station) now? The one rule, for every kind of machine (R42, R47):

- an active badge (not lost, not switched off);
- of a person who is a resident of the site on the day (in its time zone);
- in a billing-and-payments site, a badge issued by the platform;
- at a private station (one at a parking space of a unit), a resident of
  that unit.

``judge`` is the rule, on what was read of one badge. ``decide_equipment``
reads one badge (a machine asking online); ``equipment_list`` reads every
badge a machine should know, in a few queries, for the list it keeps to
decide alone (a charging station's local authorization list). Both call
``judge``, so they cannot disagree.

Doors are not decided here: they keep explicit keys (keys.access)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime

from django.utils import timezone

from doorkeep.badges.models import Badge, BadgeSource, BadgeStatus
from doorkeep.core.errors import InvalidInput
from doorkeep.events.models import DenyReason
from doorkeep.keys.credentials import normalize_tag
from doorkeep.properties.models import BillingMode, Property, zone_of
from doorkeep.residents.models import ParkingSpace, Residency


@dataclass(frozen=True)
class EquipmentDecision:
    allowed: bool
    reason: str  # "" when allowed, else a DenyReason value
    badge: Badge | None
    until: date | None = None  # allowed: the last day it stays so (a move-out), else None


@dataclass(frozen=True)
class Lived:
    """A residency of the badge's person at the site, as the rule reads it."""

    unit_id: int
    move_in: date
    move_out: date | None


def judge(
    prop: Property,
    badge: Badge | None,
    lived: Iterable[Lived],
    day: date,
    space: ParkingSpace | None = None,
) -> EquipmentDecision:
    """The rule, on one badge and its person's residencies at ``prop``."""
    if badge is None or badge.status == BadgeStatus.PENDING:
        return EquipmentDecision(False, DenyReason.UNKNOWN_CREDENTIAL, badge)
    if badge.status == BadgeStatus.LOST:
        return EquipmentDecision(False, DenyReason.BADGE_LOST, badge)
    if badge.status != BadgeStatus.ACTIVE:
        return EquipmentDecision(False, DenyReason.CREDENTIAL_DEACTIVATED, badge)
    every = list(lived)
    now = [r for r in every if r.move_in <= day and (r.move_out is None or day <= r.move_out)]
    if not now:
        moved_out = any(r.move_out is not None and r.move_out < day for r in every)
        reason = DenyReason.MOVED_OUT if moved_out else DenyReason.NOT_A_RESIDENT
        return EquipmentDecision(False, reason, badge)
    if prop.billing_mode == BillingMode.BILLING_AND_PAYMENTS and (
        badge.source != BadgeSource.PLATFORM
    ):
        return EquipmentDecision(False, DenyReason.PLATFORM_BADGES_ONLY, badge)
    if space is not None and space.unit_id is not None:
        now = [r for r in now if r.unit_id == space.unit_id]
        if not now:
            return EquipmentDecision(False, DenyReason.NOT_THEIR_SPACE, badge)
    ends = [r.move_out for r in now]
    until = None if any(end is None for end in ends) else max(e for e in ends if e is not None)
    return EquipmentDecision(True, "", badge, until)


def site_day(prop: Property, at: datetime | None = None) -> date:
    return (at or timezone.now()).astimezone(zone_of(prop)).date()


def _lived(prop: Property, person_ids: Iterable[int]) -> dict[int, list[Lived]]:
    found: dict[int, list[Lived]] = {}
    for person, unit, move_in, move_out in Residency.objects.filter(
        person_id__in=list(person_ids), unit__property=prop
    ).values_list("person_id", "unit_id", "move_in", "move_out"):
        found.setdefault(person, []).append(Lived(unit, move_in, move_out))
    return found


def decide_equipment(
    prop: Property, uid: str, *, at: datetime | None = None, space: ParkingSpace | None = None
) -> EquipmentDecision:
    try:
        clean = normalize_tag(uid)
    except InvalidInput:
        return EquipmentDecision(False, DenyReason.MALFORMED_CREDENTIAL, None)
    badge = badge_for_uid(prop.organization_id, clean)
    lived = _lived(prop, [badge.person_id]).get(badge.person_id, []) if badge else []
    return judge(prop, badge, lived, site_day(prop, at), space)


# Which of an organization's badges with one UID a machine's reader means:
# the active one, else the lost one, else the latest (the model's order).
_RANK = {BadgeStatus.ACTIVE: 0, BadgeStatus.LOST: 1}


def _pick(badges: Iterable[Badge]) -> Badge | None:
    """The badge the rule reads among badges of one UID, given in the
    model's order (newest first)."""
    chosen = None
    for badge in badges:
        if chosen is None or _RANK.get(badge.status, 2) < _RANK.get(chosen.status, 2):  # type: ignore[call-overload]
            chosen = badge
    return chosen


def badge_for_uid(organization_id: int, uid: str) -> Badge | None:
    """The badge a presented (normalized) UID stands for in the organization
    (``_pick``): what the equipment rule, the local lists and the charging
    sessions all attribute a UID to."""
    return _pick(Badge.objects.filter(organization_id=organization_id, uid=uid))


def equipment_list(
    prop: Property, *, at: datetime | None = None, space: ParkingSpace | None = None
) -> dict[str, EquipmentDecision]:
    """What a machine of ``prop`` (at ``space``) keeps to decide alone, by
    UID: the decision for every UID of a badge of a person who lives, lived
    or will live at the site (allowed, or refused with its reason: lost,
    switched off, moved out...), so that a machine that cannot ask still
    refuses what it should. Each UID is decided as ``decide_equipment``
    decides it: for the badge ``badge_for_uid`` picks among all the
    organization's badges with that UID, whoever holds it."""
    day = site_day(prop, at)
    people = set(Residency.objects.filter(unit__property=prop).values_list("person_id", flat=True))
    uids = set(
        Badge.objects.filter(organization_id=prop.organization_id, person_id__in=people)
        .exclude(status=BadgeStatus.PENDING)
        .values_list("uid", flat=True)
    )
    by_uid: dict[str, list[Badge]] = {}
    for badge in Badge.objects.filter(organization_id=prop.organization_id, uid__in=uids):
        by_uid.setdefault(badge.uid, []).append(badge)  # in the model's order
    chosen = {uid: _pick(badges) for uid, badges in by_uid.items()}
    lived = _lived(prop, {b.person_id for b in chosen.values() if b is not None})
    return {
        uid: judge(prop, badge, lived.get(badge.person_id, []) if badge else [], day, space)
        for uid, badge in sorted(chosen.items())
    }
