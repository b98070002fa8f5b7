"""Collaborators (R41) in the API: an organization's lock owners invite people
for one site or every site, see their access and end it; the invited person
accepts with the token from the emailed link."""

from __future__ import annotations

from datetime import datetime

from django.http import HttpRequest
from django.utils import timezone
from ninja import Router, Schema, Status
from pydantic import Field

from doorkeep.accounts.models import Membership
from doorkeep.api.util import actor
from doorkeep.collaborators import services
from doorkeep.collaborators.models import CollaboratorInvitation

router = Router(tags=["collaborators"])


class CollaboratorOut(Schema):
    membership_id: int
    user_id: int
    email: str
    name: str
    role: str
    property_id: int | None = Field(description="The one site of the access; null: every site")
    property: str | None
    ends_at: datetime | None = Field(description="The access grants nothing from then on")
    active: bool = Field(description="False once ends_at has passed")
    invited_by: str | None
    since: datetime
    last_login: datetime | None = Field(description="When the person last signed in")


class InvitationOut(Schema):
    id: int
    organization_id: int
    email: str
    role: str
    property_id: int | None
    property: str | None
    ends_at: datetime | None
    status: str = Field(description="sent, accepted, revoked or expired")
    invited_by: str | None
    accepted_by: str | None
    created_at: datetime
    expires_at: datetime = Field(description="The emailed link works until then")
    accepted_at: datetime | None
    revoked_at: datetime | None


class InvitationCreated(InvitationOut):
    sent: bool = Field(description="False when the mail server refused the message")


class InvitationIn(Schema):
    email: str = Field(min_length=3, max_length=254)
    role: str = Field(description="read_only or building_manager")
    property_id: int | None = Field(default=None, description="One site; null: every site")
    ends_at: datetime | None = Field(default=None, description="With a time zone; null: no end")


class AcceptIn(Schema):
    token: str = Field(min_length=1, max_length=200, description="From the emailed link")


class AcceptedOut(Schema):
    membership_id: int
    organization_id: int
    organization: str
    role: str
    property_id: int | None
    ends_at: datetime | None


def collaborator_out(m: Membership) -> dict[str, object]:
    return {
        "membership_id": m.pk,
        "user_id": m.user_id,
        "email": m.user.email,
        "name": m.user.name,
        "role": m.role,
        "property_id": m.property_id,
        "property": m.property.name if m.property else None,
        "ends_at": m.ends_at,
        "active": m.ends_at is None or m.ends_at > timezone.now(),
        "invited_by": m.invited_by.email if m.invited_by else None,
        "since": m.created_at,
        "last_login": m.user.last_login,
    }


def invitation_out(i: CollaboratorInvitation) -> dict[str, object]:
    return {
        "id": i.pk,
        "organization_id": i.organization_id,
        "email": i.email,
        "role": i.role,
        "property_id": i.property_id,
        "property": i.property.name if i.property else None,
        "ends_at": i.ends_at,
        "status": i.state,
        "invited_by": i.invited_by.email if i.invited_by else None,
        "accepted_by": i.accepted_by.email if i.accepted_by else None,
        "created_at": i.created_at,
        "expires_at": i.expires_at,
        "accepted_at": i.accepted_at,
        "revoked_at": i.revoked_at,
    }


@router.get(
    "organizations/{organization_id}/collaborators",
    response=list[CollaboratorOut],
    summary="The organization's collaborators (R41)",
)
def list_collaborators(request: HttpRequest, organization_id: int) -> list[dict[str, object]]:
    """Everyone with access to the organization but its lock owners, with
    their role, site, end and last sign-in. Lock owners only: 403 for others
    of the organization, 404 for anyone else."""
    return [collaborator_out(m) for m in services.collaborators(actor(request), organization_id)]


@router.delete(
    "organizations/{organization_id}/collaborators/{membership_id}",
    response={204: None},
    summary="End a collaborator's access",
)
def end_access(request: HttpRequest, organization_id: int, membership_id: int) -> Status[None]:
    """In one step: the membership is deleted and the person's sessions end
    (signed out everywhere). Errors: `owner_membership` (403)."""
    services.end_access(actor(request), organization_id, membership_id)
    return Status(204, None)


@router.get(
    "organizations/{organization_id}/collaborator-invitations",
    response=list[InvitationOut],
    summary="The organization's invitations to collaborate",
)
def list_invitations(request: HttpRequest, organization_id: int) -> list[dict[str, object]]:
    """Newest first (at most 200). Lock owners only."""
    return [invitation_out(i) for i in services.invitations(actor(request), organization_id)]


@router.post(
    "organizations/{organization_id}/collaborator-invitations",
    response={201: InvitationCreated},
    summary="Invite a collaborator (R41)",
)
def invite(
    request: HttpRequest, organization_id: int, body: InvitationIn
) -> Status[dict[str, object]]:
    """Email an invitation to one address, as `read_only` or
    `building_manager`, for one site (`property_id`) or every site, until
    `ends_at` or for good. The link works for 7 days and is only in the
    email. Errors: `invalid_email`, `invalid_role`, `invalid_end` (400),
    `needs_building_management` (403: a `building_manager` needs the
    organization's building management), `already_member`,
    `already_invited` (409)."""
    sent = services.invite(
        actor(request),
        organization_id,
        email=body.email,
        role=body.role,
        property_id=body.property_id,
        ends_at=body.ends_at,
    )
    return Status(201, {**invitation_out(sent.invitation), "sent": sent.sent})


@router.post(
    "collaborator-invitations/{collaborator_invitation_id}/revoke",
    response=InvitationOut,
    summary="Revoke an invitation",
)
def revoke(request: HttpRequest, collaborator_invitation_id: int) -> dict[str, object]:
    """Its link stops working. Errors: `not_pending` (409)."""
    return invitation_out(services.revoke(actor(request), collaborator_invitation_id))


@router.post(
    "collaborator-invitations/accept", response=AcceptedOut, summary="Accept an invitation"
)
def accept(request: HttpRequest, body: AcceptIn) -> dict[str, object]:
    """By the account whose address is exactly the invited one. Errors:
    `invitation_not_found` (404), `wrong_account` (403), `already_member`
    (409), `invitation_used`, `invitation_revoked`, `invitation_expired`,
    `access_ended` (410)."""
    membership = services.accept(actor(request), body.token)
    return {
        "membership_id": membership.pk,
        "organization_id": membership.organization_id,
        "organization": membership.organization.name,
        "role": membership.role,
        "property_id": membership.property_id,
        "ends_at": membership.ends_at,
    }
