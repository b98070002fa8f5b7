"""Charging stations in the web UI: a site's stations with their live state,
registering one (its password shown once, with the settings to enter in
the station), a station's page (live state, commands with the station's
answer, rename and move, a new password, removal, its sessions and
events), a site's sessions by month with CSV, and the resident portal's
start, stop and sessions (the section itself: views/portal.py and
web/charging_cards.py).

The live parts of a page (``data-live-part``) are rendered again by the
``…/live/`` views, which static/stations.js fetches every second: the
page follows a station coming online and a session's energy without being
reloaded. Stations and sessions are for the site's lock owners, building
managers and read-only collaborators; changes and commands for owners and
managers (a plain member is told why, an outsider finds nothing)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from django.contrib import messages
from django.core.paginator import Paginator
from django.db.models import Count, Sum
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.cache import add_never_cache_headers
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from doorkeep import policy
from doorkeep.accounts.models import User
from doorkeep.chargers import services
from doorkeep.chargers.models import ChargingSession, Station
from doorkeep.core.errors import DomainError, NotFound
from doorkeep.events.models import DenyReason, Event
from doorkeep.properties.models import Property, zone_of
from doorkeep.properties.services import get_property
from doorkeep.web import charging_cards
from doorkeep.web.station_forms import (
    ChangeStationForm,
    CommandForm,
    MonthForm,
    RemoveStationForm,
    StationForm,
)
from doorkeep.web.views.common import Action, _denial, _form_or_page_error, current_user, page_view
from doorkeep.web.views.portal import _portal_page

VIEW = Action.VIEW_STATIONS
MANAGE = Action.MANAGE_STATIONS
SESSIONS_SHOWN = 50  # on a station's page
EVENTS_SHOWN = 20
SITE_SESSIONS_PER_PAGE = 50
LIVE_EVERY_MS = 1000


def _csv(text: str, filename: str) -> HttpResponse:
    response = HttpResponse(text, content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


def _live(request: HttpRequest, template: str, context: dict[str, Any]) -> HttpResponse:
    """A page's live parts, for static/stations.js: never cached."""
    response = render(request, template, context)
    add_never_cache_headers(response)
    return response


# --- a site's stations ---------------------------------------------------------------------


def _site_parts(user: User, prop: Property) -> dict[str, Any]:
    return {
        "prop": prop,
        "tz": zone_of(prop),
        "cards": charging_cards.station_cards(services.stations_of_site(user, prop.pk)),
    }


def _site_page(
    request: HttpRequest,
    property_id: int,
    *,
    status: int = 200,
    error: str = "",
    form: StationForm | None = None,
) -> HttpResponse:
    user = current_user(request)
    prop = get_property(user, property_id, VIEW)
    can_manage = policy.can(user, MANAGE, prop.organization_id, prop.pk)
    if form is not None and not can_manage:  # not shown to them: say why
        error = error or _denial(user, MANAGE, prop.organization_id, prop.pk)
        status, form = 403, None
    if can_manage:
        form = form or StationForm()
        form.set_spaces(prop.parking_spaces.select_related("unit"))
    context = {
        **_site_parts(user, prop),
        "nav": "locks",
        "error": error,
        "can_manage": can_manage,
        "form": form,
        "live_every": LIVE_EVERY_MS,
    }
    return render(request, "web/stations/site.html", context, status=status)


@require_GET
@page_view
def site_stations(request: HttpRequest, property_id: int) -> HttpResponse:
    return _site_page(request, property_id)


@require_GET
@page_view
def site_stations_live(request: HttpRequest, property_id: int) -> HttpResponse:
    user = current_user(request)
    prop = get_property(user, property_id, VIEW)
    return _live(request, "web/stations/_site_live.html", _site_parts(user, prop))


def _password_page(
    request: HttpRequest, station: Station, password: str, *, registered: bool
) -> HttpResponse:
    """The station's password, shown this once, with what to enter in the
    station to connect it (and the simulator's command to try it)."""
    url = services.ocpp_url(station)
    gateway = url[: -len("/ocpp/" + station.charge_point_id)]
    response = render(
        request,
        "web/stations/password.html",
        {
            "nav": "locks",
            "station": station,
            "prop": station.property,
            "password": password,
            "registered": registered,
            "ocpp_url": url,
            "gateway": gateway,
            "tls": url.startswith("wss://"),
        },
    )
    add_never_cache_headers(response)  # the page shows a secret
    return response


