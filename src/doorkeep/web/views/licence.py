"""A lock's licence panel and the account upgrades."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from doorkeep import policy
from doorkeep.accounts.models import Organization
from doorkeep.core.clientip import client_address
from doorkeep.core.errors import DomainError, NotFound, PermissionDenied
from doorkeep.licensing import selectors as licensing_selectors
from doorkeep.licensing import services as licensing_services
from doorkeep.licensing.models import KeyAllotment, Period, PeriodKind
from doorkeep.licensing.state import licence_of
from doorkeep.locks import services as lock_services
from doorkeep.web import queries
from doorkeep.web.forms import PrepaidCodeForm
from doorkeep.web.views.common import (
    Action,
    _form_or_page_error,
    _safe_next,
    current_user,
    page_view,
)


@dataclass
class PeriodRow:
    period: Period
    kind: str
    source: str
    current: bool


@dataclass
class AllotmentRow:
    allotment: KeyAllotment
    source: str


def _product_name(code: Any) -> str:
    return code.batch.product.name if code is not None else ""


def _licence_page(
    request: HttpRequest,
    lock_id: int,
    *,
    status: int = 200,
    error: str = "",
    code_form: PrepaidCodeForm | None = None,
) -> HttpResponse:
    user = current_user(request)
    lock = lock_services.get_lock(user, lock_id)
    org_id = lock.organization_id
    if not policy.can(user, Action.VIEW_KEYS, org_id, lock_services.site_of(lock)):
        raise PermissionDenied(
            _("Only lock owners and building managers can see the licence of a lock.")
        )
    prop = lock.entry.property if lock.entry else None
    now = timezone.now()
    licence = licence_of(lock.pk, now)
    history = licensing_selectors.history_of(lock.pk)
    kinds = dict(PeriodKind.choices)
    included = _("Included with the first registration")
    can_redeem = policy.can(user, Action.BUY_LICENCES, org_id)
    if can_redeem and code_form is None:
        code_form = PrepaidCodeForm()
    return render(
        request,
        "web/licence.html",
        {
            "nav": "locks",
            "lock": lock,
            "prop": prop,
            "tz": queries.zone_of(prop),
            "error": error,
            "licence": licence,
            "now": now,
            "periods": [
                PeriodRow(
                    p,
                    str(kinds.get(p.kind, p.kind)),
                    _product_name(p.code) or (included if p.kind == PeriodKind.FREE else "—"),
                    p.starts_at <= now < p.ends_at,
                )
                for p in reversed(history.periods)
            ],
            "allotments": [
                AllotmentRow(a, _product_name(a.code) or (included if a.included else "—"))
                for a in reversed(history.allotments)
            ],
            "can_redeem": can_redeem,
            "code_form": code_form if can_redeem else None,
        },
        status=status,
    )


@require_http_methods(["GET", "POST"])
@page_view
def lock_licence(request: HttpRequest, lock_id: int) -> HttpResponse:
    """The licence panel of a lock (reminder emails link here), and entering a
    prepaid code for it."""
    if request.method != "POST":
        return _licence_page(request, lock_id)
    form = PrepaidCodeForm(request.POST)
    if not form.is_valid():
        return _licence_page(request, lock_id, status=400, code_form=form)
    try:
        result = licensing_services.redeem_for_lock(
            current_user(request),
            lock_id,
            form.cleaned_data["code"],
            client_ip=client_address(request),
        )
    except DomainError as exc:
        error = _form_or_page_error(form, exc)
        return _licence_page(request, lock_id, status=exc.status, error=error, code_form=form)
    messages.success(
        request,
        _("Code accepted: %(product)s. %(summary)s.")
        % {"product": result.product.name, "summary": result.summary},
    )
    return redirect("web:lock_licence", lock_id=lock_id)


# --- account upgrades ------------------------------------------------------------------


@dataclass
class UpgradeRow:
    org: Organization
    code_form: PrepaidCodeForm | None


def _upgrades_page(
    request: HttpRequest,
    *,
    status: int = 200,
    error: str = "",
    org_id: int | None = None,
    code_form: PrepaidCodeForm | None = None,
) -> HttpResponse:
    user = current_user(request)
    rows = []
    for org in queries.organizations_for(user, Action.BUY_LICENCES):
        form = None
        if org.organization_management_since is None:
            form = code_form if org.pk == org_id and code_form is not None else None
            form = form or PrepaidCodeForm(prefix_id=f"org{org.pk}")
        rows.append(UpgradeRow(org, form))
    return render(
        request,
        "web/upgrades.html",
        {"nav": "upgrades", "rows": rows, "error": error},
        status=status,
    )


@require_GET
@page_view
def upgrades(request: HttpRequest) -> HttpResponse:
    return _upgrades_page(request)


@require_POST
@page_view
def activate_building_management(request: HttpRequest, org_id: int) -> HttpResponse:
    try:
        org = licensing_services.activate_building_management(current_user(request), org_id)
    except DomainError as exc:
        return _upgrades_page(request, status=exc.status, error=exc.message)
    messages.success(request, _("Building management is active for %(org)s.") % {"org": org.name})
    # From an upgrade offer on another page: back to that page.
    return redirect(_safe_next(request, request.POST.get("next"), reverse("web:upgrades")))


@require_POST
@page_view
def redeem_organization_code(request: HttpRequest, org_id: int) -> HttpResponse:
    form = PrepaidCodeForm(request.POST, prefix_id=f"org{org_id}")
    if not form.is_valid():
        return _upgrades_page(request, status=400, org_id=org_id, code_form=form)
    try:
        licensing_services.redeem_for_organization(
            current_user(request),
            org_id,
            form.cleaned_data["code"],
            client_ip=client_address(request),
        )
    except DomainError as exc:
        error = _form_or_page_error(form, exc)
        if isinstance(exc, NotFound):
            error = exc.message
        return _upgrades_page(
            request, status=exc.status, error=error, org_id=org_id, code_form=form
        )
    messages.success(
        request,
        _(
            "Organization management is active. Lock owners can now issue keys to your "
            "organization, and you issue keys under them to your own people."
        ),
    )
    return redirect("web:upgrades")
