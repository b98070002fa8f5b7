"""Collaborators (R41): an owner invites extra logins, for example the staff of
a property agency, each for one site or every site, read only or as a
manager, with an optional end; they see only what their membership covers,
what they change is logged under their name, and the owner ends their access
in one step. Everyone lists and ends their own sessions.

Alice's organization has two sites: the Canal House (site A, with her lock
and Dana's key on it) and Harbour Flats (site B, with a lock and Bea's key)."""

from __future__ import annotations

import re
import zoneinfo
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from doorkeep.accounts.models import Membership, Role, User
from doorkeep.accounts.services import add_member, create_user
from doorkeep.collaborators import services as collaborators
from doorkeep.collaborators.models import CollaboratorInvitation
from doorkeep.core.errors import Conflict, InvalidInput, PermissionDenied
from doorkeep.events.models import Event, EventKind
from doorkeep.keys.models import Key, Person
from doorkeep.keys.services import CredentialSpec, HolderSpec, KeySpec, issue_key
from doorkeep.locks.models import Lock
from doorkeep.locks.services import add_manufactured_lock, register_lock
from doorkeep.notify.services import create_endpoint
from doorkeep.properties.models import Property
from doorkeep.properties.services import add_entry, create_property
from doorkeep.residents.services import ResidentSpec, add_resident, add_unit

PASSWORD = "correct horse battery staple"
AGENT = "agent@agency.example"
LINK = re.compile(r"https?://\S+/collaborators/accept/([\w-]+)/")


@dataclass
class Sites:
    a: Property
    b: Property
    lock_a: Lock
    lock_b: Lock
    key_a: Key
    key_b: Key


@pytest.fixture
def sites(world: Any) -> Sites:
    key_a = issue_key(
        world.alice,
        world.lock.pk,
        KeySpec(
            HolderSpec(name="Dana Holder", email="dana@example.com"),
            [CredentialSpec("pin", "73950264")],
        ),
    )
    harbour = create_property(world.alice, world.org.pk, name="Harbour Flats", tz="Europe/Paris")
    gate = add_entry(world.alice, harbour.pk, name="Harbour gate")
    add_manufactured_lock("DK-TEST-0002", claim_secret="ABCD-EFGH-JKLM-NPQR")
    lock_b = register_lock(
        world.alice,
        serial="DK-TEST-0002",
        claim_secret="ABCD-EFGH-JKLM-NPQR",
        entry_id=gate.pk,
        name="Harbour gate lock",
    )
    key_b = issue_key(
        world.alice,
        lock_b.pk,
        KeySpec(
            HolderSpec(name="Bea Holder", email="bea@example.com"),
            [CredentialSpec("pin", "55512345")],
        ),
    )
    return Sites(world.prop, harbour, world.lock, lock_b, key_a, key_b)


def _token(mailoutbox: list[Any]) -> str:
    found = LINK.search(mailoutbox[-1].body)
    assert found, mailoutbox[-1].body
    return found.group(1)


def invited(world: Any, mailoutbox: list[Any], *, email: str = AGENT, **spec: Any) -> str:
    """Alice invites ``email`` (read only for the Canal House unless told);
    the token from the emailed link."""
    spec.setdefault("role", "read_only")
    spec.setdefault("property_id", world.prop.pk)
    collaborators.invite(world.alice, world.org.pk, email=email, **spec)
    return _token(mailoutbox)


def signed_in(email: str) -> Client:
    """A browser that signs in with the password, through allauth."""
    client = Client()
    response = client.post("/accounts/login/", {"login": email, "password": PASSWORD})
    assert response.status_code == 302, response.content[:500]
    return client


@pytest.fixture
def agent(world: Any) -> User:
    return create_user(AGENT, PASSWORD, name="Agnes Agent")


def collaborator(world: Any, mailoutbox: list[Any], agent: User, **spec: Any) -> User:
    collaborators.accept(agent, invited(world, mailoutbox, **spec))
    return agent


