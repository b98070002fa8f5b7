"""Issuing, changing and taking back a lock's keys."""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST

from doorkeep import policy
from doorkeep.core.errors import DomainError, NotFound
from doorkeep.keys import selectors as key_selectors
from doorkeep.keys import services as key_services
from doorkeep.keys.models import Key
from doorkeep.licensing.state import licence_of
from doorkeep.locks import services as lock_services
from doorkeep.locks.models import Lock
from doorkeep.web import queries
from doorkeep.web.forms import EditKeyForm, IssueKeyForm
from doorkeep.web.views.common import (
    Action,
    _form_or_page_error,
    _issued_message,
    _people_for_select,
    _taken_back_message,
    at_the_top,
    current_user,
    page_view,
)
from doorkeep.web.views.locks import _lock_page


@require_POST
@page_view
def issue_key(request: HttpRequest, lock_id: int) -> HttpResponse:
    user = current_user(request)
    # Read the lock first: its property's time zone is how the form's dates are meant.
    lock = lock_services.get_lock(user, lock_id)
    assert lock.organization_id is not None
    whole_org = policy.can(user, policy.Action.VIEW, lock.organization_id)
    form = IssueKeyForm(
        request.POST,
        # A collaborator of the lock's site only: the organization's people are not theirs.
        people=_people_for_select(lock.organization_id) if whole_org else None,
        tz=queries.zone_of(lock.entry.property if lock.entry else None),
    )
    if not form.is_valid():
        return _lock_page(request, lock_id, status=400, issue_form=form)
    spec = form.spec()
    try:
        key = key_services.issue_key(user, lock_id, spec)
    except DomainError as exc:
        error = _form_or_page_error(form, exc)
        return _lock_page(request, lock_id, status=exc.status, error=error, issue_form=form)
    _issued_message(request, key, spec)
    return at_the_top("web:lock", lock_id=lock_id)


@require_POST
@page_view
def revoke_key(request: HttpRequest, lock_id: int, key_id: int) -> HttpResponse:
    try:
        key = key_services.revoke_key(current_user(request), key_id)
    except DomainError as exc:
        return _lock_page(request, lock_id, status=exc.status, error=exc.message)
    messages.success(request, _taken_back_message(key))
    return redirect("web:lock", lock_id=key.lock_id)


@dataclass
class EditTarget:
    """Where a key is changed from: the lock page, or a shared key's page."""

    lock: Lock
    back_url: str
    action_url: str
    shared_problem: str = ""


def _edit_key_page(
    request: HttpRequest,
    key: Key,
    target: EditTarget,
    *,
    form: EditKeyForm | None = None,
    status: int = 200,
    error: str = "",
) -> HttpResponse:
    lock = target.lock
    prop = lock.entry.property if lock.entry else None
    tz = queries.zone_of(prop)
    licence = licence_of(lock.pk)
    editable = key.revoked_at is None and licence.can_manage and not target.shared_problem
    if editable and form is None:
        form = EditKeyForm(
            initial=EditKeyForm.initial_for(key, tz),
            tz=tz,
            with_schedule=key.holder_organization_id is None,
        )
    return render(
        request,
        "web/edit_key.html",
        {
            "nav": "locks",
            "key": key,
            "lock": lock,
            "prop": prop,
            "tz": tz,
            "licence": licence,
            "error": error,
            "form": form if editable else None,
            "shared_problem": target.shared_problem,
            "back_url": target.back_url,
            "action_url": target.action_url,
        },
        status=status,
    )


def _edit_key(request: HttpRequest, key: Key, target: EditTarget) -> HttpResponse:
    if request.method != "POST":
        return _edit_key_page(request, key, target)
    lock = target.lock
    tz = queries.zone_of(lock.entry.property if lock.entry else None)
    form = EditKeyForm(request.POST, tz=tz, with_schedule=key.holder_organization_id is None)
    if not form.is_valid():
        return _edit_key_page(request, key, target, form=form, status=400)
    try:
        changed = key_services.update_key(current_user(request), key.pk, **form.changes())
    except DomainError as exc:
        error = _form_or_page_error(form, exc)
        return _edit_key_page(request, key, target, form=form, status=exc.status, error=error)
    messages.success(request, _("The key of %(name)s is changed.") % {"name": changed.holder_name})
    return redirect(target.back_url)


@require_http_methods(["GET", "POST"])
@page_view
def edit_key(request: HttpRequest, lock_id: int, key_id: int) -> HttpResponse:
    user = current_user(request)
    lock = lock_services.get_lock(user, lock_id, Action.VIEW_KEYS)
    key = key_selectors.get_key(user, key_id)
    if key.lock_id != lock.pk:
        raise NotFound(_("Key not found."), code="key_not_found")
    return _edit_key(
        request,
        key,
        EditTarget(
            lock,
            back_url=reverse("web:lock", kwargs={"lock_id": lock.pk}) + "#keys",
            action_url=reverse("web:edit_key", kwargs={"lock_id": lock.pk, "key_id": key.pk}),
        ),
    )
