"""Times on the dashboard name the zone of the property they belong to, and
times that belong to no property (API tokens) are in UTC and say so
(issue 15, 3)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import time_machine
from webhelp import text

from doorkeep.accounts.services import create_token
from doorkeep.licensing.state import licence_of


@time_machine.travel(datetime(2026, 12, 6, 18, 5, tzinfo=UTC), tick=False)
def test_the_token_list_names_utc(world, alice):
    create_token(world.alice, "Nightly export")

    page = text(alice.get("/settings/tokens/"))

    assert "2026-12-06 18:05 (UTC)" in page


def test_the_dashboard_names_the_zone_a_licence_ends_in(world, time_machine):
    ends = licence_of(world.lock.pk).full_until
    time_machine.move_to(ends - timedelta(days=5), tick=False)

    page = text(world.client(world.alice).get("/"))  # signed in after the jump

    local = ends.astimezone(ZoneInfo("Europe/Amsterdam"))
    assert f"{local:%Y-%m-%d %H:%M} (Europe/Amsterdam)" in page
