"""Badges in the web UI: the site's badges for the owner (register an
existing badge, report lost, switch on again), the resident portal (ask,
follow, receive, report lost) and the platform operator's queue."""

from __future__ import annotations

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from webhelp import text as page_text
from webhelp import warm

from doorkeep.accounts.models import Membership, Organization, Role
from doorkeep.accounts.services import create_user
from doorkeep.badges.models import Badge, BadgeRequest, BadgeSource, BadgeStatus, RequestStatus
from doorkeep.badges.services import (
    RequestSpec,
    approve_request,
    assign_badge,
    deliver_badge,
    request_badge,
)
from doorkeep.keys.models import Person
from doorkeep.properties.models import BillingMode, Property
from doorkeep.residents.models import ParkingSpace
from doorkeep.residents.services import ResidentSpec, add_resident, add_unit, site_today
from doorkeep.web.context import Roles

PASSWORD = "correct horse battery staple"
_CSRF = re.compile(r'<input type="hidden" name="csrfmiddlewaretoken" value="[^"]*">')


def text(response):
    """The page as text, without its CSRF tokens (random letters and digits
    that may spell anything, "2B" included)."""
    return _CSRF.sub("", page_text(response))


CLASSIC = {"uid": "B3:2F:1A:7C", "atqa": "0004", "sak": "08"}
DESFIRE = {"uid": "04:5A:3B:2C:1D:6E:80", "atqa": "0344", "sak": "20"}


@pytest.fixture
def rita(world):
    """A resident of Alice's site, in unit 2B, with an account."""
    user = create_user("rita@example.com", PASSWORD, name="Rita Resident")
    unit = add_unit(world.alice, world.prop.pk, "2B")
    add_resident(
        world.alice,
        world.prop.pk,
        ResidentSpec(
            name="Rita Resident",
            email=user.email,
            move_in=site_today(world.prop),
            unit_id=unit.pk,
        ),
    )
    return user


@pytest.fixture
def operator(world):
    user = create_user("olga@example.com", PASSWORD, name="Olga Operator")
    platform = Organization.objects.create(name="Doorkeep platform", is_platform=True)
    Membership.objects.create(user=user, organization=platform, role=Role.PLATFORM_OPERATOR)
    return user


def _site(world, tail=""):
    return f"/properties/{world.prop.pk}/{tail}"


def _person_id(rita):
    return Person.objects.get(user=rita).pk


def _active_badge(world, rita, operator, uid="04A1B2C3"):
    request = request_badge(rita, RequestSpec(property_id=world.prop.pk))
    assign_badge(operator, request.pk, uid)
    deliver_badge(operator, request.pk, "handed_over")
    return Badge.objects.get(uid=uid)


def _set_price(world, minor, currency="CHF"):
    Property.objects.filter(pk=world.prop.pk).update(
        extra_badge_price_minor=minor, currency=currency
    )


def _row(body, element_id):
    """The HTML of the element with this id, up to the next element of its kind."""
    match = re.search(rf'id="{element_id}".*?(?=<(?:li|tr) [^>]*id="|</ul>|</tbody>)', body, re.S)
    assert match, element_id
    return match.group(0)


# --- the owner's page: the site's badges ------------------------------------------------


def test_the_owner_registers_an_existing_classic_badge(world, alice, rita):
    response = alice.post(
        _site(world, "badges/register/"), {"person": _person_id(rita), **CLASSIC}, follow=True
    )
    body = text(response)
    assert "Badge B32F1A7C of Rita Resident is registered and active." in body
    row = _row(body, f"badge-{Badge.objects.get().pk}")
    assert "Active" in row
    assert "Existing badge, registered by the owner" in row
    assert "MIFARE Classic 1K" in row
    badge = Badge.objects.get()
    assert (badge.source, badge.status, badge.card_type) == (
        BadgeSource.THIRD_PARTY,
        BadgeStatus.ACTIVE,
        "mifare_classic_1k",
    )


def test_a_desfire_card_is_refused_with_the_reason_and_nothing_is_registered(world, alice, rita):
    response = alice.post(_site(world, "badges/register/"), {"person": _person_id(rita), **DESFIRE})
    assert response.status_code == 422
    body = text(response)
    assert "This is a MIFARE DESFire card (ISO 14443-4, T=CL)" in body
    assert "the stations read only MIFARE Classic cards" in body
    assert 'value="04:5A:3B:2C:1D:6E:80"' in body  # the form is shown again, filled in
    assert not Badge.objects.exists()


