"""Notifications say when, in the time zone of the property they are about,
naming it: in the app's list and in the email (issue 15, 3)."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import time_machine
from django.db import transaction

from doorkeep.notify import outbox
from doorkeep.notify.services import notify_users, set_preferences


def _notice(world, *, where):
    with transaction.atomic():
        return notify_users(
            [world.alice.pk],
            kind="guest_unlock",
            title="Gina opened Front door",
            body="Your guest used the entry you shared at Canal House.",
            url="/doors/",
            where=where,
        )


@time_machine.travel(datetime(2026, 7, 1, 22, 30, tzinfo=UTC), tick=False)
def test_the_email_says_when_on_the_propertys_clock(world, smtp):
    set_preferences(world.alice, email_guest_unlock=True)

    _notice(world, where=world.prop)
    assert outbox.deliver_due() == 1

    text = smtp.last_to("alice@example.com").get_content()
    assert "Time: 2 July 2026 00:30 (Europe/Amsterdam)" in text
    assert "22:30" not in text


@time_machine.travel(datetime(2026, 12, 6, 18, 5, tzinfo=UTC), tick=False)
def test_the_list_shows_each_notification_in_its_propertys_zone(world):
    _notice(world, where=world.prop)
    world.prop.timezone = "America/New_York"
    world.prop.save(update_fields=["timezone"])
    _notice(world, where=world.prop)
    _notice(world, where=None)

    page = re.sub(r"\s+", " ", world.client(world.alice).get("/notifications/").content.decode())

    assert "2026-12-06 19:05 (Europe/Amsterdam)" in page
    assert "2026-12-06 13:05 (America/New_York)" in page
    assert "2026-12-06 18:05 (UTC)" in page
