"""A site's residents page (owner and building manager): units, parking
spaces, residents with move-in and move-out, the CSV import, the billing mode
changed in two steps and the price of an extra badge. A member sees the site
but no one's personal data and is refused changes with a message; an
outsider gets 404 everywhere."""

from __future__ import annotations

import re
from datetime import timedelta

from django.core.files.uploadedfile import SimpleUploadedFile
from webhelp import text as page_text

from doorkeep.accounts.models import Membership, Role
from doorkeep.accounts.services import create_user
from doorkeep.badges.models import Badge, BadgeStatus
from doorkeep.badges.services import register_existing_badge
from doorkeep.events.models import Event, EventKind
from doorkeep.properties.models import BillingMode, Property
from doorkeep.residents.models import ParkingSpace, Residency, Unit
from doorkeep.residents.services import ResidentSpec, add_resident, add_unit, site_today

PASSWORD = "correct horse battery staple"
_CSRF = re.compile(r'<input type="hidden" name="csrfmiddlewaretoken" value="[^"]*">')


def text(response):
    """The page as text, without its CSRF tokens (random letters and digits
    that may spell anything, "2B" included)."""
    return _CSRF.sub("", page_text(response))


def _url(world, tail=""):
    return f"/properties/{world.prop.pk}/{tail}"


def _resident(world, name="Rita Resident", email="rita@example.com", unit="2B"):
    unit_obj = Unit.objects.filter(property=world.prop, label=unit).first() or add_unit(
        world.alice, world.prop.pk, unit
    )
    return add_resident(
        world.alice,
        world.prop.pk,
        ResidentSpec(name=name, email=email, move_in=site_today(world.prop), unit_id=unit_obj.pk),
    )


def test_the_property_page_links_the_residents_page(world, alice, bob):
    for client in (alice, bob):
        body = client.get(_url(world)).content.decode()
        assert f'href="/properties/{world.prop.pk}/residents/"' in body


def test_the_residents_page_renders_for_the_owner_with_every_form(world, alice):
    _resident(world)
    response = alice.get(_url(world, "residents/"))
    assert response.status_code == 200
    body = text(response)
    for shown in (
        "Rita Resident",
        "rita@example.com",
        "2B",
        "Add unit",
        "Add parking space",
        "Add resident",
        "Import",
        "Add units that do not exist yet",
        "Billing and badges",
        "Individual statements",
        "Change billing mode",
        "Save price",
        "Register an existing badge",
        "EUR 0.00",
    ):
        assert shown in body, shown


def test_a_building_manager_manages_residents_too(world):
    manager = create_user("mona@example.com", PASSWORD, name="Mona Manager")
    Membership.objects.create(user=manager, organization=world.org, role=Role.BUILDING_MANAGER)
    client = world.client(manager)
    assert client.get(_url(world, "residents/")).status_code == 200
    response = client.post(_url(world, "units/"), {"label": "3C"})
    assert response.status_code == 302
    assert Unit.objects.filter(property=world.prop, label="3C").exists()


def test_a_member_sees_the_site_but_not_its_people_and_why_not_to_change_it(world, bob):
    _resident(world)
    response = bob.get(_url(world, "residents/"))
    assert response.status_code == 200
    body = text(response)
    assert "Only lock owners and building managers can change units, residents and billing." in body
    assert "2B" in body  # the units
    assert "Individual statements" in body  # the billing mode
    for hidden in ("rita@example.com", "Rita Resident", "Add unit", "Import", "Save price"):
        assert hidden not in body, hidden


def test_the_owner_adds_units_parking_spaces_and_residents(world, alice):
    response = alice.post(_url(world, "units/"), {"label": " 2B "})
    assert response.status_code == 302
    assert response["Location"] == f"/properties/{world.prop.pk}/residents/#units"
    unit = Unit.objects.get(property=world.prop)
    assert unit.label == "2B"

    response = alice.post(
        _url(world, "parking-spaces/"),
        {"number": "P7", "unit": unit.pk, "station_serial": "evc-0042"},
    )
    assert response.status_code == 302
    space = ParkingSpace.objects.get(property=world.prop)
    assert (space.number, space.unit, space.station_serial) == ("P7", unit, "EVC-0042")
    assert alice.post(_url(world, "parking-spaces/"), {"number": "P8", "unit": ""}).status_code == (
        302
    )

    today = site_today(world.prop)
    response = alice.post(
        _url(world, "residents/add/"),
        {
            "name": "Anna Meier",
            "email": "anna@example.com",
            "unit": unit.pk,
            "move_in": today.isoformat(),
        },
        follow=True,
    )
    assert response.status_code == 200
    body = text(response)
    assert f"Anna Meier lives in 2B from {today.isoformat()}." in body
    assert "anna@example.com" in body
    assert "EVC-0042" in body and "P8" in body and "Shared" in body
    assert Residency.objects.filter(unit=unit, person__email="anna@example.com").exists()


