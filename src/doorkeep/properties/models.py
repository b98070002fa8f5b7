from __future__ import annotations

import zoneinfo

from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone as dj_timezone
from django.utils.translation import gettext_lazy as _

from doorkeep.accounts.models import Organization

UTC_ZONE = zoneinfo.ZoneInfo("UTC")


def zone_of(prop: Property | None) -> zoneinfo.ZoneInfo:
    """The time zone dates of this property are read and shown in (UTC without
    a property, or for a name this machine does not know)."""
    if prop is None:
        return UTC_ZONE
    try:
        return zoneinfo.ZoneInfo(prop.timezone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return UTC_ZONE


def validate_timezone(value: str) -> None:
    if value not in zoneinfo.available_timezones():
        raise ValidationError(_("%(value)s is not a known time zone"), params={"value": value})


class BillingMode(models.TextChoices):
    """Who bills the use of a site's shared equipment (R47)."""

    BILLING_AND_PAYMENTS = "billing_and_payments", _("Billing and payments")
    INDIVIDUAL_STATEMENTS = "individual_statements", _("Individual statements")


class Currency(models.TextChoices):
    CHF = "CHF", "CHF"
    EUR = "EUR", "EUR"


class Property(models.Model):
    """A site or building with entries (doors), units, parking spaces and
    shared equipment. The billing mode decides who bills the equipment's use
    and which badges may run it (R47); doors are not governed by it."""

    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="properties"
    )
    name = models.CharField(_("name"), max_length=150)
    address = models.CharField(_("address"), max_length=300, blank=True)
    timezone = models.CharField(
        _("time zone"), max_length=64, default="Europe/Amsterdam", validators=[validate_timezone]
    )
    created_at = models.DateTimeField(default=dj_timezone.now)
    billing_mode = models.CharField(
        _("billing mode"),
        max_length=24,
        choices=BillingMode.choices,
        default=BillingMode.INDIVIDUAL_STATEMENTS,
    )
    currency = models.CharField(
        _("currency"), max_length=3, choices=Currency.choices, default=Currency.EUR
    )
    extra_badge_price_minor = models.PositiveIntegerField(
        _("price of an extra badge"),
        default=0,
        help_text=_("In minor units (cents) of the site's currency (R44)."),
    )
    portal_code = models.CharField(
        max_length=8,
        unique=True,
        null=True,
        blank=True,
        help_text=_("The code on the notice in the building, to ask for a portal login (R40)."),
    )

    class Meta:
        verbose_name_plural = "properties"
        ordering = ["name", "id"]

    def __str__(self) -> str:
        return self.name


class Entry(models.Model):
    """A door, gate or barrier of a property. Locks are placed at entries."""

    property = models.ForeignKey(Property, on_delete=models.CASCADE, related_name="entries")
    name = models.CharField(_("name"), max_length=150)
    created_at = models.DateTimeField(default=dj_timezone.now)

    class Meta:
        verbose_name_plural = "entries"
        ordering = ["name", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["property", "name"], name="entry_name_unique_in_property"
            )
        ]

    def __str__(self) -> str:
        return f"{self.property.name} · {self.name}"
