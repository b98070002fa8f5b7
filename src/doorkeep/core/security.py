"""The Content-Security-Policy of every response (ASVS V14.4.3).

Doorkeep's pages run no inline script and no inline style: every script is a
file of the site (doorkeep.js, notify.js for Web Push and its service worker,
guest-nfc.js for Web NFC, stations.js), every style a stylesheet. So the
policy allows the site's own files and nothing else, and no nonce is needed;
a page that one day needs an inline script gets a nonce then, not
'unsafe-inline'. Images may be data: URLs (QR codes drawn as PNG); frames,
plugins and other sites' forms are refused, and no site may frame ours.

``DOORKEEP_CSP_REPORT_URI`` adds a ``report-uri`` so that browsers report
what the policy blocked."""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse

POLICY = (
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data:",
    "font-src 'self'",
    "connect-src 'self'",
    "worker-src 'self'",
    "manifest-src 'self'",
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
)


def policy() -> str:
    parts = list(POLICY)
    if settings.SECURE_SSL_REDIRECT:
        parts.append("upgrade-insecure-requests")
    if settings.DOORKEEP_CSP_REPORT_URI:
        parts.append(f"report-uri {settings.DOORKEEP_CSP_REPORT_URI}")
    return "; ".join(parts)


class ContentSecurityPolicy:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        self.header = policy()

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        response.headers.setdefault("Content-Security-Policy", self.header)
        return response
