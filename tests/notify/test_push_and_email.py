"""In-app notifications, Web Push through a real (local) push endpoint that
checks VAPID and decrypts the message as a browser would, and email through a
real SMTP server."""

from __future__ import annotations

import time

import pytest
from django.conf import settings
from django.db import transaction
from notifyhelp import Browser, vapid_claims

from doorkeep.core.errors import InvalidInput
from doorkeep.notify import outbox
from doorkeep.notify.models import Notification, OutboxMessage, PushSubscription
from doorkeep.notify.services import (
    notify_users,
    set_preferences,
    subscribe_push,
    unsubscribe_push,
)


def unlock_notice(*users, url="/doors/"):
    with transaction.atomic():
        return notify_users(
            [u.pk for u in users],
            kind="guest_unlock",
            title="Gina opened Front door",
            body="Gina Guest opened Front door at Canal House.",
            url=url,
            data={"entry_id": 7},
        )


def subscribe(user, endpoint, browser=None):
    browser = browser or Browser.new()
    sub, _created = subscribe_push(
        user, endpoint=endpoint, p256dh=browser.p256dh, auth=browser.auth, user_agent="Firefox"
    )
    return browser, sub


def test_each_person_gets_one_in_app_notification(world):
    alice_note, bob_note = unlock_notice(world.alice, world.bob, world.alice)

    assert (alice_note.user, bob_note.user) == (world.alice, world.bob)
    assert alice_note.title == "Gina opened Front door"
    assert alice_note.data == {"entry_id": 7}
    assert alice_note.read_at is None
    assert OutboxMessage.objects.count() == 0  # no browser subscribed, no email chosen


def test_an_unknown_kind_is_a_programming_error(world):
    with pytest.raises(ValueError, match="unknown notification kind"):
        notify_users([world.alice.pk], kind="gossip", title="t", body="b")


def test_a_push_message_is_signed_with_vapid_and_readable_only_by_the_browser(world, receiver):
    service = receiver(201)
    browser, sub = subscribe(world.alice, service.url + "/push/alice-phone")

    (note,) = unlock_notice(world.alice)
    assert outbox.deliver_due() == 1

    (request,) = service.requests
    assert request.path == "/push/alice-phone"
    assert request.headers["content-encoding"] == "aes128gcm"
    assert int(request.headers["ttl"]) > 0
    claims = vapid_claims(request.headers["authorization"], settings.DOORKEEP_VAPID_PUBLIC_KEY)
    assert claims["aud"] == service.url
    assert claims["sub"] == settings.DOORKEEP_VAPID_SUBJECT
    assert claims["exp"] > time.time()
    assert browser.decrypt(request.body) == {
        "id": note.pk,
        "kind": "guest_unlock",
        "title": "Gina opened Front door",
        "body": "Gina Guest opened Front door at Canal House.",
        "url": settings.SITE_URL + "/doors/",
    }
    with pytest.raises(Exception):  # noqa: B017 - another browser's keys cannot read it
        Browser.new().decrypt(request.body)
    sub.refresh_from_db()
    assert sub.last_success_at is not None
    assert OutboxMessage.objects.get().status == "delivered"


def test_a_push_endpoint_at_a_private_address_is_refused(world, receiver, settings):
    service = receiver(201)
    subscribe(world.alice, service.url.replace("127.0.0.1", "localhost") + "/push/alice-phone")
    settings.DOORKEEP_OUTBOUND_PRIVATE_ADDRESSES = False

    unlock_notice(world.alice)
    outbox.deliver_due()

    assert service.requests == []
    message = OutboxMessage.objects.get(channel="push")
    assert message.status == "gave_up"
    assert "private or reserved address" in message.last_error


def test_every_browser_of_the_person_gets_the_push(world, receiver):
    service = receiver(201)
    subscribe(world.alice, service.url + "/phone")
    subscribe(world.alice, service.url + "/laptop")
    subscribe(world.bob, service.url + "/bob")

    unlock_notice(world.alice)
    assert outbox.deliver_due() == 2

    assert sorted(r.path for r in service.requests) == ["/laptop", "/phone"]