# --- the requirement, end to end -----------------------------------------------------------------


def test_the_owner_invites_an_agency_collaborator_who_signs_in_with_their_own_login_and_sees_only_that_site(  # noqa: E501
    world, sites, agent, mailoutbox
):
    owner = world.client(world.alice)
    page = owner.get("/settings/collaborators/")
    assert page.status_code == 200
    assert "Canal House" in page.content.decode() and "Harbour Flats" in page.content.decode()

    sent = owner.post(
        f"/settings/collaborators/{world.org.pk}/invite/",
        {"email": AGENT, "role": "read_only", "site": str(sites.a.pk), "last_day": ""},
    )
    assert sent.status_code == 302
    message = mailoutbox[-1]
    assert message.to == [AGENT]
    assert "Canal House" in message.body
    token = _token(mailoutbox)
    assert not CollaboratorInvitation.objects.filter(token_digest__contains=token).exists()

    browser = signed_in(AGENT)
    shown = browser.get(f"/collaborators/accept/{token}/")
    assert shown.status_code == 200
    assert "Read only" in shown.content.decode()
    accepted = browser.post(f"/collaborators/accept/{token}/")
    assert accepted.status_code == 302
    assert accepted["Location"] == f"/properties/{sites.a.pk}/"

    dashboard = browser.get("/").content.decode()
    assert "Canal House" in dashboard and "Front door lock" in dashboard
    assert "Harbour Flats" not in dashboard and "Harbour gate lock" not in dashboard
    assert browser.get(f"/properties/{sites.a.pk}/").status_code == 200
    lock_page = browser.get(f"/locks/{sites.lock_a.pk}/")
    assert lock_page.status_code == 200
    assert "Dana Holder" in lock_page.content.decode()  # read only sees the keys
    assert browser.get(f"/properties/{sites.b.pk}/").status_code == 404
    assert browser.get(f"/locks/{sites.lock_b.pk}/").status_code == 404
    membership = Membership.objects.get(user=agent, organization=world.org)
    assert (membership.role, membership.property_id, membership.invited_by_id) == (
        Role.READ_ONLY,
        sites.a.pk,
        world.alice.pk,
    )


def test_a_site_collaborator_lists_only_that_site_in_the_api(world, sites, agent, mailoutbox):
    api = world.bearer(collaborator(world, mailoutbox, agent))

    assert [p["name"] for p in api.get("/api/v1/properties").json()] == ["Canal House"]
    assert [lock["serial"] for lock in api.get("/api/v1/locks").json()] == ["DK-TEST-0001"]
    assert api.get(f"/api/v1/locks?property_id={sites.b.pk}").json() == []
    assert api.get(f"/api/v1/properties/{sites.a.pk}").status_code == 200
    keys = api.get(f"/api/v1/locks/{sites.lock_a.pk}/keys").json()
    assert [k["person"] for k in keys["items"]] == ["Dana Holder"]


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/properties/{b}",
        "/api/v1/locks/{lock_b}",
        "/api/v1/locks/{lock_b}/keys",
        "/api/v1/keys/{key_b}",
        "/api/v1/locks/{lock_b}/events",
        "/api/v1/properties/{b}/events",
        "/api/v1/properties/{b}/residents",
        "/api/v1/locks/{lock_b}/licence",
    ],
)
def test_a_site_collaborator_gets_404_for_everything_of_the_other_site(
    world, sites, agent, mailoutbox, path
):
    api = world.bearer(collaborator(world, mailoutbox, agent, role="building_manager"))
    url = path.format(b=sites.b.pk, lock_b=sites.lock_b.pk, key_b=sites.key_b.pk)

    response = api.get(url)

    assert response.status_code == 404, response.content
    assert "Harbour" not in response.content.decode() and "Bea" not in response.content.decode()


