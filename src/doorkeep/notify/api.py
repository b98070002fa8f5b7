"""Notifications, Web Push subscriptions and webhook endpoints (E4).

A person's notifications and push subscriptions are theirs alone: another
person's answer 404. Webhook endpoints belong to an organization and are
managed by its lock owners and building managers (others of the
organization get 403, anyone else 404)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.conf import settings
from django.http import HttpRequest
from ninja import Router, Schema, Status
from ninja.params import functions as param
from pydantic import Field

from doorkeep.api.util import actor
from doorkeep.core.errors import NotFound
from doorkeep.notify import selectors, services
from doorkeep.notify.models import Notification, OutboxMessage, WebhookEndpoint, WebhookEvent

router = Router(tags=["notifications"])


class NotificationOut(Schema):
    id: int
    kind: str
    title: str
    body: str
    url: str
    data: dict[str, Any]
    created_at: datetime
    read_at: datetime | None


class NotificationPage(Schema):
    count: int = Field(description="Notifications matching the query")
    unread: int = Field(description="Unread notifications in all")
    items: list[NotificationOut]


class ReadAllOut(Schema):
    marked: int = Field(description="How many were unread")


class VapidKeyOut(Schema):
    public_key: str = Field(
        description="The VAPID public key, base64url: pass it as applicationServerKey"
    )


class SubscriptionKeys(Schema):
    p256dh: str = Field(min_length=1, max_length=200)
    auth: str = Field(min_length=1, max_length=100)


class SubscriptionIn(Schema):
    endpoint: str = Field(min_length=1, max_length=1000)
    keys: SubscriptionKeys
    user_agent: str = Field("", max_length=300)


class SubscriptionOut(Schema):
    id: int
    endpoint: str
    user_agent: str
    created_at: datetime
    last_success_at: datetime | None


class EndpointRef(Schema):
    endpoint: str = Field(min_length=1, max_length=1000)


class EventTypeOut(Schema):
    type: str
    description: str


class WebhookIn(Schema):
    url: str = Field(min_length=1, max_length=500)
    description: str = Field("", max_length=200)
    event_types: list[str] = Field(
        default_factory=list, description="Event types to receive; empty: all"
    )


class WebhookPatch(Schema):
    active: bool | None = None
    description: str | None = Field(None, max_length=200)
    event_types: list[str] | None = None


class WebhookOut(Schema):
    id: int
    organization_id: int
    url: str
    description: str
    event_types: list[str]
    active: bool
    created_at: datetime


class WebhookCreatedOut(WebhookOut):
    secret: str = Field(description="Verify signatures with it; shown only now")


class DeliveryOut(Schema):
    id: int
    msg_id: str = Field(description="The webhook-id header; the same on every attempt")
    endpoint_id: int
    event_type: str
    status: str = Field(description="pending, retrying, delivered or gave_up")
    attempts: int
    last_status: int | None = Field(description="The HTTP status of the last attempt")
    last_error: str
    created_at: datetime
    next_attempt_at: datetime | None
    delivered_at: datetime | None
    gave_up_at: datetime | None


def notification_out(n: Notification) -> dict[str, object]:
    return {
        "id": n.pk,
        "kind": n.kind,
        "title": n.title,
        "body": n.body,
        "url": n.url,
        "data": n.data,
        "created_at": n.created_at,
        "read_at": n.read_at,
    }


def webhook_out(e: WebhookEndpoint) -> dict[str, object]:
    return {
        "id": e.pk,
        "organization_id": e.organization_id,
        "url": e.url,
        "description": e.description,
        "event_types": e.event_types,
        "active": e.active,
        "created_at": e.created_at,
    }


def delivery_out(m: OutboxMessage) -> dict[str, object]:
    return {
        "id": m.pk,
        "msg_id": m.msg_id,
        "endpoint_id": m.webhook_endpoint_id,
        "event_type": m.event_type,
        "status": m.status,
        "attempts": m.attempts,
        "last_status": m.last_status,
        "last_error": m.last_error,
        "created_at": m.created_at,
        "next_attempt_at": m.next_attempt_at,
        "delivered_at": m.delivered_at,
        "gave_up_at": m.gave_up_at,
    }


# --- notifications ---------------------------------------------------------------


@router.get("notifications", response=NotificationPage, summary="Your notifications")
def list_notifications(
    request: HttpRequest,
    unread: bool = False,
    limit: int = param.Query(50, ge=1, le=500),
    offset: int = param.Query(0, ge=0),
) -> dict[str, object]:
    """Newest first; `unread=true` for the unread ones only."""
    user = actor(request)
    rows = selectors.notifications_of(user, unread_only=unread)
    return {
        "count": rows.count(),
        "unread": selectors.unread_count(user),
        "items": [notification_out(n) for n in rows[offset : offset + limit]],
    }


@router.post(
    "notifications/{notification_id}/read",
    response=NotificationOut,
    summary="Mark a notification read",
)
def read_notification(request: HttpRequest, notification_id: int) -> dict[str, object]:
    """Marking it again keeps the first read time. Another person's
    notification answers 404 `notification_not_found`."""
    return notification_out(services.mark_read(actor(request), notification_id))


@router.post("notifications/read-all", response=ReadAllOut, summary="Mark all read")
def read_all_notifications(request: HttpRequest) -> dict[str, object]:
    return {"marked": services.mark_all_read(actor(request))}


# --- Web Push ----------------------------------------------------------------------


@router.get("push/vapid-public-key", response=VapidKeyOut, summary="The Web Push public key")
def vapid_public_key(request: HttpRequest) -> dict[str, object]:
    """What a browser needs to subscribe (`pushManager.subscribe`). 404
    `push_not_configured` when the server has no VAPID key."""
    if not settings.DOORKEEP_VAPID_PUBLIC_KEY:
        raise NotFound("Web Push is not configured on this server.", code="push_not_configured")
    return {"public_key": settings.DOORKEEP_VAPID_PUBLIC_KEY}


@router.post(
    "push/subscriptions",
    response={200: SubscriptionOut, 201: SubscriptionOut},
    summary="Turn on push for a browser",
)
def subscribe(request: HttpRequest, body: SubscriptionIn) -> Status[dict[str, object]]:
    """Send the browser's `PushSubscription.toJSON()`. The same endpoint again
    updates its keys (200); a new one answers 201. Errors:
    `invalid_subscription` (400: not an https endpoint, keys that are not a
    P-256 key and a 16-byte secret), `too_many_subscriptions` (409)."""
    sub, created = services.subscribe_push(
        actor(request),
        endpoint=body.endpoint,
        p256dh=body.keys.p256dh,
        auth=body.keys.auth,
        user_agent=body.user_agent or request.headers.get("user-agent", ""),
    )
    out = {
        "id": sub.pk,
        "endpoint": sub.endpoint,
        "user_agent": sub.user_agent,
        "created_at": sub.created_at,
        "last_success_at": sub.last_success_at,
    }
    return Status(201 if created else 200, out)


@router.delete("push/subscriptions", response={204: None}, summary="Turn off push for a browser")
def unsubscribe(request: HttpRequest, body: EndpointRef) -> Status[None]:
    """By its endpoint. 404 `subscription_not_found` if you have none with it."""
    services.unsubscribe_push(actor(request), body.endpoint)
    return Status(204, None)


# --- webhooks ------------------------------------------------------------------------


@router.get("webhook-event-types", response=list[EventTypeOut], summary="Webhook event types")
def event_types(request: HttpRequest) -> list[dict[str, str]]:
    """Every event type an endpoint can subscribe to; payloads are described
    in the notifications guide."""
    return [{"type": value, "description": str(label)} for value, label in WebhookEvent.choices]


@router.get(
    "organizations/{organization_id}/webhooks",
    response=list[WebhookOut],
    summary="An organization's webhook endpoints",
)
def list_webhooks(request: HttpRequest, organization_id: int) -> list[dict[str, object]]:
    return [webhook_out(e) for e in selectors.endpoints_of(actor(request), organization_id)]


@router.post(
    "organizations/{organization_id}/webhooks",
    response={201: WebhookCreatedOut},
    summary="Add a webhook endpoint",
)
def create_webhook(
    request: HttpRequest, organization_id: int, body: WebhookIn
) -> Status[dict[str, object]]:
    """The answer holds the signing secret (`whsec_…`), shown only this once.
    Errors: `invalid_url` (400: not http(s)), `unknown_event_type` (400),
    `too_many_endpoints` (409)."""
    endpoint = services.create_endpoint(
        actor(request),
        organization_id,
        url=body.url,
        description=body.description,
        event_types=body.event_types,
    )
    return Status(201, {**webhook_out(endpoint), "secret": endpoint.secret})


@router.patch(
    "organizations/{organization_id}/webhooks/{webhook_id}",
    response=WebhookOut,
    summary="Turn an endpoint off or on, or change its event types",
)
def update_webhook(
    request: HttpRequest, organization_id: int, webhook_id: int, body: WebhookPatch
) -> dict[str, object]:
    endpoint = services.update_endpoint(
        actor(request),
        organization_id,
        webhook_id,
        active=body.active,
        description=body.description,
        event_types=body.event_types,
    )
    return webhook_out(endpoint)


@router.delete(
    "organizations/{organization_id}/webhooks/{webhook_id}",
    response={204: None},
    summary="Remove a webhook endpoint",
)
def delete_webhook(request: HttpRequest, organization_id: int, webhook_id: int) -> Status[None]:
    """Removes its delivery history too; waiting messages are not sent."""
    services.delete_endpoint(actor(request), organization_id, webhook_id)
    return Status(204, None)


@router.post(
    "organizations/{organization_id}/webhooks/{webhook_id}/test",
    response={202: DeliveryOut},
    summary="Send a test event to an endpoint",
)
def test_webhook(
    request: HttpRequest, organization_id: int, webhook_id: int
) -> Status[dict[str, object]]:
    """Queues a `webhook.test` event; follow it in the deliveries. 409
    `endpoint_inactive` for an endpoint that is off."""
    message = services.send_test_event(actor(request), organization_id, webhook_id)
    return Status(202, delivery_out(message))


@router.get(
    "organizations/{organization_id}/webhook-deliveries",
    response=list[DeliveryOut],
    summary="Recent webhook deliveries",
)
def list_deliveries(
    request: HttpRequest,
    organization_id: int,
    webhook_id: int | None = None,
    limit: int = param.Query(50, ge=1, le=200),
) -> list[dict[str, object]]:
    """Newest first, of all the organization's endpoints or of `webhook_id`."""
    rows = selectors.deliveries_of(
        actor(request), organization_id, endpoint_id=webhook_id, limit=limit
    )
    return [delivery_out(m) for m in rows]
