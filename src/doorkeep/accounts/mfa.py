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

The answer is kept in the session (``SESSION_KEY``): worked out when they
sign in and again when they add or remove a factor, and re-read when it said
"needed", so that pages cost no query. When an owner turns the requirement
on, the sessions of the people it concerns are ended
(collaborators.services.require_two_factor): they sign in again and meet it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.db.models import Exists, OuterRef, Q
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from doorkeep.accounts.models import Membership, Role, User

SESSION_KEY = "doorkeep.two_factor"
OK, NEEDED = "ok", "needed"
# Pages a person who must add a factor can still open: signing in and out,
# the factor pages themselves, and what is not a page.
EXEMPT = ("/accounts/", "/static/", "/i18n/", "/api/", "/healthz", "/readyz", "/metrics")
EXEMPT_EXACT = ("/sw.js", "/favicon.ico")
FACTORS = ("totp", "webauthn")  # recovery codes alone are not a factor


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


def remember(request: HttpRequest, user: Any = None) -> str:
    user = user if user is not None else getattr(request, "user", None)
    found = state(user) if isinstance(user, User) else OK
    request.session[SESSION_KEY] = found
    return found


class RequireTwoFactor:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = getattr(request, "user", None)
        if (
            user is not None
            and user.is_authenticated
            and not request.path.startswith(EXEMPT)
            and request.path not in EXEMPT_EXACT
            and request.session.get(SESSION_KEY) != OK
            and remember(request) == NEEDED
        ):
            messages.warning(
                request,
                _(
                    "Your account must sign in with a second factor: add an authenticator "
                    "app or a passkey to go on."
                ),
            )
            return HttpResponseRedirect(reverse("mfa_index"))
        return self.get_response(request)


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
