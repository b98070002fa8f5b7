"""What badge changes tell people: the resident and the operators in the app
(and by Web Push), integrators by signed webhook (E4). Called inside the
caller's transaction, so nothing is sent for a change that rolled back. The
payloads are documented in docs/notifications.md."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from doorkeep.notify import services as notify
from doorkeep.notify.models import NotificationKind, WebhookEvent

if TYPE_CHECKING:
    from doorkeep.badges.models import Badge, BadgeRequest


def badge_data(badge: Badge) -> dict[str, Any]:
    return {
        "id": badge.pk,
        "uid": badge.uid,
        "source": badge.source,
        "status": badge.status,
        "person": {"id": badge.person_id, "name": badge.person.name},
    }


def request_data(request: BadgeRequest) -> dict[str, Any]:
    return {
        "id": request.pk,
        "status": request.status,
        "extra": request.extra,
        "price_minor": request.price_minor,
        "currency": request.currency,
        "property": {"id": request.property_id, "name": request.property.name},
        "person": {"id": request.person_id, "name": request.person.name},
        "parking_space": request.parking_space.number if request.parking_space else None,
        "station_serial": request.station_serial or None,
    }


def _tell_holder(request: BadgeRequest, title: str) -> None:
    if request.person.user_id is None:
        return
    notify.notify_users(
        [request.person.user_id],
        kind=NotificationKind.BADGE,
        title=title,
        body=request.property.name,
        url="/portal/",
        data={"badge_request_id": request.pk},
        where=request.property,
    )


def requested(request: BadgeRequest) -> None:
    from doorkeep.badges.selectors import operator_ids

    notify.notify_users(
        operator_ids(),
        kind=NotificationKind.BADGE,
        title=_("%(name)s asked for a badge") % {"name": request.person.name},
        body=request.property.name,
        url="/operator/badges/",
        data={"badge_request_id": request.pk},
        where=request.property,
    )
    notify.emit_webhook(
        request.organization_id,
        WebhookEvent.BADGE_REQUESTED,
        {"request": request_data(request), "occurred_at": timezone.now().isoformat()},
    )


_TITLES = {
    "approved": gettext_lazy("Your badge request was approved"),
    "assigned": gettext_lazy("A badge was assigned to you"),
    "sent": gettext_lazy("Your badge is on its way"),
    "active": gettext_lazy("Your badge is active"),
    "refused": gettext_lazy("Your badge request was refused"),
}


def request_changed(request: BadgeRequest) -> None:
    title = _TITLES.get(request.status)
    if title:
        _tell_holder(request, str(title))


def assigned(request: BadgeRequest) -> None:
    request_changed(request)
    if request.badge is not None:
        notify.emit_webhook(
            request.organization_id,
            WebhookEvent.BADGE_ASSIGNED,
            {
                "request": request_data(request),
                "badge": badge_data(request.badge),
                "occurred_at": timezone.now().isoformat(),
            },
        )


def _badge_changed(badge: Badge, event: str, title: str) -> None:
    if badge.person.user_id is not None:
        notify.notify_users(
            [badge.person.user_id],
            kind=NotificationKind.BADGE,
            title=title,
            body=badge.uid,
            url="/portal/",
            data={"badge_id": badge.pk},
        )
    notify.emit_webhook(
        badge.organization_id,
        event,
        {"badge": badge_data(badge), "occurred_at": timezone.now().isoformat()},
    )


def lost(badge: Badge) -> None:
    _badge_changed(
        badge, WebhookEvent.BADGE_LOST, _("Your badge %(uid)s is switched off") % {"uid": badge.uid}
    )


def reactivated(badge: Badge) -> None:
    _badge_changed(
        badge,
        WebhookEvent.BADGE_REACTIVATED,
        _("Your badge %(uid)s works again") % {"uid": badge.uid},
    )
