"""Charging-station installations (R49) in the web UI.

- The resident, in their portal: ask for a station at their parking space,
  follow each step, cancel before the work is handed to the platform.
- The site's owner and building managers, on the site's residents page:
  approve or decline with a reason; hand the work to the platform ("the
  platform organizes it", or "coordinate with my electrician"); schedule it
  and record the installed station (the owner's side may too); cancel.
- The platform operator: the installations handed over, to schedule and to
  record as installed.
- Whoever may follow one: its page with every step (the notifications link there).

Each view calls one service; a refusal is shown on the page it came from,
with the error's status. An installation the user may not see is a 404."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django import forms
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from doorkeep import policy
from doorkeep.accounts.models import User
from doorkeep.core.errors import DomainError, NotFound
from doorkeep.installations import services
from doorkeep.installations.models import Installation
from doorkeep.web import installation_cards, queries
from doorkeep.web.installation_cards import Failed
from doorkeep.web.installation_forms import (
    ElectricianForm,
    InstallationRequestForm,
    InstalledForm,
    ScheduleForm,
)
from doorkeep.web.resident_forms import RefuseForm
from doorkeep.web.views.common import current_user, page_view
from doorkeep.web.views.portal import _portal_page
from doorkeep.web.views.residents import _site_page

OPERATOR_LIST_SIZE = 500

Act = Callable[[User], Installation]
Done = Callable[[Installation], str]


def _failed(installation_id: int, form: forms.Form | None, exc: DomainError) -> Failed:
    """The refusal under the field it is about, else on the installation's row."""
    field = getattr(form, "FIELD_FOR_CODE", {}).get(exc.code)
    if form is not None and field in form.fields:
        form.add_error(field, exc.message)
        return Failed(installation_id, form, "")
    return Failed(installation_id, form, exc.message)


def _anchor(item: Installation) -> str:
    return f"#installation-{item.pk}"


# --- the site's page (owner, building manager) -----------------------------------------


def _site_step(
    request: HttpRequest,
    property_id: int,
    installation_id: int,
    form: forms.Form | None,
    act: Act,
    done: Done,
) -> HttpResponse:
    if form is not None and not form.is_valid():
        failed = Failed(installation_id, form, "")
        return _site_page(request, property_id, status=400, failed_installation=failed)
    try:
        item = act(current_user(request))
    except NotFound:
        raise  # not theirs to see: it does not exist for them
    except DomainError as exc:
        failed = _failed(installation_id, form, exc)
        return _site_page(request, property_id, status=exc.status, failed_installation=failed)
    messages.success(request, done(item))
    url = reverse("web:site_residents", kwargs={"property_id": item.property_id})
    return redirect(url + _anchor(item))


@require_POST
@page_view
def site_approve(request: HttpRequest, property_id: int, installation_id: int) -> HttpResponse:
    return _site_step(
        request,
        property_id,
        installation_id,
        None,
        lambda user: services.decide(user, installation_id, approve=True),
        lambda item: (
            _(
                "The charging station at parking space %(number)s is approved. Hand the work to "
                "the platform when you are ready."
            )
            % {"number": item.parking_space.number}
        ),
    )


@require_POST
@page_view
def site_decline(request: HttpRequest, property_id: int, installation_id: int) -> HttpResponse:
    form = RefuseForm(request.POST)
    return _site_step(
        request,
        property_id,
        installation_id,
        form,
        lambda user: services.decide(
            user, installation_id, approve=False, reason=form.cleaned_data["reason"]
        ),
        lambda item: (
            _(
                "The charging station at parking space %(number)s is declined; the resident "
                "reads why."
            )
            % {"number": item.parking_space.number}
        ),
    )


@require_POST
@page_view
def site_organize(request: HttpRequest, property_id: int, installation_id: int) -> HttpResponse:
    return _site_step(
        request,
        property_id,
        installation_id,
        None,
        lambda user: services.hand_over(user, installation_id),
        lambda item: (
            _("The platform organizes the installation at parking space %(number)s.")
            % {"number": item.parking_space.number}
        ),
    )


@require_POST
@page_view
def site_electrician(request: HttpRequest, property_id: int, installation_id: int) -> HttpResponse:
    form = ElectricianForm(request.POST)
    return _site_step(
        request,
        property_id,
        installation_id,
        form,
        lambda user: services.hand_over(user, installation_id, electrician=form.electrician()),
        lambda item: (
            _("The platform coordinates the installation at parking space %(number)s with %(who)s.")
            % {"number": item.parking_space.number, "who": item.electrician_name}
        ),
    )


def _scheduled(item: Installation) -> str:
    day = item.scheduled_for.isoformat() if item.scheduled_for else ""
    return _("The installation at parking space %(number)s is scheduled for %(day)s.") % {
        "number": item.parking_space.number,
        "day": day,
    }


def _installed(item: Installation) -> str:
    done = _("Station %(serial)s is installed at parking space %(number)s.") % {
        "serial": item.station_serial,
        "number": item.parking_space.number,
    }
    if not getattr(item, "station_password", None):
        return done
    # Its password is not put in a message (messages travel in a cookie):
    # the station's page issues one, shown once on a page that is not kept.
    return (
        done
        + " "
        + _(
            "It is registered as a charging station of the site: give it a password with "
            "New password on its page, then configure the station with it."
        )
    )


