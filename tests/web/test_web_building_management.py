"""The web pages show what building management (R12) unlocks as an offer
where an owner without it would otherwise find a form the platform refuses:
adding a second entry, the guest policy and panels, inviting managers.
Olga has no upgrade; Alice (the world's owner) has it."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from django.test import Client
from webhelp import text

from doorkeep.accounts.models import Membership, Organization, Role, User
from doorkeep.accounts.services import create_organization, create_user
from doorkeep.guests.models import GuestPolicy
from doorkeep.properties.models import Entry, Property
from doorkeep.properties.services import add_entry, create_property

PASSWORD = "correct horse battery staple"
OFFER = ": part of building management."


@dataclass
class Olga:
    user: User
    org: Organization
    prop: Property
    entry: Entry
    client: Client


@pytest.fixture
def olga(world) -> Olga:
    user = create_user("olga@example.com", PASSWORD, name="Olga Owner")
    org = create_organization(user, "Olga Locks")
    prop = create_property(user, org.pk, name="Mill House")
    entry = add_entry(user, prop.pk, name="Front door")
    return Olga(user, org, prop, entry, world.client(user))


def test_a_property_with_its_entry_offers_building_management_instead_of_a_second_entry(olga):
    body = text(olga.client.get(f"/properties/{olga.prop.pk}/"))

    assert f"More than one entry per property{OFFER}" in body
    assert "Activate building management for Olga Locks" in body
    assert f'action="/properties/{olga.prop.pk}/entries/' not in body
    assert 'id="entries-offer"' in body


def test_the_offer_activates_building_management_and_returns_to_the_entry_form(olga):
    response = olga.client.post(
        f"/settings/upgrades/{olga.org.pk}/building-management/",
        {"next": f"/properties/{olga.prop.pk}/#entries"},
    )

    assert response.status_code == 302
    assert response["Location"] == f"/properties/{olga.prop.pk}/#entries"
    assert Organization.objects.get(pk=olga.org.pk).building_management_since is not None
    body = text(olga.client.get(f"/properties/{olga.prop.pk}/"))
    assert "Building management is active for Olga Locks." in body
    assert f'action="/properties/{olga.prop.pk}/entries/' in body
    assert OFFER not in body


def test_the_offer_does_not_send_anyone_to_another_site(olga):
    response = olga.client.post(
        f"/settings/upgrades/{olga.org.pk}/building-management/",
        {"next": "https://evil.example/"},
    )

    assert response["Location"] == "/settings/upgrades/"


def test_a_second_entry_posted_anyway_is_refused_on_the_page_with_the_offer(olga):
    response = olga.client.post(f"/properties/{olga.prop.pk}/entries/", {"name": "Garage"})

    assert response.status_code == 403
    body = text(response)
    assert "More than one entry per property is part of building management" in body
    assert f"More than one entry per property{OFFER}" in body
    assert "<h2>Entries</h2>" in body  # the property page, not an error page
    assert olga.prop.entries.count() == 1


def test_a_property_without_entries_gets_its_first_one_from_the_form(world, olga):
    barn = create_property(olga.user, olga.org.pk, name="Barn")

    body = text(olga.client.get(f"/properties/{barn.pk}/"))
    response = olga.client.post(f"/properties/{barn.pk}/entries/", {"name": "Barn door"})

    assert f'action="/properties/{barn.pk}/entries/' in body and OFFER not in body
    assert response.status_code == 302
    assert list(barn.entries.values_list("name", flat=True)) == ["Barn door"]


def test_the_dashboard_says_more_entries_come_with_building_management(world, olga, alice):
    olga_body = text(olga.client.get("/"))
    alice_body = text(alice.get("/"))

    assert "More entries at this property come with building management." in olga_body
    assert f'action="/properties/{olga.prop.pk}/entries/' not in olga_body
    assert "More entries at this property" not in alice_body
    assert f'action="/properties/{world.prop.pk}/entries/' in alice_body


def test_the_guest_settings_offer_the_upgrade_instead_of_the_policy_and_panel_forms(olga):
    body = text(olga.client.get(f"/properties/{olga.prop.pk}/guests/"))

    assert f"Guest sharing and entry panels{OFFER}" in body
    assert "Residents cannot share entries here: sharing is off." in body
    assert "Save guest policy" not in body and "Install panel" not in body


def test_a_guest_policy_posted_anyway_is_refused_on_the_settings_page(olga):
    response = olga.client.post(
        f"/properties/{olga.prop.pk}/guests/policy/",
        {"sharing_enabled": "on", "shareable": [str(olga.entry.pk)], "max_guests_per_resident": 5},
    )

    assert response.status_code == 403
    body = text(response)
    assert "Letting residents share entries with guests is part of building management" in body
    assert f"Guest sharing and entry panels{OFFER}" in body
    assert not GuestPolicy.objects.filter(property=olga.prop).exists()


def test_with_building_management_the_guest_settings_have_their_forms(world, alice):
    body = text(alice.get(f"/properties/{world.prop.pk}/guests/"))

    assert "Save guest policy" in body and "Install panel" in body
    assert OFFER not in body


def test_without_the_upgrade_collaborators_are_invited_read_only_with_the_offer(olga):
    body = text(olga.client.get("/settings/collaborators/"))

    assert '<option value="read_only"' in body
    assert '<option value="building_manager"' not in body
    assert f"Inviting building managers{OFFER}" in body


def test_a_manager_invited_anyway_is_refused_on_the_collaborators_page(olga, mailoutbox):
    response = olga.client.post(
        f"/settings/collaborators/{olga.org.pk}/invite/",
        {"email": "max@example.com", "role": "building_manager", "site": ""},
    )

    assert response.status_code == 403
    assert "Inviting building managers is part of building management" in text(response)
    assert not mailoutbox


def test_a_building_manager_of_an_organization_without_it_is_told_to_ask_a_lock_owner(world):
    manager = create_user("mona@example.com", PASSWORD)
    Membership.objects.create(user=manager, organization=world.org, role=Role.BUILDING_MANAGER)
    Organization.objects.filter(pk=world.org.pk).update(building_management_since=None)

    body = text(world.client(manager).get(f"/properties/{world.prop.pk}/guests/"))

    assert "Ask a lock owner of Alice Locks to activate it under Account upgrades." in body
    assert "Activate building management" not in body
