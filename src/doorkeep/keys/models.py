from __future__ import annotations

from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from doorkeep.accounts.models import Organization
from doorkeep.locks.models import Lock


class Person(models.Model):
    """Someone who holds keys in an organization: an account, or a name and an
    email address for someone who has no account yet (linked when they sign up)."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="people")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="people",
    )
    name = models.CharField(_("name"), max_length=150)
    email = models.EmailField(_("email address"), blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "email"],
                condition=~Q(email=""),
                name="person_email_unique_in_org",
            )
        ]

    def __str__(self) -> str:
        return self.name


class CredentialKind(models.TextChoices):
    PHONE = "phone", _("Phone")
    PIN = "pin", _("PIN code")
    REMOTE = "remote", _("Remote")
    TAG = "tag", _("RFID tag")


class Credential(models.Model):
    """Something a person presents to a lock. It belongs to the person, not to a
    lock: one RFID tag serves every lock the person has a key for, and
    deactivating it takes it off all of them.

    ``lookup`` is what the access decision searches: the upper-case tag UID, the
    remote's serial, the person's id for a phone, and for a PIN code a keyed
    HMAC digest (the PIN itself is never stored)."""

    person = models.ForeignKey(Person, on_delete=models.CASCADE, related_name="credentials")
    kind = models.CharField(max_length=10, choices=CredentialKind.choices)
    lookup = models.CharField(max_length=128)
    display = models.CharField(max_length=64, help_text=_("What the UI shows; never a PIN."))
    created_at = models.DateTimeField(default=timezone.now)
    deactivated_at = models.DateTimeField(null=True, blank=True)
    deactivated_reason = models.CharField(
        max_length=40,
        blank=True,
        default="",
        help_text="Why it was switched off, as a DenyReason value (badge_lost for a lost badge)",
    )

    class Meta:
        indexes = [models.Index(fields=["kind", "lookup"], name="credential_kind_lookup")]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.display}"


class KeyStatus(models.TextChoices):
    ACTIVE = "active", _("Active")
    SCHEDULED = "scheduled", _("Not yet valid")
    EXPIRED = "expired", _("Expired")
    REVOKED = "revoked", _("Taken back")


class Key(models.Model):
    """A grant: this person may use this lock, within an optional validity window
    and an optional weekly schedule. One live key per person per lock.

    A key can instead be held by an organization (shared management, R10/R11):
    then ``holder_organization`` is set, ``person`` is empty, and that
    organization's managers issue keys of their own under it (``parent``).

    ``organization`` manages the key (the lock owner, or for a key issued under
    an organization's key, that organization); ``lock_owner`` is the lock's
    owner when the key was issued, so that a lock that changes hands never
    matches the previous owner's keys."""

    lock = models.ForeignKey(Lock, on_delete=models.CASCADE, related_name="keys")
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="keys")
    lock_owner = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    person = models.ForeignKey(
        Person, null=True, blank=True, on_delete=models.CASCADE, related_name="keys"
    )
    holder_organization = models.ForeignKey(
        Organization,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="received_keys",
    )
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.CASCADE, related_name="children"
    )
    valid_from = models.DateTimeField(null=True, blank=True)
    valid_until = models.DateTimeField(null=True, blank=True)
    schedule: models.JSONField[Any, Any] = models.JSONField(null=True, blank=True)
    note = models.CharField(max_length=200, blank=True, default="")
    issued_at = models.DateTimeField(default=timezone.now)
    issued_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-issued_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["lock", "person"],
                condition=Q(revoked_at__isnull=True),
                name="one_live_key_per_person_per_lock",
            ),
            models.UniqueConstraint(
                fields=["lock", "holder_organization"],
                condition=Q(revoked_at__isnull=True, holder_organization__isnull=False),
                name="one_live_key_per_organization_per_lock",
            ),
            models.CheckConstraint(
                condition=Q(person__isnull=False, holder_organization__isnull=True)
                | Q(person__isnull=True, holder_organization__isnull=False),
                name="key_held_by_a_person_or_an_organization",
            ),
        ]
        indexes = [models.Index(fields=["lock", "revoked_at"], name="key_lock_revoked")]

    def __str__(self) -> str:
        return f"{self.holder_name} on {self.lock}"

    @property
    def holder_name(self) -> str:
        if self.person is not None:
            return self.person.name
        return self.holder_organization.name if self.holder_organization else ""

    def status_at(self, moment: datetime) -> KeyStatus:
        if self.revoked_at is not None:
            return KeyStatus.REVOKED
        if self.valid_until is not None and moment >= self.valid_until:
            return KeyStatus.EXPIRED
        if self.valid_from is not None and moment < self.valid_from:
            return KeyStatus.SCHEDULED
        return KeyStatus.ACTIVE

    @property
    def status(self) -> KeyStatus:
        return self.status_at(timezone.now())


class KeyCredential(models.Model):
    """Which of the person's credentials open the lock under this key. ``lock``,
    ``kind`` and ``lookup`` are copied from the key and the credential so that
    the access decision is one indexed look-up, and so that the database itself
    keeps a PIN code or a tag unique on a lock."""

    key = models.ForeignKey(Key, on_delete=models.CASCADE, related_name="key_credentials")
    credential = models.ForeignKey(
        Credential, on_delete=models.CASCADE, related_name="key_credentials"
    )
    lock = models.ForeignKey(Lock, on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=10, choices=CredentialKind.choices)
    lookup = models.CharField(max_length=128)
    device_lookup = models.CharField(
        max_length=128,
        blank=True,
        default="",
        help_text="What the lock's own list holds (for a PIN: a digest under the lock's key)",
    )
    active = models.BooleanField(default=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["lock", "kind", "lookup"],
                condition=Q(active=True),
                name="credential_unique_on_lock",
            )
        ]
        indexes = [models.Index(fields=["lock", "kind", "lookup"], name="keycred_decision")]

    def __str__(self) -> str:
        return f"{self.kind} on lock {self.lock_id} ({'active' if self.active else 'inactive'})"
