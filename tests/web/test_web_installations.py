"""Charging-station installations in the web UI (R49): the resident asks and
follows each step in the portal (and cancels before the work is handed on);
the owner's side approves or declines, hands the work to the platform (or to
their own electrician) and may schedule and complete it; the platform
operator's list; the page of one installation. A member is refused; an
outsider gets 404 everywhere."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from webhelp import text as page_text

from doorkeep.accounts.models import Membership, Organization, Role
from doorkeep.accounts.services import create_user
from doorkeep.installations import services
from doorkeep.installations.models import Installation
from doorkeep.installations.models import InstallationStatus as S
from doorkeep.notify.models import Notification
from doorkeep.residents.models import ParkingSpace
from doorkeep.residents.services import (
    ResidentSpec,
    add_parking_space,
    add_resident,
    add_unit,
    site_today,
)

PASSWORD = "correct horse battery staple"
_CSRF = re.compile(r'<input type="hidden" name="csrfmiddlewaretoken" value="[^"]*">')


def text(response):
    """The page as text, without its CSRF tokens."""
    return _CSRF.sub("", page_text(response))


@pytest.fixture
def rita(world):
    """A resident of Alice's site, in unit 2B, with an account."""
    user = create_user("rita@example.com", PASSWORD, name="Rita Resident")
    unit = add_unit(world.alice, world.prop.pk, "2B")
    add_resident(
        world.alice,
        world.prop.pk,
        ResidentSpec("Rita Resident", user.email, site_today(world.prop), unit_id=unit.pk),
    )
    return user


@pytest.fixture
def space(world, rita):
    """Parking space P8 of unit 2B, with no station yet."""
    unit = world.prop.units.get(label="2B")
    return add_parking_space(world.alice, world.prop.pk, "P8", unit_id=unit.pk)


@pytest.fixture
def operator(world):
    user = create_user("olga@example.com", PASSWORD, name="Olga Operator")
    platform = Organization.objects.create(name="Doorkeep platform", is_platform=True)
    Membership.objects.create(user=user, organization=platform, role=Role.PLATFORM_OPERATOR)
    return user


def _ask(world, rita, number="P8"):
    return services.request_installation(
        rita, world.prop.pk, parking_space=number, wished_power_kw=11, notes="Garage wall"
    )


def _site(world, tail=""):
    return f"/properties/{world.prop.pk}/{tail}"


def _act(world, item, verb):
    return _site(world, f"installations/{item.pk}/{verb}/")


def _card(body, item):
    """The HTML of one installation's card."""
    match = re.search(
        rf'id="installation-{item.pk}".*?</li>\s*(?=<li class="installation-card"|</ul>)',
        body,
        re.S,
    )
    assert match, f"installation-{item.pk}"
    return match.group(0)


def _status(item):
    item.refresh_from_db()
    return item.status


# --- the whole way through the pages --------------------------------------------------------


