"""May this badge run this site's shared equipment (a laundry machine, a
charging station) now? The one rule, for every kind of machine (R42, R47):

- an active badge (not lost, not switched off);
- of a person who is a resident of the site on the day (in its time zone);
- in a billing-and-payments site, a badge issued by the platform;
- at a private station (one at a parking space of a unit), a resident of
  that unit.

Doors are not decided here: they keep explicit keys (keys.access)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

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
    if badge is None or badge.status == BadgeStatus.PENDING:
        return EquipmentDecision(False, DenyReason.UNKNOWN_CREDENTIAL, badge)
    if badge.status == BadgeStatus.LOST:
        return EquipmentDecision(False, DenyReason.BADGE_LOST, badge)
    if badge.status != BadgeStatus.ACTIVE:
        return EquipmentDecision(False, DenyReason.CREDENTIAL_DEACTIVATED, badge)
    day = (at or timezone.now()).astimezone(zone_of(prop)).date()
    lives = Residency.objects.on(day).filter(person_id=badge.person_id, unit__property=prop)
    if not lives.exists():
        return EquipmentDecision(False, DenyReason.NOT_A_RESIDENT, badge)
    if prop.billing_mode == BillingMode.BILLING_AND_PAYMENTS and (
        badge.source != BadgeSource.PLATFORM
    ):
        return EquipmentDecision(False, DenyReason.PLATFORM_BADGES_ONLY, badge)
    if (
        space is not None
        and space.unit_id is not None
        and not lives.filter(unit_id=space.unit_id).exists()
    ):
        return EquipmentDecision(False, DenyReason.NOT_THEIR_SPACE, badge)
    return EquipmentDecision(True, "", badge)
