"""The user's own settings: my doors (R25) and API tokens."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.cache import add_never_cache_headers
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from doorkeep.accounts import services as account_services
from doorkeep.core.errors import DomainError, NotFound
from doorkeep.gateway import remote
from doorkeep.web import queries
from doorkeep.web.forms import TokenForm
from doorkeep.web.views.common import _opened, _safe_next, current_user, page_view


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
    except DomainError as exc:  # offline, no answer, refused, denied
        # Shown after the redirect: a reload sends nothing again, and a lock
        # that is offline is no server error.
        messages.error(request, exc.message)
    else:
        _opened(request, result)
    return redirect(_safe_next(request, request.POST.get("next"), reverse("web:doors")))


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
