"""Writing to the event log. Every service that changes state records what it
did here, in the same transaction as the change."""

from __future__ import annotations

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
        person=person,
        key=key,
        actor=actor if actor is not None and actor.is_authenticated else None,
        credential_kind=credential_kind,
        summary=summary[:300],
        data=data or {},
    )
