"""Tariffs, the record of use, billing runs, invoices, payments (issue 14).

Money is an integer number of minor units (cents, Rappen) with a currency;
energy an integer number of Wh; a VAT rate an integer number of basis points
(810 is 8.1 %). Prices are what the resident pays, VAT included.

* A **tariff** is a site's price list from a day to an optional last day
  (dates of the site's time zone); two tariffs of a site never overlap.
* A **use** (a charging session, a laundry cycle, an extra badge) is written
  once, with a unique source, when it is over, priced there and then by the
  tariff in force when it started: it keeps that price whatever the tariffs
  do later (decision 15).
* A **billing run** bills a site's month: one invoice per resident, each use
  at most once (``Use.invoice_line`` is set once, by a conditional update).
  A finalized invoice never changes; a correction is a credit note. Finalized
  invoices and credit notes are numbered without gaps per issuer."""

from __future__ import annotations

import builtins
from datetime import date
from typing import Any

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from doorkeep.accounts.models import Organization
from doorkeep.properties.models import Property

# A rate per kWh is in ten-thousandths of the currency (0.2735 CHF/kWh is
# 2735): finer than a cent, as electricity prices are.
RATE_SCALE = 10_000
# VAT rates are in basis points: 810 is 8.1 %.
VAT_SCALE = 10_000


class Tariff(models.Model):
    property = models.ForeignKey(Property, on_delete=models.CASCADE, related_name="tariffs")
    valid_from = models.DateField(_("valid from"))
    valid_until = models.DateField(_("valid until"), null=True, blank=True)
    currency = models.CharField(_("currency"), max_length=3)
    vat_rate = models.PositiveIntegerField(
        _("VAT rate"), help_text=_("In basis points: 810 is 8.1 %.")
    )
    # Charging, per kWh; a low rate applies outside the high-tariff hours.
    charging_rate = models.PositiveIntegerField(_("charging, per kWh"), default=0)
    charging_low_rate = models.PositiveIntegerField(
        _("charging, per kWh in low-tariff hours"), null=True, blank=True
    )
    high_days = models.CharField(
        _("high-tariff days"),
        max_length=7,
        blank=True,
        default="12345",
        help_text=_("ISO weekday numbers, 1 is Monday."),
    )
    high_start = models.TimeField(_("high tariff from"), null=True, blank=True)
    high_end = models.TimeField(_("high tariff until"), null=True, blank=True)
    # Laundry: per cycle, plus per kWh; a machine or a program may have its own.
    laundry_cycle_price = models.PositiveIntegerField(_("laundry, per cycle"), default=0)
    laundry_rate = models.PositiveIntegerField(_("laundry, per kWh"), default=0)
    # Fixed monthly fee per resident, and the price of an extra badge (R44).
    monthly_fee = models.PositiveIntegerField(_("monthly fee"), default=0)
    monthly_fee_label = models.CharField(
        _("monthly fee label"), max_length=80, blank=True, default=""
    )
    extra_badge_price = models.PositiveIntegerField(_("extra badge"), default=0)
    created_at = models.DateTimeField(default=timezone.now)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["property_id", "valid_from"]
        constraints = [
            models.UniqueConstraint(fields=["property", "valid_from"], name="tariff_start_once"),
            models.CheckConstraint(
                condition=Q(valid_until__isnull=True) | Q(valid_until__gte=models.F("valid_from")),
                name="tariff_ends_after_start",
            ),
        ]

    def __str__(self) -> str:
        return f"tariff of {self.property_id} from {self.valid_from}"

    def covers(self, day: date) -> bool:
        return self.valid_from <= day and (self.valid_until is None or day <= self.valid_until)


