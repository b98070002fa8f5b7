from __future__ import annotations

from datetime import datetime
from typing import Literal

from django.http import HttpRequest
from ninja import Router, Schema, Status
from ninja.params import functions as param
from pydantic import AwareDatetime, Field

from doorkeep import policy
from doorkeep.accounts.models import User
from doorkeep.api.util import actor
from doorkeep.core.errors import InvalidInput
from doorkeep.keys import access, selectors, services
from doorkeep.keys.models import Key
from doorkeep.locks.services import get_lock

router = Router(tags=["keys"])

Kind = Literal["phone", "pin", "remote", "tag"]


class CredentialOut(Schema):
    kind: str
    display: str = Field(description="Tag UID or remote serial; a PIN code shows only as dots")
    active: bool


class KeyOut(Schema):
    id: int
    lock_id: int
    person_id: int | None = Field(description="Empty for a key held by an organization")
    person: str = Field(description="The holder's name: a person or an organization")
    holder_organization_id: int | None = Field(
        description="Set for a key held by an organization (shared management)"
    )
    parent_id: int | None = Field(description="The organization key this key was issued under")
    email: str
    status: str
    valid_from: datetime | None
    valid_until: datetime | None
    schedule: list[dict[str, object]] | None
    note: str
    issued_at: datetime
    revoked_at: datetime | None
    credentials: list[CredentialOut]


class CredentialIn(Schema):
    kind: Kind
    value: str = Field(
        default="",
        max_length=64,
        description="PIN: 4-8 digits. Tag: UID in hex (4, 7 or 10 bytes). Remote: serial. "
        "Phone: leave empty (the person's account).",
    )


class ScheduleRule(Schema):
    days: list[str] = Field(description="mon, tue, wed, thu, fri, sat, sun")
    start: str = Field(description="HH:MM, local time of the property")
    end: str = Field(description="HH:MM (exclusive); earlier than start means past midnight")


class KeyIn(Schema):
    person_id: int | None = Field(default=None, description="An existing person")
    name: str = Field(default="", max_length=150)
    email: str = Field(default="", max_length=254)
    credentials: list[CredentialIn] = Field(min_length=1, max_length=4)
    valid_from: AwareDatetime | None = None
    valid_until: AwareDatetime | None = None
    schedule: list[ScheduleRule] | None = None
    note: str = Field(default="", max_length=200)


class KeyPage(Schema):
    count: int
    items: list[KeyOut]


class DecisionIn(Schema):
    kind: Kind
    value: str = Field(max_length=254, description="For phone: the account's email address")
    at: AwareDatetime | None = None


class DecisionOut(Schema):
    granted: bool
    outcome: str
    reason: str
    key_id: int | None
    person: str | None
    event_id: int


def key_out(key: Key) -> dict[str, object]:
    return {
        "id": key.pk,
        "lock_id": key.lock_id,
        "person_id": key.person_id,
        "holder_organization_id": key.holder_organization_id,
        "parent_id": key.parent_id,
        "person": key.holder_name,
        "email": key.person.email if key.person else "",
        "status": key.status.value,
        "valid_from": key.valid_from,
        "valid_until": key.valid_until,
        "schedule": key.schedule,
        "note": key.note,
        "issued_at": key.issued_at,
        "revoked_at": key.revoked_at,
        "credentials": [
            {"kind": kc.kind, "display": kc.credential.display, "active": kc.active}
            for kc in key.key_credentials.all()
        ],
    }


@router.get("locks/{lock_id}/keys", response=KeyPage, summary="List and search a lock's keys")
def list_keys(
    request: HttpRequest,
    lock_id: int,
    q: str = "",
    status: str = "live",
    limit: int = param.Query(100, ge=1, le=500),
    offset: int = param.Query(0, ge=0),
) -> dict[str, object]:
    """`status`: live (default: not taken back), active, scheduled, expired,
    revoked, or empty for all. `q` searches name, email, note, tag UID and remote serial."""
    get_lock(actor(request), lock_id, policy.Action.VIEW_KEYS)
    keys = selectors.keys_of_lock(lock_id, q=q, status=status)
    return {"count": keys.count(), "items": [key_out(k) for k in keys[offset : offset + limit]]}


@router.post("locks/{lock_id}/keys", response={201: KeyOut}, summary="Issue a key (R2, R3)")
def issue_key(request: HttpRequest, lock_id: int, body: KeyIn) -> Status[dict[str, object]]:
    """Issue a key to a person (an existing `person_id`, or a `name` and/or
    `email`) with one or more credentials. Errors include `credential_in_use`,
    `key_exists` and `lock_full` (409), `invalid_pin`, `invalid_tag` (400)."""
    spec = services.KeySpec(
        holder=services.HolderSpec(person_id=body.person_id, name=body.name, email=body.email),
        credentials=[services.CredentialSpec(c.kind, c.value) for c in body.credentials],
        valid_from=body.valid_from,
        valid_until=body.valid_until,
        schedule=[r.dict() for r in body.schedule] if body.schedule else None,
        note=body.note,
    )
    key = services.issue_key(actor(request), lock_id, spec)
    return Status(201, key_out(selectors.get_key(actor(request), key.pk)))


@router.get("keys/{key_id}", response=KeyOut, summary="One key")
def get_key(request: HttpRequest, key_id: int) -> dict[str, object]:
    return key_out(selectors.get_key(actor(request), key_id))


@router.post("keys/{key_id}/revoke", response=KeyOut, summary="Take a key back")
def revoke_key(request: HttpRequest, key_id: int) -> dict[str, object]:
    services.revoke_key(actor(request), key_id)
    return key_out(selectors.get_key(actor(request), key_id))


@router.post(
    "locks/{lock_id}/access-decisions",
    response=DecisionOut,
    summary="Check a credential against a lock",
)
def decide(request: HttpRequest, lock_id: int, body: DecisionIn) -> dict[str, object]:
    """Ask the platform whether a credential opens this lock at a moment (default
    now), with the reason when it does not. The decision is written to the event log."""
    lock = get_lock(actor(request), lock_id, policy.Action.MANAGE_KEYS)
    value: str | User = body.value
    if body.kind == "phone":
        found = User.objects.filter(email=body.value.strip().lower()).first()
        if found is None:
            raise InvalidInput("No account uses that email address.", code="user_not_found")
        value = found
    decision = access.decide(lock, body.kind, value, at=body.at, source="api", actor=actor(request))
    return {
        "granted": decision.granted,
        "outcome": decision.outcome,
        "reason": decision.reason,
        "key_id": decision.key.pk if decision.key else None,
        "person": decision.key.holder_name if decision.key else None,
        "event_id": decision.event.pk,
    }
