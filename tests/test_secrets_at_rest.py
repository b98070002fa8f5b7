"""Secrets the platform must read again (panel seeds and tag keys, webhook
signing secrets) are stored encrypted with DOORKEEP_ENCRYPTION_KEYS; the data
migration encrypts those stored plain before; `doorkeep rotate-keys`
re-encrypts them all with a new first key."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from django.core.exceptions import ImproperlyConfigured
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from doorkeep import env
from doorkeep.cli import main
from doorkeep.core import crypto
from doorkeep.guests import presence, tags
from doorkeep.guests.models import Panel
from doorkeep.notify.models import PushSubscription, WebhookEndpoint
from doorkeep.notify.services import create_endpoint, subscribe_push


def stored(table: str, column: str, pk: int) -> str:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {column} FROM {table} WHERE id = %s", [pk])  # noqa: S608
        value: str = cursor.fetchone()[0]
    return value


@pytest.fixture
def webhook(world: Any) -> WebhookEndpoint:
    return create_endpoint(world.alice, world.org.pk, url="https://hooks.example/doorkeep")


def test_a_webhook_secret_is_stored_encrypted_and_read_back_plain(
    webhook: WebhookEndpoint,
) -> None:
    assert webhook.secret.startswith("whsec_")
    raw = stored("notify_webhookendpoint", "secret", webhook.pk)
    assert raw.startswith("enc1:") and webhook.secret not in raw
    assert WebhookEndpoint.objects.get(pk=webhook.pk).secret == webhook.secret


def test_a_panel_seed_is_stored_encrypted(world: Any) -> None:
    panel, secret = presence.add_panel(world.alice, world.entry.pk, "Lobby")
    raw = stored("guests_panel", "secret", panel.pk)
    assert raw.startswith("enc1:") and secret not in raw
    assert Panel.objects.get(pk=panel.pk).secret == secret


def push_subscription(world: Any) -> PushSubscription:
    point = ec.generate_private_key(ec.SECP256R1()).public_key()
    p256dh = base64.urlsafe_b64encode(
        point.public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
    ).decode()
    auth = base64.urlsafe_b64encode(bytes(range(16))).decode().rstrip("=")
    sub, _created = subscribe_push(
        world.alice, endpoint="https://push.example/alice", p256dh=p256dh, auth=auth
    )
    return sub


def test_a_push_subscriptions_auth_secret_is_stored_encrypted(world: Any) -> None:
    sub = push_subscription(world)
    auth = sub.auth
    raw = stored("notify_pushsubscription", "auth", sub.pk)
    assert raw.startswith("enc1:") and auth not in raw
    assert PushSubscription.objects.get(pk=sub.pk).auth == auth


@pytest.fixture
def keys(settings: Any) -> Iterator[list[str]]:
    """Two keys: the old one (in use) and the new one."""
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.DOORKEEP_ENCRYPTION_KEYS = [old]
    yield [old, new]


def test_rotating_re_encrypts_every_secret_with_the_new_key(
    world: Any, keys: list[str], settings: Any, capsys: Any
) -> None:
    old, new = keys
    webhook = create_endpoint(world.alice, world.org.pk, url="https://hooks.example/doorkeep")
    panel, seed = presence.add_panel(world.alice, world.entry.pk, "Lobby")
    tag_panel, tag_keys = tags.add_tag_panel(world.alice, world.entry.pk, "Tag")
    before = stored("guests_panel", "secret", panel.pk)

    settings.DOORKEEP_ENCRYPTION_KEYS = [new]  # the old key removed too early
    with pytest.raises(crypto.SecretUnreadable, match="put back the key"):
        WebhookEndpoint.objects.get(pk=webhook.pk)
    assert main(["rotate-keys"]) == 2
    assert "cannot be decrypted" in capsys.readouterr().err

    settings.DOORKEEP_ENCRYPTION_KEYS = [new, old]
    assert main(["rotate-keys"]) == 0
    out = capsys.readouterr().out
    assert "guests.Panel: 2 row(s) re-encrypted" in out
    assert "notify.WebhookEndpoint: 1 row(s) re-encrypted" in out
    assert "notify.PushSubscription: 0 row(s) re-encrypted" in out
    assert stored("guests_panel", "secret", panel.pk) != before

    settings.DOORKEEP_ENCRYPTION_KEYS = [new]  # now the old key can go
    assert WebhookEndpoint.objects.get(pk=webhook.pk).secret == webhook.secret
    assert Panel.objects.get(pk=panel.pk).secret == seed
    assert Panel.objects.get(pk=tag_panel.pk).sdm_file_read_key == tag_keys.sdm_file_read_key


def test_a_new_key_is_printed_for_the_operator(db: None, capsys: Any) -> None:
    assert main(["rotate-keys", "--new-key"]) == 0
    Fernet(capsys.readouterr().out.strip())  # a valid key


@pytest.mark.django_db(transaction=True)
def test_the_migration_encrypts_secrets_stored_plain_before(world: Any) -> None:
    before = [
        ("guests", "0002_invitation_expiry_reported_at"),
        ("notify", "0003_badges_installations_portal"),
    ]
    executor = MigrationExecutor(connection)
    latest = executor.loader.graph.leaf_nodes()
    try:
        webhook = create_endpoint(world.alice, world.org.pk, url="https://hooks.example/doorkeep")
        panel, seed = presence.add_panel(world.alice, world.entry.pk, "Lobby")
        sub = push_subscription(world)
        executor.migrate(before)
        # Going back stores them plain, as the code before stored them.
        assert stored("notify_webhookendpoint", "secret", webhook.pk) == webhook.secret
        assert stored("guests_panel", "secret", panel.pk) == seed
        assert stored("notify_pushsubscription", "auth", sub.pk) == sub.auth
        executor = MigrationExecutor(connection)
        executor.loader.build_graph()
        executor.migrate(latest)
    finally:
        MigrationExecutor(connection).migrate(
            MigrationExecutor(connection).loader.graph.leaf_nodes()
        )
    assert stored("notify_webhookendpoint", "secret", webhook.pk).startswith("enc1:")
    assert stored("guests_panel", "secret", panel.pk).startswith("enc1:")
    assert WebhookEndpoint.objects.get(pk=webhook.pk).secret == webhook.secret
    assert Panel.objects.get(pk=panel.pk).secret == seed
    assert stored("notify_pushsubscription", "auth", sub.pk).startswith("enc1:")
    assert PushSubscription.objects.get(pk=sub.pk).auth == sub.auth


# --- the setting ------------------------------------------------------------------------


def test_development_generates_and_keeps_a_key(monkeypatch: Any, tmp_path: Path) -> None:
    monkeypatch.delenv("DOORKEEP_ENCRYPTION_KEYS", raising=False)
    first = env.encryption_keys(tmp_path, production=False)
    assert env.encryption_keys(tmp_path, production=False) == first and len(first) == 1
    assert (tmp_path / "encryption_key").stat().st_mode & 0o777 == 0o600


def test_production_requires_keys_and_refuses_a_malformed_one(
    monkeypatch: Any, tmp_path: Path
) -> None:
    monkeypatch.delenv("DOORKEEP_ENCRYPTION_KEYS", raising=False)
    with pytest.raises(ImproperlyConfigured, match="DOORKEEP_ENCRYPTION_KEYS is not set"):
        env.encryption_keys(tmp_path, production=True)
    good = Fernet.generate_key().decode()
    monkeypatch.setenv("DOORKEEP_ENCRYPTION_KEYS", f"{good}, not-a-key")
    with pytest.raises(ImproperlyConfigured, match="key 2 is not a Fernet key"):
        env.encryption_keys(tmp_path, production=True)
    monkeypatch.setenv("DOORKEEP_ENCRYPTION_KEYS", f" {good} ,")
    assert env.encryption_keys(tmp_path, production=True) == [good]


def test_a_value_that_looks_encrypted_is_encrypted_all_the_same(db):
    """What is saved is always sealed: a given "enc1:..." kept as it is would be
    unreadable, and every read of its row would fail."""
    from django.db import connection

    from doorkeep.accounts.services import create_user
    from doorkeep.notify.models import PushSubscription

    user = create_user("pat@example.com", "correct horse battery staple")
    row = PushSubscription.objects.create(
        user=user, endpoint="https://push.example/x", p256dh="k", auth="enc1:AAAAAAAAAAAAAAAAAA=="
    )
    assert PushSubscription.objects.get(pk=row.pk).auth == "enc1:AAAAAAAAAAAAAAAAAA=="
    with connection.cursor() as cursor:
        cursor.execute("SELECT auth FROM notify_pushsubscription WHERE id = %s", [row.pk])
        stored = cursor.fetchone()[0]
    assert stored.startswith("enc1:") and stored != "enc1:AAAAAAAAAAAAAAAAAA=="


def test_a_push_subscription_whose_auth_is_not_base64url_is_refused(db):
    import pytest

    from doorkeep.accounts.services import create_user
    from doorkeep.core.errors import InvalidInput
    from doorkeep.notify.services import _b64url

    create_user("pat@example.com", "correct horse battery staple")
    with pytest.raises(InvalidInput):
        _b64url("enc1:AAAAAAAAAAAAAAAAAA==", "auth")
    assert len(_b64url("AAAAAAAAAAAAAAAAAAAAAA", "auth")) == 16


def test_an_empty_list_of_encryption_keys_is_refused_in_production(tmp_path, monkeypatch):
    import pytest
    from django.core.exceptions import ImproperlyConfigured

    from doorkeep.env import encryption_keys

    monkeypatch.setenv("DOORKEEP_ENCRYPTION_KEYS", " , ")
    with pytest.raises(ImproperlyConfigured):
        encryption_keys(tmp_path, production=True)
