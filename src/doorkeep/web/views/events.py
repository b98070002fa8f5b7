"""The event logs of a lock and of a property, as pages and as CSV."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET

from doorkeep import policy
from doorkeep.accounts.models import User
from doorkeep.core.errors import DomainError
from doorkeep.events import selectors as event_selectors
from doorkeep.events.models import Event, EventKind
from doorkeep.events.reasons import reason_text
from doorkeep.keys.models import CredentialKind
from doorkeep.locks import services as lock_services
from doorkeep.locks.models import Lock
from doorkeep.properties import services as property_services
from doorkeep.properties.models import Property
from doorkeep.web import queries
from doorkeep.web.forms import EventFilterForm
from doorkeep.web.views.common import Action, _people_for_select, current_user, page_view

EVENTS_PER_PAGE = 50


@dataclass
class EventRow:
    event: Event
    kind: str
    outcome: str
    reason: str
    credential: str
    details: str


def _event_rows(events: list[Event]) -> list[EventRow]:
    kinds = dict(EventKind.choices)
    credentials = dict(CredentialKind.choices)
    outcomes = {True: "granted", False: "denied", None: ""}
    return [
        EventRow(
            e,
            str(kinds.get(e.kind, e.kind)),
            outcomes[e.granted] or ("failed" if e.kind == EventKind.UNLOCK_FAILED else ""),
            reason_text(e.reason),
            _credential(e, credentials),
            _details(e),
        )
        for e in events
    ]


def _details(event: Event) -> str:
    """The Details column in the reader's language where the platform can say
    it again; else the summary as written."""
    data = event.data if isinstance(event.data, dict) else {}
    if event.kind == EventKind.UNLOCK_FAILED and event.person is not None:
        return event.person.name  # the kind and the reason say what happened, in words
    if data.get("by") == "staff" and event.actor is not None and event.granted:
        return _("Opened from the lock page by %(name)s") % {"name": event.actor.get_full_name()}
    return event.summary


def _credential(event: Event, names: dict[str, Any]) -> str:
    """The credential's kind in words; a phone key used through the platform
    (remote unlock: the app, the web UI, the API) says so."""
    name = str(names.get(event.credential_kind, event.credential_kind))
    if name and isinstance(event.data, dict) and event.data.get("source") == "remote":
        return _("%(credential)s · opened remotely") % {"credential": name}
    return name


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
    # A collaborator of one site only: the organization's people are not theirs to list.
    whole_org = policy.can(current_user(request), Action.VIEW, organization_id)
    people = _people_for_select(organization_id) if whole_org else None
    form = EventFilterForm(request.GET, people=people, tz=tz)
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
        if person_id is not None and (whole_org or events.filter(person_id=person_id).exists()):
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


def _only_site(user: User, lock: Lock) -> int | None:
    """For a collaborator of the lock's site only: that site (its log shows
    the lock's events there, not those of its time at another site)."""
    if policy.can(user, Action.VIEW_EVENTS, lock.organization_id):
        return None
    return lock_services.site_of(lock)


@require_GET
@page_view
def lock_events(request: HttpRequest, lock_id: int) -> HttpResponse:
    user = current_user(request)
    lock = lock_services.get_lock(user, lock_id, Action.VIEW_EVENTS)
    assert lock.organization_id is not None
    return _events_page(
        request,
        events=queries.lock_event_log(lock, site=_only_site(user, lock)),
        organization_id=lock.organization_id,
        prop=lock.entry.property if lock.entry else None,
        lock=lock,
        csv_url=reverse("web:lock_events_csv", kwargs={"lock_id": lock.pk}),
    )


@require_GET
@page_view
def lock_events_csv(request: HttpRequest, lock_id: int) -> HttpResponseBase:
    user = current_user(request)
    lock = lock_services.get_lock(user, lock_id, Action.VIEW_EVENTS)
    return _events_csv(
        request,
        events=queries.lock_event_log(lock, site=_only_site(user, lock)),
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
