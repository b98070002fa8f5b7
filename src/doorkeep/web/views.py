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
from django.utils import formats, timezone
from django.utils.cache import add_never_cache_headers
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from doorkeep import policy
from doorkeep.accounts import services as account_services
from doorkeep.accounts.models import Organization, User
from doorkeep.core.errors import DomainError, NotFound, PermissionDenied
from doorkeep.events import selectors as event_selectors
from doorkeep.events.models import DenyReason, Event, EventKind
from doorkeep.gateway import remote
from doorkeep.gateway import selectors as gateway_selectors
from doorkeep.gateway import services as gateway_services
from doorkeep.keys import schedule as schedules
from doorkeep.keys import selectors as key_selectors
from doorkeep.keys import services as key_services
from doorkeep.keys import sharing
from doorkeep.keys.models import CredentialKind, Key, KeyStatus, Person
from doorkeep.licensing import selectors as licensing_selectors
from doorkeep.licensing import services as licensing_services
from doorkeep.licensing.models import KeyAllotment, Period, PeriodKind
from doorkeep.licensing.state import LicenceState, licence_of
from doorkeep.locks import selectors as lock_selectors
from doorkeep.locks import services as lock_services
from doorkeep.locks.models import Lock
from doorkeep.properties import services as property_services
from doorkeep.properties.models import Entry, Property
from doorkeep.web import queries
from doorkeep.web.forms import (
    PEOPLE_IN_SELECT,
    EditKeyForm,
    EntryForm,
    EventFilterForm,
    IssueKeyForm,
    KeySearchForm,
    OrganizationKeyForm,
    PrepaidCodeForm,
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
ENDING_SOON_DAYS = 30
ORGANIZATIONS_IN_SELECT = 500

# Refusals that concern the whole page rather than one form: the form they
# came from may not even be shown (management ended, shared management off).
PAGE_LEVEL_ERRORS = frozenset(
    {
        "management_ended",
        "shared_management_inactive",
        "shared_key_revoked",
        "shared_key_not_valid",
        "needs_organization_management",
        "already_revoked",
    }
)


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
    if isinstance(exc, PermissionDenied) or exc.code in PAGE_LEVEL_ERRORS:
        return exc.message
    form.add_service_error(exc)
    return ""


def _moment(moment: datetime | None, tz: Any, fmt: str = "Y-m-d H:i") -> str:
    """A moment as text in the time zone ``tz`` (for messages built in views)."""
    if moment is None:
        return "—"
    return formats.date_format(timezone.localtime(moment, tz), fmt)


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
class LockRow:
    lock: Lock
    licence: LicenceState | None  # None when the user may not see licences


@dataclass
class PropertyGroup:
    prop: Property | None
    rows: list[LockRow] = field(default_factory=list)
    can_manage: bool = False
    can_view_events: bool = False
    entry_form: EntryForm | None = None

    @property
    def tz(self) -> Any:
        return queries.zone_of(self.prop)


@dataclass
class EndingSoon:
    lock: Lock
    prop: Property | None
    mode: str  # free or active
    ends_at: datetime
    days_left: int
    tz: Any


@dataclass
class SharedRow:
    key: Key
    tz: Any


def _ending_soon(user: User, now: datetime) -> list[EndingSoon]:
    """Locks whose full management (free or paid) ends within ENDING_SOON_DAYS,
    soonest first. Days are counted in each property's time zone."""
    soon: list[EndingSoon] = []
    for item in licensing_selectors.ending_soon(user, ENDING_SOON_DAYS, at=now):
        prop = item.lock.entry.property if item.lock.entry else None
        tz = queries.zone_of(prop)
        ends = timezone.localtime(item.full_until, tz)
        days = (ends.date() - now.astimezone(tz).date()).days
        soon.append(EndingSoon(item.lock, prop, item.mode, item.full_until, max(days, 0), tz))
    return soon


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
    now = timezone.now()
    locks = list(lock_selectors.locks_for(user))
    licences = queries.licences_for(user, locks, now)
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
        # The licence is shown to those who see the keys (lock owners, managers).
        visible = policy.can(user, Action.VIEW_KEYS, lock.organization_id)
        group.rows.append(LockRow(lock, licences.get(lock.pk) if visible else None))
    for group in groups.values():
        if group.can_manage and group.prop is not None:
            group.entry_form = EntryForm(
                initial={"next": reverse("web:dashboard")}, auto_id=f"id_entry_{group.prop.pk}_%s"
            )
    shared = [
        SharedRow(key, queries.zone_of(key.lock.entry.property if key.lock.entry else None))
        for key in sharing.shared_with(user)
    ]

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
            "nav": "locks",
            "error": error,
            "groups": list(groups.values()),
            "lock_count": len(locks),
            "ending_soon": _ending_soon(user, now),
            "ending_soon_days": ENDING_SOON_DAYS,
            "shared": shared,
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
    # The device secret is shown now, once: the page is the answer to the POST.
    return _device_secret_page(
        request, lock, getattr(lock, "new_device_secret", ""), registered=True
    )


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
    tz = queries.zone_of(prop)
    licence = licence_of(lock.pk)
    can_view_keys = policy.can(user, Action.VIEW_KEYS, org_id)
    can_manage_keys = policy.can(user, Action.MANAGE_KEYS, org_id)
    can_register = policy.can(user, Action.REGISTER_LOCKS, org_id)
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
        "can_view_events": policy.can(user, Action.VIEW_EVENTS, org_id),
        "keys_denied_message": ""
        if can_view_keys
        else _("Only lock owners and building managers can see the keys of a lock."),
    }
    # The device panel (E2) for those who see the keys; the entry's Open button
    # (R25) for those who hold a phone key on this lock.
    device, holds_phone_key = gateway_selectors.for_lock_page(user, lock)
    context["device"] = device if can_view_keys else None
    context["can_open"] = holds_phone_key and lock.entry is not None
    if can_view_keys:
        search = KeySearchForm(request.GET if request.method == "GET" else None)
        q, key_status = search.values()
        keys = queries.with_keys_under(key_selectors.keys_of_lock(lock.pk, q=q, status=key_status))
        page = Paginator(keys, KEYS_PER_PAGE).get_page(request.GET.get("page"))
        context.update(search_form=search, page=page, rows=_key_rows(page, datetime.now(tz)))
    if can_manage_keys and org_id is not None and licence.can_manage:
        # In take-back-only mode (R6) the forms are not shown: the page says why.
        context["issue_form"] = issue_form or IssueKeyForm(people=_people_for_select(org_id), tz=tz)
        if licence.option_active:
            context["org_form"] = _org_key_form(org_id, tz, org_form)
    if can_register:
        context["rename_form"] = rename_form or RenameLockForm(initial={"name": lock.name})
        context["remove_form"] = remove_form or RemoveLockForm()
    # A form the user may not use came back (it is not shown): say why.
    denied = ""
    if posted_keys_form is not None and not can_manage_keys:
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
    _issued_message(request, key, spec)
    return redirect("web:lock", lock_id=lock_id)