def test_a_station_from_the_residents_request_to_installed_through_the_pages(
    world, alice, rita, operator, space
):
    resident, desk = world.client(rita), world.client(operator)
    body = text(resident.get("/portal/"))
    assert "Charging station at my parking space" in body
    assert 'action="/portal/installations/ask/#installations"' in body

    response = resident.post(
        "/portal/installations/ask/",
        {
            "property": world.prop.pk,
            "parking_space": "P8",
            "wished_power_kw": "7.4",
            "notes": "Garage wall",
        },
        follow=True,
    )
    body = text(response)
    assert "Your request for a charging station at parking space P8 is sent to the owner." in body
    item = Installation.objects.get()
    card = _card(body, item)
    for shown in ("Parking space P8", "Canal House", "Requested", "7.4 kW", "Garage wall"):
        assert shown in card, shown
    assert f'action="/portal/installations/{item.pk}/cancel/"' in card

    # The owner approves, then hands it to the platform with her own electrician.
    body = text(alice.get(_site(world, "residents/")))
    card = _card(body, item)
    for shown in ("Rita Resident", "rita@example.com", "unit 2B", "Approve", "Decline"):
        assert shown in card, shown
    response = alice.post(_act(world, item, "approve"))
    assert response.status_code == 302
    assert response["Location"].endswith(f"/residents/#installation-{item.pk}")
    assert _status(item) == S.APPROVED
    body = text(alice.get(response["Location"]))
    assert "The charging station at parking space P8 is approved." in body
    card = _card(body, item)
    assert "The platform organizes it" in card and "Coordinate with my electrician" in card
    response = alice.post(
        _act(world, item, "electrician"),
        {"name": "Eli Sparks", "company": "Sparks & Co", "email": "ELI@example.com", "phone": ""},
        follow=True,
    )
    assert "The platform coordinates the installation at parking space P8 with Eli Sparks." in text(
        response
    )
    assert _status(item) == S.COORDINATING

    # The resident follows it: the electrician shown, no cancelling any more.
    card = _card(text(resident.get("/portal/")), item)
    assert "The platform coordinates with the owner's electrician" in card
    assert "Eli Sparks, Sparks & Co, eli@example.com" in card
    assert "/cancel/" not in card

    # The operator's list: schedule, then the station installed.
    body = text(desk.get("/operator/installations/"))
    card = _card(body, item)
    for shown in ("Canal House", "Rita Resident", "Eli Sparks", "Installation day"):
        assert shown in card, shown
    day = site_today(world.prop) + timedelta(days=10)
    response = desk.post(
        f"/operator/installations/{item.pk}/schedule/", {"day": day.isoformat()}, follow=True
    )
    assert f"The installation at parking space P8 is scheduled for {day.isoformat()}." in text(
        response
    )
    assert _status(item) == S.SCHEDULED
    response = desk.post(
        f"/operator/installations/{item.pk}/installed/", {"station_serial": "evb 0042"}, follow=True
    )
    body = text(response)
    assert "Station EVB0042 is installed at parking space P8." in body
    assert "No installation is waiting for the platform." in body
    assert _status(item) == S.INSTALLED
    assert ParkingSpace.objects.get(pk=space.pk).station_serial == "EVB0042"

    # Every step with its date, for the resident, the owner and the operator.
    card = _card(text(resident.get("/portal/")), item)
    for step in ("Requested", "Approved", "Scheduled", f"for {day.isoformat()}", "Installed"):
        assert step in card, step
    assert "station EVB0042" in card
    assert "—" not in card  # each step reached has its date
    for client in (resident, alice, desk):
        response = client.get(f"/installations/{item.pk}/")
        assert response.status_code == 200
        body = text(response)
        assert "Charging station at parking space P8" in body
        assert "EVB0042" in body and "Eli Sparks" in body


def test_the_notifications_link_to_the_installations_page(world, alice, rita, space):
    item = _ask(world, rita)
    note = Notification.objects.get(user=world.alice, kind="installation")
    assert note.url == f"/installations/{item.pk}/"
    response = alice.get(note.url)
    assert response.status_code == 200
    assert f'href="/properties/{world.prop.pk}/residents/#installation-{item.pk}"' in text(response)


def test_a_declined_request_needs_a_reason_which_the_resident_reads(world, alice, rita, space):
    item = _ask(world, rita)
    response = alice.post(_act(world, item, "decline"), {"reason": " "})
    assert response.status_code == 400
    card = _card(text(response), item)
    assert '<details class="refuse" open>' in card
    assert "This field is required." in card
    assert _status(item) == S.REQUESTED
    response = alice.post(_act(world, item, "decline"), {"reason": "The garage wiring is too old"})
    assert response.status_code == 302
    assert _status(item) == S.DECLINED
    card = _card(text(world.client(rita).get("/portal/")), item)
    assert "Declined" in card and "The garage wiring is too old" in card
    assert "/cancel/" not in card
    # A second request for the same space may be asked now.
    assert _ask(world, rita).status == S.REQUESTED


def test_the_platform_organizes_and_the_owner_schedules_it_and_cancels(world, alice, rita, space):
    item = _ask(world, rita)
    services.decide(world.alice, item.pk, approve=True)
    response = alice.post(_act(world, item, "organize"), follow=True)
    assert "The platform organizes the installation at parking space P8." in text(response)
    assert _status(item) == S.ORGANIZING

    yesterday = site_today(world.prop) - timedelta(days=1)
    response = alice.post(_act(world, item, "schedule"), {"day": yesterday.isoformat()})
    assert response.status_code == 400
    assert "The installation day cannot be in the past." in _card(text(response), item)
    response = alice.post(_act(world, item, "schedule"), {"day": "someday"})
    assert response.status_code == 400
    assert "Enter a valid date." in _card(text(response), item)
    assert _status(item) == S.ORGANIZING
    day = site_today(world.prop) + timedelta(days=3)
    assert alice.post(_act(world, item, "schedule"), {"day": day.isoformat()}).status_code == 302
    assert _status(item) == S.SCHEDULED

    response = alice.post(_act(world, item, "cancel"), follow=True)
    assert "The installation at parking space P8 is cancelled." in text(response)
    assert _status(item) == S.CANCELLED
    response = alice.post(_act(world, item, "cancel"))
    assert response.status_code == 409
    assert "it cannot be cancelled now." in text(response)


