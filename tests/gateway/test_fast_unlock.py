"""The WSGI front door for POST /api/v1/entries/{id}/unlock (doorkeep/api/fast.py)
gives the endpoint's answers: each case is asked of the application that
``doorkeep serve`` runs (doorkeep.wsgi) and of Django alone, against a real
gateway with a simulated lock, and the two answers are compared."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest
from gateway_helpers import DEVICE_SECRET

from doorkeep.accounts.services import create_token, revoke_token
from doorkeep.api import fast
from doorkeep.events.models import Event, EventKind
from doorkeep.gateway.services import set_device_secret
from doorkeep.keys.services import CredentialSpec, HolderSpec, KeySpec, issue_key, revoke_key
from doorkeep.locks.services import add_manufactured_lock, register_lock

# Headers that differ between any two answers.
VARYING = {"date", "server"}


class Answer:
    def __init__(self, status: str, headers: list[tuple[str, str]], body: bytes) -> None:
        self.status_line = status
        self.status = int(status.split()[0])
        self.headers = {name.lower(): value for name, value in headers}
        self.body = body

    def json(self) -> dict[str, Any]:
        return json.loads(self.body)

    def comparable(self) -> tuple[int, dict[str, str], dict[str, Any]]:
        body = self.json()
        body.pop("request_id", None)
        headers = {k: v for k, v in self.headers.items() if k not in VARYING}
        return self.status, headers, body


def call(app: Any, path: str, *, method: str = "POST", **headers: str) -> Answer:
    body = b"{}"
    environ: dict[str, Any] = {
        "REQUEST_METHOD": method,
        "PATH_INFO": path,
        "SCRIPT_NAME": "",
        "QUERY_STRING": "",
        "SERVER_NAME": "testserver",
        "SERVER_PORT": "80",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "CONTENT_TYPE": "application/json",
        "CONTENT_LENGTH": str(len(body)),
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(body),
        "wsgi.errors": io.StringIO(),
        "wsgi.multithread": True,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
    }
    for name, value in headers.items():
        environ[f"HTTP_{name.upper()}"] = value
    seen: dict[str, Any] = {}

    def start_response(status: str, response_headers: list[tuple[str, str]], *_: Any) -> None:
        seen["status"], seen["headers"] = status, response_headers

    chunks = app(environ, start_response)
    try:
        content = b"".join(chunks)
    finally:
        if hasattr(chunks, "close"):
            chunks.close()
    return Answer(seen["status"], seen["headers"], content)


@pytest.fixture
def apps() -> tuple[Any, Any]:
    """The served application (front door + Django, without the request ids
    that wrap both) and Django alone."""
    from doorkeep import wsgi

    assert isinstance(wsgi.front_door, fast.FastUnlock) and wsgi.front_door.enabled
    assert wsgi.application.app is wsgi.front_door
    return wsgi.front_door, wsgi.django_application


@pytest.fixture
def answered_by(monkeypatch) -> list[str]:
    """Which of the two answered each call: "fast" or "django"."""
    seen: list[str] = []
    original_unlock = fast.FastUnlock._unlock

    def spy(self, *args, **kwargs):
        answer = original_unlock(self, *args, **kwargs)
        seen.append("fast" if answer is not None else "django")
        return answer

    monkeypatch.setattr(fast.FastUnlock, "_unlock", spy)
    return seen


def both(apps, path: str, **headers: str) -> tuple[Answer, Answer]:
    served, django_only = apps
    return call(served, path, **headers), call(django_only, path, **headers)


def bearer(user) -> str:
    return f"Bearer {create_token(user, 'test')[1]}"


def test_an_unlock_is_answered_in_front_of_django_as_django_answers_it(
    world, alice_lock, gateway, apps, answered_by
):
    device = gateway.lock(alice_lock.serial)
    gateway.run(device.connect())
    path = f"/api/v1/entries/{world.entry.pk}/unlock"

    fast_answer, django_answer = both(apps, path, authorization=bearer(world.alice))

    assert answered_by == ["fast"]
    assert fast_answer.status == 200, fast_answer.body
    assert fast_answer.comparable() == django_answer.comparable()
    body = fast_answer.json()
    assert body["opened"] is True and body["lock_id"] == alice_lock.pk
    assert len(body["request_id"]) == 32
    assert body["request_id"] != django_answer.json()["request_id"]
    assert fast_answer.headers["x-frame-options"] == "DENY"
    assert fast_answer.headers["x-content-type-options"] == "nosniff"
    assert int(fast_answer.headers["content-length"]) == len(fast_answer.body)
    # Both opened the lock, and both attempts are in the log, the same way.
    assert len(device.opened) == 2
    granted = Event.objects.filter(lock=alice_lock, kind=EventKind.ACCESS_GRANTED)
    assert granted.count() == 2
    assert {e.data["source"] for e in granted} == {"remote"}
    assert {e.actor_id for e in granted} == {world.alice.pk}


def test_an_offline_lock_and_a_refusal_answer_as_django_does(
    world, alice_lock, gateway, apps, answered_by
):
    path = f"/api/v1/entries/{world.entry.pk}/unlock"
    token = bearer(world.alice)

    offline = both(apps, path, authorization=token)
    assert offline[0].status == 503 and offline[0].json()["code"] == "lock_offline"
    assert offline[0].comparable() == offline[1].comparable()

    device = gateway.lock(alice_lock.serial)
    device.refuse_unlocks = True
    gateway.run(device.connect())
    refused = both(apps, path, authorization=token)
    assert refused[0].status == 409 and refused[0].json()["code"] == "lock_refused"
    assert refused[0].comparable() == refused[1].comparable()

    assert answered_by == ["fast", "fast"]
    failed = Event.objects.filter(lock=alice_lock, kind=EventKind.UNLOCK_FAILED)
    assert sorted(failed.values_list("reason", flat=True)) == [
        "lock_offline",
        "lock_offline",
        "lock_refused",
        "lock_refused",
    ]


def test_a_taken_back_key_is_refused_with_the_reason_in_the_asked_language(
    world, alice_lock, gateway, apps, answered_by
):
    key = alice_lock.keys.get(person__name="Alice")
    revoke_key(world.alice, key.pk)
    path = f"/api/v1/entries/{world.entry.pk}/unlock"
    token = bearer(world.alice)

    english = both(apps, path, authorization=token)
    french = both(apps, path, authorization=token, accept_language="fr-FR,fr;q=0.9")

    assert english[0].status == 403 and english[0].json()["code"] == "access_denied"
    assert "taken back" in english[0].json()["message"]
    assert english[0].comparable() == english[1].comparable()
    assert french[0].headers["content-language"] == "fr"
    assert french[0].comparable() == french[1].comparable()
    denied = Event.objects.filter(lock=alice_lock, kind=EventKind.ACCESS_DENIED, reason="revoked")
    assert denied.count() == 4


def test_unknown_entries_and_other_tenants_entries_answer_404(
    world, alice_lock, gateway, apps, answered_by
):
    for user, entry_id in ((world.alice, 999_999), (world.charlie, world.entry.pk)):
        answers = both(apps, f"/api/v1/entries/{entry_id}/unlock", authorization=bearer(user))
        assert answers[0].status == 404, answers[0].body
        assert answers[0].comparable() == answers[1].comparable()
        assert world.entry.name not in answers[0].body.decode()
    assert not Event.objects.filter(actor=world.charlie).exists()


def test_calls_it_does_not_answer_go_to_django(world, alice_lock, gateway, apps, answered_by):
    served, _django = apps
    path = f"/api/v1/entries/{world.entry.pk}/unlock"
    row, token = create_token(world.alice, "soon revoked")
    revoke_token(world.alice, row.pk)

    no_token = call(served, path)
    wrong = call(served, path, authorization="Bearer dk_not-a-token")
    revoked = call(served, path, authorization=f"Bearer {token}")
    other_method = call(served, path, method="GET", authorization=bearer(world.alice))
    huge_id = call(served, f"/api/v1/entries/{2**64}/unlock", authorization=bearer(world.alice))

    assert [a.status for a in (no_token, wrong, revoked)] == [401, 401, 401]
    assert {a.json()["code"] for a in (no_token, wrong, revoked)} == {"unauthorized"}
    assert other_method.status == 405 and other_method.json()["code"] == "method_not_allowed"
    assert huge_id.status == 422 and huge_id.json()["code"] == "validation_error"
    # Only the two unknown tokens were looked at by the front door, and handed on.
    assert answered_by == ["django", "django"]
    attempts = (EventKind.ACCESS_GRANTED, EventKind.ACCESS_DENIED, EventKind.UNLOCK_FAILED)
    assert not Event.objects.filter(lock=alice_lock, kind__in=attempts).exists()


def test_the_web_uis_session_still_opens_through_django(
    world, alice_lock, gateway, apps, answered_by
):
    served, _django = apps
    device = gateway.lock(alice_lock.serial)
    gateway.run(device.connect())
    session = world.client(world.alice).cookies["sessionid"].value
    csrf = "a" * 32  # a CSRF secret: the cookie and the header carry it

    answer = call(
        served,
        f"/api/v1/entries/{world.entry.pk}/unlock",
        cookie=f"sessionid={session}; csrftoken={csrf}",
        x_csrftoken=csrf,
    )

    assert answer.status == 200, answer.body
    assert answered_by == []
    assert len(device.opened) == 1


def test_it_can_be_switched_off(settings):
    settings.DOORKEEP_FAST_UNLOCK = False
    assert not fast.FastUnlock(lambda e, s: []).enabled


def test_https_only_a_plain_call_is_djangos_to_redirect_a_secure_one_gets_hsts_as_from_django(
    world, alice_lock, gateway, settings, answered_by
):
    """Production's defaults (HTTPS redirect, HSTS) keep the front door in
    use, with the answers SecurityMiddleware would give."""
    from django.core.handlers.wsgi import WSGIHandler

    settings.SECURE_SSL_REDIRECT = True
    settings.SECURE_HSTS_SECONDS = 3600
    settings.SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    django_only = WSGIHandler()  # its middleware read the settings above
    served = fast.FastUnlock(django_only)
    device = gateway.lock(alice_lock.serial)
    gateway.run(device.connect())
    path = f"/api/v1/entries/{world.entry.pk}/unlock"
    token = bearer(world.alice)

    plain = call(served, path, authorization=token)
    assert plain.status == 301 and plain.headers["location"].startswith("https://")
    assert answered_by == []  # Django redirected; nothing opened
    secure = call(served, path, authorization=token, x_forwarded_proto="https")
    from_django = call(django_only, path, authorization=token, x_forwarded_proto="https")
    assert answered_by == ["fast"]
    assert secure.status == 200, secure.body
    assert secure.comparable() == from_django.comparable()
    assert secure.headers["strict-transport-security"] == "max-age=3600; includeSubDomains"
    assert len(device.opened) == 2


def test_a_host_django_refuses_is_refused_by_the_front_door_too(
    world, alice_lock, gateway, apps, answered_by
):
    device = gateway.lock(alice_lock.serial)
    gateway.run(device.connect())
    path = f"/api/v1/entries/{world.entry.pk}/unlock"

    fast_answer, django_answer = both(
        apps, path, authorization=bearer(world.alice), host="evil.example"
    )

    assert django_answer.status == 400  # DisallowedHost (ALLOWED_HOSTS)
    assert fast_answer.status == 400
    assert answered_by == []
    assert device.opened == []
    assert not Event.objects.filter(lock=alice_lock, kind=EventKind.ACCESS_GRANTED).exists()


def test_the_bearer_header_is_read_as_ninja_reads_it(world, alice_lock, gateway, apps, answered_by):
    device = gateway.lock(alice_lock.serial)
    gateway.run(device.connect())
    path = f"/api/v1/entries/{world.entry.pk}/unlock"
    sloppy = bearer(world.alice).replace("Bearer ", "Bearer  ")  # two spaces

    fast_answer, django_answer = both(apps, path, authorization=sloppy)

    assert django_answer.status == 401  # Ninja's token is " dk_...": unknown
    assert fast_answer.comparable() == django_answer.comparable()
    assert device.opened == []


def test_an_unexpected_failure_is_a_json_500_logged_as_django_logs_it(
    world, alice_lock, apps, monkeypatch, caplog
):
    from doorkeep.gateway import remote

    def broken(*args, **kwargs):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(remote, "remote_unlock", broken)
    served, _django = apps

    answer = call(
        served, f"/api/v1/entries/{world.entry.pk}/unlock", authorization=bearer(world.alice)
    )

    assert answer.status == 500
    assert answer.json()["code"] == "server_error"
    assert "disk on fire" not in answer.body.decode()
    logged = [r for r in caplog.records if r.name == "django.request"]
    assert logged and logged[-1].levelname == "ERROR" and logged[-1].exc_info


def test_an_entry_whose_first_lock_is_offline_opens_the_other_as_django_does(
    world, alice_lock, gateway, apps, answered_by
):
    # A second lock at the same entry, online; the first (alice_lock) is offline.
    add_manufactured_lock("DK-TEST-0009", claim_secret="ABCD-EFGH-JKLM-NPQR")
    inner = register_lock(
        world.alice,
        serial="DK-TEST-0009",
        claim_secret="ABCD-EFGH-JKLM-NPQR",
        entry_id=world.entry.pk,
        name="Inner reader",
    )
    set_device_secret(inner, DEVICE_SECRET)
    issue_key(
        world.alice,
        inner.pk,
        KeySpec(HolderSpec(name="Alice", email="alice@example.com"), [CredentialSpec("phone")]),
    )
    device = gateway.lock(inner.serial)
    gateway.run(device.connect())
    path = f"/api/v1/entries/{world.entry.pk}/unlock"

    fast_answer, django_answer = both(apps, path, authorization=bearer(world.alice))

    assert answered_by == ["fast"]
    assert fast_answer.status == 200, fast_answer.body
    assert fast_answer.comparable() == django_answer.comparable()
    assert fast_answer.json()["lock_ids"] == [inner.pk]
    assert len(device.opened) == 2
    attempts = Event.objects.filter(lock__entry=world.entry, kind__startswith="access.")
    assert [(e.kind, e.lock_outcome) for e in attempts] == [("access.granted", "opened")] * 2
    for attempt in attempts:
        assert attempt.lock_id == inner.pk
        assert {(x["lock_id"], x["outcome"]) for x in attempt.data["locks"]} == {
            (alice_lock.pk, "offline"),
            (inner.pk, "opened"),
        }