def test_a_malformed_uid_and_a_bad_reading_are_said_on_the_form(world, alice, rita):
    url = _site(world, "badges/register/")
    response = alice.post(url, {"person": _person_id(rita), **CLASSIC, "uid": "not-hex!"})
    assert response.status_code == 422
    uid_field = text(response).split('for="id_register_uid"')[1].split("</div>")[0]
    assert "A tag UID is written in hexadecimal digits (0-9, A-F)." in uid_field
    response = alice.post(url, {"person": _person_id(rita), **CLASSIC, "atqa": "0400"})
    assert response.status_code == 422
    assert "written in the other byte order it would be 0004" in text(response)
    response = alice.post(url, {"person": 999999, **CLASSIC})
    assert response.status_code == 404
    assert "No resident of this site has that id." in text(response)
    assert not Badge.objects.exists()


def test_a_billing_and_payments_site_refuses_existing_badges(world, alice, rita):
    Property.objects.filter(pk=world.prop.pk).update(billing_mode=BillingMode.BILLING_AND_PAYMENTS)
    response = alice.post(_site(world, "badges/register/"), {"person": _person_id(rita), **CLASSIC})
    assert response.status_code == 409
    assert "only badges issued by the platform can be used there" in text(response)
    assert not Badge.objects.exists()


def test_the_owner_reports_a_badge_lost_with_a_replacement_and_switches_it_on_again(
    world, alice, rita, operator
):
    badge = _active_badge(world, rita, operator)
    _set_price(world, 2500)
    url = _site(world, f"badges/{badge.pk}/lost/")
    response = alice.post(url, {"replacement": "on"}, follow=True)
    body = text(response)
    assert "Badge 04A1B2C3 is reported lost and switched off everywhere." in body
    assert "A replacement is asked for." in body
    assert "Reported lost" in _row(body, f"badge-{badge.pk}")
    replacement = BadgeRequest.objects.get(replaces=badge)
    assert (replacement.extra, replacement.price_minor) == (True, 0)  # not billed to Rita

    response = alice.post(url, {}, follow=True)  # again: nothing changes
    assert "Badge 04A1B2C3 was already reported lost; it stays switched off." in text(response)
    assert BadgeRequest.objects.filter(replaces=badge).count() == 1

    response = alice.post(_site(world, f"badges/{badge.pk}/reactivate/"), follow=True)
    assert "Badge 04A1B2C3 of Rita Resident works again." in text(response)
    badge.refresh_from_db()
    assert badge.status == BadgeStatus.ACTIVE


def test_a_building_manager_may_report_lost_but_sees_why_not_to_switch_it_on(world, rita, operator):
    manager = create_user("mona@example.com", PASSWORD, name="Mona Manager")
    Membership.objects.create(user=manager, organization=world.org, role=Role.BUILDING_MANAGER)
    client = world.client(manager)
    badge = _active_badge(world, rita, operator)
    assert client.post(_site(world, f"badges/{badge.pk}/lost/"), {}).status_code == 302
    body = text(client.get(_site(world, "residents/")))
    row = _row(body, f"badge-{badge.pk}")
    assert "Only the owner or the platform operator can switch a found badge on again." in row
    assert "Switch on again" not in row
    response = client.post(_site(world, f"badges/{badge.pk}/reactivate/"))
    assert response.status_code == 403
    assert "Only the owner or the platform operator" in text(response)
    badge.refresh_from_db()
    assert badge.status == BadgeStatus.LOST


# --- the resident portal -----------------------------------------------------------------


def test_the_portal_shows_the_residents_site_and_unit_and_their_consumption(world, rita):
    client = world.client(rita)
    response = client.get("/portal/")
    assert response.status_code == 200
    body = text(response)
    site = _row(body.replace("<section", "<li "), f"site-{world.prop.pk}")
    assert "Canal House" in site and "2B" in site
    assert "Your first badge is included." in body
    assert "Consumption and invoices" in body
    assert "/portal/consumption/" in body and "/portal/invoices/" in body
    assert "You have no badge yet." in body


