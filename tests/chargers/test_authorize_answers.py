"""Authorize is answered from the site's decisions held in the gateway
(gateway/ocpp/answers.py), read with the same rule as the database's answer
(reports.authorize). Compared here on every case, events included, and
shown to follow a change at once (the notice drops the decisions)."""

from __future__ import annotations

import itertools
from datetime import timedelta

import pytest
from charger_values import UID
from csms_helpers import Linked
from gateway_helpers import eventually

from doorkeep.badges import services as badges
from doorkeep.badges.models import Badge, BadgeSource, BadgeStatus
from doorkeep.chargers import reports
from doorkeep.events.models import Event, EventKind
from doorkeep.keys.models import Person
from doorkeep.properties.models import BillingMode, Property
from doorkeep.residents.models import Residency
from doorkeep.residents.services import site_today

STATUSES = [BadgeStatus.ACTIVE, BadgeStatus.LOST, BadgeStatus.DEACTIVATED, BadgeStatus.PENDING]
SOURCES = [BadgeSource.PLATFORM, BadgeSource.THIRD_PARTY]
LIVING = ["home", "other_unit", "moved_out", "later", "never", "ends_today"]


@pytest.mark.parametrize(
    "mode", [BillingMode.BILLING_AND_PAYMENTS, BillingMode.INDIVIDUAL_STATEMENTS]
)
def test_the_held_decisions_answer_as_the_database_on_every_case(stations, mode):
    site = stations.site
    Property.objects.filter(pk=site.world.prop.pk).update(billing_mode=mode)
    today = site_today(site.world.prop)
    day = timedelta(days=1)
    uids = []
    for n, (status, source, living) in enumerate(itertools.product(STATUSES, SOURCES, LIVING)):
        person = Person.objects.create(
            organization_id=site.world.org.pk, name=f"P{n}", email=f"p{n}@example.com"
        )
        uid = f"04{n:06X}"
        Badge.objects.create(
            organization_id=site.world.org.pk, person=person, uid=uid, source=source, status=status
        )
        unit = site.other_unit if living == "other_unit" else site.unit
        dates = {
            "home": (today - 30 * day, None),
            "other_unit": (today - 30 * day, None),
            "moved_out": (today - 30 * day, today - day),
            "later": (today + day, None),
            "ends_today": (today - 30 * day, today),
        }
        if living in dates:
            move_in, move_out = dates[living]
            Residency.objects.create(unit=unit, person=person, move_in=move_in, move_out=move_out)
        uids.append(uid)
    uids += [UID, "04FFFFFFFF", "not a uid"]
    answered_fast = 0
    for station in (stations.shared, stations.private):
        place, _label = reports.place_of(station.pk)
        decided = reports.decided_for(place)
        for uid in uids:
            slow = reports.authorize(station.pk, uid, log=False)
            fast = reports.answer_from(decided, uid)
            if fast is not None:
                answered_fast += 1
                assert fast == slow, (uid, station.charge_point_id)
    assert answered_fast > 50  # most of the walk is answered from the decisions


def test_an_answer_from_the_decisions_is_logged_as_the_databases_is(stations, gateway):
    with Linked(gateway, "CP-SHARED-1") as linked:
        assert linked.authorize(UID) == "Accepted"
        assert linked.authorize(UID) == "Accepted"  # from the decisions now
    eventually(lambda: Event.objects.filter(kind=EventKind.CHARGING_AUTHORIZED).count() == 2)
    first, second = Event.objects.filter(kind=EventKind.CHARGING_AUTHORIZED).order_by("id")
    for field in (
        "organization_id",
        "property_id",
        "station_id",
        "person_id",
        "reason",
        "credential_kind",
        "summary",
        "data",
    ):
        assert getattr(first, field) == getattr(second, field), field
    assert second.person_id == stations.site.rosa_person.pk


def test_a_change_reaches_the_answers_at_once(stations, gateway):
    with Linked(gateway, "CP-SHARED-1") as linked:
        assert linked.authorize(UID) == "Accepted"
        badges.report_lost(stations.site.rosa, stations.badge.pk)
        eventually(lambda: linked.authorize(UID) == "Blocked")
        refused = Event.objects.filter(kind=EventKind.CHARGING_REFUSED).last()
        assert refused is not None and refused.reason == "badge_lost"


def test_many_answers_are_written_in_statements_of_many_rows(stations):
    from datetime import UTC, datetime

    place, label = reports.place_of(stations.shared.pk)
    decided = reports.decided_for(place)
    answer = reports.answer_from(decided, UID)
    assert answer is not None
    now = datetime.now(UTC)
    items = [
        reports.Answered(stations.shared.pk, label, decided, UID, answer, now)
        for _ in range(reports.ANSWER_ROWS + 10)
    ]
    reports.record_answers(items)
    written = Event.objects.filter(kind=EventKind.CHARGING_AUTHORIZED, station=stations.shared)
    assert written.count() == reports.ANSWER_ROWS + 10
    assert {e.person_id for e in written} == {stations.site.rosa_person.pk}