class LaundryPrice(models.Model):
    """A price of its own for a machine, a program, or a program on a machine."""

    tariff = models.ForeignKey(Tariff, on_delete=models.CASCADE, related_name="laundry_prices")
    machine = models.ForeignKey(
        "laundry.Machine", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    program = models.CharField(_("program"), max_length=40, blank=True, default="")
    cycle_price = models.PositiveIntegerField(_("per cycle"), default=0)
    rate = models.PositiveIntegerField(_("per kWh"), default=0)

    class Meta:
        ordering = ["tariff_id", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["tariff", "machine", "program"],
                name="laundry_price_once",
            ),
            models.CheckConstraint(
                condition=Q(machine__isnull=False) | ~Q(program=""),
                name="laundry_price_names_something",
            ),
        ]

    def __str__(self) -> str:
        return f"laundry price {self.machine_id or ''} {self.program}".strip()


class UseKind(models.TextChoices):
    CHARGING = "charging", _("Charging")
    LAUNDRY = "laundry", _("Laundry")
    BADGE = "badge", _("Extra badge")


class Use(models.Model):
    """One use of the site's equipment or services, written once when it is
    over, with its price. It belongs to the person whose badge or phone
    started it, and to the unit they lived in on that day."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    property = models.ForeignKey(Property, on_delete=models.CASCADE, related_name="uses")
    kind = models.CharField(max_length=10, choices=UseKind.choices)
    charging_session = models.OneToOneField(
        "chargers.ChargingSession",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="use",
    )
    cycle = models.OneToOneField(
        "laundry.Cycle", null=True, blank=True, on_delete=models.PROTECT, related_name="use"
    )
    badge_request = models.OneToOneField(
        "badges.BadgeRequest", null=True, blank=True, on_delete=models.PROTECT, related_name="use"
    )
    person = models.ForeignKey(
        "keys.Person", null=True, blank=True, on_delete=models.SET_NULL, related_name="uses"
    )
    unit = models.ForeignKey(
        "residents.Unit", null=True, blank=True, on_delete=models.SET_NULL, related_name="uses"
    )
    started_at = models.DateTimeField()
    ended_at = models.DateTimeField(null=True, blank=True)
    day = models.DateField(help_text="The day it started, in the site's time zone")
    label = models.CharField(max_length=150, blank=True, default="")
    energy_wh = models.BigIntegerField(default=0)
    tariff = models.ForeignKey(
        Tariff, null=True, blank=True, on_delete=models.PROTECT, related_name="uses"
    )
    currency = models.CharField(max_length=3)
    amount = models.BigIntegerField(default=0, help_text="Minor units, VAT included")
    vat_rate = models.PositiveIntegerField(default=0)
    pricing: models.JSONField[Any, Any] = models.JSONField(default=dict, blank=True)
    invoice_line = models.ForeignKey(
        "billing.InvoiceLine", null=True, blank=True, on_delete=models.SET_NULL, related_name="uses"
    )
    by_statement = models.BooleanField(
        default=False,
        help_text="Recorded while the site used individual statements: the owner collects it, "
        "it is never invoiced",
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["started_at", "id"]
        constraints = [
            models.CheckConstraint(
                condition=(
                    Q(
                        kind="charging",
                        charging_session__isnull=False,
                        cycle__isnull=True,
                        badge_request__isnull=True,
                    )
                    | Q(
                        kind="laundry",
                        cycle__isnull=False,
                        charging_session__isnull=True,
                        badge_request__isnull=True,
                    )
                    | Q(
                        kind="badge",
                        badge_request__isnull=False,
                        charging_session__isnull=True,
                        cycle__isnull=True,
                    )
                ),
                name="use_has_one_source",
            )
        ]
        indexes = [
            models.Index(fields=["person", "day"], name="use_person_day"),
            models.Index(fields=["property", "day"], name="use_site_day"),
            models.Index(fields=["unit", "day"], name="use_unit_day"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} use {self.pk}"


class Issuer(models.Model):
    """Who invoices: a name, an address and an account for the QR-bill, and
    the counter that numbers its invoices without gaps."""

    organization = models.ForeignKey(
        Organization,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="+",
        help_text="Empty: the platform's operator",
    )
    name = models.CharField(_("name"), max_length=70)
    street = models.CharField(_("street"), max_length=70, blank=True, default="")
    house_number = models.CharField(_("house number"), max_length=16, blank=True, default="")
    postcode = models.CharField(_("postcode"), max_length=16)
    city = models.CharField(_("city"), max_length=35)
    country = models.CharField(_("country"), max_length=2, default="CH")
    account = models.CharField(_("IBAN or QR-IBAN"), max_length=34)
    currency = models.CharField(_("currency"), max_length=3)
    vat_number = models.CharField(_("VAT number"), max_length=30, blank=True, default="")
    email = models.EmailField(_("email address"), blank=True, default="")
    number_prefix = models.CharField(max_length=12, blank=True, default="")
    next_number = models.PositiveIntegerField(default=1)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name", "id"]

    def __str__(self) -> str:
        return self.name


class SiteBilling(models.Model):
    """How a site in billing-and-payments mode bills: its issuer, and the
    days an invoice gives to pay."""

    property = models.OneToOneField(Property, on_delete=models.CASCADE, related_name="billing")
    issuer = models.ForeignKey(Issuer, on_delete=models.PROTECT, related_name="sites")
    payment_days = models.PositiveSmallIntegerField(_("days to pay"), default=30)

    def __str__(self) -> str:
        return f"billing of {self.property_id}"


class RunStatus(models.TextChoices):
    DRAFT = "draft", _("Draft")
    FINALIZED = "finalized", _("Finalized")


class BillingRun(models.Model):
    property = models.ForeignKey(Property, on_delete=models.CASCADE, related_name="billing_runs")
    month = models.DateField(help_text="The first day of the month billed")
    status = models.CharField(max_length=10, choices=RunStatus.choices, default=RunStatus.DRAFT)
    created_at = models.DateTimeField(default=timezone.now)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    finalized_at = models.DateTimeField(null=True, blank=True)
    finalized_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-month", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["property", "month"], name="billing_run_once_a_month")
        ]

    def __str__(self) -> str:
        return f"billing run {self.month:%Y-%m} of {self.property_id}"


class InvoiceKind(models.TextChoices):
    INVOICE = "invoice", _("Invoice")
    CREDIT_NOTE = "credit_note", _("Credit note")


class InvoiceStatus(models.TextChoices):
    DRAFT = "draft", _("Draft")
    OPEN = "open", pgettext_lazy("invoice status", "Open")
    PAID = "paid", _("Paid")
    CREDITED = "credited", _("Credited")


class Invoice(models.Model):
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    property = models.ForeignKey(Property, on_delete=models.CASCADE, related_name="invoices")
    run = models.ForeignKey(
        BillingRun, null=True, blank=True, on_delete=models.CASCADE, related_name="invoices"
    )
    issuer = models.ForeignKey(Issuer, on_delete=models.PROTECT, related_name="invoices")
    person = models.ForeignKey("keys.Person", on_delete=models.PROTECT, related_name="invoices")
    unit = models.ForeignKey(
        "residents.Unit", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    kind = models.CharField(max_length=12, choices=InvoiceKind.choices, default=InvoiceKind.INVOICE)
    credits = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="credit_notes"
    )
    status = models.CharField(
        max_length=10, choices=InvoiceStatus.choices, default=InvoiceStatus.DRAFT
    )
    seq = models.PositiveIntegerField(null=True, blank=True)
    number = models.CharField(max_length=30, blank=True, default="")
    month = models.DateField(null=True, blank=True)
    currency = models.CharField(max_length=3)
    total = models.BigIntegerField(default=0, help_text="Minor units, VAT included")
    vat = models.BigIntegerField(default=0)
    reference = models.CharField(max_length=40, blank=True, default="")
    issued_on = models.DateField(null=True, blank=True)
    due_on = models.DateField(null=True, blank=True)
    paid = models.BigIntegerField(default=0)
    credited = models.BigIntegerField(default=0, help_text="Taken off by credit notes")
    paid_at = models.DateTimeField(null=True, blank=True)
    reminded_at = models.DateTimeField(null=True, blank=True)
    emailed_at = models.DateTimeField(null=True, blank=True)
    note = models.CharField(max_length=300, blank=True, default="")
    pdf = models.BinaryField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-issued_on", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["issuer", "seq"], name="invoice_number_once_per_issuer"
            ),
            models.UniqueConstraint(
                fields=["run", "person"], condition=Q(kind="invoice"), name="invoice_once_per_run"
            ),
        ]
        indexes = [
            models.Index(fields=["person", "status"], name="invoice_person"),
            models.Index(fields=["reference"], name="invoice_reference"),
        ]

    def __str__(self) -> str:
        return self.number or f"draft {self.pk}"

    @builtins.property
    def open_amount(self) -> int:
        """What is still to pay: the total, less payments and credit notes."""
        return self.total - self.paid - self.credited

    def is_overdue(self, today: date) -> bool:
        return self.status == InvoiceStatus.OPEN and self.due_on is not None and today > self.due_on


class LineKind(models.TextChoices):
    CHARGING = "charging", _("Charging")
    LAUNDRY = "laundry", _("Laundry")
    BADGE = "badge", _("Extra badge")
    FEE = "fee", _("Monthly fee")
    CREDIT = "credit", _("Credit")


class InvoiceLine(models.Model):
    invoice = models.ForeignKey(Invoice, on_delete=models.CASCADE, related_name="lines")
    position = models.PositiveSmallIntegerField(default=0)
    kind = models.CharField(max_length=10, choices=LineKind.choices)
    description = models.CharField(max_length=200)
    quantity = models.CharField(max_length=40, blank=True, default="")
    amount = models.BigIntegerField()
    vat_rate = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["invoice_id", "position", "id"]

    def __str__(self) -> str:
        return self.description


class BankFile(models.Model):
    """An ISO 20022 file (camt.053 or camt.054) uploaded to match payments."""

    organization = models.ForeignKey(
        Organization, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    uploaded_at = models.DateTimeField(default=timezone.now)
    filename = models.CharField(max_length=200, blank=True, default="")
    message_type = models.CharField(max_length=12)
    message_id = models.CharField(max_length=64, blank=True, default="")
    digest = models.CharField(max_length=64)
    report: models.JSONField[Any, Any] = models.JSONField(default=dict)

    class Meta:
        ordering = ["-uploaded_at", "-id"]

    def __str__(self) -> str:
        return self.filename or self.message_id


class PaymentOutcome(models.TextChoices):
    MATCHED = "matched", _("Matched")
    PARTIAL = "partial", _("Partly paid")
    OVERPAID = "overpaid", _("Overpaid")
    UNKNOWN = "unknown", _("Unknown reference")
    MANUAL = "manual", _("Marked as paid")


class Payment(models.Model):
    """Money received for an invoice: a credit of a bank file (``key`` is the
    entry's identity, so the same file again applies nothing) or a manual
    marking with its note and author."""

    organization = models.ForeignKey(
        Organization, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    invoice = models.ForeignKey(
        Invoice, null=True, blank=True, on_delete=models.PROTECT, related_name="payments"
    )
    bank_file = models.ForeignKey(
        BankFile, null=True, blank=True, on_delete=models.SET_NULL, related_name="payments"
    )
    key = models.CharField(max_length=200, unique=True, null=True, blank=True)
    amount = models.BigIntegerField()
    currency = models.CharField(max_length=3)
    reference = models.CharField(max_length=40, blank=True, default="")
    booked_on = models.DateField(null=True, blank=True)
    outcome = models.CharField(max_length=10, choices=PaymentOutcome.choices)
    debtor = models.CharField(max_length=140, blank=True, default="")
    note = models.CharField(max_length=300, blank=True, default="")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"payment of {self.amount} {self.currency}"
