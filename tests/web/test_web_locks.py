"""The dashboard, registering and removing locks, properties and entries."""

from __future__ import annotations

from webhelp import SECRET, new_lock, text

from doorkeep.accounts.models import Membership, Organization
from doorkeep.accounts.services import create_user
from doorkeep.events.models import Event, EventKind
from doorkeep.keys.models import Key
from doorkeep.keys.services import CredentialSpec, HolderSpec, KeySpec, issue_key
from doorkeep.locks.models import Lock
from doorkeep.properties.models import Entry, Property


def register(client, entry, serial="DK-TEST-0002", secret=SECRET, name="Garage lock"):
    return client.post(
        "/locks/register/",
        {"serial": serial, "claim_secret": secret, "entry": entry.pk, "name": name},
    )


def test_the_dashboard_lists_the_locks_grouped_by_property(world, alice):
    issue_key(
        world.alice,
        world.lock.pk,
        KeySpec(holder=HolderSpec(name="Dana"), credentials=[CredentialSpec("remote", "RM-1")]),
    )
    response = alice.get("/")
    assert response.status_code == 200
    body = text(response)
    group = body[body.index('id="property-') :]
    assert "Canal House" in group
    assert f'href="/locks/{world.lock.pk}/"' in body
    row = body[body.index(f'href="/locks/{world.lock.pk}/"') :]
    row = row[: row.index("</tr>")]
    assert "DK-TEST-0001" in row and "Front door" in row
    assert '<td data-label="Keys" class="num">1</td>' in row
    assert '<td data-label="List version" class="num">1</td>' in row
    assert "Register a lock" in body and "Add a property" in body


def test_it_registers_a_lock_with_the_form(world, alice):
    new_lock("DK-TEST-0002")
    response = register(alice, world.entry2, secret="abcd efgh jklm npqr")
    lock = Lock.objects.get(serial="DK-TEST-0002")
    # The answer is the page that shows the lock's device secret, once.
    assert response.status_code == 200
    assert lock.organization_id == world.org.pk and lock.entry_id == world.entry2.pk
    assert lock.name == "Garage lock"
    page = text(response)
    assert "Lock Garage lock is registered" in page
    assert "doorkeep simulate lock DK-TEST-0002 --secret dks_" in page
    assert f'href="/locks/{lock.pk}/"' in page


def test_a_second_lock_at_an_entry_says_what_that_means(world, alice):
    new_lock("DK-TEST-0002")
    alone = text(register(alice, world.entry2))
    assert "now has" not in alone  # the Garage's only lock

    new_lock("DK-TEST-0003")
    page = text(register(alice, world.entry, serial="DK-TEST-0003", name="Inner reader"))

    assert "Front door now has 2 locks." in page
    assert "sends the command to every lock there that the person" in page


def test_it_refuses_a_wrong_claim_secret(world, alice):
    new_lock("DK-TEST-0002")
    response = register(alice, world.entry2, secret="WXYZ-WXYZ-WXYZ-WXYZ")
    assert response.status_code == 400
    assert "The claim secret does not match this lock." in text(response)
    assert Lock.objects.get(serial="DK-TEST-0002").organization_id is None
    assert Event.objects.filter(kind=EventKind.LOCK_CLAIM_FAILED).count() == 1


def test_it_refuses_an_unknown_serial_number(world, alice):
    response = register(alice, world.entry2, serial="DK-NOPE-9999")
    assert response.status_code == 404
    assert "No lock with serial number DK-NOPE-9999 is known." in text(response)
    # The dashboard is shown again, with what was typed.
    assert 'value="DK-NOPE-9999"' in response.content.decode()


def test_it_refuses_a_malformed_serial_on_the_form(world, alice):
    response = register(alice, world.entry2, serial="d!")
    assert response.status_code == 400
    assert "A serial number is 4 to 32 letters, digits or dashes" in text(response)


def test_it_refuses_a_lock_that_is_already_registered(world, alice):
    response = register(alice, world.entry2, serial="DK-TEST-0001")
    assert response.status_code == 409
    assert "You have already registered this lock." in text(response)


def test_registering_asks_for_every_field(world, alice):
    response = alice.post("/locks/register/", {})
    assert response.status_code == 400
    assert "This field is required." in text(response)


