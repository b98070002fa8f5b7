"""Reading the event log: filters, keyset pagination and CSV export.

Pages are ordered newest first by (occurred_at, id). A cursor names the last
row of the previous page, so every page is one index range scan however deep
it is (no OFFSET)."""

from __future__ import annotations

import base64
import binascii
import csv
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db.models import QuerySet
from django.utils.translation import gettext as _

from doorkeep.core import when
from doorkeep.core.errors import InvalidInput
from doorkeep.core.text import csv_cell
from doorkeep.events.models import Event, EventKind
from doorkeep.events.reasons import reason_text

MAX_PAGE = 500


@dataclass(frozen=True)
class EventFilter:
    start: datetime | None = None  # inclusive
    end: datetime | None = None  # exclusive
    kinds: tuple[str, ...] = ()
    person_id: int | None = None
    outcome: str | None = None  # "granted" or "denied"
    extra: dict[str, int] = field(default_factory=dict)


def encode_cursor(event: Event) -> str:
    raw = f"{event.occurred_at.isoformat()}|{event.id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, int]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        moment, _sep, ident = raw.partition("|")
        parsed = datetime.fromisoformat(moment)
        if parsed.tzinfo is None:
            raise ValueError("naive")
        return parsed, int(ident)
    except (ValueError, UnicodeDecodeError, binascii.Error):
        raise InvalidInput(
            _("The page cursor is not valid; start again from the first page."),
            code="invalid_cursor",
        ) from None


def filtered(queryset: QuerySet[Event], flt: EventFilter) -> QuerySet[Event]:
    unknown = [k for k in flt.kinds if k not in EventKind.values]
    if unknown:
        raise InvalidInput(
            _("Unknown event kind: %(kinds)s.") % {"kinds": ", ".join(unknown)}, code="invalid_kind"
        )
    if flt.start and flt.end and flt.start >= flt.end:
        raise InvalidInput(
            _("The start of the time range must be before its end."), code="invalid_range"
        )
    if flt.start:
        queryset = queryset.filter(occurred_at__gte=flt.start)
    if flt.end:
        queryset = queryset.filter(occurred_at__lt=flt.end)
    if flt.kinds:
        queryset = queryset.filter(kind__in=flt.kinds)
    if flt.outcome == "granted":
        queryset = queryset.filter(kind__in=(EventKind.ACCESS_GRANTED, EventKind.GUEST_UNLOCKED))
    elif flt.outcome == "denied":
        queryset = queryset.filter(kind=EventKind.ACCESS_DENIED)
    elif flt.outcome:
        raise InvalidInput(_("Outcome must be granted or denied."), code="invalid_outcome")
    if flt.person_id is not None:
        queryset = queryset.filter(person_id=flt.person_id)
    return queryset


@dataclass
class EventPage:
    events: list[Event]
    next_cursor: str | None


def page(queryset: QuerySet[Event], *, cursor: str | None, limit: int) -> EventPage:
    limit = max(1, min(limit, MAX_PAGE))
    queryset = queryset.order_by("-occurred_at", "-id")
    if cursor:
        moment, ident = decode_cursor(cursor)
        # One index range: at or before the cursor's moment, minus the rows of
        # that same moment already shown (an OR here would defeat the index).
        queryset = queryset.filter(occurred_at__lte=moment).exclude(
            occurred_at=moment, id__gte=ident
        )
    rows = list(queryset.select_related("person", "actor", "lock", "property")[: limit + 1])
    more = len(rows) > limit
    rows = rows[:limit]
    return EventPage(rows, encode_cursor(rows[-1]) if more and rows else None)


CSV_COLUMNS = [
    "id",
    "occurred_at",
    "received_at",
    "kind",
    "outcome",
    "reason",
    "property",
    "lock_serial",
    "lock_name",
    "person",
    "credential_kind",
    "actor",
    "summary",
    "decision",
    "lock_outcome",
    "reason_text",
]


class _Echo:
    def write(self, value: str) -> str:
        return value


def csv_rows(queryset: QuerySet[Event], *, batch: int = 2000) -> Iterator[str]:
    """Stream the whole filtered log as CSV, newest first, in keyset batches."""
    writer = csv.writer(_Echo())
    yield writer.writerow(CSV_COLUMNS)
    cursor: str | None = None
    while True:
        chunk = page(queryset, cursor=cursor, limit=MAX_PAGE if batch > MAX_PAGE else batch)
        yield from _csv_lines(writer, chunk.events)
        if chunk.next_cursor is None:
            return
        cursor = chunk.next_cursor


def _csv_lines(writer: Any, events: Iterable[Event]) -> Iterator[str]:
    for e in events:
        outcome = {True: "granted", False: "denied", None: ""}[e.granted]
        zone = when.zone(e.property)  # times on the property's clock, with their offset
        yield writer.writerow(
            [
                e.id,
                e.occurred_at.astimezone(zone).isoformat(),
                e.received_at.astimezone(zone).isoformat(),
                e.kind,
                outcome,
                e.reason,
                csv_cell(e.property.name) if e.property else "",
                e.lock.serial if e.lock else "",
                csv_cell(e.lock.name) if e.lock else "",
                csv_cell(e.person.name) if e.person else "",
                e.credential_kind,
                csv_cell(e.actor.email) if e.actor else "",
                csv_cell(e.summary),
                e.decision or "",
                e.lock_outcome or "",
                csv_cell(reason_text(e.reason)),
            ]
        )