@pytest.mark.parametrize(
    "path",
    [
        "/properties/{b}/",
        "/properties/{b}/events/",
        "/properties/{b}/residents/",
        "/locks/{lock_b}/",
        "/locks/{lock_b}/events/",
        "/locks/{lock_b}/licence/",
    ],
)
def test_a_site_collaborator_gets_the_404_page_for_the_other_sites_pages(
    world, sites, agent, mailoutbox, path
):
    browser = world.client(collaborator(world, mailoutbox, agent, role="building_manager"))

    response = browser.get(path.format(b=sites.b.pk, lock_b=sites.lock_b.pk))

    assert response.status_code == 404
    assert "Harbour" not in response.content.decode()


def test_a_site_collaborator_gets_404_for_what_belongs_to_the_whole_organization(
    world, sites, agent, mailoutbox, code
):
    create_endpoint(world.alice, world.org.pk, url="https://hooks.alice.example/doorkeep")
    api = world.bearer(collaborator(world, mailoutbox, agent, role="building_manager"))
    org = world.org.pk

    refused = [
        api.get(f"/api/v1/organizations/{org}/webhooks"),
        api.post(
            f"/api/v1/organizations/{org}/webhooks",
            {"url": "https://agency.example/hook"},
            content_type="application/json",
        ),
        api.post(
            f"/api/v1/organizations/{org}/upgrades/codes",
            {"code": code("ORG-MGMT")},
            content_type="application/json",
        ),
        api.post(
            f"/api/v1/locks/{sites.lock_a.pk}/licence/codes",
            {"code": code("MGMT-5Y")},
            content_type="application/json",
        ),
        api.get(f"/api/v1/organizations/{org}/collaborators"),
        api.post(
            "/api/v1/properties",
            {"organization_id": org, "name": "Agency HQ"},
            content_type="application/json",
        ),
    ]

    assert [r.status_code for r in refused] == [404] * len(refused)
    assert api.get("/api/v1/organizations").json() == []
    assert world.client(agent).get(f"/organizations/{org}/webhooks/").status_code == 404


@pytest.fixture
def code(db: None) -> Any:
    from doorkeep.licensing.services import generate_batch

    def make(sku: str) -> str:
        _batch, (plain,) = generate_batch(None, sku, 1)
        return plain

    return make


# --- read only, and manager ----------------------------------------------------------------------


def test_a_read_only_collaborator_gets_403_for_changes_on_its_site(world, sites, agent, mailoutbox):
    api = world.bearer(collaborator(world, mailoutbox, agent))
    before = (Key.objects.count(), Event.objects.count())

    attempts = [
        api.post(
            f"/api/v1/locks/{sites.lock_a.pk}/keys",
            {"name": "Intruder", "credentials": [{"kind": "pin", "value": "24682468"}]},
            content_type="application/json",
        ),
        api.post(f"/api/v1/keys/{sites.key_a.pk}/revoke", {}, content_type="application/json"),
        api.post(
            f"/api/v1/properties/{sites.a.pk}/entries",
            {"name": "Back door"},
            content_type="application/json",
        ),
        api.post(
            f"/api/v1/properties/{sites.a.pk}/units",
            {"label": "9Z"},
            content_type="application/json",
        ),
    ]

    assert [(r.status_code, r.json()["code"]) for r in attempts] == [(403, "forbidden")] * 4
    assert "issue or take back keys" in attempts[0].json()["message"]
    assert (Key.objects.count(), Event.objects.count()) == before


def test_a_read_only_collaborator_reads_the_sites_residents_badges_and_event_log(
    world, sites, agent, mailoutbox
):
    unit = add_unit(world.alice, sites.a.pk, "Attic 7")
    add_resident(
        world.alice,
        sites.a.pk,
        ResidentSpec("Rita Resident", "rita@example.com", date(2024, 1, 1), unit_id=unit.pk),
    )
    reader = collaborator(world, mailoutbox, agent)
    api = world.bearer(reader)

    residents = api.get(f"/api/v1/properties/{sites.a.pk}/residents?all=true")
    assert [r["name"] for r in residents.json()] == ["Rita Resident"]
    assert api.get(f"/api/v1/properties/{sites.a.pk}/badges").status_code == 200
    assert api.get(f"/api/v1/locks/{sites.lock_a.pk}/events").status_code == 200
    page = world.client(reader).get(f"/properties/{sites.a.pk}/residents/")
    html = page.content.decode()
    assert page.status_code == 200
    assert "Rita Resident" in html
    assert "Set move-out" not in html and "Add resident" not in html


