"""Charging-station installations through the API (R49)."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from django.test import Client

from doorkeep.accounts.models import Organization, Role
from doorkeep.accounts.services import create_token, create_user
from doorkeep.residents.services import (
    ResidentSpec,
    add_parking_space,
    add_resident,
    add_unit,
    site_today,
)


def bearer(user) -> Client:
    _row, token = create_token(user, "test")
    return Client(headers={"authorization": f"Bearer {token}"})


@pytest.fixture
def parties(world):
    unit = add_unit(world.alice, world.prop.pk, "A-12")
    add_parking_space(world.alice, world.prop.pk, "P8", unit_id=unit.pk)
    rosa = create_user("rosa@example.com", "x", name="Rosa Resident")
    add_resident(
        world.alice,
        world.prop.pk,
        ResidentSpec("Rosa Resident", "rosa@example.com", date(2024, 1, 1), unit_id=unit.pk),
    )
    otto = create_user("otto@example.com", "x", name="Otto Operator")
    platform = Organization.objects.create(name="Doorkeep platform", is_platform=True)
    platform.memberships.create(user=otto, role=Role.PLATFORM_OPERATOR)
    return bearer(rosa), bearer(world.alice), bearer(otto)


def post(client: Client, url: str, body: dict | None = None):
    return client.post(url, body or {}, content_type="application/json")


def test_an_installation_goes_from_request_to_installed_through_the_api(world, parties):
    rosa, alice, otto = parties
    created = post(
        rosa,
        "/api/v1/installations",
        {"property_id": world.prop.pk, "parking_space": "P8", "wished_power_kw": 11},
    )
    assert created.status_code == 201, created.content
    item = created.json()
    assert (item["status"], item["wished_power_kw"]) == ("requested", 11.0)
    url = f"/api/v1/installations/{item['id']}"

    assert post(alice, f"{url}/decision", {"approve": True}).json()["status"] == "approved"
    handed = post(
        alice,
        f"{url}/hand-over",
        {"electrician": {"name": "Piet Volt", "company": "Volt & Co", "phone": "+31 6 1234"}},
    ).json()
    assert handed["status"] == "coordinating"
    assert handed["electrician"]["company"] == "Volt & Co"
    day = (site_today(world.prop) + timedelta(days=7)).isoformat()
    assert post(otto, f"{url}/schedule", {"day": day}).json()["scheduled_for"] == day
    done = post(otto, f"{url}/installed", {"station_serial": "EVB-0042"}).json()

    assert (done["status"], done["station_serial"]) == ("installed", "EVB-0042")
    assert [i["status"] for i in rosa.get("/api/v1/installations").json()] == ["installed"]


def test_outsiders_see_no_installation_and_bad_input_is_a_clear_4xx(world, parties):
    rosa, alice, _otto = parties
    item = post(
        rosa,
        "/api/v1/installations",
        {"property_id": world.prop.pk, "parking_space": "P8", "wished_power_kw": 11},
    ).json()
    charlie = world.bearer(world.charlie)

    assert charlie.get(f"/api/v1/installations/{item['id']}").status_code == 404
    assert charlie.get("/api/v1/installations").json() == []
    assert post(charlie, f"/api/v1/installations/{item['id']}/cancel").status_code == 404
    declined = post(alice, f"/api/v1/installations/{item['id']}/decision", {"approve": False})
    assert declined.status_code == 400
    assert declined.json()["code"] == "reason_required"
    wrong = post(
        rosa,
        "/api/v1/installations",
        {"property_id": world.prop.pk, "parking_space": "P404", "wished_power_kw": 11},
    )
    assert (wrong.status_code, wrong.json()["code"]) == (400, "parking_space_not_found")
    not_a_day = post(alice, f"/api/v1/installations/{item['id']}/schedule", {"day": "next tuesday"})
    assert not_a_day.status_code == 422
