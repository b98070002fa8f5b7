"""Notifications: in-app rows, each person's choices, Web Push subscriptions,
organizations' webhook endpoints, and the outbox every delivery goes through.

An outbox row is written in the transaction of the change that caused it, so
a rollback leaves nothing to send; `outbox.deliver_due` sends it afterwards."""

from __future__ import annotations

import base64
import secrets

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from doorkeep.accounts.models import Organization
from doorkeep.core.crypto import EncryptedTextField


class NotificationKind(models.TextChoices):
    """What a notification is about. Email is sent only for kinds a person
    chose in their preferences (see ``EMAIL_PREFERENCE``)."""

    GUEST_UNLOCK = "guest_unlock", _("A guest opened a door you shared")
    INVITATION_ANSWERED = "invitation_answered", _("A guest answered, or an invitation expired")
    BADGE = "badge", _("Your badge or badge request changed")
    INSTALLATION = "installation", _("A charging-station installation moved on")
    PORTAL = "portal", _("Someone asks for a portal login")
    TEST = "test", _("A test notification")


class WebhookEvent(models.TextChoices):
    """The event types a webhook endpoint can subscribe to. The payload of
    each is documented in docs/notifications.md."""

    GUEST_UNLOCKED = "guest.unlocked", _("A guest opened a shared entry")
    INVITATION_SENT = "invitation.sent", _("A guest invitation was sent")
    INVITATION_ACCEPTED = "invitation.accepted", _("A guest accepted an invitation")
    INVITATION_DECLINED = "invitation.declined", _("A guest declined an invitation")
    INVITATION_REVOKED = "invitation.revoked", _("An invitation was revoked")
    INVITATION_EXPIRED = "invitation.expired", _("An invitation expired unanswered")
    BADGE_REQUESTED = "badge.requested", _("A resident asked for a badge")
    BADGE_ASSIGNED = "badge.assigned", _("A badge was assigned to a resident")
    BADGE_LOST = "badge.lost", _("A badge was reported lost and switched off")
    BADGE_REACTIVATED = "badge.reactivated", _("A lost badge was found and switched on again")
    INSTALLATION_REQUESTED = "installation.requested", _("A resident asked for a charging station")
    INSTALLATION_APPROVED = "installation.approved", _("The owner approved a charging station")
    INSTALLATION_DECLINED = "installation.declined", _("The owner declined a charging station")
    INSTALLATION_ORGANIZING = (
        "installation.organizing",
        _("The platform organizes a charging-station installation"),
    )
    INSTALLATION_COORDINATING = (
        "installation.coordinating",
        _("The platform coordinates an installation with the owner's electrician"),
    )
    INSTALLATION_SCHEDULED = (
        "installation.scheduled",
        _("An installation is scheduled"),
    )
    INSTALLATION_INSTALLED = "installation.installed", _("A charging station was installed")
    INSTALLATION_CANCELLED = (
        "installation.cancelled",
        _("An installation was cancelled"),
    )
    INVOICE_FINALIZED = "invoice.finalized", _("An invoice or credit note was finalized")
    INVOICE_PAID = "invoice.paid", _("An invoice was paid in full")
    TEST = "webhook.test", _("A test event, sent from the webhooks page or the API")


class Notification(models.Model):
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notifications"
    )
    kind = models.CharField(max_length=40, choices=NotificationKind.choices)
    title = models.CharField(max_length=200)
    body = models.TextField(blank=True)
    url = models.CharField(max_length=500, blank=True)
    data = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    read_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["user", "-created_at", "-id"], name="notification_user_created"),
            models.Index(
                fields=["user"], condition=Q(read_at__isnull=True), name="notification_unread"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.title} ({self.user_id})"


class NotificationPreference(models.Model):
    """One row per person who changed a choice; no row means the defaults."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notification_preference"
    )
    email_guest_unlock = models.BooleanField(
        _("email me when a guest opens a door I shared"), default=False
    )

    def __str__(self) -> str:
        return f"preferences of {self.user_id}"


# Which preference field turns email on for a notification kind.
EMAIL_PREFERENCE: dict[str, str] = {NotificationKind.GUEST_UNLOCK: "email_guest_unlock"}
# Kinds that are always emailed too: steps a person waits for (R43, R49).
ALWAYS_EMAILED = frozenset({NotificationKind.BADGE, NotificationKind.INSTALLATION})


class PushSubscription(models.Model):
    """A browser's Web Push subscription (its endpoint is unique to it)."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="push_subscriptions"
    )
    endpoint = models.URLField(max_length=1000, unique=True)
    p256dh = models.CharField(max_length=200)
    auth = EncryptedTextField()  # the subscription's 16-byte secret, stored encrypted
    user_agent = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    last_success_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"push for {self.user_id}: {self.endpoint[:60]}"


def new_webhook_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


class WebhookEndpoint(models.Model):
    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="webhook_endpoints"
    )
    url = models.URLField(max_length=500)
    description = models.CharField(max_length=200, blank=True)
    secret = EncryptedTextField(default=new_webhook_secret)  # stored encrypted (core/crypto.py)
    event_types = models.JSONField(
        default=list, blank=True, help_text=_("Event types to send; empty: all")
    )
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return self.url

    def wants(self, event_type: str) -> bool:
        return not self.event_types or event_type in self.event_types


class Channel(models.TextChoices):
    PUSH = "push", _("Web Push")
    EMAIL = "email", _("Email")
    WEBHOOK = "webhook", _("Webhook")


def new_msg_id() -> str:
    return "msg_" + secrets.token_urlsafe(18)


class OutboxMessage(models.Model):
    """One message to deliver on one channel. ``msg_id`` stays the same across
    retries (it is the webhook-id header). A row is due while neither
    ``delivered_at`` nor ``gave_up_at`` is set and ``next_attempt_at`` has come."""

    channel = models.CharField(max_length=10, choices=Channel.choices)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="+",
    )
    notification = models.ForeignKey(
        Notification, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    push_subscription = models.ForeignKey(
        PushSubscription, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    webhook_endpoint = models.ForeignKey(
        WebhookEndpoint,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="deliveries",
    )
    event_type = models.CharField(max_length=40, blank=True)
    payload = models.JSONField(default=dict)
    msg_id = models.CharField(max_length=40, unique=True, default=new_msg_id)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True, default=timezone.now)
    delivered_at = models.DateTimeField(null=True, blank=True)
    gave_up_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    last_status = models.PositiveSmallIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [
            models.Index(
                fields=["next_attempt_at"],
                condition=Q(delivered_at__isnull=True, gave_up_at__isnull=True),
                name="outbox_due",
            ),
            models.Index(fields=["webhook_endpoint", "-created_at"], name="outbox_endpoint"),
        ]

    def __str__(self) -> str:
        return f"{self.channel} {self.msg_id}"

    @property
    def status(self) -> str:
        if self.delivered_at:
            return "delivered"
        if self.gave_up_at:
            return "gave_up"
        return "retrying" if self.attempts else "pending"
