"""Portal logins in the web UI (R40): the public pages with the site's code
(ask, check your email, confirm by a button, the outcome), and on the site's
residents page the code, the link and the printable notice, the requests
waiting (approve, refuse with a reason), the last decided and "invite every
resident without a login". A member is refused; an outsider gets 404."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone
from webhelp import text as page_text

from doorkeep.accounts.services import create_user
from doorkeep.events.models import Event, EventKind
from doorkeep.residents import portal
from doorkeep.residents.models import LoginRequest, Residency
from doorkeep.residents.models import LoginRequestStatus as S
from doorkeep.residents.services import ResidentSpec, add_resident, add_unit, site_today

PASSWORD = "correct horse battery staple"
_CSRF = re.compile(r'<input type="hidden" name="csrfmiddlewaretoken" value="[^"]*">')


def text(response):
    """The page as text, without its CSRF tokens."""
    return _CSRF.sub("", page_text(response))


@pytest.fixture
def code(world):
    """The site's code (unit 2B exists)."""
    add_unit(world.alice, world.prop.pk, "2B")
    return portal.portal_code(world.alice, world.prop.pk)


def _join(code):
    return f"/portal/join/{portal.normalize_code(code)}/"


def _token(body):
    found = re.search(r"/portal/confirm/([\w-]+)/", body)
    assert found, body
    return found.group(1)


def _ask(code, email="eve@example.com", unit="2B", client="198.51.100.1"):
    return portal.ask_for_login(code, name="Eve Example", email=email, unit=unit, client=client)


def _pending(code, mailoutbox, email="eve@example.com"):
    """A request whose address is confirmed, waiting for the site's manager."""
    request = _ask(code, email=email)
    portal.confirm_login_request(_token(mailoutbox[-1].body))
    request.refresh_from_db()
    assert request.status == S.PENDING
    return request


def _site(world, tail=""):
    return f"/properties/{world.prop.pk}/{tail}"


# --- the public pages ---------------------------------------------------------------------


def test_the_join_page_asks_for_the_code_and_goes_to_its_page(world, code):
    anonymous = Client()
    response = anonymous.get("/portal/join/")
    assert response.status_code == 200
    body = text(response)
    assert "The code on the notice" in body
    assert "Canal House" not in body
    typed = code.lower().replace("-", " ")
    response = anonymous.get("/portal/join/", {"code": typed})
    assert response.status_code == 302
    assert response["Location"] == _join(code)
    response = anonymous.get("/portal/join/", {"code": " - "})
    assert response.status_code == 400
    assert "Type the code on the notice in your building." in text(response)


def test_the_sites_page_shows_its_name_and_the_code_prefilled(world, code):
    response = Client().get(_join(code))
    assert response.status_code == 200
    body = text(response)
    assert "Ask for a login to the Canal House portal" in body
    assert f'<code id="join-code">{code}</code>' in body
    for label in ("Your name", "Your email address", "Your unit"):
        assert label in body


def test_a_wrong_code_says_only_that_it_is_not_known(world, code):
    anonymous = Client()
    wrong = "ZZZZ-ZZZZ" if code != "ZZZZ-ZZZZ" else "YYYY-YYYY"
    for response in (
        anonymous.get(_join(wrong)),
        anonymous.post(_join(wrong), {"name": "Eve", "email": "eve@example.com", "unit": "2B"}),
        anonymous.get("/portal/join/SHORT/"),
    ):
        assert response.status_code == 400
        body = text(response)
        assert "This code is not known. Check the code on the notice in your building." in body
        for secret in ("Canal House", "Keizersgracht", "2B", "Your unit"):
            assert secret not in body, secret
    assert not LoginRequest.objects.exists()


