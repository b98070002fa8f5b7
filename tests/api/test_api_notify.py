"""The notifications API: a person's notifications, push subscriptions, and
an organization's webhook endpoints."""

from __future__ import annotations

import base64
import json

import pytest
from apihelp import error_of, patch_json, post_json, push_keys
from django.conf import settings
from django.db import transaction

from doorkeep.notify.models import OutboxMessage, PushSubscription, WebhookEndpoint
from doorkeep.notify.services import notify_users


def subscription(endpoint="https://push.example.net/send/phone-1"):
    return {"endpoint": endpoint, "keys": push_keys()}


def notices(world, *titles):
    with transaction.atomic():
        return [
            notify_users([world.alice.pk], kind="guest_unlock", title=t, body="", url="/doors/")[0]
            for t in titles
        ]


def webhooks_url(world, org=None):
    return f"/api/v1/organizations/{(org or world.org).pk}/webhooks"


# --- notifications ---------------------------------------------------------------


def test_notifications_are_listed_newest_first_with_the_unread_count(world, alice_api):
    notices(world, "first", "second", "third")

    page = alice_api.get("/api/v1/notifications?limit=2").json()

    assert page["count"] == 3
    assert page["unread"] == 3
    assert [n["title"] for n in page["items"]] == ["third", "second"]
    rest = alice_api.get("/api/v1/notifications?limit=2&offset=2").json()
    assert [n["title"] for n in rest["items"]] == ["first"]


def test_a_notification_is_marked_read_once(world, alice_api):
    first, _second = notices(world, "first", "second")

    read = post_json(alice_api, f"/api/v1/notifications/{first.pk}/read", {}).json()
    again = post_json(alice_api, f"/api/v1/notifications/{first.pk}/read", {}).json()

    assert read["read_at"] is not None
    assert again["read_at"] == read["read_at"]
    unread = alice_api.get("/api/v1/notifications?unread=true").json()
    assert [n["title"] for n in unread["items"]] == ["second"]
    assert unread["unread"] == 1


def test_all_notifications_are_marked_read_at_once(world, alice_api):
    notices(world, "first", "second")

    assert post_json(alice_api, "/api/v1/notifications/read-all", {}).json() == {"marked": 2}
    assert alice_api.get("/api/v1/notifications").json()["unread"] == 0


def test_another_persons_notification_is_not_found(world, bob_api, charlie_api):
    (note,) = notices(world, "secret")

    for client in (bob_api, charlie_api):
        error_of(
            post_json(client, f"/api/v1/notifications/{note.pk}/read", {}),
            404,
            "notification_not_found",
        )
        assert client.get("/api/v1/notifications").json()["count"] == 0


# --- Web Push ----------------------------------------------------------------------


def test_the_vapid_public_key_is_given_to_browsers(world, alice_api):
    body = alice_api.get("/api/v1/push/vapid-public-key").json()

    assert body == {"public_key": settings.DOORKEEP_VAPID_PUBLIC_KEY}
    assert len(base64.urlsafe_b64decode(body["public_key"] + "=")) == 65


def test_without_a_vapid_key_push_is_not_configured(world, alice_api, settings):
    settings.DOORKEEP_VAPID_PUBLIC_KEY = ""

    error_of(alice_api.get("/api/v1/push/vapid-public-key"), 404, "push_not_configured")


def test_a_browser_subscribes_once_and_unsubscribes(world, alice_api):
    sub = subscription()

    created = post_json(alice_api, "/api/v1/push/subscriptions", sub)
    again = post_json(alice_api, "/api/v1/push/subscriptions", sub)

    assert created.status_code == 201
    assert again.status_code == 200
    assert again.json()["id"] == created.json()["id"]
    gone = alice_api.generic(
        "DELETE",
        "/api/v1/push/subscriptions",
        json.dumps({"endpoint": sub["endpoint"]}),
        content_type="application/json",
    )
    assert gone.status_code == 204
    assert PushSubscription.objects.count() == 0


@pytest.mark.parametrize(
    ("change", "code", "status"),
    [
        ({"endpoint": "javascript:alert(1)"}, "invalid_subscription", 400),
        (
            {"keys": {"p256dh": "AAAA", "auth": "AAAAAAAAAAAAAAAAAAAAAA"}},
            "invalid_subscription",
            400,
        ),
        ({"keys": {"p256dh": "x"}}, "validation_error", 422),
        ({"endpoint": ""}, "validation_error", 422),
    ],
)
def test_a_malformed_subscription_is_refused_clearly(world, alice_api, change, code, status):
    body = {**subscription(), **change}

    error_of(post_json(alice_api, "/api/v1/push/subscriptions", body), status, code)
    assert PushSubscription.objects.count() == 0


