"""django-allauth's adapter (settings.ACCOUNT_ADAPTER):

- the account emails (address confirmation, password reset) greet from
  Doorkeep and end with the site's public address (SITE_URL), not the host a
  request happened to use ("Hello from 127.0.0.1:8600");
- the client's address and the limit on wrong passwords are Doorkeep's own,
  so that the web sign-in and the API share them
  (docs/decisions/0021-limits-per-account-and-address.md)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from allauth.account.adapter import DefaultAccountAdapter
from django.conf import settings
from django.contrib.auth.base_user import AbstractBaseUser
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest

from doorkeep.accounts import signin_limits
from doorkeep.core.clientip import client_address
from doorkeep.core.errors import RateLimited

PRODUCT = "Doorkeep"


@dataclass(frozen=True)
class PublicSite:
    """What allauth's email templates read as ``current_site``."""

    name: str
    domain: str


def public_site() -> PublicSite:
    return PublicSite(name=PRODUCT, domain=settings.SITE_URL)


class AccountAdapter(DefaultAccountAdapter):
    _attempt: signin_limits.SignInAttempt | None = None

    def send_mail(self, template_prefix: str, email: str, context: dict[str, Any]) -> None:
        super().send_mail(template_prefix, email, {**context, "current_site": public_site()})

    def get_client_ip(self, request: HttpRequest) -> str:
        """The address allauth's own limits (sign-up, password reset) count by."""
        address = client_address(request)
        if not address:
            raise PermissionDenied("Unable to determine client IP address")
        return address

    def pre_authenticate(self, request: HttpRequest, **credentials: Any) -> None:
        email = str(credentials.get("email") or credentials.get("username") or "")
        try:
            self._attempt = signin_limits.begin(email, client_address(request))
        except RateLimited:
            raise self.validation_error("too_many_login_attempts") from None

    def authenticate(self, request: HttpRequest, **credentials: Any) -> AbstractBaseUser | None:
        self._attempt = None
        user = super().authenticate(request, **credentials)
        if user is not None and self._attempt is not None:
            self._attempt.succeeded()
        return user

    def _delete_login_attempts_cached_email(self, request: HttpRequest, **credentials: Any) -> None:
        """allauth calls this after a password reset by email."""
        super()._delete_login_attempts_cached_email(request, **credentials)
        signin_limits.forget_account(str(credentials.get("email") or ""))
