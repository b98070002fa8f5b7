"""Portal logins in the API (R40): asking for one with the site's code and
confirming the address need no account; the site's manager lists and
decides the requests, prints the notice's code and invites every resident."""

from __future__ import annotations

from datetime import datetime

from django.http import HttpRequest
from ninja import Router, Schema, Status
from pydantic import Field

from doorkeep import policy
from doorkeep.api.util import actor
from doorkeep.core.clientip import client_address
from doorkeep.properties.services import get_property
from doorkeep.residents import portal
from doorkeep.residents.models import LoginRequest

router = Router(tags=["portal logins"])


class AskIn(Schema):
    code: str = Field(max_length=20, description="The code on the notice in the building")
    name: str = Field(max_length=150)
    email: str = Field(max_length=254)
    unit: str = Field(max_length=40, description="As on your door or letterbox")


class AskOut(Schema):
    status: str
    message: str


class ConfirmIn(Schema):
    token: str = Field(max_length=100, description="From the link in the confirmation email")


class LoginRequestOut(Schema):
    id: int
    property_id: int
    unit: str
    name: str
    email: str
    status: str = Field(description="unconfirmed, pending, approved or refused")
    approved_as_resident: bool
    refusal_reason: str
    created_at: datetime
    confirmed_at: datetime | None
    decided_at: datetime | None


class DecisionIn(Schema):
    approve: bool
    reason: str = Field(default="", max_length=300, description="Required when refusing")


class CodeOut(Schema):
    code: str
    url: str


class InvitedOut(Schema):
    invited: int


def out(item: LoginRequest) -> dict[str, object]:
    return {
        **{
            k: getattr(item, k)
            for k in (
                "id",
                "property_id",
                "name",
                "email",
                "status",
                "approved_as_resident",
                "refusal_reason",
                "created_at",
                "confirmed_at",
                "decided_at",
            )
        },
        "unit": item.unit.label,
    }


@router.post(
    "portal/login-requests",
    response={201: AskOut},
    auth=None,
    summary="Ask for a portal login with the site's code (no account needed)",
)
def ask(request: HttpRequest, body: AskIn) -> Status[dict[str, str]]:
    portal.ask_for_login(
        body.code,
        name=body.name,
        email=body.email,
        unit=body.unit,
        client=client_address(request),
    )
    return Status(
        201,
        {
            "status": "unconfirmed",
            "message": "Check your email and confirm your address with the link sent to it.",
        },
    )


@router.post(
    "portal/login-requests/confirm",
    response=AskOut,
    auth=None,
    summary="Confirm the address of a login request (the emailed link's token)",
)
def confirm(request: HttpRequest, body: ConfirmIn) -> dict[str, str]:
    item = portal.confirm_login_request(body.token)
    message = (
        "Your login is approved: sign in, or create your account, with this address."
        if item.status == "approved"
        else "Your address is confirmed; the site's manager will decide on your request."
    )
    return {"status": item.status, "message": message}


@router.get(
    "properties/{property_id}/login-requests",
    response=list[LoginRequestOut],
    summary="The site's portal login requests",
)
def list_requests(request: HttpRequest, property_id: int) -> list[dict[str, object]]:
    prop = get_property(actor(request), property_id, policy.Action.MANAGE_RESIDENTS)
    rows = prop.login_requests.exclude(status="unconfirmed").select_related("unit")
    return [out(item) for item in rows[:500]]


@router.post(
    "login-requests/{login_request_id}/decision",
    response=LoginRequestOut,
    summary="Approve or refuse a portal login",
)
def decide(request: HttpRequest, login_request_id: int, body: DecisionIn) -> dict[str, object]:
    item = portal.decide_login_request(
        actor(request), login_request_id, approve=body.approve, reason=body.reason
    )
    return out(item)


@router.get(
    "properties/{property_id}/portal-code",
    response=CodeOut,
    summary="The code and link for the notice in the building",
)
def code(request: HttpRequest, property_id: int) -> dict[str, str]:
    shown = portal.portal_code(actor(request), property_id)
    return {"code": shown, "url": portal.join_url(shown)}


@router.post(
    "properties/{property_id}/residents/invite",
    response=InvitedOut,
    summary="Invite every resident without a login to the portal",
)
def invite(request: HttpRequest, property_id: int) -> dict[str, int]:
    return {"invited": portal.invite_residents(actor(request), property_id)}
