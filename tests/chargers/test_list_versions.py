"""A station's local list has one version, raised in the transaction of every
change that may alter what it should hold, like a lock's list: a badge
switched on or off, a resident moving in or out, the site's billing mode. A
station of another site keeps its version."""

from __future__ import annotations

from datetime import date, timedelta

from doorkeep.badges import services as badges
from doorkeep.chargers import lists
from doorkeep.chargers.models import Station
from doorkeep.properties.models import BillingMode, Property, zone_of
from doorkeep.residents.services import (
    ResidentSpec,
    add_resident,
    change_residency,
    set_billing_mode,
    site_today,
)


def version(station: Station) -> int:
    return Station.objects.get(pk=station.pk).list_version


def elsewhere(site) -> Station:
    other = Property.objects.create(organization=site.world.prop.organization, name="Elsewhere")
    return Station.objects.create(
        organization_id=other.organization_id,
        property=other,
        charge_point_id="CP-ELSEWHERE",
        password_digest=Station.digest_of("x" * 24),
    )


def test_a_lost_badge_raises_the_version_of_the_stations_where_its_holder_lives(stations):
    far = elsewhere(stations.site)
    before = version(stations.shared), version(stations.private), version(far)

    badges.report_lost(stations.site.rosa, stations.badge.pk)

    assert version(stations.shared) == before[0] + 1
    assert version(stations.private) == before[1] + 1
    assert version(far) == before[2]
    entries = lists.entries(Station.objects.get(pk=stations.shared.pk))
    assert entries[stations.badge.uid].status == lists.Status.BLOCKED


def test_moving_in_and_out_and_the_billing_mode_raise_the_version(stations):
    site = stations.site
    shared = stations.shared
    before = version(shared)
    residency = add_resident(
        site.world.alice,
        site.world.prop.pk,
        ResidentSpec(
            name="Bea",
            email="bea@example.com",
            move_in=date(2024, 5, 1),
            unit_id=site.other_unit.pk,
        ),
    )
    assert version(shared) == before + 1
    change_residency(site.world.alice, residency.pk, move_out=site_today(site.world.prop))
    assert version(shared) == before + 2
    set_billing_mode(site.world.alice, site.world.prop.pk, "billing_and_payments", confirm=False)
    assert version(shared) == before + 2  # a preview changes nothing
    set_billing_mode(site.world.alice, site.world.prop.pk, "billing_and_payments", confirm=True)
    assert version(shared) == before + 3


def test_the_list_accepts_a_resident_until_the_end_of_their_last_day(stations):
    site = stations.site
    last = site_today(site.world.prop) + timedelta(days=10)
    change_residency(site.world.alice, site.residency.pk, move_out=last)
    entry = lists.entries(Station.objects.get(pk=stations.shared.pk))[stations.badge.uid]
    assert entry.status == lists.Status.ACCEPTED
    assert entry.expires is not None
    local = entry.expires.astimezone(zone_of(site.world.prop))
    assert (local.date(), local.hour, local.minute) == (last + timedelta(days=1), 0, 0)


def test_the_private_station_lists_only_its_units_residents_as_accepted(stations):
    site = stations.site
    Property.objects.filter(pk=site.world.prop.pk).update(
        billing_mode=BillingMode.INDIVIDUAL_STATEMENTS
    )
    bea = add_resident(
        site.world.alice,
        site.world.prop.pk,
        ResidentSpec(
            name="Bea",
            email="bea@example.com",
            move_in=date(2024, 5, 1),
            unit_id=site.other_unit.pk,
        ),
    )
    card = badges.register_existing_badge(
        site.world.alice, site.world.prop.pk, bea.person_id, uid="04112233", atqa="0004", sak="08"
    )
    private = lists.entries(Station.objects.get(pk=stations.private.pk))
    shared = lists.entries(Station.objects.get(pk=stations.shared.pk))
    assert private[stations.badge.uid].status == lists.Status.ACCEPTED
    assert shared[stations.badge.uid].status == lists.Status.ACCEPTED
    assert shared[card.uid].status == lists.Status.ACCEPTED
    assert private[card.uid].status == lists.Status.INVALID
