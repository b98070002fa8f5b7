"""Domain errors: what a service raises when a request cannot be carried out.

Each error has a stable ``code`` (for API clients and tests), an HTTP status,
and a message a person understands. Views and the API turn them into pages
and JSON; the CLI prints the message.
"""

from __future__ import annotations

from typing import Any, ClassVar


class DomainError(Exception):
    status: ClassVar[int] = 400
    code: ClassVar[str] = "invalid"

    def __init__(self, message: str, *, code: str | None = None, **details: Any) -> None:
        super().__init__(message)
        self.message = str(message)
        if code is not None:
            self.code = code  # type: ignore[misc]
        self.details = details


class InvalidInput(DomainError):
    status = 400
    code = "invalid"


class Unprocessable(InvalidInput):
    """A value whose shape is wrong (a malformed UID, ATQA or SAK) or that
    cannot be accepted as what it claims to be (an incompatible card): HTTP
    422 in the API, naming the field in ``details``."""

    status = 422


class NotFound(DomainError):
    """Also what another tenant's objects answer: they do not exist for the caller."""

    status = 404
    code = "not_found"


class PermissionDenied(DomainError):
    """The caller may see the object but not do this to it."""

    status = 403
    code = "forbidden"


class Conflict(DomainError):
    status = 409
    code = "conflict"


class RateLimited(DomainError):
    status = 429
    code = "rate_limited"