def test_the_owner_records_the_station_and_a_taken_serial_is_refused(world, alice, rita, space):
    ParkingSpace.objects.create(property=world.prop, number="P9", station_serial="EVB0001")
    item = _ask(world, rita)
    services.decide(world.alice, item.pk, approve=True)
    services.hand_over(world.alice, item.pk)
    response = alice.post(_act(world, item, "installed"), {"station_serial": "evb0001"})
    assert response.status_code == 409
    card = _card(text(response), item)
    assert "Station EVB0001 is already at another parking space of this site." in card
    response = alice.post(_act(world, item, "installed"), {"station_serial": ""})
    assert response.status_code == 400
    assert _status(item) == S.ORGANIZING
    response = alice.post(_act(world, item, "installed"), {"station_serial": "EVB-0099"})
    assert response.status_code == 302
    assert _status(item) == S.INSTALLED


def test_the_electricians_contact_is_required(world, alice, rita, space):
    item = _ask(world, rita)
    services.decide(world.alice, item.pk, approve=True)
    response = alice.post(_act(world, item, "electrician"), {"name": "Eli Sparks"})
    assert response.status_code == 400
    card = _card(text(response), item)
    assert "Give the electrician's email address or phone number" in card
    assert "<details open>" in card
    response = alice.post(_act(world, item, "electrician"), {"name": "", "phone": "+41 44 123"})
    assert response.status_code == 400
    assert _status(item) == S.APPROVED


def test_the_resident_cancels_before_the_work_is_handed_on_and_not_after(world, alice, rita, space):
    resident = world.client(rita)
    item = _ask(world, rita)
    response = resident.post(f"/portal/installations/{item.pk}/cancel/", follow=True)
    assert "The installation at parking space P8 is cancelled." in text(response)
    assert _status(item) == S.CANCELLED
    response = resident.post(f"/portal/installations/{item.pk}/cancel/")  # twice: said so
    assert response.status_code == 409
    assert "it cannot be cancelled now." in text(response)

    again = _ask(world, rita)
    services.decide(world.alice, again.pk, approve=True)
    services.hand_over(world.alice, again.pk)
    assert "/cancel/" not in _card(text(resident.get("/portal/")), again)
    response = resident.post(f"/portal/installations/{again.pk}/cancel/")
    assert response.status_code == 403
    assert "Once handed to the platform, only the owner or the operator can cancel it." in text(
        response
    )
    assert _status(again) == S.ORGANIZING


def test_bad_input_in_the_portal_is_said_with_a_4xx(world, rita, space):
    other = add_unit(world.alice, world.prop.pk, "3C")
    add_parking_space(world.alice, world.prop.pk, "P9", unit_id=other.pk)
    resident = world.client(rita)
    ask = {"property": world.prop.pk, "parking_space": "P8", "wished_power_kw": "11"}
    for data, status, said in (
        ({"wished_power_kw": "0"}, 400, "The wished power is between 1 and 350 kW"),
        ({"wished_power_kw": "many"}, 400, "Enter a number."),
        ({"parking_space": "P404"}, 400, "Parking space P404 is not a space of this site."),
        ({"parking_space": ""}, 400, "This field is required."),
        ({"parking_space": "P9"}, 403, "Parking space P9 belongs to another unit."),
    ):
        response = resident.post("/portal/installations/ask/", {**ask, **data})
        assert response.status_code == status, data
        form = re.search(r'id="station-ask-\d+".*?</form>', text(response), re.S)
        assert form and said in form.group(0), data
    assert not Installation.objects.exists()
    assert resident.post("/portal/installations/ask/", ask).status_code == 302
    response = resident.post("/portal/installations/ask/", ask)
    assert response.status_code == 409
    assert "An installation at parking space P8 is already under way." in text(response)


# --- who sees what ---------------------------------------------------------------------------


