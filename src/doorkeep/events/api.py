from __future__ import annotations

from datetime import UTC, datetime

from django.http import HttpRequest, StreamingHttpResponse
from ninja import Query, Router, Schema
from pydantic import Field

from doorkeep import policy
from doorkeep.api.util import actor
from doorkeep.events import selectors
from doorkeep.events.models import Event
from doorkeep.locks.services import get_lock, site_of
from doorkeep.properties.services import get_property

router = Router(tags=["events"])


class EventOut(Schema):
    id: int
    kind: str
    outcome: str | None = Field(
        description="granted (the door opened, or the lock let the person in) or denied; null "
        "for anything else, a remote unlock the lock did not carry out included"
    )
    decision: str | None = Field(
        description="The access decision of an attempt: granted or denied (null: no attempt)"
    )
    lock_outcome: str | None = Field(
        description="What the lock did: opened, offline, no_answer, refused, or not_sent (the "
        "platform refused, nothing was sent); null when not an attempt at a lock"
    )
    reason: str = Field(description="A stable code, for programs: see docs/lock-owners.md")
    occurred_at: datetime
    received_at: datetime
    property_id: int | None
    lock_id: int | None
    lock_serial: str | None
    person_id: int | None
    person: str | None
    key_id: int | None
    actor: str | None
    credential_kind: str
    summary: str


class EventPage(Schema):
    items: list[EventOut]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next (older) page")


class EventQuery(Schema):
    start: datetime | None = Field(None, description="From this moment (inclusive)")
    end: datetime | None = Field(None, description="Until this moment (exclusive)")
    kind: list[str] = Field(default_factory=list, description="Event kinds, repeatable")
    person_id: int | None = None
    outcome: str | None = Field(None, description="granted or denied")
    cursor: str | None = None
    limit: int = Field(50, ge=1, le=500)

    def to_filter(self) -> selectors.EventFilter:
        def aware(moment: datetime | None) -> datetime | None:
            if moment is not None and moment.tzinfo is None:
                return moment.replace(tzinfo=UTC)
            return moment

        return selectors.EventFilter(
            start=aware(self.start),
            end=aware(self.end),
            kinds=tuple(self.kind),
            person_id=self.person_id,
            outcome=self.outcome or None,
        )


def event_out(e: Event) -> dict[str, object]:
    outcome = {True: "granted", False: "denied", None: None}[e.granted]
    return {
        "id": e.pk,
        "kind": e.kind,
        "outcome": outcome,
        "decision": e.decision,
        "lock_outcome": e.lock_outcome,
        "reason": e.reason,
        "occurred_at": e.occurred_at,
        "received_at": e.received_at,
        "property_id": e.property_id,
        "lock_id": e.lock_id,
        "lock_serial": e.lock.serial if e.lock else None,
        "person_id": e.person_id,
        "person": e.person.name if e.person else None,
        "key_id": e.key_id,
        "actor": e.actor.email if e.actor else None,
        "credential_kind": e.credential_kind,
        "summary": e.summary,
    }


def _lock_events(request: HttpRequest, lock_id: int):  # type: ignore[no-untyped-def]
    user = actor(request)
    lock = get_lock(user, lock_id, policy.Action.VIEW_EVENTS)
    events = Event.objects.filter(lock=lock, organization_id=lock.organization_id or 0)
    if not policy.can(user, policy.Action.VIEW_EVENTS, lock.organization_id):
        # a collaborator of the lock's site only: its events at that site
        events = events.filter(property_id=site_of(lock) or 0)
    return events


def _property_events(request: HttpRequest, property_id: int):  # type: ignore[no-untyped-def]
    prop = get_property(actor(request), property_id, policy.Action.VIEW_EVENTS)
    return Event.objects.filter(property=prop, organization_id=prop.organization_id)


def _csv(queryset, name: str) -> StreamingHttpResponse:  # type: ignore[no-untyped-def]
    response = StreamingHttpResponse(selectors.csv_rows(queryset), content_type="text/csv")
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


@router.get("locks/{lock_id}/events", response=EventPage, summary="A lock's event log")
def lock_events(request: HttpRequest, lock_id: int, query: Query[EventQuery]) -> dict[str, object]:
    qs = selectors.filtered(_lock_events(request, lock_id), query.to_filter())
    result = selectors.page(qs, cursor=query.cursor, limit=query.limit)
    return {"items": [event_out(e) for e in result.events], "next_cursor": result.next_cursor}


@router.get("locks/{lock_id}/events.csv", summary="A lock's event log as CSV")
def lock_events_csv(
    request: HttpRequest, lock_id: int, query: Query[EventQuery]
) -> StreamingHttpResponse:
    qs = selectors.filtered(_lock_events(request, lock_id), query.to_filter())
    return _csv(qs, f"doorkeep-lock-{lock_id}-events.csv")


@router.get("properties/{property_id}/events", response=EventPage, summary="A property's event log")
def property_events(
    request: HttpRequest, property_id: int, query: Query[EventQuery]
) -> dict[str, object]:
    qs = selectors.filtered(_property_events(request, property_id), query.to_filter())
    result = selectors.page(qs, cursor=query.cursor, limit=query.limit)
    return {"items": [event_out(e) for e in result.events], "next_cursor": result.next_cursor}


@router.get("properties/{property_id}/events.csv", summary="A property's event log as CSV")
def property_events_csv(
    request: HttpRequest, property_id: int, query: Query[EventQuery]
) -> StreamingHttpResponse:
    qs = selectors.filtered(_property_events(request, property_id), query.to_filter())
    return _csv(qs, f"doorkeep-property-{property_id}-events.csv")