def test_the_resident_asks_the_operator_delivers_the_badge_is_active_then_lost(
    world, rita, operator
):
    resident, desk = world.client(rita), world.client(operator)
    response = resident.post("/portal/badges/ask/", {"property": world.prop.pk}, follow=True)
    body = text(response)
    assert "Your badge request for Canal House is sent." in body
    request = BadgeRequest.objects.get()
    card = _row(body, f"request-{request.pk}")
    assert "Requested" in card
    assert "Your badge request is on its way" in body  # no second form for the site

    # The operator's queue: the person, site and unit; approve, then a bad UID, then the badge.
    body = text(desk.get("/operator/badges/"))
    row = _row(body, f"queue-{request.pk}")
    for shown in ("Rita Resident", "rita@example.com", "Canal House · 2B", "First badge"):
        assert shown in row, shown
    assert "autofocus" in row
    assert desk.post(f"/operator/badges/{request.pk}/approve/").status_code == 302
    response = desk.post(f"/operator/badges/{request.pk}/assign/", {"uid": "04:ZZ:nope"})
    assert response.status_code == 422
    assert "A tag UID is written in hexadecimal digits" in _row(
        text(response), f"queue-{request.pk}"
    )
    assert Badge.objects.count() == 0
    response = desk.post(
        f"/operator/badges/{request.pk}/assign/", {"uid": "04:a1:b2:c3"}, follow=True
    )
    assert "Badge 04A1B2C3 is assigned to Rita Resident." in text(response)
    body = text(resident.get("/portal/"))
    assert "Badge assigned" in _row(body, f"request-{request.pk}")
    response = desk.post(
        f"/operator/badges/{request.pk}/deliver/", {"delivery": "handed_over"}, follow=True
    )
    assert "The badge of Rita Resident is handed over and active." in text(response)
    assert "No open badge requests." in text(response)

    body = text(resident.get("/portal/"))
    badge = Badge.objects.get()
    assert "Active" in _row(body, f"my-badge-{badge.pk}")
    card = _row(body, f"request-{request.pk}")
    for step in ("Requested", "Approved", "Badge assigned", "Handed over", "Active"):
        assert step in card, step
    assert "—" not in card  # every step has its date

    response = resident.post(f"/portal/badges/{badge.pk}/lost/", {}, follow=True)
    body = text(response)
    assert "Badge 04A1B2C3 is reported lost and switched off everywhere." in body
    assert "Reported lost" in _row(body, f"my-badge-{badge.pk}")
    badge.refresh_from_db()
    assert badge.status == BadgeStatus.LOST


def test_an_extra_badge_shows_its_price_and_needs_it_confirmed(world, rita, operator):
    _active_badge(world, rita, operator)
    _set_price(world, 2500)
    client = world.client(rita)
    body = text(client.get("/portal/"))
    assert "an extra badge costs CHF 25.00, billed to you." in body
    assert "I agree to pay CHF 25.00 for this extra badge, billed to me." in body

    response = client.post("/portal/badges/ask/", {"property": world.prop.pk, "price_minor": 2500})
    assert response.status_code == 409
    assert "An extra badge costs CHF 25.00 here, billed to you; confirm the price" in text(response)
    assert not BadgeRequest.objects.filter(extra=True).exists()

    # A price confirmed as it was before the owner changed it: asked again, unticked.
    response = client.post(
        "/portal/badges/ask/",
        {"property": world.prop.pk, "price_minor": 2000, "confirm_price": "on"},
    )
    assert response.status_code == 409
    form = _row(text(response).replace("<form", "<li "), f"ask-{world.prop.pk}")
    assert 'name="price_minor" value="2500"' in form
    assert re.search(r'<input type="checkbox" name="confirm_price"[^>]*>', form)
    assert "checked" not in re.search(r'<input type="checkbox" name="confirm_price"[^>]*>', form)[0]
    assert not BadgeRequest.objects.filter(extra=True).exists()

    response = client.post(
        "/portal/badges/ask/",
        {"property": world.prop.pk, "price_minor": 2500, "confirm_price": "on"},
    )
    assert response.status_code == 302
    request = BadgeRequest.objects.get(extra=True)
    assert (request.price_minor, request.currency) == (2500, "CHF")
    body = text(client.get("/portal/"))
    assert "Extra badge, CHF 25.00" in _row(body, f"request-{request.pk}")


def test_a_replacement_asked_with_a_lost_report_shows_and_needs_its_price(world, rita, operator):
    badge = _active_badge(world, rita, operator)
    _set_price(world, 1200, "EUR")
    client = world.client(rita)
    body = text(client.get("/portal/"))
    assert "A replacement costs EUR 12.00, billed to you." in _row(body, f"my-badge-{badge.pk}")

    url = f"/portal/badges/{badge.pk}/lost/"
    response = client.post(
        url,
        {
            "replacement": "on",
            "property": world.prop.pk,
            "price_minor": 1200,
            "confirm_price": "on",
        },
        follow=True,
    )
    assert "A replacement is asked for." in text(response)
    replacement = BadgeRequest.objects.get(replaces=badge)
    assert (replacement.price_minor, replacement.currency) == (1200, "EUR")


