"""The web UI: server-rendered pages over the domain services.

Each view parses a form, calls one service and renders. A service's
DomainError is shown on the page with the error's HTTP status; an object the
user may not see answers the 404 page."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from functools import wraps
from typing import Any, Concatenate, ParamSpec

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.cache import add_never_cache_headers
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from doorkeep import policy
from doorkeep.accounts import services as account_services
from doorkeep.accounts.models import User
from doorkeep.core.errors import DomainError, NotFound, PermissionDenied
from doorkeep.events import selectors as event_selectors
from doorkeep.events.models import DenyReason, Event, EventKind
from doorkeep.keys import schedule as schedules
from doorkeep.keys import selectors as key_selectors
from doorkeep.keys import services as key_services
from doorkeep.keys.models import CredentialKind, Key, KeyStatus, Person
from doorkeep.locks import selectors as lock_selectors
from doorkeep.locks import services as lock_services
from doorkeep.locks.models import Lock
from doorkeep.properties import services as property_services
from doorkeep.properties.models import Property
from doorkeep.web import queries
from doorkeep.web.forms import (
    PEOPLE_IN_SELECT,
    EntryForm,
    EventFilterForm,
    IssueKeyForm,
    KeySearchForm,
    PropertyForm,
    RegisterLockForm,
    RemoveLockForm,
    RenameLockForm,
    ServiceErrorsMixin,
    TokenForm,
)

Action = policy.Action
P = ParamSpec("P")
View = Callable[Concatenate[HttpRequest, P], HttpResponseBase]

KEYS_PER_PAGE = 100
EVENTS_PER_PAGE = 50


def current_user(request: HttpRequest) -> User:
    user = request.user
    if not isinstance(user, User):  # login_required ran first; this is for the type checker
        raise NotFound(_("Not found."))
    return user


def error_page(request: HttpRequest, exc: DomainError) -> HttpResponse:
    return render(
        request,
        "web/error.html",
        {"message": exc.message, "status": exc.status},
        status=exc.status,
    )


def page_view(view: View[P]) -> View[P]:
    """Sign-in required; a DomainError that the view did not handle becomes
    an error page with the error's status (404 for what the user may not see)."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args: P.args, **kwargs: P.kwargs) -> HttpResponseBase:
        try:
            return view(request, *args, **kwargs)
        except DomainError as exc:
            return error_page(request, exc)

    return login_required(wrapper)


def _form_or_page_error(form: ServiceErrorsMixin, exc: DomainError) -> str:
    """A refusal for the user's role goes at the top of the page (the form may
    not even be shown to them); any other error goes on the form."""
    if isinstance(exc, PermissionDenied):
        return exc.message
    form.add_service_error(exc)
    return ""


def _denial(user: User, action: policy.Action, organization_id: int | None) -> str:
    """The policy's reason why the user may not do ``action``, or ""."""
    try:
        policy.require(user, action, organization_id, what=_("Object"))
    except DomainError as exc:
        return exc.message
    return ""


def _safe_next(request: HttpRequest, target: str | None, fallback: str) -> str:
    if target and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return fallback


def _people_for_select(organization_id: int) -> list[Person] | None:
    """The organization's people for a <select>, or None when there are too many
    to list (one query either way)."""
    people = list(key_selectors.people_of(organization_id)[: PEOPLE_IN_SELECT + 1])
    return None if len(people) > PEOPLE_IN_SELECT else people


# --- dashboard ------------------------------------------------------------------


@dataclass
class PropertyGroup:
    prop: Property | None
    locks: list[Lock] = field(default_factory=list)
    can_manage: bool = False
    can_view_events: bool = False
    entry_form: EntryForm | None = None


