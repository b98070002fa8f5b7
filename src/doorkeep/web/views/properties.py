"""A property's page and adding its entries."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from doorkeep import policy
from doorkeep.core.errors import DomainError
from doorkeep.locks import selectors as lock_selectors
from doorkeep.properties import services as property_services
from doorkeep.web.forms import EntryForm
from doorkeep.web.upgrade_offers import building_management_offer
from doorkeep.web.views.common import (
    Action,
    _denial,
    _form_or_page_error,
    _safe_next,
    current_user,
    page_view,
)


def _property_page(
    request: HttpRequest,
    property_id: int,
    *,
    status: int = 200,
    error: str = "",
    entry_form: EntryForm | None = None,
) -> HttpResponse:
    user = current_user(request)
    prop = property_services.get_property(user, property_id)
    can_manage = policy.can(user, Action.MANAGE_PROPERTIES, prop.organization_id, prop.pk)
    if entry_form is not None and not can_manage:  # not shown to them: say why
        error = _denial(user, Action.MANAGE_PROPERTIES, prop.organization_id, prop.pk)
        status, entry_form = 403, None
    entries = list(prop.entries.all())
    offer = None
    if can_manage and entries:  # a second entry needs building management
        offer = building_management_offer(
            user,
            prop.organization,
            _("More than one entry per property"),
            reverse("web:property", kwargs={"property_id": prop.pk}) + "#entries",
            anchor="entries-offer",
        )
    if offer is not None:
        entry_form = None
    elif entry_form is None and can_manage:
        entry_form = EntryForm()
    return render(
        request,
        "web/property.html",
        {
            "prop": prop,
            "error": error,
            "entries": entries,
            "locks": list(lock_selectors.locks_for(user, property_id=prop.pk)),
            "can_manage": can_manage,
            "can_view_events": policy.can(user, Action.VIEW_EVENTS, prop.organization_id, prop.pk),
            "can_view_stations": policy.can(
                user, Action.VIEW_STATIONS, prop.organization_id, prop.pk
            ),
            "entry_form": entry_form,
            "entry_offer": offer,
        },
        status=status,
    )


@require_GET
@page_view
def property_detail(request: HttpRequest, property_id: int) -> HttpResponse:
    return _property_page(request, property_id)


@require_POST
@page_view
def add_entry(request: HttpRequest, property_id: int) -> HttpResponse:
    form = EntryForm(request.POST)
    if not form.is_valid():
        return _property_page(request, property_id, status=400, entry_form=form)
    try:
        entry = property_services.add_entry(
            current_user(request), property_id, name=form.cleaned_data["name"]
        )
    except DomainError as exc:
        error = _form_or_page_error(form, exc)
        return _property_page(request, property_id, status=exc.status, error=error, entry_form=form)
    messages.success(request, _("Entry %(name)s is added.") % {"name": entry.name})
    fallback = reverse("web:property", kwargs={"property_id": property_id})
    return redirect(_safe_next(request, form.cleaned_data["next"], fallback))