def test_a_manager_collaborator_issues_a_key_on_its_sites_lock_and_the_log_names_them(
    world, sites, agent, mailoutbox
):
    manager = collaborator(world, mailoutbox, agent, role="building_manager")
    api = world.bearer(manager)

    issued = api.post(
        f"/api/v1/locks/{sites.lock_a.pk}/keys",
        {"name": "Tom Tenant", "credentials": [{"kind": "pin", "value": "24682468"}]},
        content_type="application/json",
    )

    assert issued.status_code == 201, issued.content
    events = api.get(f"/api/v1/locks/{sites.lock_a.pk}/events?kind=key.issued").json()["items"]
    assert events[0]["actor"] == AGENT
    assert "Tom Tenant" in events[0]["summary"]
    log = world.client(world.alice).get(f"/locks/{sites.lock_a.pk}/events/").content.decode()
    assert "Agnes Agent" in log
    refused = api.post(
        f"/api/v1/locks/{sites.lock_b.pk}/keys",
        {"name": "Tom Tenant", "credentials": [{"kind": "pin", "value": "24682468"}]},
        content_type="application/json",
    )
    assert refused.status_code == 404


def test_a_manager_collaborator_cannot_reach_a_person_of_the_other_site_by_id(
    world, sites, agent, mailoutbox
):
    api = world.bearer(collaborator(world, mailoutbox, agent, role="building_manager"))
    bea = Person.objects.get(name="Bea Holder")

    response = api.post(
        f"/api/v1/locks/{sites.lock_a.pk}/keys",
        {"person_id": bea.pk, "credentials": [{"kind": "pin", "value": "24682468"}]},
        content_type="application/json",
    )

    assert (response.status_code, response.json()["code"]) == (404, "person_not_found")
    lock_page = world.client(agent).get(f"/locks/{sites.lock_a.pk}/").content.decode()
    assert "Bea Holder" not in lock_page


def test_a_manager_collaborator_takes_back_a_key_of_its_site_only(world, sites, agent, mailoutbox):
    api = world.bearer(collaborator(world, mailoutbox, agent, role="building_manager"))

    assert api.post(f"/api/v1/keys/{sites.key_b.pk}/revoke").status_code == 404
    assert api.post(f"/api/v1/keys/{sites.key_a.pk}/revoke").status_code == 200
    taken = Event.objects.get(kind=EventKind.KEY_REVOKED, key=sites.key_a)
    assert taken.actor == agent


def test_a_collaborator_for_every_site_sees_both(world, sites, agent, mailoutbox):
    api = world.bearer(collaborator(world, mailoutbox, agent, property_id=None))

    assert {p["name"] for p in api.get("/api/v1/properties").json()} == {
        "Canal House",
        "Harbour Flats",
    }
    assert api.get(f"/api/v1/locks/{sites.lock_b.pk}/keys").status_code == 200
    assert api.post(f"/api/v1/keys/{sites.key_b.pk}/revoke").status_code == 403


# --- the end date --------------------------------------------------------------------------------


def test_a_collaborator_has_no_access_once_the_end_has_passed(
    world, sites, agent, mailoutbox, time_machine
):
    time_machine.move_to(timezone.now(), tick=False)
    collaborator(world, mailoutbox, agent, ends_at=timezone.now() + timedelta(days=1))
    api = world.bearer(agent)
    assert api.get(f"/api/v1/properties/{sites.a.pk}").status_code == 200

    time_machine.shift(timedelta(days=1, seconds=1))

    assert api.get(f"/api/v1/properties/{sites.a.pk}").status_code == 404
    assert api.get("/api/v1/properties").json() == []
    assert world.client(agent).get(f"/locks/{sites.lock_a.pk}/").status_code == 404
    owners_page = world.client(world.alice).get("/settings/collaborators/").content.decode()
    assert "Ended" in owners_page


