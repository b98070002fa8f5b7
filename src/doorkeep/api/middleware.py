"""Errors under /api/ are JSON, even those raised outside an endpoint (an
unknown path, a method the path does not take)."""

from __future__ import annotations

from collections.abc import Callable

from django.core.exceptions import DisallowedHost
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views import defaults

_MESSAGES = {
    404: ("not_found", "There is no such API endpoint. See /api/docs for the list."),
    405: ("method_not_allowed", "This endpoint does not take the {method} method."),
}


class JsonApiErrors:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if (
            response.status_code in _MESSAGES
            and request.path.startswith("/api/")
            and not response.get("Content-Type", "").startswith("application/json")
        ):
            code, message = _MESSAGES[response.status_code]
            body = {"code": code, "message": message.format(method=request.method), "details": {}}
            replacement = JsonResponse(body, status=response.status_code)
            if response.has_header("Allow"):
                replacement["Allow"] = response["Allow"]
            return replacement
        return response


def bad_request(request: HttpRequest, exception: Exception) -> HttpResponse:
    """Django's answer to a request it refuses before any view (a Host header
    not in ALLOWED_HOSTS, a suspicious operation): JSON under /api/, the
    usual page elsewhere. The URLconf's ``handler400``."""
    if not request.path.startswith("/api/"):
        return defaults.bad_request(request, exception)
    if isinstance(exception, DisallowedHost):
        message = "This server does not answer for the host named in the request's Host header."
    else:
        message = "The request was refused as malformed."
    return JsonResponse({"code": "bad_request", "message": message, "details": {}}, status=400)
