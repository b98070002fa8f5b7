"""Errors under /api/ are JSON, even those raised outside an endpoint (an
unknown path, a method the path does not take)."""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse, JsonResponse

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