def test_a_lost_report_without_the_price_confirmed_switches_the_badge_off_all_the_same(
    world, rita, operator
):
    badge = _active_badge(world, rita, operator)
    _set_price(world, 1200, "EUR")
    client = world.client(rita)

    response = client.post(
        f"/portal/badges/{badge.pk}/lost/",
        {"replacement": "on", "property": world.prop.pk, "price_minor": 1200},
        follow=True,
    )

    assert "No replacement was asked for" in text(response)
    assert "EUR 12.00" in text(response)
    badge.refresh_from_db()
    assert badge.status == BadgeStatus.LOST
    assert not BadgeRequest.objects.filter(replaces=badge).exists()


def test_a_badge_sent_by_post_is_active_when_the_resident_says_it_arrived(world, rita, operator):
    request = request_badge(rita, RequestSpec(property_id=world.prop.pk))
    approve_request(operator, request.pk)
    assign_badge(operator, request.pk, "04A1B2C3")
    desk = world.client(operator)
    response = desk.post(f"/operator/badges/{request.pk}/deliver/", {"delivery": "sent"})
    assert response.status_code == 302
    client = world.client(rita)
    body = text(client.get("/portal/"))
    card = _row(body, f"request-{request.pk}")
    assert "Sent by post" in card and "I received my badge" in card
    response = client.post(f"/portal/requests/{request.pk}/received/", follow=True)
    assert "Your badge 04A1B2C3 is active." in text(response)
    assert Badge.objects.get().status == BadgeStatus.ACTIVE
    response = client.post(f"/portal/requests/{request.pk}/received/")
    assert response.status_code == 409  # once


def test_a_refused_request_shows_the_reason_and_a_new_one_may_be_asked(world, rita, operator):
    request = request_badge(rita, RequestSpec(property_id=world.prop.pk))
    desk = world.client(operator)
    response = desk.post(f"/operator/badges/{request.pk}/refuse/", {"reason": " "})
    assert response.status_code == 400
    response = desk.post(
        f"/operator/badges/{request.pk}/refuse/", {"reason": "Not a resident per the owner"}
    )
    assert response.status_code == 302
    body = text(world.client(rita).get("/portal/"))
    card = _row(body, f"request-{request.pk}")
    assert "Refused" in card and "Reason: Not a resident per the owner" in card
    assert 'action="/portal/badges/ask/"' in body


def test_a_request_for_a_private_station_names_the_space_and_a_wrong_one_is_said(
    world, rita, operator
):
    ParkingSpace.objects.create(property=world.prop, number="P7", station_serial="EVC-1")
    client = world.client(rita)
    response = client.post(
        "/portal/badges/ask/", {"property": world.prop.pk, "parking_space": "P99"}
    )
    assert response.status_code == 400
    assert "Parking space P99 is not a space of this site." in text(response)
    response = client.post(
        "/portal/badges/ask/", {"property": world.prop.pk, "station_serial": "evc-1"}
    )
    assert response.status_code == 302
    body = text(world.client(operator).get("/operator/badges/"))
    row = _row(body, f"queue-{BadgeRequest.objects.get().pk}")
    assert "Parking space P7" in row and "EVC-1" in row


def test_an_operator_error_is_shown_on_the_row_with_a_4xx_status(world, rita, operator):
    first = request_badge(rita, RequestSpec(property_id=world.prop.pk))
    desk = world.client(operator)
    assert desk.post(f"/operator/badges/{first.pk}/assign/", {"uid": "04A1B2C3"}).status_code == 302
    response = desk.post(f"/operator/badges/{first.pk}/approve/")
    assert response.status_code == 409
    assert "it cannot be approved now" in text(response)
    response = desk.post(f"/operator/badges/{first.pk}/deliver/", {"delivery": "by pigeon"})
    assert response.status_code == 400


# --- who sees what -----------------------------------------------------------------------


def test_the_operator_page_and_its_actions_are_404_for_everyone_else(world, rita, operator):
    request = request_badge(rita, RequestSpec(property_id=world.prop.pk))
    for user in (world.alice, world.bob, world.charlie, rita):
        client = world.client(user)
        assert client.get("/operator/badges/").status_code == 404, user
        for action, data in (
            ("approve", {}),
            ("refuse", {"reason": "no"}),
            ("assign", {"uid": "04A1B2C3"}),
            ("assign", {"uid": ""}),
            ("deliver", {"delivery": "handed_over"}),
            ("received", {}),
        ):
            response = client.post(f"/operator/badges/{request.pk}/{action}/", data)
            assert response.status_code == 404, (user, action)
            assert "Rita" not in text(response)
    request.refresh_from_db()
    assert request.status == RequestStatus.REQUESTED
    assert world.client(operator).get("/operator/badges/").status_code == 200