def test_unsubscribing_a_browser_one_does_not_have_is_not_found(world, alice_api, charlie_api):
    sub = subscription()
    post_json(alice_api, "/api/v1/push/subscriptions", sub)

    response = charlie_api.generic(
        "DELETE",
        "/api/v1/push/subscriptions",
        json.dumps({"endpoint": sub["endpoint"]}),
        content_type="application/json",
    )

    error_of(response, 404, "subscription_not_found")
    assert PushSubscription.objects.count() == 1


# --- webhooks ------------------------------------------------------------------------


def test_the_event_types_are_listed_with_descriptions(world, alice_api):
    types = {
        t["type"]: t["description"] for t in alice_api.get("/api/v1/webhook-event-types").json()
    }

    assert {"guest.unlocked", "invitation.sent", "invitation.expired", "webhook.test"} <= set(types)
    assert all(types.values())


def test_an_endpoint_is_created_with_its_secret_shown_once(world, alice_api):
    response = post_json(
        alice_api,
        webhooks_url(world),
        {
            "url": "https://crm.example.com/hooks",
            "description": "CRM",
            "event_types": ["guest.unlocked"],
        },
    )

    assert response.status_code == 201
    created = response.json()
    assert created["secret"].startswith("whsec_")
    assert len(base64.b64decode(created["secret"][6:])) == 32
    listed = alice_api.get(webhooks_url(world)).json()
    assert [(e["url"], e["event_types"], e["active"]) for e in listed] == [
        ("https://crm.example.com/hooks", ["guest.unlocked"], True)
    ]
    assert "secret" not in listed[0]


@pytest.mark.parametrize(
    ("body", "code", "status"),
    [
        ({"url": "ftp://crm.example.com/hooks"}, "invalid_url", 400),
        ({"url": "file:///etc/passwd"}, "invalid_url", 400),
        ({"url": "crm.example.com/hooks"}, "invalid_url", 400),
        ({"url": "https://crm.example.com:99999/hooks"}, "invalid_url", 400),
        ({"url": "https://\U0001f600.example.com/hooks"}, "invalid_url", 400),
        ({"url": "https://user:secret@crm.example.com/hooks"}, "invalid_url", 400),
        (
            {"url": "https://crm.example.com", "event_types": ["guest.vanished"]},
            "unknown_event_type",
            400,
        ),
        ({"url": ""}, "validation_error", 422),
    ],
)
def test_a_bad_endpoint_is_refused_clearly(world, alice_api, body, code, status):
    error_of(post_json(alice_api, webhooks_url(world), body), status, code)
    assert WebhookEndpoint.objects.count() == 0


def test_an_endpoint_is_turned_off_changed_and_removed(world, alice_api):
    hook = post_json(alice_api, webhooks_url(world), {"url": "https://crm.example.com/h"}).json()
    url = f"{webhooks_url(world)}/{hook['id']}"

    off = patch_json(alice_api, url, {"active": False, "event_types": ["invitation.sent"]}).json()

    assert (off["active"], off["event_types"]) == (False, ["invitation.sent"])
    error_of(post_json(alice_api, url + "/test", {}), 409, "endpoint_inactive")
    assert alice_api.delete(url).status_code == 204
    assert WebhookEndpoint.objects.count() == 0


def test_a_test_event_is_queued_and_shows_in_the_deliveries(world, alice_api):
    hook = post_json(alice_api, webhooks_url(world), {"url": "https://crm.example.com/h"}).json()

    queued = post_json(alice_api, f"{webhooks_url(world)}/{hook['id']}/test", {})

    assert queued.status_code == 202
    assert queued.json()["status"] == "pending"
    deliveries = alice_api.get(f"/api/v1/organizations/{world.org.pk}/webhook-deliveries").json()
    assert [(d["event_type"], d["endpoint_id"], d["msg_id"]) for d in deliveries] == [
        ("webhook.test", hook["id"], queued.json()["msg_id"])
    ]
    assert OutboxMessage.objects.get().payload["data"]["endpoint_id"] == hook["id"]


def test_an_endpoint_of_another_organization_is_not_found_under_ones_own(
    world, alice_api, charlie_api
):
    hook = post_json(alice_api, webhooks_url(world), {"url": "https://crm.example.com/h"}).json()

    # Charlie names Alice's endpoint under his own organization.
    url = f"{webhooks_url(world, world.charlie_org)}/{hook['id']}"
    error_of(patch_json(charlie_api, url, {"active": False}), 404, "endpoint_not_found")
    error_of(charlie_api.delete(url), 404, "endpoint_not_found")
    assert WebhookEndpoint.objects.get().active is True