def _dashboard(
    request: HttpRequest,
    *,
    status: int = 200,
    error: str = "",
    register_form: RegisterLockForm | None = None,
    property_form: PropertyForm | None = None,
) -> HttpResponse:
    user = current_user(request)
    account_services.ensure_personal_organization(user)
    locks = list(lock_selectors.locks_for(user))
    groups: dict[int | None, PropertyGroup] = {}
    for prop in queries.properties_for(user):
        groups[prop.pk] = PropertyGroup(
            prop,
            can_manage=policy.can(user, Action.MANAGE_PROPERTIES, prop.organization_id),
            can_view_events=policy.can(user, Action.VIEW_EVENTS, prop.organization_id),
        )
    for lock in locks:
        property_id = lock.entry.property_id if lock.entry else None
        group = groups.get(property_id)
        if group is None:
            group = groups.setdefault(None, PropertyGroup(None))
        group.locks.append(lock)
    for group in groups.values():
        if group.can_manage and group.prop is not None:
            group.entry_form = EntryForm(
                initial={"next": reverse("web:dashboard")}, auto_id=f"id_entry_{group.prop.pk}_%s"
            )

    can_register = bool(queries.organizations_for(user, Action.REGISTER_LOCKS))
    property_orgs = queries.organizations_for(user, Action.MANAGE_PROPERTIES)
    # A form the user may not use came back (it is not shown): say why.
    refused: list[tuple[policy.Action, Any, bool]] = [
        (Action.REGISTER_LOCKS, register_form, can_register),
        (Action.MANAGE_PROPERTIES, property_form, bool(property_orgs)),
    ]
    for action, form, allowed in refused:
        if form is not None and not allowed:
            any_org = policy.organizations(user).values_list("pk", flat=True).first()
            error, status = _denial(user, action, any_org), 403
    if not can_register:
        register_form = None
    elif register_form is None:
        register_entries = list(queries.entries_for(user, Action.REGISTER_LOCKS))
        register_form = RegisterLockForm(entries=register_entries) if register_entries else None
    if not property_orgs:
        property_form = None
    elif property_form is None:
        property_form = PropertyForm(organizations=property_orgs)
    return render(
        request,
        "web/dashboard.html",
        {
            "error": error,
            "groups": list(groups.values()),
            "lock_count": len(locks),
            "register_form": register_form,
            "can_register": can_register,
            "property_form": property_form,
            "multiple_orgs": len(policy.organizations(user)) > 1,
        },
        status=status,
    )


@require_GET
@page_view
def dashboard(request: HttpRequest) -> HttpResponse:
    return _dashboard(request)


@require_POST
@page_view
def register_lock(request: HttpRequest) -> HttpResponse:
    user = current_user(request)
    form = RegisterLockForm(request.POST, entries=queries.entries_for(user, Action.REGISTER_LOCKS))
    if not form.is_valid():
        return _dashboard(request, status=400, register_form=form)
    try:
        lock = lock_services.register_lock(
            user,
            serial=form.cleaned_data["serial"],
            claim_secret=form.cleaned_data["claim_secret"],
            entry_id=form.cleaned_data["entry"],
            name=form.cleaned_data["name"],
        )
    except DomainError as exc:
        error = _form_or_page_error(form, exc)
        return _dashboard(request, status=exc.status, error=error, register_form=form)
    messages.success(request, _("Lock %(lock)s is registered.") % {"lock": lock})
    return redirect("web:lock", lock_id=lock.pk)


@require_POST
@page_view
def create_property(request: HttpRequest) -> HttpResponse:
    user = current_user(request)
    orgs = queries.organizations_for(user, Action.MANAGE_PROPERTIES)
    form = PropertyForm(request.POST, organizations=orgs)
    if not form.is_valid():
        return _dashboard(request, status=400, property_form=form)
    try:
        prop = property_services.create_property(
            user,
            form.cleaned_data["organization"],
            name=form.cleaned_data["name"],
            address=form.cleaned_data["address"],
            tz=form.cleaned_data["timezone"],
        )
    except DomainError as exc:
        error = _form_or_page_error(form, exc)
        return _dashboard(request, status=exc.status, error=error, property_form=form)
    messages.success(
        request, _("Property %(name)s is added. Add its entries (doors) next.") % {"name": prop}
    )
    return redirect("web:property", property_id=prop.pk)