def test_a_resident_who_moves_in_later_is_listed_as_such(world, alice):
    unit = add_unit(world.alice, world.prop.pk, "2B")
    later = site_today(world.prop) + timedelta(days=10)
    alice.post(
        _url(world, "residents/add/"),
        {"name": "Lea Later", "email": "lea@example.com", "unit": unit.pk, "move_in": later},
    )
    body = text(alice.get(_url(world, "residents/")))
    assert "Lea Later" in body and "Moves in later" in body


def test_wrong_input_is_shown_on_the_form_with_a_4xx_status(world, alice):
    add_unit(world.alice, world.prop.pk, "2B")
    response = alice.post(_url(world, "units/"), {"label": "2B"})
    assert response.status_code == 409
    assert "This site already has a unit 2B." in text(response)

    unit = Unit.objects.get(property=world.prop)
    today = site_today(world.prop)
    response = alice.post(
        _url(world, "residents/add/"),
        {
            "name": "Anna",
            "email": "anna@example.com",
            "unit": unit.pk,
            "move_in": today.isoformat(),
            "move_out": (today - timedelta(days=1)).isoformat(),
        },
    )
    assert response.status_code == 400
    assert "The move-out date cannot be before the move-in date." in text(response)

    response = alice.post(
        _url(world, "residents/add/"),
        {"name": "Anna", "email": "not-an-email", "unit": unit.pk, "move_in": "tomorrow"},
    )
    assert response.status_code == 400
    assert not Residency.objects.exists()

    # A unit of another site (Charlie's) is not one of this site's.
    other = add_unit(world.charlie, world.charlie_prop.pk, "X1")
    response = alice.post(
        _url(world, "residents/add/"),
        {"name": "Anna", "email": "anna@example.com", "unit": other.pk, "move_in": today},
    )
    assert response.status_code == 404
    assert f"{other.pk} is not a unit of this site." in text(response)
    assert "X1" not in text(response)


def test_the_owner_sets_and_clears_a_move_out_date(world, alice):
    residency = _resident(world)
    day = site_today(world.prop) + timedelta(days=30)
    response = alice.post(
        _url(world, f"residents/{residency.pk}/move-out/"), {"move_out": day}, follow=True
    )
    assert f"Rita Resident moves out of 2B on {day.isoformat()}." in text(response)
    residency.refresh_from_db()
    assert residency.move_out == day

    response = alice.post(_url(world, f"residents/{residency.pk}/move-out/"), {"move_out": ""})
    assert response.status_code == 302
    residency.refresh_from_db()
    assert residency.move_out is None

    before = residency.move_in - timedelta(days=1)
    response = alice.post(_url(world, f"residents/{residency.pk}/move-out/"), {"move_out": before})
    assert response.status_code == 400
    assert "The move-out date cannot be before the move-in date." in text(response)

    response = alice.post(_url(world, f"residents/{residency.pk}/move-out/"), {"move_out": "soon"})
    assert response.status_code == 400
    assert "Enter a valid date." in text(response)


def test_a_csv_import_with_one_bad_line_imports_nothing_and_names_the_line(world, alice):
    add_unit(world.alice, world.prop.pk, "2B")
    lines = (
        "name,email,unit,move_in\n"
        "Anna Meier,anna@example.com,2B,2026-01-31\n"
        "Ben Bauer,ben-at-example.com,2B,2026-01-31\n"
        "Cleo Cohen,cleo@example.com,9Z,2026-02-30\n"
    )
    response = alice.post(_url(world, "residents/import/"), {"csv": lines})
    assert response.status_code == 400
    body = text(response)
    assert "Nothing was imported." in body
    assert "Line 3: ben-at-example.com is not an email address" in body
    assert "Line 4: 9Z is not a unit of this site" in body
    assert "Anna Meier,anna@example.com,2B,2026-01-31" in body  # back in the text area
    assert not Residency.objects.exists()

    # With the unit added on the way, a date that does not exist is still refused.
    response = alice.post(
        _url(world, "residents/import/"),
        {"csv": lines.replace("ben-at-", "ben@"), "add_missing_units": "on"},
    )
    assert response.status_code == 400
    assert "Line 4: the move-in date 2026-02-30 is not a date like 2026-01-31" in text(response)
    assert not Residency.objects.exists()
    assert not Unit.objects.filter(label="9Z").exists()


