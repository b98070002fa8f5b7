"""Webhooks leave through the outbox: signed per Standard Webhooks, retried
with backoff, given up after the last attempt, never sent for a rollback,
and sent once even when two processes deliver at the same moment."""

from __future__ import annotations

import json
import threading
import time
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.utils import timezone
from standardwebhooks import Webhook

from doorkeep.notify import outbox
from doorkeep.notify.models import OutboxMessage, WebhookEndpoint
from doorkeep.notify.services import create_endpoint, emit_webhook


def endpoint(world, url, **kwargs) -> WebhookEndpoint:
    return create_endpoint(world.alice, world.org.pk, url=url, **kwargs)


def emit(world, event="guest.unlocked", **data) -> int:
    with transaction.atomic():
        return emit_webhook(world.org.pk, event, data or {"entry": {"id": 7, "name": "Front"}})


def verified(hook: WebhookEndpoint, request) -> dict:
    return Webhook(hook.secret).verify(request.body, request.headers)


def test_an_event_reaches_the_endpoint_signed_with_its_secret(world, receiver):
    box = receiver()
    hook = endpoint(world, box.url + "/hooks/doorkeep")

    assert emit(world, entry={"id": 7, "name": "Front door"}) == 1
    assert outbox.deliver_due() == 1

    (request,) = box.requests
    body = verified(hook, request)
    assert request.path == "/hooks/doorkeep"
    assert body["type"] == "guest.unlocked"
    assert body["data"] == {"entry": {"id": 7, "name": "Front door"}}
    assert body["timestamp"].endswith("Z")
    message = OutboxMessage.objects.get()
    assert request.headers["webhook-id"] == message.msg_id
    assert request.headers["content-type"] == "application/json"
    assert message.status == "delivered"
    assert message.last_status == 200


def test_a_signature_made_with_another_secret_does_not_verify(world, receiver):
    from standardwebhooks.webhooks import WebhookVerificationError

    box = receiver()
    endpoint(world, box.url)
    other = endpoint(world, box.url + "/other")  # same event, its own secret
    emit(world)
    outbox.deliver_due()

    first = next(r for r in box.requests if r.path != "/other")
    with pytest.raises(WebhookVerificationError):
        verified(other, first)


def test_only_endpoints_subscribed_to_the_event_type_get_it(world, receiver):
    box = receiver()
    endpoint(world, box.url + "/all")
    endpoint(world, box.url + "/unlocks", event_types=["guest.unlocked"])
    endpoint(world, box.url + "/invitations", event_types=["invitation.sent"])
    off = endpoint(world, box.url + "/off")
    WebhookEndpoint.objects.filter(pk=off.pk).update(active=False)

    assert emit(world, "invitation.sent", invitation={"id": 1}) == 2
    outbox.deliver_due()

    assert sorted(r.path for r in box.requests) == ["/all", "/invitations"]


def test_other_organizations_endpoints_get_nothing(world, receiver):
    box = receiver()
    create_endpoint(world.charlie, world.charlie_org.pk, url=box.url)

    assert emit(world) == 0
    assert outbox.deliver_due() == 0
    assert box.requests == []


def test_an_unknown_event_type_is_a_programming_error(world):
    with pytest.raises(ValueError, match="unknown webhook event type"):
        emit_webhook(world.org.pk, "guest.teleported", {})


def test_a_rolled_back_transaction_sends_nothing(world, receiver):
    box = receiver()
    endpoint(world, box.url)

    with pytest.raises(RuntimeError), transaction.atomic():
        emit_webhook(world.org.pk, "guest.unlocked", {"entry": {"id": 1}})
        raise RuntimeError("the unlock failed after all")

    assert OutboxMessage.objects.count() == 0
    assert outbox.deliver_due() == 0
    assert box.requests == []


def test_a_failed_delivery_is_retried_after_the_backoff_with_the_same_id(
    world, receiver, time_machine
):
    start = timezone.now()
    time_machine.move_to(start, tick=False)
    box = receiver(500)
    hook = endpoint(world, box.url)
    emit(world)

    assert outbox.deliver_due() == 1
    message = OutboxMessage.objects.get()
    assert (message.status, message.attempts, message.last_status) == ("retrying", 1, 500)
    assert message.next_attempt_at == start + timedelta(seconds=30)

    time_machine.move_to(start + timedelta(seconds=29), tick=False)
    assert outbox.deliver_due() == 0  # not yet

    time_machine.move_to(start + timedelta(seconds=30), tick=False)
    assert outbox.deliver_due() == 1

    first, second = box.requests
    assert first.headers["webhook-id"] == second.headers["webhook-id"] == message.msg_id
    assert first.body == second.body
    assert int(second.headers["webhook-timestamp"]) == int(first.headers["webhook-timestamp"]) + 30
    verified(hook, second)
    message.refresh_from_db()
    assert (message.status, message.attempts, message.last_status) == ("delivered", 2, 200)


def test_an_endpoint_that_keeps_failing_is_given_up_after_the_last_attempt(
    world, receiver, time_machine
):
    moment = timezone.now()
    time_machine.move_to(moment, tick=False)
    box = receiver(default=503)
    endpoint(world, box.url)
    emit(world)

    waits = []
    for _attempt in range(outbox.MAX_ATTEMPTS):
        assert outbox.deliver_due() == 1
        message = OutboxMessage.objects.get()
        if message.next_attempt_at:
            waits.append(message.next_attempt_at - moment)
            moment = message.next_attempt_at
            time_machine.move_to(moment, tick=False)

    assert waits == list(outbox.BACKOFF)
    assert len(box.requests) == 7
    message = OutboxMessage.objects.get()
    assert message.status == "gave_up"
    assert message.gave_up_at == moment
    assert message.last_error.startswith("HTTP 503")
    time_machine.move_to(moment + timedelta(days=30), tick=False)
    assert outbox.deliver_due() == 0  # kept, never sent again


