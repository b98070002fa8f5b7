"""Shared entries for auto-verified guests (R20-R28).

A resident (someone with a key at a property) invites a person by email to
some of the property's entries. Accepting gives the guest a phone key on the
locks of those entries, held by a Person of the lock owner's organization and
linked here through GuestKey, so that the access decision, the locks' lists
and the event log work for guests exactly as for everyone else."""

from __future__ import annotations

import builtins
from datetime import datetime

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from doorkeep.core.crypto import EncryptedTextField
from doorkeep.keys.models import Key
from doorkeep.properties.models import Entry, Property


class GuestPolicy(models.Model):
    """What the property's building manager allows (R27, R28). A property
    without a policy row does not allow sharing."""

    property = models.OneToOneField(Property, on_delete=models.CASCADE, related_name="guest_policy")
    sharing_enabled = models.BooleanField(_("residents may share entries"), default=False)
    shareable_entries = models.ManyToManyField(Entry, blank=True, related_name="+")
    max_guests_per_resident = models.PositiveSmallIntegerField(
        _("most guests per resident"), default=5
    )
    require_presence = models.BooleanField(_("guests verify presence first"), default=False)
    reverify_after_days = models.PositiveSmallIntegerField(
        _("verify again after this many days without use"), null=True, blank=True
    )
    require_tag = models.BooleanField(
        _("guests verify presence only with a panel's NTAG 424 tag (no typed codes)"),
        default=False,
    )
    updated_at = models.DateTimeField(default=timezone.now)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        verbose_name_plural = "guest policies"

    def __str__(self) -> str:
        return f"Guest policy of {self.property}"


class InvitationStatus(models.TextChoices):
    SENT = "sent", _("Sent")
    ACCEPTED = "accepted", _("Accepted")
    DECLINED = "declined", _("Declined")
    EXPIRED = "expired", _("Expired")
    REVOKED = "revoked", _("Revoked")


class Invitation(models.Model):
    """One resident's invitation of one email address to entries of a property.

    ``status`` is stored for sent/accepted/declined/revoked; "expired" is
    computed (``state_at``): a sent invitation whose link ran out, or an
    accepted one whose end date passed. ``nonce`` makes the emailed link
    single-use: it changes on resend and is cleared when the link is used."""

    property = models.ForeignKey(Property, on_delete=models.CASCADE, related_name="invitations")
    inviter = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="invitations_sent"
    )
    email = models.EmailField(_("email address"))
    entries = models.ManyToManyField(Entry, related_name="invitations")
    ends_at = models.DateTimeField(_("access ends"), null=True, blank=True)
    status = models.CharField(
        max_length=10, choices=InvitationStatus.choices, default=InvitationStatus.SENT
    )
    nonce = models.CharField(max_length=32, blank=True, default="")
    link_expires_at = models.DateTimeField()
    created_at = models.DateTimeField(default=timezone.now)
    sent_at = models.DateTimeField(default=timezone.now)
    times_sent = models.PositiveSmallIntegerField(default=1)
    guest = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="invitations_received",
    )
    answered_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    expiry_reported_at = models.DateTimeField(
        null=True, blank=True, help_text="When the resident was told it expired"
    )
    keys: models.ManyToManyField[Key, GuestKey] = models.ManyToManyField(
        Key, through="GuestKey", related_name="+"
    )

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["inviter", "property", "status"], name="invitation_inviter"),
            models.Index(fields=["email", "status"], name="invitation_email"),
        ]

    def __str__(self) -> str:
        return f"{self.email} invited to {self.property} ({self.status})"

    def state_at(self, moment: datetime) -> str:
        if self.status == InvitationStatus.SENT and moment >= self.link_expires_at:
            return InvitationStatus.EXPIRED
        if (
            self.status == InvitationStatus.ACCEPTED
            and self.ends_at is not None
            and moment >= self.ends_at
        ):
            return InvitationStatus.EXPIRED
        return self.status

    @builtins.property
    def state(self) -> str:
        return self.state_at(timezone.now())

    @builtins.property
    def state_label(self) -> str:
        return str(InvitationStatus(self.state).label)


