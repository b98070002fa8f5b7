"""Remote unlock (R25) and the device side of a lock (E2): its sync state and
its device secret."""

from __future__ import annotations

from datetime import datetime

from django.http import HttpRequest
from ninja import Router, Schema
from pydantic import Field

from doorkeep.api.contract import ErrorOut as ErrorOut  # the apps' api.py import it from here
from doorkeep.api.util import actor
from doorkeep.gateway import remote, selectors, services

router = Router(tags=["devices and remote unlock"])


class UnlockOut(Schema):
    opened: bool = Field(description="Always true: a failure is an error response")
    entry_id: int
    lock_id: int = Field(description="The lock that opened (the first, when several did)")
    lock_ids: list[int] = Field(
        description="Every lock of the entry that opened: an entry may have several, and the "
        "command goes to each that your key opens"
    )
    request_id: str = Field(description="Also in the event log, to match the lock's answer")


class DoorOut(Schema):
    id: int = Field(description="The entry's id, for POST /entries/{id}/unlock")
    name: str
    property_id: int
    property: str


class DeviceOut(Schema):
    lock_id: int
    platform_version: int = Field(description="The version of the lock's list on the platform")
    acked_version: int = Field(description="The version the lock acknowledged")
    state: str = Field(
        description="synced: the lock has the platform's list; pending: a newer list is on its "
        "way (or the lock is offline); failed: the last push was not acknowledged"
    )
    online: bool
    last_seen_at: datetime | None
    connected_at: datetime | None = Field(description="When the current (or last) connection began")
    firmware: str
    battery: int | None = Field(description="Percent, as the lock reported it")
    clock_offset_ms: int | None = Field(
        description="The lock's clock minus the platform's, in milliseconds"
    )
    last_error: str
    secret_set_at: datetime | None = Field(description="When the device secret was issued")


class DeviceSecretOut(Schema):
    device_secret: str = Field(description="The lock's new device secret, shown only this once")
    note: str


def device_out(state: selectors.DeviceState) -> dict[str, object]:
    return {
        "lock_id": state.lock_id,
        "platform_version": state.platform_version,
        "acked_version": state.acked_version,
        "state": str(state.state),
        "online": state.online,
        "last_seen_at": state.last_seen_at,
        "connected_at": state.connected_at,
        "firmware": state.firmware,
        "battery": state.battery,
        "clock_offset_ms": state.clock_offset_ms,
        "last_error": state.last_error,
        "secret_set_at": state.secret_set_at,
    }


UNLOCK_ERRORS: dict[int, type[Schema]] = {
    403: ErrorOut,
    404: ErrorOut,
    409: ErrorOut,
    503: ErrorOut,
    504: ErrorOut,
}


@router.post(
    "entries/{entry_id}/unlock",
    response={200: UnlockOut, **UNLOCK_ERRORS},
    summary="Open an entry remotely (R25)",
)
def unlock(request: HttpRequest, entry_id: int) -> dict[str, object]:
    """Open an entry with your phone key: the platform checks your key (its
    window and weekly schedule too), sends the command to the lock and waits a
    few seconds for the lock's answer. An entry with several locks: the
    command goes to each lock there that your key opens, and the call
    succeeds when at least one opened (`lock_ids`). Every attempt is one
    event in the log, with what the lock did.

    Errors: `not_found` (404) for an entry that does not exist or that you
    cannot open or see; `access_denied` (403) with the reason (no phone key,
    key taken back or expired, outside its schedule...); `lock_offline` (503)
    when the lock is not connected; `lock_timeout` (504) when it did not
    answer in time; `lock_refused` (409) when the lock said no (with several
    locks, these only when none opened: the most telling of their answers)."""
    result = remote.remote_unlock(actor(request), entry_id)
    return {
        "opened": True,
        "entry_id": result.entry_id,
        "lock_id": result.lock_id,
        "lock_ids": list(result.lock_ids),
        "request_id": result.request_id,
    }


@router.get("me/entries", response=list[DoorOut], summary="The entries you can open by phone")
def my_entries(request: HttpRequest) -> list[dict[str, object]]:
    """The entries where you hold a phone key, each to open with
    POST /entries/{id}/unlock."""
    return [
        {
            "id": entry.pk,
            "name": entry.name,
            "property_id": entry.property_id,
            "property": entry.property.name,
        }
        for entry in remote.entries_for(actor(request))
    ]


@router.get("locks/{lock_id}/device", response=DeviceOut, summary="A lock's device and sync state")
def lock_device(request: HttpRequest, lock_id: int) -> dict[str, object]:
    """Whether the lock is online, and whether it has the platform's list of
    credentials (E2): `platform_version` against `acked_version`, and
    `state` pending / synced / failed. For lock owners and building managers
    (403 `forbidden` for other members)."""
    return device_out(selectors.device_state(actor(request), lock_id))


@router.post(
    "locks/{lock_id}/device-secret",
    response={200: DeviceSecretOut},
    summary="Issue a new device secret",
)
def rotate_device_secret(request: HttpRequest, lock_id: int) -> dict[str, object]:
    """Replace the lock's device secret, for example when a lock is replaced or
    the secret may have leaked. The old secret stops working: a lock that
    connects with it is refused. Shown only in this answer; enter it in the
    lock. For lock owners (403 `forbidden` for others)."""
    secret = services.rotate_device_secret(actor(request), lock_id)
    return {"device_secret": secret, "note": "shown once"}
