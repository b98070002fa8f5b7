"""Reading notifications, preferences, subscriptions and deliveries."""

from __future__ import annotations

from django.db.models import QuerySet
from django.utils.translation import gettext as _

from doorkeep import policy
from doorkeep.accounts.models import User
from doorkeep.notify.models import (
    Notification,
    NotificationPreference,
    OutboxMessage,
    PushSubscription,
    WebhookEndpoint,
)


def notifications_of(user: User, *, unread_only: bool = False) -> QuerySet[Notification]:
    """The person's notifications, newest first."""
    rows = Notification.objects.filter(user=user)
    if unread_only:
        rows = rows.filter(read_at__isnull=True)
    return rows.order_by("-created_at", "-id")


def unread_count(user: User) -> int:
    return Notification.objects.filter(user=user, read_at__isnull=True).count()


def preferences_of(user: User) -> NotificationPreference:
    """The person's choices; the defaults (unsaved) when they never chose."""
    found = NotificationPreference.objects.filter(user=user).first()
    return found or NotificationPreference(user=user)


def push_subscriptions_of(user: User) -> QuerySet[PushSubscription]:
    return PushSubscription.objects.filter(user=user).order_by("-created_at", "-id")


def endpoints_of(user: User, organization_id: int) -> QuerySet[WebhookEndpoint]:
    policy.require(user, policy.Action.MANAGE_WEBHOOKS, organization_id, what=_("Organization"))
    return WebhookEndpoint.objects.filter(organization_id=organization_id).order_by(
        "created_at", "id"
    )


def deliveries_of(
    user: User, organization_id: int, *, endpoint_id: int | None = None, limit: int = 50
) -> list[OutboxMessage]:
    """The latest webhook deliveries of the organization's endpoints, newest first."""
    policy.require(user, policy.Action.MANAGE_WEBHOOKS, organization_id, what=_("Organization"))
    rows = OutboxMessage.objects.filter(webhook_endpoint__organization_id=organization_id)
    if endpoint_id is not None:
        rows = rows.filter(webhook_endpoint_id=endpoint_id)
    return list(rows.select_related("webhook_endpoint").order_by("-created_at", "-id")[:limit])
