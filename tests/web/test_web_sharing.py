"""Shared management through the web (R10, R11): the lock owner's side on the
lock page, the organization's side on /shared/<key>/, and changing keys."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from django.utils import timezone
from webhelp import code, sharing_world, text

from doorkeep.accounts.services import create_organization, create_user
from doorkeep.keys.models import Key
from doorkeep.keys.services import CredentialSpec, HolderSpec, KeySpec, issue_key
from doorkeep.licensing.models import Period, PeriodKind
from doorkeep.licensing.state import licence_of

AMS = ZoneInfo("Europe/Amsterdam")


def lock_url(world):
    return f"/locks/{world.lock.pk}/"


def _key(world, name="Dana", pin="482913", **extra):
    return issue_key(
        world.alice,
        world.lock.pk,
        KeySpec(holder=HolderSpec(name=name), credentials=[CredentialSpec("pin", pin)], **extra),
    )


def test_the_whole_shared_management_flow_through_the_web(world, alice):
    # Dora's agency gets organization management on the upgrades page.
    dora_user = create_user("dora@example.com", "long enough password", name="Dora Agent")
    agency = create_organization(dora_user, "Dora's Agency")
    dora = world.client(dora_user)
    response = dora.post(
        f"/settings/upgrades/{agency.pk}/organization-management/", {"code": code("ORG-MGMT")}
    )
    assert response.status_code == 302

    # Alice: without the option, the lock page explains how to get it.
    body = text(alice.get(lock_url(world)))
    assert "Issue a key to an organization" in body
    assert "not in the free period" in body
    assert 'name="organization"' not in body

    # Alice enters a management code and the option's code.
    licence = f"/locks/{world.lock.pk}/licence/"
    assert alice.post(licence, {"code": code("MGMT-5Y")}).status_code == 302
    body = text(alice.get(lock_url(world)))
    assert "enter its prepaid code on the licence panel" in body
    assert alice.post(licence, {"code": code("ORGS-5Y")}).status_code == 302
    assert "Keys to organizations until" in text(alice.get(licence))

    # Alice issues a key to Dora's agency, until a date in the property's zone.
    body = text(alice.get(lock_url(world)))
    assert f'<option value="{agency.pk}">Dora\'s Agency</option>' in body
    assert "Alice Locks</option>" not in body  # not her own organization
    response = alice.post(
        f"/locks/{world.lock.pk}/organization-keys/",
        {"organization": agency.pk, "valid_until": "2099-12-31", "note": "Cleaning crew"},
    )
    assert response.status_code == 302, text(response)[:3000]
    org_key = Key.objects.get(holder_organization=agency)
    assert org_key.person is None
    assert org_key.valid_until == datetime(2100, 1, 1, tzinfo=AMS)
    body = text(alice.get(lock_url(world)))
    assert "Key issued to the organization Dora's Agency." in body
    assert "<strong>Dora's Agency</strong>" in body and "Shared management" in body
    assert "0 keys issued under it" in body
    # A second key to the same organization is refused on the form.
    response = alice.post(f"/locks/{world.lock.pk}/organization-keys/", {"organization": agency.pk})
    assert response.status_code == 409
    assert "Dora's Agency already has a key on this lock." in text(response)

    # Dora's dashboard lists the lock; her page shows it with an issue form.
    body = text(dora.get("/"))
    assert "Locks shared with your organization" in body
    assert f'href="/shared/{org_key.pk}/"' in body and "Front door lock" in body
    shared = f"/shared/{org_key.pk}/"
    body = text(dora.get(shared))
    assert "Front door lock" in body and "Alice Locks" in body
    assert "until 2100-01-01 00:00" in body
    assert "Cleaning crew" in body
    assert f'action="{shared}keys/#issue"' in body

    # Dora issues a key under it to her own person.
    response = dora.post(
        f"{shared}keys/", {"name": "Eve", "email": "eve@example.com", "pin": "5555"}
    )
    assert response.status_code == 302, text(response)[:3000]
    child = Key.objects.get(parent=org_key)
    assert child.organization_id == agency.pk and child.valid_until == org_key.valid_until
    body = text(dora.get(shared))
    assert "Key issued to Eve." in body and "<strong>Eve</strong>" in body
    assert '<td data-label="Keys you issued" class="num">1</td>' in text(dora.get("/"))

    # Alice sees Eve's key, via Dora's agency, and the count under the org key.
    body = text(alice.get(lock_url(world)))
    assert "<strong>Eve</strong>" in body and "via Dora's Agency" in body
    assert "1 key issued under it" in body

    # Dora changes Eve's key; a wider window than her own is refused.
    edit = f"{shared}keys/{child.pk}/edit/"
    body = text(dora.get(edit))
    assert "Change the key of Eve" in body and 'name="schedule"' in body
    response = dora.post(edit, {"valid_until": "2100-06-01", "note": ""})
    assert response.status_code == 400
    assert "when your organization's key ends" in text(response)
    response = dora.post(edit, {"schedule": "mon-fri 08:00-18:00", "note": "Mornings"})
    assert response.status_code == 302
    assert response["Location"] == f"{shared}#keys"
    child.refresh_from_db()
    assert child.note == "Mornings" and child.schedule[0]["start"] == "08:00"

    # Alice cannot open Dora's page; Charlie neither.
    assert alice.get(shared).status_code == 404
    assert world.client(world.charlie).get(shared).status_code == 404

    # Alice takes the organization's key back: Eve's goes with it.
    response = alice.post(f"/locks/{world.lock.pk}/keys/{org_key.pk}/take-back/")
    assert response.status_code == 302
    child.refresh_from_db()
    assert child.revoked_at is not None
    body = text(alice.get(lock_url(world)))
    assert "The key of Dora's Agency is taken back, with every key issued under it." in body

    body = text(dora.get(shared))
    assert "The lock owner took back your organization's key to this lock on" in body
    assert f'action="{shared}keys/#issue"' not in body
    assert "Locks shared with your organization" not in text(dora.get("/"))
    response = dora.post(f"{shared}keys/", {"name": "Finn", "pin": "6666"})
    assert response.status_code == 409
    assert "The lock owner has taken back your organization's key" in text(response)
    assert not Key.objects.filter(person__name="Finn").exists()


def test_when_the_option_ends_the_organization_can_only_take_keys_back(world):
    dora_user, _agency, org_key = sharing_world(world)
    child = issue_key(
        dora_user,
        world.lock.pk,
        KeySpec(HolderSpec(name="Eve"), [CredentialSpec("tag", "04A22B1C")]),
        parent_key_id=org_key.pk,
    )
    Period.objects.filter(lock=world.lock, kind=PeriodKind.ORGANIZATIONS_OPTION).update(
        ends_at=timezone.now() - timedelta(minutes=1)
    )
    assert not licence_of(world.lock.pk).option_active
    dora = world.client(dora_user)
    shared = f"/shared/{org_key.pk}/"
    body = text(dora.get(shared))
    assert "Shared management of this lock is not active now" in body
    assert f'action="{shared}keys/#issue"' not in body
    assert f"{shared}keys/{child.pk}/edit/" not in body
    response = dora.post(f"{shared}keys/", {"name": "Finn", "pin": "6666"})
    assert response.status_code == 403
    assert "Issuing keys to organizations needs the option" in text(response)
    response = dora.post(f"{shared}keys/{child.pk}/edit/", {"note": "x"})
    assert response.status_code == 403
    # Taking back still works.
    response = dora.post(f"{shared}keys/{child.pk}/take-back/")
    assert response.status_code == 302
    child.refresh_from_db()
    assert child.revoked_at is not None
    assert "The key of Eve is taken back." in text(dora.get(shared))


def test_the_lock_page_handles_organization_keys_everywhere(world, alice):
    _dora, _agency, org_key = sharing_world(world)
    _key(world)
    for url in (
        lock_url(world),
        lock_url(world) + "?status=all",
        lock_url(world) + "?q=dora",
        lock_url(world) + "?status=revoked",
        "/",
        f"/locks/{world.lock.pk}/licence/",
        f"/locks/{world.lock.pk}/events/",
        f"/locks/{world.lock.pk}/keys/{org_key.pk}/edit/",
    ):
        assert alice.get(url).status_code == 200, url
    # An organization's key has no weekly schedule: its edit form has none.
    body = text(alice.get(f"/locks/{world.lock.pk}/keys/{org_key.pk}/edit/"))
    assert "Change the key of Dora's Agency" in body
    assert 'name="schedule"' not in body
    response = alice.post(
        f"/locks/{world.lock.pk}/keys/{org_key.pk}/edit/",
        {"valid_until": "2099-06-30", "note": "Until summer"},
    )
    assert response.status_code == 302
    org_key.refresh_from_db()
    assert org_key.note == "Until summer"
    assert org_key.valid_until == datetime(2099, 7, 1, tzinfo=AMS)


def test_an_organization_that_is_not_registered_cannot_receive_a_key(world, alice):
    sharing_world(world)
    response = alice.post(
        f"/locks/{world.lock.pk}/organization-keys/", {"organization": world.charlie_org.pk}
    )
    assert response.status_code == 404
    assert "No organization with organization management has that id." in text(response)
    response = alice.post(f"/locks/{world.lock.pk}/organization-keys/", {"organization": "x"})
    assert response.status_code == 400


def test_a_member_cannot_issue_a_key_to_an_organization(world, bob):
    _dora, agency, org_key = sharing_world(world)
    response = bob.post(f"/locks/{world.lock.pk}/organization-keys/", {"organization": agency.pk})
    assert response.status_code == 403
    assert "Only lock owners and building managers can issue or take back keys." in text(response)
    assert Key.objects.filter(holder_organization=agency).count() == 1
    assert bob.get(f"/shared/{org_key.pk}/").status_code == 404


# --- changing a key ------------------------------------------------------------------


def test_it_changes_a_key_with_dates_in_the_property_time_zone(world, alice):
    key = _key(world, valid_until=datetime(2099, 1, 1, tzinfo=AMS), note="Old")
    body = text(alice.get(lock_url(world)))
    edit = f"/locks/{world.lock.pk}/keys/{key.pk}/edit/"
    assert f'href="{edit}"' in body
    body = text(alice.get(edit))
    assert 'value="2099-01-01T00:00"' in body and 'value="Old"' in body
    response = alice.post(
        edit,
        {
            "valid_from": "2030-05-01 08:00",
            "valid_until": "2030-05-31",
            "schedule": "sat 09:00-13:00",
            "note": "Weekend only",
        },
    )
    assert response.status_code == 302
    assert response["Location"] == f"{lock_url(world)}#keys"
    key.refresh_from_db()
    assert key.valid_from == datetime(2030, 5, 1, 8, 0, tzinfo=AMS)
    assert key.valid_until == datetime(2030, 6, 1, tzinfo=AMS)
    assert key.schedule == [{"days": ["sat"], "start": "09:00", "end": "13:00"}]
    assert key.note == "Weekend only"
    body = text(alice.get(lock_url(world)))
    assert "The key of Dana is changed." in body and "Weekend only" in body


def test_bad_changes_are_form_errors_not_500s(world, alice):
    key = _key(world)
    edit = f"/locks/{world.lock.pk}/keys/{key.pk}/edit/"
    response = alice.post(edit, {"schedule": "someday"})
    assert response.status_code == 400
    assert "write it as 'mon-fri 07:00-19:00'" in text(response)
    response = alice.post(edit, {"valid_from": "2030-05-02", "valid_until": "2030-05-01"})
    assert response.status_code == 400
    assert "The key's validity must start before it ends." in text(response)
    response = alice.post(edit, {"valid_from": "tomorrow"})
    assert response.status_code == 400
    key.refresh_from_db()
    assert key.valid_from is None


def test_a_taken_back_key_cannot_be_changed(world, alice):
    key = _key(world)
    alice.post(f"/locks/{world.lock.pk}/keys/{key.pk}/take-back/")
    edit = f"/locks/{world.lock.pk}/keys/{key.pk}/edit/"
    body = text(alice.get(edit))
    assert "This key was taken back on" in body and 'name="note"' not in body
    response = alice.post(edit, {"note": "x"})
    assert response.status_code == 409
    assert "This key was taken back; issue a new one." in text(response)


def test_only_the_owner_changes_keys(world, bob, charlie):
    key = _key(world)
    edit = f"/locks/{world.lock.pk}/keys/{key.pk}/edit/"
    assert charlie.get(edit).status_code == 404
    assert charlie.post(edit, {"note": "x"}).status_code == 404
    assert bob.get(edit).status_code == 403
    assert bob.post(edit, {"note": "x"}).status_code == 403
    key.refresh_from_db()
    assert key.note == ""
    # A key id that belongs to another lock answers 404 on this lock's URL.
    assert world.client(world.alice).get(f"/locks/999/keys/{key.pk}/edit/").status_code == 404
