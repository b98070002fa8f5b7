"""Helpers shared by the web UI tests."""

from __future__ import annotations

import html
from typing import Any

from doorkeep.accounts.models import Organization
from doorkeep.keys.models import Credential, CredentialKind, Key, KeyCredential, Person
from doorkeep.locks.models import Lock
from doorkeep.locks.services import add_manufactured_lock

SECRET = "ABCD-EFGH-JKLM-NPQR"


def new_lock(serial: str, secret: str = SECRET) -> Lock:
    """A manufactured, unregistered lock (as tests.conftest.new_lock, which the
    web tests cannot import: tests/ is not a package)."""
    add_manufactured_lock(serial, claim_secret=secret)
    return Lock.objects.get(serial=serial)


def text(response: Any) -> str:
    """The response body as text, with HTML entities decoded."""
    return html.unescape(response.content.decode())


def bulk_keys(lock: Lock, organization: Organization, count: int, *, start: int = 0) -> None:
    """``count`` people, each with a tag and a live key on ``lock``, in a few queries."""
    people = Person.objects.bulk_create(
        Person(organization=organization, name=f"Holder {i:05d}", email=f"holder{i}@example.com")
        for i in range(start, start + count)
    )
    credentials = Credential.objects.bulk_create(
        Credential(person=p, kind=CredentialKind.TAG, lookup=f"{i:08X}", display=f"{i:08X}")
        for i, p in enumerate(people, start=start)
    )
    keys = Key.objects.bulk_create(
        Key(lock=lock, organization=organization, lock_owner=organization, person=p) for p in people
    )
    KeyCredential.objects.bulk_create(
        KeyCredential(key=k, credential=c, lock=lock, kind=c.kind, lookup=c.lookup)
        for k, c in zip(keys, credentials, strict=True)
    )
