"""Shared management through the API (R10, R11): keys given to organizations,
keys issued under them, and changing keys (PATCH keys/{id})."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from apihelp import error_of, patch_json, post_json
from django.test import Client
from django.utils import timezone

from doorkeep.accounts.models import Membership, Organization, Role
from doorkeep.accounts.services import create_organization, create_user
from doorkeep.events.models import Event, EventKind
from doorkeep.keys.models import Key
from doorkeep.licensing.state import licence_of
from doorkeep.locks.models import Lock

PIN = "555123"


def version(world) -> int:
    return Lock.objects.get(pk=world.lock.pk).credential_version


def iso(moment: datetime) -> str:
    return moment.isoformat()


def parse(moment: str) -> datetime:
    return datetime.fromisoformat(moment.replace("Z", "+00:00"))


@dataclass
class Agency:
    org: Organization
    dora: Client  # its lock owner
    erin: Client  # its building manager
    frank: Client  # a plain member


@pytest.fixture
def agency(world) -> Agency:
    dora = create_user("dora@example.com", "correct horse battery staple", name="Dora")
    org = create_organization(dora, "Dora's Facility Services")
    Organization.objects.filter(pk=org.pk).update(organization_management_since=timezone.now())
    erin = create_user("erin@example.com", "correct horse battery staple", name="Erin")
    frank = create_user("frank@example.com", "correct horse battery staple", name="Frank")
    Membership.objects.create(user=erin, organization=org, role=Role.BUILDING_MANAGER)
    Membership.objects.create(user=frank, organization=org, role=Role.MEMBER)
    return Agency(org, world.bearer(dora), world.bearer(erin), world.bearer(frank))


@pytest.fixture
def option(world, alice_api, code) -> None:
    """Paid management and the option on Alice's lock, bought through the API."""
    for sku in ("MGMT-5Y", "ORGS-5Y"):
        response = post_json(
            alice_api, f"/api/v1/locks/{world.lock.pk}/licence/codes", {"code": code(sku)}
        )
        assert response.status_code == 200, response.content


def give(alice_api, world, org_id: int, **body: Any):
    return post_json(
        alice_api,
        f"/api/v1/locks/{world.lock.pk}/organization-keys",
        {"organization_id": org_id, **body},
    )


@pytest.fixture
def shared(world, alice_api, agency, option, now) -> dict[str, Any]:
    response = give(
        alice_api,
        world,
        agency.org.pk,
        valid_until=iso(now + timedelta(days=30)),
        note="cleaning contract",
    )
    assert response.status_code == 201, response.content
    return response.json()


def under(client: Client, shared: dict[str, Any], **body: Any):
    body.setdefault("name", "Gus")
    body.setdefault("credentials", [{"kind": "pin", "value": PIN}])
    return post_json(client, f"/api/v1/shared-keys/{shared['id']}/keys", body)


# --- the directory --------------------------------------------------------------------------------


def test_the_directory_lists_organizations_that_can_receive_keys(world, alice_api, agency):
    listed = alice_api.get("/api/v1/organizations/registered").json()

    assert listed == [{"id": agency.org.pk, "name": "Dora's Facility Services"}]
    assert alice_api.get("/api/v1/organizations/registered?q=FACILITY").json() == listed
    assert alice_api.get("/api/v1/organizations/registered?q=charlie").json() == []


def test_the_directory_is_for_people_who_manage_keys(world, bob_api, charlie_api, agency):
    error_of(bob_api.get("/api/v1/organizations/registered"), 403, "forbidden")
    assert len(charlie_api.get("/api/v1/organizations/registered").json()) == 1


def test_the_directory_pages_at_most_200(world, alice_api, agency):
    error_of(alice_api.get("/api/v1/organizations/registered?limit=201"), 422, "validation_error")
    assert alice_api.get("/api/v1/organizations/registered?limit=1").status_code == 200


# --- giving a key to an organization --------------------------------------------------------------


def test_it_gives_a_key_to_an_organization(world, shared, agency, now):
    assert shared["holder_organization_id"] == agency.org.pk
    assert shared["person"] == "Dora's Facility Services"
    assert shared["person_id"] is None
    assert shared["credentials"] == []
    assert shared["status"] == "active"
    assert shared["note"] == "cleaning contract"
    assert parse(shared["valid_until"]) == (now + timedelta(days=30)).replace(
        microsecond=now.microsecond // 1000 * 1000
    )


def test_an_organization_without_organization_management_is_not_found(world, alice_api, option):
    error_of(give(alice_api, world, world.charlie_org.pk), 404, "organization_not_found")