def _issued_message(request: HttpRequest, key: Key, spec: key_services.KeySpec) -> None:
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
    return redirect("web:lock", lock_id=lock_id)


@require_POST
@page_view
def revoke_key(request: HttpRequest, lock_id: int, key_id: int) -> HttpResponse:
    try:
        key = key_services.revoke_key(current_user(request), key_id)
    except DomainError as exc:
        return _lock_page(request, lock_id, status=exc.status, error=exc.message)
    messages.success(request, _taken_back_message(key))
    return redirect("web:lock", lock_id=key.lock_id)


def _taken_back_message(key: Key) -> str:
    if key.holder_organization_id is not None:
        return _("The key of %(name)s is taken back, with every key issued under it.") % {
            "name": key.holder_name
        }
    return _("The key of %(name)s is taken back.") % {"name": key.holder_name}


# --- changing a key ------------------------------------------------------------------


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


# --- the lock as a device (E2) and remote unlock (R25) -----------------------------------


def _device_secret_page(
    request: HttpRequest, lock: Lock, secret: str, *, registered: bool
) -> HttpResponse:
    """The device secret, shown this once (after registering the lock, or after
    issuing a new one), with the command that connects the simulated lock."""
    response = render(
        request,
        "web/device_secret.html",
        {"nav": "locks", "lock": lock, "secret": secret, "registered": registered},
    )
    add_never_cache_headers(response)  # the page shows a secret
    return response


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


def _opened(request: HttpRequest, result: remote.Unlocked) -> None:
    name = Entry.objects.filter(pk=result.entry_id).values_list("name", flat=True).first()
    messages.success(request, _("Opened %(entry)s.") % {"entry": name or "—"})


def _doors_page(request: HttpRequest, *, status: int = 200, error: str = "") -> HttpResponse:
    user = current_user(request)
    return render(
        request,
        "web/doors.html",
        {"nav": "doors", "entries": remote.entries_for(user), "error": error},
        status=status,
    )


@require_GET
@page_view
def doors(request: HttpRequest) -> HttpResponse:
    """My doors: the entries where the user holds a phone key, each with an
    Open button (R25)."""
    return _doors_page(request)


@require_POST
@page_view
def open_door(request: HttpRequest, entry_id: int) -> HttpResponse:
    try:
        result = remote.remote_unlock(current_user(request), entry_id)
    except NotFound:
        raise  # the 404 page: the entry does not exist for this user
    except DomainError as exc:  # offline (503), no answer (504), refused (409), denied (403)
        return _doors_page(request, status=exc.status, error=exc.message)
    _opened(request, result)
    return redirect(_safe_next(request, request.POST.get("next"), reverse("web:doors")))


@require_POST
@page_view
def open_lock(request: HttpRequest, lock_id: int) -> HttpResponse:
    """The Open button of the lock page: opens the lock's entry."""
    user = current_user(request)
    lock = lock_services.get_lock(user, lock_id)
    if lock.entry_id is None:
        raise NotFound(_("Entry not found."))
    try:
        result = remote.remote_unlock(user, lock.entry_id)
    except DomainError as exc:
        return _lock_page(request, lock_id, status=exc.status, error=exc.message)
    _opened(request, result)
    return redirect("web:lock", lock_id=lock_id)


# --- licence ---------------------------------------------------------------------------


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
    if not policy.can(user, Action.VIEW_KEYS, org_id):
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
            client_ip=request.META.get("REMOTE_ADDR", ""),
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
    return redirect("web:upgrades")


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
            client_ip=request.META.get("REMOTE_ADDR", ""),
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


# --- shared management: the organization's side -------------------------------------------


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
    return redirect("web:shared_key", key_id=key_id)


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
            "nav": "tokens",
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
