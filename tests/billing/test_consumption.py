"""Consumption figures (billing/consumption.py): months and days summed
from the record of use in one query each, a month counted by the site's
local day (not UTC's), currencies never added together, a person's uses
and a unit's when the person moved between units, the CSV, and who may read
which scope (consumption_world.py describes the data)."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from billing.consumption_world import Consumers, build
from doorkeep import policy
from doorkeep.accounts.models import Membership, Role
from doorkeep.billing import consumption
from doorkeep.billing.models import Use
from doorkeep.core.errors import NotFound, PermissionDenied, Unprocessable


@pytest.fixture
def c(world: Any) -> Consumers:
    return build(world)


def _month(period: consumption.Period, yyyymm: str) -> consumption.Row:
    (row,) = [r for r in period.rows if r.start is not None and f"{r.start:%Y-%m}" == yyyymm]
    return row


def test_a_use_belongs_to_the_month_of_its_local_day_not_of_utc(c: Consumers) -> None:
    period = consumption.months(consumption.of_site(c.world.alice, c.prop.pk), 2025)

    # 2025-03-31 22:30 UTC is 1 April 00:30 in Zurich: April's.
    assert Use.objects.filter(started_at=datetime(2025, 3, 31, 22, 30, tzinfo=UTC)).get().day == (
        date(2025, 4, 1)
    )
    march, april = _month(period, "2025-03"), _month(period, "2025-04")
    assert (march.charging.uses, march.charging.energy_wh) == (1, 10_000)
    assert (april.charging.uses, april.charging.energy_wh) == (1, 20_500)
    assert march.cost("CHF").charging == 300
    assert april.cost("CHF").charging == 615


def test_a_year_has_twelve_months_in_order_and_a_total(c: Consumers) -> None:
    period = consumption.months(consumption.of_site(c.world.alice, c.prop.pk), 2025)

    assert [f"{r.start:%Y-%m}" for r in period.rows] == [f"2025-{m:02d}" for m in range(1, 13)]
    assert _month(period, "2025-01").uses == 0
    july = _month(period, "2025-07")
    assert (july.laundry.uses, july.badge.uses, july.charging.uses) == (1, 1, 1)
    assert july.cost("CHF").total == 259 + 1500 + 210
    assert period.total.uses == 6
    assert period.total.energy_wh == 10_000 + 20_500 + 1_200 + 900 + 7_000
    assert period.total.cost("CHF").total == 300 + 615 + 262 + 259 + 1500 + 210
    assert period.currencies == ["CHF"]


def test_a_residents_own_span_sites_with_a_total_per_currency_never_added(c: Consumers) -> None:
    period = consumption.months(consumption.mine(c.rosa), 2025)

    july = _month(period, "2025-07")
    assert period.currencies == ["CHF", "EUR"]
    assert july.cost("CHF").total == 259 + 1500
    assert july.cost("EUR").total == 300 + 100
    assert (july.cost("EUR").laundry, july.cost("EUR").charging) == (300, 100)
    assert period.total.cost("CHF").total == 300 + 615 + 262 + 259 + 1500
    assert period.total.cost("EUR").total == 400
    # Energy is energy wherever it was used; Bruno's is not hers.
    assert july.energy_wh == 900 + 800 + 4_000
    assert period.total.uses == 7


def test_a_resident_can_narrow_to_one_of_their_sites(c: Consumers) -> None:
    period = consumption.months(consumption.mine(c.rosa, c.shed.pk), 2025)

    assert period.currencies == ["EUR"]
    assert period.total.uses == 2


def test_a_resident_cannot_narrow_to_a_site_where_they_never_lived(c: Consumers) -> None:
    with pytest.raises(NotFound):
        consumption.mine(c.bruno, c.shed.pk)


def test_a_unit_keeps_the_uses_of_the_days_each_person_lived_there(c: Consumers) -> None:
    a12 = consumption.months(consumption.of_unit(c.world.alice, c.a12.pk), 2025)
    b3 = consumption.months(consumption.of_unit(c.world.alice, c.b3.pk), 2025)

    # Rosa in A-12 until June; Bruno from July. Rosa's July is B-3's.
    assert [f"{r.start:%m}" for r in a12.rows if r.uses] == ["03", "04", "06", "07"]
    assert _month(a12, "2025-07").charging.energy_wh == 7_000
    assert _month(a12, "2025-07").laundry.uses == 0
    assert [f"{r.start:%m}" for r in b3.rows if r.uses] == ["07"]
    assert (_month(b3, "2025-07").laundry.uses, _month(b3, "2025-07").badge.uses) == (1, 1)


def test_a_person_who_moved_keeps_their_uses_in_both_units(c: Consumers) -> None:
    scope = consumption.of_resident(c.world.alice, c.prop.pk, c.rosa_person.pk)
    period = consumption.months(scope, 2025)

    assert period.total.uses == 5
    units = consumption.by_unit(scope, date(2025, 1, 1), date(2026, 1, 1))
    assert [(g.name, g.row.uses) for g in units] == [("A-12", 3), ("B-3", 2)]


def test_the_days_of_a_month_and_the_groups_per_unit_and_resident(c: Consumers) -> None:
    scope = consumption.of_site(c.world.alice, c.prop.pk)
    days = consumption.days(scope, date(2025, 7, 1))

    assert len(days.rows) == 31
    assert {r.start.day: r.uses for r in days.rows if r.start and r.uses} == {2: 1, 5: 1, 10: 1}
    assert days.total.cost("CHF").total == 259 + 1500 + 210
    residents = consumption.by_resident(scope, date(2025, 7, 1), date(2025, 8, 1))
    assert [(g.name, g.row.cost("CHF").total) for g in residents] == [
        ("Bruno Neighbour", 210),
        ("Rosa Resident", 1759),
    ]
    units = consumption.by_unit(scope, date(2025, 7, 1), date(2025, 8, 1))
    assert [(g.key, g.row.uses) for g in units] == [(c.a12.pk, 1), (c.b3.pk, 2)]


def test_each_figure_set_is_one_query(c: Consumers) -> None:
    scope = consumption.of_site(c.world.alice, c.prop.pk)
    for read in (
        lambda: consumption.months(scope, 2025),
        lambda: consumption.months(scope, None),
        lambda: consumption.days(scope, date(2025, 7, 1)),
        lambda: consumption.by_unit(scope, date(2025, 7, 1), date(2025, 8, 1)),
        lambda: consumption.by_resident(scope, date(2025, 7, 1), date(2025, 8, 1)),
    ):
        with CaptureQueriesContext(connection) as queries:
            read()
        assert len(queries) == 1, [q["sql"] for q in queries]


def test_the_last_12_months_end_with_this_month_at_the_site(c: Consumers, time_machine) -> None:
    # 31 July 23:30 UTC is already August in Zurich.
    time_machine.move_to(datetime(2025, 7, 31, 23, 30, tzinfo=UTC), tick=False)
    period = consumption.months(consumption.of_site(c.world.alice, c.prop.pk), None)

    assert period.year is None
    assert (f"{period.rows[0].start:%Y-%m}", f"{period.rows[-1].start:%Y-%m}") == (
        "2024-09",
        "2025-08",
    )
    assert period.total.uses == 6


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("2026-13", "2026-13 is not a month"),
        ("2026-00", "is not a month"),
        ("2026-1", "YYYY-MM"),
        ("march", "YYYY-MM"),
        ("1999-12", "between 2000 and 2100"),
    ],
)
def test_a_month_that_is_not_one_is_refused_with_a_message(text: str, message: str) -> None:
    with pytest.raises(Unprocessable) as refused:
        consumption.parse_month(text)
    assert message in refused.value.message
    assert refused.value.status == 422


@pytest.mark.parametrize("text", ["1999", "2101", "99999999999999999999", "20x6", "-2026"])
def test_a_year_out_of_range_or_not_a_number_is_refused(text: str) -> None:
    with pytest.raises(Unprocessable) as refused:
        consumption.parse_year(text)
    assert refused.value.code == "invalid_year"


def test_the_csv_has_a_line_per_use_exact_figures_and_guarded_cells(c: Consumers) -> None:
    scope = consumption.mine(c.rosa)
    rows = consumption.uses(scope, date(2025, 7, 1), date(2025, 8, 1))
    lines = list(csv.reader(io.StringIO("".join(consumption.uses_csv(rows)))))

    assert lines[0] == list(consumption.CSV_COLUMNS)
    body = [dict(zip(lines[0], line, strict=True)) for line in lines[1:]]
    assert [(r["day"], r["kind"], r["amount"], r["currency"]) for r in body] == [
        ("2025-07-02", "laundry", "2.59", "CHF"),
        ("2025-07-03", "laundry", "3.00", "EUR"),
        ("2025-07-04", "charging", "1.00", "EUR"),
        ("2025-07-05", "badge", "15.00", "CHF"),
    ]
    shed_wash = body[1]
    assert shed_wash["label"] == "'+Washer 1 · Eco 40"  # not a formula
    assert shed_wash["energy_kwh"] == "0.800"
    assert shed_wash["started_local"] == "2025-07-03T09:00:00+02:00"
    assert (shed_wash["site"], shed_wash["unit"]) == ("Charlie's Shed", "Loft")
    assert body[0]["started_local"] == "2025-07-02T10:00:00+02:00"
    assert body[0]["unit"] == "B-3"


def test_managers_and_read_only_collaborators_read_a_site_and_a_plain_member_is_refused(
    c: Consumers,
) -> None:
    world = c.world
    with pytest.raises(PermissionDenied) as refused:
        consumption.of_site(world.bob, c.prop.pk)
    assert "consumption" in refused.value.message
    with pytest.raises(PermissionDenied):
        consumption.of_unit(world.bob, c.a12.pk)
    with pytest.raises(PermissionDenied):
        consumption.of_resident(world.bob, c.prop.pk, c.rosa_person.pk)
    for role in (Role.READ_ONLY, Role.BUILDING_MANAGER):
        Membership.objects.filter(user=world.bob).update(role=role)
        policy.forget_roles(world.bob)
        assert consumption.months(consumption.of_site(world.bob, c.prop.pk), 2025).total.uses == 6
        assert consumption.months(consumption.of_unit(world.bob, c.b3.pk), 2025).total.uses == 2


def test_another_organizations_site_unit_and_person_are_not_found(c: Consumers) -> None:
    world = c.world
    for read in (
        lambda: consumption.of_site(world.charlie, c.prop.pk),
        lambda: consumption.of_unit(world.charlie, c.a12.pk),
        lambda: consumption.of_resident(world.charlie, c.prop.pk, c.rosa_person.pk),
        # Charlie's own site, with a person of Alice's organization
        lambda: consumption.of_resident(world.charlie, c.shed.pk, c.rosa_person.pk),
        # Alice's site, with Charlie's person of the same resident
        lambda: consumption.of_resident(world.alice, c.prop.pk, c.rosa_shed_person.pk),
    ):
        with pytest.raises(NotFound):
            read()


def test_a_person_of_the_organization_who_never_lived_at_the_site_is_not_found(
    c: Consumers, world: Any
) -> None:
    from doorkeep.properties.services import create_property

    other = create_property(world.alice, world.org.pk, name="Other House")
    with pytest.raises(NotFound):
        consumption.of_resident(world.alice, other.pk, c.rosa_person.pk)


@pytest.mark.parametrize(
    ("largest", "top", "step"),
    [(0, 1.0, 0.25), (17.59, 20, 5), (20.5, 30, 10), (3, 3, 1), (0.4, 0.4, 0.1), (1234, 1500, 500)],
)
def test_a_charts_axis_goes_in_round_steps_just_above_the_largest_bar(
    largest: float, top: float, step: float
) -> None:
    from doorkeep.web.consumption_charts import nice_scale

    assert nice_scale(largest) == pytest.approx((top, step))


def test_a_charts_bars_stack_their_kinds_in_proportion(c: Consumers) -> None:
    from doorkeep.web.consumption_charts import chart

    period = consumption.months(consumption.of_site(c.world.alice, c.prop.pk), 2025)
    drawn = chart(period, measure="cost", currency="CHF")

    july = next(bar for bar in drawn.bars if bar.key == "2025-07")
    heights = {s.kind: float(s.height) for s in july.segments}
    assert list(heights) == ["charging", "laundry", "badge"]  # from the bottom up
    assert heights["badge"] / heights["charging"] == pytest.approx(1500 / 210, rel=0.01)
    bottom = {s.kind: float(s.y) + float(s.height) for s in july.segments}
    assert bottom["laundry"] == pytest.approx(float(july.segments[0].y))
    assert [t.label for t in drawn.ticks] == ["0", "5", "10", "15", "20"]
    assert [b.label for b in drawn.bars][:3] == ["Jan", "Feb", "Mar"]
    assert drawn.bars[0].sublabel == "2025" and drawn.bars[1].sublabel == ""