def test_asking_confirming_by_the_button_and_the_manager_approving(
    world, code, alice, smtp, django_capture_on_commit_callbacks
):
    anonymous = Client()
    response = anonymous.post(
        _join(code), {"name": "Eve Example", "email": "Eve@Example.com", "unit": "2B"}
    )
    assert response.status_code == 302
    assert response["Location"] == "/portal/join/sent/"
    body = text(anonymous.get(response["Location"]))
    assert "Check your email" in body
    assert "Open it within 7 days" in body
    request = LoginRequest.objects.get()
    assert (request.status, request.email) == (S.UNCONFIRMED, "eve@example.com")

    token = _token(smtp.last_to("eve@example.com").get_content())
    url = f"/portal/confirm/{token}/"
    for _ in range(2):  # a mail scanner follows the link: nothing changes
        response = anonymous.get(url)
        assert response.status_code == 200
        assert "Confirm my address" in text(response)
    request.refresh_from_db()
    assert request.status == S.UNCONFIRMED
    assert not Event.objects.filter(kind=EventKind.LOGIN_REQUESTED).exists()

    response = anonymous.post(url)
    assert response.status_code == 200
    body = text(response)
    assert "Your address is confirmed" in body
    assert "The manager of Canal House will decide on your request." in body
    request.refresh_from_db()
    assert request.status == S.PENDING

    # The owner's page: the request waiting, then approved.
    body = text(alice.get(_site(world, "residents/")))
    row = re.search(rf'id="login-{request.pk}".*?</tr>', body, re.S)[0]
    for shown in ("Eve Example", "eve@example.com", "2B", "Approve", "Refuse"):
        assert shown in row, shown
    with django_capture_on_commit_callbacks(execute=True):  # the email goes after the commit
        response = alice.post(_site(world, f"login-requests/{request.pk}/approve/"), follow=True)
    body = text(response)
    assert "Eve Example (eve@example.com) may now use the portal, as a resident of 2B." in body
    assert "No request is waiting." in body
    assert "Approved" in re.search(rf'id="decided-login-{request.pk}".*?</li>', body, re.S)[0]
    request.refresh_from_db()
    assert (request.status, request.decided_by) == (S.APPROVED, world.alice)
    assert Residency.objects.filter(person__email="eve@example.com", unit__label="2B").exists()
    assert "portal is ready" in str(smtp.last_to("eve@example.com")["Subject"])

    # The link again: it says what became of the request, and changes nothing.
    response = anonymous.post(url)
    assert response.status_code == 200
    assert "Your login is approved" in text(response)


def test_a_resident_of_the_unit_is_approved_at_once_with_the_links_to_sign_in(
    world, code, mailoutbox
):
    unit = world.prop.units.get(label="2B")
    add_resident(
        world.alice,
        world.prop.pk,
        ResidentSpec("Eve Example", "eve@example.com", site_today(world.prop), unit_id=unit.pk),
    )
    _ask(code)
    response = Client().post(f"/portal/confirm/{_token(mailoutbox[-1].body)}/")
    assert response.status_code == 200
    body = text(response)
    assert "Your login is approved" in body
    assert "Sign in, or create your account, with this address: <strong>eve@example.com" in body
    assert 'href="/accounts/login/?next=/portal/"' in body
    assert 'href="/accounts/signup/?email=eve%40example.com&next=/portal/"' in body
    assert LoginRequest.objects.get().status == S.APPROVED


def test_a_refused_request_shows_its_reason_on_the_link(world, code, alice, mailoutbox):
    request = _pending(code, mailoutbox)
    portal.decide_login_request(world.alice, request.pk, approve=False, reason="Not on the lease")
    body = text(Client().post(f"/portal/confirm/{_token(mailoutbox[0].body)}/"))
    assert "Your login was not approved" in body
    assert "The site's manager did not approve it: Not on the lease" in body


