"""The platform operator's badge queue: the open requests, oldest first, and
each step: approve, refuse with a reason, assign a badge's UID (typed, or
read by a desk reader that types it and presses Enter), hand it over or send
it. Anyone else gets the 404 page."""

from __future__ import annotations

from dataclasses import dataclass
from zoneinfo import ZoneInfo

from django import forms
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from doorkeep import policy
from doorkeep.badges import services as badge_services
from doorkeep.badges.models import BadgeRequest, Delivery, RequestStatus
from doorkeep.core.errors import DomainError
from doorkeep.web import queries
from doorkeep.web.resident_forms import AssignForm, DeliverForm, RefuseForm
from doorkeep.web.views.common import current_user, page_view

QUEUE_SIZE = 500
money = badge_services.money


@dataclass
class QueueRow:
    request: BadgeRequest
    tz: ZoneInfo
    unit: str
    refuse_form: RefuseForm
    assign_form: AssignForm | None  # None: not at that step
    error: str = ""

    @property
    def price(self) -> str:
        return money(self.request.price_minor, self.request.currency)

    @property
    def may_approve(self) -> bool:
        return self.request.status == RequestStatus.REQUESTED

    @property
    def may_refuse(self) -> bool:
        return self.request.status in (RequestStatus.REQUESTED, RequestStatus.APPROVED)

    @property
    def may_deliver(self) -> bool:
        return self.request.status == RequestStatus.ASSIGNED

    @property
    def sent(self) -> bool:
        return self.request.status == RequestStatus.SENT


def _queue_page(
    request: HttpRequest,
    *,
    status: int = 200,
    error: str = "",
    failed: tuple[int, forms.Form] | None = None,
) -> HttpResponse:
    policy.require_platform_operator(current_user(request))
    queue = queries.open_badge_requests(QUEUE_SIZE)
    units = queries.units_of_requests(queue)
    rows: list[QueueRow] = []
    for item in queue:
        mine = failed[1] if failed is not None and failed[0] == item.pk else None
        refuse = mine if isinstance(mine, RefuseForm) else RefuseForm()
        refuse.auto_id = f"id_refuse{item.pk}_%s"
        assign: AssignForm | None = None
        if item.status in (RequestStatus.REQUESTED, RequestStatus.APPROVED):
            assign = mine if isinstance(mine, AssignForm) else AssignForm()
            assign.auto_id = f"id_assign{item.pk}_%s"
        row = QueueRow(item, queries.zone_of(item.property), units.get(item.pk, ""), refuse, assign)
        if mine is not None:
            row.error = error
        rows.append(row)
    # The cursor in one UID field, ready for the desk reader: the one that
    # failed, or the oldest request waiting for its badge.
    target = next((r for r in rows if r.error and r.assign_form), None) or next(
        (r for r in rows if r.assign_form), None
    )
    if target is not None and target.assign_form is not None:
        target.assign_form.fields["uid"].widget.attrs["autofocus"] = True
    return render(
        request,
        "web/residents/operator.html",
        {
            "nav": "operator",
            "rows": rows,
            "error": error,
            "full": len(queue) >= QUEUE_SIZE,
            "deliveries": Delivery,
        },
        status=status,
    )


def _done(request: HttpRequest, text: str) -> HttpResponse:
    messages.success(request, text)
    return redirect("web:operator_badges")


def _refused(
    request: HttpRequest, request_id: int, form: forms.Form | None, exc: DomainError
) -> HttpResponse:
    if form is not None and hasattr(form, "add_service_error"):
        form.add_service_error(exc)
    failed = (request_id, form) if form is not None else None
    return _queue_page(request, status=exc.status, error=exc.message, failed=failed)


@require_GET
@page_view
def operator_badges(request: HttpRequest) -> HttpResponse:
    return _queue_page(request)


@require_POST
@page_view
def approve(request: HttpRequest, request_id: int) -> HttpResponse:
    try:
        item = badge_services.approve_request(current_user(request), request_id)
    except DomainError as exc:
        return _refused(request, request_id, None, exc)
    return _done(request, _("The request of %(name)s is approved.") % {"name": item.person.name})


@require_POST
@page_view
def refuse(request: HttpRequest, request_id: int) -> HttpResponse:
    form = RefuseForm(request.POST)
    if not form.is_valid():
        return _queue_page(
            request,
            status=400,
            error=_("Say why the request is refused."),
            failed=(request_id, form),
        )
    try:
        item = badge_services.refuse_request(
            current_user(request), request_id, form.cleaned_data["reason"]
        )
    except DomainError as exc:
        return _refused(request, request_id, form, exc)
    return _done(request, _("The request of %(name)s is refused.") % {"name": item.person.name})


@require_POST
@page_view
def assign(request: HttpRequest, request_id: int) -> HttpResponse:
    form = AssignForm(request.POST)
    if not form.is_valid():
        return _queue_page(
            request, status=400, error=_("Type the badge's UID."), failed=(request_id, form)
        )
    try:
        item = badge_services.assign_badge(
            current_user(request), request_id, form.cleaned_data["uid"]
        )
    except DomainError as exc:
        return _refused(request, request_id, form, exc)
    uid = item.badge.uid if item.badge else ""
    return _done(
        request,
        _("Badge %(uid)s is assigned to %(name)s. Hand it over or send it.")
        % {"uid": uid, "name": item.person.name},
    )


@require_POST
@page_view
def deliver(request: HttpRequest, request_id: int) -> HttpResponse:
    form = DeliverForm(request.POST)
    if not form.is_valid():
        return _queue_page(request, status=400, error=_("Choose how the badge is delivered."))
    delivery = form.cleaned_data["delivery"]
    try:
        item = badge_services.deliver_badge(current_user(request), request_id, delivery)
    except DomainError as exc:
        return _refused(request, request_id, None, exc)
    if delivery == Delivery.HANDED_OVER:
        text = _("The badge of %(name)s is handed over and active.")
    else:
        text = _("The badge of %(name)s is sent; it is active when they confirm it arrived.")
    return _done(request, text % {"name": item.person.name})


@require_POST
@page_view
def received(request: HttpRequest, request_id: int) -> HttpResponse:
    user = current_user(request)
    policy.require_platform_operator(user)  # the resident says so in their portal
    try:
        item = badge_services.confirm_received(user, request_id)
    except DomainError as exc:
        return _refused(request, request_id, None, exc)
    return _done(request, _("The badge of %(name)s is active.") % {"name": item.person.name})
