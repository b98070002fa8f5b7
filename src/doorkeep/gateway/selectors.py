"""What the API and the web UI show of a lock as a connected device (E2): the
list version on the platform against the one the lock acknowledged, whether it
is online, and what it last reported."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db.models import Exists, F, OuterRef, QuerySet
from django.utils.translation import gettext as _

from doorkeep import policy
from doorkeep.accounts.models import User
from doorkeep.core.errors import PermissionDenied
from doorkeep.gateway.models import Device, SyncState
from doorkeep.keys.models import CredentialKind, KeyCredential
from doorkeep.locks.models import Lock
from doorkeep.locks.services import get_lock


@dataclass(frozen=True)
class DeviceState:
    lock_id: int
    platform_version: int  # the lock's credential_version
    acked_version: int  # the version the lock acknowledged
    state: SyncState
    online: bool
    last_seen_at: datetime | None
    connected_at: datetime | None
    last_push_at: datetime | None
    firmware: str
    battery: int | None
    clock_offset_ms: int | None
    last_error: str
    secret_set_at: datetime | None

    @property
    def behind(self) -> int:
        """How many versions the lock is behind the platform (0 when synced)."""
        return max(self.platform_version - self.acked_version, 0)


def state_of(lock: Lock, device: Device | None) -> DeviceState:
    """The device state of ``lock`` from its Device row. A lock registered
    before devices existed may have none: it is pending and offline."""
    if device is None:
        return DeviceState(
            lock_id=lock.pk,
            platform_version=lock.credential_version,
            acked_version=0,
            state=SyncState.PENDING,
            online=False,
            last_seen_at=None,
            connected_at=None,
            last_push_at=None,
            firmware="",
            battery=None,
            clock_offset_ms=None,
            last_error="",
            secret_set_at=None,
        )
    return DeviceState(
        lock_id=lock.pk,
        platform_version=lock.credential_version,
        acked_version=device.acked_version,
        state=device.sync_state(lock.credential_version),
        online=device.online,
        last_seen_at=device.last_seen_at,
        connected_at=device.connected_at,
        last_push_at=device.last_push_at,
        firmware=device.firmware,
        battery=device.battery,
        clock_offset_ms=device.clock_offset_ms,
        last_error=device.last_error,
        secret_set_at=device.secret_set_at,
    )


def device_of(lock: Lock) -> DeviceState:
    """The device state of a lock the caller already got through the policy
    (one query)."""
    return state_of(lock, Device.objects.filter(lock_id=lock.pk).first())


def can_see_device(actor: User, lock: Lock) -> bool:
    return policy.can(actor, policy.Action.VIEW_KEYS, lock.organization_id)


def device_state(actor: User, lock_id: int) -> DeviceState:
    """The device state of one lock, for those who see its keys (lock owners
    and building managers). Another organization's lock is not found (404); a
    plain member is refused (403)."""
    lock = get_lock(actor, lock_id)
    if not can_see_device(actor, lock):
        raise PermissionDenied(
            _("Only lock owners and building managers can see the device status of a lock.")
        )
    return device_of(lock)


def _phone_keys(user: User) -> QuerySet[KeyCredential]:
    """The user's live phone credentials on locks (of the lock's current owner)."""
    return KeyCredential.objects.filter(
        kind=CredentialKind.PHONE,
        active=True,
        key__person__user=user,
        key__revoked_at__isnull=True,
        key__lock_owner_id=F("lock__organization_id"),
    )


def holds_phone_key(user: User, lock: Lock) -> bool:
    """Whether ``user`` holds a live phone key on ``lock`` (so may try to open
    it remotely). One query."""
    return _phone_keys(user).filter(lock_id=lock.pk).exists()


def for_lock_page(user: User, lock: Lock) -> tuple[DeviceState, bool]:
    """For the lock page, in one query: the lock's device state, and whether
    ``user`` holds a live phone key on it (the entry's Open button)."""
    row = (
        Lock.objects.filter(pk=lock.pk)
        .select_related("device")
        .annotate(phone_key=Exists(_phone_keys(user).filter(lock_id=OuterRef("pk"))))
        .first()
    )
    if row is None:  # removed meanwhile
        return state_of(lock, None), False
    device: Device | None = getattr(row, "device", None)
    return state_of(lock, device), bool(row.phone_key)
