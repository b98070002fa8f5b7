"""Invitations to collaborate: an owner asks a person (an email address) to
join the organization with a role, for one site or every site, until a
moment or for good (R41). Accepting one makes an accounts.Membership."""

from __future__ import annotations

import builtins
import hashlib
from datetime import datetime

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from doorkeep.accounts.models import Organization, Role

LINK_DAYS = 7  # an invitation's link works this long


class CollaboratorRole(models.TextChoices):
    """The roles an owner may give a collaborator."""

    READ_ONLY = Role.READ_ONLY.value, _("Read only")
    BUILDING_MANAGER = Role.BUILDING_MANAGER.value, _("Manager")


class InvitationStatus(models.TextChoices):
    SENT = "sent", _("Sent")
    ACCEPTED = "accepted", _("Accepted")
    REVOKED = "revoked", _("Revoked")
    EXPIRED = "expired", _("Expired")


class CollaboratorInvitation(models.Model):
    """One invitation, to one address. Only the SHA-256 digest of its token is
    stored; the token itself is only in the emailed link."""

    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="collaborator_invitations"
    )
    email = models.EmailField(_("email address"))
    role = models.CharField(_("role"), max_length=32, choices=CollaboratorRole.choices)
    property = models.ForeignKey(
        "properties.Property",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="+",
        help_text=_("The one site the access is for; empty: every site."),
    )
    ends_at = models.DateTimeField(null=True, blank=True)
    token_digest = models.CharField(max_length=64, unique=True)
    status = models.CharField(
        max_length=16, choices=InvitationStatus.choices, default=InvitationStatus.SENT
    )
    invited_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    accepted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField(help_text=_("The link works until then."))
    accepted_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["organization", "status"], name="collab_invitation_org_status")
        ]

    def __str__(self) -> str:
        return f"{self.email} → {self.organization} ({self.role})"

    @staticmethod
    def digest_of(token: str) -> str:
        return hashlib.sha256(("doorkeep.collaborator:" + token).encode()).hexdigest()

    def state_at(self, now: datetime | None = None) -> str:
        """The status, with a sent invitation whose link ran out as expired."""
        if self.status == InvitationStatus.SENT and (now or timezone.now()) >= self.expires_at:
            return InvitationStatus.EXPIRED
        return self.status

    @builtins.property
    def state(self) -> str:
        return self.state_at()

    @builtins.property
    def pending(self) -> bool:
        return self.state == InvitationStatus.SENT
