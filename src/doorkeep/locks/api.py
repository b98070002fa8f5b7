from __future__ import annotations

from datetime import datetime

from django.http import HttpRequest
from ninja import Router, Schema, Status
from pydantic import Field

from doorkeep.api.util import actor
from doorkeep.keys.selectors import live_key_count
from doorkeep.locks import selectors, services
from doorkeep.locks.models import Lock

router = Router(tags=["locks"])


class LockOut(Schema):
    id: int
    serial: str
    name: str
    model_name: str
    organization_id: int | None
    property_id: int | None
    property: str | None
    entry_id: int | None
    entry: str | None
    registered_at: datetime | None
    credential_version: int
    live_keys: int
    device_secret: str | None = Field(
        default=None,
        description="Only in the answer to registering the lock: the secret the lock connects "
        "to the platform with. Shown only this once; a new one can be issued later.",
    )
    note: str | None = Field(
        default=None,
        description="Only in the answer to registering or moving the lock, when its entry has "
        "other locks: what that means for remote unlock and keys",
    )


class RegisterIn(Schema):
    serial: str = Field(min_length=1, max_length=64, description="As printed on the lock")
    claim_secret: str = Field(min_length=1, max_length=64, description="From the lock's card")
    entry_id: int = Field(description="The entry (door) where the lock is placed")
    name: str = Field(default="", max_length=150)


class LockPatch(Schema):
    name: str | None = Field(default=None, max_length=150)
    entry_id: int | None = None


def lock_out(lock: Lock, live_keys: int | None = None) -> dict[str, object]:
    entry = lock.entry
    return {
        "id": lock.pk,
        "serial": lock.serial,
        "name": lock.name,
        "model_name": lock.model_name,
        "organization_id": lock.organization_id,
        "property_id": entry.property_id if entry else None,
        "property": entry.property.name if entry else None,
        "entry_id": lock.entry_id,
        "entry": entry.name if entry else None,
        "registered_at": lock.registered_at,
        "credential_version": lock.credential_version,
        "live_keys": live_keys
        if live_keys is not None
        else (lock.live_keys if hasattr(lock, "live_keys") else live_key_count(lock.pk)),
    }


@router.get("locks", response=list[LockOut], summary="List your locks")
def list_locks(
    request: HttpRequest, q: str = "", property_id: int | None = None
) -> list[dict[str, object]]:
    return [
        lock_out(lock) for lock in selectors.locks_for(actor(request), q=q, property_id=property_id)
    ]


@router.post("locks", response={201: LockOut}, summary="Register a lock (R1)")
def register_lock(request: HttpRequest, body: RegisterIn) -> Status[dict[str, object]]:
    """Register a lock with the serial number and claim secret that come with
    it, placing it at an entry. The answer holds the lock's `device_secret`,
    shown only this once: enter it in the lock so that it can connect. Errors:
    `unknown_serial` (404), `wrong_claim_secret` (400), `already_registered`
    and `registered_to_other` (409), `rate_limited` (429) after repeated wrong
    secrets. When the entry has other locks, `note` says what that means: a
    remote unlock of the entry goes to each lock there that the person's key
    opens, and keys are per lock."""
    lock = services.register_lock(
        actor(request),
        serial=body.serial,
        claim_secret=body.claim_secret,
        entry_id=body.entry_id,
        name=body.name,
    )
    out = lock_out(services.get_lock(actor(request), lock.pk), live_keys=0)
    out["device_secret"] = getattr(lock, "new_device_secret", None)
    out["note"] = selectors.entry_note(lock) or None
    return Status(201, out)


@router.get("locks/{lock_id}", response=LockOut, summary="One lock")
def get_lock(request: HttpRequest, lock_id: int) -> dict[str, object]:
    return lock_out(services.get_lock(actor(request), lock_id))


@router.patch("locks/{lock_id}", response=LockOut, summary="Rename or move a lock")
def update_lock(request: HttpRequest, lock_id: int, body: LockPatch) -> dict[str, object]:
    services.update_lock(actor(request), lock_id, name=body.name, entry_id=body.entry_id)
    lock = services.get_lock(actor(request), lock_id)
    out = lock_out(lock)
    if body.entry_id is not None:
        out["note"] = selectors.entry_note(lock) or None
    return out


@router.delete("locks/{lock_id}", response={204: None}, summary="Remove a lock")
def remove_lock(request: HttpRequest, lock_id: int) -> Status[None]:
    """Remove the lock from your account. Its keys are taken back; its event
    log stays readable in your organization's log."""
    services.remove_lock(actor(request), lock_id)
    return Status(204, None)
