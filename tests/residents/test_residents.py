"""Units, parking spaces, residents and the billing mode, through their services."""

from __future__ import annotations

from datetime import date

import pytest

from doorkeep.badges import services as badges
from doorkeep.badges.models import Badge, BadgeStatus
from doorkeep.core.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from doorkeep.events.models import Event, EventKind
from doorkeep.properties.models import BillingMode, Property
from doorkeep.residents.models import Residency, Unit
from doorkeep.residents.selectors import is_resident, residencies_on
from doorkeep.residents.services import (
    ResidentSpec,
    add_parking_space,
    add_resident,
    add_unit,
    change_residency,
    import_residents,
    set_badge_price,
    set_billing_mode,
)


def test_a_unit_label_is_unique_in_its_site(world):
    add_unit(world.alice, world.prop.pk, "A-1")

    with pytest.raises(Conflict):
        add_unit(world.alice, world.prop.pk, " A-1 ")
    add_unit(world.charlie, world.charlie_prop.pk, "A-1")  # another site: fine


def test_residents_are_kept_by_owners_and_managers_only(world):
    with pytest.raises(PermissionDenied):
        add_unit(world.bob, world.prop.pk, "A-1")
    with pytest.raises(NotFound):
        add_unit(world.charlie, world.prop.pk, "A-1")


def test_a_unit_or_space_of_another_site_is_refused(world):
    theirs = add_unit(world.charlie, world.charlie_prop.pk, "Shed flat")

    with pytest.raises(NotFound):
        add_parking_space(world.alice, world.prop.pk, "P1", unit_id=theirs.pk)
    with pytest.raises(NotFound):
        add_resident(
            world.alice,
            world.prop.pk,
            ResidentSpec("Eve", "eve@example.com", date(2025, 1, 1), unit_id=theirs.pk),
        )


def test_a_resident_lives_there_from_move_in_to_move_out_both_days_included(world):
    unit = add_unit(world.alice, world.prop.pk, "A-1")
    residency = add_resident(
        world.alice,
        world.prop.pk,
        ResidentSpec("Eve", "eve@example.com", date(2025, 3, 1), unit_label="A-1"),
    )
    change_residency(world.alice, residency.pk, move_out=date(2025, 6, 30))

    person = residency.person_id
    assert not is_resident(person, world.prop.pk, date(2025, 2, 28))
    assert is_resident(person, world.prop.pk, date(2025, 3, 1))
    assert is_resident(person, world.prop.pk, date(2025, 6, 30))
    assert not is_resident(person, world.prop.pk, date(2025, 7, 1))
    assert [r.unit for r in residencies_on(world.prop, date(2025, 4, 1))] == [unit]
    assert Event.objects.filter(kind=EventKind.RESIDENT_CHANGED, actor=world.alice).exists()


def test_dates_that_make_no_sense_are_refused(world):
    add_unit(world.alice, world.prop.pk, "A-1")
    residency = add_resident(
        world.alice,
        world.prop.pk,
        ResidentSpec("Eve", "eve@example.com", date(2025, 3, 1), unit_label="A-1"),
    )

    with pytest.raises(InvalidInput):
        change_residency(world.alice, residency.pk, move_out=date(2025, 2, 1))
    with pytest.raises(Conflict) as overlap:
        add_resident(
            world.alice,
            world.prop.pk,
            ResidentSpec("Eve", "eve@example.com", date(2025, 5, 1), unit_label="A-1"),
        )
    assert overlap.value.code == "residency_overlaps"


def test_a_resident_with_an_account_is_linked_to_it(world):
    add_unit(world.alice, world.prop.pk, "A-1")

    residency = add_resident(
        world.alice,
        world.prop.pk,
        ResidentSpec("Bob", "BOB@example.com", date(2025, 1, 1), unit_label="A-1"),
    )

    assert residency.person.user == world.bob


# --- import ------------------------------------------------------------------------------------

GOOD = """name,email,unit,move_in
Eve Example,eve@example.com,A-1,2025-01-01
Finn Example,finn@example.com,A-2,2025-02-15
"""


def test_an_import_adds_every_line(world):
    add_unit(world.alice, world.prop.pk, "A-1")
    add_unit(world.alice, world.prop.pk, "A-2")

    result = import_residents(world.alice, world.prop.pk, GOOD)

    assert len(result.imported) == 2
    assert sorted(Residency.objects.values_list("person__email", "unit__label")) == [
        ("eve@example.com", "A-1"),
        ("finn@example.com", "A-2"),
    ]
    assert Event.objects.filter(kind=EventKind.RESIDENTS_IMPORTED).count() == 1


