"""The short way in for the API's hottest call: POST /api/v1/entries/{id}/unlock.

A person waits at a door for this answer, and integrations open doors in
bursts. Through Django's full request stack (eleven middleware, URL
resolution, Ninja's parsing and rendering) the call cost a web worker several
times the work of the unlock itself (bench/gateway_unlock.py). This WSGI layer
sits in front of Django and answers exactly that call when it carries a
bearer token Doorkeep knows, with the same functions the API endpoint uses:
``accounts.services.user_for_token`` for the token and
``gateway.remote.remote_unlock`` for the decision, the event log and the
lock's answer. The answers are the endpoint's, byte for byte: the same JSON
bodies and status codes, the same security headers, messages in the language
the request asks for (tests/api/test_api_fast_unlock.py compares the two).

Everything else goes to Django unchanged: other paths and methods, a call
without a bearer token (the web UI's session), a token that is unknown or
revoked (Django answers 401, or uses the session cookie as the endpoint
does). Switch it off with DOORKEEP_FAST_UNLOCK=false: then Django answers
every call.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Iterable
from http import HTTPStatus
from typing import Any

from django.conf import settings
from django.core import signals
from django.core.exceptions import DisallowedHost
from django.core.handlers.wsgi import WSGIRequest
from django.utils import translation
from ninja.responses import NinjaJSONEncoder

from doorkeep.accounts.services import user_for_token
from doorkeep.core.errors import DomainError
from doorkeep.core.security import policy

request_log = logging.getLogger("django.request")

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]

UNLOCK_PATH = re.compile(r"/api/v1/entries/([0-9]{1,18})/unlock")
MAX_ID = 2**63 - 1  # larger ids are a 422 (api/contract.py); Django answers those


def _security_headers() -> list[tuple[str, str]]:
    """What Django's SecurityMiddleware and XFrameOptionsMiddleware add to an
    API answer, from the same settings."""
    headers = []
    if settings.SECURE_CONTENT_TYPE_NOSNIFF:
        headers.append(("X-Content-Type-Options", "nosniff"))
    if settings.SECURE_REFERRER_POLICY:
        headers.append(("Referrer-Policy", str(settings.SECURE_REFERRER_POLICY)))
    if settings.SECURE_CROSS_ORIGIN_OPENER_POLICY:
        headers.append(("Cross-Origin-Opener-Policy", settings.SECURE_CROSS_ORIGIN_OPENER_POLICY))
    headers.append(("X-Frame-Options", str(getattr(settings, "X_FRAME_OPTIONS", "DENY")).upper()))
    headers.append(("Content-Security-Policy", policy()))  # core/security.py
    return headers


def _hsts() -> str:
    """SecurityMiddleware's Strict-Transport-Security value ("" when off)."""
    if not settings.SECURE_HSTS_SECONDS:
        return ""
    value = f"max-age={settings.SECURE_HSTS_SECONDS}"
    if settings.SECURE_HSTS_INCLUDE_SUBDOMAINS:
        value += "; includeSubDomains"
    if settings.SECURE_HSTS_PRELOAD:
        value += "; preload"
    return value


def _secure(environ: dict[str, Any]) -> bool:
    """Whether Django would call the request secure (request.is_secure())."""
    proxy = settings.SECURE_PROXY_SSL_HEADER
    if proxy:
        header, value = proxy
        given = str(environ.get(header, ""))
        if given:
            return given.split(",")[0].strip() == value
    return bool(environ.get("wsgi.url_scheme") == "https")