def test_the_operators_list_and_its_actions_are_404_for_everyone_else(
    world, alice, rita, operator, space
):
    item = _ask(world, rita)
    services.decide(world.alice, item.pk, approve=True)
    services.hand_over(world.alice, item.pk)
    day = (site_today(world.prop) + timedelta(days=2)).isoformat()
    for user in (world.alice, world.bob, world.charlie, rita):
        client = world.client(user)
        assert client.get("/operator/installations/").status_code == 404, user
        for verb, data in (("schedule", {"day": day}), ("installed", {"station_serial": "X1"})):
            response = client.post(f"/operator/installations/{item.pk}/{verb}/", data)
            assert response.status_code == 404, (user, verb)
            assert "Rita" not in text(response)
    assert _status(item) == S.ORGANIZING
    body = text(world.client(operator).get("/operator/installations/"))
    assert "Rita Resident" in _card(body, item)


def test_the_navigation_and_the_badge_queue_link_the_operators_list(world, rita, operator):
    def nav(user):
        return text(world.client(user).get("/notifications/")).split("</nav>")[0]

    assert 'href="/operator/installations/"' in nav(operator)
    for user in (world.alice, world.bob, world.charlie, rita):
        assert 'href="/operator/installations/"' not in nav(user)
    body = text(world.client(operator).get("/operator/badges/"))
    assert 'href="/operator/installations/"' in body.split("</nav>")[1]


def test_a_member_sees_no_installations_and_is_refused_every_change(world, bob, rita, space):
    item = _ask(world, rita)
    body = text(bob.get(_site(world, "residents/")))
    assert "Rita" not in body and "Charging-station installations" not in body
    assert bob.get(f"/installations/{item.pk}/").status_code == 404
    for verb, data in (
        ("approve", {}),
        ("decline", {"reason": "No"}),
        ("organize", {}),
        ("electrician", {"name": "Eli", "phone": "123"}),
        ("schedule", {"day": site_today(world.prop).isoformat()}),
        ("installed", {"station_serial": "X1"}),
        ("cancel", {}),
    ):
        response = bob.post(_act(world, item, verb), data)
        assert response.status_code == 404, verb  # not theirs to see
        assert "Rita" not in text(response)
    response = bob.post(_act(world, item, "decline"), {"reason": ""})
    assert response.status_code == 403
    assert "Only lock owners and building managers" in text(response)
    assert _status(item) == S.REQUESTED


def test_an_outsider_gets_404_on_every_page_and_post(world, charlie, rita, space):
    item = _ask(world, rita)
    assert charlie.get(f"/installations/{item.pk}/").status_code == 404
    own = f"/properties/{world.charlie_prop.pk}/installations/{item.pk}/"
    for verb, data in (
        ("approve", {}),
        ("decline", {"reason": "No"}),
        ("decline", {"reason": ""}),
        ("organize", {}),
        ("electrician", {"name": "Eli", "phone": "123"}),
        ("schedule", {"day": site_today(world.prop).isoformat()}),
        ("installed", {"station_serial": "X1"}),
        ("cancel", {}),
    ):
        for url in (_act(world, item, verb), own + f"{verb}/"):
            response = charlie.post(url, data)
            if url.startswith(own) and not data.get("reason", "x"):
                # A form refused before any service: his own site's page, nothing of Alice's.
                assert response.status_code == 400, url
            else:
                assert response.status_code == 404, url
            body = text(response)
            assert "Rita" not in body and "Canal House" not in body, url
    assert charlie.post(f"/portal/installations/{item.pk}/cancel/").status_code == 404
    response = charlie.post(
        "/portal/installations/ask/",
        {"property": world.prop.pk, "parking_space": "P8", "wished_power_kw": "11"},
    )
    assert response.status_code == 404
    assert "Canal House" not in text(response)
    assert _status(item) == S.REQUESTED
    assert Installation.objects.count() == 1


def test_the_residents_portal_lists_only_their_own(world, rita, space):
    _ask(world, rita)
    other = create_user("otto@example.com", PASSWORD, name="Otto Other")
    unit = add_unit(world.alice, world.prop.pk, "4D")
    add_resident(
        world.alice,
        world.prop.pk,
        ResidentSpec("Otto Other", other.email, site_today(world.prop), unit_id=unit.pk),
    )
    body = text(world.client(other).get("/portal/"))
    assert "Charging station at my parking space" in body
    assert "P8" not in body and "Rita" not in body
    assert (
        world.client(other).get(f"/installations/{Installation.objects.get().pk}/").status_code
        == 404
    )
