"""Registering a device the platform keeps a list for (a charging station, a
laundry machine) by the identity it connects with: one rule for all of them.

An identity belongs to one device at a time. A removed device's identity,
registered again by the same organization, is that device back (its history
stays its own); anyone else gets ``taken``. Two registrations of a new
identity at the same moment: the unique index decides, the loser gets
``taken``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from django.db import IntegrityError, models, transaction
from django.db.models import F

from doorkeep.core.errors import Conflict

Device = TypeVar("Device", bound=models.Model)


def claim(
    model: type[Device],
    identity: dict[str, Any],
    *,
    organization_id: int,
    taken: Conflict,
    create: Callable[[], Device],
    bring_back: Callable[[Device], None],
) -> Device:
    """The device registered under ``identity``: brought back, or created.
    Call inside a transaction (the device's row stays locked until it ends)."""
    device: Any = model._default_manager.select_for_update().filter(**identity).first()
    if device is not None:
        if device.removed_at is None or device.organization_id != organization_id:
            raise taken
        bring_back(device)
        return device
    try:
        with transaction.atomic():
            return create()
    except IntegrityError:  # registered at the same moment by someone else
        raise taken from None


def relist(device: Any) -> None:
    """A removed device in use again (its other fields set by the caller):
    what it holds is unknown, so it gets the whole list at its next
    connection."""
    device.removed_at = None
    device.acked_version, device.acked_entries, device.last_error = 0, {}, ""
    device.save()
    type(device)._default_manager.filter(pk=device.pk).update(list_version=F("list_version") + 1)
    device.refresh_from_db(fields=["list_version"])
