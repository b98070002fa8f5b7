"""Writing to the event log. Every service that changes state records what it
did here, in the same transaction as the change."""

from __future__ import annotations

import json
from datetime import datetime
from typing import TYPE_CHECKING, Any

from django.utils import timezone

from doorkeep.events.models import Event

if TYPE_CHECKING:
    from doorkeep.accounts.models import User
    from doorkeep.keys.models import Key, Person
    from doorkeep.locks.models import Lock


def record(
    kind: str,
    *,
    organization_id: int,
    lock: Lock | None = None,
    lock_id: int | None = None,
    property_id: int | None = None,
    station_id: int | None = None,
    machine_id: int | None = None,
    person: Person | None = None,
    key: Key | None = None,
    actor: User | None = None,
    reason: str = "",
    credential_kind: str = "",
    summary: str = "",
    occurred_at: datetime | None = None,
    data: dict[str, Any] | None = None,
) -> Event:
    now = timezone.now()
    if property_id is None and lock is not None and lock.entry_id is not None:
        property_id = lock.entry.property_id if lock.entry else None
    return Event.objects.create(
        organization_id=organization_id,
        kind=kind,
        reason=reason,
        occurred_at=occurred_at or now,
        received_at=now,
        property_id=property_id,
        lock=lock,
        **({"lock_id": lock_id} if lock is None and lock_id is not None else {}),
        station_id=station_id,
        machine_id=machine_id,
        person=person,
        key=key,
        actor=actor if actor is not None and actor.is_authenticated else None,
        credential_kind=credential_kind,
        summary=summary[:300],
        data=data or {},
    )


_INSERT_COLUMNS = (
    "organization_id",
    "kind",
    "reason",
    "occurred_at",
    "received_at",
    "property_id",
    "lock_id",
    "person_id",
    "key_id",
    "actor_id",
    "credential_kind",
    "summary",
    "data",
)


def write_access_event(
    *,
    organization_id: int,
    kind: str,
    reason: str,
    occurred_at: datetime,
    property_id: int | None,
    lock_id: int,
    person_id: int | None,
    key_id: int | None,
    actor_id: int | None,
    credential_kind: str,
    summary: str,
    data: dict[str, Any],
) -> Event:
    """The access decision's event: one INSERT written by hand (the ORM's
    insert costs more than the database's work), returning the stored row."""
    from django.db import connection

    now = timezone.now()
    ops = connection.ops
    values: list[Any] = [
        organization_id,
        kind,
        reason,
        ops.adapt_datetimefield_value(occurred_at),
        ops.adapt_datetimefield_value(now),
        property_id,
        lock_id,
        person_id,
        key_id,
        actor_id,
        credential_kind,
        summary[:300],
        json.dumps(data),
    ]
    columns = ", ".join(_INSERT_COLUMNS)
    marks = ", ".join(["%s"] * len(values))
    sql = f"INSERT INTO events_event ({columns}) VALUES ({marks})"  # noqa: S608 - fixed columns
    with connection.cursor() as cursor:
        if connection.features.can_return_columns_from_insert:
            cursor.execute(sql + " RETURNING id", values)
            event_id = cursor.fetchone()[0]
        else:  # pragma: no cover - every supported database returns columns
            cursor.execute(sql, values)
            event_id = cursor.lastrowid
    event = Event(
        id=event_id,
        organization_id=organization_id,
        kind=kind,
        reason=reason,
        occurred_at=occurred_at,
        received_at=now,
        property_id=property_id,
        lock_id=lock_id,
        person_id=person_id,
        key_id=key_id,
        actor_id=actor_id,
        credential_kind=credential_kind,
        summary=summary[:300],
        data=data,
    )
    event._state.adding = False
    return event