def test_an_unknown_or_expired_link_is_a_404_with_a_clear_message(world, code, mailoutbox):
    anonymous = Client()
    response = anonymous.post("/portal/confirm/not-a-real-token/")
    assert response.status_code == 404
    assert "This link is not valid any more. Ask for a login again." in text(response)

    _ask(code)
    LoginRequest.objects.update(created_at=timezone.now() - timedelta(days=8))
    response = anonymous.post(f"/portal/confirm/{_token(mailoutbox[-1].body)}/")
    assert response.status_code == 404
    assert "This link is not valid any more." in text(response)
    assert LoginRequest.objects.get().status == S.UNCONFIRMED


def test_bad_input_is_said_on_the_form_and_nothing_is_asked(world, code):
    anonymous = Client()
    url = _join(code)
    good = {"name": "Eve Example", "email": "eve@example.com", "unit": "2B"}
    response = anonymous.post(url, {**good, "unit": "9Z"})
    assert response.status_code == 400
    body = text(response)
    assert "9Z is not a unit of this site; write it as on your door or letterbox." in body
    assert 'value="eve@example.com"' in body  # the form is shown again, filled in
    response = anonymous.post(url, {**good, "email": "not an address"})
    assert response.status_code == 400
    assert "Enter a valid email address." in text(response)
    response = anonymous.post(url, {**good, "name": ""})
    assert response.status_code == 400
    assert "This field is required." in text(response)
    assert not LoginRequest.objects.exists()


def test_too_many_tries_from_one_address_are_refused_with_429(world, code):
    anonymous = Client()
    for n in range(portal.ASKS_PER_HOUR):
        assert anonymous.get(_join(f"ZZZZ{n:04d}")).status_code == 400
    for response in (
        anonymous.get(_join("ZZZZ-9999")),
        anonymous.get(_join(code)),  # the right code too: it says nothing of the site
        anonymous.post(_join(code), {"name": "Eve", "email": "eve@example.com", "unit": "2B"}),
    ):
        assert response.status_code == 429
        body = text(response)
        assert "Too many requests from here; please try again later." in body
        assert "Canal House" not in body
    assert not LoginRequest.objects.exists()
    other = Client(REMOTE_ADDR="192.0.2.50")  # another address is not held back
    assert other.get(_join(code)).status_code == 200


# --- the site's residents page ----------------------------------------------------------


def test_the_residents_page_shows_the_code_the_link_and_the_notice(world, code, alice):
    body = text(alice.get(_site(world, "residents/")))
    assert f'<code class="site-code" id="portal-code">{code}</code>' in body
    link = portal.join_url(code)
    assert f'href="{link}"' in body
    assert f'href="/properties/{world.prop.pk}/residents/notice/"' in body
    assert "Invite every resident without a login" in body
    assert "No request is waiting." in body

    response = alice.get(_site(world, "residents/notice/"))
    assert response.status_code == 200
    body = text(response)
    assert f'<p class="notice-code" id="notice-code">{code}</p>' in body
    assert link in body and "/portal/join/" in body
    assert "Canal House" in body
    assert "Give your name, your email address and your unit" in body
    assert "data-print" in body


def test_the_owner_refuses_with_a_reason_that_is_emailed(
    world, code, alice, mailoutbox, django_capture_on_commit_callbacks
):
    request = _pending(code, mailoutbox)
    url = _site(world, f"login-requests/{request.pk}/refuse/")
    response = alice.post(url, {"reason": "  "})
    assert response.status_code == 400
    row = re.search(rf'id="login-{request.pk}".*?</tr>', text(response), re.S)[0]
    assert "Say why the login is refused." in row
    assert '<details class="refuse" open>' in row
    request.refresh_from_db()
    assert request.status == S.PENDING

    with django_capture_on_commit_callbacks(execute=True):  # the email goes after the commit
        response = alice.post(url, {"reason": "Not on the lease"}, follow=True)
    body = text(response)
    assert "The login of Eve Example (eve@example.com) is refused" in body
    decided = re.search(rf'id="decided-login-{request.pk}".*?</li>', body, re.S)[0]
    assert "Refused" in decided and "Reason: Not on the lease" in decided
    request.refresh_from_db()
    assert (request.status, request.refusal_reason) == (S.REFUSED, "Not on the lease")
    assert "Not on the lease" in mailoutbox[-1].body

    response = alice.post(_site(world, f"login-requests/{request.pk}/approve/"))
    assert response.status_code == 409  # decided already
    assert "only a confirmed request waits for a decision" in text(response)


