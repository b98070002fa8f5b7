"""Portal logins asked for from the notice in the building (R40), with a
real SMTP conversation for the emails."""

from __future__ import annotations

import re
from datetime import date, timedelta

import pytest

from doorkeep.core.errors import Conflict, InvalidInput, NotFound, PermissionDenied, RateLimited
from doorkeep.events.models import Event, EventKind
from doorkeep.residents import portal
from doorkeep.residents.models import LoginRequestStatus as S
from doorkeep.residents.models import Residency
from doorkeep.residents.selectors import is_resident
from doorkeep.residents.services import ResidentSpec, add_resident, add_unit, site_today


@pytest.fixture
def code(world):
    add_unit(world.alice, world.prop.pk, "A-1")
    return portal.portal_code(world.alice, world.prop.pk)


def token_in(message) -> str:
    found = re.search(r"/portal/confirm/([\w-]+)/", message.get_content())
    assert found, message.get_content()
    return found.group(1)


def ask(code, email="eve@example.com", unit="A-1", client="203.0.113.7"):
    return portal.ask_for_login(code, name="Eve Example", email=email, unit=unit, client=client)


def test_the_sites_code_is_made_once_and_kept(world, code):
    assert re.fullmatch(r"[A-Z2-9]{4}-[A-Z2-9]{4}", code)
    assert portal.portal_code(world.alice, world.prop.pk) == code
    with pytest.raises(PermissionDenied):
        portal.portal_code(world.bob, world.prop.pk)
    with pytest.raises(NotFound):
        portal.portal_code(world.charlie, world.prop.pk)


def test_a_stranger_confirms_the_address_and_the_manager_approves(
    world, code, smtp, django_capture_on_commit_callbacks
):
    request = ask(code.lower().replace("-", " "))
    assert request.status == S.UNCONFIRMED
    assert not Event.objects.filter(kind=EventKind.LOGIN_REQUESTED).exists()

    confirmed = portal.confirm_login_request(token_in(smtp.last_to("eve@example.com")))

    assert confirmed.status == S.PENDING
    assert Event.objects.filter(kind=EventKind.LOGIN_REQUESTED).count() == 1
    with pytest.raises(PermissionDenied):
        portal.decide_login_request(world.bob, request.pk, approve=True)

    with django_capture_on_commit_callbacks(execute=True):  # the email goes after the commit
        portal.decide_login_request(world.alice, request.pk, approve=True)

    request.refresh_from_db()
    assert (request.status, request.decided_by) == (S.APPROVED, world.alice)
    person = Residency.objects.get(person__email="eve@example.com").person_id
    assert is_resident(person, world.prop.pk, site_today(world.prop))
    assert "portal is ready" in str(smtp.last_to("eve@example.com")["Subject"])


def test_a_resident_of_the_unit_is_approved_at_once(world, code, smtp):
    add_resident(
        world.alice,
        world.prop.pk,
        ResidentSpec("Eve Example", "eve@example.com", date(2024, 1, 1), unit_label="A-1"),
    )
    request = ask(code, email="EVE@example.com")

    confirmed = portal.confirm_login_request(token_in(smtp.last_to("eve@example.com")))

    assert (confirmed.status, confirmed.approved_as_resident) == (S.APPROVED, True)
    again = portal.confirm_login_request(token_in(smtp.to("eve@example.com")[0]))
    assert again.pk == request.pk and again.status == S.APPROVED  # twice changes nothing


def test_a_wrong_code_reveals_nothing_and_guessing_is_limited(world, code, mailoutbox):
    with pytest.raises(InvalidInput) as wrong:
        ask("ABCD-EFGH")
    assert wrong.value.code == "unknown_site_code"
    assert "Canal House" not in wrong.value.message
    for _ in range(portal.ASKS_PER_HOUR - 1):
        with pytest.raises(InvalidInput):
            ask("ABCD-EFGH")

    with pytest.raises(RateLimited):
        ask(code)
    ask(code, client="198.51.100.1")  # another address is not locked out


def test_bad_input_names_the_field(world, code, mailoutbox):
    with pytest.raises(InvalidInput) as unit:
        ask(code, unit="Z-9")
    assert unit.value.details["field"] == "unit"
    with pytest.raises(InvalidInput) as email:
        ask(code, email="not an address")
    assert email.value.details["field"] == "email"


def test_a_refusal_says_why_and_an_old_link_stops_working(
    world, code, smtp, time_machine, django_capture_on_commit_callbacks
):
    request = ask(code)
    token = token_in(smtp.last_to("eve@example.com"))
    portal.confirm_login_request(token)
    with pytest.raises(InvalidInput):
        portal.decide_login_request(world.alice, request.pk, approve=False)

    with django_capture_on_commit_callbacks(execute=True):
        portal.decide_login_request(world.alice, request.pk, approve=False, reason="Not our tenant")

    assert "Not our tenant" in smtp.last_to("eve@example.com").get_content()
    with pytest.raises(Conflict):
        portal.decide_login_request(world.alice, request.pk, approve=True)
    late = ask(code, email="late@example.com")
    time_machine.move_to(late.created_at + timedelta(days=portal.LINK_DAYS, hours=1))
    with pytest.raises(NotFound):
        portal.confirm_login_request(token_in(smtp.last_to("late@example.com")))


def test_the_owner_invites_every_resident_without_a_login_in_one_step(world, smtp):
    add_unit(world.alice, world.prop.pk, "A-1")
    for name, email in (("Eve", "eve@example.com"), ("Bob", "bob@example.com")):
        add_resident(
            world.alice,
            world.prop.pk,
            ResidentSpec(name, email, date(2024, 1, 1), unit_label="A-1"),
        )

    invited = portal.invite_residents(world.alice, world.prop.pk)

    assert invited == 1  # Bob has an account already
    assert smtp.to("eve@example.com") and not smtp.to("bob@example.com")
    assert Event.objects.filter(kind=EventKind.RESIDENTS_INVITED, actor=world.alice).exists()


def test_confirmation_links_to_one_address_are_limited(world, code, mailoutbox):
    for n in range(portal.MAILS_PER_HOUR):
        ask(code, client=f"198.51.100.{n}")

    with pytest.raises(RateLimited) as limited:
        ask(code, client="198.51.100.99")

    assert limited.value.details["field"] == "email"
    assert len(mailoutbox) == portal.MAILS_PER_HOUR


def test_an_approval_email_is_not_sent_for_a_change_that_rolled_back(world, code, mailoutbox):
    from django.db import transaction

    request = ask(code)
    portal.confirm_login_request(token_in_body(mailoutbox[-1].body))
    sent = len(mailoutbox)

    with pytest.raises(RuntimeError), transaction.atomic():
        portal.decide_login_request(world.alice, request.pk, approve=True)
        raise RuntimeError("rolled back")

    assert len(mailoutbox) == sent


def token_in_body(body: str) -> str:
    found = re.search(r"/portal/confirm/([\w-]+)/", body)
    assert found, body
    return found.group(1)
