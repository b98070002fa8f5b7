"""The record of use: one ``Use`` per finished charging session, laundry
cycle and extra badge, written once (its source is unique), priced there and
then by the tariff in force on the day it started.

A session or cycle flagged for review, or with no energy known, is not a
use yet: it is recorded when it is complete. ``record_missing`` records
anything finished that has no use yet (a billing run calls it first, so a
use whose hook was missed is still billed once)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.db import IntegrityError, transaction

from doorkeep.billing import pricing
from doorkeep.billing.models import Use, UseKind
from doorkeep.properties.models import BillingMode, zone_of

if TYPE_CHECKING:
    from doorkeep.badges.models import BadgeRequest
    from doorkeep.chargers.models import ChargingSession
    from doorkeep.laundry.models import Cycle


def _save(use: Use) -> Use | None:
    # Use of an individual-statements site is the owner's to collect: it is
    # never invoiced, even if the site bills through the platform later.
    use.by_statement = use.property.billing_mode == BillingMode.INDIVIDUAL_STATEMENTS
    try:
        with transaction.atomic():
            use.save()
    except IntegrityError:  # recorded meanwhile by another thread: one use
        return None
    return use


def record_charging_use(session: ChargingSession) -> Use | None:
    """The use of a charging session that has ended with a known energy."""
    if (
        session.pk is None
        or session.started_at is None
        or session.stopped_at is None
        or session.energy_wh is None
        or session.review
        or Use.objects.filter(charging_session=session).exists()
    ):
        return None
    prop = session.property
    zone = zone_of(prop)
    day = pricing.local_day(session.started_at, zone)
    tariff = pricing.tariff_on(pricing.tariffs_of(prop.pk), day)
    price = pricing.price_charging(
        tariff, session.energy_wh, session.started_at, session.stopped_at, zone
    )
    return _save(
        Use(
            organization_id=session.organization_id,
            property_id=session.property_id,
            kind=UseKind.CHARGING,
            charging_session=session,
            person_id=session.person_id,
            unit_id=session.unit_id,
            started_at=session.started_at,
            ended_at=session.stopped_at,
            day=day,
            label=str(session.station),
            energy_wh=session.energy_wh,
            tariff=tariff,
            currency=tariff.currency if tariff else prop.currency,
            amount=price.amount,
            vat_rate=tariff.vat_rate if tariff else 0,
            pricing=price.detail,
        )
    )


def record_cycle_use(cycle: Cycle) -> Use | None:
    """The use of a laundry cycle that has ended."""
    if (
        cycle.pk is None
        or cycle.started_at is None
        or cycle.ended_at is None
        or cycle.review
        or Use.objects.filter(cycle=cycle).exists()
    ):
        return None
    prop = cycle.property
    zone = zone_of(prop)
    day = pricing.local_day(cycle.started_at, zone)
    tariff = pricing.tariff_on(pricing.tariffs_of(prop.pk), day)
    energy = cycle.energy_wh or 0
    price = pricing.price_cycle(tariff, cycle.machine_id, cycle.program, energy)
    label = str(cycle.machine) + (f" · {cycle.program}" if cycle.program else "")
    return _save(
        Use(
            organization_id=cycle.organization_id,
            property_id=cycle.property_id,
            kind=UseKind.LAUNDRY,
            cycle=cycle,
            person_id=cycle.person_id,
            unit_id=cycle.unit_id,
            started_at=cycle.started_at,
            ended_at=cycle.ended_at,
            day=day,
            label=label[:150],
            energy_wh=energy,
            tariff=tariff,
            currency=tariff.currency if tariff else prop.currency,
            amount=price.amount,
            vat_rate=tariff.vat_rate if tariff else 0,
            pricing=price.detail,
        )
    )


def record_badge_use(request: BadgeRequest) -> Use | None:
    """An extra badge handed to a resident, at the price they confirmed when
    asking for it (R44). Called when the badge is sent or activated."""
    if (
        request.pk is None
        or not request.extra
        or request.price_minor == 0
        or Use.objects.filter(badge_request=request).exists()
    ):
        return None
    when = request.sent_at  # handed over or posted: on its way (R44)
    if when is None:
        return None
    prop = request.property
    zone = zone_of(prop)
    day = pricing.local_day(when, zone)
    tariff = pricing.tariff_on(pricing.tariffs_of(prop.pk), day)
    from doorkeep.residents.models import Residency

    residency = (
        Residency.objects.on(day)
        .filter(person_id=request.person_id, unit__property_id=prop.pk)
        .first()
    )
    return _save(
        Use(
            organization_id=request.organization_id,
            property_id=prop.pk,
            kind=UseKind.BADGE,
            badge_request=request,
            person_id=request.person_id,
            unit_id=residency.unit_id if residency else None,
            started_at=when,
            ended_at=when,
            day=day,
            label=str(request.badge.uid) if request.badge_id and request.badge else "",
            tariff=tariff,
            currency=request.currency or prop.currency,
            amount=request.price_minor,
            vat_rate=tariff.vat_rate if tariff else 0,
            pricing={"badge_price": request.price_minor},
        )
    )


def record_missing(property_id: int) -> int:
    """Record every finished use of a site that has none yet; how many."""
    from doorkeep.badges.models import BadgeRequest
    from doorkeep.chargers.models import ChargingSession
    from doorkeep.laundry.models import Cycle

    count = 0
    sessions = ChargingSession.objects.filter(
        property_id=property_id, stopped_at__isnull=False, energy_wh__isnull=False, review=""
    ).exclude(started_at=None)
    for session in sessions.filter(use__isnull=True).select_related("property", "station"):
        count += record_charging_use(session) is not None
    cycles = Cycle.objects.filter(property_id=property_id, ended_at__isnull=False, review="")
    for cycle in cycles.filter(use__isnull=True).select_related("property", "machine"):
        count += record_cycle_use(cycle) is not None
    requests = BadgeRequest.objects.filter(
        property_id=property_id,
        extra=True,
        price_minor__gt=0,
        sent_at__isnull=False,
        use__isnull=True,
    )
    for request in requests.select_related("property", "badge"):
        count += record_badge_use(request) is not None
    return count
