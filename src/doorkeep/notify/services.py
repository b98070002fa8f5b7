"""Notification verbs.

``notify_users`` and ``emit_webhook`` are called by other apps inside their own
transaction: they only write rows (the in-app notification and the outbox
messages), and delivery starts after the commit. The other verbs are the
person's own (read, preferences, push subscriptions) and an organization's
webhook endpoints, checked through ``policy``."""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from doorkeep import policy
from doorkeep.accounts.models import User
from doorkeep.core import when
from doorkeep.core.errors import Conflict, InvalidInput, NotFound
from doorkeep.notify import outbox
from doorkeep.notify.channels import check_webhook_url
from doorkeep.notify.models import (
    ALWAYS_EMAILED,
    EMAIL_PREFERENCE,
    Channel,
    Notification,
    NotificationKind,
    NotificationPreference,
    OutboxMessage,
    PushSubscription,
    WebhookEndpoint,
    WebhookEvent,
)

MAX_ENDPOINTS_PER_ORGANIZATION = 20
MAX_PUSH_SUBSCRIPTIONS_PER_USER = 20


def _plain_json(value: dict[str, Any]) -> dict[str, Any]:
    """The value as stored and sent: datetimes, UUIDs and decimals become strings."""
    result: dict[str, Any] = json.loads(json.dumps(value, cls=DjangoJSONEncoder))
    return result


def absolute_url(url: str) -> str:
    return settings.SITE_URL + url if url.startswith("/") else url


# --- what other apps call ----------------------------------------------------------


def notify_users(
    user_ids: Iterable[int],
    *,
    kind: str,
    title: str,
    body: str,
    url: str = "",
    data: dict[str, Any] | None = None,
    where: Any = None,
) -> list[Notification]:
    """Call inside the caller's transaction.atomic(). Writes one in-app
    Notification per user, one outbox row per Web Push subscription of that
    user, and an email outbox row when the user chose email for this kind
    (preference). After commit, kicks delivery.

    ``where`` (the property it is about) gives the time zone the notification
    is shown in: kept as ``data["timezone"]``, and the email says when, in
    that zone and naming it."""
    if kind not in NotificationKind.values:
        raise ValueError(f"unknown notification kind {kind!r}")
    wanted = list(dict.fromkeys(int(pk) for pk in user_ids))
    users = list(User.objects.filter(pk__in=wanted, is_active=True).only("pk"))
    if not users:
        return []
    ids = [u.pk for u in users]
    now = timezone.now()
    extra = _plain_json(data or {})
    email_body = body
    if where is not None:
        extra["timezone"] = when.zone(where).key
        moment = when.show(now, where, "j F Y H:i", named=True)
        email_body = "\n\n".join(filter(None, [body, _("Time: %(moment)s") % {"moment": moment}]))
    notifications = Notification.objects.bulk_create(
        [
            Notification(
                user_id=pk, kind=kind, title=title, body=body, url=url, data=extra, created_at=now
            )
            for pk in sorted(ids)
        ]
    )
    by_user = {n.user_id: n for n in notifications}
    link = absolute_url(url)
    messages = [
        OutboxMessage(
            channel=Channel.PUSH,
            user_id=sub.user_id,
            notification=by_user[sub.user_id],
            push_subscription=sub,
            payload={
                "id": by_user[sub.user_id].pk,
                "kind": kind,
                "title": title,
                "body": body,
                "url": link,
            },
            created_at=now,
            next_attempt_at=now,
        )
        for sub in PushSubscription.objects.filter(user_id__in=ids)
    ]
    field = EMAIL_PREFERENCE.get(kind)
    emailed: list[int] = []
    if kind in ALWAYS_EMAILED:
        emailed = ids
    elif field:
        chose = NotificationPreference.objects.filter(user_id__in=ids, **{field: True})
        emailed = list(chose.values_list("user_id", flat=True))
    messages += [
        OutboxMessage(
            channel=Channel.EMAIL,
            user_id=user_id,
            notification=by_user[user_id],
            payload={"subject": title, "body": email_body, "url": link},
            created_at=now,
            next_attempt_at=now,
        )
        for user_id in emailed
    ]
    _enqueue(messages)
    return notifications


