"""The notification pages: the list and its badge, the person's settings,
the service worker, and an organization's webhooks."""

from __future__ import annotations

import re

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from webhelp import text

from doorkeep.notify.models import (
    NotificationPreference,
    OutboxMessage,
    PushSubscription,
    WebhookEndpoint,
)
from doorkeep.notify.services import create_endpoint, notify_users


def notices(world, *titles, user=None, url="/doors/"):
    with transaction.atomic():
        return [
            notify_users(
                [(user or world.alice).pk], kind="guest_unlock", title=t, body="b", url=url
            )[0]
            for t in titles
        ]


def browser(user, **fields):
    """A push subscription as stored (these tests send nothing to it)."""
    return PushSubscription.objects.create(
        user=user, endpoint="https://push.example.net/a", p256dh="k", auth="a", **fields
    )


def webhooks_page(world, org=None):
    return f"/organizations/{(org or world.org).pk}/webhooks/"


# --- the list and the badge ---------------------------------------------------------


def test_the_list_shows_notifications_newest_first(world, alice):
    notices(world, "Gina opened Front door", "Gina opened Garage")

    page = text(alice.get("/notifications/"))

    assert page.index("Gina opened Garage") < page.index("Gina opened Front door")


def test_the_menu_counts_unread_notifications_with_one_query(world, alice):
    notices(world, "one", "two", "three")

    with CaptureQueriesContext(connection) as queries:
        page = text(alice.get("/doors/"))

    assert re.search(r'class="nav-count"[^>]*>3<', page)
    counted = [q["sql"] for q in queries.captured_queries if "notify_notification" in q["sql"]]
    assert len(counted) == 1
    assert "COUNT" in counted[0].upper()


def test_no_count_is_shown_when_everything_is_read(world, alice):
    assert "nav-count" not in text(alice.get("/notifications/"))


def test_opening_a_notification_marks_it_read_and_follows_its_link(world, alice):
    (note,) = notices(world, "Gina opened Front door", url="/doors/")

    response = alice.post(f"/notifications/{note.pk}/open/")

    assert response.status_code == 302
    assert response["Location"] == "/doors/"
    note.refresh_from_db()
    assert note.read_at is not None


def test_a_link_to_another_site_is_not_followed(world, alice):
    (note,) = notices(world, "Phish", url="https://evil.example/login")

    response = alice.post(f"/notifications/{note.pk}/open/")

    assert response["Location"] == "/notifications/"


def test_marking_one_and_all_read(world, alice):
    first, _second = notices(world, "first", "second")

    alice.post(f"/notifications/{first.pk}/read/")
    assert ">1<" in text(alice.get("/notifications/")).split("nav-count")[1][:40]
    alice.post("/notifications/read-all/")

    assert "nav-count" not in text(alice.get("/notifications/"))


def test_another_persons_notification_answers_404(world, charlie):
    (note,) = notices(world, "Gina opened Front door")

    assert charlie.post(f"/notifications/{note.pk}/open/").status_code == 404
    assert charlie.post(f"/notifications/{note.pk}/read/").status_code == 404
    assert "Gina opened" not in text(charlie.get("/notifications/"))
    note.refresh_from_db()
    assert note.read_at is None


def test_signed_out_visitors_are_sent_to_sign_in(world):
    anonymous = world.client(None)
    for url in ("/notifications/", "/settings/notifications/", webhooks_page(world)):
        assert anonymous.get(url).status_code == 302, url


# --- settings --------------------------------------------------------------------------


def test_email_for_guest_unlocks_is_off_until_chosen(world, alice):
    page = text(alice.get("/settings/notifications/"))
    assert 'name="email_guest_unlock"' in page
    assert "checked" not in page.split('name="email_guest_unlock"')[1][:40]

    response = alice.post("/settings/notifications/", {"email_guest_unlock": "on"})

    assert response.status_code == 302
    assert NotificationPreference.objects.get(user=world.alice).email_guest_unlock is True
    alice.post("/settings/notifications/", {})
    assert NotificationPreference.objects.get(user=world.alice).email_guest_unlock is False


def test_the_settings_page_offers_push_with_the_vapid_key(world, alice, settings):
    page = text(alice.get("/settings/notifications/"))

    assert "Enable push on this browser" in page
    assert f'data-vapid-key="{settings.DOORKEEP_VAPID_PUBLIC_KEY}"' in page
    assert "notify.js" in page


