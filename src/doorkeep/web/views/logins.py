"""Portal logins (R40).

Public (no sign-in): the page that asks for the code on the notice, the page
that asks for a login with it (name, email, unit), "check your email", and
the emailed link that confirms the address (a button: a GET changes nothing,
since mail scanners follow links). A wrong code says only that it is not
known; too many tries from one address are refused with 429.

The site's owner and building managers: the printable notice with the code,
approving or refusing (with a reason) the requests waiting, and inviting
every resident without a login. These are on the site's residents page."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.cache import add_never_cache_headers
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from doorkeep import policy
from doorkeep.core.clientip import client_address
from doorkeep.core.errors import DomainError, NotFound, RateLimited
from doorkeep.properties.services import get_property
from doorkeep.residents import portal
from doorkeep.residents.models import LoginRequestStatus
from doorkeep.web.resident_forms import JoinCodeForm, JoinForm, RefuseForm
from doorkeep.web.views.common import current_user, page_view
from doorkeep.web.views.residents import _back, _site_page

# --- public: asking for a login with the site's code --------------------------------


def _client(request: HttpRequest) -> str:
    return client_address(request)


def _code_page(
    request: HttpRequest, *, form: JoinCodeForm | None = None, error: str = "", status: int = 200
) -> HttpResponse:
    return render(
        request,
        "web/portal/join.html",
        {"form": form or JoinCodeForm(), "error": error},
        status=status,
    )


def _join_page(
    request: HttpRequest, code: str, *, form: JoinForm | None = None, status: int = 200
) -> HttpResponse:
    """The site's name and the form, once the code is known; else the code
    page saying only that the code is not known (or that there were too many
    tries from here)."""
    try:
        prop = portal.site_for_join(code, client=_client(request))
    except DomainError as exc:
        again = JoinCodeForm(initial={"code": code})
        return _code_page(request, form=again, error=exc.message, status=exc.status)
    return render(
        request,
        "web/portal/join_site.html",
        {
            "prop": prop,
            "code": portal.shown_code(portal.normalize_code(code)),
            "form": form or JoinForm(),
        },
        status=status,
    )


@require_GET
def join(request: HttpRequest) -> HttpResponse:
    """The code typed from the notice; with ``?code=`` go to its page."""
    if "code" not in request.GET:
        return _code_page(request)
    form = JoinCodeForm(request.GET)
    if not form.is_valid():
        return _code_page(request, form=form, status=400)
    return redirect("web:join_site", code=form.cleaned_data["code"])


@require_http_methods(["GET", "POST"])
def join_site(request: HttpRequest, code: str) -> HttpResponse:
    if request.method != "POST":
        return _join_page(request, code)
    form = JoinForm(request.POST)
    if not form.is_valid():
        return _join_page(request, code, form=form, status=400)
    data = form.cleaned_data
    try:
        portal.ask_for_login(
            code, name=data["name"], email=data["email"], unit=data["unit"], client=_client(request)
        )
    except DomainError as exc:
        if exc.code == "unknown_site_code" or (
            isinstance(exc, RateLimited) and exc.details.get("field") != "email"
        ):
            # says so on the code page (not _join_page: it would count the code again)
            again = JoinCodeForm(initial={"code": code})
            return _code_page(request, form=again, error=exc.message, status=exc.status)
        form.add_service_error(exc)
        return _join_page(request, code, form=form, status=exc.status)
    return redirect("web:join_sent")


@require_GET
def join_sent(request: HttpRequest) -> HttpResponse:
    return render(request, "web/portal/join_sent.html", {"days": portal.LINK_DAYS})


@require_http_methods(["GET", "POST"])
def confirm(request: HttpRequest, token: str) -> HttpResponse:
    """GET shows a button and changes nothing; POST confirms the address."""
    context: dict[str, Any] = {}
    status = 200
    if request.method == "POST":
        try:
            item = portal.confirm_login_request(token)
        except DomainError as exc:
            context["error"], status = exc.message, exc.status
        else:
            context.update(item=item, statuses=LoginRequestStatus)
    response = render(request, "web/portal/confirm.html", context, status=status)
    add_never_cache_headers(response)
    return response


# --- the site's owner and building managers -------------------------------------------


@require_GET
@page_view
def notice(request: HttpRequest, property_id: int) -> HttpResponse:
    """The notice to print and put up in the building: the code and the link."""
    user = current_user(request)
    prop = get_property(user, property_id, policy.Action.MANAGE_RESIDENTS)
    code = portal.portal_code(user, prop.pk)
    return render(
        request,
        "web/residents/notice.html",
        {
            "nav": "locks",
            "prop": prop,
            "code": code,
            "join_url": portal.join_url(code),
            "join_page": settings.SITE_URL + reverse("web:join"),
        },
    )


def _decided(request: HttpRequest, property_id: int, text: str) -> HttpResponse:
    messages.success(request, text)
    return _back(property_id, "#portal-logins")


@require_POST
@page_view
def approve_login(request: HttpRequest, property_id: int, request_id: int) -> HttpResponse:
    try:
        item = portal.decide_login_request(current_user(request), request_id, approve=True)
    except NotFound:
        raise
    except DomainError as exc:  # refused to a member, or decided already
        return _site_page(request, property_id, status=exc.status, error=exc.message)
    return _decided(
        request,
        item.property_id,
        _("%(name)s (%(email)s) may now use the portal, as a resident of %(unit)s.")
        % {"name": item.name, "email": item.email, "unit": item.unit.label},
    )


@require_POST
@page_view
def refuse_login(request: HttpRequest, property_id: int, request_id: int) -> HttpResponse:
    form = RefuseForm(request.POST)
    if not form.is_valid():
        message = _("Say why the login is refused.")
        return _site_page(
            request, property_id, status=400, failed_login=(request_id, message, form)
        )
    try:
        item = portal.decide_login_request(
            current_user(request), request_id, approve=False, reason=form.cleaned_data["reason"]
        )
    except NotFound:
        raise
    except DomainError as exc:  # refused to a member, or decided already
        return _site_page(request, property_id, status=exc.status, error=exc.message)
    return _decided(
        request,
        item.property_id,
        _("The login of %(name)s (%(email)s) is refused; they are told why by email.")
        % {"name": item.name, "email": item.email},
    )


@require_POST
@page_view
def invite_residents(request: HttpRequest, property_id: int) -> HttpResponse:
    try:
        invited = portal.invite_residents(current_user(request), property_id)
    except NotFound:
        raise
    except DomainError as exc:
        return _site_page(request, property_id, status=exc.status, error=exc.message)
    if invited:
        messages.success(
            request,
            ngettext(
                "%(n)d resident without a login is invited to the portal by email.",
                "%(n)d residents without a login are invited to the portal by email.",
                invited,
            )
            % {"n": invited},
        )
    else:
        messages.info(
            request,
            _(
                "Nobody was invited: every resident living here today has a login already, "
                "or no email address."
            ),
        )
    return _back(property_id, "#portal-logins")
