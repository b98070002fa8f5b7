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

from django.db.models import Q
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
    badges = Badge.objects.filter(organization_id=prop.organization_id, uid=clean)
    badge = (
        badges.filter(status=BadgeStatus.ACTIVE).first()
        or badges.filter(status=BadgeStatus.LOST).first()
        or badges.first()
    )
    lived = _lived(prop, [badge.person_id]).get(badge.person_id, []) if badge else []
    return judge(prop, badge, lived, site_day(prop, at), space)


def equipment_list(
    prop: Property, *, at: datetime | None = None, space: ParkingSpace | None = None
) -> dict[str, EquipmentDecision]:
    """What a machine of ``prop`` (at ``space``) keeps to decide alone, by
    UID: the decision for every badge of a person who lives at the site on
    the day (allowed or not), and for every lost or switched-off badge of a
    person who ever lived there (so that a lost badge is refused even by a
    machine that cannot ask). A UID held by several badges (one handed
    back, one active) is decided as ``decide_equipment`` decides it."""
    day = site_day(prop, at)
    ever = Residency.objects.filter(unit__property=prop)
    people = set(ever.values_list("person_id", flat=True))
    living = set(ever.on(day).values_list("person_id", flat=True))
    lived = _lived(prop, people)
    badges = (
        Badge.objects.filter(organization_id=prop.organization_id, person_id__in=people)
        .filter(Q(person_id__in=living) | ~Q(status=BadgeStatus.ACTIVE))
        .exclude(status=BadgeStatus.PENDING)
        .order_by("pk")
    )
    rank = {BadgeStatus.ACTIVE: 0, BadgeStatus.LOST: 1}
    chosen: dict[str, Badge] = {}
    for badge in badges:
        held = chosen.get(badge.uid)
        if held is None or rank.get(badge.status, 2) < rank.get(held.status, 2):  # type: ignore[call-overload]
            chosen[badge.uid] = badge
    return {
        uid: judge(prop, badge, lived.get(badge.person_id, []), day, space)
        for uid, badge in chosen.items()
    }