@pytest.mark.parametrize("status", [404, 410])
def test_a_subscription_the_push_service_calls_gone_is_removed(world, receiver, status):
    service = receiver(status)
    _browser, sub = subscribe(world.alice, service.url + "/expired")

    unlock_notice(world.alice)
    outbox.deliver_due()

    assert not PushSubscription.objects.filter(pk=sub.pk).exists()
    message = OutboxMessage.objects.get()
    assert (message.status, message.last_status) == ("gave_up", status)
    unlock_notice(world.alice)
    assert OutboxMessage.objects.count() == 1  # nothing more for that browser


def test_a_push_service_error_is_retried(world, receiver):
    service = receiver(503)
    _browser, sub = subscribe(world.alice, service.url + "/busy")

    unlock_notice(world.alice)
    outbox.deliver_due()

    assert PushSubscription.objects.filter(pk=sub.pk).exists()
    message = OutboxMessage.objects.get()
    assert (message.status, message.last_status) == ("retrying", 503)


def test_subscribing_the_same_browser_again_updates_it(world):
    _browser, first = subscribe(world.alice, "https://push.example.net/send/abc")
    _browser, again = subscribe(world.bob, "https://push.example.net/send/abc")

    assert again.pk == first.pk
    assert again.user == world.bob  # the person now signed in on that browser
    assert PushSubscription.objects.count() == 1


@pytest.mark.parametrize(
    ("endpoint", "p256dh", "auth"),
    [
        ("ftp://push.example.net/x", None, None),
        ("not a url", None, None),
        ("https://push.example.net/x", "bm90IGEga2V5", None),
        ("https://push.example.net/x", "%%%", None),
        ("https://push.example.net/x", None, "c2hvcnQ"),
    ],
)
def test_a_malformed_subscription_is_refused(world, endpoint, p256dh, auth):
    browser = Browser.new()
    with pytest.raises(InvalidInput) as caught:
        subscribe_push(
            world.alice,
            endpoint=endpoint,
            p256dh=p256dh or browser.p256dh,
            auth=auth or browser.auth,
        )
    assert caught.value.code == "invalid_subscription"
    assert PushSubscription.objects.count() == 0


def test_unsubscribing_removes_only_ones_own_browser(world):
    subscribe(world.alice, "https://push.example.net/send/alice")

    with pytest.raises(Exception, match="not found"):
        unsubscribe_push(world.charlie, "https://push.example.net/send/alice")
    unsubscribe_push(world.alice, "https://push.example.net/send/alice")

    assert PushSubscription.objects.count() == 0


def test_email_is_sent_only_to_people_who_chose_it(world, smtp):
    set_preferences(world.alice, email_guest_unlock=True)
    set_preferences(world.bob, email_guest_unlock=False)

    unlock_notice(world.alice, world.bob, world.charlie)
    assert outbox.deliver_due() == 1

    message = smtp.last_to("alice@example.com")
    assert message["Subject"] == "[Doorkeep] Gina opened Front door"
    text = message.get_content()
    assert "Gina Guest opened Front door at Canal House." in text
    assert settings.SITE_URL + "/doors/" in text
    assert len(smtp.messages) == 1
    assert OutboxMessage.objects.get().status == "delivered"


def test_email_is_off_by_default(world, smtp):
    unlock_notice(world.alice)

    assert outbox.deliver_due() == 0
    assert smtp.messages == []


def test_an_smtp_server_that_is_down_is_retried(world, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", 9
    set_preferences(world.alice, email_guest_unlock=True)

    unlock_notice(world.alice)
    outbox.deliver_due()

    assert OutboxMessage.objects.get().status == "retrying"


def test_a_deactivated_account_is_not_notified(world):
    world.bob.is_active = False
    world.bob.save()

    assert [n.user for n in unlock_notice(world.alice, world.bob)] == [world.alice]
    assert not Notification.objects.filter(user=world.bob).exists()