@require_POST
@page_view
def register_station(request: HttpRequest, property_id: int) -> HttpResponse:
    form = StationForm(request.POST)
    if not form.is_valid():
        return _site_page(request, property_id, status=400, form=form)
    data = form.cleaned_data
    spec = services.StationSpec(
        charge_point_id=data["charge_point_id"],
        name=data["name"],
        parking_space_id=data["parking_space"],
    )
    try:
        station, password = services.register_station(current_user(request), property_id, spec)
    except DomainError as exc:
        error = _form_or_page_error(form, exc)
        return _site_page(request, property_id, status=exc.status, error=error, form=form)
    return _password_page(request, station, password, registered=True)


# --- a station's page ----------------------------------------------------------------------


def _station_parts(user: User, station: Station) -> dict[str, Any]:
    """What the live parts of a station's page show: its state and its
    latest sessions."""
    return {
        "station": station,
        "tz": zone_of(station.property),
        "card": charging_cards.StationCard(station, services.station_status(station)),
        "sessions": list(services.sessions(user, station_id=station.pk)[:SESSIONS_SHOWN]),
        "sessions_shown": SESSIONS_SHOWN,
        "can_manage": policy.can(user, MANAGE, station.organization_id, station.property_id),
    }


def _station_page(
    request: HttpRequest,
    station_id: int,
    *,
    status: int = 200,
    error: str = "",
    change_form: ChangeStationForm | None = None,
    remove_form: RemoveStationForm | None = None,
    command: Mapping[str, Any] | None = None,
) -> HttpResponse:
    user = current_user(request)
    station = services.get_station(user, station_id)
    org, site = station.organization_id, station.property_id
    context = _station_parts(user, station)
    can_manage = context["can_manage"]
    if (change_form or remove_form) and not can_manage:  # not shown to them: say why
        error, status = error or _denial(user, MANAGE, org, site), 403
    can_view_events = policy.can(user, Action.VIEW_EVENTS, org, site)
    context.update(
        nav="locks",
        prop=station.property,
        error=error,
        ocpp_url=services.ocpp_url(station),
        can_view_events=can_view_events,
        events=_events(station) if can_view_events else [],
        command=command or {},
        live_every=LIVE_EVERY_MS,
    )
    if can_manage:
        spaces = station.property.parking_spaces.select_related("unit")
        change_form = change_form or ChangeStationForm(
            initial={"name": station.name, "parking_space": station.parking_space_id}
        )
        change_form.set_spaces(spaces)
        context.update(change_form=change_form, remove_form=remove_form or RemoveStationForm())
    return render(request, "web/stations/station.html", context, status=status)


@dataclass
class EventRow:
    event: Event
    reason: str  # why, in words ("" when the event has no reason)


def _events(station: Station) -> list[EventRow]:
    """The station's latest events (station.* and charging.*), newest first."""
    reasons = dict(DenyReason.choices)
    events = (
        # Through the site's index on events, then this station's.
        Event.objects.filter(property_id=station.property_id, station_id=station.pk)
        .select_related("actor", "person")
        .order_by("-occurred_at", "-id")[:EVENTS_SHOWN]
    )
    return [EventRow(e, str(reasons.get(e.reason, e.reason))) for e in events]


def _back(station_id: int, anchor: str = "") -> HttpResponse:
    return redirect(reverse("web:station", kwargs={"station_id": station_id}) + anchor)


@require_GET
@page_view
def station_detail(request: HttpRequest, station_id: int) -> HttpResponse:
    return _station_page(request, station_id)


@require_GET
@page_view
def station_live(request: HttpRequest, station_id: int) -> HttpResponse:
    user = current_user(request)
    station = services.get_station(user, station_id)
    return _live(request, "web/stations/_station_live.html", _station_parts(user, station))


@require_GET
@page_view
def station_sessions_csv(request: HttpRequest, station_id: int) -> HttpResponse:
    rows = services.sessions(current_user(request), station_id=station_id)
    return _csv(services.sessions_csv(rows), f"doorkeep-station-{station_id}-sessions.csv")


def _command_label(action: str, args: dict[str, Any]) -> str:
    connector = args.get("connector")
    if action == "reset":
        return _("Hard restart") if args.get("hard") else _("Restart")
    if action == "unlock_connector":
        return _("Unlock connector %(n)s") % {"n": connector or 1}
    if action == "change_availability":
        if not connector:
            if args.get("available"):
                return _("Make the whole station available")
            return _("Make the whole station unavailable")
        if args.get("available"):
            return _("Make connector %(n)s available") % {"n": connector}
        return _("Make connector %(n)s unavailable") % {"n": connector}
    if action == "remote_start":
        return _("Start charging")
    if action == "remote_stop":
        return _("Stop charging")
    return action


