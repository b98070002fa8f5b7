from __future__ import annotations

from django.contrib.auth.hashers import check_password, make_password
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from doorkeep.accounts.models import Organization
from doorkeep.properties.models import Entry


class Lock(models.Model):
    """A physical lock, known to the platform from manufacture (serial number and
    the hash of the claim secret that comes with it). A lock owner registers it,
    which makes their organization its owner and places it at an entry.

    ``credential_version`` grows by one with every change the lock must learn;
    the gateway pushes the difference and the lock acknowledges the version."""

    serial = models.CharField(_("serial number"), max_length=32, unique=True)
    claim_secret_hash = models.CharField(max_length=200)
    model_name = models.CharField(_("model"), max_length=100, blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now)

    organization = models.ForeignKey(
        Organization, null=True, blank=True, on_delete=models.SET_NULL, related_name="locks"
    )
    entry = models.ForeignKey(
        Entry, null=True, blank=True, on_delete=models.SET_NULL, related_name="locks"
    )
    name = models.CharField(_("name"), max_length=150, blank=True, default="")
    registered_at = models.DateTimeField(null=True, blank=True)
    first_registered_at = models.DateTimeField(null=True, blank=True)
    credential_version = models.PositiveBigIntegerField(default=0)

    class Meta:
        ordering = ["name", "serial"]

    def __str__(self) -> str:
        return self.name or self.serial

    @property
    def is_registered(self) -> bool:
        return self.organization_id is not None

    def set_claim_secret(self, secret: str) -> None:
        self.claim_secret_hash = make_password(secret)

    def check_claim_secret(self, secret: str) -> bool:
        return check_password(secret, self.claim_secret_hash)
