"""Two-factor authentication: who must use it, and keeping them to it.

allauth.mfa provides the factors (an authenticator app's codes, passkeys,
recovery codes) and their pages under /accounts/2fa/. Doorkeep decides who
must have one:

- platform operators, and staff (the admin site), unless
  DOORKEEP_TWO_FACTOR_FOR_OPERATORS is off (the demo turns it off);
- the building managers, members and read-only collaborators of an
  organization whose owner turned on ``require_two_factor``.

Such a person without a factor is sent to /accounts/2fa/ from every page
until they add one; the API refuses them a token by password (they create
tokens in the web UI, signed in with both factors).

The answer is kept in the session (``SESSION_KEY``) with the moment it was
worked out: when they sign in, again when they add or remove a factor, and
again once it is RECHECK seconds old, so that pages cost no query and a role
or staff flag given meanwhile counts within minutes. API calls through the
session are held to it too (403 ``two_factor_required``); calls with a bearer
token were held to it when the token was made. When an owner turns the
requirement on, the sessions and API tokens of the people it concerns are
ended at once (collaborators.services.require_two_factor)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.db.models import Exists, OuterRef, Q
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from doorkeep.accounts.models import Membership, Role, User

SESSION_KEY = "doorkeep.two_factor"
OK, NEEDED = "ok", "needed"
# Pages a person who must add a factor can still open: signing in and out,
# the factor pages themselves, and what is not a page.
EXEMPT = ("/accounts/", "/static/", "/i18n/", "/healthz", "/readyz", "/metrics")
EXEMPT_EXACT = ("/sw.js", "/favicon.ico")
FACTORS = ("totp", "webauthn")  # recovery codes alone are not a factor
RECHECK = 300  # seconds an OK in the session is trusted before it is worked out again


def _operators_held() -> bool:
    return bool(settings.DOORKEEP_TWO_FACTOR_FOR_OPERATORS)


def _required_memberships(user_id: Any) -> Any:
    now = timezone.now()
    live = Q(ends_at__isnull=True) | Q(ends_at__gt=now)
    asked = Q(organization__require_two_factor=True) & ~Q(role=Role.LOCK_OWNER)
    if _operators_held():
        asked |= Q(role=Role.PLATFORM_OPERATOR, organization__is_platform=True)
    return Membership.objects.filter(user_id=user_id).filter(live & asked)


def state(user: User) -> str:
    """OK when ``user`` may go on as they are, NEEDED when they must add a
    second factor first. One query."""
    from allauth.mfa.models import Authenticator

    row = (
        User.objects.filter(pk=user.pk)
        .annotate(
            required=Exists(_required_memberships(OuterRef("pk"))),
            has=Exists(Authenticator.objects.filter(user=OuterRef("pk"), type__in=FACTORS)),
        )
        .values_list("is_staff", "is_superuser", "required", "has")
        .first()
    )
    if row is None:
        return OK
    staff, superuser, required, has = row
    staff = (staff or superuser) and _operators_held()
    return NEEDED if (staff or required) and not has else OK


def required(user: User) -> bool:
    """Whether ``user`` must sign in with a second factor (has one or not)."""
    staff = (user.is_staff or user.is_superuser) and _operators_held()
    return bool(staff or _required_memberships(user.pk).exists())


def has_factor(user: User) -> bool:
    from allauth.mfa.models import Authenticator

    return Authenticator.objects.filter(user=user, type__in=FACTORS).exists()


def password_alone_suffices(user: User) -> bool:
    """Whether a password alone may stand for ``user`` (an API token by
    password): not when they must use a second factor, nor when they chose
    one."""
    return not required(user) and not has_factor(user)


def remember(request: HttpRequest, user: Any = None) -> str:
    user = user if user is not None else getattr(request, "user", None)
    found = state(user) if isinstance(user, User) else OK
    request.session[SESSION_KEY] = [found, int(time.time())]
    return found


def _known_ok(request: HttpRequest) -> bool:
    """The session's answer is OK and was worked out less than RECHECK
    seconds ago (a role, staff flag or membership given meanwhile counts
    from then on)."""
    kept = request.session.get(SESSION_KEY)
    return (
        isinstance(kept, list)
        and len(kept) == 2
        and kept[0] == OK
        and isinstance(kept[1], int)
        and 0 <= time.time() - kept[1] < RECHECK
    )


def _exempt(path: str) -> bool:
    return path.startswith(EXEMPT) or path in EXEMPT_EXACT


class RequireTwoFactor:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        path = request.path
        api = path.startswith("/api/")
        # A bearer token is no session: the API's token paths are checked
        # when the token is made (create_token_with_password). Exempt paths
        # first: they must not touch the session (Vary: Cookie).
        if (api and request.META.get("HTTP_AUTHORIZATION")) or (not api and _exempt(path)):
            return self.get_response(request)
        user = getattr(request, "user", None)
        if (
            user is None
            or not user.is_authenticated
            or _known_ok(request)
            or remember(request) != NEEDED
        ):
            return self.get_response(request)
        message = _(
            "Your account must sign in with a second factor: add an authenticator "
            "app or a passkey to go on."
        )
        if api:  # the API through the session (the API docs page, scripts in a browser)
            return JsonResponse(
                {"code": "two_factor_required", "message": message, "details": {}}, status=403
            )
        messages.warning(request, message)
        return HttpResponseRedirect(reverse("mfa_index"))


def _logged_in(request: HttpRequest | None = None, user: Any = None, **kwargs: Any) -> None:
    if request is not None and hasattr(request, "session"):
        remember(request, user)


def _factors_changed(request: HttpRequest | None = None, **kwargs: Any) -> None:
    if request is not None and hasattr(request, "session"):
        request.session.pop(SESSION_KEY, None)


def connect() -> None:
    """Keep the session's answer current (called once, from the app's ready)."""
    from allauth.mfa.signals import authenticator_added, authenticator_removed
    from django.contrib.auth.signals import user_logged_in

    user_logged_in.connect(_logged_in, dispatch_uid="doorkeep.two_factor.logged_in")
    for signal in (authenticator_added, authenticator_removed):
        signal.connect(_factors_changed, dispatch_uid=f"doorkeep.two_factor.{id(signal)}")