# --- property ------------------------------------------------------------------


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
    can_manage = policy.can(user, Action.MANAGE_PROPERTIES, prop.organization_id)
    if entry_form is not None and not can_manage:  # not shown to them: say why
        error = _denial(user, Action.MANAGE_PROPERTIES, prop.organization_id)
        status, entry_form = 403, None
    if entry_form is None and can_manage:
        entry_form = EntryForm()
    return render(
        request,
        "web/property.html",
        {
            "prop": prop,
            "error": error,
            "entries": list(prop.entries.all()),
            "locks": list(lock_selectors.locks_for(user, property_id=prop.pk)),
            "can_manage": can_manage,
            "can_view_events": policy.can(user, Action.VIEW_EVENTS, prop.organization_id),
            "entry_form": entry_form,
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


# --- lock -----------------------------------------------------------------------


@dataclass
class CredentialRow:
    kind: str
    label: str
    display: str
    active: bool


@dataclass
class KeyRow:
    key: Key
    status: KeyStatus
    schedule: str
    credentials: list[CredentialRow]

    @property
    def live(self) -> bool:
        return self.key.revoked_at is None


def _credential_row(kc: Any) -> CredentialRow:
    kind = CredentialKind(kc.kind)
    display = kc.credential.display
    if kind == CredentialKind.PIN and any(ch.isdigit() for ch in display):
        display = "••••"  # a PIN code is never shown
    return CredentialRow(kind.value, str(kind.label), display, kc.active)


def _key_rows(keys: Any, now: datetime) -> list[KeyRow]:
    return [
        KeyRow(
            key,
            key.status_at(now),
            schedules.describe(key.schedule),
            [_credential_row(kc) for kc in key.key_credentials.all()],
        )
        for key in keys
    ]


def _lock_page(
    request: HttpRequest,
    lock_id: int,
    *,
    status: int = 200,
    error: str = "",
    issue_form: IssueKeyForm | None = None,
    rename_form: RenameLockForm | None = None,
    remove_form: RemoveLockForm | None = None,
) -> HttpResponse:
    user = current_user(request)
    lock = lock_services.get_lock(user, lock_id)
    org_id = lock.organization_id
    prop = lock.entry.property if lock.entry else None
    tz = queries.zone_of(prop)
    can_view_keys = policy.can(user, Action.VIEW_KEYS, org_id)
    can_manage_keys = policy.can(user, Action.MANAGE_KEYS, org_id)
    can_register = policy.can(user, Action.REGISTER_LOCKS, org_id)
    context: dict[str, Any] = {
        "lock": lock,
        "prop": prop,
        "tz": tz,
        "error": error,
        "live_keys": key_selectors.live_key_count(lock.pk),
        "max_keys": settings.DOORKEEP["MAX_USERS_PER_LOCK"],
        "can_view_keys": can_view_keys,
        "can_manage_keys": can_manage_keys,
        "can_register": can_register,
        "can_view_events": policy.can(user, Action.VIEW_EVENTS, org_id),
        "keys_denied_message": ""
        if can_view_keys
        else _("Only lock owners and building managers can see the keys of a lock."),
    }
    if can_view_keys:
        search = KeySearchForm(request.GET if request.method == "GET" else None)
        q, key_status = search.values()
        keys = key_selectors.keys_of_lock(lock.pk, q=q, status=key_status)
        page = Paginator(keys, KEYS_PER_PAGE).get_page(request.GET.get("page"))
        context.update(search_form=search, page=page, rows=_key_rows(page, datetime.now(tz)))
    if can_manage_keys and org_id is not None:
        if issue_form is None:
            issue_form = IssueKeyForm(people=_people_for_select(org_id), tz=tz)
        context["issue_form"] = issue_form
    if can_register:
        context["rename_form"] = rename_form or RenameLockForm(initial={"name": lock.name})
        context["remove_form"] = remove_form or RemoveLockForm()
    # A form the user may not use came back (it is not shown): say why.
    denied = ""
    if issue_form is not None and not can_manage_keys:
        denied = _denial(user, Action.MANAGE_KEYS, org_id)
    elif (rename_form or remove_form) and not can_register:
        denied = _denial(user, Action.REGISTER_LOCKS, org_id)
    if denied:
        context["error"], status = denied, 403
    return render(request, "web/lock.html", context, status=status)


@require_GET
@page_view
def lock_detail(request: HttpRequest, lock_id: int) -> HttpResponse:
    return _lock_page(request, lock_id)


@require_POST
@page_view
def issue_key(request: HttpRequest, lock_id: int) -> HttpResponse:
    user = current_user(request)
    # Read the lock first: its property's time zone is how the form's dates are meant.
    lock = lock_services.get_lock(user, lock_id)
    assert lock.organization_id is not None
    form = IssueKeyForm(
        request.POST,
        people=_people_for_select(lock.organization_id),
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
    name = key.holder_name
    if any(c.kind == CredentialKind.PIN for c in spec.credentials):
        messages.success(
            request,
            _(
                "Key issued to %(name)s. Give them the PIN code now: it is stored only in a form "
                "that cannot be read back, and will not be shown again."
            )
            % {"name": name},
        )
    else:
        messages.success(request, _("Key issued to %(name)s.") % {"name": name})
    return redirect("web:lock", lock_id=lock_id)


@require_POST
@page_view
def revoke_key(request: HttpRequest, lock_id: int, key_id: int) -> HttpResponse:
    try:
        key = key_services.revoke_key(current_user(request), key_id)
    except DomainError as exc:
        return _lock_page(request, lock_id, status=exc.status, error=exc.message)
    messages.success(request, _("The key of %(name)s is taken back.") % {"name": key.holder_name})
    return redirect("web:lock", lock_id=key.lock_id)


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


# --- event log -------------------------------------------------------------------


@dataclass
class EventRow:
    event: Event
    kind: str
    outcome: str
    reason: str
    credential: str


def _event_rows(events: list[Event]) -> list[EventRow]:
    kinds = dict(EventKind.choices)
    reasons = dict(DenyReason.choices)
    credentials = dict(CredentialKind.choices)
    outcomes = {True: "granted", False: "denied", None: ""}
    return [
        EventRow(
            e,
            str(kinds.get(e.kind, e.kind)),
            outcomes[e.granted],
            str(reasons.get(e.reason, e.reason)),
            str(credentials.get(e.credential_kind, e.credential_kind)),
        )
        for e in events
    ]


def _events_page(
    request: HttpRequest,
    *,
    events: Any,
    organization_id: int,
    prop: Property | None,
    lock: Lock | None,
    csv_url: str,
) -> HttpResponse:
    tz = queries.zone_of(prop)
    form = EventFilterForm(request.GET, people=_people_for_select(organization_id), tz=tz)
    context: dict[str, Any] = {
        "form": form,
        "lock": lock,
        "prop": prop,
        "tz": tz,
        "csv_url": csv_url,
        "rows": [],
        "next_cursor": None,
    }
    status = 200
    if form.is_valid():
        person_id = form.cleaned_data["person"]
        if person_id is not None:
            context["person"] = queries.person_in(organization_id, person_id)
        try:
            result = event_selectors.page(
                event_selectors.filtered(events, form.to_filter()),
                cursor=request.GET.get("cursor") or None,
                limit=EVENTS_PER_PAGE,
            )
        except DomainError as exc:
            form.add_error(None, exc.message)
            status = exc.status
        else:
            context.update(
                rows=_event_rows(result.events),
                next_cursor=result.next_cursor,
                older=bool(request.GET.get("cursor")),
            )
    else:
        status = 400
    return render(request, "web/events.html", context, status=status)


def _events_csv(
    request: HttpRequest, *, events: Any, prop: Property | None, filename: str
) -> HttpResponseBase:
    form = EventFilterForm(request.GET, tz=queries.zone_of(prop), people=[])
    if not form.is_valid():
        errors = "; ".join(str(e) for errs in form.errors.values() for e in errs)
        return render(request, "web/error.html", {"message": errors, "status": 400}, status=400)
    rows = event_selectors.csv_rows(event_selectors.filtered(events, form.to_filter()))
    response = StreamingHttpResponse(rows, content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


@require_GET
@page_view
def lock_events(request: HttpRequest, lock_id: int) -> HttpResponse:
    lock = lock_services.get_lock(current_user(request), lock_id, Action.VIEW_EVENTS)
    assert lock.organization_id is not None
    return _events_page(
        request,
        events=queries.lock_event_log(lock),
        organization_id=lock.organization_id,
        prop=lock.entry.property if lock.entry else None,
        lock=lock,
        csv_url=reverse("web:lock_events_csv", kwargs={"lock_id": lock.pk}),
    )


@require_GET
@page_view
def lock_events_csv(request: HttpRequest, lock_id: int) -> HttpResponseBase:
    lock = lock_services.get_lock(current_user(request), lock_id, Action.VIEW_EVENTS)
    return _events_csv(
        request,
        events=queries.lock_event_log(lock),
        prop=lock.entry.property if lock.entry else None,
        filename=f"doorkeep-lock-{lock.serial}-events.csv",
    )


@require_GET
@page_view
def property_events(request: HttpRequest, property_id: int) -> HttpResponse:
    prop = property_services.get_property(current_user(request), property_id, Action.VIEW_EVENTS)
    return _events_page(
        request,
        events=queries.property_event_log(prop),
        organization_id=prop.organization_id,
        prop=prop,
        lock=None,
        csv_url=reverse("web:property_events_csv", kwargs={"property_id": prop.pk}),
    )


@require_GET
@page_view
def property_events_csv(request: HttpRequest, property_id: int) -> HttpResponseBase:
    prop = property_services.get_property(current_user(request), property_id, Action.VIEW_EVENTS)
    return _events_csv(
        request,
        events=queries.property_event_log(prop),
        prop=prop,
        filename=f"doorkeep-property-{prop.pk}-events.csv",
    )


# --- API tokens --------------------------------------------------------------------


def _tokens_page(
    request: HttpRequest, *, form: TokenForm | None = None, new_token: str = "", status: int = 200
) -> HttpResponse:
    user = current_user(request)
    response = render(
        request,
        "web/tokens.html",
        {
            "tokens": list(queries.tokens_of(user)),
            "form": form or TokenForm(),
            "new_token": new_token,
        },
        status=status,
    )
    add_never_cache_headers(response)  # the page may show a token
    return response


@require_http_methods(["GET", "POST"])
@page_view
def tokens(request: HttpRequest) -> HttpResponse:
    if request.method != "POST":
        return _tokens_page(request)
    form = TokenForm(request.POST)
    if not form.is_valid():
        return _tokens_page(request, form=form, status=400)
    _row, token = account_services.create_token(current_user(request), form.cleaned_data["name"])
    return _tokens_page(request, new_token=token)


@require_POST
@page_view
def revoke_token(request: HttpRequest, token_id: int) -> HttpResponse:
    account_services.revoke_token(current_user(request), token_id)
    messages.success(request, _("The token is revoked; it no longer works."))
    return redirect("web:tokens")
