"""What the web views share: the page_view decorator, the current user, errors
shown on a page, and helpers used by more than one page."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from functools import wraps
from typing import Any, Concatenate, ParamSpec

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.http.response import HttpResponseBase
from django.shortcuts import render
from django.urls import reverse
from django.utils.cache import add_never_cache_headers
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _

from doorkeep import policy
from doorkeep.accounts.models import User
from doorkeep.core import when
from doorkeep.core.errors import DomainError, NotFound, PermissionDenied
from doorkeep.gateway import remote
from doorkeep.keys import schedule as schedules
from doorkeep.keys import selectors as key_selectors
from doorkeep.keys import services as key_services
from doorkeep.keys.models import CredentialKind, Key, KeyStatus, Person
from doorkeep.locks.models import Lock
from doorkeep.properties.models import Entry
from doorkeep.web.forms import PEOPLE_IN_SELECT, ServiceErrorsMixin

Action = policy.Action
P = ParamSpec("P")
View = Callable[Concatenate[HttpRequest, P], HttpResponseBase]

KEYS_PER_PAGE = 100
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
        "needs_building_management",
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
    return when.show(moment, tz, fmt)


def _denial(
    user: User, action: policy.Action, organization_id: int | None, property_id: int | None = None
) -> str:
    """The policy's reason why the user may not do ``action`` (at the site
    ``property_id``), or ""."""
    try:
        policy.require(user, action, organization_id, what=_("Object"), property_id=property_id)
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


# --- key rows (the lock page and a shared key's page) ------------------------------


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


# --- messages and pages shared by several views ------------------------------------


def at_the_top(viewname: str, **kwargs: Any) -> HttpResponseRedirect:
    """The redirect after a form further down a page succeeded: the page opens
    at its top, where the confirmation is (the messages). A redirect without a
    fragment of its own keeps the form's (``action="…#issue"``, there so that
    the form's errors are in view), which would scroll the confirmation away;
    ``#top`` scrolls to the start of the page (HTML's rule for that name)."""
    return HttpResponseRedirect(reverse(viewname, kwargs=kwargs) + "#top")


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


def _taken_back_message(key: Key) -> str:
    if key.holder_organization_id is not None:
        return _("The key of %(name)s is taken back, with every key issued under it.") % {
            "name": key.holder_name
        }
    return _("The key of %(name)s is taken back.") % {"name": key.holder_name}


def _device_secret_page(
    request: HttpRequest, lock: Lock, secret: str, *, registered: bool
) -> HttpResponse:
    """The device secret, shown this once (after registering the lock, or after
    issuing a new one), with the command that connects the simulated lock."""
    response = render(
        request,
        "web/device_secret.html",
        {
            "nav": "locks",
            "lock": lock,
            "secret": secret,
            "registered": registered,
            # The simulator's default is this machine's gateway on GATEWAY_PORT, 8001.
            "gateway_url": ""
            if settings.GATEWAY_PORT == 8001
            else f"ws://127.0.0.1:{settings.GATEWAY_PORT}",
        },
    )
    add_never_cache_headers(response)  # the page shows a secret
    return response


def _opened(request: HttpRequest, result: remote.Unlocked) -> None:
    name = Entry.objects.filter(pk=result.entry_id).values_list("name", flat=True).first()
    messages.success(request, _("Opened %(entry)s.") % {"entry": name or "—"})
