"""Authorize answered from the site's decisions, held in the gateway
(decision 14): the equipment rule's answer for every badge a site's
stations may be shown, read once (``reports.decided_for``) and shared by all
the stations of the site and parking space; each answer's event written in
batches. A UID the decisions do not list, a malformed one, or a new day at
the site is decided by the database as before (``reports.authorize``).

The decisions are dropped when a notice says a station's list changed (the
same notices that keep the stations' local lists in step: one version, one
change), at the list recheck, and at the latest DECIDED_FOR seconds after
they were read, as a net for a notice that did not arrive."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from doorkeep.chargers import reports

if TYPE_CHECKING:
    from doorkeep.gateway.ocpp.csms import StationLink
    from doorkeep.gateway.server import Gateway

DECIDED_FOR = 60.0  # seconds a site's decisions answer before they are read again


@dataclass
class Decisions:
    """The gateway's decisions, by place (site, parking space)."""

    held: dict[reports.Place, tuple[reports.Decided, float]] = field(default_factory=dict)
    reading: dict[reports.Place, asyncio.Future[reports.Decided]] = field(default_factory=dict)
    generation: int = 0  # raised whenever they are dropped: a read begun before is not kept


def forget(gateway: Gateway, station_ids: Iterable[int]) -> None:
    """A change: every place's decisions are dropped (a change is rare, and
    a badge's holder may live at several places), and the named stations'
    places are read again, in one query (a station may have moved)."""
    decisions = gateway.decisions
    decisions.held.clear()
    decisions.generation += 1
    named = [station_id for station_id in station_ids if station_id in gateway.stations]
    if named:
        gateway.spawn(_places(gateway, named), name="station-places")


async def _places(gateway: Gateway, station_ids: list[int]) -> None:
    try:
        found = await gateway.db(reports.places_of, station_ids)
    except Exception:  # each station reads its own when it next asks
        found = {}
    for station_id in station_ids:
        link = gateway.stations.get(station_id)
        if link is not None:
            link.place, link.label = found.get(station_id, (None, link.label))


async def _decided(gateway: Gateway, link: StationLink) -> reports.Decided | None:
    if link.place is None:
        link.place, link.label = await gateway.db(reports.place_of, link.station_id)
    place = link.place
    assert place is not None
    decisions = gateway.decisions
    kept = decisions.held.get(place)
    if kept is not None and time.monotonic() - kept[1] < DECIDED_FOR:
        return kept[0]
    reading = decisions.reading.get(place)
    if reading is None:  # one read per place, however many stations ask meanwhile
        generation = decisions.generation
        reading = asyncio.ensure_future(gateway.db(reports.decided_for, place))
        decisions.reading[place] = reading

        def done(future: asyncio.Future[reports.Decided]) -> None:
            decisions.reading.pop(place, None)
            if (
                not future.cancelled()
                and future.exception() is None
                and decisions.generation == generation
            ):
                decisions.held[place] = (future.result(), time.monotonic())

        reading.add_done_callback(done)
    try:
        return await asyncio.shield(reading)
    except Exception:  # the database decides, as for anything not listed
        return None


async def authorize(gateway: Gateway, link: StationLink, id_tag: str) -> reports.Answer:
    """Authorize of a badge (OCPP 1.6 idTag, 2.0.1 ISO14443 id token)."""
    decided = await _decided(gateway, link)
    now = datetime.now(UTC)
    answer = reports.answer_from(decided, id_tag, at=now) if decided is not None else None
    if decided is None or answer is None:
        return await gateway.db(reports.authorize, link.station_id, id_tag)
    await gateway.answered(
        reports.Answered(link.station_id, link.label, decided, id_tag, answer, now)
    )
    return answer
