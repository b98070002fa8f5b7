from __future__ import annotations

from datetime import datetime

from django.http import HttpRequest
from ninja import Router, Schema, Status
from pydantic import Field

from doorkeep import policy
from doorkeep.accounts import services
from doorkeep.accounts.models import ApiToken, Membership
from doorkeep.api.util import actor
from doorkeep.core.clientip import client_address

router = Router(tags=["accounts"])


class TokenRequest(Schema):
    email: str = Field(min_length=3, max_length=254)
    password: str = Field(min_length=1, max_length=4096)
    name: str = Field(default="API token", max_length=100)


class TokenOut(Schema):
    id: int
    name: str
    hint: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


class TokenCreated(TokenOut):
    token: str = Field(description="The token itself. It is shown only this once.")


class MembershipOut(Schema):
    organization_id: int
    organization: str
    role: str
    property_id: int | None = Field(
        default=None, description="A collaborator's one site; null: every site"
    )
    ends_at: datetime | None = Field(default=None, description="No access from then on")


class MeOut(Schema):
    id: int
    email: str
    name: str
    memberships: list[MembershipOut]
    platform_operator: bool


def _token_out(row: ApiToken) -> dict[str, object]:
    return {
        "id": row.pk,
        "name": row.name,
        "hint": row.hint,
        "created_at": row.created_at,
        "last_used_at": row.last_used_at,
        "revoked_at": row.revoked_at,
    }


@router.post("auth/tokens", auth=None, response={201: TokenCreated}, summary="Create an API token")
def create_token(request: HttpRequest, body: TokenRequest) -> Status[dict[str, object]]:
    """Exchange an email address and password for a bearer token. Failed
    passwords are limited as on the web sign-in: per account from one address,
    per account from everywhere, and per address (`rate_limited`, 429)."""
    row, token = services.create_token_with_password(
        body.email, body.password, body.name, client_ip=client_address(request)
    )
    return Status(201, {**_token_out(row), "token": token})


@router.get("auth/tokens", response=list[TokenOut], summary="List your API tokens")
def list_tokens(request: HttpRequest) -> list[dict[str, object]]:
    return [_token_out(t) for t in ApiToken.objects.filter(user=actor(request)).order_by("-id")]


@router.delete("auth/tokens/{token_id}", response={204: None}, summary="Revoke an API token")
def revoke_token(request: HttpRequest, token_id: int) -> Status[None]:
    services.revoke_token(actor(request), token_id)
    return Status(204, None)


@router.get("me", response=MeOut, summary="The signed-in account")
def me(request: HttpRequest) -> dict[str, object]:
    user = actor(request)
    memberships = Membership.objects.filter(user=user).select_related("organization")
    return {
        "id": user.pk,
        "email": user.email,
        "name": user.name,
        "memberships": [
            {
                "organization_id": m.organization_id,
                "organization": m.organization.name,
                "role": m.role,
                "property_id": m.property_id,
                "ends_at": m.ends_at,
            }
            for m in memberships
        ],
        "platform_operator": policy.is_platform_operator(user),
    }
