"""Demo data: a realistic building to try Doorkeep with.

Everything is created through the same services the web UI and the API use,
so the demo also shows that they work together."""

from __future__ import annotations

import contextlib
import random
from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone

from doorkeep.accounts.models import Membership, Organization, Role, User
from doorkeep.accounts.services import create_organization, create_user
from doorkeep.keys import access
from doorkeep.keys.models import Key
from doorkeep.keys.services import CredentialSpec, HolderSpec, KeySpec, issue_key, revoke_key
from doorkeep.locks.models import Lock
from doorkeep.locks.services import add_manufactured_lock, register_lock
from doorkeep.properties.services import add_entry, create_property

PASSWORD = "doorkeep-demo"  # noqa: S105 - the documented demo password
OWNER = "owner@demo.doorkeep.test"
MANAGER = "manager@demo.doorkeep.test"
RESIDENT = "resident@demo.doorkeep.test"
OPERATOR = "operator@demo.doorkeep.test"

# Locks that are known to the platform but not registered yet: try registering
# one of these from the dashboard.
UNREGISTERED = [
    ("DK-2025-0101", "7K3M-Q9XP-4TNW-8HRC"),
    ("DK-2025-0102", "2F6G-HJ8K-MN3P-QR4T"),
    ("DK-2025-0103", "9VWX-YZ23-4567-89AB"),
]

RESIDENTS = [
    "Sanne de Vries",
    "Lucas Janssen",
    "Camille Dubois",
    "Giulia Romano",
    "Noah Bakker",
    "Emma Visser",
    "Léa Moreau",
    "Matteo Ricci",
    "Daan Smit",
    "Julie Lambert",
    "Sofia Esposito",
    "Finn Mulder",
    "Chloé Laurent",
    "Lorenzo Greco",
    "Tess Meijer",
    "Hugo Lefèvre",
    "Anna Bianchi",
    "Sem de Boer",
    "Inès Girard",
    "Marco Colombo",
]


def _email(name: str) -> str:
    plain = name.lower().replace(" ", ".").replace("é", "e").replace("è", "e").replace("ç", "c")
    return f"{plain}@example.com"


def load_demo(*, only_if_empty: bool = True, seed: int = 7) -> bool:
    """Create the demo; returns False (and does nothing) when data is already there."""
    if only_if_empty and (User.objects.exists() or Organization.objects.exists()):
        return False
    rng = random.Random(seed)  # noqa: S311 - demo data, not security
    now = timezone.now()
    # The building is set up 15 days ago, so that its two weeks of history come
    # after the keys were issued (time-machine is there in development).
    try:
        import time_machine

        travel: contextlib.AbstractContextManager[object] = time_machine.travel(
            now - timedelta(days=15), tick=True
        )
    except ImportError:  # pragma: no cover - a production install without dev tools
        travel = contextlib.nullcontext()
    with travel:
        _setup(rng)
    with transaction.atomic():
        locks = list(
            Lock.objects.filter(serial__in=[f"DK-2025-{i:04d}" for i in range(1, 5)])
            .select_related("entry__property")
            .order_by("serial")
        )
        _events(rng, locks, now)
    return True