def test_inviting_every_resident_without_a_login_says_how_many(world, code, alice, mailoutbox):
    unit = world.prop.units.get(label="2B")
    today = site_today(world.prop)
    for name, email in (("Ann", "ann@example.com"), ("Ben", "ben@example.com")):
        add_resident(world.alice, world.prop.pk, ResidentSpec(name, email, today, unit_id=unit.pk))
    create_user("cat@example.com", PASSWORD, name="Cat")  # has a login already
    add_resident(
        world.alice, world.prop.pk, ResidentSpec("Cat", "cat@example.com", today, unit_id=unit.pk)
    )
    response = alice.post(_site(world, "residents/invite/"))
    assert response.status_code == 302
    assert response["Location"].endswith("#portal-logins")
    body = text(alice.get(response["Location"]))
    assert "2 residents without a login are invited to the portal by email." in body
    assert sorted(m.to[0] for m in mailoutbox) == ["ann@example.com", "ben@example.com"]


def test_with_nobody_to_invite_the_page_says_so(world, code, alice, mailoutbox):
    response = alice.post(_site(world, "residents/invite/"), follow=True)
    assert "Nobody was invited" in text(response)
    assert mailoutbox == []


# --- who may do what ------------------------------------------------------------------------


def test_a_member_sees_no_logins_and_is_refused_every_change(world, code, bob, mailoutbox):
    request = _pending(code, mailoutbox)
    sent = len(mailoutbox)
    body = text(bob.get(_site(world, "residents/")))
    assert code not in body and "Eve Example" not in body and "Portal logins" not in body
    response = bob.get(_site(world, "residents/notice/"))
    assert response.status_code == 403
    assert code not in text(response)
    denied = "Only lock owners and building managers can change units, residents and billing."
    for url, data in (
        (f"login-requests/{request.pk}/approve/", {}),
        (f"login-requests/{request.pk}/refuse/", {"reason": "No"}),
        (f"login-requests/{request.pk}/refuse/", {"reason": ""}),
        ("residents/invite/", {}),
    ):
        response = bob.post(_site(world, url), data)
        assert response.status_code == 403, url
        assert denied in text(response), url
        assert "Eve Example" not in text(response)
    request.refresh_from_db()
    assert request.status == S.PENDING
    assert len(mailoutbox) == sent


def test_an_outsider_gets_404_on_every_page_and_post(world, code, charlie, mailoutbox):
    request = _pending(code, mailoutbox)
    sent = len(mailoutbox)
    own = f"/properties/{world.charlie_prop.pk}/"
    for url in (_site(world, "residents/"), _site(world, "residents/notice/")):
        response = charlie.get(url)
        assert response.status_code == 404, url
        assert "Canal House" not in text(response) and code not in text(response)
    for url, data in (
        (_site(world, f"login-requests/{request.pk}/approve/"), {}),
        (_site(world, f"login-requests/{request.pk}/refuse/"), {"reason": "No"}),
        (_site(world, f"login-requests/{request.pk}/refuse/"), {"reason": ""}),
        # Alice's request through Charlie's own site: it does not exist for him.
        (f"{own}login-requests/{request.pk}/approve/", {}),
        (f"{own}login-requests/{request.pk}/refuse/", {"reason": "No"}),
    ):
        response = charlie.post(url, data)
        assert response.status_code == 404, url
        assert "Eve Example" not in text(response)
    response = charlie.post(_site(world, "residents/invite/"))
    assert response.status_code == 404
    request.refresh_from_db()
    assert request.status == S.PENDING
    assert len(mailoutbox) == sent