class FastUnlock:
    """WSGI middleware: ``FastUnlock(django_application)``."""

    def __init__(self, app: WSGIApp) -> None:
        self.app = app
        self.enabled = bool(getattr(settings, "DOORKEEP_FAST_UNLOCK", True))
        self.headers = _security_headers()
        # As SecurityMiddleware does: a plain-HTTP call is Django's to
        # redirect; a secure one gets HSTS.
        self.redirect = bool(settings.SECURE_SSL_REDIRECT)
        self.hsts = _hsts()

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        if self.enabled and environ.get("REQUEST_METHOD") == "POST":
            match = UNLOCK_PATH.fullmatch(environ.get("PATH_INFO", ""))
            auth = environ.get("HTTP_AUTHORIZATION", "")
            # The token as Ninja's HttpBearer reads it (everything after
            # "Bearer "); a Host that ALLOWED_HOSTS refuses is Django's 400.
            if (
                match
                and auth[:7].lower() == "bearer "
                and int(match[1]) <= MAX_ID
                and self._allowed_host(environ)
                and (not self.redirect or _secure(environ))
            ):
                language = self._language(environ)
                answer = self._unlock(environ, int(match[1]), auth[7:], language)
                if answer is not None:
                    status, body, extra = answer
                    if self.hsts and _secure(environ):
                        extra = [*extra, ("Strict-Transport-Security", self.hsts)]
                    return self._respond(
                        start_response, environ["PATH_INFO"], language, status, body, extra
                    )
        return self.app(environ, start_response)

    def _unlock(
        self, environ: dict[str, Any], entry_id: int, token: str, language: str
    ) -> tuple[int, dict[str, Any], list[tuple[str, str]]] | None:
        """The endpoint's answer, or None for Django to answer (nothing was
        written then)."""
        from doorkeep.gateway import remote

        signals.request_started.send(sender=self.__class__, environ=environ)
        try:
            user = user_for_token(token)
            if user is None:
                return None  # Django: the session cookie, else 401
            with translation.override(language):
                try:
                    result = remote.remote_unlock(user, entry_id)
                except DomainError as exc:
                    extra = []
                    if "retry_after" in exc.details:
                        extra.append(("Retry-After", str(exc.details["retry_after"])))
                    body = {"code": exc.code, "message": exc.message, "details": exc.details}
                    return exc.status, body, extra
            return (
                200,
                {
                    "opened": True,
                    "entry_id": result.entry_id,
                    "lock_id": result.lock_id,
                    "lock_ids": list(result.lock_ids),
                    "request_id": result.request_id,
                },
                [],
            )
        except Exception:
            # As Django's handler does: logged on django.request, and signalled
            # to whatever reports errors; the answer is the API's JSON.
            signals.got_request_exception.send(sender=self.__class__, request=None)
            request_log.error(
                "Internal Server Error: %s", environ.get("PATH_INFO", ""), exc_info=True
            )
            body = {
                "code": "server_error",
                "message": "Something went wrong on our side. The attempt is logged; try again.",
                "details": {},
            }
            return 500, body, []
        finally:
            signals.request_finished.send(sender=self.__class__)

    @staticmethod
    def _allowed_host(environ: dict[str, Any]) -> bool:
        try:
            WSGIRequest(environ).get_host()
        except DisallowedHost:
            return False
        return True

    @staticmethod
    def _language(environ: dict[str, Any]) -> str:
        """The language Django's LocaleMiddleware would choose (cookie, then
        Accept-Language, then LANGUAGE_CODE)."""
        if not environ.get("HTTP_ACCEPT_LANGUAGE") and not environ.get("HTTP_COOKIE"):
            return str(settings.LANGUAGE_CODE)
        return translation.get_language_from_request(WSGIRequest(environ))

    def _respond(
        self,
        start_response: Callable[..., Any],
        path: str,
        language: str,
        status: int,
        body: dict[str, Any],
        extra: list[tuple[str, str]],
    ) -> list[bytes]:
        content = json.dumps(body, cls=NinjaJSONEncoder).encode()
        headers = [
            ("Content-Type", "application/json; charset=utf-8"),
            *extra,
            *self.headers,
            ("Vary", "Accept-Language"),
            ("Content-Language", language),
            ("Content-Length", str(len(content))),
        ]
        phrase = HTTPStatus(status).phrase
        if 400 <= status < 500:  # as Django logs them
            request_log.warning("%s: %s", phrase, path)
        start_response(f"{status} {phrase}", headers)
        return [content]
