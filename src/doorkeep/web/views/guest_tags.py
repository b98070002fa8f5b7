"""The URL of an NTAG 424 DNA panel's tap (guests/tags.py), as a phone's
browser opens it: any phone, its own NFC reader, no app.

GET /guest/tag/<panel>/?picc_data=…&cmac=… takes the tap (signed in or not)
and keeps its short-lived token in this browser's session only, then sends
the guest to the confirmation page (through the sign-in page if needed);
POST there verifies presence and opens the entry."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods

from doorkeep.core.errors import DomainError, NotFound
from doorkeep.guests import tags
from doorkeep.web.views.common import current_user, error_page, page_view
from doorkeep.web.views.guests import _location, open_after_verify

SESSION_KEY = "doorkeep_tag_tap"


@require_GET
def tag_tap(request: HttpRequest, panel_id: int) -> HttpResponse:
    try:
        token = tags.accept_tap(
            panel_id, request.GET.get("picc_data", ""), request.GET.get("cmac", "")
        )
    except DomainError as exc:
        return error_page(request, exc)
    request.session[SESSION_KEY] = token
    return redirect("web:guest_tag_confirm")


@require_http_methods(["GET", "POST"])
@page_view
def tag_confirm(request: HttpRequest) -> HttpResponse:
    user = current_user(request)
    token = request.session.get(SESSION_KEY, "")
    if not token:
        raise NotFound(_("No tap to verify. Hold your phone to the panel at the entry."))
    entry = tags.tapped_entry(token)
    _location(user, entry.property_id)  # a guest at this property, or 404
    context = {"nav": "guest", "entry": entry}
    if request.method != "POST":
        return render(request, "web/guests/tag_tap.html", context)
    del request.session[SESSION_KEY]
    try:
        entry = tags.verify_tap(user, token)
    except NotFound:
        raise
    except DomainError as exc:
        context["error"] = exc.message
        return render(request, "web/guests/tag_tap.html", context, status=exc.status)
    return open_after_verify(request, user, entry)
