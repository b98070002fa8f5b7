from __future__ import annotations

import builtins
from typing import Any

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from doorkeep.accounts.models import Organization


class EventKind(models.TextChoices):
    LOCK_REGISTERED = "lock.registered", _("Lock registered")
    LOCK_REMOVED = "lock.removed", _("Lock removed")
    LOCK_CLAIM_FAILED = "lock.claim_failed", _("Lock registration refused")
    LOCK_UPDATED = "lock.updated", _("Lock changed")
    KEY_ISSUED = "key.issued", _("Key issued")
    KEY_REVOKED = "key.revoked", _("Key taken back")
    KEY_UPDATED = "key.updated", _("Key changed")
    ACCESS_GRANTED = "access.granted", _("Access granted")
    ACCESS_DENIED = "access.denied", _("Access denied")
    CODE_REDEEMED = "code.redeemed", _("Prepaid code entered")
    CODE_REFUSED = "code.refused", _("Prepaid code refused")
    ACCOUNT_UPGRADED = "account.upgraded", _("Account upgraded")
    DEVICE_CONNECTED = "device.connected", _("Lock came online")
    DEVICE_DISCONNECTED = "device.disconnected", _("Lock went offline")
    DEVICE_REFUSED = "device.refused", _("Lock connection refused")
    DEVICE_SECRET_ROTATED = "device.secret_rotated", _("Device secret replaced")
    UNLOCK_REQUESTED = "unlock.requested", _("Remote unlock")
    UNLOCK_FAILED = "unlock.failed", _("Remote unlock failed")
    GUEST_POLICY_CHANGED = "guests.policy_changed", _("Guest policy changed")
    INVITATION_SENT = "invitation.sent", _("Guest invited")
    INVITATION_ACCEPTED = "invitation.accepted", _("Guest invitation accepted")
    INVITATION_DECLINED = "invitation.declined", _("Guest invitation declined")
    INVITATION_REVOKED = "invitation.revoked", _("Guest invitation revoked")
    GUEST_UNLOCKED = "guest.unlocked", _("Guest opened")
    PRESENCE_VERIFIED = "presence.verified", _("Guest presence verified")
    PRESENCE_REFUSED = "presence.refused", _("Guest presence not verified")
    PANEL_ADDED = "panel.added", _("Entry panel added")
    PANEL_REMOVED = "panel.removed", _("Entry panel removed")
    UNIT_ADDED = "unit.added", _("Unit added")
    PARKING_SPACE_ADDED = "parking_space.added", _("Parking space added")
    RESIDENT_ADDED = "resident.added", _("Resident added")
    RESIDENT_CHANGED = "resident.changed", _("Resident changed")
    RESIDENTS_IMPORTED = "residents.imported", _("Residents imported")
    BILLING_MODE_CHANGED = "site.billing_mode_changed", _("Billing mode changed")
    BADGE_PRICE_CHANGED = "site.badge_price_changed", _("Price of an extra badge changed")
    LOGIN_REQUESTED = "portal.login_requested", _("Portal login asked for")
    LOGIN_APPROVED = "portal.login_approved", _("Portal login approved")
    LOGIN_REFUSED = "portal.login_refused", _("Portal login refused")
    RESIDENTS_INVITED = "portal.residents_invited", _("Residents invited to the portal")
    BADGE_REQUESTED = "badge.requested", _("Badge requested")
    BADGE_REQUEST_APPROVED = "badge.approved", _("Badge request approved")
    BADGE_REQUEST_REFUSED = "badge.refused", _("Badge request refused")
    BADGE_ASSIGNED = "badge.assigned", _("Badge assigned")
    BADGE_SENT = "badge.sent", _("Badge sent")
    BADGE_ACTIVATED = "badge.activated", _("Badge active")
    BADGE_REGISTERED = "badge.registered", _("Existing badge registered")
    BADGE_LOST = "badge.lost", _("Badge reported lost")
    BADGE_REACTIVATED = "badge.reactivated", _("Badge found and switched on again")
    BADGE_RETURNED = "badge.returned", _("Badge handed back and switched off")
    INSTALLATION_REQUESTED = "installation.requested", _("Charging station requested")
    INSTALLATION_APPROVED = "installation.approved", _("Charging station approved")
    INSTALLATION_DECLINED = "installation.declined", _("Charging station declined")
    INSTALLATION_ORGANIZING = "installation.organizing", _("Installation handed to the platform")
    INSTALLATION_COORDINATING = (
        "installation.coordinating",
        _("Installation coordinated with the owner's electrician"),
    )
    INSTALLATION_SCHEDULED = "installation.scheduled", _("Installation scheduled")
    INSTALLATION_INSTALLED = "installation.installed", _("Charging station installed")
    INSTALLATION_CANCELLED = "installation.cancelled", _("Installation cancelled")
    COLLABORATOR_INVITED = "collaborator.invited", _("Collaborator invited")
    COLLABORATOR_ACCEPTED = "collaborator.accepted", _("Collaborator invitation accepted")
    COLLABORATOR_REVOKED = "collaborator.revoked", _("Collaborator invitation revoked")
    COLLABORATOR_ENDED = "collaborator.ended", _("Collaborator access ended")
    TWO_FACTOR_REQUIREMENT = (
        "organization.two_factor",
        _("Two-factor requirement changed"),
    )
    STATION_REGISTERED = "station.registered", _("Charging station registered")
    STATION_CHANGED = "station.changed", _("Charging station changed")
    STATION_REMOVED = "station.removed", _("Charging station removed")
    STATION_PASSWORD_ROTATED = "station.password_rotated", _("Charging station password replaced")
    STATION_CONNECTED = "station.connected", _("Charging station came online")
    STATION_DISCONNECTED = "station.disconnected", _("Charging station went offline")
    STATION_REFUSED = "station.refused", _("Charging station connection refused")
    STATION_COMMAND = "station.command", _("Command sent to a charging station")
    CHARGING_AUTHORIZED = "charging.authorized", _("Charging allowed")
    CHARGING_REFUSED = "charging.refused", _("Charging refused")
    CHARGING_STARTED = "charging.started", _("Charging started")
    CHARGING_STOPPED = "charging.stopped", _("Charging stopped")
    CHARGING_FLAGGED = "charging.flagged", _("Charging session needs review")
    MACHINE_REGISTERED = "machine.registered", _("Laundry machine registered")
    MACHINE_CHANGED = "machine.changed", _("Laundry machine changed")
    MACHINE_REMOVED = "machine.removed", _("Laundry machine removed")
    MACHINE_SECRET_ROTATED = "machine.secret_rotated", _("Laundry machine secret replaced")
    MACHINE_CONNECTED = "machine.connected", _("Laundry machine came online")
    MACHINE_DISCONNECTED = "machine.disconnected", _("Laundry machine went offline")
    MACHINE_REFUSED = "machine.refused", _("Laundry machine connection refused")
    LAUNDRY_AUTHORIZED = "laundry.authorized", _("Laundry machine released")
    LAUNDRY_REFUSED = "laundry.refused", _("Laundry machine refused")
    LAUNDRY_STARTED = "laundry.started", _("Laundry cycle started")
    LAUNDRY_ENDED = "laundry.ended", _("Laundry cycle ended")
    LAUNDRY_FLAGGED = "laundry.flagged", _("Laundry cycle needs review")
    TARIFF_CHANGED = "tariff.changed", _("Tariff changed")
    BILLING_RUN_DRAFTED = "billing.drafted", _("Billing run drafted")
    BILLING_RUN_FINALIZED = "billing.finalized", _("Billing run finalized")
    INVOICE_PAID = "invoice.paid", _("Invoice paid")
    INVOICE_REMINDED = "invoice.reminded", _("Invoice reminder sent")
    INVOICE_CREDITED = "invoice.credited", _("Credit note issued")
    BANK_FILE_IMPORTED = "bank_file.imported", _("Bank file imported")