def test_without_the_option_keys_cannot_be_given_to_organizations(world, alice_api, agency, code):
    error_of(give(alice_api, world, agency.org.pk), 403, "shared_management_inactive")
    post_json(alice_api, f"/api/v1/locks/{world.lock.pk}/licence/codes", {"code": code("MGMT-5Y")})
    body = error_of(give(alice_api, world, agency.org.pk), 403, "shared_management_inactive")
    assert "prepaid code" in body["message"]


def test_after_management_ended_no_key_goes_to_an_organization_though_the_option_runs(
    world, alice_api, agency, option, travel, code
):
    ends = licence_of(world.lock.pk).full_until
    travel(ends - timedelta(days=30))
    url = f"/api/v1/locks/{world.lock.pk}/licence/codes"
    assert post_json(alice_api, url, {"code": code("ORGS-5Y")}).status_code == 200
    travel(ends + timedelta(days=1))

    assert licence_of(world.lock.pk).option_ends_at > timezone.now()
    error_of(give(alice_api, world, agency.org.pk), 403, "management_ended")


def test_an_organization_gets_one_live_key_per_lock(world, alice_api, shared, agency):
    error_of(give(alice_api, world, agency.org.pk), 409, "key_exists")


def test_a_window_that_ends_before_it_starts_is_refused(world, alice_api, agency, option, now):
    body = {"valid_from": iso(now + timedelta(days=2)), "valid_until": iso(now)}

    error_of(give(alice_api, world, agency.org.pk, **body), 400, "invalid_window")


# --- what the organization sees and does ----------------------------------------------------------


def test_the_organization_sees_the_key_it_received(world, shared, agency):
    for client in (agency.dora, agency.erin, agency.frank):
        (row,) = client.get("/api/v1/shared-keys").json()
        assert row["id"] == shared["id"]
        assert (row["lock"], row["serial"]) == ("Front door lock", "DK-TEST-0001")
        assert (row["property"], row["entry"]) == ("Canal House", "Front door")
        assert row["lock_owner"] == "Alice Locks"
        assert row["organization"] == "Dora's Facility Services"
        assert row["valid_until"] == shared["valid_until"]
        assert row["live_keys"] == 0


def test_the_lock_owner_does_not_see_it_among_keys_received(world, alice_api, shared):
    assert alice_api.get("/api/v1/shared-keys").json() == []


@pytest.mark.parametrize("manager", ["dora", "erin"])
def test_the_organizations_managers_issue_keys_under_it(world, shared, agency, manager):
    response = under(getattr(agency, manager), shared)

    assert response.status_code == 201, response.content
    key = response.json()
    assert key["parent_id"] == shared["id"]
    assert key["lock_id"] == world.lock.pk
    assert key["valid_until"] == shared["valid_until"]
    assert Key.objects.get(pk=key["id"]).organization_id == agency.org.pk
    assert agency.dora.get("/api/v1/shared-keys").json()[0]["live_keys"] == 1


def test_a_plain_member_of_the_organization_gets_403(world, shared, agency):
    body = error_of(under(agency.frank, shared), 403, "forbidden")

    assert "issue or take back keys" in body["message"]
    error_of(agency.frank.get(f"/api/v1/shared-keys/{shared['id']}/keys"), 403, "forbidden")
    assert not Key.objects.filter(parent_id=shared["id"]).exists()


def test_an_outsider_and_the_lock_owner_get_404_for_the_organizations_key(
    world, shared, alice_api, charlie_api
):
    for client in (charlie_api, alice_api):
        error_of(under(client, shared), 404, "key_not_found")
        error_of(client.get(f"/api/v1/shared-keys/{shared['id']}/keys"), 404, "key_not_found")


def test_a_key_of_a_person_is_no_shared_key(world, agency, issue):
    key = issue(name="Dana").json()

    error_of(agency.dora.get(f"/api/v1/shared-keys/{key['id']}/keys"), 404, "key_not_found")


def test_a_wider_window_than_the_organizations_key_is_refused(world, shared, agency, now):
    body = error_of(
        under(agency.dora, shared, valid_until=iso(now + timedelta(days=60))),
        400,
        "outside_shared_window",
    )

    assert "cannot end after" in body["message"]