def test_an_outsider_gets_404_on_the_residents_badges_and_requests(world, rita, operator, charlie):
    badge = _active_badge(world, rita, operator)
    request = BadgeRequest.objects.get()
    assert charlie.post(f"/portal/badges/{badge.pk}/lost/", {}).status_code == 404
    assert charlie.post(f"/portal/requests/{request.pk}/received/").status_code == 404
    response = charlie.post("/portal/badges/ask/", {"property": world.prop.pk})
    assert response.status_code == 404
    assert "Canal House" not in text(response)
    body = text(charlie.get("/portal/"))
    assert "You are not listed as a resident anywhere." in body
    for secret in ("Canal House", "Rita", "04A1B2C3"):
        assert secret not in body
    badge.refresh_from_db()
    assert badge.status == BadgeStatus.ACTIVE
    assert not BadgeRequest.objects.filter(person__user=world.charlie).exists()


def test_the_owner_sees_no_portal_of_the_site_unless_they_live_there(world, alice):
    response = alice.post("/portal/badges/ask/", {"property": world.prop.pk})
    assert response.status_code == 404


def test_a_member_may_not_report_a_residents_badge_lost(world, bob, rita, operator):
    badge = _active_badge(world, rita, operator)
    response = bob.post(f"/portal/badges/{badge.pk}/lost/", {})
    assert response.status_code == 403
    assert "Only its holder, the owner's managers and the operator" in text(response)
    badge.refresh_from_db()
    assert badge.status == BadgeStatus.ACTIVE


def test_the_navigation_links_the_portal_and_the_queue_in_one_query(
    world, rita, operator, django_assert_num_queries
):
    def nav(user):
        return text(world.client(user).get("/notifications/")).split("</nav>")[0]

    assert 'href="/portal/"' in nav(rita)
    assert 'href="/operator/badges/"' not in nav(rita)
    assert 'href="/operator/badges/"' in nav(operator)
    assert 'href="/portal/"' not in nav(operator)
    for user in (world.alice, world.bob, world.charlie):
        assert 'href="/portal/"' not in nav(user) and 'href="/operator/badges/"' not in nav(user)

    roles = Roles(rita)
    with django_assert_num_queries(1):
        assert (roles.resident, roles.guest, roles.portal, roles.operator) == (
            False,
            False,
            True,
            False,
        )


def _queries(client, url):
    warm(client)
    with CaptureQueriesContext(connection) as captured:
        assert client.get(url).status_code == 200
    return len(captured.captured_queries)


def test_the_queue_and_the_portal_read_the_same_number_of_queries_for_more_rows(
    world, rita, operator
):
    desk, portal = world.client(operator), world.client(rita)
    first = request_badge(rita, RequestSpec(property_id=world.prop.pk))
    small = _queries(desk, "/operator/badges/"), _queries(portal, "/portal/")
    unit = add_unit(world.alice, world.prop.pk, "3C")
    for n in range(4):
        user = create_user(f"r{n}@example.com", PASSWORD, name=f"Resident {n}")
        spec = ResidentSpec(user.name, user.email, site_today(world.prop), unit_id=unit.pk)
        add_resident(world.alice, world.prop.pk, spec)
        request = request_badge(user, RequestSpec(property_id=world.prop.pk))
        if n % 2:
            assign_badge(operator, request.pk, f"04A1B2{n:02X}")
    assign_badge(operator, first.pk, "04C1D2E3")
    deliver_badge(operator, first.pk, "handed_over")
    request_badge(rita, RequestSpec(property_id=world.prop.pk))  # Rita: a badge, two requests
    assert (_queries(desk, "/operator/badges/"), _queries(portal, "/portal/")) == small


def test_ids_beyond_64_bits_in_the_forms_are_a_400_not_a_crash(world, alice, rita):
    huge = str(2**64)

    register = alice.post(_site(world, "badges/register/"), {"person": huge, **CLASSIC})
    resident = alice.post(
        _site(world, "residents/add/"),
        {"name": "Eve", "email": "eve@example.com", "unit": huge, "move_in": "2026-01-01"},
    )

    assert register.status_code == 400
    assert resident.status_code == 400
    assert not Badge.objects.exists()