class GuestKey(models.Model):
    """A lock key that carries an invitation's access. Two residents inviting
    the same guest to the same door share one key (one live key per person
    per lock); it is taken back when no accepted invitation needs it."""

    invitation = models.ForeignKey(Invitation, on_delete=models.CASCADE, related_name="guest_keys")
    key = models.ForeignKey(Key, on_delete=models.CASCADE, related_name="guest_links")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["invitation", "key"], name="guest_key_once")]

    def __str__(self) -> str:
        return f"key {self.key_id} for invitation {self.invitation_id}"


class Presence(models.Model):
    """The guest's verified presence at a property (R27) and the last time they
    used it (R28: after the policy's days without use, verify again)."""

    guest = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="presences"
    )
    property = models.ForeignKey(Property, on_delete=models.CASCADE, related_name="+")
    verified_at = models.DateTimeField()
    entry = models.ForeignKey(Entry, null=True, on_delete=models.SET_NULL, related_name="+")
    last_used_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["guest", "property"], name="presence_once")]

    def __str__(self) -> str:
        return f"{self.guest} present at {self.property}"


class PanelTag(models.TextChoices):
    CODE = "code", _("Code on the display, tag with the code")
    NTAG424 = "ntag424", _("NTAG 424 DNA tag (Secure Unique NFC)")


class Panel(models.Model):
    """An entry panel, of one of two kinds (``tag``).

    A code panel shows a time-based code (RFC 6238) from its own secret, on
    its display and in the URL of its NFC tag, so it works offline.
    ``last_step`` is the newest time step a code was accepted for: each code
    verifies once.

    An NTAG 424 DNA panel has a tag that makes a new URL at every tap (SUN,
    guests/sun.py) from the two keys it was programmed with; ``tag_counter``
    is the newest tap counter the platform has seen (a URL opens once),
    ``tag_uid`` the tag's UID, learned at its first tap; each tap that
    verified presence is a ``TapRedeemed``. The secret and keys are stored
    encrypted (core/crypto.py)."""

    entry = models.ForeignKey(Entry, on_delete=models.CASCADE, related_name="panels")
    name = models.CharField(_("name"), max_length=100)
    tag = models.CharField(
        _("kind"), max_length=10, choices=PanelTag.choices, default=PanelTag.CODE
    )
    secret = EncryptedTextField(blank=True, default="", help_text=_("Base32 TOTP secret"))
    last_step = models.BigIntegerField(default=0)
    sdm_meta_read_key = EncryptedTextField(blank=True, default="")
    sdm_file_read_key = EncryptedTextField(blank=True, default="")
    tag_uid = models.CharField(max_length=14, blank=True, default="")
    tag_counter = models.BigIntegerField(default=-1)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["entry_id", "name", "id"]
        indexes = [models.Index(fields=["entry"], name="panel_entry")]

    def __str__(self) -> str:
        return f"{self.name} at {self.entry}"

    @builtins.property
    def has_sun_tag(self) -> bool:
        return self.tag == PanelTag.NTAG424


class TapRedeemed(models.Model):
    """A tap of an NTAG 424 DNA panel that verified presence: each tap does
    once, whichever of several guests' taps is confirmed first. Kept only as
    long as a tap can be confirmed (guests/tags.py prunes older ones)."""

    panel = models.ForeignKey(Panel, on_delete=models.CASCADE, related_name="+")
    counter = models.BigIntegerField()
    at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["panel", "counter"], name="tap_redeemed_once")
        ]

    def __str__(self) -> str:
        return f"tap {self.counter} of panel {self.panel_id}"


LIVE_STATUSES = (InvitationStatus.SENT, InvitationStatus.ACCEPTED)
LIVE = Q(status__in=LIVE_STATUSES)
