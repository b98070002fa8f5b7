"""R26, E4: a guest's unlock notifies the resident who shared the entry, in
the app, by Web Push (decrypted here as the browser would) and by email if
chosen; integrators get signed webhooks; all written with the event."""

from __future__ import annotations

import contextlib
from datetime import timedelta
from typing import Any

import time_machine
from django.utils import timezone
from guest_helpers import GuestWorld
from notifyhelp import Browser
from standardwebhooks import Webhook

from doorkeep.events.models import Event
from doorkeep.gateway.remote import remote_unlock
from doorkeep.guests import services as guests
from doorkeep.notify import outbox
from doorkeep.notify.models import Notification, OutboxMessage
from doorkeep.notify.services import create_endpoint, set_preferences, subscribe_push


def test_a_guest_unlock_reaches_the_resident_everywhere(
    gw: GuestWorld, front_door: Any, receiver: Any, smtp: Any
) -> None:
    push_service, integrator = receiver(201), receiver(200)
    browser = Browser.new()
    subscribe_push(
        gw.rita,
        endpoint=push_service.url + "/push/rita",
        p256dh=browser.p256dh,
        auth=browser.auth,
        user_agent="Firefox",
    )
    set_preferences(gw.rita, email_guest_unlock=True)
    hook = create_endpoint(
        gw.w.alice, gw.w.org.pk, url=integrator.url + "/hooks", event_types=["guest.unlocked"]
    )
    invitation = gw.invite()
    guests.accept(gw.gina, invitation.pk)
    OutboxMessage.objects.all().delete()  # the invitation's own messages: not this test's
    Notification.objects.all().delete()

    unlocked = remote_unlock(gw.gina, gw.w.entry.pk)
    (note,) = Notification.objects.filter(user=gw.rita, kind="guest_unlock")
    assert note.title == "Gina Guest opened Front door"
    assert outbox.deliver_due() == 3  # push, email, webhook

    (pushed,) = push_service.requests
    assert browser.decrypt(pushed.body)["title"] == "Gina Guest opened Front door"
    mail = smtp.last_to("rita@example.com")
    assert "Gina Guest opened Front door" in str(mail["Subject"]) + mail.get_body().get_content()
    (delivery,) = integrator.requests
    body = Webhook(hook.secret).verify(delivery.body, delivery.headers)
    assert body["type"] == "guest.unlocked"
    assert body["data"]["guest"]["email"] == "gina@example.com"
    assert body["data"]["shared_by"]["email"] == "rita@example.com"
    assert body["data"]["entry"] == {"id": gw.w.entry.pk, "name": "Front door"}
    assert body["data"]["invitation_id"] == invitation.pk
    # The attempt's one record: the decision and what the lock did.
    assert (body["data"]["decision"], body["data"]["outcome"]) == ("granted", "opened")
    assert body["data"]["event_id"] == unlocked.event_id
    event = Event.objects.get(pk=unlocked.event_id)
    assert (event.kind, event.person.name, event.lock_outcome) == (
        "guest.unlocked",
        "Gina Guest",
        "opened",
    )
    assert not Event.objects.filter(kind="access.granted", actor=gw.gina).exists()


def test_a_failed_unlock_notifies_nobody(gw: GuestWorld, gateway: Any) -> None:
    from doorkeep.gateway.routing import LockOffline

    guests.accept(gw.gina, gw.invite().pk)
    Notification.objects.all().delete()
    with contextlib.suppress(LockOffline):
        remote_unlock(gw.gina, gw.w.entry.pk)  # the lock is not connected
    assert not Notification.objects.filter(kind="guest_unlock").exists()
    # One record of the attempt, with the guest's name, saying the door stayed shut.
    [attempt] = Event.objects.filter(actor=gw.gina, kind__in=("unlock.failed", "access.granted"))
    assert attempt.kind == "unlock.failed" and attempt.person.name == "Gina Guest"
    assert attempt.lock_outcome == "offline"


def test_the_resident_hears_of_answers_and_expiry(gw: GuestWorld, receiver: Any) -> None:
    integrator = receiver(200)
    hook = create_endpoint(gw.w.alice, gw.w.org.pk, url=integrator.url + "/hooks")
    accepted, ignored = gw.invite(), gw.invite("nobody@example.com")
    guests.accept(gw.gina, accepted.pk)
    titles = list(Notification.objects.filter(user=gw.rita).values_list("title", flat=True))
    assert titles == ["gina@example.com accepted your invitation"]
    with time_machine.travel(timezone.now() + timedelta(days=8)):
        assert guests.report_expired() == 1
        assert guests.report_expired() == 0  # once
        outbox.deliver_due()
        kinds = [
            Webhook(hook.secret).verify(r.body, r.headers)["type"] for r in integrator.requests
        ]
    assert Notification.objects.filter(
        user=gw.rita, title="Your invitation of nobody@example.com has expired"
    ).exists()
    assert sorted(kinds) == [
        "invitation.accepted",
        "invitation.expired",
        "invitation.sent",
        "invitation.sent",
    ]
    assert ignored.pk