def emit_webhook(organization_id: int, event_type: str, payload: dict[str, Any]) -> int:
    """Call inside the caller's transaction. One outbox row per active webhook
    endpoint of the organization subscribed to event_type (or to all). Returns
    the number of rows. After commit, kicks delivery."""
    if event_type not in WebhookEvent.values:
        raise ValueError(f"unknown webhook event type {event_type!r}")
    endpoints = [
        e
        for e in WebhookEndpoint.objects.filter(organization_id=organization_id, active=True)
        if e.wants(event_type)
    ]
    now = timezone.now()
    message = _webhook_body(event_type, payload, now)
    _enqueue([_webhook_message(e, event_type, message, now) for e in endpoints])
    return len(endpoints)


def _webhook_body(event_type: str, payload: dict[str, Any], now: datetime) -> dict[str, Any]:
    stamp = now.astimezone(UTC).isoformat().replace("+00:00", "Z")
    return {"type": event_type, "timestamp": stamp, "data": _plain_json(payload)}


def _webhook_message(
    endpoint: WebhookEndpoint, event_type: str, body: dict[str, Any], now: datetime
) -> OutboxMessage:
    return OutboxMessage(
        channel=Channel.WEBHOOK,
        webhook_endpoint=endpoint,
        event_type=event_type,
        payload=body,
        created_at=now,
        next_attempt_at=now,
    )


def _enqueue(messages: list[OutboxMessage]) -> None:
    if messages:
        OutboxMessage.objects.bulk_create(messages)
        transaction.on_commit(outbox.kick)


# --- a person's own notifications -------------------------------------------------------


def mark_read(user: User, notification_id: int) -> Notification:
    notification = Notification.objects.filter(pk=notification_id, user=user).first()
    if notification is None:
        raise NotFound(_("Notification not found."), code="notification_not_found")
    if notification.read_at is None:
        notification.read_at = timezone.now()
        notification.save(update_fields=["read_at"])
    return notification


def mark_all_read(user: User) -> int:
    return Notification.objects.filter(user=user, read_at__isnull=True).update(
        read_at=timezone.now()
    )


def set_preferences(user: User, *, email_guest_unlock: bool) -> NotificationPreference:
    preference, _created = NotificationPreference.objects.update_or_create(
        user=user, defaults={"email_guest_unlock": email_guest_unlock}
    )
    return preference


def send_test_notification(user: User) -> Notification:
    """A notification to the person themself, to try push on their devices."""
    with transaction.atomic():
        (notification,) = notify_users(
            [user.pk],
            kind=NotificationKind.TEST,
            title=_("Test notification"),
            body=_("Notifications reach this device."),
            url="/notifications/",
        )
    return notification


# --- Web Push subscriptions ------------------------------------------------------------


_B64URL = re.compile(r"[A-Za-z0-9_-]+={0,2}")


def _b64url(value: str, what: str) -> bytes:
    try:
        text = value.strip()
        if not _B64URL.fullmatch(text):  # the decoder alone skips other characters
            raise ValueError(what)
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise InvalidInput(
            _("The subscription's %(what)s key is not base64url.") % {"what": what},
            code="invalid_subscription",
        ) from None


def _check_subscription(endpoint: str, p256dh: str, auth: str) -> None:
    from cryptography.hazmat.primitives.asymmetric import ec

    parts = urlsplit(endpoint)
    schemes = {"https"} if settings.PRODUCTION else {"https", "http"}
    if parts.scheme not in schemes or not parts.hostname:
        raise InvalidInput(
            _("The subscription endpoint must be an https URL of a push service."),
            code="invalid_subscription",
        )
    try:
        ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), _b64url(p256dh, "p256dh"))
    except ValueError:
        raise InvalidInput(
            _("The subscription's p256dh key is not a P-256 public key."),
            code="invalid_subscription",
        ) from None
    if len(_b64url(auth, "auth")) != 16:
        raise InvalidInput(
            _("The subscription's auth secret must be 16 bytes."), code="invalid_subscription"
        )


def subscribe_push(
    user: User, *, endpoint: str, p256dh: str, auth: str, user_agent: str = ""
) -> tuple[PushSubscription, bool]:
    """Keep a browser's subscription for the person. The same endpoint
    subscribed again (keys renewed, or another person signed in on that
    browser) is updated, not duplicated. Returns (subscription, created)."""
    endpoint = endpoint.strip()
    _check_subscription(endpoint, p256dh, auth)
    if (
        PushSubscription.objects.filter(user=user).exclude(endpoint=endpoint).count()
        >= MAX_PUSH_SUBSCRIPTIONS_PER_USER
    ):
        raise Conflict(
            _("You have %(n)d browsers with push on; turn it off on one first.")
            % {"n": MAX_PUSH_SUBSCRIPTIONS_PER_USER},
            code="too_many_subscriptions",
        )
    try:
        with transaction.atomic():
            return PushSubscription.objects.update_or_create(
                endpoint=endpoint,
                defaults={
                    "user": user,
                    "p256dh": p256dh.strip(),
                    "auth": auth.strip(),
                    "user_agent": user_agent[:300],
                },
            )
    except IntegrityError:  # the same browser subscribed twice at once
        raise Conflict(
            _("This subscription is being saved already; try again."), code="concurrent_change"
        ) from None