def test_the_organization_lists_and_takes_back_the_keys_it_issued(world, shared, agency):
    first = under(agency.dora, shared).json()
    second = under(agency.erin, shared, name="Hal", credentials=[{"kind": "pin", "value": "8642"}])
    url = f"/api/v1/shared-keys/{shared['id']}/keys"

    taken = post_json(agency.erin, f"/api/v1/keys/{first['id']}/revoke", {})

    assert taken.status_code == 200 and taken.json()["status"] == "revoked"
    live = agency.dora.get(url).json()
    assert (live["count"], [k["person"] for k in live["items"]]) == (1, ["Hal"])
    assert [k["id"] for k in agency.dora.get(f"{url}?status=revoked").json()["items"]] == [
        first["id"]
    ]
    assert agency.dora.get(f"{url}?status=").json()["count"] == 2
    assert second.status_code == 201
    error_of(agency.dora.get(f"{url}?status=bogus"), 422)


def test_the_organization_reads_one_of_its_keys_but_not_the_lock_owners(
    world, shared, agency, issue
):
    mine = under(agency.dora, shared).json()
    alices = issue(name="Dana").json()

    assert agency.erin.get(f"/api/v1/keys/{mine['id']}").json()["person"] == "Gus"
    error_of(agency.erin.get(f"/api/v1/keys/{alices['id']}"), 404)
    error_of(post_json(agency.erin, f"/api/v1/keys/{alices['id']}/revoke", {}), 404)


def test_keys_under_it_cannot_be_issued_once_management_ended(world, shared, agency, travel):
    travel(licence_of(world.lock.pk).full_until - timedelta(days=1))
    # The organization's key has ended by now too; make it open-ended to see the licence rule.
    Key.objects.filter(pk=shared["id"]).update(valid_until=None)
    travel(licence_of(world.lock.pk).full_until + timedelta(days=1))

    error_of(under(agency.dora, shared), 403, "management_ended")


# --- what the lock owner sees and does ------------------------------------------------------------


def test_the_lock_owner_sees_the_keys_issued_under_the_organizations_key(
    world, alice_api, shared, agency
):
    child = under(agency.dora, shared).json()

    listed = alice_api.get(f"/api/v1/locks/{world.lock.pk}/keys").json()["items"]

    by_id = {k["id"]: k for k in listed}
    assert set(by_id) == {shared["id"], child["id"]}
    assert by_id[child["id"]]["parent_id"] == shared["id"]
    assert by_id[child["id"]]["person"] == "Gus"


def test_taking_back_the_organizations_key_takes_back_every_key_under_it(
    world, alice_api, shared, agency
):
    children = [
        under(agency.dora, shared, name=f"P{n}", credentials=[{"kind": "pin", "value": f"90{n}12"}])
        for n in range(3)
    ]
    assert all(c.status_code == 201 for c in children)
    before = version(world)

    response = post_json(alice_api, f"/api/v1/keys/{shared['id']}/revoke", {})

    assert response.status_code == 200
    assert version(world) == before + 1
    live = alice_api.get(f"/api/v1/locks/{world.lock.pk}/keys").json()
    assert live["count"] == 0
    assert agency.dora.get("/api/v1/shared-keys").json() == []
    error_of(under(agency.dora, shared, name="Late"), 409, "shared_key_revoked")
    decision = post_json(
        alice_api,
        f"/api/v1/locks/{world.lock.pk}/access-decisions",
        {"kind": "pin", "value": "90012"},
    ).json()
    assert (decision["granted"], decision["reason"]) == (False, "revoked")


# --- changing keys --------------------------------------------------------------------------------


@pytest.fixture
def dana(world, issue):
    response = issue(
        name="Dana",
        credentials=[{"kind": "pin", "value": "482916"}],
        schedule=[{"days": ["mon", "tue"], "start": "08:00", "end": "17:00"}],
        note="cleaner",
    )
    assert response.status_code == 201
    return response.json()


def test_patch_changes_only_what_it_names(world, alice_api, dana):
    before = version(world)

    response = patch_json(alice_api, f"/api/v1/keys/{dana['id']}", {"note": "head cleaner"})

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["note"] == "head cleaner"
    assert body["schedule"] == dana["schedule"]
    assert (body["valid_from"], body["valid_until"]) == (None, None)
    assert version(world) == before + 1
    event = Event.objects.filter(kind=EventKind.KEY_UPDATED).get()
    assert event.key_id == dana["id"]


def test_patch_sets_and_clears_the_window_and_the_schedule(world, alice_api, dana):
    until = datetime(2031, 1, 1, 12, 0, tzinfo=UTC)

    set_ = patch_json(
        alice_api, f"/api/v1/keys/{dana['id']}", {"valid_until": iso(until), "schedule": None}
    ).json()
    cleared = patch_json(
        alice_api, f"/api/v1/keys/{dana['id']}", {"valid_until": None, "note": None}
    ).json()

    assert (parse(set_["valid_until"]), set_["schedule"]) == (until, None)
    assert set_["note"] == "cleaner"
    assert (cleared["valid_until"], cleared["note"]) == (None, "")


