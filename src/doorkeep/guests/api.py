"""Guests in the API: the property's guest policy and panels (building
managers), invitations (residents), and the guest's own side: answering
invitations, shared locations, presence verification. Guests open doors with
POST /entries/{id}/unlock, like everyone with a phone key."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from django.http import HttpRequest
from ninja import Router, Schema, Status
from pydantic import Field

from doorkeep.api.util import actor
from doorkeep.core.errors import DomainError
from doorkeep.gateway import remote
from doorkeep.guests import presence, selectors, services, tags
from doorkeep.guests.models import GuestPolicy, Invitation, Panel, PanelTag

router = Router(tags=["guests"])


class PolicyOut(Schema):
    property_id: int
    sharing_enabled: bool = Field(description="Whether residents may share entries with guests")
    shareable_entry_ids: list[int]
    max_guests_per_resident: int
    require_presence: bool = Field(description="Guests verify presence at a panel first (R27)")
    reverify_after_days: int | None = Field(
        description="Days without use after which a guest verifies again (R28); null: never"
    )
    require_tag: bool = Field(
        description="Presence only by tapping an NTAG 424 DNA panel; typed codes are refused"
    )


Id = Annotated[int, Field(ge=1, le=2**63 - 1)]


class PolicyIn(Schema):
    sharing_enabled: bool
    shareable_entry_ids: list[Id] = Field(default_factory=list, max_length=1000)
    max_guests_per_resident: int = Field(default=5, ge=1, le=100)
    require_presence: bool = False
    reverify_after_days: int | None = Field(default=None, ge=1, le=365)
    require_tag: bool = False


class PanelOut(Schema):
    id: int
    entry_id: int
    name: str
    tag: Literal["code", "ntag424"] = Field(
        description="code: a time-based code on the display and in the tag; ntag424: an "
        "NTAG 424 DNA tag with Secure Unique NFC"
    )
    created_at: datetime


class PanelCreatedOut(PanelOut):
    secret: str | None = Field(
        description="code panels: the base32 TOTP secret, shown only this once"
    )
    otpauth_uri: str | None = Field(description="code panels: the secret as an otpauth:// URI")
    sdm_meta_read_key: str | None = Field(
        description="ntag424 panels: the AES key (hex) that encrypts PICCData, shown only once"
    )
    sdm_file_read_key: str | None = Field(
        description="ntag424 panels: the AES key (hex) of the SDMMAC, shown only once"
    )
    url_template: str | None = Field(
        description="ntag424 panels: the NDEF URL to program, PICCData and SDMMAC as zeros"
    )


class PanelIn(Schema):
    name: str = Field(default="Panel", max_length=100)
    tag: Literal["code", "ntag424"] = "code"


class EntryRef(Schema):
    id: int
    name: str


class InvitationOut(Schema):
    id: int
    property_id: int
    property: str
    email: str
    inviter: str
    entries: list[EntryRef]
    ends_at: datetime | None
    status: str = Field(description="sent, accepted, declined, expired or revoked")
    created_at: datetime
    sent_at: datetime
    times_sent: int
    link_expires_at: datetime
    answered_at: datetime | None
    revoked_at: datetime | None


class SentOut(InvitationOut):
    emailed: bool = Field(description="False if the mail server refused it; resend later")


class InvitationIn(Schema):
    property_id: Id
    email: str = Field(max_length=254)
    entry_ids: list[Id] = Field(max_length=1000)
    ends_at: datetime | None = None


class GuestEventOut(Schema):
    id: int
    kind: str
    reason: str
    occurred_at: datetime
    entry: str
    summary: str


class LocationOut(Schema):
    property_id: int
    property: str
    address: str
    shared_by: list[str]
    entries: list[EntryRef]
    presence_required: bool
    presence_verified: bool
    message: str = Field(description="What to do before unlocking, when anything")


class VerifyIn(Schema):
    code: str = Field(max_length=20, description="The 6-digit code the panel shows")
    panel_id: Id | None = None
    unlock: bool = Field(default=True, description="Open the entry once presence is verified")


class VerifyOut(Schema):
    verified: bool
    entry_id: int
    opened: bool
    unlock_error: dict[str, str] | None = Field(
        description="Why the door did not open (offline, no answer), when it did not"
    )


def policy_out(rules: GuestPolicy) -> dict[str, Any]:
    return {
        "property_id": rules.property_id,
        "sharing_enabled": rules.sharing_enabled,
        "shareable_entry_ids": sorted(services.shareable_entry_ids(rules)) if rules.pk else [],
        "max_guests_per_resident": rules.max_guests_per_resident,
        "require_presence": rules.require_presence,
        "reverify_after_days": rules.reverify_after_days,
        "require_tag": rules.require_tag,
    }


def panel_out(panel: Panel) -> dict[str, Any]:
    return {
        "id": panel.pk,
        "entry_id": panel.entry_id,
        "name": panel.name,
        "tag": panel.tag,
        "created_at": panel.created_at,
    }


def invitation_out(invitation: Invitation) -> dict[str, Any]:
    return {
        "id": invitation.pk,
        "property_id": invitation.property_id,
        "property": invitation.property.name,
        "email": invitation.email,
        "inviter": invitation.inviter.name or invitation.inviter.email,
        "entries": [{"id": e.pk, "name": e.name} for e in invitation.entries.all()],
        "ends_at": invitation.ends_at,
        "status": invitation.state,
        "created_at": invitation.created_at,
        "sent_at": invitation.sent_at,
        "times_sent": invitation.times_sent,
        "link_expires_at": invitation.link_expires_at,
        "answered_at": invitation.answered_at,
        "revoked_at": invitation.revoked_at,
    }


# --- building managers ---------------------------------------------------------


@router.get("properties/{property_id}/guest-policy", response=PolicyOut, summary="The guest policy")
def get_policy(request: HttpRequest, property_id: int) -> dict[str, Any]:
    return policy_out(selectors.visible_policy(actor(request), property_id))


@router.put(
    "properties/{property_id}/guest-policy", response=PolicyOut, summary="Set the guest policy"
)
def put_policy(request: HttpRequest, property_id: int, body: PolicyIn) -> dict[str, Any]:
    spec = services.PolicySpec(**body.dict())
    return policy_out(services.set_policy(actor(request), property_id, spec))


@router.get("entries/{entry_id}/panels", response=list[PanelOut], summary="An entry's panels")
def list_panels(request: HttpRequest, entry_id: int) -> list[dict[str, Any]]:
    return [panel_out(p) for p in selectors.panels_of(actor(request), entry_id)]


@router.post(
    "entries/{entry_id}/panels", response={201: PanelCreatedOut}, summary="Install a panel"
)
def add_panel(request: HttpRequest, entry_id: int, body: PanelIn) -> Status[dict[str, Any]]:
    if body.tag == PanelTag.NTAG424:
        panel, keys = tags.add_tag_panel(actor(request), entry_id, body.name)
        shown = {
            "sdm_meta_read_key": keys.sdm_meta_read_key,
            "sdm_file_read_key": keys.sdm_file_read_key,
            "url_template": keys.url_template,
        }
        return Status(201, {**panel_out(panel), **shown, "secret": None, "otpauth_uri": None})
    panel, secret = presence.add_panel(actor(request), entry_id, body.name)
    uri = presence.provisioning_uri(panel, secret)
    code_panel = {"secret": secret, "otpauth_uri": uri}
    none = {"sdm_meta_read_key": None, "sdm_file_read_key": None, "url_template": None}
    return Status(201, {**panel_out(panel), **code_panel, **none})


@router.delete("panels/{panel_id}", response={204: None}, summary="Remove a panel")
def remove_panel(request: HttpRequest, panel_id: int) -> Status[None]:
    presence.remove_panel(actor(request), panel_id)
    return Status(204, None)


# --- residents -------------------------------------------------------------------


@router.get("invitations", response=list[InvitationOut], summary="Invitations I sent")
def list_invitations(request: HttpRequest, property_id: int | None = None) -> list[dict[str, Any]]:
    rows = selectors.invitations_sent(actor(request), property_id=property_id)
    return [invitation_out(inv) for inv in rows]


@router.post("invitations", response={201: SentOut}, summary="Invite a guest (R20)")
def invite(request: HttpRequest, body: InvitationIn) -> Status[dict[str, Any]]:
    sent = services.invite(
        actor(request), body.property_id, body.email, body.entry_ids, ends_at=body.ends_at
    )
    return Status(201, {**invitation_out(sent.invitation), "emailed": sent.emailed})


@router.get("invitations/{invitation_id}", response=InvitationOut, summary="One invitation")
def get_invitation(request: HttpRequest, invitation_id: int) -> dict[str, Any]:
    return invitation_out(selectors.invitation_for(actor(request), invitation_id))


@router.post(
    "invitations/{invitation_id}/resend", response=SentOut, summary="Send again, with a new link"
)
def resend(request: HttpRequest, invitation_id: int) -> dict[str, Any]:
    sent = services.resend(actor(request), invitation_id)
    return {**invitation_out(sent.invitation), "emailed": sent.emailed}


@router.post(
    "invitations/{invitation_id}/revoke",
    response=InvitationOut,
    summary="Revoke: the guest's keys are taken back at once",
)
def revoke(request: HttpRequest, invitation_id: int) -> dict[str, Any]:
    return invitation_out(services.revoke(actor(request), invitation_id))


@router.get(
    "invitations/{invitation_id}/events",
    response=list[GuestEventOut],
    summary="The guest's unlocks and attempts at the property (R26)",
)
def guest_events(request: HttpRequest, invitation_id: int) -> list[dict[str, Any]]:
    return selectors.guest_events(actor(request), invitation_id)


# --- the guest -----------------------------------------------------------------


@router.get("guest/invitations", response=list[InvitationOut], summary="Invitations waiting for me")
def pending(request: HttpRequest) -> list[dict[str, Any]]:
    return [invitation_out(inv) for inv in selectors.pending_for(actor(request))]


@router.post(
    "guest/invitations/{invitation_id}/accept", response=InvitationOut, summary="Accept (R22)"
)
def accept(request: HttpRequest, invitation_id: int) -> dict[str, Any]:
    return invitation_out(services.accept(actor(request), invitation_id))


@router.post(
    "guest/invitations/{invitation_id}/decline", response=InvitationOut, summary="Decline (R23)"
)
def decline(request: HttpRequest, invitation_id: int) -> dict[str, Any]:
    return invitation_out(services.decline(actor(request), invitation_id))


@router.post(
    "guest/invitations/{invitation_id}/leave",
    response=InvitationOut,
    summary="Give an accepted invitation's access back",
)
def leave(request: HttpRequest, invitation_id: int) -> dict[str, Any]:
    return invitation_out(services.leave(actor(request), invitation_id))


@router.get(
    "guest/locations", response=list[LocationOut], summary="Shared locations and entries (R24)"
)
def locations(request: HttpRequest) -> list[dict[str, Any]]:
    return [loc.as_dict() for loc in selectors.locations(actor(request))]


@router.post(
    "guest/entries/{entry_id}/verify",
    response=VerifyOut,
    summary="Verify presence with the panel's code, then open (R27)",
)
def verify(request: HttpRequest, entry_id: int, body: VerifyIn) -> dict[str, Any]:
    user = actor(request)
    entry = presence.verify(user, entry_id, body.code, panel_id=body.panel_id)
    opened, error = False, None
    if body.unlock:
        try:
            remote.remote_unlock(user, entry.pk)
            opened = True
        except DomainError as exc:  # verified all the same; say why the door stayed shut
            error = {"code": exc.code, "message": exc.message}
    return {"verified": True, "entry_id": entry.pk, "opened": opened, "unlock_error": error}
