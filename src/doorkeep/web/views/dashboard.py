"""The dashboard: the user's locks by property, registering a lock, adding a property."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from doorkeep import policy
from doorkeep.accounts import services as account_services
from doorkeep.accounts.models import User
from doorkeep.core.errors import DomainError
from doorkeep.guests import selectors as guest_selectors
from doorkeep.keys import sharing
from doorkeep.keys.models import Key
from doorkeep.licensing import selectors as licensing_selectors
from doorkeep.licensing.state import LicenceState, days_left
from doorkeep.licensing.upgrades import has_building_management
from doorkeep.locks import selectors as lock_selectors
from doorkeep.locks import services as lock_services
from doorkeep.locks.models import Lock
from doorkeep.properties import services as property_services
from doorkeep.properties.models import Property
from doorkeep.web import queries
from doorkeep.web.forms import EntryForm, PropertyForm, RegisterLockForm
from doorkeep.web.views.common import (
    Action,
    _denial,
    _device_secret_page,
    _form_or_page_error,
    current_user,
    page_view,
)

ENDING_SOON_DAYS = 30


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
    entries_need_upgrade: bool = False  # another entry needs building management

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
        days = days_left(item.full_until, now, tz)
        soon.append(EndingSoon(item.lock, prop, item.mode, item.full_until, days, tz))
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
            can_manage=policy.can(user, Action.MANAGE_PROPERTIES, prop.organization_id, prop.pk),
            can_view_events=policy.can(user, Action.VIEW_EVENTS, prop.organization_id, prop.pk),
        )
    for lock in locks:
        property_id = lock.entry.property_id if lock.entry else None
        group = groups.get(property_id)
        if group is None:
            group = groups.setdefault(None, PropertyGroup(None))
        # The licence is shown to those who see the keys (lock owners, managers).
        visible = policy.can(user, Action.VIEW_KEYS, lock.organization_id, property_id)
        group.rows.append(LockRow(lock, licences.get(lock.pk) if visible else None))
    for group in groups.values():
        if group.can_manage and group.prop is not None:
            if group.prop.entries.all() and not has_building_management(group.prop.organization):
                group.entries_need_upgrade = True
                continue
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
            # A collaborator of one site only has no organization to ask about.
            reason = _denial(user, action, any_org) if any_org else policy.denial(action)
            error, status = reason, 403
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
            # Invitations to the user's address (R23): answered here or in the guest app.
            "pending": guest_selectors.pending_for(user),
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
    from doorkeep.web.views.guests import is_guest_only

    if is_guest_only(current_user(request)):  # a guest's home is the guest app (R24)
        return redirect("web:guest_home")
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
    note = lock_selectors.entry_note(lock)
    if note:
        messages.info(request, note)
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
