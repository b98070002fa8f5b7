"""What the platform knows of each lock as a connected device."""

from __future__ import annotations

import hashlib
from typing import Any

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from doorkeep.locks.models import Lock


class SyncState(models.TextChoices):
    SYNCED = "synced", _("Synced")
    PENDING = "pending", _("Pending")
    FAILED = "failed", _("Failed")


class Device(models.Model):
    """The connection side of a lock: its device secret (only a digest), the
    credential-list version it acknowledged, and its last reported status.

    ``gateway`` and ``gateway_url`` name the gateway process holding the
    connection now (empty when offline), so that commands find it."""

    lock = models.OneToOneField(Lock, on_delete=models.CASCADE, related_name="device")
    secret_digest = models.CharField(max_length=64)
    secret_set_at = models.DateTimeField(default=timezone.now)
    acked_version = models.PositiveBigIntegerField(default=0)
    acked_entries: models.JSONField[Any, Any] = models.JSONField(
        default=dict, blank=True, help_text=_("Fingerprints of the list the device acknowledged")
    )
    last_push_at = models.DateTimeField(null=True, blank=True)
    last_error = models.CharField(max_length=200, blank=True, default="")
    online = models.BooleanField(default=False)
    gateway = models.CharField(max_length=64, blank=True, default="")
    gateway_url = models.CharField(max_length=200, blank=True, default="")
    connected_at = models.DateTimeField(null=True, blank=True)
    last_seen_at = models.DateTimeField(null=True, blank=True)
    firmware = models.CharField(max_length=40, blank=True, default="")
    battery = models.PositiveSmallIntegerField(null=True, blank=True)
    clock_offset_ms = models.BigIntegerField(null=True, blank=True)
    last_device_seq = models.PositiveBigIntegerField(default=0)

    def __str__(self) -> str:
        return f"device of {self.lock}"

    @staticmethod
    def digest_of(secret: str) -> str:
        return hashlib.sha256(("doorkeep.device:" + secret).encode()).hexdigest()

    def sync_state(self, platform_version: int) -> SyncState:
        if self.acked_version >= platform_version:
            return SyncState.SYNCED
        if self.last_error:
            return SyncState.FAILED
        return SyncState.PENDING


class GatewayLease(models.Model):
    """A running gateway's claim to the devices it holds. The gateway renews
    it every quarter of DOORKEEP_GATEWAY_LEASE_SECONDS; once ``expires_at``
    (the database's clock) has passed, the gateways still running record the
    dead one's locks, stations and machines offline (gateway/leases.py)."""

    gateway = models.CharField(primary_key=True, max_length=64)
    url = models.CharField(max_length=200, blank=True, default="")
    started_at = models.DateTimeField()
    renewed_at = models.DateTimeField()
    expires_at = models.DateTimeField(db_index=True)

    def __str__(self) -> str:
        return f"lease of gateway {self.gateway}"
