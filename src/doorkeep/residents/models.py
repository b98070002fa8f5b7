"""Units, parking spaces and residents of a site (seed 002).

A resident is a person living in a unit from a move-in date to an optional
move-out date, both days included. Who is a resident on a given day decides
who may use the site's shared equipment (R42) and, later, who is billed."""

from __future__ import annotations

from datetime import date

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from doorkeep.keys.models import Person
from doorkeep.properties.models import Property


class Unit(models.Model):
    """An apartment (or shop, office) of a site, with the label on its door."""

    property = models.ForeignKey(Property, on_delete=models.CASCADE, related_name="units")
    label = models.CharField(_("unit"), max_length=40)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["label", "id"]
        constraints = [
            models.UniqueConstraint(fields=["property", "label"], name="unit_label_unique_in_site")
        ]

    def __str__(self) -> str:
        return self.label


class ParkingSpace(models.Model):
    """A numbered parking space. A space that belongs to a unit is private to
    that unit's residents (a private charging station there serves only
    them); ``station_serial`` is the serial of the charging station at it."""

    property = models.ForeignKey(Property, on_delete=models.CASCADE, related_name="parking_spaces")
    number = models.CharField(_("parking space"), max_length=20)
    unit = models.ForeignKey(
        Unit, null=True, blank=True, on_delete=models.SET_NULL, related_name="parking_spaces"
    )
    station_serial = models.CharField(_("charging station serial"), max_length=40, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["number", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["property", "number"], name="parking_space_unique_in_site"
            )
        ]

    def __str__(self) -> str:
        return self.number


class ResidencyQuerySet(models.QuerySet["Residency"]):
    def on(self, day: date) -> ResidencyQuerySet:
        """Residencies that include ``day`` (move-in and move-out days included)."""
        return self.filter(move_in__lte=day).filter(Q(move_out__isnull=True) | Q(move_out__gte=day))


class Residency(models.Model):
    """A person living in a unit from ``move_in`` to ``move_out`` (the last
    day lived there; empty while they live there)."""

    unit = models.ForeignKey(Unit, on_delete=models.CASCADE, related_name="residencies")
    person = models.ForeignKey(Person, on_delete=models.CASCADE, related_name="residencies")
    move_in = models.DateField(_("move-in"))
    move_out = models.DateField(_("move-out"), null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    objects = ResidencyQuerySet.as_manager()

    class Meta:
        ordering = ["unit__label", "move_in", "id"]
        verbose_name_plural = "residencies"
        constraints = [
            models.CheckConstraint(
                condition=Q(move_out__isnull=True) | Q(move_out__gte=F("move_in")),
                name="residency_moves_out_after_moving_in",
            )
        ]
        indexes = [models.Index(fields=["person", "move_in"], name="residency_person")]

    def __str__(self) -> str:
        return f"{self.person} in {self.unit}"

    def includes(self, day: date) -> bool:
        return self.move_in <= day and (self.move_out is None or day <= self.move_out)


class LoginRequestStatus(models.TextChoices):
    UNCONFIRMED = "unconfirmed", _("Email address not confirmed yet")
    PENDING = "pending", _("Waiting for the site's manager")
    APPROVED = "approved", _("Approved")
    REFUSED = "refused", _("Refused")


class LoginRequest(models.Model):
    """Someone asked for a portal login from the notice in the building (R40).
    The email address is confirmed first; then the site's manager approves,
    or it is approved at once when the address is a resident's of that unit."""

    property = models.ForeignKey(Property, on_delete=models.CASCADE, related_name="login_requests")
    unit = models.ForeignKey(Unit, on_delete=models.CASCADE, related_name="login_requests")
    name = models.CharField(_("name"), max_length=150)
    email = models.EmailField(_("email address"))
    status = models.CharField(
        max_length=12, choices=LoginRequestStatus.choices, default=LoginRequestStatus.UNCONFIRMED
    )
    token_digest = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(default=timezone.now)
    confirmed_at = models.DateTimeField(null=True, blank=True)
    decided_at = models.DateTimeField(null=True, blank=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    approved_as_resident = models.BooleanField(
        default=False, help_text="Approved at once: the address is a resident's of that unit"
    )
    refusal_reason = models.CharField(max_length=300, blank=True, default="")

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"login request of {self.email} ({self.status})"