def test_an_import_with_a_wrong_line_imports_nothing_and_names_each_wrong_line(world):
    add_unit(world.alice, world.prop.pk, "A-1")
    text = (
        "Eve Example;eve@example.com;A-1;2025-01-01\n"
        "Finn Example;finn-at-example.com;A-1;2025-01-01\n"
        "Gus Example;gus@example.com;Z-9;2025-01-01\n"
        "Hal Example;hal@example.com;A-1;31/01/2025\n"
    )

    with pytest.raises(InvalidInput) as refused:
        import_residents(world.alice, world.prop.pk, text)

    lines = [e["line"] for e in refused.value.details["errors"]]
    assert lines == [2, 3, 4]
    assert "line 2" in refused.value.message and "Nothing was imported" in refused.value.message
    assert "Z-9 is not a unit of this site" in refused.value.message
    assert not Residency.objects.exists()


def test_an_import_can_add_the_units_it_names(world):
    result = import_residents(world.alice, world.prop.pk, GOOD, add_missing_units=True)

    assert sorted(result.units_added) == ["A-1", "A-2"]
    assert Unit.objects.filter(property=world.prop).count() == 2


def test_an_import_that_fails_while_writing_leaves_nothing_behind(world):
    add_unit(world.alice, world.prop.pk, "A-1")
    add_resident(
        world.alice,
        world.prop.pk,
        ResidentSpec("Eve", "eve@example.com", date(2024, 1, 1), unit_label="A-1"),
    )
    text = "Zed,zed@example.com,A-2,2025-01-01\nEve,eve@example.com,A-1,2025-01-01\n"

    with pytest.raises(InvalidInput) as refused:
        import_residents(world.alice, world.prop.pk, text, add_missing_units=True)

    assert refused.value.details["errors"][0]["line"] == 2
    assert Residency.objects.count() == 1
    assert not Unit.objects.filter(label="A-2").exists()


def test_an_empty_import_says_so(world):
    with pytest.raises(InvalidInput) as refused:
        import_residents(world.alice, world.prop.pk, "name,email,unit,move_in\n\n")
    assert refused.value.code == "empty_import"


# --- billing mode ------------------------------------------------------------------------------


def test_changing_to_billing_and_payments_first_shows_the_badges_that_stop(world):
    add_unit(world.alice, world.prop.pk, "A-1")
    residency = add_resident(
        world.alice,
        world.prop.pk,
        ResidentSpec("Eve", "eve@example.com", date(2024, 1, 1), unit_label="A-1"),
    )
    badge = badges.register_existing_badge(
        world.alice, world.prop.pk, residency.person_id, uid="04A1B2C3", atqa="0004", sak="08"
    )

    preview = set_billing_mode(
        world.alice, world.prop.pk, BillingMode.BILLING_AND_PAYMENTS, confirm=False
    )

    assert not preview.changed
    assert [b.pk for b in preview.badges_stopping] == [badge.pk]
    assert Property.objects.get(pk=world.prop.pk).billing_mode == BillingMode.INDIVIDUAL_STATEMENTS

    done = set_billing_mode(
        world.alice, world.prop.pk, BillingMode.BILLING_AND_PAYMENTS, confirm=True
    )

    assert done.changed
    assert Property.objects.get(pk=world.prop.pk).billing_mode == BillingMode.BILLING_AND_PAYMENTS
    assert Badge.objects.get(pk=badge.pk).status == BadgeStatus.ACTIVE  # nothing deleted
    assert Event.objects.filter(kind=EventKind.BILLING_MODE_CHANGED).count() == 1


def test_a_billing_mode_that_does_not_exist_is_refused(world):
    with pytest.raises(InvalidInput):
        set_billing_mode(world.alice, world.prop.pk, "free_for_all", confirm=True)
    with pytest.raises(NotFound):
        set_billing_mode(
            world.charlie, world.prop.pk, BillingMode.BILLING_AND_PAYMENTS, confirm=True
        )


def test_the_price_of_an_extra_badge_is_in_minor_units_of_chf_or_eur(world):
    prop = set_badge_price(world.alice, world.prop.pk, currency="CHF", price_minor=2000)
    assert (prop.currency, prop.extra_badge_price_minor) == ("CHF", 2000)

    with pytest.raises(InvalidInput):
        set_badge_price(world.alice, world.prop.pk, currency="USD", price_minor=2000)
    with pytest.raises(InvalidInput):
        set_badge_price(world.alice, world.prop.pk, currency="EUR", price_minor=-1)