def test_the_last_day_on_the_owners_form_ends_access_at_the_end_of_that_day_at_the_site(
    world, sites, agent, mailoutbox
):
    world.client(world.alice).post(
        f"/settings/collaborators/{world.org.pk}/invite/",
        {"email": AGENT, "role": "read_only", "site": str(sites.b.pk), "last_day": "2031-03-31"},
    )

    invitation = CollaboratorInvitation.objects.get(email=AGENT)
    assert invitation.ends_at.isoformat() == "2031-03-31T22:00:00+00:00"  # midnight in Paris
    assert "2031-03-31 (Europe/Paris)" in mailoutbox[-1].body


def test_an_end_in_the_past_is_refused(world, sites):
    with pytest.raises(InvalidInput) as caught:
        collaborators.invite(
            world.alice,
            world.org.pk,
            email=AGENT,
            role="read_only",
            ends_at=timezone.now() - timedelta(minutes=1),
        )
    assert caught.value.code == "invalid_end"


# --- accepting: personal, once -------------------------------------------------------------------


def test_another_address_cannot_accept_and_is_told_to_use_the_invited_one(world, sites, mailoutbox):
    token = invited(world, mailoutbox)
    api = world.bearer(world.charlie)

    response = api.post(
        "/api/v1/collaborator-invitations/accept", {"token": token}, content_type="application/json"
    )

    assert (response.status_code, response.json()["code"]) == (403, "wrong_account")
    assert AGENT in response.json()["message"]
    page = world.client(world.charlie).get(f"/collaborators/accept/{token}/")
    assert page.status_code == 403
    assert "create an account with that address" in page.content.decode()
    assert not Membership.objects.filter(user=world.charlie, organization=world.org).exists()


def test_an_anonymous_visitor_is_asked_to_sign_in_or_create_an_account_with_the_address(
    world, sites, mailoutbox
):
    token = invited(world, mailoutbox)

    page = Client().get(f"/collaborators/accept/{token}/").content.decode()

    assert AGENT in page
    assert "/accounts/signup/" in page and "/accounts/login/" in page


def test_an_address_that_is_not_confirmed_cannot_accept(world, sites, mailoutbox):
    token = invited(world, mailoutbox)
    unconfirmed = create_user(AGENT, PASSWORD, verified=False)

    with pytest.raises(PermissionDenied):
        collaborators.accept(unconfirmed, token)


def test_an_address_accepts_once(world, sites, agent, mailoutbox):
    token = invited(world, mailoutbox)
    api = world.bearer(agent)
    first = api.post(
        "/api/v1/collaborator-invitations/accept", {"token": token}, content_type="application/json"
    )
    assert first.status_code == 200
    assert first.json()["property_id"] == sites.a.pk

    again = api.post(
        "/api/v1/collaborator-invitations/accept", {"token": token}, content_type="application/json"
    )

    assert (again.status_code, again.json()["code"]) == (410, "invitation_used")
    assert Membership.objects.filter(user=agent).count() == 1


def test_a_person_already_member_of_the_organization_gets_a_clear_409(
    world, sites, agent, mailoutbox
):
    refused = world.bearer(world.alice).post(
        f"/api/v1/organizations/{world.org.pk}/collaborator-invitations",
        {"email": "bob@example.com", "role": "read_only"},
        content_type="application/json",
    )
    assert (refused.status_code, refused.json()["code"]) == (409, "already_member")

    token = invited(world, mailoutbox)
    add_member(world.alice, world.org.pk, AGENT, Role.MEMBER)
    response = world.bearer(agent).post(
        "/api/v1/collaborator-invitations/accept", {"token": token}, content_type="application/json"
    )

    assert (response.status_code, response.json()["code"]) == (409, "already_member")
    assert "one membership per organization" in response.json()["message"]


