"""The equipment rule has one implementation (badges.access.judge) read two
ways: one badge at a time (a machine asking online) and every badge a machine
should know (a charging station's local list). This walks every case and
checks that the two never disagree, and that a badge the list leaves out is
one the machine would refuse anyway."""

from __future__ import annotations

import itertools
from datetime import timedelta

import pytest

from doorkeep.badges.access import decide_equipment, equipment_list
from doorkeep.badges.models import Badge, BadgeSource, BadgeStatus
from doorkeep.events.models import DenyReason
from doorkeep.keys.models import Person
from doorkeep.properties.models import BillingMode, Property
from doorkeep.residents.models import ParkingSpace, Residency, Unit
from doorkeep.residents.services import site_today

STATUSES = [BadgeStatus.ACTIVE, BadgeStatus.LOST, BadgeStatus.DEACTIVATED, BadgeStatus.PENDING]
SOURCES = [BadgeSource.PLATFORM, BadgeSource.THIRD_PARTY]
LIVING = ["now_home", "now_other_unit", "moved_out", "moves_in_later", "never", "ends_today"]


@pytest.mark.parametrize(
    "mode", [BillingMode.BILLING_AND_PAYMENTS, BillingMode.INDIVIDUAL_STATEMENTS]
)
def test_the_list_and_the_single_decision_agree_on_every_case(world, mode):
    Property.objects.filter(pk=world.prop.pk).update(billing_mode=mode)
    prop = Property.objects.get(pk=world.prop.pk)
    home = Unit.objects.create(property=prop, label="A")
    other = Unit.objects.create(property=prop, label="B")
    private = ParkingSpace.objects.create(property=prop, number="P1", unit=home)
    shared = ParkingSpace.objects.create(property=prop, number="P2")
    today = site_today(prop)
    uids = {}
    for n, (status, source, living) in enumerate(itertools.product(STATUSES, SOURCES, LIVING)):
        person = Person.objects.create(
            organization_id=prop.organization_id, name=f"P{n}", email=f"p{n}@example.com"
        )
        uid = f"04{n:06X}"
        Badge.objects.create(
            organization_id=prop.organization_id,
            person=person,
            uid=uid,
            source=source,
            status=status,
        )
        day = timedelta(days=1)
        if living == "now_home":
            Residency.objects.create(unit=home, person=person, move_in=today - 30 * day)
        elif living == "now_other_unit":
            Residency.objects.create(unit=other, person=person, move_in=today - 30 * day)
        elif living == "moved_out":
            Residency.objects.create(
                unit=home, person=person, move_in=today - 30 * day, move_out=today - day
            )
        elif living == "moves_in_later":
            Residency.objects.create(unit=home, person=person, move_in=today + day)
        elif living == "ends_today":
            Residency.objects.create(
                unit=home, person=person, move_in=today - 30 * day, move_out=today
            )
        uids[uid] = (status, source, living)

    for space in (None, shared, private):
        listed = equipment_list(prop, space=space)
        for uid, case in uids.items():
            single = decide_equipment(prop, uid, space=space)
            if uid in listed:
                kept = listed[uid]
                assert (kept.allowed, kept.reason, kept.until) == (
                    single.allowed,
                    single.reason,
                    single.until,
                ), (case, space)
            else:
                assert not single.allowed, (case, space)
        # What the list must hold so that a station that cannot ask still refuses:
        # every lost badge of anyone who lived here, and every allowed badge.
        for uid, (status, _source, living) in uids.items():
            if status == BadgeStatus.LOST and living != "never":
                assert listed[uid].reason == DenyReason.BADGE_LOST
        allowed = {uid for uid in uids if decide_equipment(prop, uid, space=space).allowed}
        assert allowed == {uid for uid, d in listed.items() if d.allowed}
        assert allowed, "the walk must include allowed badges"


def test_a_resident_who_moved_out_is_told_so(world):
    prop = world.prop
    unit = Unit.objects.create(property=prop, label="A")
    person = Person.objects.create(organization_id=prop.organization_id, name="M", email="m@x.ch")
    Badge.objects.create(
        organization_id=prop.organization_id,
        person=person,
        uid="04AABBCC",
        source=BadgeSource.PLATFORM,
        status=BadgeStatus.ACTIVE,
    )
    today = site_today(prop)
    Residency.objects.create(
        unit=unit,
        person=person,
        move_in=today - timedelta(days=9),
        move_out=today - timedelta(days=1),
    )
    assert decide_equipment(prop, "04AABBCC").reason == DenyReason.MOVED_OUT
    Residency.objects.filter(person=person).update(move_out=today + timedelta(days=3))
    decision = decide_equipment(prop, "04AABBCC")
    assert decision.allowed and decision.until == today + timedelta(days=3)


def test_a_uid_handed_back_here_and_given_to_someone_elsewhere_is_decided_alike(world):
    """The list holds the UID because a former holder lived here; the
    decision reads whoever holds it now. Both must say the same."""
    prop = world.prop
    here = Unit.objects.create(property=prop, label="A")
    other_site = Property.objects.create(organization=prop.organization, name="Elsewhere")
    there = Unit.objects.create(property=other_site, label="Z")
    today = site_today(prop)
    before, now = (
        Person.objects.create(organization_id=prop.organization_id, name=n, email=f"{n}@x.ch")
        for n in ("before", "now")
    )
    Residency.objects.create(unit=here, person=before, move_in=today - timedelta(days=90))
    Residency.objects.create(unit=there, person=now, move_in=today - timedelta(days=9))
    for person, status in ((before, BadgeStatus.DEACTIVATED), (now, BadgeStatus.ACTIVE)):
        Badge.objects.create(
            organization_id=prop.organization_id,
            person=person,
            uid="04CAFE01",
            source=BadgeSource.PLATFORM,
            status=status,
        )
    single = decide_equipment(prop, "04CAFE01")
    listed = equipment_list(prop)["04CAFE01"]
    assert single.reason == listed.reason == DenyReason.NOT_A_RESIDENT
    assert single.badge == listed.badge and single.badge.person == now
