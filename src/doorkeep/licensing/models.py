"""Per-lock licensing: what was bought for each physical lock, and when.

Everything here hangs on the Lock row, which is the physical lock (its serial),
not on one registration: removing a lock and registering it again finds the
same periods, options and key packs (R8). The state of a lock at a moment is
computed from these dated rows (see licensing.state); nothing is flipped by a
scheduled job.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from doorkeep.accounts.models import Organization
from doorkeep.locks.models import Lock


class ProductKind(models.TextChoices):
    MANAGEMENT = "management", _("Full management of a lock")
    ORGANIZATIONS_OPTION = "organizations_option", _("Option: issue keys to organizations")
    KEY_PACK = "key_pack", _("Key pack for a lock")
    ORGANIZATION_MANAGEMENT = (
        "organization_management",
        _("Account upgrade: organization management"),
    )


class Product(models.Model):
    """What a prepaid code grants. The catalogue is seeded by a migration and
    kept by the platform operator in the admin site."""

    sku = models.CharField(_("article code"), max_length=32, unique=True)
    name = models.CharField(_("name"), max_length=100)
    kind = models.CharField(max_length=32, choices=ProductKind.choices)
    years = models.PositiveSmallIntegerField(default=0, help_text=_("For periods and options"))
    keys = models.PositiveIntegerField(default=0, help_text=_("For key packs"))
    active = models.BooleanField(default=True)

    class Meta:
        ordering = ["kind", "sku"]

    def __str__(self) -> str:
        return f"{self.name} ({self.sku})"

    @property
    def for_lock(self) -> bool:
        return self.kind != ProductKind.ORGANIZATION_MANAGEMENT


class CodeBatch(models.Model):
    product = models.ForeignKey(Product, on_delete=models.PROTECT, related_name="batches")
    size = models.PositiveIntegerField()
    note = models.CharField(max_length=200, blank=True, default="")
    expires_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        verbose_name_plural = "code batches"
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.size} × {self.product.sku} ({self.created_at:%Y-%m-%d})"


class PrepaidCode(models.Model):
    """One code of a batch. Only its digest is stored; ``redeemed_at`` is set
    exactly once, by a conditional UPDATE (see licensing.services.redeem)."""

    batch = models.ForeignKey(CodeBatch, on_delete=models.CASCADE, related_name="codes")
    digest = models.CharField(max_length=64, unique=True)
    redeemed_at = models.DateTimeField(null=True, blank=True)
    redeemed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    lock = models.ForeignKey(
        Lock, null=True, blank=True, on_delete=models.SET_NULL, related_name="prepaid_codes"
    )
    organization = models.ForeignKey(
        Organization, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    def __str__(self) -> str:
        state = "redeemed" if self.redeemed_at else "unused"
        return f"code #{self.pk} of batch {self.batch_id} ({state})"


class PeriodKind(models.TextChoices):
    FREE = "free", _("Free period")
    MANAGEMENT = "management", _("Full management")
    ORGANIZATIONS_OPTION = "organizations_option", _("Issue keys to organizations")


class Period(models.Model):
    """A dated stretch of management, or of an option, of one physical lock."""

    lock = models.ForeignKey(Lock, on_delete=models.CASCADE, related_name="periods")
    kind = models.CharField(max_length=32, choices=PeriodKind.choices)
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField()
    code = models.ForeignKey(
        PrepaidCode, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["starts_at", "id"]
        indexes = [models.Index(fields=["lock", "kind", "ends_at"], name="period_lock_kind_end")]
        constraints = [
            models.UniqueConstraint(
                fields=["lock"], condition=models.Q(kind="free"), name="one_free_period_per_lock"
            )
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.starts_at:%Y-%m-%d} – {self.ends_at:%Y-%m-%d}"


class KeyAllotment(models.Model):
    """Keys a lock may issue: those that came with its first registration, and
    key packs bought for it. A lock can issue (sum of allotments) minus (keys
    not taken back); taking a key back makes its place available again (R7)."""

    lock = models.ForeignKey(Lock, on_delete=models.CASCADE, related_name="key_allotments")
    keys = models.PositiveIntegerField()
    included = models.BooleanField(default=False, help_text=_("Came with the first registration"))
    code = models.ForeignKey(
        PrepaidCode, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"{self.keys} keys for lock {self.lock_id}"


class Reminder(models.Model):
    """That the owner was emailed about a lock's management ending, so that
    each reminder (28, 7 and 1 days before that end) goes out once."""

    lock = models.ForeignKey(Lock, on_delete=models.CASCADE, related_name="+")
    ends_at = models.DateTimeField()
    days_before = models.PositiveSmallIntegerField()
    sent_at = models.DateTimeField(default=timezone.now)
    sent_to = models.CharField(max_length=254)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["lock", "ends_at", "days_before"], name="one_reminder_per_end"
            )
        ]

    def __str__(self) -> str:
        return f"{self.days_before} days before {self.ends_at:%Y-%m-%d} for lock {self.lock_id}"
