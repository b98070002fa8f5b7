"""What guests tell others: the resident in the app, by Web Push and email,
integrators by webhook (R26, E4). Every call here runs inside the caller's
transaction, so the outbox rows commit or roll back with the event."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.apps import apps
from django.utils.translation import gettext as _

if TYPE_CHECKING:
    from doorkeep.guests.models import Invitation


def _notify() -> Any:
    if not apps.is_installed("doorkeep.notify"):
        return None
    from doorkeep.notify import services  # type: ignore[import-untyped,unused-ignore]

    return services


def emit(organization_id: int, event_type: str, payload: dict[str, Any]) -> None:
    notify = _notify()
    if notify is not None:
        notify.emit_webhook(organization_id, event_type, payload)


def answered(invitation: Invitation, *, accepted: bool) -> None:
    """Tell the resident that the guest accepted or declined."""
    notify = _notify()
    if notify is None:
        return
    from doorkeep.guests.services import _payload

    kind = "invitation.accepted" if accepted else "invitation.declined"
    notify.emit_webhook(invitation.property.organization_id, kind, _payload(invitation))
    title = (
        _("%(email)s accepted your invitation")
        if accepted
        else _("%(email)s declined your invitation")
    ) % {"email": invitation.email}
    notify.notify_users(
        [invitation.inviter_id],
        kind="invitation_answered",
        title=title,
        body=invitation.property.name,
        url="/guests/",
        data={"invitation_id": invitation.pk},
    )


def guest_unlocked(
    inviter_ids: list[int], organization_id: int, *, title: str, body: str, payload: dict[str, Any]
) -> None:
    """R26: each guest unlock notifies the resident(s) who shared the entry."""
    notify = _notify()
    if notify is None:
        return
    notify.notify_users(
        inviter_ids, kind="guest_unlock", title=title, body=body, url="/guests/", data=payload
    )
    notify.emit_webhook(organization_id, "guest.unlocked", payload)
