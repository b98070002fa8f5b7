"""RFID badges (R42-R48) and the requests that bring them.

A badge is an RFID card of one named person. While it is active it is a
credential of that person (``keys.Credential``, kind tag): it opens the doors
where they hold a key and runs the machines they may use. Losing it switches
that one credential off, which takes it off every device at once (R48)."""

from __future__ import annotations

import builtins

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from doorkeep.accounts.models import Organization
from doorkeep.keys.models import Credential, Person
from doorkeep.properties.models import Property
from doorkeep.residents.models import ParkingSpace


class BadgeSource(models.TextChoices):
    PLATFORM = "platform", _("Issued by the platform")
    THIRD_PARTY = "third_party", _("Existing badge, registered by the owner")


class BadgeStatus(models.TextChoices):
    PENDING = "pending", _("Assigned, not yet handed over")
    ACTIVE = "active", _("Active")
    LOST = "lost", _("Reported lost")
    DEACTIVATED = "deactivated", _("Switched off")


# A badge in one of these states holds its UID in its organization: two
# people never share a badge. A switched-off badge (returned) frees it.
HOLDS_UID = (BadgeStatus.PENDING, BadgeStatus.ACTIVE, BadgeStatus.LOST)


class Badge(models.Model):
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    person = models.ForeignKey(Person, on_delete=models.CASCADE, related_name="badges")
    uid = models.CharField(_("UID"), max_length=20)
    source = models.CharField(max_length=12, choices=BadgeSource.choices)
    card_type = models.CharField(max_length=40, blank=True, default="")
    atqa = models.CharField(_("ATQA"), max_length=4, blank=True, default="")
    sak = models.CharField(_("SAK"), max_length=2, blank=True, default="")
    status = models.CharField(max_length=12, choices=BadgeStatus.choices)
    credential = models.OneToOneField(
        Credential, null=True, blank=True, on_delete=models.SET_NULL, related_name="badge"
    )
    created_at = models.DateTimeField(default=timezone.now)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    activated_at = models.DateTimeField(null=True, blank=True)
    lost_at = models.DateTimeField(null=True, blank=True)
    lost_reported_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "uid"],
                condition=Q(status__in=HOLDS_UID),
                name="badge_uid_held_once",
            )
        ]

    def __str__(self) -> str:
        return f"badge {self.uid} of {self.person}"

    @property
    def is_active(self) -> bool:
        return self.status == BadgeStatus.ACTIVE


class RequestStatus(models.TextChoices):
    REQUESTED = "requested", _("Requested")
    APPROVED = "approved", _("Approved")
    ASSIGNED = "assigned", _("Badge assigned")
    SENT = "sent", _("Sent")
    ACTIVE = "active", _("Active")
    REFUSED = "refused", _("Refused")


class Delivery(models.TextChoices):
    HANDED_OVER = "handed_over", _("Handed over")
    SENT = "sent", _("Sent by post")


class BadgeRequest(models.Model):
    """A resident's request for a badge, worked by the platform operator:
    requested → approved → assigned (a UID) → sent → active, or refused.
    A badge handed over in person is active at once. The first badge of a
    resident is included; an extra one costs the site's price, which the
    resident confirmed when asking (R44) and which is billed to them."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    property = models.ForeignKey(Property, on_delete=models.CASCADE, related_name="badge_requests")
    person = models.ForeignKey(Person, on_delete=models.CASCADE, related_name="badge_requests")
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    status = models.CharField(
        max_length=12, choices=RequestStatus.choices, default=RequestStatus.REQUESTED
    )
    extra = models.BooleanField(default=False)
    price_minor = models.PositiveIntegerField(default=0)
    currency = models.CharField(max_length=3, default="EUR")
    parking_space = models.ForeignKey(
        ParkingSpace, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    station_serial = models.CharField(max_length=40, blank=True, default="")
    note = models.CharField(max_length=300, blank=True, default="")
    replaces = models.ForeignKey(
        Badge, null=True, blank=True, on_delete=models.SET_NULL, related_name="replaced_by"
    )
    badge = models.OneToOneField(
        Badge, null=True, blank=True, on_delete=models.SET_NULL, related_name="request"
    )
    delivery = models.CharField(max_length=12, choices=Delivery.choices, blank=True, default="")
    refusal_reason = models.CharField(max_length=300, blank=True, default="")
    handled_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    approved_at = models.DateTimeField(null=True, blank=True)
    assigned_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    activated_at = models.DateTimeField(null=True, blank=True)
    refused_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["status", "created_at"], name="badge_request_queue")]

    def __str__(self) -> str:
        return f"badge request {self.pk} of {self.person} ({self.status})"

    @builtins.property
    def is_open(self) -> bool:
        return self.status not in (RequestStatus.ACTIVE, RequestStatus.REFUSED)
