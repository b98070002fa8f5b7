"""Laundry machines in the web UI: a site's machines with their live state
(free, running, out of order, offline), registering one (its device secret
shown once, with the simulator's command to try it), a machine's page (live
state, its latest cycles and events, rename, a new secret, removal), the
Laundry section of the site's page, and the resident portal's Laundry
section with a Start button on each free machine.

The live parts (``data-live-part``) are rendered again by the ``…/live/``
views, which static/stations.js fetches every second or two, as on the
charging-station pages. Machines and cycles are for the site's lock owners,
building managers and read-only collaborators; changes for owners and
managers (a plain member is told why, an outsider finds nothing)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django import forms
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.cache import add_never_cache_headers
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET, require_POST

from doorkeep import policy
from doorkeep.accounts.models import User
from doorkeep.core.errors import DomainError, NotFound
from doorkeep.events.models import DenyReason, Event
from doorkeep.laundry import selectors, services
from doorkeep.laundry.models import Machine, MachineKind
from doorkeep.properties.models import Property, zone_of
from doorkeep.web.forms import ServiceErrorsMixin
from doorkeep.web.views.common import _form_or_page_error, current_user, page_view
from doorkeep.web.views.portal import _portal_page

VIEW = policy.Action.VIEW_STATIONS
MANAGE = policy.Action.MANAGE_MACHINES
CYCLES_SHOWN = 50
EVENTS_SHOWN = 20
LIVE_EVERY_MS = 1000
PORTAL_LIVE_EVERY_MS = 2000
_CODE = {"autocomplete": "off", "autocapitalize": "characters", "spellcheck": "false"}


# --- forms ---------------------------------------------------------------------------------


class MachineForm(ServiceErrorsMixin, forms.Form):
    FIELD_FOR_CODE = {
        "invalid_serial": "serial",
        "machine_exists": "serial",
        "invalid_kind": "kind",
        "name_too_long": "name",
    }

    serial = forms.CharField(
        label=gettext_lazy("Controller serial number"),
        max_length=64,
        widget=forms.TextInput(attrs={**_CODE, "placeholder": "WM-2025-0001"}),
        help_text=gettext_lazy("As printed on the machine's controller."),
    )
    kind = forms.ChoiceField(label=gettext_lazy("Kind"), choices=MachineKind.choices)
    name = forms.CharField(
        label=gettext_lazy("Name"),
        max_length=100,
        required=False,
        widget=forms.TextInput(attrs={"placeholder": gettext_lazy("Washer 1, basement")}),
    )


class ChangeMachineForm(ServiceErrorsMixin, forms.Form):
    FIELD_FOR_CODE = {"invalid_kind": "kind", "name_too_long": "name"}

    name = forms.CharField(label=gettext_lazy("Name"), max_length=100, required=False)
    kind = forms.ChoiceField(label=gettext_lazy("Kind"), choices=MachineKind.choices)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("auto_id", "id_change_%s")
        super().__init__(*args, **kwargs)


class RemoveMachineForm(forms.Form):
    confirm = forms.BooleanField(
        label=gettext_lazy(
            "Yes, remove this machine. It can no longer connect; its cycles are kept."
        ),
        error_messages={
            "required": gettext_lazy("Tick the box to confirm that the machine is to be removed.")
        },
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("auto_id", "id_remove_%s")
        super().__init__(*args, **kwargs)


class StartForm(forms.Form):
    program = forms.CharField(max_length=40, required=False)


# --- what the pages show -------------------------------------------------------------------


@dataclass
class MachineCard:
    machine: Machine
    state: str  # free, running, out_of_order, offline
    running: Any = None  # the cycle running now, if the platform knows it

    @property
    def state_label(self) -> str:
        return services.state_label(self.state)

    @property
    def kind_label(self) -> str:
        return str(MachineKind(self.machine.kind).label)

    @property
    def sync_state(self) -> str:
        return selectors.sync_state(self.machine)


def cards(machines: list[Machine]) -> list[MachineCard]:
    """Each machine with its live state and the cycle running on it."""
    from doorkeep.laundry.models import Cycle

    running: dict[int, Any] = {}
    for cycle in (
        Cycle.objects.filter(
            machine_id__in=[m.pk for m in machines],
            started_at__isnull=False,
            ended_at__isnull=True,
        )
        .select_related("person", "unit")
        .order_by("started_at", "pk")
    ):
        running[cycle.machine_id] = cycle  # the latest wins
    return [
        MachineCard(
            m,
            services.live_state(m),
            running.get(m.pk) if m.online and m.state == "running" else None,
        )
        for m in machines
    ]


def _live(request: HttpRequest, template: str, context: dict[str, Any]) -> HttpResponse:
    response = render(request, template, context)
    add_never_cache_headers(response)
    return response


def section(user: User, prop: Property) -> dict[str, Any] | None:
    """The Laundry section of the site's page, for those who may see it
    (else None): the machines with their live state."""
    if not policy.can(user, VIEW, prop.organization_id, prop.pk):
        return None
    return {
        "prop": prop,
        "tz": zone_of(prop),
        "cards": cards(services.machines_of_site(user, prop.pk)),
        "can_manage": policy.can(user, MANAGE, prop.organization_id, prop.pk),
        "live_every": LIVE_EVERY_MS,
    }


# --- a site's machines ---------------------------------------------------------------------


def _site_parts(user: User, prop: Property) -> dict[str, Any]:
    return {
        "prop": prop,
        "tz": zone_of(prop),
        "cards": cards(services.machines_of_site(user, prop.pk)),
    }


def _site_page(
    request: HttpRequest,
    property_id: int,
    *,
    status: int = 200,
    error: str = "",
    form: MachineForm | None = None,
) -> HttpResponse:
    user = current_user(request)
    prop = services.get_site(user, property_id)
    can_manage = policy.can(user, MANAGE, prop.organization_id, prop.pk)
    if form is not None and not can_manage:
        error = error or selectors.denial(MANAGE)
        status, form = 403, None
    if can_manage:
        form = form or MachineForm()
    context = {
        **_site_parts(user, prop),
        "nav": "locks",
        "error": error,
        "can_manage": can_manage,
        "form": form,
        "cycles": list(services.cycles(user, property_id=prop.pk)[:CYCLES_SHOWN]),
        "cycles_shown": CYCLES_SHOWN,
        "live_every": LIVE_EVERY_MS,
    }
    return render(request, "web/machines/site.html", context, status=status)


@require_GET
@page_view
def site_machines(request: HttpRequest, property_id: int) -> HttpResponse:
    return _site_page(request, property_id)


@require_GET
@page_view
def site_machines_live(request: HttpRequest, property_id: int) -> HttpResponse:
    user = current_user(request)
    prop = services.get_site(user, property_id)
    return _live(request, "web/machines/_site_live.html", _site_parts(user, prop))


def _secret_page(
    request: HttpRequest, machine: Machine, secret: str, *, registered: bool
) -> HttpResponse:
    """The device secret, shown this once, with what to enter in the
    controller (and the simulator's command to try it)."""
    response = render(
        request,
        "web/machines/secret.html",
        {
            "nav": "locks",
            "machine": machine,
            "prop": machine.property,
            "secret": secret,
            "registered": registered,
            "gateway": services.gateway_url(),
        },
    )
    add_never_cache_headers(response)  # the page shows a secret
    return response


@require_POST
@page_view
def register_machine(request: HttpRequest, property_id: int) -> HttpResponse:
    form = MachineForm(request.POST)
    if not form.is_valid():
        return _site_page(request, property_id, status=400, form=form)
    data = form.cleaned_data
    spec = services.MachineSpec(serial=data["serial"], kind=data["kind"], name=data["name"])
    try:
        machine, secret = services.register_machine(current_user(request), property_id, spec)
    except DomainError as exc:
        if isinstance(exc, NotFound):
            raise
        error = _form_or_page_error(form, exc)
        return _site_page(request, property_id, status=exc.status, error=error, form=form)
    return _secret_page(request, machine, secret, registered=True)


# --- a machine's page ----------------------------------------------------------------------


def _machine_parts(user: User, machine: Machine) -> dict[str, Any]:
    return {
        "machine": machine,
        "tz": zone_of(machine.property),
        "card": cards([machine])[0],
        "status": services.machine_status(machine),
        "cycles": list(services.cycles(user, machine_id=machine.pk)[:CYCLES_SHOWN]),
        "cycles_shown": CYCLES_SHOWN,
    }


@dataclass
class EventRow:
    event: Event
    reason: str


def _events(machine: Machine) -> list[EventRow]:
    reasons = dict(DenyReason.choices)
    events = (
        Event.objects.filter(property_id=machine.property_id, machine_id=machine.pk)
        .select_related("actor", "person")
        .order_by("-occurred_at", "-id")[:EVENTS_SHOWN]
    )
    return [EventRow(e, str(reasons.get(e.reason, e.reason))) for e in events]


def _machine_page(
    request: HttpRequest,
    machine_id: int,
    *,
    status: int = 200,
    error: str = "",
    change_form: ChangeMachineForm | None = None,
    remove_form: RemoveMachineForm | None = None,
) -> HttpResponse:
    user = current_user(request)
    machine = services.get_machine(user, machine_id)
    org, site = machine.organization_id, machine.property_id
    can_manage = policy.can(user, MANAGE, org, site)
    if (change_form or remove_form) and not can_manage:
        error, status = error or selectors.denial(MANAGE), 403
        change_form = remove_form = None
    can_view_events = policy.can(user, policy.Action.VIEW_EVENTS, org, site)
    context = {
        **_machine_parts(user, machine),
        "nav": "locks",
        "prop": machine.property,
        "error": error,
        "can_manage": can_manage,
        "can_view_events": can_view_events,
        "events": _events(machine) if can_view_events else [],
        "gateway": services.gateway_url(),
        "live_every": LIVE_EVERY_MS,
    }
    if can_manage:
        context.update(
            change_form=change_form
            or ChangeMachineForm(initial={"name": machine.name, "kind": machine.kind}),
            remove_form=remove_form or RemoveMachineForm(),
        )
    return render(request, "web/machines/machine.html", context, status=status)


def _back(machine_id: int, anchor: str = "") -> HttpResponse:
    return redirect(reverse("web:machine", kwargs={"machine_id": machine_id}) + anchor)


@require_GET
@page_view
def machine_detail(request: HttpRequest, machine_id: int) -> HttpResponse:
    return _machine_page(request, machine_id)


@require_GET
@page_view
def machine_live(request: HttpRequest, machine_id: int) -> HttpResponse:
    user = current_user(request)
    machine = services.get_machine(user, machine_id)
    return _live(request, "web/machines/_machine_live.html", _machine_parts(user, machine))


@require_POST
@page_view
def change_machine(request: HttpRequest, machine_id: int) -> HttpResponse:
    form = ChangeMachineForm(request.POST)
    if not form.is_valid():
        return _machine_page(request, machine_id, status=400, change_form=form)
    try:
        machine = services.change_machine(
            current_user(request),
            machine_id,
            name=form.cleaned_data["name"],
            kind=form.cleaned_data["kind"],
        )
    except DomainError as exc:
        if isinstance(exc, NotFound):
            raise
        error = _form_or_page_error(form, exc)
        return _machine_page(request, machine_id, status=exc.status, error=error, change_form=form)
    messages.success(request, _("Laundry machine %(machine)s saved.") % {"machine": machine.label})
    return _back(machine_id, "#settings")


@require_POST
@page_view
def rotate_machine_secret(request: HttpRequest, machine_id: int) -> HttpResponse:
    user = current_user(request)
    try:
        secret = services.rotate_secret(user, machine_id)
    except DomainError as exc:
        if isinstance(exc, NotFound):
            raise
        return _machine_page(request, machine_id, status=exc.status, error=exc.message)
    return _secret_page(request, services.get_machine(user, machine_id), secret, registered=False)


@require_POST
@page_view
def remove_machine(request: HttpRequest, machine_id: int) -> HttpResponse:
    form = RemoveMachineForm(request.POST)
    if not form.is_valid():
        return _machine_page(request, machine_id, status=400, remove_form=form)
    try:
        machine = services.remove_machine(current_user(request), machine_id)
    except DomainError as exc:
        if isinstance(exc, NotFound):
            raise
        return _machine_page(
            request, machine_id, status=exc.status, error=exc.message, remove_form=form
        )
    messages.success(
        request,
        _("Laundry machine %(machine)s is removed: it can no longer connect. Its cycles are kept.")
        % {"machine": machine.label},
    )
    return redirect("web:site_machines", property_id=machine.property_id)


# --- the resident portal -------------------------------------------------------------------


def portal_section(user: User) -> dict[str, Any]:
    """The portal's Laundry section: the machines of each site where the
    account lives today, with their state, and their latest cycles."""
    sites = services.machines_for_resident(user)
    return {
        "sites": [{"prop": site.prop, "cards": cards(site.machines)} for site in sites],
        "cycles": list(services.my_cycles(user)[:10]) if sites else [],
        "live_every": PORTAL_LIVE_EVERY_MS,
    }


@require_GET
@page_view
def portal_laundry_live(request: HttpRequest) -> HttpResponse:
    context = {"laundry": portal_section(current_user(request))}
    return _live(request, "web/machines/_portal_live.html", context)


def _portal_back() -> HttpResponse:
    return redirect(reverse("web:portal") + "#laundry")


@require_POST
@page_view
def portal_start(request: HttpRequest, machine_id: int) -> HttpResponse:
    """Start a free machine; a refusal says why in their words (busy, out of
    order, offline, a lost badge), on the portal."""
    form = StartForm(request.POST)
    program = form.cleaned_data["program"] if form.is_valid() else ""
    try:
        answer = services.start_machine(current_user(request), machine_id, program=program)
    except NotFound:
        raise  # not a machine where they live: it does not exist for them
    except DomainError as exc:
        return _portal_page(request, status=exc.status, error=exc.message)
    text = _("%(machine)s started. Your cycle is on the way.") % {"machine": answer.machine.label}
    if answer.program:
        text = _("%(machine)s started %(program)s. Your cycle is on the way.") % {
            "machine": answer.machine.label,
            "program": answer.program,
        }
    messages.success(request, text)
    return _portal_back()
