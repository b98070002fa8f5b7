"""The resident portal (made for a phone): where they live, their badges
(report one lost, with a replacement in the same step), their badge requests
step by step, asking for a badge, and saying a badge sent by post arrived.
Their charging-station installations are here too (views/installations.py),
and their charging: the stations they may use, starting and stopping with
their badge, their sessions (web/charging_cards.py, views/stations.py)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TypeVar
from zoneinfo import ZoneInfo

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from doorkeep.badges import services as badge_services
from doorkeep.badges.models import Badge, BadgeRequest, BadgeStatus, Delivery, RequestStatus
from doorkeep.core.errors import DomainError, NotFound
from doorkeep.properties.models import Property
from doorkeep.residents.models import Residency
from doorkeep.residents.selectors import residencies_of_user
from doorkeep.residents.services import site_today
from doorkeep.web import charging_cards, installation_cards, queries
from doorkeep.web.installation_forms import InstallationRequestForm, prefixed
from doorkeep.web.resident_forms import BadgeRequestForm, LostForm
from doorkeep.web.views.common import current_user, page_view
from doorkeep.web.views.residents import lost_message

money = badge_services.money


@dataclass
class Site:
    """A site where the account lives (today, or from a later day)."""

    residency: Residency
    prop: Property
    current: bool
    extra: bool  # a badge asked for now is an extra one
    price_minor: int  # what it costs them (0: included or free)
    open_request: BadgeRequest | None
    form: BadgeRequestForm | None = None
    installation_form: InstallationRequestForm | None = None

    @property
    def price(self) -> str:
        return money(self.price_minor, self.prop.currency)


@dataclass
class BadgeCard:
    badge: Badge
    tz: ZoneInfo
    form: LostForm | None  # None: nothing to report (lost already, switched off)
    replacement_price: str = ""  # what a replacement costs them; "" when free
    replacement_price_minor: int = 0

    @property
    def since(self) -> datetime:
        return self.badge.activated_at or self.badge.created_at


@dataclass
class Step:
    label: str
    at: datetime | None
    reached: bool


@dataclass
class RequestCard:
    request: BadgeRequest
    tz: ZoneInfo
    steps: list[Step] = field(default_factory=list)

    @property
    def price(self) -> str:
        return money(self.request.price_minor, self.request.currency)


def _steps(request: BadgeRequest) -> list[Step]:
    r = request
    sent_label = (
        Delivery(r.delivery).label if r.delivery else RequestStatus.SENT.label
    )  # handed over, or sent by post
    steps = [
        Step(str(RequestStatus.REQUESTED.label), r.created_at, True),
        Step(str(RequestStatus.APPROVED.label), r.approved_at, r.approved_at is not None),
    ]
    if r.status == RequestStatus.REFUSED:
        return [s for s in steps if s.reached] + [
            Step(str(RequestStatus.REFUSED.label), r.refused_at, True)
        ]
    return [
        *steps,
        Step(str(RequestStatus.ASSIGNED.label), r.assigned_at, r.assigned_at is not None),
        Step(str(sent_label), r.sent_at, r.sent_at is not None),
        Step(str(RequestStatus.ACTIVE.label), r.activated_at, r.activated_at is not None),
    ]


def _portal_page(
    request: HttpRequest,
    *,
    status: int = 200,
    error: str = "",
    failed_ask: BadgeRequestForm | None = None,
    failed_lost: tuple[int, LostForm] | None = None,
    failed_installation: InstallationRequestForm | None = None,
) -> HttpResponse:
    user = current_user(request)
    badges = queries.badges_of_user(user)
    requests = queries.badge_requests_of_user(user)
    with_badge = {b.person_id for b in badges}
    sites: list[Site] = []
    for residency in residencies_of_user(user):
        prop = residency.unit.property
        today = site_today(prop)
        if residency.move_out is not None and residency.move_out < today:
            continue  # moved out
        extra = residency.person_id in with_badge
        open_request = next(
            (
                r
                for r in requests
                if r.is_open and r.person_id == residency.person_id and r.property_id == prop.pk
            ),
            None,
        )
        site = Site(
            residency,
            prop,
            residency.includes(today),
            extra,
            prop.extra_badge_price_minor if extra else 0,
            open_request,
        )
        if site.current and open_request is None:
            site.form = _ask_form(site, failed_ask)
        if site.current:
            site.installation_form = _installation_form(site, failed_installation)
        sites.append(site)
    cards = [_badge_card(badge, sites, failed_lost) for badge in badges]
    cards_of_requests = [RequestCard(r, queries.zone_of(r.property), _steps(r)) for r in requests]
    shown = {s.prop.pk for s in sites if s.form is not None}
    if failed_ask is not None and failed_ask.data.get("property") not in {str(p) for p in shown}:
        error = error or " ".join(str(e) for errors in failed_ask.errors.values() for e in errors)
    current = {str(s.prop.pk) for s in sites if s.installation_form is not None}
    if failed_installation is not None and failed_installation.data.get("property") not in current:
        error = error or " ".join(
            str(e) for errors in failed_installation.errors.values() for e in errors
        )
    installations = [
        installation_cards.for_resident(item) for item in queries.installations_of_user(user)
    ]
    return render(
        request,
        "web/residents/portal.html",
        {
            "nav": "portal",
            "sites": sites,
            "badges": cards,
            "requests": cards_of_requests,
            "zones": sorted({card.tz.key for card in cards_of_requests}),
            "installation_sites": [s for s in sites if s.installation_form is not None],
            "installations": installations,
            "installation_zones": sorted({card.tz.key for card in installations}),
            "charging": charging_cards.for_resident(user),
            "error": error,
        },
        status=status,
    )


def _ask_form(site: Site, failed: BadgeRequestForm | None) -> BadgeRequestForm:
    pk = site.prop.pk
    form = (
        failed
        if failed is not None and failed.data.get("property") == str(pk)
        else BadgeRequestForm(initial={"property": pk})
    )
    form.auto_id = f"id_ask{pk}_%s"
    del form.fields["price_minor"]  # the page says the price now (see the template)
    if site.price_minor:
        form.fields["confirm_price"].label = _(
            "I agree to pay %(price)s for this extra badge, billed to me."
        ) % {"price": site.price}
    else:
        del form.fields["confirm_price"]
    return form


def _installation_form(
    site: Site, failed: InstallationRequestForm | None
) -> InstallationRequestForm:
    pk = site.prop.pk
    if failed is not None and failed.data.get("property") == str(pk):
        return prefixed(failed, "station", pk)
    return prefixed(InstallationRequestForm(initial={"property": pk}), "station", pk)


def _badge_card(badge: Badge, sites: list[Site], failed: tuple[int, LostForm] | None) -> BadgeCard:
    home = next((s for s in sites if s.current and s.residency.person_id == badge.person_id), None)
    tz = queries.zone_of(home.prop if home else None)
    if badge.status not in (BadgeStatus.ACTIVE, BadgeStatus.PENDING):
        return BadgeCard(badge, tz, None)
    # A replacement is always an extra badge: the site's price, if it has one.
    price_minor = home.prop.extra_badge_price_minor if home else 0
    if failed is not None and failed[0] == badge.pk:
        form = failed[1]
    else:
        form = LostForm(initial={"property": home.prop.pk if home else None})
    form.auto_id = f"id_lost{badge.pk}_%s"
    del form.fields["price_minor"]  # the page says the price now (see the template)
    price = money(price_minor, home.prop.currency) if home and price_minor else ""
    if home is None:
        del form.fields["replacement"]  # they live nowhere: none can be sent
    if price:
        form.fields["confirm_price"].label = _(
            "I agree to pay %(price)s for the replacement, billed to me."
        ) % {"price": price}
    else:
        del form.fields["confirm_price"]
    return BadgeCard(badge, tz, form, price, price_minor if price else 0)


F = TypeVar("F", BadgeRequestForm, LostForm)


def _unconfirmed(form: F, exc: DomainError) -> F:
    """A price that was not confirmed (or changed since the page was shown)
    is asked again, its box not ticked: the form shown again says the price now."""
    if exc.code != "price_not_confirmed":
        return form
    again = type(form)({**dict(form.data.items()), "confirm_price": ""})
    again.is_valid()
    return again


@require_GET
@page_view
def portal(request: HttpRequest) -> HttpResponse:
    return _portal_page(request)


@require_POST
@page_view
def ask_for_badge(request: HttpRequest) -> HttpResponse:
    form = BadgeRequestForm(request.POST)
    if not form.is_valid():
        return _portal_page(request, status=400, failed_ask=form)
    data = form.cleaned_data
    spec = badge_services.RequestSpec(
        property_id=data["property"],
        accept_price_minor=form.accepted_price(),
        parking_space=data["parking_space"],
        station_serial=data["station_serial"],
    )
    try:
        badge_request = badge_services.request_badge(current_user(request), spec)
    except NotFound:
        raise  # not a site where they live: it does not exist for them
    except DomainError as exc:
        form = _unconfirmed(form, exc)
        form.add_service_error(exc)
        return _portal_page(request, status=exc.status, failed_ask=form)
    messages.success(
        request,
        _("Your badge request for %(site)s is sent. Follow it here.")
        % {"site": badge_request.property.name},
    )
    return redirect(reverse("web:portal") + "#requests")


@require_POST
@page_view
def report_lost(request: HttpRequest, badge_id: int) -> HttpResponse:
    form = LostForm(request.POST)
    if not form.is_valid():
        return _portal_page(request, status=400, failed_lost=(badge_id, form))
    data = form.cleaned_data
    try:
        report = badge_services.report_lost(
            current_user(request),
            badge_id,
            replacement=data["replacement"],
            property_id=data["property"],
            accept_price_minor=form.accepted_price(),
        )
    except NotFound:
        raise
    except DomainError as exc:
        error = _("Your badge is not reported lost yet: %(reason)s") % {"reason": exc.message}
        form = _unconfirmed(form, exc)
        return _portal_page(request, status=exc.status, error=error, failed_lost=(badge_id, form))
    messages.success(request, lost_message(report))
    return redirect(reverse("web:portal") + "#badges")


@require_POST
@page_view
def confirm_received(request: HttpRequest, request_id: int) -> HttpResponse:
    try:
        badge_request = badge_services.confirm_received(current_user(request), request_id)
    except NotFound:
        raise
    except DomainError as exc:
        return _portal_page(request, status=exc.status, error=exc.message)
    uid = badge_request.badge.uid if badge_request.badge else ""
    messages.success(request, _("Thank you. Your badge %(uid)s is active.") % {"uid": uid})
    return redirect(reverse("web:portal") + "#badges")
