"""Demo mode only (`doorkeep serve --demo`, settings.DOORKEEP_DEMO): the
mailbox page, where someone trying Doorkeep reads the emails it sent (sign-up
confirmations, invitations) without an account; elsewhere it is not found."""

from __future__ import annotations

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.cache import add_never_cache_headers
from django.views.decorators.http import require_GET

from doorkeep.core.mailbox import SHOWN, kept_messages


@require_GET
def demo_mail(request: HttpRequest) -> HttpResponse:
    if not settings.DOORKEEP_DEMO:
        raise Http404
    response = render(
        request,
        "web/demo/mail.html",
        {"kept": kept_messages(), "shown": SHOWN, "mail_dir": settings.DATA_DIR / "mail"},
    )
    add_never_cache_headers(response)
    return response
