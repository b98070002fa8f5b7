"""Licences of locks, prepaid codes and account upgrades (R4-R13).

Errors of prepaid codes (``code``, HTTP status): ``code_typo`` (400, a
symbol is wrong or two are swapped), ``not_a_code`` (400), ``unknown_code``
(404), ``code_used`` (409), ``code_expired`` (400), ``wrong_product`` (400,
an account upgrade entered on a lock or a lock's code entered as an upgrade),
``option_needs_management`` (400, the option needs running 5-year management;
the code is not used), ``already_upgraded`` (409, the code is not used) and
``rate_limited`` (429, with Retry-After) after too many refused codes in an
hour from one account or one address."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from django.http import HttpRequest
from django.utils import timezone
from ninja import Router, Schema
from ninja.params import functions as param
from pydantic import Field

from doorkeep import policy
from doorkeep.accounts.models import Membership, Organization
from doorkeep.api.util import actor
from doorkeep.core.clientip import client_address
from doorkeep.licensing import selectors, services
from doorkeep.licensing.models import KeyAllotment, Period
from doorkeep.licensing.state import LicenceState, days_left, licence_of
from doorkeep.locks.services import get_lock

router = Router(tags=["licences"])

Mode = Literal["free", "active", "take_back_only"]


class LicenceStateOut(Schema):
    mode: Mode = Field(
        description="free: the free period of the first registration; active: paid "
        "management; take_back_only: keys can be taken back and codes entered, nothing else"
    )
    can_manage: bool = Field(
        description="Keys can be issued and changed (mode is not take_back_only)"
    )
    free_ends_at: datetime | None
    management_ends_at: datetime | None = Field(description="The end of the latest paid period")
    full_until: datetime | None = Field(description="When full management ends, if it runs now")
    ended_at: datetime | None = Field(description="When full management ended (take_back_only)")
    option_ends_at: datetime | None = Field(
        description="The end of the option 'issue keys to organizations'"
    )
    option_active: bool = Field(
        description="The option works now: it runs, and so does paid management"
    )
    keys_purchased: int = Field(description="Keys included with the lock plus key packs")
    keys_issued: int = Field(description="Keys not taken back (people's and organizations')")
    keys_available: int


class PeriodOut(Schema):
    kind: Literal["free", "management", "organizations_option"]
    starts_at: datetime
    ends_at: datetime
    product: str | None = Field(description="The product of the code; empty for the free period")
    sku: str | None


class AllotmentOut(Schema):
    keys: int
    included: bool = Field(description="Came with the first registration")
    created_at: datetime
    product: str | None
    sku: str | None


class HistoryOut(Schema):
    periods: list[PeriodOut]
    key_allotments: list[AllotmentOut]


class LicenceOut(Schema):
    lock_id: int
    state: LicenceStateOut
    history: HistoryOut


class CodeIn(Schema):
    code: str = Field(
        min_length=1,
        max_length=64,
        description="As printed, e.g. 7KQ2-M9XW-4TNB-8HRC-J5DF; case, spaces and dashes "
        "don't matter",
    )


class CodeAppliedOut(Schema):
    product: str
    sku: str
    kind: str
    summary: str
    ends_at: datetime | None = Field(description="The new end of the period it extended")
    licence: LicenceStateOut


class EndingSoonOut(Schema):
    lock_id: int
    name: str
    serial: str
    organization_id: int
    property_id: int | None
    property: str | None
    entry: str | None
    mode: Literal["free", "active"]
    full_until: datetime
    days_left: int = Field(
        description="Days from today to the day it ends, both on the calendar of the lock's "
        "property, as the dashboard counts them (0: it ends today)"
    )


class OrganizationOut(Schema):
    id: int
    name: str
    role: str = Field(description="Your role in it")
    building_management_since: datetime | None
    organization_management_since: datetime | None


class UpgradeAppliedOut(Schema):
    product: str
    sku: str
    summary: str
    organization: OrganizationOut


def state_out(state: LicenceState) -> dict[str, object]:
    return {
        "mode": state.mode,
        "can_manage": state.can_manage,
        "free_ends_at": state.free_ends_at,
        "management_ends_at": state.management_ends_at,
        "full_until": state.full_until,
        "ended_at": state.ended_at,
        "option_ends_at": state.option_ends_at,
        "option_active": state.option_active,
        "keys_purchased": state.keys_purchased,
        "keys_issued": state.keys_issued,
        "keys_available": state.keys_available,
    }


def _product(row: Period | KeyAllotment) -> dict[str, str | None]:
    if row.code is None:
        return {"product": None, "sku": None}
    product = row.code.batch.product
    return {"product": product.name, "sku": product.sku}


def _organization_out(org: Organization, role: str | None) -> dict[str, object]:
    return {
        "id": org.pk,
        "name": org.name,
        "role": role or "",
        "building_management_since": org.building_management_since,
        "organization_management_since": org.organization_management_since,
    }


@router.get("locks/{lock_id}/licence", response=LicenceOut, summary="A lock's licence (R4-R10)")
def get_licence(request: HttpRequest, lock_id: int) -> dict[str, object]:
    """The lock's licence now (computed from its dated periods, at the moment
    of the request) and its history: periods and key allotments, oldest first.
    For lock owners and building managers of the lock's organization; a
    member gets 403, anyone else 404."""
    lock = get_lock(actor(request), lock_id, policy.Action.VIEW_KEYS)
    history = selectors.history_of(lock.pk)
    return {
        "lock_id": lock.pk,
        "state": state_out(licence_of(lock.pk)),
        "history": {
            "periods": [
                {"kind": p.kind, "starts_at": p.starts_at, "ends_at": p.ends_at, **_product(p)}
                for p in history.periods
            ],
            "key_allotments": [
                {"keys": a.keys, "included": a.included, "created_at": a.created_at, **_product(a)}
                for a in history.allotments
            ],
        },
    }


@router.post(
    "locks/{lock_id}/licence/codes",
    response=CodeAppliedOut,
    summary="Enter a prepaid code for a lock (R5, R9, R10)",
)
def redeem_for_lock(request: HttpRequest, lock_id: int, body: CodeIn) -> dict[str, object]:
    """Enter a code for 5 years of management (added to the later of now and
    the current end of full management), for the option "issue keys to
    organizations" (5 years, only while paid management runs) or for a key
    pack. Possible in every licence state, also in take-back-only mode, which a
    management code ends. Lock owners only (403 for others of the organization).

    Errors: `code_typo`, `not_a_code`, `code_expired`, `wrong_product`,
    `option_needs_management` (400), `unknown_code` (404), `code_used` (409),
    `rate_limited` (429). Every code entered, accepted or refused, is written
    to the lock's event log (`code.redeemed`, `code.refused` with the reason)."""
    user = actor(request)
    result = services.redeem_for_lock(user, lock_id, body.code, client_ip=client_address(request))
    return {
        "product": result.product.name,
        "sku": result.product.sku,
        "kind": result.product.kind,
        "summary": result.summary,
        "ends_at": result.ends_at,
        "licence": state_out(licence_of(lock_id)),
    }