def test_a_csv_file_is_imported_adding_the_missing_units_when_asked(world, alice):
    content = "Anna Meier;anna@example.com;2B;2026-01-31\nBen Bauer;ben@example.com;3C;2026-02-01\n"
    upload = SimpleUploadedFile("residents.csv", content.encode("utf-8-sig"), "text/csv")
    response = alice.post(_url(world, "residents/import/"), {"file": upload})
    assert response.status_code == 400
    assert "Line 1: 2B is not a unit of this site" in text(response)

    upload = SimpleUploadedFile("residents.csv", content.encode("utf-8-sig"), "text/csv")
    response = alice.post(
        _url(world, "residents/import/"), {"file": upload, "add_missing_units": "on"}, follow=True
    )
    body = text(response)
    assert "2 residents imported. Units added: 2B, 3C." in body
    assert Residency.objects.filter(unit__property=world.prop).count() == 2
    assert Event.objects.filter(kind=EventKind.RESIDENTS_IMPORTED).count() == 1


def test_an_import_needs_exactly_one_source_of_text(world, alice):
    response = alice.post(_url(world, "residents/import/"), {"csv": "  "})
    assert response.status_code == 400
    assert "Paste the lines to import, or choose a CSV file." in text(response)
    upload = SimpleUploadedFile("x.bin", b"\x00\x01\xff\xfe\x00", "application/octet-stream")
    response = alice.post(_url(world, "residents/import/"), {"file": upload})
    assert response.status_code == 400
    assert "This file is not a CSV text file." in text(response)


def _third_party_badge(world):
    residency = _resident(world)
    return register_existing_badge(
        world.alice, world.prop.pk, residency.person_id, uid="B3:2F:1A:7C", atqa="0004", sak="08"
    )


def test_changing_the_billing_mode_shows_the_badges_that_stop_and_asks_to_confirm(world, alice):
    badge = _third_party_badge(world)
    url = _url(world, "billing/mode/")
    response = alice.post(url, {"mode": BillingMode.BILLING_AND_PAYMENTS})
    assert response.status_code == 200
    body = text(response)
    assert "Change the billing mode to “Billing and payments”?" in body
    assert "This badge will stop working on the laundry machines and charging stations" in body
    stopping = body.split('id="badges-stopping"')[1].split("</ul>")[0]
    assert "Rita Resident" in stopping and "B32F1A7C" in stopping
    assert "Nothing is deleted" in body
    assert 'name="confirm" value="1"' in body
    world.prop.refresh_from_db()
    assert world.prop.billing_mode == BillingMode.INDIVIDUAL_STATEMENTS  # not yet

    response = alice.post(
        url, {"mode": BillingMode.BILLING_AND_PAYMENTS, "confirm": "1"}, follow=True
    )
    assert "The billing mode is now “Billing and payments”." in text(response)
    world.prop.refresh_from_db()
    assert world.prop.billing_mode == BillingMode.BILLING_AND_PAYMENTS
    badge.refresh_from_db()
    assert badge.status == BadgeStatus.ACTIVE  # nothing deleted nor switched off

    # Back: nothing stops; the same mode again is said to be the mode already.
    response = alice.post(url, {"mode": BillingMode.INDIVIDUAL_STATEMENTS})
    assert "No badge stops working" in text(response)
    response = alice.post(url, {"mode": BillingMode.BILLING_AND_PAYMENTS})
    assert "The billing mode is already “Billing and payments”." in text(response)
    assert alice.post(url, {"mode": "free_for_all"}).status_code == 400