def test_a_patch_keeps_what_another_change_wrote_while_it_waited(
    world, alice_api, dana, monkeypatch
):
    """Fields left out are read under the lock row's lock, not before it: a
    change of another field that lands meanwhile stays."""
    from doorkeep.keys import services

    original = services._managed_key

    def meanwhile(actor, key_id):
        found = original(actor, key_id)
        Key.objects.filter(pk=key_id).update(schedule=None)  # another request's change
        return found

    monkeypatch.setattr(services, "_managed_key", meanwhile)

    body = patch_json(alice_api, f"/api/v1/keys/{dana['id']}", {"note": "head cleaner"}).json()

    assert body["note"] == "head cleaner"
    assert body["schedule"] is None
    assert Key.objects.get(pk=dana["id"]).schedule is None


@pytest.mark.parametrize(
    ("body", "status", "error"),
    [
        (
            {"valid_from": "2031-01-02T00:00:00Z", "valid_until": "2031-01-01T00:00:00Z"},
            400,
            "invalid_window",
        ),
        ({"valid_until": "2031-01-01T00:00:00"}, 422, "validation_error"),
        ({"schedule": [{"days": ["someday"], "start": "08:00", "end": "09:00"}]}, 400, None),
        ({"note": "x" * 201}, 422, "validation_error"),
    ],
    ids=["backwards", "no-time-zone", "bad-schedule", "long-note"],
)
def test_patch_refuses_what_cannot_be(world, alice_api, dana, body, status, error):
    before = version(world)

    error_of(patch_json(alice_api, f"/api/v1/keys/{dana['id']}", body), status, error)

    assert Key.objects.get(pk=dana["id"]).note == "cleaner"
    assert version(world) == before


def test_a_key_taken_back_cannot_be_changed(world, alice_api, dana):
    post_json(alice_api, f"/api/v1/keys/{dana['id']}/revoke", {})

    error_of(
        patch_json(alice_api, f"/api/v1/keys/{dana['id']}", {"note": "x"}), 409, "already_revoked"
    )


def test_an_unknown_key_cannot_be_changed(world, alice_api):
    error_of(patch_json(alice_api, "/api/v1/keys/987654", {"note": "x"}), 404, "key_not_found")


def test_an_organizations_key_has_no_weekly_schedule(world, alice_api, shared):
    body = {"schedule": [{"days": ["mon"], "start": "08:00", "end": "09:00"}]}

    error_of(patch_json(alice_api, f"/api/v1/keys/{shared['id']}", body), 400, "invalid_schedule")


def test_the_organization_changes_its_keys_within_the_window(world, shared, agency, now):
    child = under(agency.dora, shared).json()
    url = f"/api/v1/keys/{child['id']}"

    error_of(
        patch_json(agency.erin, url, {"valid_until": iso(now + timedelta(days=90))}),
        400,
        "outside_shared_window",
    )
    narrowed = patch_json(agency.erin, url, {"valid_until": iso(now + timedelta(days=3))})
    reopened = patch_json(agency.erin, url, {"valid_until": None})

    assert narrowed.status_code == 200
    assert reopened.json()["valid_until"] == shared["valid_until"]
    error_of(patch_json(agency.frank, url, {"note": "x"}), 403, "forbidden")


def test_the_shared_keys_list_takes_the_same_queries_for_many_keys(world, agency, code, now):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from doorkeep.keys.sharing import issue_key_to_organization
    from doorkeep.licensing.services import redeem_for_lock
    from doorkeep.locks.services import add_manufactured_lock, register_lock

    def share(serial: str) -> None:
        add_manufactured_lock(serial, claim_secret="ABCD-EFGH-JKLM-NPQR")
        lock = register_lock(
            world.alice, serial=serial, claim_secret="ABCD-EFGH-JKLM-NPQR", entry_id=world.entry.pk
        )
        redeem_for_lock(world.alice, lock.pk, code("MGMT-5Y"))
        redeem_for_lock(world.alice, lock.pk, code("ORGS-5Y"))
        issue_key_to_organization(world.alice, lock.pk, agency.org.pk)

    share("DK-SHARE-000")
    agency.dora.get("/api/v1/shared-keys")
    with CaptureQueriesContext(connection) as one:
        assert len(agency.dora.get("/api/v1/shared-keys").json()) == 1
    for n in range(1, 15):
        share(f"DK-SHARE-{n:03}")

    with CaptureQueriesContext(connection) as many:
        assert len(agency.dora.get("/api/v1/shared-keys").json()) == 15

    assert len(many) == len(one)
