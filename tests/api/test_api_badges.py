"""Badges through the API: a resident asks, the platform operator works the
request, owners register existing badges, and a lost badge is switched off."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

import pytest
from apihelp import error_of, post_json
from django.test import Client

from doorkeep.accounts.models import Membership, Organization, Role, User
from doorkeep.accounts.services import create_user
from doorkeep.badges.models import Badge, BadgeRequest
from doorkeep.keys.access import decide
from doorkeep.keys.models import Person
from doorkeep.keys.services import CredentialSpec, HolderSpec, KeySpec, issue_key
from doorkeep.properties.models import BillingMode, Property
from doorkeep.residents.services import ResidentSpec, add_parking_space, add_resident, add_unit

PASSWORD = "correct horse battery staple"
UID = "04A1B2C3D4E5F6"
CLASSIC_1K = {"uid": "04:a1:b2:c3", "atqa": "0004", "sak": "08"}
DESFIRE = {"uid": "04A1B2C3D4E5F7", "atqa": "0344", "sak": "20"}


@dataclass
class Site:
    """Alice's Canal House with a resident who has an account (Rosa, who
    holds a PIN key to the front door), one without (Dana), a private
    parking space with a charging station, and the platform operator."""

    world: Any
    rosa: User
    rosa_person: Person
    dana_person: Person
    rosa_api: Client
    operator_api: Client


@pytest.fixture
def site(world) -> Site:
    unit = add_unit(world.alice, world.prop.pk, "A-12")
    other = add_unit(world.alice, world.prop.pk, "B-3")
    add_parking_space(
        world.alice, world.prop.pk, "P7", unit_id=unit.pk, station_serial="EVB-P7-0001"
    )
    rosa = create_user("rosa@example.com", PASSWORD, name="Rosa Resident")
    # The residency's email is the account's: the person is linked to it.
    rosa_home = add_resident(
        world.alice,
        world.prop.pk,
        ResidentSpec("Rosa Resident", "rosa@example.com", date(2024, 1, 1), unit_id=unit.pk),
    )
    dana_home = add_resident(
        world.alice,
        world.prop.pk,
        ResidentSpec("Dana Holder", "dana@example.com", date(2024, 1, 1), unit_id=other.pk),
    )
    issue_key(
        world.alice,
        world.lock.pk,
        KeySpec(HolderSpec(person_id=rosa_home.person_id), [CredentialSpec("pin", "24681357")]),
    )
    otto = create_user("otto@example.com", PASSWORD, name="Otto Operator")
    platform = Organization.objects.create(name="Doorkeep platform", is_platform=True)
    platform.memberships.create(user=otto, role=Role.PLATFORM_OPERATOR)
    assert rosa_home.person.user_id == rosa.pk
    return Site(
        world,
        rosa,
        rosa_home.person,
        dana_home.person,
        world.bearer(rosa),
        world.bearer(otto),
    )


def ask(site: Site, **body: Any) -> Any:
    return post_json(
        site.rosa_api, "/api/v1/badge-requests", {"property_id": site.world.prop.pk, **body}
    )


def work(site: Site, request_id: int, step: str, body: dict[str, Any] | None = None) -> Any:
    return post_json(
        site.operator_api, f"/api/v1/operator/badge-requests/{request_id}/{step}", body or {}
    )


def give_badge(site: Site, uid: str = UID) -> dict[str, Any]:
    """Rosa asks; the operator assigns the badge and hands it over."""
    request_id = ask(site).json()["id"]
    work(site, request_id, "assign", {"uid": uid})
    handed = work(site, request_id, "deliver", {"delivery": "handed_over"})
    assert handed.json()["status"] == "active", handed.content
    badge: dict[str, Any] = handed.json()["badge"]
    return badge


def register(site: Site, person: Person, **card: str) -> Any:
    return post_json(
        site.world.bearer(site.world.alice),
        f"/api/v1/properties/{site.world.prop.pk}/badges",
        {"person_id": person.pk, **card},
    )


def billing_and_payments(world) -> None:
    Property.objects.filter(pk=world.prop.pk).update(billing_mode=BillingMode.BILLING_AND_PAYMENTS)


# --- a resident asks, the operator works the request ----------------------------------------------


def test_a_badge_sent_by_post_is_active_once_the_resident_says_it_arrived(site):
    asked = ask(site, note="Please send it to the office")
    assert asked.status_code == 201, asked.content
    request = asked.json()
    assert (request["status"], request["extra"], request["price_minor"]) == (
        "requested",
        False,
        0,
    )
    assert request["person"] == "Rosa Resident"
    queue = site.operator_api.get("/api/v1/operator/badge-requests?status=open").json()
    assert [r["id"] for r in queue] == [request["id"]]

    assert work(site, request["id"], "approve").json()["status"] == "approved"
    assigned = work(site, request["id"], "assign", {"uid": "04:a1:b2:c3:d4:e5:f6"}).json()
    assert (assigned["status"], assigned["badge"]["uid"]) == ("assigned", UID)
    assert work(site, request["id"], "deliver", {"delivery": "sent"}).json()["status"] == "sent"
    assert not decide(site.world.lock, "tag", UID).granted

    arrived = post_json(site.rosa_api, f"/api/v1/badge-requests/{request['id']}/received", {})

    assert arrived.status_code == 200, arrived.content
    assert arrived.json()["status"] == "active"
    assert decide(site.world.lock, "tag", UID).granted
    mine = site.rosa_api.get("/api/v1/me/badges").json()
    assert [(b["uid"], b["status"], b["source"]) for b in mine] == [(UID, "active", "platform")]
    assert [r["status"] for r in site.rosa_api.get("/api/v1/me/badge-requests").json()] == [
        "active"
    ]


def test_a_badge_handed_over_is_active_at_once(site):
    badge = give_badge(site)

    assert badge["status"] == "active"
    assert decide(site.world.lock, "tag", UID).granted


def test_a_refused_request_says_why(site):
    request_id = ask(site).json()["id"]

    refused = work(site, request_id, "refuse", {"reason": "Not a resident of that unit"})

    assert refused.json()["status"] == "refused"
    assert refused.json()["refusal_reason"] == "Not a resident of that unit"
    mine = site.rosa_api.get("/api/v1/me/badge-requests").json()
    assert [(r["status"], r["refusal_reason"]) for r in mine] == [
        ("refused", "Not a resident of that unit")
    ]


def test_a_step_out_of_order_is_a_conflict(site):
    request_id = ask(site).json()["id"]

    error_of(work(site, request_id, "deliver", {"delivery": "sent"}), 409, "wrong_step")
    error_of(
        post_json(site.rosa_api, f"/api/v1/badge-requests/{request_id}/received", {}),
        409,
        "wrong_step",
    )


def test_an_extra_badge_needs_its_price_confirmed_and_the_409_says_the_price(site):
    Property.objects.filter(pk=site.world.prop.pk).update(
        currency="CHF", extra_badge_price_minor=1500
    )
    give_badge(site)

    unconfirmed = ask(site)

    body = error_of(unconfirmed, 409, "price_not_confirmed")
    assert body["details"] == {"price_minor": 1500, "currency": "CHF"}
    assert "CHF 15.00" in body["message"]
    confirmed = ask(site, accept_price_minor=1500)
    assert confirmed.status_code == 201, confirmed.content
    assert (confirmed.json()["extra"], confirmed.json()["price_minor"]) == (True, 1500)


def test_a_request_for_a_private_charging_station_names_its_space(site):
    response = ask(site, parking_space="P7")

    assert response.status_code == 201, response.content
    assert (response.json()["parking_space"], response.json()["station_serial"]) == (
        "P7",
        "EVB-P7-0001",
    )


def test_a_parking_space_of_another_site_is_refused(site):
    world = site.world
    add_parking_space(world.charlie, world.charlie_prop.pk, "C1", station_serial="EVB-C1-0001")

    by_number = ask(site, parking_space="C1")
    by_serial = ask(site, station_serial="EVB-C1-0001")

    assert error_of(by_number, 400, "parking_space_not_found")["details"]["field"] == (
        "parking_space"
    )
    assert error_of(by_serial, 400, "station_not_found")["details"]["field"] == "station_serial"
    assert not BadgeRequest.objects.exists()


def test_someone_who_does_not_live_at_the_site_cannot_ask_there(site):
    response = post_json(
        site.world.bearer(site.world.alice),
        "/api/v1/badge-requests",
        {"property_id": site.world.prop.pk},
    )

    error_of(response, 404, "site_not_found")


def test_only_the_operator_works_the_queue(site):
    request_id = ask(site).json()["id"]
    alice_api = site.world.bearer(site.world.alice)

    error_of(alice_api.get("/api/v1/operator/badge-requests"), 404)
    error_of(post_json(alice_api, f"/api/v1/operator/badge-requests/{request_id}/approve", {}), 404)
    error_of(
        post_json(site.rosa_api, f"/api/v1/operator/badge-requests/{request_id}/approve", {}), 404
    )
    assert BadgeRequest.objects.get(pk=request_id).status == "requested"


def test_the_operator_assigning_a_malformed_uid_gets_a_422_naming_the_field(site):
    request_id = ask(site).json()["id"]

    body = error_of(work(site, request_id, "assign", {"uid": "04-ZZ"}), 422, "invalid_uid")

    assert body["details"]["field"] == "uid"


# --- lost and found --------------------------------------------------------------------------


def test_reporting_a_badge_lost_twice_changes_nothing_the_second_time(site):
    badge = give_badge(site)

    first = post_json(site.rosa_api, f"/api/v1/badges/{badge['id']}/lost", {})
    again = post_json(site.rosa_api, f"/api/v1/badges/{badge['id']}/lost", {})

    assert first.status_code == 200, first.content
    assert (first.json()["changed"], first.json()["locks"], first.json()["replacement"]) == (
        True,
        1,
        None,
    )
    assert first.json()["badge"]["status"] == "lost"
    assert (again.json()["changed"], again.json()["locks"]) == (False, 0)
    assert not decide(site.world.lock, "tag", UID).granted


def test_a_lost_badge_can_be_replaced_in_the_same_step(site):
    badge = give_badge(site)

    report = post_json(
        site.rosa_api,
        f"/api/v1/badges/{badge['id']}/lost",
        {"replacement": True, "property_id": site.world.prop.pk},
    ).json()

    replacement = report["replacement"]
    assert (replacement["status"], replacement["replaces_id"], replacement["extra"]) == (
        "requested",
        badge["id"],
        True,
    )


def test_someone_elses_badge_cannot_be_reported_lost_by_a_member(site, bob_api):
    badge = give_badge(site)

    error_of(post_json(bob_api, f"/api/v1/badges/{badge['id']}/lost", {}), 403, "forbidden")
    assert Badge.objects.get(pk=badge["id"]).status == "active"


def test_a_found_badge_is_switched_on_again_only_by_the_owner_or_the_operator(
    site, alice_api, bob_api, charlie_api
):
    world = site.world
    mia = create_user("mia@example.com", PASSWORD, name="Mia Manager")
    Membership.objects.create(user=mia, organization=world.org, role=Role.BUILDING_MANAGER)
    badge = give_badge(site)
    path = f"/api/v1/badges/{badge['id']}/reactivate"
    post_json(site.rosa_api, f"/api/v1/badges/{badge['id']}/lost", {})

    for refused in (bob_api, world.bearer(mia), site.rosa_api):
        body = error_of(post_json(refused, path, {}), 403, "forbidden")
        assert "Only the owner or the platform operator" in body["message"]
    error_of(post_json(charlie_api, path, {}), 404)
    assert not decide(world.lock, "tag", UID).granted

    found = post_json(alice_api, path, {})

    assert found.status_code == 200, found.content
    assert found.json()["status"] == "active"
    assert decide(world.lock, "tag", UID).granted
    post_json(site.rosa_api, f"/api/v1/badges/{badge['id']}/lost", {})
    assert post_json(site.operator_api, path, {}).json()["status"] == "active"


def test_a_badge_that_is_not_lost_cannot_be_switched_on_again(site, alice_api):
    badge = give_badge(site)

    error_of(post_json(alice_api, f"/api/v1/badges/{badge['id']}/reactivate", {}), 409, "not_lost")


# --- existing badges, registered by the owner ---------------------------------------------------


def test_the_owner_registers_a_residents_existing_mifare_classic_badge(site, alice_api):
    response = register(site, site.rosa_person, **CLASSIC_1K)

    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["uid"], body["source"], body["card_type"], body["status"]) == (
        "04A1B2C3",
        "third_party",
        "mifare_classic_1k",
        "active",
    )
    assert decide(site.world.lock, "tag", "04A1B2C3").granted
    listed = alice_api.get(f"/api/v1/properties/{site.world.prop.pk}/badges").json()
    assert [(b["uid"], b["person"]) for b in listed] == [("04A1B2C3", "Rosa Resident")]


@pytest.mark.parametrize(
    ("field", "card"),
    [
        ("uid", {**CLASSIC_1K, "uid": "04-ZZ-11"}),
        ("atqa", {**CLASSIC_1K, "atqa": "04"}),
        ("sak", {**CLASSIC_1K, "sak": "GG"}),
    ],
)
def test_a_malformed_uid_atqa_or_sak_is_a_422_naming_the_field(site, field, card):
    body = error_of(register(site, site.rosa_person, **card), 422, f"invalid_{field}")

    assert body["details"]["field"] == field
    assert not Badge.objects.exists()


def test_a_uid_that_belongs_to_another_person_is_a_conflict(site):
    register(site, site.rosa_person, **CLASSIC_1K)

    error_of(register(site, site.dana_person, **CLASSIC_1K), 409, "badge_taken")
    error_of(register(site, site.rosa_person, **CLASSIC_1K), 409, "badge_exists")
    assert Badge.objects.count() == 1


def test_a_desfire_card_is_refused_naming_what_it_is(site):
    body = error_of(register(site, site.rosa_person, **DESFIRE), 422, "incompatible_card")

    assert "DESFire" in body["message"]
    assert body["details"]["card_type"] == "mifare_desfire"
    assert not Badge.objects.exists()


def test_a_billing_and_payments_site_refuses_existing_badges_naming_its_mode(site):
    billing_and_payments(site.world)

    body = error_of(
        register(site, site.rosa_person, **CLASSIC_1K), 409, "billing_mode_refuses_third_party"
    )

    assert "Billing and payments" in body["message"]
    assert not Badge.objects.exists()


def test_only_a_resident_of_the_site_gets_an_existing_badge(site, world):
    stranger = Person.objects.create(organization=world.org, name="Not Living Here")

    error_of(register(site, stranger, **CLASSIC_1K), 404, "resident_not_found")


def test_an_import_of_existing_badges_with_a_wrong_line_imports_nothing_and_names_each_line(
    site, alice_api
):
    text = (
        "uid,atqa,sak,email\n"
        "04A1B2C3,0004,08,rosa@example.com\n"
        "04A1B2C3D4E5F7,0344,20,dana@example.com\n"
        "04C0FFEE,0004,08,nobody@example.com\n"
        "04D0D0D0,00 04,8\n"
    )

    response = post_json(
        alice_api, f"/api/v1/properties/{site.world.prop.pk}/badges/import", {"csv": text}
    )

    body = error_of(response, 400, "import_refused")
    errors = body["details"]["errors"]
    assert [e["line"] for e in errors] == [3, 4, 5]
    assert "DESFire" in errors[0]["message"]
    assert "nobody@example.com" in errors[1]["message"]
    assert "4 columns" in errors[2]["message"]
    assert not Badge.objects.exists()


def test_an_import_of_existing_badges_registers_every_line(site, alice_api):
    text = "04A1B2C3;0004;08;Rosa@Example.com\n04C0FFEE;0x0004;0x08;dana@example.com\n"

    response = post_json(
        alice_api, f"/api/v1/properties/{site.world.prop.pk}/badges/import", {"csv": text}
    )

    assert response.status_code == 200, response.content
    assert response.json()["imported"] == 2
    assert sorted((b["uid"], b["person"]) for b in response.json()["badges"]) == [
        ("04A1B2C3", "Rosa Resident"),
        ("04C0FFEE", "Dana Holder"),
    ]
    assert decide(site.world.lock, "tag", "04A1B2C3").granted


def test_an_import_refuses_a_badge_someone_else_holds_and_a_badge_listed_twice(site, alice_api):
    register(site, site.rosa_person, **CLASSIC_1K)
    text = (
        "04A1B2C3,0004,08,dana@example.com\n"
        "04C0FFEE,0004,08,dana@example.com\n"
        "04C0FFEE,0004,08,rosa@example.com\n"
    )

    response = post_json(
        alice_api, f"/api/v1/properties/{site.world.prop.pk}/badges/import", {"csv": text}
    )

    errors = error_of(response, 400, "import_refused")["details"]["errors"]
    assert [e["line"] for e in errors] == [1, 3]
    assert "someone else" in errors[0]["message"]
    assert "twice" in errors[1]["message"]
    assert Badge.objects.count() == 1


def test_a_plain_member_cannot_see_or_register_the_sites_badges(site, bob_api):
    path = f"/api/v1/properties/{site.world.prop.pk}/badges"

    error_of(bob_api.get(path), 403, "forbidden")
    error_of(
        post_json(bob_api, path, {"person_id": site.rosa_person.pk, **CLASSIC_1K}), 403, "forbidden"
    )
