from __future__ import annotations

import hashlib
from typing import Any, ClassVar

from django.contrib.auth.models import AbstractUser, BaseUserManager
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class UserManager(BaseUserManager["User"]):
    use_in_migrations = True

    def _create(self, email: str, password: str | None, **extra: Any) -> User:
        if not email:
            raise ValueError("An email address is required")
        user = self.model(email=self.normalize_email(email).lower(), **extra)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_user(self, email: str, password: str | None = None, **extra: Any) -> User:
        extra.setdefault("is_staff", False)
        extra.setdefault("is_superuser", False)
        return self._create(email, password, **extra)

    def create_superuser(self, email: str, password: str | None = None, **extra: Any) -> User:
        extra.update(is_staff=True, is_superuser=True)
        return self._create(email, password, **extra)


class User(AbstractUser):
    """A person with a login. The email address is the login name."""

    username = None  # type: ignore[assignment]
    first_name = None  # type: ignore[assignment]
    last_name = None  # type: ignore[assignment]
    email = models.EmailField(_("email address"), unique=True)
    name = models.CharField(_("name"), max_length=150, blank=True)

    USERNAME_FIELD = "email"
    REQUIRED_FIELDS: ClassVar[list[str]] = []

    objects: ClassVar[UserManager] = UserManager()  # type: ignore[assignment]

    def __str__(self) -> str:
        return self.name or self.email

    def get_full_name(self) -> str:
        return self.name or self.email

    def get_short_name(self) -> str:
        return self.name or self.email


class Role(models.TextChoices):
    PLATFORM_OPERATOR = "platform_operator", _("Platform operator")
    LOCK_OWNER = "lock_owner", _("Lock owner")
    BUILDING_MANAGER = "building_manager", _("Building manager")
    MEMBER = "member", _("Member")
    READ_ONLY = "read_only", _("Read only")


class Organization(models.Model):
    """The tenant: every lock, property, person and event belongs to one."""

    name = models.CharField(_("name"), max_length=150)
    is_platform = models.BooleanField(
        default=False, help_text=_("The organization that runs the platform itself.")
    )
    require_two_factor = models.BooleanField(
        _("require two-factor authentication"),
        default=False,
        help_text=_("Managers and collaborators must sign in with a second factor."),
    )
    created_at = models.DateTimeField(default=timezone.now)
    building_management_since = models.DateTimeField(
        null=True, blank=True, help_text=_("Upgrade activated by the lock owner (R12)")
    )
    organization_management_since = models.DateTimeField(
        null=True, blank=True, help_text=_("Upgrade activated with a prepaid code (R13)")
    )

    def __str__(self) -> str:
        return self.name


class Membership(models.Model):
    """A person's role in an organization. A collaborator's membership may be
    scoped to one site (``property``) and end at a moment (``ends_at``); the
    policy reads both (docs/decisions/0012-collaborators-scoped-to-a-site.md)."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="memberships")
    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="memberships"
    )
    role = models.CharField(max_length=32, choices=Role.choices, default=Role.MEMBER)
    created_at = models.DateTimeField(default=timezone.now)
    # Deleting the site deletes the membership: it must never widen to every site.
    property = models.ForeignKey(
        "properties.Property",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="scoped_memberships",
        help_text=_("The one site this membership is for; empty: every site."),
    )
    ends_at = models.DateTimeField(
        null=True, blank=True, help_text=_("The membership grants nothing from then on.")
    )
    invited_by = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "organization"], name="one_membership_per_org")
        ]

    def __str__(self) -> str:
        return f"{self.user} in {self.organization} ({self.role})"


class ApiToken(models.Model):
    """A bearer token for integrations. Only its SHA-256 digest is stored; the
    token itself is shown once, when it is created."""

    PREFIX = "dk_"

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(_("name"), max_length=100)
    digest = models.CharField(max_length=64, unique=True)
    hint = models.CharField(max_length=12, help_text=_("The first characters, to recognise it."))
    created_at = models.DateTimeField(default=timezone.now)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.name} ({self.hint}…)"

    @staticmethod
    def digest_of(token: str) -> str:
        return hashlib.sha256(token.encode()).hexdigest()