def unsubscribe_push(user: User, endpoint: str) -> None:
    deleted, _rows = PushSubscription.objects.filter(user=user, endpoint=endpoint.strip()).delete()
    if not deleted:
        raise NotFound(_("Push subscription not found."), code="subscription_not_found")


def remove_push_subscription(user: User, subscription_id: int) -> None:
    deleted, _rows = PushSubscription.objects.filter(user=user, pk=subscription_id).delete()
    if not deleted:
        raise NotFound(_("Push subscription not found."), code="subscription_not_found")


# --- webhook endpoints of an organization --------------------------------------------


def check_event_types(event_types: Iterable[str]) -> list[str]:
    chosen = list(dict.fromkeys(event_types))
    unknown = [t for t in chosen if t not in WebhookEvent.values]
    if unknown:
        raise InvalidInput(
            _("Unknown event type: %(types)s.") % {"types": ", ".join(unknown)},
            code="unknown_event_type",
        )
    return chosen


def get_endpoint(user: User, organization_id: int, endpoint_id: int) -> WebhookEndpoint:
    policy.require(user, policy.Action.MANAGE_WEBHOOKS, organization_id, what=_("Organization"))
    endpoint = WebhookEndpoint.objects.filter(
        pk=endpoint_id, organization_id=organization_id
    ).first()
    if endpoint is None:
        raise NotFound(_("Webhook endpoint not found."), code="endpoint_not_found")
    return endpoint


def create_endpoint(
    user: User,
    organization_id: int,
    *,
    url: str,
    description: str = "",
    event_types: Iterable[str] = (),
) -> WebhookEndpoint:
    """A new endpoint, active; its secret (``whsec_…``) is shown once, now."""
    policy.require(user, policy.Action.MANAGE_WEBHOOKS, organization_id, what=_("Organization"))
    url = check_webhook_url(url)
    chosen = check_event_types(event_types)
    if (
        WebhookEndpoint.objects.filter(organization_id=organization_id).count()
        >= MAX_ENDPOINTS_PER_ORGANIZATION
    ):
        raise Conflict(
            _("An organization has at most %(n)d webhook endpoints.")
            % {"n": MAX_ENDPOINTS_PER_ORGANIZATION},
            code="too_many_endpoints",
        )
    return WebhookEndpoint.objects.create(
        organization_id=organization_id,
        url=url,
        description=description.strip()[:200],
        event_types=chosen,
    )


def update_endpoint(
    user: User,
    organization_id: int,
    endpoint_id: int,
    *,
    active: bool | None = None,
    description: str | None = None,
    event_types: Iterable[str] | None = None,
) -> WebhookEndpoint:
    """Turn an endpoint off or on, or change what it receives. Messages
    still waiting for an endpoint that is off are not sent (they give up)."""
    endpoint = get_endpoint(user, organization_id, endpoint_id)
    if active is not None:
        endpoint.active = active
    if description is not None:
        endpoint.description = description.strip()[:200]
    if event_types is not None:
        endpoint.event_types = check_event_types(event_types)
    endpoint.save(update_fields=["active", "description", "event_types"])
    return endpoint


def delete_endpoint(user: User, organization_id: int, endpoint_id: int) -> None:
    """Remove an endpoint with its delivery history."""
    get_endpoint(user, organization_id, endpoint_id).delete()


def send_test_event(user: User, organization_id: int, endpoint_id: int) -> OutboxMessage:
    """Queue a ``webhook.test`` event for one endpoint, whatever it subscribes to."""
    endpoint = get_endpoint(user, organization_id, endpoint_id)
    if not endpoint.active:
        raise Conflict(
            _("This endpoint is turned off; turn it on to send a test event."),
            code="endpoint_inactive",
        )
    now = timezone.now()
    body = _webhook_body(
        WebhookEvent.TEST,
        {"organization_id": organization_id, "endpoint_id": endpoint.pk, "sent_by": user.email},
        now,
    )
    with transaction.atomic():
        message = _webhook_message(endpoint, WebhookEvent.TEST, body, now)
        message.save()
        transaction.on_commit(outbox.kick)
    return message
