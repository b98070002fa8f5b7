"""Badges in the API: a resident's badges and requests, lost and found, the
owner's existing badges, and the platform operator's queue.

A malformed UID, ATQA or SAK, and a card the stations cannot read, answer
422 with the field in ``details.field`` (core.errors.Unprocessable)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from django.http import HttpRequest
from ninja import Router, Schema, Status
from ninja.params import functions as param
from pydantic import Field

from doorkeep import policy
from doorkeep.api.util import actor
from doorkeep.badges import selectors, services
from doorkeep.badges.models import Badge, BadgeRequest, RequestStatus
from doorkeep.keys.models import Person
from doorkeep.properties.services import get_property

router = Router(tags=["badges"])

Id = Annotated[int, Field(ge=1, le=2**63 - 1)]
Price = Annotated[int, Field(ge=0, le=100_000)]
CARD_FIELD = Field(max_length=64)


class BadgeOut(Schema):
    id: int
    organization_id: int
    person_id: int
    person: str
    uid: str
    source: str = Field(description="platform or third_party (an existing badge)")
    card_type: str
    status: str = Field(description="pending, active, lost or deactivated")
    created_at: datetime
    activated_at: datetime | None
    lost_at: datetime | None


class RequestOut(Schema):
    id: int
    status: str = Field(description="requested, approved, assigned, sent, active or refused")
    property_id: int
    property: str
    organization_id: int
    person_id: int
    person: str
    extra: bool = Field(description="Not the resident's first badge")
    price_minor: int = Field(description="Billed to the resident, in cents of the currency")
    currency: str
    parking_space: str | None
    station_serial: str | None
    note: str
    replaces_id: int | None = Field(description="The lost badge this one replaces")
    badge: BadgeOut | None
    delivery: str = Field(description="handed_over or sent, once delivered")
    refusal_reason: str
    created_at: datetime
    approved_at: datetime | None
    assigned_at: datetime | None
    sent_at: datetime | None
    activated_at: datetime | None
    refused_at: datetime | None


class RequestIn(Schema):
    property_id: Id
    accept_price_minor: Price | None = Field(
        default=None, description="The price of an extra badge, as shown: confirms paying it"
    )
    parking_space: str = Field(
        default="", max_length=20, description="For a private charging station: its space"
    )
    station_serial: str = Field(default="", max_length=40, description="Or the station's serial")
    note: str = Field(default="", max_length=300)


class LostIn(Schema):
    replacement: bool = Field(default=False, description="Ask for a new badge in the same step")
    property_id: Id | None = Field(
        default=None, description="Where the replacement goes (a site where the holder lives)"
    )
    accept_price_minor: Price | None = None


class LostOut(Schema):
    badge: BadgeOut
    changed: bool = Field(description="False when the badge was reported lost already")
    locks: int = Field(description="Locks whose list dropped the badge")
    replacement: RequestOut | None
    replacement_error: str = Field(
        description="Why no replacement was asked for when one was wanted (the badge is "
        "switched off all the same); empty otherwise"
    )


class ExistingBadgeIn(Schema):
    person_id: Id = Field(description="A resident of the site (see GET .../residents)")
    uid: str = CARD_FIELD
    atqa: str = Field(max_length=16, description="2 bytes as the reader shows them: 0004")
    sak: str = Field(max_length=8, description="1 byte: 08")


class BadgeImportIn(Schema):
    csv: str = Field(
        max_length=1_000_000,
        description="Lines `uid, atqa, sak, email` (the resident's email address; comma, "
        "semicolon or tab; a header line with those names is skipped)",
    )


class BadgeImportOut(Schema):
    imported: int
    badges: list[BadgeOut]


class RefuseIn(Schema):
    reason: str = Field(max_length=300)


class AssignIn(Schema):
    uid: str = CARD_FIELD


class DeliverIn(Schema):
    delivery: Literal["handed_over", "sent"]


def badge_out(badge: Badge) -> dict[str, Any]:
    return {
        "id": badge.pk,
        "organization_id": badge.organization_id,
        "person_id": badge.person_id,
        "person": badge.person.name,
        "uid": badge.uid,
        "source": badge.source,
        "card_type": badge.card_type,
        "status": badge.status,
        "created_at": badge.created_at,
        "activated_at": badge.activated_at,
        "lost_at": badge.lost_at,
    }


def request_out(request: BadgeRequest) -> dict[str, Any]:
    return {
        "id": request.pk,
        "status": request.status,
        "property_id": request.property_id,
        "property": request.property.name,
        "organization_id": request.organization_id,
        "person_id": request.person_id,
        "person": request.person.name,
        "extra": request.extra,
        "price_minor": request.price_minor,
        "currency": request.currency,
        "parking_space": request.parking_space.number if request.parking_space else None,
        "station_serial": request.station_serial or None,
        "note": request.note,
        "replaces_id": request.replaces_id,
        "badge": badge_out(request.badge) if request.badge else None,
        "delivery": request.delivery,
        "refusal_reason": request.refusal_reason,
        "created_at": request.created_at,
        "approved_at": request.approved_at,
        "assigned_at": request.assigned_at,
        "sent_at": request.sent_at,
        "activated_at": request.activated_at,
        "refused_at": request.refused_at,
    }


_REQUEST_RELATED = ("person", "property", "parking_space", "badge__person")


def _fresh(request: BadgeRequest) -> dict[str, Any]:
    """The request as stored now, with what it refers to."""
    return request_out(BadgeRequest.objects.select_related(*_REQUEST_RELATED).get(pk=request.pk))


# --- the resident --------------------------------------------------------------------------


@router.get("me/badges", response=list[BadgeOut], summary="My badges")
def my_badges(request: HttpRequest) -> list[dict[str, Any]]:
    """The badges of every person you are (one per organization), newest first."""
    rows = Badge.objects.filter(person__user=actor(request)).select_related("person")
    return [badge_out(b) for b in rows]


@router.get("me/badge-requests", response=list[RequestOut], summary="My badge requests")
def my_requests(request: HttpRequest) -> list[dict[str, Any]]:
    people = list(Person.objects.filter(user=actor(request)).values_list("pk", flat=True))
    rows = selectors.requests_of_person_ids(people).select_related("person", "badge__person")
    return [request_out(r) for r in rows]


@router.post("badge-requests", response={201: RequestOut}, summary="Ask for a badge (R43)")
def ask(request: HttpRequest, body: RequestIn) -> Status[dict[str, Any]]:
    """For a resident of the site today (404 for anyone else). The first
    badge is included; an extra one costs the site's price: without
    `accept_price_minor` equal to it the answer is 409 `price_not_confirmed`,
    whose `details` give `price_minor` and `currency`. Errors also:
    `request_open` (409), `parking_space_not_found`, `station_not_found`,
    `station_not_at_space` (400, with `details.field`)."""
    spec = services.RequestSpec(
        property_id=body.property_id,
        accept_price_minor=body.accept_price_minor,
        parking_space=body.parking_space,
        station_serial=body.station_serial,
        note=body.note,
    )
    return Status(201, _fresh(services.request_badge(actor(request), spec)))


@router.post(
    "badge-requests/{request_id}/received",
    response=RequestOut,
    summary="The badge sent by post arrived",
)
def received(request: HttpRequest, request_id: int) -> dict[str, Any]:
    """By the resident (or the operator): the badge is active. Errors:
    `wrong_step` (409: the request is not sent)."""
    return _fresh(services.confirm_received(actor(request), request_id))


# --- lost and found ------------------------------------------------------------------------


@router.post("badges/{badge_id}/lost", response=LostOut, summary="Report a badge lost (R45)")
def lost(request: HttpRequest, badge_id: int, body: LostIn) -> dict[str, Any]:
    """By its holder, the owner's managers or the operator: the badge is
    switched off on every lock at once. Reporting it again changes nothing
    (`changed: false`). With `replacement`, a new badge is asked for at
    `property_id` (a site where the holder lives); for the holder an extra
    badge's price must be confirmed as for POST badge-requests. Errors:
    `badge_deactivated` (409), `not_a_resident` (400)."""
    report = services.report_lost(
        actor(request),
        badge_id,
        replacement=body.replacement,
        property_id=body.property_id,
        accept_price_minor=body.accept_price_minor,
    )
    return {
        "badge": badge_out(report.badge),
        "changed": report.changed,
        "locks": report.locks,
        "replacement": _fresh(report.replacement) if report.replacement else None,
        "replacement_error": report.replacement_error,
    }


@router.post(
    "badges/{badge_id}/reactivate", response=BadgeOut, summary="A lost badge was found (R45)"
)
def reactivate(request: HttpRequest, badge_id: int) -> dict[str, Any]:
    """Only the lock owner or the operator (403 for managers and members).
    Errors: `not_lost` (409)."""
    return badge_out(services.reactivate(actor(request), badge_id))


@router.post("badges/{badge_id}/return", response=BadgeOut, summary="A badge was handed back")
def return_badge(request: HttpRequest, badge_id: int) -> dict[str, Any]:
    """By the owner's managers or the operator: the badge is switched off
    everywhere and its UID is free for someone else. Handing it back twice
    changes nothing."""
    return badge_out(services.return_badge(actor(request), badge_id))


# --- the owner: existing badges (R46, R47) ----------------------------------------------------


@router.get("properties/{property_id}/badges", response=list[BadgeOut], summary="The site's badges")
def site_badges(request: HttpRequest, property_id: int) -> list[dict[str, Any]]:
    """Every badge of a person who lives or lived at the site. For lock
    owners, building managers and read-only collaborators."""
    prop = get_property(actor(request), property_id, policy.Action.VIEW_RESIDENTS)
    return [badge_out(b) for b in selectors.badges_of_site(prop)]


@router.post(
    "properties/{property_id}/badges",
    response={201: BadgeOut},
    summary="Register a resident's existing badge (R46)",
)
def register(
    request: HttpRequest, property_id: int, body: ExistingBadgeIn
) -> Status[dict[str, Any]]:
    """The reader's UID, ATQA and SAK of a MIFARE Classic card; active at
    once. Only in an individual-statements site. Errors: `invalid_uid`,
    `invalid_atqa`, `invalid_sak` (422, `details.field`), `incompatible_card`
    (422: the message says what the card is), `billing_mode_refuses_third_party`,
    `badge_taken` (another person's badge), `badge_exists` (409),
    `resident_not_found` (404)."""
    badge = services.register_existing_badge(
        actor(request), property_id, body.person_id, uid=body.uid, atqa=body.atqa, sak=body.sak
    )
    return Status(201, badge_out(badge))


@router.post(
    "properties/{property_id}/badges/import",
    response=BadgeImportOut,
    summary="Register existing badges from CSV",
)
def import_badges(request: HttpRequest, property_id: int, body: BadgeImportIn) -> dict[str, Any]:
    """Every line is checked first, as for one badge: when one is wrong
    nothing is imported and the answer is 400 `import_refused` with
    `details.errors`, a list of `{line, message}`."""
    badges = services.import_existing_badges(actor(request), property_id, body.csv)
    return {"imported": len(badges), "badges": [badge_out(b) for b in badges]}


# --- the platform operator ---------------------------------------------------------------


@router.get(
    "operator/badge-requests", response=list[RequestOut], summary="The badge requests queue"
)
def queue(
    request: HttpRequest,
    status: Literal[
        "", "open", "requested", "approved", "assigned", "sent", "active", "refused"
    ] = "",
    limit: int = param.Query(100, ge=1, le=500),
    offset: int = param.Query(0, ge=0),
) -> list[dict[str, Any]]:
    """Newest first; `status` one of the request's steps, or `open` (not
    active nor refused), or empty for all. For the platform operator (404
    for everyone else)."""
    policy.require_platform_operator(actor(request))
    rows = BadgeRequest.objects.select_related(*_REQUEST_RELATED)
    if status == "open":
        rows = rows.exclude(status__in=(RequestStatus.ACTIVE, RequestStatus.REFUSED))
    elif status:
        rows = rows.filter(status=status)
    return [request_out(r) for r in rows[offset : offset + limit]]


@router.post("operator/badge-requests/{request_id}/approve", response=RequestOut, summary="Approve")
def approve(request: HttpRequest, request_id: int) -> dict[str, Any]:
    return _fresh(services.approve_request(actor(request), request_id))


@router.post("operator/badge-requests/{request_id}/refuse", response=RequestOut, summary="Refuse")
def refuse(request: HttpRequest, request_id: int, body: RefuseIn) -> dict[str, Any]:
    """Errors: `reason_required` (400), `wrong_step` (409)."""
    return _fresh(services.refuse_request(actor(request), request_id, body.reason))


@router.post(
    "operator/badge-requests/{request_id}/assign",
    response=RequestOut,
    summary="Assign a platform badge by its UID",
)
def assign(request: HttpRequest, request_id: int, body: AssignIn) -> dict[str, Any]:
    """Errors: `invalid_uid` (422), `badge_taken`, `badge_exists`, `wrong_step` (409)."""
    return _fresh(services.assign_badge(actor(request), request_id, body.uid))


@router.post(
    "operator/badge-requests/{request_id}/deliver",
    response=RequestOut,
    summary="Hand the badge over (active at once) or send it",
)
def deliver(request: HttpRequest, request_id: int, body: DeliverIn) -> dict[str, Any]:
    """`handed_over`: active at once; `sent`: active when the resident says
    it arrived (POST badge-requests/{id}/received). Errors: `wrong_step` (409)."""
    return _fresh(services.deliver_badge(actor(request), request_id, body.delivery))
