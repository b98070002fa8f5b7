"""The base of every test: three people and a lock.

- alice: lock owner of "Alice Locks", which has building management (R12),
  a property, two entries and a registered lock (``world.lock``) at the
  first entry.
- bob: a plain member of Alice's organization (may look, not change).
- charlie: lock owner of his own organization (without building management,
  one property with one entry); an outsider to Alice's, who must see nothing
  of it (every endpoint answers him 404).
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from email import policy as email_policy
from email.message import EmailMessage
from email.parser import BytesParser
from typing import Any

import pytest
from django.test import Client

from doorkeep.accounts.models import Organization, Role, User
from doorkeep.accounts.services import create_organization, create_token, create_user
from doorkeep.licensing.services import activate_building_management
from doorkeep.locks.models import Lock
from doorkeep.locks.services import add_manufactured_lock, register_lock
from doorkeep.properties.models import Entry, Property
from doorkeep.properties.services import add_entry, create_property

PASSWORD = "correct horse battery staple"


@dataclass
class World:
    alice: User
    bob: User
    charlie: User
    org: Organization
    charlie_org: Organization
    prop: Property
    entry: Entry
    entry2: Entry
    lock: Lock
    charlie_prop: Property
    charlie_entry: Entry

    def client(self, user: User | None) -> Client:
        client = Client()
        if user is not None:
            client.force_login(user)
        return client

    def bearer(self, user: User) -> Client:
        _row, token = create_token(user, "test")
        return Client(headers={"authorization": f"Bearer {token}"})


@pytest.fixture(autouse=True)
def _keep_migration_data(django_db_serialized_rollback: None) -> None:
    """A transactional test empties the tables when it ends, taking the data
    that migrations put there (the product catalogue) with it. With serialized
    rollback the next transactional test puts it back first. It has no effect
    on ordinary tests, which roll back instead."""


@pytest.fixture(autouse=True)
def _fast_hashing_and_fresh_cache(settings: object) -> Iterator[None]:
    from django.core.cache import cache

    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # type: ignore[attr-defined]
    # Tests deliver notifications by calling outbox.deliver_due themselves.
    settings.DOORKEEP_OUTBOX_KICK = False  # type: ignore[attr-defined]
    # The operators and staff of the tests sign in with a password only;
    # tests/services/test_two_factor.py holds them to a second factor.
    settings.DOORKEEP_TWO_FACTOR_FOR_OPERATORS = False  # type: ignore[attr-defined]
    # allauth keeps its rate limits in Django's cache: the database's in
    # production, one in memory here (emptied for each test, with or without
    # a database); tests/test_limits_shared.py runs it on the database.
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}  # type: ignore[attr-defined]
    cache.clear()
    yield
    cache.clear()


def new_lock(serial: str, secret: str = "ABCD-EFGH-JKLM-NPQR") -> Lock:
    add_manufactured_lock(serial, claim_secret=secret)
    return Lock.objects.get(serial=serial)


@pytest.fixture
def world(db: None) -> Iterator[World]:
    alice = create_user("alice@example.com", PASSWORD, name="Alice Owner")
    bob = create_user("bob@example.com", PASSWORD, name="Bob Member")
    charlie = create_user("charlie@example.com", PASSWORD, name="Charlie Outsider")
    org = create_organization(alice, "Alice Locks")
    from doorkeep.accounts.models import Membership

    Membership.objects.create(user=bob, organization=org, role=Role.MEMBER)
    charlie_org = create_organization(charlie, "Charlie Locks")
    # Several entries per property, managers, guest sharing and panels need it.
    org = activate_building_management(alice, org.pk)
    prop = create_property(alice, org.pk, name="Canal House", address="Keizersgracht 1")
    entry = add_entry(alice, prop.pk, name="Front door")
    entry2 = add_entry(alice, prop.pk, name="Garage")
    new_lock("DK-TEST-0001")
    lock = register_lock(
        alice,
        serial="DK-TEST-0001",
        claim_secret="ABCD-EFGH-JKLM-NPQR",
        entry_id=entry.pk,
        name="Front door lock",
    )
    charlie_prop = create_property(charlie, charlie_org.pk, name="Charlie's Shed")
    charlie_entry = add_entry(charlie, charlie_prop.pk, name="Shed door")
    yield World(
        alice,
        bob,
        charlie,
        org,
        charlie_org,
        prop,
        entry,
        entry2,
        lock,
        charlie_prop,
        charlie_entry,
    )


@dataclass
class Mailbox:
    """What a real SMTP server (aiosmtpd, on a free local port) received."""

    messages: list[EmailMessage]

    def to(self, address: str) -> list[EmailMessage]:
        return [m for m in self.messages if address.lower() in str(m["To"]).lower()]

    def last_to(self, address: str) -> EmailMessage:
        found = self.to(address)
        assert found, f"no message to {address}; got {[str(m['To']) for m in self.messages]}"
        return found[-1]


class _Collect:
    def __init__(self, box: Mailbox) -> None:
        self.box = box

    async def handle_DATA(self, server: object, session: object, envelope: Any) -> str:
        message = BytesParser(policy=email_policy.default).parsebytes(envelope.content)
        self.box.messages.append(message)  # type: ignore[arg-type]
        return "250 Message accepted for delivery"


@pytest.fixture
def smtp(settings: Any) -> Iterator[Mailbox]:
    """A real SMTP conversation: Django's SMTP backend talks to an aiosmtpd
    server for the length of the test."""
    from aiosmtpd.controller import Controller

    box = Mailbox([])
    with socket.socket() as probe:  # a free port (aiosmtpd checks the port it is given)
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    # aiosmtpd reports every connection at INFO from its own thread, even the
    # one it opens to itself on start; such a record can land while pytest
    # swaps its log capture between phases ("I/O operation on closed file").
    chatter = logging.getLogger("mail.log")
    level = chatter.level
    chatter.setLevel(logging.WARNING)
    controller = Controller(_Collect(box), hostname="127.0.0.1", port=port)
    controller.start()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = "127.0.0.1"
    settings.EMAIL_PORT = port
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
    settings.EMAIL_HOST_USER = settings.EMAIL_HOST_PASSWORD = ""
    try:
        yield box
    finally:
        controller.stop()
        chatter.setLevel(level)
