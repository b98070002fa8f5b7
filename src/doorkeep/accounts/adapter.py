"""allauth's account adapter: the client's address and the limit on wrong
passwords are Doorkeep's own, so that the web sign-in and the API share them
(docs/decisions/0021-limits-per-account-and-address.md)."""

from __future__ import annotations

from typing import Any

from allauth.account.adapter import DefaultAccountAdapter
from django.contrib.auth.base_user import AbstractBaseUser
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest

from doorkeep.accounts import signin_limits
from doorkeep.core.clientip import client_address
from doorkeep.core.errors import RateLimited


class AccountAdapter(DefaultAccountAdapter):
    _attempt: signin_limits.SignInAttempt | None = None

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