def test_it_adds_a_property_then_an_entry(world, alice):
    response = alice.post(
        "/properties/add/",
        {
            "organization": world.org.pk,
            "name": "Beach House",
            "address": "Strand 2",
            "timezone": "Europe/Lisbon",
        },
    )
    prop = Property.objects.get(name="Beach House")
    assert response.status_code == 302 and response["Location"] == f"/properties/{prop.pk}/"
    assert prop.organization_id == world.org.pk and prop.timezone == "Europe/Lisbon"

    response = alice.post(f"/properties/{prop.pk}/entries/", {"name": "Gate"})
    assert response.status_code == 302 and response["Location"] == f"/properties/{prop.pk}/"
    assert Entry.objects.filter(property=prop, name="Gate").exists()
    page = text(alice.get(f"/properties/{prop.pk}/"))
    assert "Entry Gate is added." in page and "Europe/Lisbon" in page


def test_adding_an_entry_from_the_dashboard_returns_to_the_dashboard(world, alice):
    response = alice.post(f"/properties/{world.prop.pk}/entries/", {"name": "Cellar", "next": "/"})
    assert response.status_code == 302 and response["Location"] == "/"
    response = alice.post(
        f"/properties/{world.prop.pk}/entries/", {"name": "Attic", "next": "https://evil.example/"}
    )
    assert response["Location"] == f"/properties/{world.prop.pk}/"


def test_it_refuses_an_entry_name_that_exists(world, alice):
    response = alice.post(f"/properties/{world.prop.pk}/entries/", {"name": "Garage"})
    assert response.status_code == 409
    assert "Canal House already has an entry called Garage." in text(response)


def test_it_refuses_an_unknown_time_zone(world, alice):
    response = alice.post(
        "/properties/add/",
        {
            "organization": world.org.pk,
            "name": "Moon Base",
            "timezone": "Moon/Crater",
        },
    )
    assert response.status_code == 400
    assert "Moon/Crater is not a known time zone" in text(response)
    assert not Property.objects.filter(name="Moon Base").exists()


def test_the_property_page_lists_its_entries_and_locks(world, alice):
    body = text(alice.get(f"/properties/{world.prop.pk}/"))
    assert "Front door" in body and "Garage" in body
    assert f'href="/locks/{world.lock.pk}/"' in body
    assert f'href="/properties/{world.prop.pk}/events/"' in body
    assert "Add entry" in body


def test_a_new_account_gets_its_own_organization_on_the_dashboard(db):
    from django.test import Client

    dora = create_user("dora@example.com", "pw-long-enough-1", name="Dora")
    client = Client()
    client.force_login(dora)
    response = client.get("/")
    assert response.status_code == 200
    org = Organization.objects.get(memberships__user=dora)
    assert Membership.objects.get(user=dora).role == "lock_owner"
    body = text(response)
    assert "Add a property" in body and "You have no properties yet." in body
    assert org.name == "Dora"


def test_it_renames_a_lock(world, alice):
    response = alice.post(f"/locks/{world.lock.pk}/rename/", {"name": "Main door"})
    assert response.status_code == 302
    world.lock.refresh_from_db()
    assert world.lock.name == "Main door"
    assert "The lock is now called Main door." in text(alice.get(response["Location"]))


def test_a_blank_name_is_a_form_error(world, alice):
    response = alice.post(f"/locks/{world.lock.pk}/rename/", {"name": "   "})
    assert response.status_code == 400
    world.lock.refresh_from_db()
    assert world.lock.name == "Front door lock"


def test_removing_a_lock_needs_the_confirmation(world, alice):
    response = alice.post(f"/locks/{world.lock.pk}/remove/", {})
    assert response.status_code == 400
    assert "Tick the box to confirm that the lock is to be removed." in text(response)
    assert Lock.objects.get(pk=world.lock.pk).organization_id == world.org.pk


def test_removing_a_lock_takes_back_its_keys(world, alice):
    key = issue_key(
        world.alice,
        world.lock.pk,
        KeySpec(holder=HolderSpec(name="Dana"), credentials=[CredentialSpec("remote", "RM-1")]),
    )
    response = alice.post(f"/locks/{world.lock.pk}/remove/", {"confirm": "on"})
    assert response.status_code == 302 and response["Location"] == "/"
    lock = Lock.objects.get(pk=world.lock.pk)
    assert lock.organization_id is None
    assert Key.objects.get(pk=key.pk).revoked_at is not None
    body = text(alice.get("/"))
    assert "Lock DK-TEST-0001 is removed and its keys are taken back." in body
    assert alice.get(f"/locks/{world.lock.pk}/").status_code == 404
