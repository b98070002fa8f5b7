"""Notifications (E4): the person's notifications and choices, Web Push on
this browser, and the webhook endpoints of an organization."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.cache import add_never_cache_headers
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from doorkeep import policy
from doorkeep.accounts.models import Organization
from doorkeep.core.errors import DomainError
from doorkeep.notify import selectors, services
from doorkeep.web.notify_forms import PreferencesForm, WebhookForm
from doorkeep.web.views.common import _safe_next, current_user, page_view

NOTIFICATIONS_PER_PAGE = 50
DELIVERIES_SHOWN = 50


@require_GET
@page_view
def notifications(request: HttpRequest) -> HttpResponse:
    user = current_user(request)
    pages = Paginator(selectors.notifications_of(user), NOTIFICATIONS_PER_PAGE)
    page = pages.get_page(request.GET.get("page"))
    return render(request, "web/notifications.html", {"nav": "notifications", "page": page})


@require_POST
@page_view
def open_notification(request: HttpRequest, notification_id: int) -> HttpResponse:
    """Mark it read and go where it points (a page of this site only)."""
    notification = services.mark_read(current_user(request), notification_id)
    return redirect(_safe_next(request, notification.url, reverse("web:notifications")))


@require_POST
@page_view
def read_notification(request: HttpRequest, notification_id: int) -> HttpResponse:
    services.mark_read(current_user(request), notification_id)
    return redirect(_safe_next(request, request.POST.get("next"), reverse("web:notifications")))


@require_POST
@page_view
def read_all_notifications(request: HttpRequest) -> HttpResponse:
    services.mark_all_read(current_user(request))
    messages.success(request, _("All notifications are marked read."))
    return redirect("web:notifications")


def _settings_page(
    request: HttpRequest, *, form: PreferencesForm | None = None, status: int = 200
) -> HttpResponse:
    user = current_user(request)
    preference = selectors.preferences_of(user)
    return render(
        request,
        "web/notification_settings.html",
        {
            "nav": "notifications",
            "form": form
            or PreferencesForm(initial={"email_guest_unlock": preference.email_guest_unlock}),
            "subscriptions": list(selectors.push_subscriptions_of(user)),
            "vapid_public_key": settings.DOORKEEP_VAPID_PUBLIC_KEY,
            "manages_webhooks": policy.organizations(user, policy.Action.MANAGE_WEBHOOKS).exists(),
        },
        status=status,
    )


@require_http_methods(["GET", "POST"])
@page_view
def notification_settings(request: HttpRequest) -> HttpResponse:
    if request.method != "POST":
        return _settings_page(request)
    form = PreferencesForm(request.POST)
    if not form.is_valid():
        return _settings_page(request, form=form, status=400)
    services.set_preferences(
        current_user(request), email_guest_unlock=form.cleaned_data["email_guest_unlock"]
    )
    messages.success(request, _("Your notification settings are saved."))
    return redirect("web:notification_settings")


@require_POST
@page_view
def remove_push_subscription(request: HttpRequest, subscription_id: int) -> HttpResponse:
    services.remove_push_subscription(current_user(request), subscription_id)
    messages.success(request, _("That browser no longer gets push notifications."))
    return redirect("web:notification_settings")


@require_POST
@page_view
def test_notification(request: HttpRequest) -> HttpResponse:
    services.send_test_notification(current_user(request))
    messages.success(request, _("A test notification is on its way to every browser with push on."))
    return redirect("web:notification_settings")


@require_GET
def service_worker(request: HttpRequest) -> HttpResponse:
    """The service worker, served from the root so that it may control every page."""
    response = render(request, "web/sw.js", content_type="text/javascript; charset=utf-8")
    response["Cache-Control"] = "no-cache"
    response["Service-Worker-Allowed"] = "/"
    return response


# --- webhooks of an organization --------------------------------------------------------


@require_GET
@page_view
def webhooks_index(request: HttpRequest) -> HttpResponse:
    """The organizations whose webhooks the person manages; straight to the only one."""
    organizations = list(
        policy.organizations(current_user(request), policy.Action.MANAGE_WEBHOOKS).order_by(
            "name", "pk"
        )
    )
    if len(organizations) == 1:
        return redirect("web:webhooks", org_id=organizations[0].pk)
    return render(
        request,
        "web/webhooks_index.html",
        {"nav": "notifications", "organizations": organizations},
    )


def _webhooks_page(
    request: HttpRequest,
    org_id: int,
    *,
    form: WebhookForm | None = None,
    new_secret: str = "",
    status: int = 200,
    error: str = "",
) -> HttpResponse:
    user = current_user(request)
    endpoints = list(selectors.endpoints_of(user, org_id))  # checks the role first
    response = render(
        request,
        "web/webhooks.html",
        {
            "nav": "notifications",
            "organization": Organization.objects.get(pk=org_id),
            "endpoints": endpoints,
            "deliveries": selectors.deliveries_of(user, org_id, limit=DELIVERIES_SHOWN),
            "form": form or WebhookForm(),
            "new_secret": new_secret,
            "error": error,
        },
        status=status,
    )
    add_never_cache_headers(response)  # the page may show a secret
    return response


@require_http_methods(["GET", "POST"])
@page_view
def webhooks(request: HttpRequest, org_id: int) -> HttpResponse:
    if request.method != "POST":
        return _webhooks_page(request, org_id)
    form = WebhookForm(request.POST)
    if not form.is_valid():
        return _webhooks_page(request, org_id, form=form, status=400)
    try:
        endpoint = services.create_endpoint(
            current_user(request),
            org_id,
            url=form.cleaned_data["url"],
            description=form.cleaned_data["description"],
            event_types=form.cleaned_data["event_types"],
        )
    except DomainError as exc:
        if exc.status == 404:
            raise
        form.add_service_error(exc)
        return _webhooks_page(request, org_id, form=form, status=exc.status)
    return _webhooks_page(request, org_id, new_secret=endpoint.secret)


@require_POST
@page_view
def toggle_webhook(request: HttpRequest, org_id: int, endpoint_id: int) -> HttpResponse:
    user = current_user(request)
    endpoint = services.get_endpoint(user, org_id, endpoint_id)
    services.update_endpoint(user, org_id, endpoint_id, active=not endpoint.active)
    if endpoint.active:
        messages.success(request, _("The endpoint is off; waiting events will not be sent."))
    else:
        messages.success(request, _("The endpoint is on again."))
    return redirect("web:webhooks", org_id=org_id)


@require_POST
@page_view
def delete_webhook(request: HttpRequest, org_id: int, endpoint_id: int) -> HttpResponse:
    services.delete_endpoint(current_user(request), org_id, endpoint_id)
    messages.success(request, _("The endpoint is removed."))
    return redirect("web:webhooks", org_id=org_id)


@require_POST
@page_view
def test_webhook(request: HttpRequest, org_id: int, endpoint_id: int) -> HttpResponse:
    try:
        services.send_test_event(current_user(request), org_id, endpoint_id)
    except DomainError as exc:
        if exc.status == 404:
            raise
        return _webhooks_page(request, org_id, status=exc.status, error=exc.message)
    messages.success(request, _("A test event is on its way; see the deliveries below."))
    return redirect("web:webhooks", org_id=org_id)