def _answer(status: str) -> str:
    """The station's answer in words (OCPP 1.6 and 2.0.1 say it alike)."""
    words = {
        "Accepted": _("the station accepted"),
        "Scheduled": _("the station accepted: it does it as soon as it is free"),
        "Unlocked": _("the connector is unlocked"),
        "Rejected": _("the station refused"),
        "UnlockFailed": _("the station could not unlock the connector"),
        "OngoingAuthorizedTransaction": _(
            "the station did not unlock it: a charging session is running on it"
        ),
        "UnknownConnector": _("the station has no such connector"),
        "NotSupported": _("the station does not support this command"),
    }
    return words.get(status, _("the station answered %(status)s") % {"status": status or "?"})


def _field_name(form: CommandForm, name: str) -> str:
    field = form.fields.get(name)
    return str(field.label) if field is not None and field.label else name


@require_POST
@page_view
def station_command(request: HttpRequest, station_id: int) -> HttpResponse:
    """A command from the station page; the station's answer (or why there
    is none: offline, no answer in time, refused) is shown as a message."""
    form = CommandForm(request.POST)
    if not form.is_valid():
        problems = "; ".join(
            f"{_field_name(form, name)}: {' '.join(str(e) for e in errors)}"
            for name, errors in form.errors.items()
        )
        error = _("The command was not sent: %(problems)s") % {"problems": problems}
        return _station_page(request, station_id, status=400, error=error, command=form.data)
    action, args = form.command()
    user = current_user(request)
    try:
        answer = services.send_command(user, station_id, action, **args)
    except NotFound as exc:
        if exc.code == "station_not_found":
            raise
        return _station_page(
            request, station_id, status=exc.status, error=exc.message, command=form.data
        )
    except DomainError as exc:
        error = _("%(command)s: %(reason)s") % {
            "command": _command_label(action, args),
            "reason": exc.message,
        }
        return _station_page(request, station_id, status=exc.status, error=error, command=form.data)
    text = _("%(command)s: %(answer)s (%(status)s).") % {
        "command": _command_label(action, answer.args),
        "answer": _answer(answer.status),
        "status": answer.status or "?",
    }
    (messages.success if answer.accepted else messages.warning)(request, text)
    return _back(station_id, "#commands" if action != "remote_stop" else "#status")


@require_POST
@page_view
def change_station(request: HttpRequest, station_id: int) -> HttpResponse:
    form = ChangeStationForm(request.POST)
    if not form.is_valid():
        return _station_page(request, station_id, status=400, change_form=form)
    space = form.cleaned_data["parking_space"]
    try:
        station = services.change_station(
            current_user(request),
            station_id,
            name=form.cleaned_data["name"],
            parking_space=None if space else "",
            parking_space_id=space,
        )
    except DomainError as exc:
        if isinstance(exc, NotFound) and exc.code == "station_not_found":
            raise
        error = _form_or_page_error(form, exc)
        return _station_page(request, station_id, status=exc.status, error=error, change_form=form)
    messages.success(
        request,
        _("Charging station %(station)s: %(where)s.")
        % {"station": station.label, "where": charging_cards.where(station)},
    )
    return _back(station_id, "#settings")


@require_POST
@page_view
def rotate_station_password(request: HttpRequest, station_id: int) -> HttpResponse:
    user = current_user(request)
    try:
        password = services.rotate_password(user, station_id)
    except DomainError as exc:
        if isinstance(exc, NotFound):
            raise
        return _station_page(request, station_id, status=exc.status, error=exc.message)
    station = services.get_station(user, station_id)
    return _password_page(request, station, password, registered=False)


@require_POST
@page_view
def remove_station(request: HttpRequest, station_id: int) -> HttpResponse:
    form = RemoveStationForm(request.POST)
    if not form.is_valid():
        return _station_page(request, station_id, status=400, remove_form=form)
    try:
        station = services.remove_station(current_user(request), station_id)
    except DomainError as exc:
        if isinstance(exc, NotFound):
            raise
        return _station_page(
            request, station_id, status=exc.status, error=exc.message, remove_form=form
        )
    messages.success(
        request,
        _(
            "Charging station %(station)s is removed: it can no longer connect. "
            "Its sessions are kept."
        )
        % {"station": station.label},
    )
    return redirect("web:site_stations", property_id=station.property_id)