def test_a_browser_with_push_on_is_listed_and_can_be_turned_off(world, alice, charlie):
    sub = browser(world.alice, user_agent="Firefox/140")
    assert "Firefox/140" in text(alice.get("/settings/notifications/"))

    assert charlie.post(f"/settings/notifications/push/{sub.pk}/remove/").status_code == 404
    alice.post(f"/settings/notifications/push/{sub.pk}/remove/")

    assert not PushSubscription.objects.exists()


def test_a_test_notification_goes_to_the_person_themself(world, alice):
    browser(world.alice)

    alice.post("/settings/notifications/test/")

    assert "Test notification" in text(alice.get("/notifications/"))
    assert OutboxMessage.objects.get().channel == "push"


def test_the_service_worker_is_served_from_the_root(world):
    response = world.client(None).get("/sw.js")

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/javascript")
    body = response.content.decode()
    assert "showNotification" in body
    assert "notificationclick" in body
    assert "openWindow" in body


# --- webhooks --------------------------------------------------------------------------


def test_adding_an_endpoint_shows_its_secret_once(world, alice):
    response = alice.post(
        webhooks_page(world),
        {"url": "https://crm.example.com/hooks", "event_types": ["guest.unlocked"]},
    )

    endpoint = WebhookEndpoint.objects.get()
    assert response.status_code == 200
    assert endpoint.secret in text(response)
    assert "no-store" in response["Cache-Control"] or "max-age=0" in response["Cache-Control"]
    assert endpoint.event_types == ["guest.unlocked"]
    assert endpoint.secret not in text(alice.get(webhooks_page(world)))


@pytest.mark.parametrize(
    "url", ["ftp://crm.example.com/hooks", "javascript:alert(1)", "crm.example.com"]
)
def test_an_endpoint_url_that_is_not_http_is_refused_on_the_form(world, alice, url):
    response = alice.post(webhooks_page(world), {"url": url})

    assert response.status_code == 400
    assert "must start with https://" in text(response)
    assert not WebhookEndpoint.objects.exists()


def test_endpoints_are_tested_turned_off_and_removed(world, alice):
    endpoint = create_endpoint(world.alice, world.org.pk, url="https://crm.example.com/h")
    base = f"{webhooks_page(world)}{endpoint.pk}"

    alice.post(f"{base}/test/")
    page = text(alice.get(webhooks_page(world)))
    assert "webhook.test" in page and "Waiting" in page

    alice.post(f"{base}/toggle/")
    endpoint.refresh_from_db()
    assert endpoint.active is False
    assert alice.post(f"{base}/test/").status_code == 409

    alice.post(f"{base}/delete/")
    assert not WebhookEndpoint.objects.exists()


def test_the_webhooks_link_leads_a_manager_to_the_organizations_page(world, alice):
    assert "Manage webhooks" in text(alice.get("/settings/notifications/"))
    response = alice.get("/settings/webhooks/")
    assert response.status_code == 302
    assert response["Location"] == webhooks_page(world)


def test_a_member_may_not_manage_webhooks(world, bob):
    create_endpoint(world.alice, world.org.pk, url="https://crm.example.com/h")

    assert bob.get(webhooks_page(world)).status_code == 403
    assert bob.post(webhooks_page(world), {"url": "https://x.example"}).status_code == 403
    assert "Manage webhooks" not in text(bob.get("/settings/notifications/"))
    assert WebhookEndpoint.objects.count() == 1


def test_an_outsider_gets_404_for_another_organizations_webhooks(world, charlie):
    endpoint = create_endpoint(world.alice, world.org.pk, url="https://crm.example.com/h")
    base = f"{webhooks_page(world)}{endpoint.pk}"

    assert charlie.get(webhooks_page(world)).status_code == 404
    assert charlie.post(webhooks_page(world), {"url": "https://x.example"}).status_code == 404
    for action in ("test", "toggle", "delete"):
        assert charlie.post(f"{base}/{action}/").status_code == 404
    # his own organization, Alice's endpoint id
    own = f"{webhooks_page(world, world.charlie_org)}{endpoint.pk}"
    for action in ("test", "toggle", "delete"):
        assert charlie.post(f"{own}/{action}/").status_code == 404
    assert "crm.example.com" not in text(charlie.get(webhooks_page(world, world.charlie_org)))
    endpoint.refresh_from_db()
    assert endpoint.active is True
    assert not OutboxMessage.objects.exists()
