"""Charging-station installations at a resident's parking space (R49).

A resident asks the owner; the owner approves or declines, then asks the
platform to organize the work or names their own electrician for the
platform to coordinate with; the platform schedules it and records the
installed station (its serial at that space)."""

from __future__ import annotations

import builtins

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from doorkeep.accounts.models import Organization
from doorkeep.keys.models import Person
from doorkeep.properties.models import Property
from doorkeep.residents.models import ParkingSpace


class InstallationStatus(models.TextChoices):
    REQUESTED = "requested", _("Requested")
    APPROVED = "approved", _("Approved")
    DECLINED = "declined", _("Declined")
    ORGANIZING = "organizing", _("The platform organizes the installation")
    COORDINATING = "coordinating", _("The platform coordinates with the owner's electrician")
    SCHEDULED = "scheduled", _("Scheduled")
    INSTALLED = "installed", _("Installed")
    CANCELLED = "cancelled", _("Cancelled")


OPEN = (
    InstallationStatus.REQUESTED,
    InstallationStatus.APPROVED,
    InstallationStatus.ORGANIZING,
    InstallationStatus.COORDINATING,
    InstallationStatus.SCHEDULED,
)


class Installation(models.Model):
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    property = models.ForeignKey(Property, on_delete=models.CASCADE, related_name="installations")
    parking_space = models.ForeignKey(
        ParkingSpace, on_delete=models.CASCADE, related_name="installations"
    )
    person = models.ForeignKey(Person, on_delete=models.CASCADE, related_name="installations")
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    wished_power_w = models.PositiveIntegerField(_("wished power (W)"))
    notes = models.CharField(_("notes"), max_length=500, blank=True, default="")
    status = models.CharField(
        max_length=14, choices=InstallationStatus.choices, default=InstallationStatus.REQUESTED
    )
    decline_reason = models.CharField(max_length=300, blank=True, default="")
    electrician_name = models.CharField(max_length=150, blank=True, default="")
    electrician_company = models.CharField(max_length=150, blank=True, default="")
    electrician_email = models.EmailField(blank=True, default="")
    electrician_phone = models.CharField(max_length=40, blank=True, default="")
    scheduled_for = models.DateField(null=True, blank=True)
    station_serial = models.CharField(max_length=40, blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now)
    decided_at = models.DateTimeField(null=True, blank=True)
    handed_at = models.DateTimeField(null=True, blank=True)
    scheduled_at = models.DateTimeField(null=True, blank=True)
    installed_at = models.DateTimeField(null=True, blank=True)
    cancelled_at = models.DateTimeField(null=True, blank=True)
    # Not stored: the installed station's password, set by the step that
    # registers it (services.complete) and shown only in its answer.
    station_password: str | None = None
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["parking_space"],
                condition=Q(status__in=OPEN),
                name="one_open_installation_per_space",
            )
        ]

    def __str__(self) -> str:
        return f"installation at {self.parking_space} ({self.status})"

    @builtins.property
    def is_open(self) -> bool:
        return self.status in OPEN