# --- a site's sessions ---------------------------------------------------------------------


def _month(request: HttpRequest, prop: Property) -> tuple[MonthForm, Any, Any]:
    form = MonthForm(request.GET if "month" in request.GET else None)
    since, until = form.period(zone_of(prop))
    return form, since, until


@require_GET
@page_view
def site_sessions(request: HttpRequest, property_id: int) -> HttpResponse:
    user = current_user(request)
    prop = get_property(user, property_id, VIEW)
    form, since, until = _month(request, prop)
    rows = services.sessions(user, property_id=prop.pk, since=since, until=until)
    page = Paginator(rows, SITE_SESSIONS_PER_PAGE).get_page(request.GET.get("page"))
    totals = rows.order_by().aggregate(count=Count("id"), energy_wh=Sum("energy_wh"))
    month = form.cleaned_data.get("month") if form.is_bound and form.is_valid() else None
    return render(
        request,
        "web/stations/sessions.html",
        {
            "nav": "locks",
            "prop": prop,
            "tz": zone_of(prop),
            "form": form,
            "month": month,
            "page": page,
            "sessions": list(page),
            "totals": totals,
        },
        status=400 if form.is_bound and not form.is_valid() else 200,
    )


@require_GET
@page_view
def site_sessions_csv(request: HttpRequest, property_id: int) -> HttpResponse:
    user = current_user(request)
    prop = get_property(user, property_id, VIEW)
    form, since, until = _month(request, prop)
    if form.is_bound and not form.is_valid():
        problems = " ".join(str(e) for errors in form.errors.values() for e in errors)
        return HttpResponse(problems, status=400, content_type="text/plain; charset=utf-8")
    rows = services.sessions(user, property_id=prop.pk, since=since, until=until)
    month = f"-{since:%Y-%m}" if since is not None else ""
    return _csv(
        services.sessions_csv(rows), f"doorkeep-property-{prop.pk}-charging-sessions{month}.csv"
    )


# --- the resident portal -------------------------------------------------------------------


def _portal_back() -> HttpResponse:
    return redirect(reverse("web:portal") + "#charging")


@require_GET
@page_view
def portal_charging_live(request: HttpRequest) -> HttpResponse:
    charging = charging_cards.for_resident(current_user(request))
    return _live(request, "web/stations/_portal_live.html", {"charging": charging})


@require_POST
@page_view
def portal_start(request: HttpRequest, station_id: int, connector: int) -> HttpResponse:
    """Start charging with their badge; a refusal says why in their words
    (lost badge, no badge, another unit's station, the station offline)."""
    try:
        answer = services.start_charging(current_user(request), station_id, connector)
    except NotFound:
        raise  # not a station where they live: it does not exist for them
    except DomainError as exc:
        return _portal_page(request, status=exc.status, error=exc.message)
    station = Station.objects.get(pk=station_id)
    if answer.accepted:
        messages.success(
            request,
            _(
                "%(station)s accepted: charging starts on connector %(n)d. Plug in your car if "
                "it is not plugged in yet."
            )
            % {"station": station.label, "n": connector},
        )
    else:
        messages.warning(
            request,
            _(
                "%(station)s did not start charging (it answered %(status)s). Check that the "
                "cable is plugged in, then try again."
            )
            % {"station": station.label, "status": answer.status or "?"},
        )
    return _portal_back()


@require_POST
@page_view
def portal_stop(request: HttpRequest, session_id: int) -> HttpResponse:
    try:
        answer = services.stop_charging(current_user(request), session_id)
    except NotFound:
        raise  # not their session
    except DomainError as exc:
        return _portal_page(request, status=exc.status, error=exc.message)
    session = ChargingSession.objects.select_related("station").get(pk=session_id)
    if answer.accepted:
        messages.success(
            request,
            _("%(station)s accepted: charging stops.") % {"station": session.station.label},
        )
    else:
        messages.warning(
            request,
            _("%(station)s did not stop charging (it answered %(status)s). Try again.")
            % {"station": session.station.label, "status": answer.status or "?"},
        )
    return _portal_back()


@require_GET
@page_view
def portal_sessions_csv(request: HttpRequest) -> HttpResponse:
    rows = services.my_sessions(current_user(request))
    return _csv(services.sessions_csv(rows), "doorkeep-my-charging-sessions.csv")
