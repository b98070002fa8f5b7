"""Payment and bank file times: on the site's clock where they belong to a
site, in UTC and saying so where they do not (issue 15, 3)."""

from __future__ import annotations

import html
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import time_machine
from django.urls import reverse

from .camt_samples import QR_PARTIAL, invoice, issuer


def test_a_payment_marked_late_in_the_evening_shows_the_sites_day(world):
    target = invoice(world.prop, reference=QR_PARTIAL, total=8000, by=issuer(), person="Sanne")
    tomorrow = datetime.now(UTC).date() + timedelta(days=1)
    late = datetime(tomorrow.year, tomorrow.month, tomorrow.day, 23, 30, tzinfo=UTC)
    url = reverse("web:invoice-mark-paid", args=[target.pk])

    with time_machine.travel(late, tick=False):
        alice = world.client(world.alice)
        alice.post(url, {"note": "Paid in cash"})
        page = html.unescape(alice.get(url).content.decode())

    local = late.astimezone(ZoneInfo("Europe/Amsterdam"))
    assert f"{local:%Y-%m-%d %H:%M}" in page
    assert f"{late:%Y-%m-%d %H:%M}" not in page
