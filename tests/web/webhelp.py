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


def warm(client: Any) -> None:
    """Let a signed-in client's session be noted once (allauth's user sessions
    write it down on its first request, then only refresh it), so that the
    requests a test counts the queries of all cost the same."""
    if not getattr(client, "_doorkeep_warm", False):
        client.get("/sw.js")
        client._doorkeep_warm = True


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


def code(sku: str) -> str:
    """One fresh prepaid code for a product (MGMT-5Y, ORGS-5Y, KEYS-25, ORG-MGMT)."""
    from doorkeep.licensing.services import generate_batch

    _batch, (plain,) = generate_batch(None, sku, 1)
    return plain


def typo_of(plain: str) -> str:
    """The code with its first symbol mistyped: the check symbol catches it."""
    from doorkeep.licensing.codes import ALPHABET

    first = plain[0]
    other = ALPHABET[(ALPHABET.index(first) + 1) % len(ALPHABET)]
    return other + plain[1:]


def sharing_world(world: Any) -> tuple[Any, Organization, Key]:
    """Dora's agency with organization management, and a key to Alice's lock
    for it (Alice's lock gets 5-year management and the option first)."""
    from doorkeep.accounts.services import create_organization, create_user
    from doorkeep.keys.sharing import issue_key_to_organization
    from doorkeep.licensing.services import redeem_for_lock, redeem_for_organization

    redeem_for_lock(world.alice, world.lock.pk, code("MGMT-5Y"))
    redeem_for_lock(world.alice, world.lock.pk, code("ORGS-5Y"))
    dora = create_user("dora@example.com", "long enough password", name="Dora Agent")
    agency = create_organization(dora, "Dora's Agency")
    redeem_for_organization(dora, agency.pk, code("ORG-MGMT"))
    org_key = issue_key_to_organization(world.alice, world.lock.pk, agency.pk)
    return dora, agency, org_key
