from __future__ import annotations

from datetime import datetime
from typing import Literal

from django.http import HttpRequest
from django.utils.translation import gettext as _
from ninja import Router, Schema, Status
from ninja.params import functions as param
from pydantic import AwareDatetime, Field

from doorkeep import policy
from doorkeep.accounts.models import User
from doorkeep.api.util import actor
from doorkeep.core.errors import InvalidInput, PermissionDenied
from doorkeep.keys import access, selectors, services, sharing
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


class KeyPatch(Schema):
    valid_from: AwareDatetime | None = None
    valid_until: AwareDatetime | None = None
    schedule: list[ScheduleRule] | None = None
    note: str | None = Field(default=None, max_length=200)


class OrganizationKeyIn(Schema):
    organization_id: int = Field(description="See GET organizations/registered")
    valid_from: AwareDatetime | None = None
    valid_until: AwareDatetime | None = None
    note: str = Field(default="", max_length=200)


class RegisteredOrganizationOut(Schema):
    id: int
    name: str


class SharedKeyOut(Schema):
    id: int
    lock_id: int
    lock: str
    serial: str
    lock_owner: str = Field(description="The organization that owns the lock")
    organization_id: int | None = Field(description="Your organization, which holds the key")
    organization: str
    property: str | None
    entry: str | None
    status: str
    valid_from: datetime | None
    valid_until: datetime | None
    note: str
    issued_at: datetime
    live_keys: int = Field(description="Live keys your organization issued under it")


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
    event_id: int | None = Field(
        description="The attempt's event; null for a check at another moment (`at`), "
        "which is not an attempt and is not written to the log"
    )


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
    key = services.issue_key(actor(request), lock_id, _spec(body))
    return Status(201, key_out(selectors.get_key(actor(request), key.pk)))


def _spec(body: KeyIn) -> services.KeySpec:
    return services.KeySpec(
        holder=services.HolderSpec(person_id=body.person_id, name=body.name, email=body.email),
        credentials=[services.CredentialSpec(c.kind, c.value) for c in body.credentials],
        valid_from=body.valid_from,
        valid_until=body.valid_until,
        schedule=[r.dict() for r in body.schedule] if body.schedule else None,
        note=body.note,
    )


@router.get("keys/{key_id}", response=KeyOut, summary="One key")
def get_key(request: HttpRequest, key_id: int) -> dict[str, object]:
    return key_out(selectors.get_key(actor(request), key_id))


@router.patch("keys/{key_id}", response=KeyOut, summary="Change a key (needs full management)")
def update_key(request: HttpRequest, key_id: int, body: KeyPatch) -> dict[str, object]:
    """Change a live key's validity window, weekly schedule and note. A field
    left out keeps its value; `null` clears it (an open start or end, no
    schedule). For a key issued under an organization's key, an open end takes
    the end of the organization's key.

    Errors: `management_ended` (403: the lock is in take-back-only mode; enter
    a management code to restore it), `already_revoked` (409),
    `invalid_window`, `invalid_schedule`, `outside_shared_window` (400), and
    for a key issued under an organization's key `shared_management_inactive`
    (403), `shared_key_revoked` (409)."""
    given = body.model_fields_set
    keep = services.KEEP  # what was left out keeps the key's value, read under lock
    services.update_key(
        actor(request),
        key_id,
        valid_from=body.valid_from if "valid_from" in given else keep,
        valid_until=body.valid_until if "valid_until" in given else keep,
        schedule=(
            ([r.dict() for r in body.schedule] if body.schedule else None)
            if "schedule" in given
            else keep
        ),
        note=(body.note or "") if "note" in given else None,
    )
    return key_out(selectors.get_key(actor(request), key_id))


@router.post("keys/{key_id}/revoke", response=KeyOut, summary="Take a key back")
def revoke_key(request: HttpRequest, key_id: int) -> dict[str, object]:
    """Take a key back; always possible, also in take-back-only mode (R6).
    Taking back an organization's key takes back every key issued under it, at
    once. Errors: `already_revoked` (409)."""
    services.revoke_key(actor(request), key_id)
    return key_out(selectors.get_key(actor(request), key_id))


# --- shared management (R10, R11) ---------------------------------------------------------------


@router.get(
    "organizations/registered",
    response=list[RegisteredOrganizationOut],
    summary="Organizations that can receive keys",
)
def registered_organizations(
    request: HttpRequest, q: str = "", limit: int = param.Query(50, ge=1, le=200)
) -> list[dict[str, object]]:
    """Organizations registered on the platform with organization management,
    to which a lock owner can issue a key for shared management; `q` searches
    their names. For lock owners and building managers (403 for others)."""
    user = actor(request)
    if not policy.organizations(user, policy.Action.MANAGE_KEYS).exists():
        raise PermissionDenied(
            _("Only lock owners and building managers can issue or take back keys.")
        )
    return [{"id": o.pk, "name": o.name} for o in sharing.registered_organizations(q)[:limit]]


