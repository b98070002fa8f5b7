"""Charging-station installations (R49), step by step, with who may take each."""

from __future__ import annotations

from datetime import timedelta

import pytest

from doorkeep.accounts.models import Membership, Role
from doorkeep.accounts.services import create_user
from doorkeep.chargers.models import Station
from doorkeep.chargers.reports import authenticate
from doorkeep.core.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from doorkeep.events.models import Event
from doorkeep.installations import services
from doorkeep.installations.models import InstallationStatus as S
from doorkeep.notify.models import Notification, OutboxMessage
from doorkeep.residents.models import ParkingSpace
from doorkeep.residents.services import add_parking_space, site_today


@pytest.fixture
def space(site):
    return add_parking_space(site.world.alice, site.world.prop.pk, "P8", unit_id=site.unit.pk)


def ask(site, number="P8", kw=11.0):
    return services.request_installation(
        site.rosa, site.world.prop.pk, parking_space=number, wished_power_kw=kw, notes="Garage"
    )


def test_a_resident_follows_a_station_from_request_to_installed(site, space):
    world = site.world
    item = ask(site)
    assert item.status == S.REQUESTED

    services.decide(world.alice, item.pk, approve=True)
    services.hand_over(world.alice, item.pk)
    day = site_today(world.prop) + timedelta(days=10)
    services.schedule(site.operator, item.pk, day)
    done = services.complete(site.operator, item.pk, station_serial="evb 0042")

    assert (done.status, done.station_serial) == (S.INSTALLED, "EVB0042")
    assert ParkingSpace.objects.get(pk=space.pk).station_serial == "EVB0042"
    # The installed station is registered at its space, private to Rosa's unit,
    # and connects with the password shown once in this step's answer.
    station = Station.objects.get(charge_point_id="EVB0042")
    assert (station.property_id, station.parking_space_id) == (world.prop.pk, space.pk)
    assert station.private
    assert done.station_password
    assert authenticate("EVB0042", done.station_password).station_id == station.pk
    kinds = list(
        Event.objects.filter(kind__startswith="installation.")
        .order_by("id")
        .values_list("kind", flat=True)
    )
    assert kinds == [
        "installation.requested",
        "installation.approved",
        "installation.organizing",
        "installation.scheduled",
        "installation.installed",
    ]
    rosa_heard = Notification.objects.filter(user=site.rosa, kind="installation").count()
    assert rosa_heard == 4  # every step she did not take herself
    assert OutboxMessage.objects.filter(user=site.rosa, channel="email").count() == 4
    assert Notification.objects.filter(user=site.operator, kind="installation").exists()


def test_the_owner_can_name_their_own_electrician(site, space):
    item = ask(site)
    services.decide(site.world.alice, item.pk, approve=True)
    with pytest.raises(InvalidInput):
        services.hand_over(
            site.world.alice, item.pk, electrician=services.Electrician(name="Volt & Co")
        )

    item = services.hand_over(
        site.world.alice,
        item.pk,
        electrician=services.Electrician(
            name="Piet Volt", company="Volt & Co", email="piet@volt.example"
        ),
    )

    assert (item.status, item.electrician_company) == (S.COORDINATING, "Volt & Co")


def test_a_declined_request_says_why_and_ends(site, space):
    item = ask(site)
    with pytest.raises(InvalidInput):
        services.decide(site.world.alice, item.pk, approve=False)

    item = services.decide(site.world.alice, item.pk, approve=False, reason="No power left")

    assert (item.status, item.decline_reason) == (S.DECLINED, "No power left")
    with pytest.raises(Conflict):
        services.hand_over(site.world.alice, item.pk)
    ask(site)  # a new request is possible after a decline


def test_each_step_is_taken_by_who_may_take_it(site, space):
    world = site.world
    item = ask(site)
    with pytest.raises(PermissionDenied):
        services.decide(site.rosa, item.pk, approve=True)
    with pytest.raises(NotFound):
        services.decide(world.charlie, item.pk, approve=True)
    with pytest.raises(NotFound):
        services.get_installation(world.bob, item.pk)
    services.decide(world.alice, item.pk, approve=True)
    services.hand_over(world.alice, item.pk)

    with pytest.raises(PermissionDenied):
        services.cancel(site.rosa, item.pk)  # handed on: only the owner or operator
    with pytest.raises(PermissionDenied):
        services.schedule(site.rosa, item.pk, site_today(world.prop))

    manager = create_user("maria@example.com", "x", name="Maria Manager")
    Membership.objects.create(user=manager, organization=world.org, role=Role.BUILDING_MANAGER)
    assert services.cancel(manager, item.pk).status == S.CANCELLED


def test_a_resident_cannot_ask_for_another_units_space_or_a_taken_one(site, space):
    other = add_parking_space(
        site.world.alice, site.world.prop.pk, "P9", unit_id=site.other_unit.pk
    )
    with pytest.raises(PermissionDenied):
        ask(site, other.number)
    with pytest.raises(InvalidInput):
        ask(site, "P404")
    with pytest.raises(Conflict):
        ask(site, "P7")  # already has a station
    with pytest.raises(InvalidInput):
        ask(site, kw=0)
    ask(site)
    with pytest.raises(Conflict) as twice:
        ask(site)
    assert twice.value.code == "installation_open"


def test_a_station_serial_is_at_one_space_of_the_site(site, space):
    item = ask(site)
    services.decide(site.world.alice, item.pk, approve=True)
    services.hand_over(site.world.alice, item.pk)
    with pytest.raises(InvalidInput):
        services.schedule(site.operator, item.pk, site_today(site.world.prop) - timedelta(days=1))

    with pytest.raises(Conflict) as taken:
        services.complete(site.operator, item.pk, station_serial="EVB-P7-0001")

    assert taken.value.code == "station_serial_taken"
