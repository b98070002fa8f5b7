"""Building management (R12) unlocks several entries per property, building
managers, guest sharing and entry panels: both sides of the gate, in the
services and through the API. Olga is a lock owner without the upgrade;
Alice (the world's owner) has it."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest
from django.test import Client

from doorkeep.accounts.models import Membership, Organization, Role, User
from doorkeep.accounts.services import add_member, create_organization, create_token, create_user
from doorkeep.collaborators import services as collaborators
from doorkeep.core.errors import NotFound, PermissionDenied
from doorkeep.guests import presence
from doorkeep.guests import services as guests
from doorkeep.guests.models import GuestPolicy, Panel
from doorkeep.licensing.services import activate_building_management
from doorkeep.licensing.upgrades import UpgradeRequired
from doorkeep.properties.models import Entry, Property
from doorkeep.properties.services import add_entry, create_property

PASSWORD = "correct horse battery staple"


@dataclass
class Olga:
    user: User
    org: Organization
    prop: Property
    entry: Entry


@pytest.fixture
def olga(world) -> Olga:
    user = create_user("olga@example.com", PASSWORD, name="Olga Owner")
    org = create_organization(user, "Olga Locks")
    prop = create_property(user, org.pk, name="Mill House")
    return Olga(user, org, prop, add_entry(user, prop.pk, name="Front door"))


def _bearer(user: User) -> Client:
    _row, token = create_token(user, "test")
    return Client(headers={"authorization": f"Bearer {token}"})


def _sharing(entry_ids: list[int], on: bool = True) -> guests.PolicySpec:
    return guests.PolicySpec(sharing_enabled=on, shareable_entry_ids=entry_ids)


# --- without the upgrade ------------------------------------------------------------------


def test_without_building_management_a_property_gets_one_entry_and_no_second(olga):
    with pytest.raises(UpgradeRequired) as refused:
        add_entry(olga.user, olga.prop.pk, name="Garage")

    assert (refused.value.status, refused.value.code) == (403, "needs_building_management")
    assert refused.value.message.startswith(
        "More than one entry per property is part of building management, which Olga Locks "
        "has not activated."
    )
    assert "Account upgrades" in refused.value.message
    assert refused.value.details == {
        "upgrade": "building_management",
        "organization_id": olga.org.pk,
    }
    assert list(Entry.objects.filter(property=olga.prop).values_list("name", flat=True)) == [
        "Front door"
    ]


def test_without_building_management_an_owner_still_adds_properties_with_their_entry(olga):
    barn = create_property(olga.user, olga.org.pk, name="Barn")

    assert add_entry(olga.user, barn.pk, name="Barn door").property_id == barn.pk


def test_without_building_management_no_building_manager_is_invited_but_a_reader_is(olga):
    with pytest.raises(UpgradeRequired, match="Inviting building managers"):
        collaborators.invite(
            olga.user, olga.org.pk, email="max@example.com", role="building_manager"
        )
    sent = collaborators.invite(olga.user, olga.org.pk, email="rex@example.com", role="read_only")

    assert sent.invitation.role == Role.READ_ONLY
    assert not olga.org.collaborator_invitations.filter(email="max@example.com").exists()


def test_without_building_management_no_member_is_made_a_building_manager(olga):
    create_user("mia@example.com", PASSWORD)

    with pytest.raises(UpgradeRequired, match="Making members building managers"):
        add_member(olga.user, olga.org.pk, "mia@example.com", Role.BUILDING_MANAGER)
    add_member(olga.user, olga.org.pk, "mia@example.com", Role.MEMBER)

    assert Membership.objects.get(user__email="mia@example.com").role == Role.MEMBER


def test_without_building_management_sharing_stays_off_and_no_panel_is_installed(olga):
    with pytest.raises(UpgradeRequired, match="Letting residents share entries with guests"):
        guests.set_policy(olga.user, olga.prop.pk, _sharing([olga.entry.pk]))
    with pytest.raises(UpgradeRequired, match="Installing entry panels"):
        presence.add_panel(olga.user, olga.entry.pk, "Lobby")
    switched_off = guests.set_policy(olga.user, olga.prop.pk, _sharing([], on=False))

    assert not switched_off.sharing_enabled
    assert not Panel.objects.exists()


def test_an_outsider_gets_404_and_a_member_403_before_any_word_of_the_upgrade(world, olga):
    Membership.objects.create(user=world.bob, organization=olga.org, role=Role.MEMBER)

    with pytest.raises(NotFound):
        add_entry(world.charlie, olga.prop.pk, name="Garage")
    with pytest.raises(NotFound):
        presence.add_panel(world.charlie, olga.entry.pk, "Lobby")
    with pytest.raises(PermissionDenied) as member:
        add_entry(world.bob, olga.prop.pk, name="Garage")

    assert member.value.code == "forbidden"


# --- with the upgrade ---------------------------------------------------------------------


def test_once_activated_the_same_owner_adds_entries_managers_sharing_and_panels(olga):
    activate_building_management(olga.user, olga.org.pk)

    garage = add_entry(olga.user, olga.prop.pk, name="Garage")
    collaborators.invite(olga.user, olga.org.pk, email="max@example.com", role="building_manager")
    rules = guests.set_policy(olga.user, olga.prop.pk, _sharing([olga.entry.pk, garage.pk]))
    panel, _secret = presence.add_panel(olga.user, garage.pk, "Garage panel")

    assert olga.prop.entries.count() == 2
    assert rules.sharing_enabled and panel.entry_id == garage.pk


def test_when_building_management_is_switched_off_what_exists_stays_and_can_be_taken_away(
    world,
):
    guests.set_policy(world.alice, world.prop.pk, _sharing([world.entry.pk]))
    panel, _secret = presence.add_panel(world.alice, world.entry.pk, "Lobby")
    manager = create_user("mona@example.com", PASSWORD)
    add_member(world.alice, world.org.pk, "mona@example.com", Role.BUILDING_MANAGER)
    Organization.objects.filter(pk=world.org.pk).update(building_management_since=None)

    with pytest.raises(UpgradeRequired):
        add_entry(world.alice, world.prop.pk, name="Cellar")
    with pytest.raises(UpgradeRequired):
        guests.set_policy(world.alice, world.prop.pk, _sharing([world.entry.pk, world.entry2.pk]))
    presence.remove_panel(manager, panel.pk)  # the manager keeps the role: nothing is lost
    guests.set_policy(manager, world.prop.pk, _sharing([], on=False))

    assert world.prop.entries.count() == 2
    assert not GuestPolicy.objects.get(property=world.prop).sharing_enabled
    assert not Panel.objects.exists()


# --- the API ------------------------------------------------------------------------------


def _post(client: Client, url: str, body: dict[str, object]):
    return client.post(url, json.dumps(body), content_type="application/json")


def test_the_api_answers_403_needs_building_management_and_then_201(olga):
    api = _bearer(olga.user)
    url = f"/api/v1/properties/{olga.prop.pk}/entries"

    refused = _post(api, url, {"name": "Garage"})
    upgraded = _post(api, f"/api/v1/organizations/{olga.org.pk}/upgrades/building-management", {})
    added = _post(api, url, {"name": "Garage"})

    assert refused.status_code == 403
    body = refused.json()
    assert body["code"] == "needs_building_management"
    assert "building management" in body["message"]
    assert body["details"] == {"upgrade": "building_management", "organization_id": olga.org.pk}
    assert upgraded.status_code == 200
    assert added.status_code == 201


def test_the_api_refuses_sharing_panels_and_managers_without_the_upgrade(olga):
    api = _bearer(olga.user)
    policy = {"sharing_enabled": True, "shareable_entry_ids": [olga.entry.pk]}

    answers = [
        api.put(
            f"/api/v1/properties/{olga.prop.pk}/guest-policy",
            json.dumps(policy),
            content_type="application/json",
        ),
        _post(api, f"/api/v1/entries/{olga.entry.pk}/panels", {"name": "Lobby"}),
        _post(
            api,
            f"/api/v1/organizations/{olga.org.pk}/collaborator-invitations",
            {"email": "max@example.com", "role": "building_manager"},
        ),
    ]

    assert [(a.status_code, a.json()["code"]) for a in answers] == [
        (403, "needs_building_management")
    ] * 3
    off = api.put(
        f"/api/v1/properties/{olga.prop.pk}/guest-policy",
        json.dumps({**policy, "sharing_enabled": False}),
        content_type="application/json",
    )
    assert off.status_code == 200 and off.json()["sharing_enabled"] is False