def _setup(rng: random.Random) -> None:
    with transaction.atomic():
        operator = create_user(OPERATOR, PASSWORD, name="Paula Operator")
        operator.is_staff = operator.is_superuser = True
        operator.save(update_fields=["is_staff", "is_superuser"])
        platform = Organization.objects.create(name="Doorkeep platform", is_platform=True)
        Membership.objects.create(user=operator, organization=platform, role=Role.PLATFORM_OPERATOR)

        owner = create_user(OWNER, PASSWORD, name="Olivia Owner")
        manager = create_user(MANAGER, PASSWORD, name="Marco Manager")
        resident = create_user(RESIDENT, PASSWORD, name="Rosa Resident")
        org = create_organization(owner, "Keizersgracht Property Services")
        Membership.objects.create(user=manager, organization=org, role=Role.BUILDING_MANAGER)
        Membership.objects.create(user=resident, organization=org, role=Role.MEMBER)

        prop = create_property(
            owner,
            org.pk,
            name="Residentie Keizersgracht",
            address="Keizersgracht 120, 1015 CW Amsterdam",
            tz="Europe/Amsterdam",
        )
        studios = create_property(
            owner,
            org.pk,
            name="Oudegracht Studios",
            address="Oudegracht 45, 3511 AB Utrecht",
            tz="Europe/Amsterdam",
        )
        doors = ["Main entrance", "Garage gate", "Bike storage", "Roof terrace"]
        entries = [add_entry(owner, prop.pk, name=name) for name in doors]
        entries.append(add_entry(owner, studios.pk, name="Street door"))
        entries.append(add_entry(owner, studios.pk, name="Courtyard gate"))
        locks = []
        for index, entry in enumerate(entries, start=1):
            serial = f"DK-2025-{index:04d}"
            minted = add_manufactured_lock(serial, model_name="Doorkeep Mortise M2")
            locks.append(
                register_lock(
                    owner,
                    serial=serial,
                    claim_secret=minted.claim_secret,
                    entry_id=entry.pk,
                    name=entry.name,
                )
            )
        for serial, secret in UNREGISTERED:
            add_manufactured_lock(serial, claim_secret=secret, model_name="Doorkeep Mortise M2")

        main, garage, bikes, roof = locks[0], locks[1], locks[2], locks[3]
        now = timezone.now()
        keys: list[Key] = []
        # The demo resident opens the main entrance and the bike storage by phone and PIN.
        for lock in (main, bikes):
            keys.append(
                issue_key(
                    owner,
                    lock.pk,
                    KeySpec(
                        holder=HolderSpec(name="Rosa Resident", email=RESIDENT),
                        credentials=[
                            CredentialSpec("phone"),
                            CredentialSpec("pin", "2468")
                            if lock is main
                            else CredentialSpec("tag", "04A1B2C3D4E5F6"),
                        ],
                    ),
                )
            )
        for number, name in enumerate(RESIDENTS):
            kinds = [
                [CredentialSpec("pin", f"{1000 + number * 37:04d}{number % 10}")],
                [CredentialSpec("tag", f"04{number:02X}{rng.randrange(16**10):010X}")],
                [CredentialSpec("remote", f"FOB-{7000 + number}")],
                [
                    CredentialSpec("pin", f"{5000 + number * 41:04d}"),
                    CredentialSpec("tag", f"{rng.randrange(16**8):08X}"),
                ],
            ][number % 4]
            holder = HolderSpec(name=name, email=_email(name))
            keys.append(issue_key(owner, main.pk, KeySpec(holder=holder, credentials=kinds)))
            if number % 3 == 0:
                keys.append(
                    issue_key(
                        owner,
                        garage.pk,
                        KeySpec(
                            holder=holder,
                            credentials=[CredentialSpec("remote", f"GAR-{8000 + number}")],
                        ),
                    )
                )
            if number % 2 == 0:
                keys.append(
                    issue_key(
                        owner,
                        bikes.pk,
                        KeySpec(
                            holder=holder,
                            credentials=[CredentialSpec("tag", f"{rng.randrange(16**8):08X}")],
                        ),
                    )
                )
        # A cleaner with a weekly schedule, a contractor whose key runs out, a
        # summer guest whose key starts later, and one key taken back.
        keys.append(
            issue_key(
                manager,
                main.pk,
                KeySpec(
                    holder=HolderSpec(name="CleanCo (cleaning crew)", email="crew@cleanco.example"),
                    credentials=[CredentialSpec("pin", "80808")],
                    schedule=[{"days": ["mon", "wed", "fri"], "start": "07:00", "end": "11:00"}],
                    note="Stairwell cleaning",
                ),
            )
        )
        keys.append(
            issue_key(
                manager,
                roof.pk,
                KeySpec(
                    holder=HolderSpec(name="Roof Repairs BV", email="planning@roofrepairs.example"),
                    credentials=[CredentialSpec("pin", "424242")],
                    valid_from=now - timedelta(days=10),
                    valid_until=now + timedelta(days=19),
                    note="Roof membrane repair",
                ),
            )
        )
        keys.append(
            issue_key(
                owner,
                main.pk,
                KeySpec(
                    holder=HolderSpec(name="Visiting family Rossi"),
                    credentials=[CredentialSpec("pin", "13579")],
                    valid_from=now + timedelta(days=35),
                    valid_until=now + timedelta(days=49),
                ),
            )
        )
        former = issue_key(
            owner,
            main.pk,
            KeySpec(
                holder=HolderSpec(name="Former tenant Peters", email="peters@example.com"),
                credentials=[CredentialSpec("tag", "0499AABBCCDDEE")],
            ),
        )
        revoke_key(owner, former.pk)


def _events(rng: random.Random, locks: list[Lock], now: datetime) -> None:
    """A few hundred access attempts over the last two weeks, granted and denied."""
    from doorkeep.keys.models import KeyCredential

    start = now - timedelta(days=14)
    credentials = {
        lock.pk: list(
            KeyCredential.objects.filter(lock=lock)
            .select_related("credential", "key__person")
            .exclude(kind="phone")
        )
        for lock in locks
    }
    for _ in range(360):
        lock = rng.choice(locks)
        moment = start + timedelta(seconds=rng.randrange(14 * 24 * 3600))
        roll = rng.random()
        candidates = credentials[lock.pk]
        if roll < 0.08 or not candidates:
            access.decide(lock, "pin", f"{rng.randrange(10**6):06d}", at=moment, source="demo")
            continue
        kc = rng.choice(candidates)
        if kc.kind == "pin":
            # PINs are stored as digests; the demo knows them from its own list.
            value = _demo_pin(kc.key.holder_name, kc.key.note)
            if value is None:
                continue
        else:
            value = kc.credential.display
        access.decide(lock, kc.kind, value, at=moment, source="demo")


def _demo_pin(name: str, note: str) -> str | None:
    if name in RESIDENTS:
        number = RESIDENTS.index(name)
        return (
            f"{1000 + number * 37:04d}{number % 10}"
            if number % 4 == 0
            else (f"{5000 + number * 41:04d}" if number % 4 == 3 else None)
        )
    return {
        "Rosa Resident": "2468",
        "CleanCo (cleaning crew)": "80808",
        "Roof Repairs BV": "424242",
        "Visiting family Rossi": "13579",
    }.get(name)
