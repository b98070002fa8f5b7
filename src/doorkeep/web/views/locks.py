"""The lock page: renaming and removing a lock, its device secret (E2), opening it (R25)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from doorkeep import policy
from doorkeep.core.errors import DomainError, NotFound, PermissionDenied
from doorkeep.gateway import remote
from doorkeep.gateway import selectors as gateway_selectors
from doorkeep.gateway import services as gateway_services
from doorkeep.keys import selectors as key_selectors
from doorkeep.licensing.state import licence_of
from doorkeep.locks import services as lock_services
from doorkeep.web import queries
from doorkeep.web.forms import (
    IssueKeyForm,
    KeySearchForm,
    OrganizationKeyForm,
    RemoveLockForm,
    RenameLockForm,
)
from doorkeep.web.views.common import (
    KEYS_PER_PAGE,
    ORGANIZATIONS_IN_SELECT,
    Action,
    _denial,
    _device_secret_page,
    _form_or_page_error,
    _key_rows,
    _opened,
    _people_for_select,
    current_user,
    page_view,
)


def _org_key_form(
    org_id: int, tz: Any, form: OrganizationKeyForm | None
) -> OrganizationKeyForm | None:
    """The form to issue a key to an organization, or None when no organization
    could receive one."""
    if form is not None:
        return form
    orgs = queries.organizations_to_receive_keys(org_id, ORGANIZATIONS_IN_SELECT)
    if not orgs:
        return None
    listed = None if len(orgs) > ORGANIZATIONS_IN_SELECT else orgs
    return OrganizationKeyForm(organizations=listed, tz=tz)


def _lock_page(
    request: HttpRequest,
    lock_id: int,
    *,
    status: int = 200,
    error: str = "",
    issue_form: IssueKeyForm | None = None,
    org_form: OrganizationKeyForm | None = None,
    rename_form: RenameLockForm | None = None,
    remove_form: RemoveLockForm | None = None,
) -> HttpResponse:
    user = current_user(request)
    lock = lock_services.get_lock(user, lock_id)
    org_id = lock.organization_id
    prop = lock.entry.property if lock.entry else None
    site = prop.pk if prop is not None else None
    tz = queries.zone_of(prop)
    licence = licence_of(lock.pk)
    can_view_keys = policy.can(user, Action.VIEW_KEYS, org_id, site)
    can_manage_keys = policy.can(user, Action.MANAGE_KEYS, org_id, site)
    can_register = policy.can(user, Action.REGISTER_LOCKS, org_id, site)
    # A collaborator of this site only: the organization's people are not theirs to list.
    whole_org = policy.can(user, Action.VIEW, org_id)
    # What came back from a POST, before it is replaced by what is shown.
    posted_keys_form = issue_form or org_form
    context: dict[str, Any] = {
        "nav": "locks",
        "lock": lock,
        "prop": prop,
        "tz": tz,
        "error": error,
        "licence": licence,
        "live_keys": licence.keys_issued,
        "max_keys": settings.DOORKEEP["MAX_USERS_PER_LOCK"],
        "can_view_keys": can_view_keys,
        "can_manage_keys": can_manage_keys,
        "can_register": can_register,
        "can_view_events": policy.can(user, Action.VIEW_EVENTS, org_id, site),
        "keys_denied_message": ""
        if can_view_keys
        else _("Only lock owners and building managers can see the keys of a lock."),
    }
    # The device panel (E2) for those who see the keys; the entry's Open button
    # (R25) for those who hold a phone key on this lock.
    device, holds_phone_key = gateway_selectors.for_lock_page(user, lock)
    context["device"] = device if can_view_keys else None
    may_open = holds_phone_key or policy.can(user, Action.OPEN_ENTRIES, org_id, site)
    context["can_open"] = may_open and lock.entry is not None
    if can_view_keys:
        search = KeySearchForm(request.GET if request.method == "GET" else None)
        q, key_status = search.values()
        keys = queries.with_keys_under(key_selectors.keys_of_lock(lock.pk, q=q, status=key_status))
        page = Paginator(keys, KEYS_PER_PAGE).get_page(request.GET.get("page"))
        context.update(search_form=search, page=page, rows=_key_rows(page, datetime.now(tz)))
    if can_manage_keys and org_id is not None and licence.can_manage:
        # In take-back-only mode (R6) the forms are not shown: the page says why.
        people = _people_for_select(org_id) if whole_org else None
        context["issue_form"] = issue_form or IssueKeyForm(people=people, tz=tz)
        if licence.option_active:
            context["org_form"] = _org_key_form(org_id, tz, org_form)
    if can_register:
        context["rename_form"] = rename_form or RenameLockForm(initial={"name": lock.name})
        context["remove_form"] = remove_form or RemoveLockForm()
    # A form the user may not use came back (it is not shown): say why.
    denied = ""
    if posted_keys_form is not None and not can_manage_keys:
        denied = _denial(user, Action.MANAGE_KEYS, org_id, site)
    elif (rename_form or remove_form) and not can_register:
        denied = _denial(user, Action.REGISTER_LOCKS, org_id, site)
    if denied:
        context["error"], status = denied, 403
    return render(request, "web/lock.html", context, status=status)


@require_GET
@page_view
def lock_detail(request: HttpRequest, lock_id: int) -> HttpResponse:
    return _lock_page(request, lock_id)


@require_POST
@page_view
def rename_lock(request: HttpRequest, lock_id: int) -> HttpResponse:
    form = RenameLockForm(request.POST)
    if not form.is_valid():
        return _lock_page(request, lock_id, status=400, rename_form=form)
    try:
        lock = lock_services.update_lock(
            current_user(request), lock_id, name=form.cleaned_data["name"]
        )
    except DomainError as exc:
        error = _form_or_page_error(form, exc)
        return _lock_page(request, lock_id, status=exc.status, error=error, rename_form=form)
    messages.success(request, _("The lock is now called %(name)s.") % {"name": lock.name})
    return redirect("web:lock", lock_id=lock_id)


@require_POST
@page_view
def remove_lock(request: HttpRequest, lock_id: int) -> HttpResponse:
    form = RemoveLockForm(request.POST)
    if not form.is_valid():
        return _lock_page(request, lock_id, status=400, remove_form=form)
    try:
        lock = lock_services.remove_lock(current_user(request), lock_id)
    except DomainError as exc:
        return _lock_page(request, lock_id, status=exc.status, error=exc.message)
    messages.success(
        request,
        _("Lock %(serial)s is removed and its keys are taken back.") % {"serial": lock.serial},
    )
    return redirect("web:dashboard")


@require_POST
@page_view
def rotate_device_secret(request: HttpRequest, lock_id: int) -> HttpResponse:
    user = current_user(request)
    try:
        secret = gateway_services.rotate_device_secret(user, lock_id)
    except PermissionDenied as exc:
        return _lock_page(request, lock_id, status=exc.status, error=exc.message)
    lock = lock_services.get_lock(user, lock_id)
    return _device_secret_page(request, lock, secret, registered=False)


@require_POST
@page_view
def open_lock(request: HttpRequest, lock_id: int) -> HttpResponse:
    """The Open button of the lock page: opens the lock's entry, with the
    user's phone key, or for a lock owner or building manager without one,
    as staff (policy OPEN_ENTRIES; logged under their name). Success and
    failure both redirect to the lock page, which shows the message: a reload
    sends nothing again, and a lock that is offline is no server error."""
    user = current_user(request)
    lock = lock_services.get_lock(user, lock_id)
    if lock.entry_id is None:
        raise NotFound(_("Entry not found."))
    _device, holds_phone_key = gateway_selectors.for_lock_page(user, lock)
    site = lock.entry.property_id if lock.entry else None
    org_id = lock.organization_id
    staff = not holds_phone_key and policy.can(user, Action.OPEN_ENTRIES, org_id, site)
    try:
        result = remote.remote_unlock(user, lock.entry_id, staff=staff)
    except NotFound:
        raise
    except DomainError as exc:  # offline, no answer, refused, denied
        messages.error(request, exc.message)
    else:
        _opened(request, result)
    return redirect(reverse("web:lock", kwargs={"lock_id": lock_id}) + "#open")
