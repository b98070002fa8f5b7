"""Shared set-up for the benchmarks: a throw-away database, Django, and a small
world (owner, organization, property, entries, locks) made through the real
services. Keys in bulk are written straight to the tables, in the same shape
as ``keys.services.issue_key`` writes them.

Every benchmark is a script: ``.venv/bin/python bench/NAME.py [--postgres]``.
By default the database is a fresh SQLite file in a temporary directory; with
``--postgres`` a database ``doorkeep_bench_<pid>`` is created on
``BENCH_POSTGRES_URL`` (default postgres://postgres@127.0.0.1:5432) and
dropped at the end.
"""

from __future__ import annotations

import atexit
import json
import os
import random
import shutil
import signal
import statistics
import sys
import tempfile
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PG_SERVER = os.environ.get("BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432")
PASSWORD = "correct horse battery staple"
CLAIM_SECRET = "ABCD-EFGH-JKLM-NPQR"

if str(ROOT / "src") not in sys.path:
    sys.path.insert(0, str(ROOT / "src"))


def postgres_reachable() -> bool:
    try:
        import psycopg

        with psycopg.connect(f"{PG_SERVER}/postgres", connect_timeout=3):
            return True
    except Exception:
        return False


@dataclass
class Database:
    backend: str  # "sqlite" or "postgresql"
    tempdir: Path
    pg_name: str = ""
    _closed: bool = field(default=False, repr=False)

    @property
    def label(self) -> str:
        return "SQLite" if self.backend == "sqlite" else "PostgreSQL"

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            from django.db import connections

            connections.close_all()
        except Exception:  # noqa: S110 - best effort at exit
            pass
        if self.pg_name:
            import psycopg

            with psycopg.connect(f"{PG_SERVER}/postgres", autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{self.pg_name}" WITH (FORCE)')
        shutil.rmtree(self.tempdir, ignore_errors=True)


def setup(*, postgres: bool = False, pg_name: str = "") -> Database:
    """Create the throw-away database, set up Django and migrate. Call before
    importing any model. ``pg_name`` names the PostgreSQL database
    (default ``doorkeep_bench_<pid>``)."""
    tempdir = Path(tempfile.mkdtemp(prefix="doorkeep-bench-"))
    for name in ("DATABASE_URL", "SECRET_KEY", "SECRET_KEY_FILE", "EMAIL_URL", "DEBUG"):
        os.environ.pop(name, None)
    os.environ["DOORKEEP_DATA_DIR"] = str(tempdir)
    os.environ["DOORKEEP_ENV"] = "development"
    os.environ["LOG_LEVEL"] = "WARNING"
    os.environ["DJANGO_SETTINGS_MODULE"] = "doorkeep.settings"
    db = Database("postgresql" if postgres else "sqlite", tempdir)
    if postgres:
        import psycopg

        db.pg_name = pg_name or f"doorkeep_bench_{os.getpid()}"
        with psycopg.connect(f"{PG_SERVER}/postgres", autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{db.pg_name}"')
            conn.execute(f'CREATE DATABASE "{db.pg_name}"')
        os.environ["DATABASE_URL"] = f"{PG_SERVER}/{db.pg_name}"
    atexit.register(db.close)
    # On SIGTERM exit normally, so that atexit drops the throw-away database.
    signal.signal(signal.SIGTERM, lambda _sig, _frame: sys.exit(143))

    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command

    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.DEBUG = False
    call_command("migrate", verbosity=0)
    return db


@dataclass
class World:
    owner: Any
    org: Any
    prop: Any
    locks: list[Any]


def make_world(locks: int = 1, *, tz: str = "Europe/Amsterdam") -> World:
    """An owner with an organization, one property, and ``locks`` registered
    locks, each at its own entry; all through the real services."""
    from doorkeep.accounts.services import create_organization, create_user
    from doorkeep.licensing.services import activate_building_management
    from doorkeep.locks.models import Lock
    from doorkeep.locks.services import add_manufactured_lock, register_lock
    from doorkeep.properties.services import add_entry, create_property

    owner = create_user("owner@example.com", PASSWORD, name="Olivia Owner")
    org = create_organization(owner, "Bench Locks")
    org = activate_building_management(owner, org.pk)  # several entries at one property
    prop = create_property(owner, org.pk, name="Bench House", address="Damrak 1", tz=tz)
    registered = []
    for n in range(1, locks + 1):
        entry = add_entry(owner, prop.pk, name=f"Door {n}")
        serial = f"DK-BENCH-{n:04d}"
        add_manufactured_lock(serial, claim_secret=CLAIM_SECRET)
        register_lock(
            owner, serial=serial, claim_secret=CLAIM_SECRET, entry_id=entry.pk, name=f"Lock {n}"
        )
        registered.append(
            Lock.objects.select_related("entry", "entry__property", "organization").get(
                serial=serial
            )
        )
    return World(owner, org, prop, registered)


@dataclass
class Holder:
    """A key made by ``bulk_keys`` and the plain credentials that go with it."""

    person_id: int
    key_id: int
    name: str
    pin: str
    tag: str  # "" when the holder has no tag
    revoked: bool
    schedule: list[dict[str, Any]] | None


def bulk_keys(
    world: World,
    lock: Any,
    count: int,
    *,
    revoked: bool = False,
    schedule: list[dict[str, Any]] | None = None,
    tag_share: float = 0.5,
    used_pins: set[str] | None = None,
    rng: random.Random | None = None,
    prefix: str = "holder",
) -> list[Holder]:
    """Create ``count`` keys on ``lock`` with bulk_create: a Person, a PIN
    credential (and for ``tag_share`` of them an RFID tag), the Key and its
    KeyCredential rows, the lock's credential version and a key.issued event per
    key: what ``issue_key`` writes, without its per-key checks. With
    ``revoked`` the keys are taken back (as ``revoke_key`` leaves them)."""
    from django.db import transaction
    from django.db.models import F
    from django.utils import timezone

    from doorkeep.events.models import Event, EventKind
    from doorkeep.keys.credentials import device_lookup, pin_digest
    from doorkeep.keys.models import Credential, CredentialKind, Key, KeyCredential, Person
    from doorkeep.locks.models import Lock

    rng = rng or random.Random(1)
    serial = lock.serial
    used = used_pins if used_pins is not None else set()
    now = timezone.now()
    pins: list[str] = []
    while len(pins) < count:
        pin = f"{rng.randrange(10**6):06d}"
        if pin not in used:
            used.add(pin)
            pins.append(pin)
    tags = [
        f"04{rng.randrange(16**12):012X}" if rng.random() < tag_share else "" for _ in range(count)
    ]
    start = Person.objects.filter(organization=world.org).count()
    with transaction.atomic():
        people = Person.objects.bulk_create(
            [
                Person(
                    organization=world.org,
                    name=f"{prefix.title()} {start + i:05d}",
                    email=f"{prefix}{start + i:05d}@example.com",
                )
                for i in range(count)
            ],
            batch_size=500,
        )
        keys = Key.objects.bulk_create(
            [
                Key(
                    lock=lock,
                    organization_id=lock.organization_id,
                    lock_owner_id=lock.organization_id,
                    person=person,
                    schedule=schedule,
                    issued_by=world.owner,
                    issued_at=now - timedelta(days=30, seconds=i),
                    revoked_at=now - timedelta(days=1) if revoked else None,
                    revoked_by=world.owner if revoked else None,
                )
                for i, person in enumerate(people)
            ],
            batch_size=500,
        )
        creds: list[Credential] = []
        links: list[tuple[int, str, str, str]] = []  # (index, kind, lookup, device lookup)
        for i, person in enumerate(people):
            digest = pin_digest(pins[i])
            creds.append(
                Credential(person=person, kind=CredentialKind.PIN, lookup=digest, display="•" * 6)
            )
            links.append(
                (i, CredentialKind.PIN, digest, device_lookup(CredentialKind.PIN, pins[i], serial))
            )
            if tags[i]:
                creds.append(
                    Credential(
                        person=person, kind=CredentialKind.TAG, lookup=tags[i], display=tags[i]
                    )
                )
                links.append((i, CredentialKind.TAG, tags[i], tags[i]))
        creds = Credential.objects.bulk_create(creds, batch_size=500)
        KeyCredential.objects.bulk_create(
            [
                KeyCredential(
                    key=keys[i],
                    credential=cred,
                    lock=lock,
                    kind=kind,
                    lookup=lookup,
                    device_lookup=device,
                    active=not revoked,
                )
                for (i, kind, lookup, device), cred in zip(links, creds, strict=True)
            ],
            batch_size=500,
        )
        Lock.objects.filter(pk=lock.pk).update(
            credential_version=F("credential_version") + count * (2 if revoked else 1)
        )
        events = []
        for i, (person, key) in enumerate(zip(people, keys, strict=True)):
            kinds = ["pin", "tag"] if tags[i] else ["pin"]
            events.append(
                Event(
                    organization_id=lock.organization_id,
                    kind=EventKind.KEY_ISSUED,
                    occurred_at=key.issued_at,
                    received_at=key.issued_at,
                    property_id=lock.entry.property_id,
                    lock=lock,
                    person=person,
                    key=key,
                    actor=world.owner,
                    summary=f"Key issued to {person.name} ({', '.join(kinds)})",
                    data={"credentials": kinds},
                )
            )
        Event.objects.bulk_create(events, batch_size=500)
    return [
        Holder(p.pk, k.pk, p.name, pins[i], tags[i], revoked, schedule)
        for i, (p, k) in enumerate(zip(people, keys, strict=True))
    ]


def percentile(values: list[float], p: float) -> float:
    """The p-th percentile (0-100) by nearest rank: the smallest value that at
    least p% of the values are at or below (of 100 values, p99 is the 99th)."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    # ceil(p * n / 100) in integers where possible: no float rounding at the edge
    rank = -(-round(p * 1000) * len(ordered) // 100_000)
    return ordered[max(0, min(len(ordered), rank) - 1)]


def latency_line(label: str, seconds: list[float]) -> str:
    ms = [s * 1000 for s in seconds]
    return (
        f"{label}: mean {statistics.fmean(ms):.3f} ms, p50 {percentile(ms, 50):.3f} ms, "
        f"p99 {percentile(ms, 99):.3f} ms, max {max(ms):.3f} ms"
    )


def emit_result(name: str, backend: str, **figures: Any) -> None:
    """The last line of every benchmark, read by run_all.py."""
    print("RESULT " + json.dumps({"bench": name, "backend": backend, **figures}, default=str))


def utcnow() -> datetime:
    from django.utils import timezone

    return timezone.now()