def test_a_revoked_link_is_refused(world, sites, agent, mailoutbox):
    token = invited(world, mailoutbox)
    invitation = CollaboratorInvitation.objects.get(email=AGENT)
    owner = world.client(world.alice)
    assert (
        owner.post(f"/settings/collaborators/invitations/{invitation.pk}/revoke/").status_code
        == 302
    )

    response = world.bearer(agent).post(
        "/api/v1/collaborator-invitations/accept", {"token": token}, content_type="application/json"
    )

    assert (response.status_code, response.json()["code"]) == (410, "invitation_revoked")
    assert world.client(agent).get(f"/collaborators/accept/{token}/").status_code == 410
    assert Event.objects.filter(kind=EventKind.COLLABORATOR_REVOKED, actor=world.alice).exists()


def test_an_expired_link_is_refused(world, sites, agent, mailoutbox, time_machine):
    time_machine.move_to(timezone.now(), tick=False)
    token = invited(world, mailoutbox)

    time_machine.shift(timedelta(days=7, seconds=1))

    response = world.bearer(agent).post(
        "/api/v1/collaborator-invitations/accept", {"token": token}, content_type="application/json"
    )
    assert (response.status_code, response.json()["code"]) == (410, "invitation_expired")
    listed = world.bearer(world.alice).get(
        f"/api/v1/organizations/{world.org.pk}/collaborator-invitations"
    )
    assert [i["status"] for i in listed.json()] == ["expired"]


def test_a_link_that_was_never_sent_is_not_found(world, agent):
    response = world.bearer(agent).post(
        "/api/v1/collaborator-invitations/accept",
        {"token": "made-up"},
        content_type="application/json",
    )

    assert (response.status_code, response.json()["code"]) == (404, "invitation_not_found")


def test_a_second_invitation_to_a_waiting_address_is_refused_until_the_first_is_revoked(
    world, sites, mailoutbox
):
    invited(world, mailoutbox)

    with pytest.raises(Conflict) as caught:
        collaborators.invite(world.alice, world.org.pk, email=AGENT.upper(), role="read_only")

    assert caught.value.code == "already_invited"


def test_only_a_lock_owner_invites_and_an_outsider_is_told_nothing(world, sites):
    body = {"email": AGENT, "role": "read_only"}
    url = f"/api/v1/organizations/{world.org.pk}/collaborator-invitations"

    by_bob = world.bearer(world.bob).post(url, body, content_type="application/json")
    by_charlie = world.bearer(world.charlie).post(url, body, content_type="application/json")

    assert by_bob.status_code == 403
    assert "Only lock owners can invite collaborators" in by_bob.json()["message"]
    assert by_charlie.status_code == 404
    assert world.client(world.bob).get("/settings/collaborators/").status_code == 403
    assert (
        world.client(world.charlie)
        .post(
            f"/settings/collaborators/{world.org.pk}/invite/", {"email": AGENT, "role": "read_only"}
        )
        .status_code
        == 404
    )


def test_each_step_is_in_the_organizations_event_log(world, sites, agent, mailoutbox):
    collaborator(world, mailoutbox, agent, role="building_manager")
    membership = Membership.objects.get(user=agent)
    collaborators.end_access(world.alice, world.org.pk, membership.pk)

    steps = list(
        Event.objects.filter(organization=world.org, kind__startswith="collaborator.")
        .order_by("id")
        .values_list("kind", "actor__email", "property_id")
    )

    assert steps == [
        ("collaborator.invited", "alice@example.com", sites.a.pk),
        ("collaborator.accepted", AGENT, sites.a.pk),
        ("collaborator.ended", "alice@example.com", sites.a.pk),
    ]


# --- the owner sees and ends access --------------------------------------------------------------