class DenyReason(models.TextChoices):
    UNKNOWN_CREDENTIAL = "unknown_credential", _("Unknown credential")
    REVOKED = "revoked", _("Key taken back")
    CREDENTIAL_DEACTIVATED = "credential_deactivated", _("Credential switched off")
    NOT_YET_VALID = "not_yet_valid", _("Before the key's validity window")
    EXPIRED = "expired", _("After the key's validity window")
    OUTSIDE_SCHEDULE = "outside_schedule", _("Outside the key's weekly schedule")
    MALFORMED_CREDENTIAL = "malformed_credential", _("Malformed credential")
    BADGE_LOST = "badge_lost", _("Badge reported lost")
    NOT_A_RESIDENT = "not_a_resident", _("Not a resident of the site")
    PLATFORM_BADGES_ONLY = "platform_badges_only", _("Only the platform's badges work here")
    NOT_THEIR_SPACE = "not_their_space", _("Private station of another parking space")
    MOVED_OUT = "moved_out", _("No longer a resident of the site")


class EventQuerySet(models.QuerySet["Event"]):
    def update(self, **kwargs: Any) -> int:
        raise TypeError("The event log is append-only")

    def delete(self) -> tuple[int, dict[str, int]]:
        raise TypeError("The event log is append-only; events.retention.purge removes old ones")