@router.get(
    "licences/ending-soon",
    response=list[EndingSoonOut],
    summary="Your locks whose management ends soon",
)
def ending_soon(
    request: HttpRequest, days: int = param.Query(30, ge=1, le=365)
) -> list[dict[str, object]]:
    """The locks of your organizations (where you are a lock owner or building
    manager) whose full management, free or paid, ends within `days` days
    (1-365, default 30), soonest first. Locks already in take-back-only mode
    are not listed; GET locks/{id}/licence shows them."""
    now = timezone.now()
    result = []
    for row in selectors.ending_soon(actor(request), days, at=now):
        lock = row.lock
        entry = lock.entry
        result.append(
            {
                "lock_id": lock.pk,
                "name": lock.name,
                "serial": lock.serial,
                "organization_id": lock.organization_id,
                "property_id": entry.property_id if entry else None,
                "property": entry.property.name if entry else None,
                "entry": entry.name if entry else None,
                "mode": row.mode,
                "full_until": row.full_until,
                "days_left": days_left(row.full_until, now, lock),
            }
        )
    return result


@router.get("organizations", response=list[OrganizationOut], summary="Your organizations")
def list_organizations(request: HttpRequest) -> list[dict[str, object]]:
    """The organizations you are a member of, with your role and the account
    upgrades each has (R12, R13). A collaborator's access to one site (see
    GET me) is not listed: the organization's settings are not theirs."""
    user = actor(request)
    memberships = (
        Membership.objects.filter(
            user=user, organization__in=policy.organizations(user), property__isnull=True
        )
        .select_related("organization")
        .order_by("organization__name", "organization_id")
    )
    return [_organization_out(m.organization, m.role) for m in memberships]


@router.post(
    "organizations/{organization_id}/upgrades/building-management",
    response=OrganizationOut,
    summary="Upgrade to building management (R12)",
)
def activate_building_management(request: HttpRequest, organization_id: int) -> dict[str, object]:
    """Activate building management for the organization; no code needed.
    Activating it again changes nothing (the first activation date stays).
    Lock owners only: 403 for others of the organization, 404 for anyone else."""
    user = actor(request)
    org = services.activate_building_management(user, organization_id)
    return _organization_out(org, policy.role_in(user, org.pk))


@router.post(
    "organizations/{organization_id}/upgrades/codes",
    response=UpgradeAppliedOut,
    summary="Enter an account-upgrade code: organization management (R13)",
)
def redeem_for_organization(
    request: HttpRequest, organization_id: int, body: CodeIn
) -> dict[str, object]:
    """Enter a prepaid code for organization management, with which the
    organization can receive keys from lock owners (shared management, R11).
    Lock owners only: 403 for others of the organization, 404 for anyone else.

    Errors: `code_typo`, `not_a_code`, `code_expired`, `wrong_product` (a code
    for a lock; 400), `unknown_code` (404), `code_used`, `already_upgraded` (the
    code is not used; 409), `rate_limited` (429). Every attempt is logged."""
    user = actor(request)
    result = services.redeem_for_organization(
        user, organization_id, body.code, client_ip=client_address(request)
    )
    org = Organization.objects.get(pk=organization_id)
    return {
        "product": result.product.name,
        "sku": result.product.sku,
        "summary": result.summary,
        "organization": _organization_out(org, policy.role_in(user, org.pk)),
    }