def _cancelled(item: Installation) -> str:
    return _("The installation at parking space %(number)s is cancelled.") % {
        "number": item.parking_space.number
    }


@require_POST
@page_view
def site_schedule(request: HttpRequest, property_id: int, installation_id: int) -> HttpResponse:
    form = ScheduleForm(request.POST)
    return _site_step(
        request,
        property_id,
        installation_id,
        form,
        lambda user: services.schedule(user, installation_id, form.cleaned_data["day"]),
        _scheduled,
    )


@require_POST
@page_view
def site_installed(request: HttpRequest, property_id: int, installation_id: int) -> HttpResponse:
    form = InstalledForm(request.POST)
    return _site_step(
        request,
        property_id,
        installation_id,
        form,
        lambda user: services.complete(
            user, installation_id, station_serial=form.cleaned_data["station_serial"]
        ),
        _installed,
    )


@require_POST
@page_view
def site_cancel(request: HttpRequest, property_id: int, installation_id: int) -> HttpResponse:
    return _site_step(
        request,
        property_id,
        installation_id,
        None,
        lambda user: services.cancel(user, installation_id),
        _cancelled,
    )


# --- the platform operator -----------------------------------------------------------------


def _operator_page(
    request: HttpRequest, *, status: int = 200, failed: Failed | None = None
) -> HttpResponse:
    policy.require_platform_operator(current_user(request))
    rows = queries.handed_over_installations(OPERATOR_LIST_SIZE)
    return render(
        request,
        "web/installations/operator.html",
        {
            "nav": "operator_installations",
            "cards": [installation_cards.for_operator(item, failed) for item in rows],
            "full": len(rows) >= OPERATOR_LIST_SIZE,
        },
        status=status,
    )


def _operator_step(
    request: HttpRequest, installation_id: int, form: forms.Form, act: Act, done: Done
) -> HttpResponse:
    user = current_user(request)
    policy.require_platform_operator(user)  # the owner's side does it on the site's page
    if not form.is_valid():
        return _operator_page(request, status=400, failed=Failed(installation_id, form, ""))
    try:
        item = act(user)
    except NotFound:
        raise
    except DomainError as exc:
        return _operator_page(
            request, status=exc.status, failed=_failed(installation_id, form, exc)
        )
    messages.success(request, done(item))
    return redirect(reverse("web:operator_installations") + _anchor(item))


@require_GET
@page_view
def operator_installations(request: HttpRequest) -> HttpResponse:
    return _operator_page(request)


@require_POST
@page_view
def operator_schedule(request: HttpRequest, installation_id: int) -> HttpResponse:
    form = ScheduleForm(request.POST)
    return _operator_step(
        request,
        installation_id,
        form,
        lambda user: services.schedule(user, installation_id, form.cleaned_data["day"]),
        _scheduled,
    )


@require_POST
@page_view
def operator_installed(request: HttpRequest, installation_id: int) -> HttpResponse:
    form = InstalledForm(request.POST)
    return _operator_step(
        request,
        installation_id,
        form,
        lambda user: services.complete(
            user, installation_id, station_serial=form.cleaned_data["station_serial"]
        ),
        _installed,
    )


# --- the resident's portal -----------------------------------------------------------------


@require_POST
@page_view
def portal_ask(request: HttpRequest) -> HttpResponse:
    form = InstallationRequestForm(request.POST)
    if not form.is_valid():
        return _portal_page(request, status=400, failed_installation=form)
    data = form.cleaned_data
    try:
        item = services.request_installation(
            current_user(request),
            data["property"],
            parking_space=data["parking_space"],
            wished_power_kw=data["wished_power_kw"],
            notes=data["notes"],
        )
    except NotFound:
        raise  # not a site where they live: it does not exist for them
    except DomainError as exc:
        form.add_service_error(exc)
        return _portal_page(request, status=exc.status, failed_installation=form)
    messages.success(
        request,
        _(
            "Your request for a charging station at parking space %(number)s is sent to the "
            "owner. Follow it here."
        )
        % {"number": item.parking_space.number},
    )
    return redirect(reverse("web:portal") + _anchor(item))


@require_POST
@page_view
def portal_cancel(request: HttpRequest, installation_id: int) -> HttpResponse:
    try:
        item = services.cancel(current_user(request), installation_id)
    except NotFound:
        raise
    except DomainError as exc:
        return _portal_page(request, status=exc.status, error=exc.message)
    messages.success(request, _cancelled(item))
    return redirect(reverse("web:portal") + "#installations")


# --- one installation ----------------------------------------------------------------------------


@require_GET
@page_view
def installation(request: HttpRequest, installation_id: int) -> HttpResponse:
    """Every step, for whoever may follow it; where to take the next step."""
    user = current_user(request)
    item = services.get_installation(user, installation_id)
    manages = policy.can(
        user, policy.Action.MANAGE_RESIDENTS, item.organization_id, item.property_id
    )
    operates = policy.is_platform_operator(user)
    own = item.person.user_id == user.pk
    card = (
        installation_cards.for_resident(item)
        if own and not manages
        else installation_cards.card(item)
    )
    context: dict[str, Any] = {
        "nav": "locks" if manages else "portal" if own else "operator_installations",
        "card": card,
        "manages": manages,
        "operates": operates and item.status in installation_cards.HANDED,
        "own": own,
    }
    return render(request, "web/installations/detail.html", context)
