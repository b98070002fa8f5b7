"""Units, parking spaces, residents and the site's billing settings through the API."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from apihelp import error_of, patch_json, post_json

from doorkeep.accounts.models import Membership, Role
from doorkeep.accounts.services import create_user
from doorkeep.badges.models import Badge
from doorkeep.badges.services import register_existing_badge
from doorkeep.events.models import Event, EventKind
from doorkeep.properties.models import Property
from doorkeep.residents.models import Residency, Unit
from doorkeep.residents.services import (
    ResidentSpec,
    add_resident,
    add_unit,
    site_today,
)

PASSWORD = "correct horse battery staple"


def url(world, tail: str = "") -> str:
    return f"/api/v1/properties/{world.prop.pk}/{tail}"


def put_json(client, path: str, body):
    return client.put(path, body, content_type="application/json")


@pytest.fixture
def manager_api(world):
    mia = create_user("mia@example.com", PASSWORD, name="Mia Manager")
    Membership.objects.create(user=mia, organization=world.org, role=Role.BUILDING_MANAGER)
    return world.bearer(mia)


# --- units and parking spaces ------------------------------------------------------------------


def test_the_owner_adds_units_and_lists_them_by_label(world, alice_api):
    first = post_json(alice_api, url(world, "units"), {"label": "  B-3 "})
    post_json(alice_api, url(world, "units"), {"label": "A-12"})

    assert first.status_code == 201
    assert first.json()["label"] == "B-3"
    assert first.json()["property_id"] == world.prop.pk
    listed = alice_api.get(url(world, "units")).json()
    assert [u["label"] for u in listed] == ["A-12", "B-3"]


def test_a_unit_label_used_twice_at_a_site_is_a_conflict(world, alice_api):
    post_json(alice_api, url(world, "units"), {"label": "A-12"})

    error_of(post_json(alice_api, url(world, "units"), {"label": "A-12"}), 409, "unit_exists")


def test_a_parking_space_may_belong_to_a_unit_and_have_a_charging_station(world, alice_api):
    unit = add_unit(world.alice, world.prop.pk, "A-12")

    response = post_json(
        alice_api,
        url(world, "parking-spaces"),
        {"number": "P7", "unit_id": unit.pk, "station_serial": "evb-p7-0001"},
    )
    post_json(alice_api, url(world, "parking-spaces"), {"number": "P1"})

    assert response.status_code == 201
    assert response.json() == {
        "id": response.json()["id"],
        "property_id": world.prop.pk,
        "number": "P7",
        "unit_id": unit.pk,
        "unit": "A-12",
        "station_serial": "EVB-P7-0001",
    }
    listed = alice_api.get(url(world, "parking-spaces")).json()
    assert [(s["number"], s["unit"]) for s in listed] == [("P1", None), ("P7", "A-12")]


def test_a_parking_space_cannot_belong_to_a_unit_of_another_site(world, alice_api):
    charlies = add_unit(world.charlie, world.charlie_prop.pk, "Shed 1")

    response = post_json(
        alice_api, url(world, "parking-spaces"), {"number": "P7", "unit_id": charlies.pk}
    )

    error_of(response, 404, "unit_not_found")
    assert not world.prop.parking_spaces.exists()


# --- residents -------------------------------------------------------------------------------


def test_a_resident_is_added_to_a_unit_named_by_its_label(world, alice_api):
    add_unit(world.alice, world.prop.pk, "A-12")

    response = post_json(
        alice_api,
        url(world, "residents"),
        {
            "name": "Rosa Resident",
            "email": "Rosa@Example.com",
            "unit": "A-12",
            "move_in": "2024-01-01",
        },
    )

    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["name"], body["email"], body["unit"]) == (
        "Rosa Resident",
        "rosa@example.com",
        "A-12",
    )
    assert (body["move_in"], body["move_out"], body["has_account"]) == ("2024-01-01", None, False)
    assert Event.objects.filter(kind=EventKind.RESIDENT_ADDED, property=world.prop).exists()


def test_a_resident_added_with_the_email_of_an_account_is_linked_to_it(world, alice_api):
    unit = add_unit(world.alice, world.prop.pk, "A-12")
    create_user("rosa@example.com", PASSWORD, name="Rosa Resident")

    body = post_json(
        alice_api,
        url(world, "residents"),
        {"email": "rosa@example.com", "unit_id": unit.pk, "move_in": "2024-01-01"},
    ).json()

    assert body["has_account"] is True


def test_a_resident_needs_a_unit(world, alice_api):
    response = post_json(
        alice_api,
        url(world, "residents"),
        {"name": "Rosa", "email": "rosa@example.com", "move_in": "2024-01-01"},
    )

    error_of(response, 400, "unit_required")


def test_a_unit_of_another_site_is_not_found(world, alice_api):
    charlies = add_unit(world.charlie, world.charlie_prop.pk, "Shed 1")

    response = post_json(
        alice_api,
        url(world, "residents"),
        {"email": "rosa@example.com", "unit_id": charlies.pk, "move_in": "2024-01-01"},
    )

    error_of(response, 404, "unit_not_found")
    assert not Residency.objects.exists()


def test_the_residents_list_shows_who_lives_there_on_a_day_and_all_shows_everyone(world, alice_api):
    unit = add_unit(world.alice, world.prop.pk, "A-12")
    today = site_today(world.prop)
    for name, move_in, move_out in [
        ("Past Paul", date(2020, 1, 1), date(2021, 6, 30)),
        ("Rosa Now", date(2021, 1, 1), None),
        ("Future Fay", today + timedelta(days=30), None),
    ]:
        add_resident(
            world.alice,
            world.prop.pk,
            ResidentSpec(
                name, f"{name.split()[1].lower()}@example.com", move_in, unit.pk, "", move_out
            ),
        )

    def names(query: str = "") -> list[str]:
        return [r["name"] for r in alice_api.get(url(world, "residents") + query).json()]

    assert names() == ["Rosa Now"]
    assert names("?on=2021-06-30") == ["Past Paul", "Rosa Now"]
    assert names("?all=true") == ["Past Paul", "Rosa Now", "Future Fay"]


def test_moving_out_sets_the_last_day_and_a_field_left_out_keeps_its_value(world, alice_api):
    unit = add_unit(world.alice, world.prop.pk, "A-12")
    residency = add_resident(
        world.alice,
        world.prop.pk,
        ResidentSpec("Rosa", "rosa@example.com", date(2024, 1, 1), unit_id=unit.pk),
    )

    moved = patch_json(alice_api, f"/api/v1/residents/{residency.pk}", {"move_out": "2026-03-31"})
    earlier = patch_json(alice_api, f"/api/v1/residents/{residency.pk}", {"move_in": "2023-06-01"})

    assert moved.status_code == 200, moved.content
    assert moved.json()["move_out"] == "2026-03-31"
    assert (earlier.json()["move_in"], earlier.json()["move_out"]) == ("2023-06-01", "2026-03-31")
    cleared = patch_json(alice_api, f"/api/v1/residents/{residency.pk}", {"move_out": None})
    assert cleared.json()["move_out"] is None


def test_a_move_out_before_the_move_in_is_refused(world, alice_api):
    unit = add_unit(world.alice, world.prop.pk, "A-12")
    residency = add_resident(
        world.alice,
        world.prop.pk,
        ResidentSpec("Rosa", "rosa@example.com", date(2024, 1, 1), unit_id=unit.pk),
    )

    response = patch_json(
        alice_api, f"/api/v1/residents/{residency.pk}", {"move_out": "2023-12-31"}
    )

    error_of(response, 400, "invalid_dates")
    residency.refresh_from_db()
    assert residency.move_out is None


def test_an_import_with_a_wrong_line_imports_nothing_and_names_the_line(world, alice_api):
    add_unit(world.alice, world.prop.pk, "A-12")
    text = (
        "name,email,unit,move_in\n"
        "Rosa,rosa@example.com,A-12,2024-01-01\n"
        "Paul,not-an-address,A-12,2024-01-01\n"
        "Fay,fay@example.com,Z-99,2024-01-01\n"
    )

    response = post_json(alice_api, url(world, "residents/import"), {"csv": text})

    body = error_of(response, 400, "import_refused")
    errors = body["details"]["errors"]
    assert [e["line"] for e in errors] == [3, 4]
    assert "not-an-address" in errors[0]["message"]
    assert "Z-99" in errors[1]["message"]
    assert "line 3" in body["message"]
    assert not Residency.objects.exists()


def test_an_import_adds_the_units_it_names_when_asked(world, alice_api):
    add_unit(world.alice, world.prop.pk, "A-12")
    text = "Rosa;rosa@example.com;A-12;2024-01-01\nPaul;paul@example.com;B-3;2024-02-01\n"

    response = post_json(
        alice_api, url(world, "residents/import"), {"csv": text, "add_missing_units": True}
    )

    assert response.status_code == 200, response.content
    assert response.json() == {"imported": 2, "units_added": ["B-3"]}
    assert sorted(Unit.objects.values_list("label", flat=True)) == ["A-12", "B-3"]


# --- billing -------------------------------------------------------------------------------


def test_the_billing_settings_are_read(world, alice_api):
    assert alice_api.get(url(world, "billing")).json() == {
        "property_id": world.prop.pk,
        "billing_mode": "individual_statements",
        "currency": "EUR",
        "extra_badge_price_minor": 0,
    }


def test_changing_the_billing_mode_lists_the_badges_that_stop_working_then_needs_confirming(
    world, alice_api
):
    unit = add_unit(world.alice, world.prop.pk, "A-12")
    residency = add_resident(
        world.alice,
        world.prop.pk,
        ResidentSpec("Rosa Resident", "rosa@example.com", date(2024, 1, 1), unit_id=unit.pk),
    )
    badge = register_existing_badge(
        world.alice, world.prop.pk, residency.person_id, uid="04A1B2C3", atqa="0004", sak="08"
    )
    change = {"billing_mode": "billing_and_payments", "extra_badge_price_minor": 1500}

    preview = put_json(alice_api, url(world, "billing"), change)

    body = error_of(preview, 409, "confirm_billing_mode")
    assert body["details"]["badges_stopping"] == [
        {"id": badge.pk, "uid": "04A1B2C3", "person": "Rosa Resident"}
    ]
    assert "Billing and payments" in body["message"]
    world.prop.refresh_from_db()
    assert (world.prop.billing_mode, world.prop.extra_badge_price_minor) == (
        "individual_statements",
        0,
    )

    confirmed = put_json(alice_api, url(world, "billing"), {**change, "confirm": True})

    assert confirmed.status_code == 200, confirmed.content
    assert confirmed.json()["billing_mode"] == "billing_and_payments"
    assert confirmed.json()["extra_badge_price_minor"] == 1500
    assert Event.objects.filter(kind=EventKind.BILLING_MODE_CHANGED).count() == 1
    assert Badge.objects.get(pk=badge.pk).status == "active"  # kept; the stations refuse it


def test_the_badge_price_and_currency_change_without_confirming(world, alice_api):
    response = put_json(
        alice_api,
        url(world, "billing"),
        {
            "billing_mode": "individual_statements",
            "currency": "CHF",
            "extra_badge_price_minor": 2000,
        },
    )

    assert response.status_code == 200, response.content
    prop = Property.objects.get(pk=world.prop.pk)
    assert (prop.billing_mode, prop.currency, prop.extra_badge_price_minor) == (
        "individual_statements",
        "CHF",
        2000,
    )


def test_a_price_out_of_range_or_an_unknown_mode_is_a_422(world, alice_api):
    for body in ({"extra_badge_price_minor": -1}, {"billing_mode": "free_for_all"}):
        error_of(put_json(alice_api, url(world, "billing"), body), 422, "validation_error")


# --- who may ---------------------------------------------------------------------------------


@pytest.mark.parametrize("tail", ["units", "parking-spaces", "residents", "billing"])
def test_a_plain_member_gets_403_for_the_residents_data_and_a_manager_may_read_it(
    world, bob_api, manager_api, tail
):
    add_resident(
        world.alice,
        world.prop.pk,
        ResidentSpec(
            "Rosa Resident",
            "rosa@example.com",
            date(2024, 1, 1),
            unit_id=add_unit(world.alice, world.prop.pk, "A-12").pk,
        ),
    )

    refused = error_of(bob_api.get(url(world, tail)), 403, "forbidden")

    assert "Rosa" not in refused["message"]
    assert manager_api.get(url(world, tail)).status_code == 200


def test_an_outsider_gets_404_for_the_residents_list(world, charlie_api):
    error_of(charlie_api.get(url(world, "residents")), 404)


def test_an_outsider_gets_404_before_being_told_a_resident_needs_a_unit(world, charlie_api):
    response = post_json(
        charlie_api,
        url(world, "residents"),
        {"email": "rosa@example.com", "move_in": "2024-01-01"},
    )

    error_of(response, 404)