@router.post(
    "locks/{lock_id}/organization-keys",
    response={201: KeyOut},
    summary="Issue a key to an organization (R10, R11)",
)
def issue_key_to_organization(
    request: HttpRequest, lock_id: int, body: OrganizationKeyIn
) -> Status[dict[str, object]]:
    """Give a key for shared management to an organization registered on the
    platform (see GET organizations/registered). Its lock owners and building
    managers then issue and take back keys for their own people on this lock,
    within this key's window. Needs the lock's option "issue keys to
    organizations", which works only while paid 5-year management runs.

    Errors: `management_ended` (403), `shared_management_inactive` (403: the
    option is not running), `organization_not_found` (404: no organization with
    organization management has that id), `own_organization`,
    `invalid_window` (400), `key_exists`, `no_keys_available` (409)."""
    user = actor(request)
    key = sharing.issue_key_to_organization(
        user,
        lock_id,
        body.organization_id,
        valid_from=body.valid_from,
        valid_until=body.valid_until,
        note=body.note,
    )
    return Status(201, key_out(selectors.get_key(user, key.pk)))


@router.get(
    "shared-keys",
    response=list[SharedKeyOut],
    summary="Keys your organizations received for shared management",
)
def list_shared_keys(request: HttpRequest) -> list[dict[str, object]]:
    """The live keys that lock owners gave to organizations you are a member
    of, with the lock, its place, the window and how many live keys were issued
    under each."""
    return [_shared_key_out(k) for k in sharing.shared_with(actor(request))]


@router.get(
    "shared-keys/{shared_key_id}/keys",
    response=KeyPage,
    summary="Keys your organization issued under a shared key",
)
def list_keys_under(
    request: HttpRequest,
    shared_key_id: int,
    status: Literal["live", "revoked", ""] = "live",
    limit: int = param.Query(100, ge=1, le=500),
    offset: int = param.Query(0, ge=0),
) -> dict[str, object]:
    """`status`: live (default), revoked, or empty for all. For lock owners and
    building managers of the organization that holds the key (403 for its
    other members, 404 for anyone else)."""
    user = actor(request)
    parent = sharing.get_shared_key(user, shared_key_id)
    policy.require(user, policy.Action.VIEW_KEYS, parent.holder_organization_id, what=_("Key"))
    keys = selectors.keys_under(parent.pk)
    if status == "live":
        keys = keys.filter(revoked_at__isnull=True)
    elif status == "revoked":
        keys = keys.filter(revoked_at__isnull=False)
    return {"count": keys.count(), "items": [key_out(k) for k in keys[offset : offset + limit]]}


@router.post(
    "shared-keys/{shared_key_id}/keys",
    response={201: KeyOut},
    summary="Issue a key under a shared key (R11)",
)
def issue_key_under(
    request: HttpRequest, shared_key_id: int, body: KeyIn
) -> Status[dict[str, object]]:
    """Issue a key on the shared key's lock to one of your organization's
    people, as for POST locks/{id}/keys. The key lies within the shared key's
    window: an open start or end takes the shared key's. For lock owners and
    building managers of the organization that holds the key.

    Errors: as for POST locks/{id}/keys, and `outside_shared_window` (400),
    `management_ended` (403: the lock's management ended),
    `shared_management_inactive` (403: the lock's option is not running),
    `shared_key_revoked` (409: the lock owner took the key back),
    `shared_key_not_valid` (409: outside the shared key's window),
    `no_keys_available` (409)."""
    user = actor(request)
    parent = sharing.get_shared_key(user, shared_key_id)
    key = services.issue_key(user, parent.lock_id, _spec(body), parent_key_id=parent.pk)
    return Status(201, key_out(selectors.get_key(user, key.pk)))


def _shared_key_out(key: Key) -> dict[str, object]:
    entry = key.lock.entry
    return {
        "id": key.pk,
        "lock_id": key.lock_id,
        "lock": key.lock.name or key.lock.serial,
        "serial": key.lock.serial,
        "lock_owner": key.lock_owner.name,
        "organization_id": key.holder_organization_id,
        "organization": key.holder_organization.name if key.holder_organization else "",
        "property": entry.property.name if entry else None,
        "entry": entry.name if entry else None,
        "status": key.status.value,
        "valid_from": key.valid_from,
        "valid_until": key.valid_until,
        "note": key.note,
        "issued_at": key.issued_at,
        "live_keys": getattr(key, "live_children", 0),
    }


@router.post(
    "locks/{lock_id}/access-decisions",
    response=DecisionOut,
    summary="Check a credential against a lock",
)
def decide(request: HttpRequest, lock_id: int, body: DecisionIn) -> dict[str, object]:
    """Ask the platform whether a credential opens this lock at a moment (default
    now), with the reason when it does not. Asked for now, the decision is an
    attempt and is written to the event log; asked for another moment (`at`),
    it is a what-if check: answered, not written (`event_id` null)."""
    lock = get_lock(actor(request), lock_id, policy.Action.MANAGE_KEYS)
    value: str | User = body.value
    if body.kind == "phone":
        found = User.objects.filter(email=body.value.strip().lower()).first()
        if found is None:
            raise InvalidInput("No account uses that email address.", code="user_not_found")
        value = found
    if body.at is not None:  # what-if: not an attempt at that moment
        verdict = access.judge(lock, body.kind, value, at=body.at)
        granted, reason, key, event_id = verdict.granted, verdict.reason, verdict.key, None
    else:
        decision = access.decide(lock, body.kind, value, source="api", actor=actor(request))
        granted, reason, key = decision.granted, decision.reason, decision.key
        event_id = decision.event.pk
    return {
        "granted": granted,
        "outcome": "granted" if granted else "denied",
        "reason": reason,
        "key_id": key.pk if key else None,
        "person": key.holder_name if key else None,
        "event_id": event_id,
    }
