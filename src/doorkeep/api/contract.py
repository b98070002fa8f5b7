"""The API's contract, as one set of rules for every operation.

- Integers: every integer the API reads is a signed 64-bit integer, which is
  what every id and counter column holds. A larger one in a path, a query or
  a body is a 422 (``validation_error``), never a database error; the OpenAPI
  says so with ``minimum`` and ``maximum`` on every integer.
- Errors: every operation's OpenAPI lists the error answers
  (``ERROR_STATUSES``) with the one error schema, ``ErrorOut``.

``install(api)`` applies both to the whole API (doorkeep.api calls it)."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from typing import Any

from ninja import NinjaAPI, Schema
from ninja.errors import ValidationError
from pydantic import BaseModel, Field

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1

# What each error status means; docs/api.md has the codes each one carries.
ERROR_STATUSES: dict[int, str] = {
    400: "The request is understood but its content is wrong, or its body is not JSON",
    401: "No valid token or session",
    403: "The caller may see the object but not do this",
    404: "No such object, or one of another organization",
    409: "It conflicts with the current state",
    410: "The link or invitation was used, revoked, replaced or has expired",
    413: "The request body is too large",
    422: "The body, query or path does not match the schema",
    429: "Too many attempts; see the Retry-After header",
    503: "The device is offline",
    504: "The device did not answer in time",
}


class ErrorOut(Schema):
    code: str = Field(description="Stable, for programs")
    message: str = Field(description="For people")
    details: dict[str, Any]


def out_of_range(value: Any, path: tuple[str | int, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """The places in a validated value that hold an integer beyond 64 bits."""
    if isinstance(value, bool):
        return
    if isinstance(value, int):
        if not INT64_MIN <= value <= INT64_MAX:
            yield path
    elif isinstance(value, BaseModel):
        for name in type(value).model_fields:
            yield from out_of_range(getattr(value, name), (*path, name))
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from out_of_range(item, (*path, str(key)))
    elif isinstance(value, list | tuple | set | frozenset):
        for index, item in enumerate(value):
            yield from out_of_range(item, (*path, index))


def int64_only(view: Callable[..., Any]) -> Callable[..., Any]:
    """Refuse an operation's input (after Ninja validated it) that holds an
    integer beyond 64 bits."""

    @functools.wraps(view)
    def checked(request: Any, *args: Any, **kwargs: Any) -> Any:
        errors = [
            {
                "loc": (_source(request, name), *loc),
                "msg": f"Input should be between {INT64_MIN} and {INT64_MAX}",
                "type": "int64_range",
            }
            for name, value in kwargs.items()
            for loc in out_of_range(value, (name,))
        ]
        if errors:
            raise ValidationError(errors)
        return view(request, *args, **kwargs)

    return checked


def _source(request: Any, name: str) -> str:
    """Where a parameter came from, as Ninja names it in a validation error."""
    match = getattr(request, "resolver_match", None)
    if match is not None and name in match.kwargs:
        return "path"
    return "query" if name in request.GET else "body"


def _bound_integers(node: Any) -> None:
    if isinstance(node, dict):
        if node.get("type") == "integer":
            if "maximum" not in node and "exclusiveMaximum" not in node:
                node["maximum"] = INT64_MAX
            if "minimum" not in node and "exclusiveMinimum" not in node:
                node["minimum"] = INT64_MIN
        for value in node.values():
            _bound_integers(value)
    elif isinstance(node, list):
        for value in node:
            _bound_integers(value)


def _error_response(status: int) -> dict[str, Any]:
    return {
        "description": ERROR_STATUSES[status],
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorOut"}}},
    }


def complete_openapi(schema: dict[str, Any]) -> dict[str, Any]:
    """Bound every integer to 64 bits and list the error answers of every
    operation (401 only where the operation asks for authentication, 413
    where it takes a body)."""
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    components.setdefault(
        "ErrorOut", ErrorOut.model_json_schema(ref_template="#/components/schemas/{model}")
    )
    for methods in schema.get("paths", {}).values():
        for operation in methods.values():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            responses = operation["responses"]
            for status in ERROR_STATUSES:
                if status == 401 and not operation.get("security"):
                    continue
                if status == 413 and "requestBody" not in operation:
                    continue
                responses.setdefault(status, _error_response(status))
    _bound_integers(schema)
    return schema


class ContractAPI(NinjaAPI):
    """A NinjaAPI whose OpenAPI description says what ``install`` enforces."""

    def get_openapi_schema(self, **kwargs: Any) -> Any:
        return complete_openapi(super().get_openapi_schema(**kwargs))


def install(api: NinjaAPI) -> None:
    api.add_decorator(int64_only, mode="operation")