class Event(models.Model):
    """One row per action: append-only. ``occurred_at`` is when it happened (the
    device's clock for device events), ``received_at`` when the platform stored it."""

    id = models.BigAutoField(primary_key=True)
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=40, choices=EventKind.choices)
    reason = models.CharField(max_length=40, blank=True, default="")
    occurred_at = models.DateTimeField(default=timezone.now)
    received_at = models.DateTimeField(default=timezone.now)
    property = models.ForeignKey(
        "properties.Property", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    lock = models.ForeignKey(
        "locks.Lock", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    station = models.ForeignKey(
        "chargers.Station", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    machine = models.ForeignKey(
        "laundry.Machine", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    person = models.ForeignKey(
        "keys.Person", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    key = models.ForeignKey(
        "keys.Key", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    credential_kind = models.CharField(max_length=10, blank=True, default="")
    summary = models.CharField(max_length=300, blank=True, default="")
    device_seq = models.PositiveBigIntegerField(
        null=True, blank=True, help_text="The lock's own sequence number, for events it uploads"
    )
    data: models.JSONField[Any, Any] = models.JSONField(default=dict, blank=True)

    objects = EventQuerySet.as_manager()

    class Meta:
        ordering = ["-occurred_at", "-id"]
        indexes = [
            models.Index(fields=["lock", "-occurred_at", "-id"], name="event_lock_time"),
            models.Index(fields=["property", "-occurred_at", "-id"], name="event_property_time"),
            models.Index(fields=["organization", "-occurred_at", "-id"], name="event_org_time"),
            models.Index(fields=["person", "-occurred_at", "-id"], name="event_person_time"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["lock", "device_seq"],
                condition=models.Q(device_seq__isnull=False),
                name="device_event_stored_once",
            )
        ]

    def __str__(self) -> str:
        return f"{self.occurred_at:%Y-%m-%d %H:%M:%S} {self.kind} {self.reason}".strip()

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self._state.adding:
            raise TypeError("The event log is append-only")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        raise TypeError("The event log is append-only")

    @builtins.property
    def granted(self) -> bool | None:
        """True for a door that opened (or a lock's own grant), False for a
        refusal, None for anything else (a remote unlock the lock did not
        carry out included: see ``decision`` and ``lock_outcome``)."""
        if self.kind in (EventKind.ACCESS_GRANTED, EventKind.GUEST_UNLOCKED):
            return True
        if self.kind == EventKind.ACCESS_DENIED:
            return False
        return None

    @builtins.property
    def decision(self) -> str | None:
        """The access decision of an attempt: "granted" or "denied"."""
        if self.kind == EventKind.UNLOCK_FAILED:
            return "granted"  # a remote unlock reaches a lock only when granted
        return {True: "granted", False: "denied", None: None}[self.granted]

    @builtins.property
    def lock_outcome(self) -> str | None:
        """What the lock did: "opened", "offline", "no_answer", "refused", or
        "not_sent" (denied by the platform, nothing sent to the lock); None
        when the event is no attempt or the lock's answer is not known (a
        check through the API, remote unlocks recorded before it was kept)."""
        data = self.data if isinstance(self.data, dict) else {}
        if self.kind == EventKind.UNLOCK_FAILED:
            return UNLOCK_OUTCOMES.get(self.reason, "offline")
        if self.kind == EventKind.GUEST_UNLOCKED:
            return "opened"
        if self.kind not in (EventKind.ACCESS_GRANTED, EventKind.ACCESS_DENIED):
            return None
        if data.get("source") == "lock":  # the lock decided and did it
            return "opened" if self.kind == EventKind.ACCESS_GRANTED else "refused"
        if data.get("source") == "remote":
            outcome = data.get("outcome")
            return str(outcome) if outcome else None
        return None


# What the lock did, by the reason of an unlock.failed event.
UNLOCK_OUTCOMES = {
    "lock_offline": "offline",
    "lock_timeout": "no_answer",
    "lock_refused": "refused",
}
