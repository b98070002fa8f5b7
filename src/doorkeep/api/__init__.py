"""The REST API: /api/v1, OpenAPI at /api/openapi.json, docs at /api/docs.

Every error is JSON: ``{"code": "...", "message": "...", "details": {...}}``
with a stable ``code`` and a message a person understands. The rules every
operation follows (64-bit integers, the error answers in the OpenAPI) are in
doorkeep.api.contract; docs/api.md lists every code (tests/api/test_api_error_codes.py
checks that the two agree)."""

from __future__ import annotations

import json
import logging
from typing import Any

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import Http404, HttpRequest, HttpResponse
from django.utils.datastructures import MultiValueDict
from ninja.errors import AuthenticationError, HttpError, ValidationError
from ninja.parser import Parser
from ninja.security import APIKeyCookie, HttpBearer

from doorkeep.accounts.models import User
from doorkeep.accounts.services import user_for_token
from doorkeep.api import contract
from doorkeep.core.errors import DomainError, InvalidInput
from doorkeep.core.text import storable

log = logging.getLogger("doorkeep.api")

UNSTORABLE_MESSAGE = "Text may not contain NUL characters or unpaired surrogates."
NOT_AN_OBJECT_MESSAGE = "The body must be a JSON object ({...})."


class TokenAuth(HttpBearer):
    openapi_scheme = "bearer"

    def authenticate(self, request: HttpRequest, token: str) -> User | None:
        user = user_for_token(token)
        if user is not None:
            request.user = user
        return user


class SessionAuth(APIKeyCookie):
    """The web UI's session cookie (CSRF-checked), so the browsable docs work
    for a signed-in person."""

    param_name = "sessionid"

    def _get_key(self, request: HttpRequest) -> str | None:
        # No session cookie: nothing to protect from cross-site requests, and
        # the caller is told to sign in (401), not that a CSRF check failed.
        if self.param_name not in request.COOKIES:
            return None
        return super()._get_key(request)

    def authenticate(self, request: HttpRequest, key: str | None) -> User | None:
        user = getattr(request, "user", None)
        if isinstance(user, User) and user.is_active:
            return user
        return None


class StorableTextParser(Parser):
    """JSON bodies and query strings whose text the database can store: a NUL
    (\\u0000, %00) or half a surrogate pair is refused with a 422 instead of
    failing on PostgreSQL (or being stored on SQLite).

    A body that is not JSON is a 400 (``invalid_json``); every operation's
    body is an object, so JSON of another type (``true``, ``[1]``) is a 422."""

    def parse_body(self, request: HttpRequest) -> dict[str, Any]:
        try:
            data = json.loads(request.body)
        except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError
            raise InvalidInput(f"The body is not valid JSON: {exc}.", code="invalid_json") from None
        if not isinstance(data, dict):
            raise ValidationError([{"loc": ("body",), "msg": NOT_AN_OBJECT_MESSAGE}])
        if b"\\u" in request.body and not storable(data):
            raise ValidationError([{"loc": ("body",), "msg": UNSTORABLE_MESSAGE}])
        return data

    def parse_querydict(
        self, data: MultiValueDict[str, Any], list_fields: list[str], request: HttpRequest
    ) -> dict[str, Any]:
        result = super().parse_querydict(data, list_fields, request)
        if not storable(result):
            raise ValidationError([{"loc": ("query",), "msg": UNSTORABLE_MESSAGE}])
        return result


api = contract.ContractAPI(
    title="Doorkeep API",
    version="1",
    description=(
        "Everything the Doorkeep web UI does. Authenticate with `Authorization: Bearer <token>` "
        "(create a token with POST /api/v1/auth/tokens or in the web UI under API tokens). "
        "Errors are JSON objects with a stable `code` and a human `message`."
    ),
    auth=[TokenAuth(), SessionAuth()],
    urls_namespace="api",
    parser=StorableTextParser(),
)


def error(
    request: HttpRequest, status: int, code: str, message: str, **details: Any
) -> HttpResponse:
    return api.create_response(
        request, {"code": code, "message": message, "details": details}, status=status
    )


# A lock that is offline or does not answer is the lock's state, not a fault
# of the platform: its 503/504 is logged as a warning, not as a server error.
_DEVICE_STATES = frozenset({"lock_offline", "lock_timeout"})


@api.exception_handler(DomainError)
def _domain_error(request: HttpRequest, exc: DomainError) -> HttpResponse:
    response = error(request, exc.status, exc.code, exc.message, **exc.details)
    if "retry_after" in exc.details:
        response["Retry-After"] = str(exc.details["retry_after"])
    if exc.code in _DEVICE_STATES:
        log.warning("%s: %s %s", exc.code, request.method, request.path)
        response._has_been_logged = True  # type: ignore[attr-defined]  # django.request: not again
    return response


