"""Properties and their entries through the API."""

from __future__ import annotations

from apihelp import error_of, post_json

from doorkeep.accounts.models import Membership, Role
from doorkeep.properties.models import Entry, Property


def test_it_lists_the_properties_of_your_organizations_with_their_entries(world, alice_api):
    response = alice_api.get("/api/v1/properties")

    assert response.status_code == 200
    [prop] = response.json()
    assert prop["id"] == world.prop.pk
    assert prop["name"] == "Canal House"
    assert prop["address"] == "Keizersgracht 1"
    assert prop["timezone"] == "Europe/Amsterdam"
    assert prop["organization_id"] == world.org.pk
    assert [e["name"] for e in prop["entries"]] == ["Front door", "Garage"]


def test_a_member_sees_the_properties_of_the_organization(world, bob_api):
    assert [p["name"] for p in bob_api.get("/api/v1/properties").json()] == ["Canal House"]


def test_it_creates_a_property(world, alice_api):
    response = post_json(
        alice_api,
        "/api/v1/properties",
        {
            "organization_id": world.org.pk,
            "name": "  Harbour Office ",
            "address": "Kade 9",
            "timezone": "Europe/Paris",
        },
    )

    assert response.status_code == 201
    body = response.json()
    assert body["name"] == "Harbour Office"
    assert body["timezone"] == "Europe/Paris"
    assert body["entries"] == []
    prop = Property.objects.get(pk=body["id"])
    assert prop.organization_id == world.org.pk
    listed = [p["name"] for p in alice_api.get("/api/v1/properties").json()]
    assert listed == ["Canal House", "Harbour Office"]


def test_a_new_property_is_in_europe_amsterdam_unless_told(world, alice_api):
    response = post_json(
        alice_api, "/api/v1/properties", {"organization_id": world.org.pk, "name": "Loft"}
    )

    assert response.json()["timezone"] == "Europe/Amsterdam"


def test_it_rejects_an_unknown_time_zone(world, alice_api):
    response = post_json(
        alice_api,
        "/api/v1/properties",
        {
            "organization_id": world.org.pk,
            "name": "Mars base",
            "timezone": "Mars/Olympus_Mons",
        },
    )

    body = error_of(response, 400, "invalid_timezone")
    assert "Mars/Olympus_Mons" in body["message"]
    assert not Property.objects.filter(name="Mars base").exists()


def test_it_rejects_a_blank_property_name(world, alice_api):
    response = post_json(
        alice_api, "/api/v1/properties", {"organization_id": world.org.pk, "name": "   "}
    )

    error_of(response, 400, "name_required")


def test_a_building_manager_may_add_properties(world, bob_api):
    Membership.objects.filter(user=world.bob).update(role=Role.BUILDING_MANAGER)

    response = post_json(
        bob_api, "/api/v1/properties", {"organization_id": world.org.pk, "name": "Depot"}
    )

    assert response.status_code == 201


def test_a_member_may_not_add_a_property(world, bob_api):
    body = error_of(
        post_json(
            bob_api, "/api/v1/properties", {"organization_id": world.org.pk, "name": "Depot"}
        ),
        403,
        "forbidden",
    )

    assert "lock owners and building managers" in body["message"]


def test_nobody_can_add_a_property_to_an_organization_they_are_not_in(world, charlie_api):
    error_of(
        post_json(
            charlie_api, "/api/v1/properties", {"organization_id": world.org.pk, "name": "Sneaky"}
        ),
        404,
        "not_found",
    )

    assert not Property.objects.filter(name="Sneaky").exists()


def test_it_shows_one_property(world, alice_api):
    response = alice_api.get(f"/api/v1/properties/{world.prop.pk}")

    assert response.status_code == 200
    assert response.json()["name"] == "Canal House"


def test_an_unknown_property_is_not_found(world, alice_api):
    error_of(alice_api.get("/api/v1/properties/999999"), 404, "not_found")


def test_it_adds_an_entry(world, alice_api):
    response = post_json(
        alice_api, f"/api/v1/properties/{world.prop.pk}/entries", {"name": "Bike shed"}
    )

    assert response.status_code == 201
    assert response.json()["name"] == "Bike shed"
    assert response.json()["property_id"] == world.prop.pk
    entries = alice_api.get(f"/api/v1/properties/{world.prop.pk}").json()["entries"]
    assert [e["name"] for e in entries] == ["Bike shed", "Front door", "Garage"]


def test_it_refuses_a_second_entry_with_the_same_name(world, alice_api):
    response = post_json(
        alice_api, f"/api/v1/properties/{world.prop.pk}/entries", {"name": "Garage"}
    )

    body = error_of(response, 409, "entry_exists")
    assert "Garage" in body["message"]
    assert Entry.objects.filter(property=world.prop, name="Garage").count() == 1


def test_the_same_entry_name_is_fine_in_another_property(world, charlie_api):
    # Charlie's own new property: its first entry needs no building management.
    yard = {"organization_id": world.charlie_org.pk, "name": "Yard"}
    yard_id = post_json(charlie_api, "/api/v1/properties", yard).json()["id"]
    response = post_json(charlie_api, f"/api/v1/properties/{yard_id}/entries", {"name": "Garage"})

    assert response.status_code == 201


def test_it_validates_an_entry_body(world, alice_api):
    error_of(
        post_json(alice_api, f"/api/v1/properties/{world.prop.pk}/entries", {"name": ""}),
        422,
        "validation_error",
    )


def test_a_member_may_not_add_an_entry(world, bob_api):
    error_of(
        post_json(bob_api, f"/api/v1/properties/{world.prop.pk}/entries", {"name": "Roof"}),
        403,
        "forbidden",
    )
