"""Shared management: keys issued to an organization, and the organization's side."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from doorkeep import policy
from doorkeep.core.errors import DomainError, NotFound
from doorkeep.keys import selectors as key_selectors
from doorkeep.keys import services as key_services
from doorkeep.keys import sharing
from doorkeep.keys.models import Key, KeyStatus
from doorkeep.licensing.state import LicenceState, licence_of
from doorkeep.locks import services as lock_services
from doorkeep.web import queries
from doorkeep.web.forms import IssueKeyForm, OrganizationKeyForm
from doorkeep.web.views.common import (
    KEYS_PER_PAGE,
    ORGANIZATIONS_IN_SELECT,
    Action,
    _denial,
    _form_or_page_error,
    _issued_message,
    _key_rows,
    _moment,
    _people_for_select,
    _taken_back_message,
    at_the_top,
    current_user,
    page_view,
)
from doorkeep.web.views.keys import EditTarget, _edit_key
from doorkeep.web.views.locks import _lock_page


@require_POST
@page_view
def issue_organization_key(request: HttpRequest, lock_id: int) -> HttpResponse:
    user = current_user(request)
    lock = lock_services.get_lock(user, lock_id)
    tz = queries.zone_of(lock.entry.property if lock.entry else None)
    orgs = queries.organizations_to_receive_keys(lock.organization_id, ORGANIZATIONS_IN_SELECT)
    listed = None if len(orgs) > ORGANIZATIONS_IN_SELECT else orgs
    form = OrganizationKeyForm(request.POST, organizations=listed, tz=tz)
    if not form.is_valid():
        return _lock_page(request, lock_id, status=400, org_form=form)
    valid_from, valid_until = form.window()
    try:
        key = sharing.issue_key_to_organization(
            user,
            lock_id,
            form.cleaned_data["organization"],
            valid_from=valid_from,
            valid_until=valid_until,
            note=form.cleaned_data["note"],
        )
    except DomainError as exc:
        error = _form_or_page_error(form, exc)
        return _lock_page(request, lock_id, status=exc.status, error=error, org_form=form)
    messages.success(
        request,
        _(
            "Key issued to the organization %(org)s. Its managers can now issue keys to this "
            "lock for their own people."
        )
        % {"org": key.holder_name},
    )
    return at_the_top("web:lock", lock_id=lock_id)


def _shared_problem(parent: Key, licence: LicenceState, tz: Any) -> tuple[str, bool]:
    """Why keys cannot be issued or changed under an organization's key now, or
    "": the message, and whether the key was taken back."""
    lock = parent.lock
    if parent.revoked_at is not None or lock.organization_id != parent.lock_owner_id:
        when = _moment(parent.revoked_at, tz) if parent.revoked_at else ""
        message = _(
            "The lock owner took back your organization's key to this lock on %(date)s. Every "
            "key you issued under it was taken back with it."
        ) % {"date": when}
        if not when:
            message = _(
                "The lock owner took back your organization's key to this lock. Every key you "
                "issued under it was taken back with it."
            )
        return message, True
    status = parent.status_at(licence.at)
    if status == KeyStatus.SCHEDULED:
        return _(
            "Your organization's key to this lock is valid from %(date)s; you can issue keys "
            "under it from then."
        ) % {"date": _moment(parent.valid_from, tz)}, False
    if status == KeyStatus.EXPIRED:
        return _(
            "Your organization's key to this lock ended on %(date)s. You can still take keys back."
        ) % {"date": _moment(parent.valid_until, tz)}, False
    holder = parent.holder_organization
    if holder is not None and holder.organization_management_since is None:
        return _(
            "Your organization needs organization management to manage shared keys. A lock "
            "owner of your organization can enter its prepaid code under Account upgrades."
        ), False
    if not licence.option_active:
        return _(
            "Shared management of this lock is not active now: the lock owner's option to issue "
            "keys to organizations has ended, or the lock's 5-year management has. You can "
            "still take keys back; ask the lock owner (%(owner)s) to renew it."
        ) % {"owner": parent.lock_owner.name}, False
    return "", False


def _shared_page(
    request: HttpRequest,
    key_id: int,
    *,
    status: int = 200,
    error: str = "",
    issue_form: IssueKeyForm | None = None,
) -> HttpResponse:
    user = current_user(request)
    parent = sharing.get_shared_key(user, key_id)
    holder_id = parent.holder_organization_id
    lock = parent.lock
    prop = lock.entry.property if lock.entry else None
    tz = queries.zone_of(prop)
    licence = licence_of(lock.pk)
    problem, taken_back = _shared_problem(parent, licence, tz)
    can_view_keys = policy.can(user, Action.VIEW_KEYS, holder_id)
    can_manage_keys = policy.can(user, Action.MANAGE_KEYS, holder_id)
    context: dict[str, Any] = {
        "nav": "locks",
        "parent": parent,
        "lock": lock,
        "prop": prop,
        "tz": tz,
        "error": error,
        "problem": problem,
        "taken_back": taken_back,
        "can_view_keys": can_view_keys,
        "can_manage_keys": can_manage_keys,
        "can_change": can_manage_keys and not problem,
    }
    if can_view_keys:
        keys = key_selectors.keys_under(parent.pk)
        page = Paginator(keys, KEYS_PER_PAGE).get_page(request.GET.get("page"))
        context.update(page=page, rows=_key_rows(page, datetime.now(tz)))
    if can_manage_keys and not problem and holder_id is not None:
        context["issue_form"] = issue_form or IssueKeyForm(
            people=_people_for_select(holder_id), tz=tz
        )
    elif issue_form is not None and not can_manage_keys:
        context["error"], status = _denial(user, Action.MANAGE_KEYS, holder_id), 403
    return render(request, "web/shared_key.html", context, status=status)


@require_GET
@page_view
def shared_key(request: HttpRequest, key_id: int) -> HttpResponse:
    return _shared_page(request, key_id)


@require_POST
@page_view
def issue_shared_key(request: HttpRequest, key_id: int) -> HttpResponse:
    user = current_user(request)
    parent = sharing.get_shared_key(user, key_id)
    assert parent.holder_organization_id is not None
    form = IssueKeyForm(
        request.POST,
        people=_people_for_select(parent.holder_organization_id),
        tz=queries.zone_of(parent.lock.entry.property if parent.lock.entry else None),
    )
    if not form.is_valid():
        return _shared_page(request, key_id, status=400, issue_form=form)
    spec = form.spec()
    try:
        key = key_services.issue_key(user, parent.lock_id, spec, parent_key_id=parent.pk)
    except DomainError as exc:
        error = _form_or_page_error(form, exc)
        return _shared_page(request, key_id, status=exc.status, error=error, issue_form=form)
    _issued_message(request, key, spec)
    return at_the_top("web:shared_key", key_id=key_id)


@require_POST
@page_view
def revoke_shared_key(request: HttpRequest, key_id: int, child_id: int) -> HttpResponse:
    user = current_user(request)
    sharing.get_shared_key(user, key_id)  # 404 unless the user's organization holds it
    try:
        key = key_services.revoke_key(user, child_id)
    except DomainError as exc:
        return _shared_page(request, key_id, status=exc.status, error=exc.message)
    messages.success(request, _taken_back_message(key))
    return redirect("web:shared_key", key_id=key_id)


@require_http_methods(["GET", "POST"])
@page_view
def edit_shared_key(request: HttpRequest, key_id: int, child_id: int) -> HttpResponse:
    user = current_user(request)
    parent = sharing.get_shared_key(user, key_id)
    key = key_selectors.get_key(user, child_id)
    if key.parent_id != parent.pk:
        raise NotFound(_("Key not found."), code="key_not_found")
    tz = queries.zone_of(parent.lock.entry.property if parent.lock.entry else None)
    problem, _taken_back = _shared_problem(parent, licence_of(parent.lock_id), tz)
    return _edit_key(
        request,
        key,
        EditTarget(
            parent.lock,
            back_url=reverse("web:shared_key", kwargs={"key_id": parent.pk}) + "#keys",
            action_url=reverse(
                "web:edit_shared_key", kwargs={"key_id": parent.pk, "child_id": key.pk}
            ),
            shared_problem=problem,
        ),
    )
