"""The three ways out: Web Push, email and webhooks. Each sends one outbox
message and says how it went; retrying is the outbox's business."""

from __future__ import annotations

import json
import smtplib
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import requests
from django.conf import settings
from django.core.mail import EmailMessage
from django.utils import timezone
from django.utils.translation import gettext as _
from pywebpush import WebPushException, webpush  # type: ignore[import-untyped]
from standardwebhooks import Webhook

from doorkeep.core.errors import InvalidInput
from doorkeep.notify import outbound
from doorkeep.notify.models import Channel, OutboxMessage, PushSubscription

PUSH_TTL = 24 * 3600  # seconds a push service keeps a message for an offline device
PUSH_TIMEOUT = 10  # seconds
USER_AGENT = "Doorkeep-Webhooks/1"


@dataclass(frozen=True)
class Result:
    ok: bool
    status: int | None = None
    error: str = ""
    final: bool = False  # no point in trying again


def send(message: OutboxMessage) -> Result:
    if message.channel == Channel.PUSH:
        return send_push(message)
    if message.channel == Channel.EMAIL:
        return send_email(message)
    if message.channel == Channel.WEBHOOK:
        return send_webhook(message)
    return Result(ok=False, error=f"unknown channel {message.channel!r}", final=True)


def _session() -> requests.Session:
    return outbound.session()


def _failed(exc: Exception) -> Result:
    if outbound.refused(exc):  # the address will not become public by waiting
        return Result(ok=False, error=f"refused: {exc}"[:500], final=True)
    return Result(ok=False, error=f"{type(exc).__name__}: {exc}"[:500])


def send_push(message: OutboxMessage) -> Result:
    subscription = message.push_subscription
    if subscription is None:
        return Result(ok=False, error="the browser's subscription was removed", final=True)
    if not settings.DOORKEEP_VAPID_PRIVATE_KEY:
        return Result(ok=False, error="Web Push is not configured (no VAPID key)", final=True)
    info = {
        "endpoint": subscription.endpoint,
        "keys": {"p256dh": subscription.p256dh, "auth": subscription.auth},
    }
    try:
        with _session() as session:
            response: Any = webpush(
                subscription_info=info,
                data=json.dumps(message.payload),
                vapid_private_key=settings.DOORKEEP_VAPID_PRIVATE_KEY,
                vapid_claims={"sub": settings.DOORKEEP_VAPID_SUBJECT},
                ttl=PUSH_TTL,
                timeout=PUSH_TIMEOUT,
                requests_session=session,
            )
    except WebPushException as exc:
        status = exc.status_code
        if status in (404, 410):  # the browser unsubscribed, or the subscription expired
            subscription.delete()
            return Result(
                ok=False,
                status=status,
                error="the push service says the subscription is gone; it was removed",
                final=True,
            )
        return Result(ok=False, status=status, error=str(exc)[:500])
    except (requests.RequestException, OSError, ValueError) as exc:
        return _failed(exc)
    PushSubscription.objects.filter(pk=subscription.pk).update(last_success_at=timezone.now())
    return Result(ok=True, status=response.status_code)


def send_email(message: OutboxMessage) -> Result:
    """An email to the message's user, or to ``payload["to"]`` (a resident
    without an account gets their invoices too); ``payload["invoice_id"]``
    attaches that invoice's PDF, as it was finalized."""
    user = message.user
    payload = message.payload
    to = str(payload.get("to") or "")
    if not to and (user is None or not user.email or not user.is_active):
        return Result(ok=False, error="no active account with an email address", final=True)
    text = str(payload.get("body", ""))
    if payload.get("url"):
        text += f"\n\n{payload['url']}"
    if to:
        text += "\n\n--\nDoorkeep"
    else:
        text += "\n\n--\nDoorkeep. Change which emails you get in your notification settings."
    email = EmailMessage(
        settings.ACCOUNT_EMAIL_SUBJECT_PREFIX + str(payload.get("subject", "")),
        text,
        None,
        [to or (user.email if user else "")],
    )
    if payload.get("invoice_id"):
        from doorkeep.billing.models import Invoice

        invoice = Invoice.objects.filter(pk=payload["invoice_id"]).only("number", "pdf").first()
        if invoice is None or not invoice.pdf:
            return Result(ok=False, error="the invoice or its PDF is gone", final=True)
        email.attach(f"{invoice.number}.pdf", bytes(invoice.pdf), "application/pdf")
    try:
        email.send()
    except (smtplib.SMTPException, OSError) as exc:
        return Result(ok=False, error=f"{type(exc).__name__}: {exc}"[:500])
    return Result(ok=True)


def webhook_headers(secret: str, msg_id: str, body: str) -> dict[str, str]:
    """The Standard Webhooks headers for one attempt: id, timestamp, signature."""
    moment = timezone.now()
    return {
        "content-type": "application/json",
        "user-agent": USER_AGENT,
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(moment.timestamp())),
        "webhook-signature": Webhook(secret).sign(msg_id, moment, body),
    }


def check_webhook_url(url: str) -> str:
    url = url.strip()
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidInput(
            _("A webhook URL must start with https:// (or http://) and name a host."),
            code="invalid_url",
        )
    if len(url) > 500:
        raise InvalidInput(_("A webhook URL is at most 500 characters."), code="invalid_url")
    if "@" in parts.netloc:  # it would be shown in the list of endpoints, and is not needed
        raise InvalidInput(
            _("A webhook URL may not hold a user name or password: deliveries are signed."),
            code="invalid_url",
        )
    try:  # read as deliveries will read it: host names in IDNA, ports up to 65535
        requests.models.PreparedRequest().prepare_url(url, None)
    except (requests.exceptions.InvalidURL, ValueError):
        raise InvalidInput(
            _("This webhook URL cannot be reached: check its host name and port."),
            code="invalid_url",
        ) from None
    address = outbound.literal_address(parts.hostname)
    if address is not None and not outbound.private_allowed() and not outbound.is_public(address):
        raise InvalidInput(
            _("A webhook URL must reach the internet, not a private or reserved address."),
            code="invalid_url",
        )
    return url


def send_webhook(message: OutboxMessage) -> Result:
    endpoint = message.webhook_endpoint
    if endpoint is None or not endpoint.active:
        return Result(ok=False, error="the endpoint is turned off or removed", final=True)
    try:
        url = check_webhook_url(endpoint.url)
    except InvalidInput as exc:
        return Result(ok=False, error=exc.message, final=True)
    body = json.dumps(message.payload, separators=(",", ":"))
    try:
        with _session() as session:
            response = session.post(
                url,
                data=body.encode(),
                headers=webhook_headers(endpoint.secret, message.msg_id, body),
                timeout=settings.DOORKEEP_WEBHOOK_TIMEOUT,
                allow_redirects=False,
            )
    except requests.RequestException as exc:
        return _failed(exc)
    if 200 <= response.status_code < 300:
        return Result(ok=True, status=response.status_code)
    return Result(
        ok=False,
        status=response.status_code,
        error=f"HTTP {response.status_code}: {response.text[:300]}",
    )