def test_the_owner_sets_the_currency_and_the_price_of_an_extra_badge(world, alice):
    url = _url(world, "billing/badge-price/")
    response = alice.post(url, {"currency": "CHF", "price": "25.50"}, follow=True)
    assert "An extra badge costs CHF 25.50." in text(response)
    prop = Property.objects.get(pk=world.prop.pk)
    assert (prop.currency, prop.extra_badge_price_minor) == ("CHF", 2550)

    for bad in ("-1", "1000.01", "abc", "1.234"):
        response = alice.post(url, {"currency": "CHF", "price": bad})
        assert response.status_code == 400, bad
    assert alice.post(url, {"currency": "USD", "price": "1"}).status_code == 400
    prop.refresh_from_db()
    assert prop.extra_badge_price_minor == 2550


def _posts(world, residency_id, badge_id):
    today = site_today(world.prop).isoformat()
    return [
        ("units/", {"label": "9Z"}),
        ("parking-spaces/", {"number": "P9"}),
        ("residents/add/", {"name": "M", "email": "m@example.com", "unit": 1, "move_in": today}),
        (f"residents/{residency_id}/move-out/", {"move_out": today}),
        ("residents/import/", {"csv": "M,m@example.com,2B,2026-01-01"}),
        ("billing/mode/", {"mode": BillingMode.BILLING_AND_PAYMENTS, "confirm": "1"}),
        ("billing/badge-price/", {"currency": "CHF", "price": "99"}),
        ("badges/register/", {"person": 1, "uid": "04A1B2C3", "atqa": "0004", "sak": "08"}),
        (f"badges/{badge_id}/lost/", {"replacement": "on"}),
        (f"badges/{badge_id}/reactivate/", {}),
    ]


def _state(world):
    prop = Property.objects.get(pk=world.prop.pk)
    return (
        Unit.objects.count(),
        ParkingSpace.objects.count(),
        list(Residency.objects.values_list("pk", "move_out")),
        (prop.billing_mode, prop.currency, prop.extra_badge_price_minor),
        list(Badge.objects.values_list("pk", "status")),
    )


def test_a_member_is_refused_every_change_with_a_message(world, bob):
    badge = _third_party_badge(world)
    residency = Residency.objects.get()
    before = _state(world)
    for tail, data in _posts(world, residency.pk, badge.pk):
        response = bob.post(_url(world, tail), data)
        assert response.status_code == 403, tail
        body = text(response)
        assert "Only" in body and "can" in body, tail
        assert "rita@example.com" not in body, tail
    assert _state(world) == before
    body = text(bob.post(_url(world, "units/"), {"label": ""}))  # even an empty form
    assert "Only lock owners and building managers can change units, residents and billing." in body


def test_an_outsider_gets_404_on_every_page_and_post_and_changes_nothing(world, charlie):
    badge = _third_party_badge(world)
    residency = Residency.objects.get()
    before = _state(world)
    assert charlie.get(_url(world, "residents/")).status_code == 404
    for tail, data in _posts(world, residency.pk, badge.pk):
        response = charlie.post(_url(world, tail), data)
        assert response.status_code == 404, tail
        body = text(response)
        for secret in ("Canal House", "Rita", "B32F1A7C", "2B"):
            assert secret not in body, (tail, secret)
    # On his own site's page, Alice's resident and badge do not exist either.
    own = f"/properties/{world.charlie_prop.pk}/"
    assert charlie.post(own + f"residents/{residency.pk}/move-out/", {}).status_code == 404
    assert charlie.post(own + f"badges/{badge.pk}/lost/", {}).status_code == 404
    assert charlie.post(own + f"badges/{badge.pk}/reactivate/", {}).status_code == 404
    assert _state(world) == before


def test_a_signed_out_visitor_is_sent_to_sign_in(world):
    response = world.client(None).get(_url(world, "residents/"))
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


def test_a_file_with_mac_line_endings_is_read_and_an_unreadable_one_is_refused(world, alice):
    add_unit(world.alice, world.prop.pk, "2B")
    content = "Anna Meier,anna@example.com,2B,2026-01-31\rBen Bauer,ben@example.com,2B,2026-02-01\r"
    upload = SimpleUploadedFile("residents.csv", content.encode("cp1252"), "text/csv")
    response = alice.post(_url(world, "residents/import/"), {"file": upload}, follow=True)
    assert "2 residents imported." in text(response)

    huge = "Anna," + "x" * 200_000 + ",2B,2026-01-31\n"
    response = alice.post(_url(world, "residents/import/"), {"csv": huge})
    assert response.status_code == 400
    assert "The text cannot be read as CSV lines" in text(response)
    assert Residency.objects.count() == 2