def test_a_redirect_is_not_followed_and_counts_as_a_failure(world, receiver):
    box = receiver(302)
    endpoint(world, box.url)
    emit(world)

    outbox.deliver_due()

    message = OutboxMessage.objects.get()
    assert (message.status, message.last_status) == ("retrying", 302)
    assert len(box.requests) == 1


def test_an_endpoint_that_does_not_answer_is_retried(world, receiver):
    endpoint(world, "http://127.0.0.1:9/nobody-listens")
    emit(world)

    assert outbox.deliver_due() == 1

    message = OutboxMessage.objects.get()
    assert message.status == "retrying"
    assert message.last_status is None
    assert "ConnectionError" in message.last_error


def test_messages_for_an_endpoint_turned_off_meanwhile_give_up(world, receiver):
    box = receiver()
    hook = endpoint(world, box.url)
    emit(world)
    WebhookEndpoint.objects.filter(pk=hook.pk).update(active=False)

    outbox.deliver_due()

    assert box.requests == []
    assert OutboxMessage.objects.get().status == "gave_up"


def test_a_row_claimed_by_another_process_is_not_sent_again(world, receiver):
    box = receiver()
    endpoint(world, box.url)
    emit(world)
    message = OutboxMessage.objects.get()
    now = timezone.now()

    assert outbox.claim(message.pk, 0, now) is True
    assert outbox.claim(message.pk, 0, now) is False  # the second claimer loses
    assert outbox.deliver_due() == 0  # leased, not due
    assert box.requests == []
    assert outbox.deliver_due(now=now + outbox.LEASE) == 1  # the claimer died: due again


@pytest.mark.django_db(transaction=True)
def test_two_processes_delivering_at_once_send_each_message_once(world, receiver):
    box = receiver(delay=0.01)
    endpoint(world, box.url)
    for n in range(24):
        emit(world, entry={"n": n})
    start = threading.Barrier(3)
    counts: list[int] = []

    def deliver() -> None:
        try:
            start.wait(10)
            counts.append(outbox.deliver_due())
        finally:
            connection.close()

    threads = [threading.Thread(target=deliver) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)

    ids = [r.headers["webhook-id"] for r in box.requests]
    assert len(ids) == 24
    assert len(set(ids)) == 24
    assert sum(counts) == 24
    assert set(OutboxMessage.objects.values_list("attempts", flat=True)) == {1}
    print(f"{connection.vendor}: the three deliverers took {sorted(counts)} messages")


@pytest.mark.django_db(transaction=True)
def test_a_commit_starts_delivery_in_the_background(world, receiver, settings):
    settings.DOORKEEP_OUTBOX_KICK = True
    box = receiver()
    endpoint(world, box.url)

    emit(world)

    deadline = time.monotonic() + 10
    while not box.requests and time.monotonic() < deadline:
        time.sleep(0.02)
    assert len(box.requests) == 1
    assert json.loads(box.requests[0].body)["type"] == "guest.unlocked"
    while OutboxMessage.objects.filter(delivered_at__isnull=True).exists():
        assert time.monotonic() < deadline
        time.sleep(0.02)
    while outbox._running.locked():  # let the thread finish before the tables are emptied
        assert time.monotonic() < deadline
        time.sleep(0.02)


# --- addresses inside the platform's network ---------------------------------------------------


def test_a_name_that_resolves_to_a_private_address_is_refused_at_delivery(
    world, receiver, settings
):
    box = receiver()
    # A name, so nothing is refused when the endpoint is saved; at delivery
    # it resolves to the loopback address.
    hook = endpoint(world, box.url.replace("127.0.0.1", "localhost") + "/hooks")
    settings.DOORKEEP_OUTBOUND_PRIVATE_ADDRESSES = False
    emit(world)

    outbox.deliver_due()

    assert box.requests == []
    message = OutboxMessage.objects.get(webhook_endpoint=hook)
    assert message.status == "gave_up"  # it will not become a public address by waiting
    assert "private or reserved address" in message.last_error


@pytest.mark.parametrize(
    "url",
    [
        "http://10.0.0.5/hook",
        "http://127.0.0.1:8001/internal/ws",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]/hook",
        "http://[::ffff:192.168.1.1]/hook",
    ],
)
def test_a_private_address_is_refused_when_the_endpoint_is_saved(world, settings, url):
    from doorkeep.core.errors import InvalidInput

    settings.DOORKEEP_OUTBOUND_PRIVATE_ADDRESSES = False

    with pytest.raises(InvalidInput) as caught:
        endpoint(world, url)

    assert caught.value.code == "invalid_url"
    assert not WebhookEndpoint.objects.exists()


def test_public_addresses_are_public():
    from doorkeep.notify.outbound import is_public

    assert is_public("93.184.216.34") and is_public("2606:2800:220:1:248:1893:25c8:1946")
    assert not any(
        is_public(a) for a in ("10.1.2.3", "172.16.0.1", "192.168.0.1", "127.0.0.1", "::1")
    )
    unspecified = ".".join(["0"] * 4)  # the address, compared here, not bound to
    assert not any(is_public(a) for a in ("169.254.169.254", unspecified, "fe80::1", "fc00::1"))
    assert not is_public("::ffff:10.0.0.1") and not is_public("224.0.0.1")