def _describe(err: dict[str, Any]) -> str:
    where = ".".join(str(p) for p in err.get("loc", ()) if p not in ("body", "query", "path"))
    msg = str(err.get("msg", "is not valid"))
    return f"{where}: {msg}" if where else msg


@api.exception_handler(ValidationError)
def _validation_error(request: HttpRequest, exc: ValidationError) -> HttpResponse:
    errors = [
        {"field": ".".join(str(p) for p in e.get("loc", ())), "message": str(e.get("msg", ""))}
        for e in exc.errors
    ]
    message = "; ".join(_describe(e) for e in exc.errors) or "The request is not valid."
    return error(request, 422, "validation_error", message, errors=errors)


@api.exception_handler(AuthenticationError)
def _auth_error(request: HttpRequest, exc: AuthenticationError) -> HttpResponse:
    return error(
        request,
        401,
        "unauthorized",
        "Sign in, or send an API token as 'Authorization: Bearer <token>'.",
    )


@api.exception_handler(Http404)
def _not_found(request: HttpRequest, exc: Http404) -> HttpResponse:
    return error(request, 404, "not_found", "Not found.")


@api.exception_handler(RequestDataTooBig)
def _too_large(request: HttpRequest, exc: RequestDataTooBig) -> HttpResponse:
    return error(
        request,
        413,
        "request_too_large",
        "The request body is too large.",
        max_bytes=settings.DATA_UPLOAD_MAX_MEMORY_SIZE,
    )


@api.exception_handler(OverflowError)
def _out_of_range(request: HttpRequest, exc: OverflowError) -> HttpResponse:
    # A number or date that the database or the calendar cannot hold (ids
    # beyond 64 bits are refused before: contract.int64_only).
    return error(
        request, 422, "validation_error", "A number or date in the request is out of range."
    )


@api.exception_handler(HttpError)
def _http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
    # Ninja turns whatever the body's parser raises into "Cannot parse
    # request body" (400); StorableTextParser's refusals say what is wrong.
    if isinstance(exc.__cause__, ValidationError):
        return _validation_error(request, exc.__cause__)
    if isinstance(exc.__cause__, DomainError):
        return _domain_error(request, exc.__cause__)
    if exc.status_code == 403:  # the only other one: Ninja's CSRF check of the session
        return error(
            request,
            403,
            "csrf_failed",
            "The CSRF check failed: with the session cookie, send the X-CSRFToken header.",
        )
    return error(request, exc.status_code, "bad_request", str(exc))


def _register_routers() -> None:
    from doorkeep.accounts.api import router as accounts
    from doorkeep.badges.api import router as badges
    from doorkeep.billing.api import router as billing
    from doorkeep.billing.consumption_api import router as consumption
    from doorkeep.billing.payments_api import router as payments
    from doorkeep.billing.statements_api import router as statements
    from doorkeep.chargers.api import router as chargers
    from doorkeep.collaborators.api import router as collaborators
    from doorkeep.events.api import router as events
    from doorkeep.gateway.api import router as gateway
    from doorkeep.guests.api import router as guests
    from doorkeep.installations.api import router as installations
    from doorkeep.keys.api import router as keys
    from doorkeep.laundry.api import router as laundry
    from doorkeep.licensing.api import router as licences
    from doorkeep.locks.api import router as locks
    from doorkeep.notify.api import router as notify
    from doorkeep.properties.api import router as properties
    from doorkeep.residents.api import router as residents
    from doorkeep.residents.portal_api import router as portal

    api.add_router("/v1/", accounts)
    api.add_router("/v1/", properties)
    api.add_router("/v1/", locks)
    api.add_router("/v1/", keys)
    api.add_router("/v1/", licences)
    api.add_router("/v1/", events)
    api.add_router("/v1/", gateway)
    api.add_router("/v1/", guests)
    api.add_router("/v1/", notify)
    api.add_router("/v1/", residents)
    api.add_router("/v1/", badges)
    api.add_router("/v1/", installations)
    api.add_router("/v1/", portal)
    api.add_router("/v1/", collaborators)
    api.add_router("/v1/", chargers)
    api.add_router("/v1/", laundry)
    api.add_router("/v1/", consumption)
    api.add_router("/v1/", billing)
    api.add_router("/v1/", payments)
    api.add_router("/v1/", statements)


contract.install(api)
_register_routers()