def test_the_owner_sees_the_last_sign_in_and_ends_access_in_one_action(
    world, sites, agent, mailoutbox
):
    collaborator(world, mailoutbox, agent, role="building_manager")
    browser = signed_in(AGENT)
    assert browser.get("/").status_code == 200
    agent.refresh_from_db()
    assert agent.last_login is not None
    owner = world.client(world.alice)
    membership = Membership.objects.get(user=agent)

    page = owner.get("/settings/collaborators/").content.decode()
    assert AGENT in page and "Manager" in page and "Canal House" in page
    amsterdam = zoneinfo.ZoneInfo("Europe/Amsterdam")  # the organization's first site's zone
    assert timezone.localtime(agent.last_login, amsterdam).strftime("%Y-%m-%d %H:%M") in page
    assert "Times are in Europe/Amsterdam" in page
    listed = world.bearer(world.alice).get(f"/api/v1/organizations/{world.org.pk}/collaborators")
    assert [(c["email"], c["last_login"] is not None) for c in listed.json()] == [
        (AGENT, True),
        ("bob@example.com", False),
    ]

    ended = owner.post(f"/settings/collaborators/{world.org.pk}/{membership.pk}/end/")

    assert ended.status_code == 302
    assert not Membership.objects.filter(user=agent).exists()
    after = browser.get(f"/properties/{sites.a.pk}/")
    assert after.status_code == 302 and "/accounts/login/" in after["Location"]
    assert browser.get("/api/v1/me").status_code == 401


def test_ending_a_lock_owners_access_is_refused(world):
    owner = Membership.objects.get(user=world.alice, organization=world.org)

    response = world.bearer(world.alice).delete(
        f"/api/v1/organizations/{world.org.pk}/collaborators/{owner.pk}"
    )

    assert (response.status_code, response.json()["code"]) == (403, "owner_membership")


def test_an_owner_cannot_end_a_membership_of_another_organization(world):
    charlies = Membership.objects.get(user=world.charlie)

    response = world.bearer(world.alice).delete(
        f"/api/v1/organizations/{world.org.pk}/collaborators/{charlies.pk}"
    )

    assert response.status_code == 404
    assert Membership.objects.filter(pk=charlies.pk).exists()


# --- each person's own sessions ------------------------------------------------------------------


def test_a_person_lists_and_ends_their_own_sessions(world):
    laptop = signed_in("bob@example.com")
    phone = signed_in("bob@example.com")
    assert phone.get("/").status_code == 200

    page = laptop.get("/accounts/sessions/")

    html = page.content.decode()
    assert page.status_code == 200
    assert 'class="site-header"' in html  # the project's layout
    assert html.count('<tr class="session">') == 2
    assert "Sign out the other sessions" in html
    ended = laptop.post("/accounts/sessions/")
    assert ended.status_code == 302
    assert laptop.get("/").status_code == 200
    gone = phone.get("/")
    assert gone.status_code == 302 and "/accounts/login/" in gone["Location"]


def test_the_sessions_page_is_linked_from_the_menu(world):
    assert 'href="/accounts/sessions/"' in world.client(world.bob).get("/").content.decode()


def test_the_collaborators_page_is_linked_for_owners_only(world):
    assert 'href="/settings/collaborators/"' in world.client(world.alice).get("/").content.decode()
    assert (
        'href="/settings/collaborators/"' not in world.client(world.bob).get("/").content.decode()
    )


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/", 200),
        ("/home/", 302),
        ("/doors/", 200),
        ("/notifications/", 200),
        ("/settings/upgrades/", 200),
        ("/settings/tokens/", 200),
        ("/settings/webhooks/", 200),
        ("/settings/notifications/", 200),
        ("/accounts/sessions/", 200),
        ("/settings/collaborators/", 403),
    ],
)
def test_a_site_collaborator_opens_every_page_of_the_menu_and_sees_nothing_of_the_other_site(
    world, sites, agent, mailoutbox, path, status
):
    browser = world.client(collaborator(world, mailoutbox, agent, role="building_manager"))

    response = browser.get(path)

    assert response.status_code == status
    assert "Harbour" not in response.content.decode()
