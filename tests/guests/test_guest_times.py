"""Guests read every time in the property's time zone, named where they could
misread it: the invitation email, the invitation link page, and the
resident's page of the invitation with the guest's activity (issue 15, 3)."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import time_machine
from django.test import Client
from django.utils.html import escape
from guest_helpers import GuestWorld

from doorkeep.events.models import EventKind
from doorkeep.events.reasons import reason_text
from doorkeep.events.services import record
from doorkeep.guests import services as guests
from doorkeep.guests.models import Invitation
from doorkeep.notify.models import Notification


def _text(response: Any) -> str:
    return re.sub(r"\s+", " ", response.content.decode())


def _invite_until(gw: GuestWorld, day: str) -> Invitation:
    sent = gw.w.client(gw.rita).post(
        f"/guests/{gw.w.prop.pk}/invite/",
        {"email": "gina@example.com", "entries": [str(gw.w.entry.pk)], "ends_on": day},
    )
    assert sent.status_code == 302
    return Invitation.objects.get()


@time_machine.travel(datetime(2026, 12, 6, 18, 0, tzinfo=UTC), tick=False)
def test_the_invitation_email_says_access_ends_at_the_end_of_the_day_in_the_propertys_zone(
    gw: GuestWorld, smtp: Any
) -> None:
    invitation = _invite_until(gw, "2026-12-20")
    assert invitation.ends_at == datetime(2026, 12, 20, 22, 59, 59, tzinfo=UTC)

    message = smtp.last_to("gina@example.com")
    plain = message.get_body(preferencelist=("plain",)).get_content()
    html = message.get_body(preferencelist=("html",)).get_content()
    for body in (plain, html):
        assert "Your access ends on 20 December 2026 23:59 (Europe/Amsterdam)." in body
        assert "22:59" not in body


@time_machine.travel(datetime(2026, 7, 1, 21, 30, tzinfo=UTC), tick=False)
def test_the_link_expiry_in_the_email_is_the_propertys_day(gw: GuestWorld, smtp: Any) -> None:
    gw.w.prop.timezone = "Asia/Tokyo"  # already 2 July there
    gw.w.prop.save(update_fields=["timezone"])
    invitation = gw.invite()
    expires = invitation.link_expires_at
    assert expires.astimezone(UTC).day != expires.astimezone(ZoneInfo("Asia/Tokyo")).day

    body = smtp.last_to("gina@example.com").get_body(preferencelist=("plain",)).get_content()

    day = expires.astimezone(ZoneInfo("Asia/Tokyo"))
    assert f"This link works once, until {day.day} {day:%B %Y}." in body


@time_machine.travel(datetime(2026, 12, 6, 18, 0, tzinfo=UTC), tick=False)
def test_the_invitation_link_page_names_the_propertys_zone(gw: GuestWorld, smtp: Any) -> None:
    _invite_until(gw, "2026-12-20")
    plain = smtp.last_to("gina@example.com").get_body(preferencelist=("plain",)).get_content()
    token = re.search(r"/invitations/(\S+)/", plain).group(1)  # type: ignore[union-attr]

    page = _text(Client().get(f"/invitations/{token}/"))

    assert "Access ends on 20 December 2026 23:59 (Europe/Amsterdam)." in page


def test_the_residents_invitation_page_shows_the_guests_activity_in_the_propertys_zone(
    gw: GuestWorld,
) -> None:
    invitation = _invite_until(gw, "2099-04-30")
    guests.accept(gw.gina, invitation.pk)
    # On either side of the clocks moving forward (29 March 2026 in Amsterdam).
    for moment in (
        datetime(2026, 3, 27, 9, 15, 7, tzinfo=UTC),
        datetime(2026, 3, 30, 9, 15, 8, tzinfo=UTC),
    ):
        record(
            EventKind.ACCESS_DENIED,
            organization_id=gw.w.org.pk,
            lock=gw.w.lock,
            actor=gw.gina,
            reason="outside_schedule",
            summary="Gina was refused",
            occurred_at=moment,
        )

    page = _text(gw.w.client(gw.rita).get(f"/guests/invitations/{invitation.pk}/"))

    assert "30 Apr 2099 23:59 (Europe/Amsterdam)" in page  # access ends
    assert "27 Mar 2026 10:15:07" in page and "30 Mar 2026 11:15:08" in page
    assert "09:15:0" not in page
    assert "Times are in Europe/Amsterdam." in page
    # Why the guest was refused, in words (the event log's reason text).
    words = escape(reason_text("outside_schedule"))
    assert page.count(f'Gina was refused <span class="muted small">({words})</span>') == 2
    assert "(outside_schedule)" not in page


def test_the_resident_is_told_of_the_answer_on_the_propertys_clock(gw: GuestWorld) -> None:
    invitation = gw.invite()

    guests.accept(gw.gina, invitation.pk)

    told = Notification.objects.get(user=gw.rita)
    local = told.created_at.astimezone(ZoneInfo("Europe/Amsterdam"))
    page = _text(gw.w.client(gw.rita).get("/notifications/"))
    assert "gina@example.com accepted your invitation" in page
    assert f"{local:%Y-%m-%d %H:%M} (Europe/Amsterdam)" in page
