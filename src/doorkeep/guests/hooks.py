"""What guests tell others: the resident in the app, by Web Push and email,
integrators by webhook (R26, E4). Every call here runs inside the caller's
transaction, so the outbox rows commit or roll back with the change. The
payloads are documented in docs/notifications.md."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.utils import timezone
from django.utils.translation import gettext as _

from doorkeep.notify import services as notify
from doorkeep.notify.models import NotificationKind, WebhookEvent

if TYPE_CHECKING:
    from doorkeep.accounts.models import User
    from doorkeep.guests.models import Invitation


def person(user: User) -> dict[str, Any]:
    return {"id": user.pk, "email": user.email, "name": user.name or user.email}


def invitation_data(invitation: Invitation) -> dict[str, Any]:
    prop = invitation.property
    return {
        "invitation": {
            "id": invitation.pk,
            "email": invitation.email,
            "status": invitation.state,
            "property": {"id": prop.pk, "name": prop.name},
            "entries": [{"id": e.pk, "name": e.name} for e in invitation.entries.all()],
            "invited_by": person(invitation.inviter),
            "ends_at": invitation.ends_at.isoformat() if invitation.ends_at else None,
            "expires_at": invitation.link_expires_at.isoformat(),
        },
        "occurred_at": timezone.now().isoformat(),
    }


def changed(invitation: Invitation, event_type: str) -> None:
    """An invitation was sent, accepted, declined, revoked or expired."""
    notify.emit_webhook(
        invitation.property.organization_id, event_type, invitation_data(invitation)
    )


def answered(invitation: Invitation, *, accepted: bool) -> None:
    """Tell the resident that the guest accepted or declined, and integrators."""
    changed(
        invitation,
        WebhookEvent.INVITATION_ACCEPTED if accepted else WebhookEvent.INVITATION_DECLINED,
    )
    title = (
        _("%(email)s accepted your invitation")
        if accepted
        else _("%(email)s declined your invitation")
    ) % {"email": invitation.email}
    notify.notify_users(
        [invitation.inviter_id],
        kind=NotificationKind.INVITATION_ANSWERED,
        title=title,
        body=invitation.property.name,
        url=f"/guests/invitations/{invitation.pk}/",
        data={"invitation_id": invitation.pk},
        where=invitation.property,
    )


def expired(invitation: Invitation) -> None:
    changed(invitation, WebhookEvent.INVITATION_EXPIRED)
    notify.notify_users(
        [invitation.inviter_id],
        kind=NotificationKind.INVITATION_ANSWERED,
        title=_("Your invitation of %(email)s has expired") % {"email": invitation.email},
        body=invitation.property.name,
        url=f"/guests/invitations/{invitation.pk}/",
        data={"invitation_id": invitation.pk},
        where=invitation.property,
    )


def guest_unlocked(
    guest: User, invitations: list[Invitation], *, entry: Any, event_id: int, title: str, body: str
) -> None:
    """R26: each guest unlock notifies the resident(s) who shared the entry,
    in the app, by push and (if they chose) email; and one webhook per share."""
    told: set[int] = set()
    for invitation in invitations:  # each resident, with a link to their own invitation
        if invitation.inviter_id in told:
            continue
        told.add(invitation.inviter_id)
        notify.notify_users(
            [invitation.inviter_id],
            kind=NotificationKind.GUEST_UNLOCK,
            title=title,
            body=body,
            url=f"/guests/invitations/{invitation.pk}/",
            data={"event_id": event_id, "entry_id": entry.pk, "guest_id": guest.pk},
            where=entry.property,
        )
    prop = entry.property
    for invitation in invitations:
        notify.emit_webhook(
            prop.organization_id,
            WebhookEvent.GUEST_UNLOCKED,
            {
                "property": {"id": prop.pk, "name": prop.name},
                "entry": {"id": entry.pk, "name": entry.name},
                "guest": person(guest),
                "shared_by": person(invitation.inviter),
                "invitation_id": invitation.pk,
                "event_id": event_id,
                "decision": "granted",
                "outcome": "opened",
                "occurred_at": timezone.now().isoformat(),
            },
        )
