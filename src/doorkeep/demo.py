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
from doorkeep.gateway.services import set_device_secret
from doorkeep.keys import access
from doorkeep.keys.models import Key
from doorkeep.keys.services import (
    CredentialSpec,
    HolderSpec,
    KeySpec,
    issue_key,
    link_account,
    revoke_key,
)
from doorkeep.keys.sharing import issue_key_to_organization
from doorkeep.licensing import codes
from doorkeep.licensing.services import (
    activate_building_management,
    generate_batch,
    redeem_for_lock,
    redeem_for_organization,
)
from doorkeep.locks.models import Lock
from doorkeep.locks.services import add_manufactured_lock, register_lock
from doorkeep.properties.models import Entry
from doorkeep.properties.services import add_entry, create_property

PASSWORD = "doorkeep-demo"  # noqa: S105 - the documented demo password
OWNER = "owner@demo.doorkeep.test"
MANAGER = "manager@demo.doorkeep.test"
RESIDENT = "resident@demo.doorkeep.test"
FACILITY = "facility@demo.doorkeep.test"
OPERATOR = "operator@demo.doorkeep.test"
GUEST = "guest@demo.doorkeep.test"
# The demo main entrance's panel: `doorkeep simulate panel 1` shows its codes.
DEMO_PANEL_SECRET = "DKDEMOPANELMAINENTRANCE234567ABC"  # noqa: S105 - documented demo value
# The bike storage's NTAG 424 DNA panel (docs/guests.md): its tag's two keys.
DEMO_TAG_KEYS = ("D0000000000000000000000000000001", "D0000000000000000000000000000002")

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


# Unused prepaid codes of the demo, to try the licence panel and the account
# upgrades with (documented in the README).
DEMO_CODES = {
    "MGMT-5Y": "DEM0MGMT5Y000000001",
    "ORGS-5Y": "DEM00RGS5Y000000001",
    "KEYS-25": "DEM0KEYS25000000001",
    "ORG-MGMT": "DEM00RGMGMT00000001",
}


def demo_codes() -> dict[str, str]:
    return {sku: codes.with_check(body) for sku, body in DEMO_CODES.items()}


def _travel(moment: datetime) -> contextlib.AbstractContextManager[object]:
    """Do the following as if at ``moment`` (time-machine is there in development)."""
    try:
        import time_machine

        return time_machine.travel(moment, tick=True)
    except ImportError:  # pragma: no cover - a production install without dev tools
        return contextlib.nullcontext()


def load_demo(*, only_if_empty: bool = True, seed: int = 7) -> bool:
    """Create the demo; returns False (and does nothing) when data is already there."""
    if only_if_empty and (User.objects.exists() or Organization.objects.exists()):
        return False
    rng = random.Random(seed)  # noqa: S311 - demo data, not security
    now = timezone.now()
    # The studios' locks were registered months ago: one is past its free
    # period (take back keys only), one's free period ends within two weeks.
    # The canal house was set up 15 days ago; two weeks of history follow.
    with _travel(now - timedelta(days=100)):
        owner, org, entries = _accounts_and_places()
        courtyard = _register(owner, entries[5], 6)
        for name, pin in (("Studio 1 · Yara Haddad", "31415"), ("Studio 2 · Tom Willems", "27182")):
            issue_key(
                owner, courtyard.pk, KeySpec(HolderSpec(name=name), [CredentialSpec("pin", pin)])
            )
    with _travel(now - timedelta(days=80)):
        _register(owner, entries[4], 5)
    with _travel(now - timedelta(days=15)):
        _canal_house(rng, owner, org, entries[:4])
    _guests(owner, entries[:4])
    _sites(owner, entries)
    from doorkeep import demo_billing

    keizersgracht, studios = entries[0].property, entries[4].property
    keizersgracht.refresh_from_db()
    studios.refresh_from_db()
    demo_billing.billing_setup(keizersgracht, studios)
    _stations(owner, entries[0].property_id, rng)
    demo_billing.laundry_history(keizersgracht, rng)
    demo_billing.laundry_history(studios, rng)
    demo_billing.bill(owner, User.objects.get(email=OPERATOR), keizersgracht, _travel)
    _batch_of_known_codes()
    with transaction.atomic():
        locks = list(
            Lock.objects.filter(serial__in=[f"DK-2025-{i:04d}" for i in range(1, 5)])
            .select_related("entry__property")
            .order_by("serial")
        )
        _events(rng, locks, now)
    return True


def _guests(owner: User, entries: list[Entry]) -> None:
    """Rosa Resident shares the main entrance and the bike storage with Gus
    Guest (accepted; presence not verified yet) and has invited a friend."""
    from doorkeep.guests import services as guests
    from doorkeep.guests.models import Panel, PanelTag

    main, _garage, bikes, _roof = entries
    guests.set_policy(
        owner,
        main.property_id,
        guests.PolicySpec(
            sharing_enabled=True,
            shareable_entry_ids=[main.pk, bikes.pk],
            max_guests_per_resident=5,
            require_presence=True,
            reverify_after_days=30,
        ),
    )
    Panel.objects.create(entry=main, name="Lobby panel", secret=DEMO_PANEL_SECRET)
    Panel.objects.create(
        entry=bikes,
        name="Bike storage tag",
        tag=PanelTag.NTAG424,
        sdm_meta_read_key=DEMO_TAG_KEYS[0],
        sdm_file_read_key=DEMO_TAG_KEYS[1],
    )
    resident = User.objects.get(email=RESIDENT)
    guest = create_user(GUEST, PASSWORD, name="Gus Guest")
    accepted = guests.invite(resident, main.property_id, GUEST, [main.pk, bikes.pk]).invitation
    guests.accept(guest, accepted.pk)
    guests.invite(resident, main.property_id, "friend@demo.doorkeep.test", [main.pk])


def _sites(owner: User, entries: list[Entry]) -> None:
    """Seed 002 at both properties. The Keizersgracht residence bills its
    residents through the platform (billing and payments, EUR 15.00 for an
    extra badge): Rosa (2A, a private parking space with a charging station)
    has no badge yet, Sanne has one, Lucas reported his lost, Noah's request
    waits in the operator's queue and his charging station at P4 is being
    organized. The Oudegracht studios use individual
    statements: Yara's existing MIFARE Classic badge is registered there."""
    from doorkeep.badges import services as badges
    from doorkeep.properties.models import BillingMode
    from doorkeep.residents import services as residents

    operator = User.objects.get(email=OPERATOR)
    keizersgracht, studios = entries[0].property_id, entries[4].property_id
    residents.set_billing_mode(owner, keizersgracht, BillingMode.BILLING_AND_PAYMENTS, confirm=True)
    residents.set_badge_price(owner, keizersgracht, currency="EUR", price_minor=1500)
    units = {
        label: residents.add_unit(owner, keizersgracht, label)
        for label in ("1A", "1B", "2A", "2B", "3A", "3B")
    }
    for number in ("P1", "P2", "P3", "P4"):
        residents.add_parking_space(
            owner,
            keizersgracht,
            number,
            unit_id=units["2A"].pk if number == "P2" else None,
            station_serial="EVB-KZG-0002" if number == "P2" else "",
        )
    today = residents.site_today(entries[0].property)
    people = [
        ("Rosa Resident", RESIDENT, "2A", None),
        ("Sanne de Vries", _email("Sanne de Vries"), "1A", "Sanne"),
        ("Lucas Janssen", _email("Lucas Janssen"), "1B", "Lucas"),
        ("Noah Bakker", _email("Noah Bakker"), "3A", "Noah"),
        ("Camille Dubois", _email("Camille Dubois"), "2B", None),
        ("Giulia Romano", _email("Giulia Romano"), "3B", None),
    ]
    accounts: dict[str, User] = {}
    for n, (name, email, unit, account) in enumerate(people):
        if account:  # an account of their own, linked to the keys issued to them
            accounts[account] = create_user(email, PASSWORD, name=name)
            link_account(accounts[account])
        residents.add_resident(
            owner,
            keizersgracht,
            residents.ResidentSpec(
                name=name,
                email=email,
                unit_id=units[unit].pk,
                move_in=today - timedelta(days=400 - 30 * n),
            ),
        )

    def handed_over(user: User, uid: str) -> int:
        request = badges.request_badge(user, badges.RequestSpec(property_id=keizersgracht))
        badges.approve_request(operator, request.pk)
        badges.assign_badge(operator, request.pk, uid)
        badges.deliver_badge(operator, request.pk, "handed_over")
        request.refresh_from_db()
        return request.badge_id or 0

    handed_over(accounts["Sanne"], SANNE_BADGE)
    lost = handed_over(accounts["Lucas"], "04E7E7E7123456")
    badges.report_lost(accounts["Lucas"], lost)
    badges.request_badge(
        accounts["Noah"], badges.RequestSpec(property_id=keizersgracht, note="For the laundry")
    )

    studio_units = [residents.add_unit(owner, studios, label) for label in ("S1", "S2")]
    yara = residents.add_resident(
        owner,
        studios,
        residents.ResidentSpec(
            name="Yara Haddad",
            email="yara.haddad@example.com",
            unit_id=studio_units[0].pk,
            move_in=today - timedelta(days=200),
        ),
    )
    residents.add_resident(
        owner,
        studios,
        residents.ResidentSpec(
            name="Tom Willems",
            email="tom.willems@example.com",
            unit_id=studio_units[1].pk,
            move_in=today - timedelta(days=90),
        ),
    )
    badges.register_existing_badge(
        owner, studios, yara.person_id, uid="5A3C19E2", atqa="0004", sak="08"
    )
    # Noah's charging station at P4: approved, the platform organizes it.
    from doorkeep.installations import services as installations

    station = installations.request_installation(
        accounts["Noah"], keizersgracht, parking_space="P4", wished_power_kw=11, notes="Wall box"
    )
    installations.decide(owner, station.pk, approve=True)
    installations.hand_over(owner, station.pk)


STATIONS = (("EVB-KZG-0001", "Charger P1", "P1"), ("EVB-KZG-0002", "Charger P2", "P2"))
SANNE_BADGE = "04D3A5B7C9E1F2"


def demo_station_password(charge_point_id: str) -> str:
    """The demo stations' passwords are known, to connect `doorkeep simulate charger`."""
    return f"dsp_demo-{charge_point_id.lower()}"


def _stations(owner: User, site_id: int, rng: random.Random) -> None:
    """Two charging stations at the Keizersgracht residence: EVB-KZG-0001 at
    the shared space P1, EVB-KZG-0002 at P2, private to unit 2A (Rosa's).
    Sanne charged at P1 about once a week for the last two months."""
    from doorkeep.chargers import reports
    from doorkeep.chargers import services as chargers
    from doorkeep.chargers.models import Station

    made = {}
    for cp_id, name, space in STATIONS:
        station, _password = chargers.register_station(
            owner, site_id, chargers.StationSpec(cp_id, name=name, parking_space=space)
        )
        Station.objects.filter(pk=station.pk).update(
            password_digest=Station.digest_of(demo_station_password(cp_id))
        )
        made[cp_id] = station
    shared = made["EVB-KZG-0001"].pk
    meter = 1_204_000  # Wh on the station's register
    now = timezone.now()
    for days_ago in (54, 47, 40, 33, 26, 19, 12, 5):
        start = (now - timedelta(days=days_ago)).replace(
            hour=17, minute=rng.randrange(60), second=0, microsecond=0
        )
        hours = rng.choice((2, 3, 4))
        power = 7_400
        started = reports.start(
            shared,
            connector=1,
            id_tag=SANNE_BADGE,
            meter_start_wh=meter,
            at=start,
        )
        readings = [
            reports.Reading(start + timedelta(hours=h), meter + power * h, power)
            for h in range(1, hours)
        ]
        reports.meter_values(shared, readings, transaction_id=started.transaction_id)
        meter += power * hours
        reports.stop(
            shared,
            started.transaction_id,
            meter_stop_wh=meter,
            at=start + timedelta(hours=hours),
            reason="EVDisconnected",
        )


def _batch_of_known_codes() -> None:
    from doorkeep.licensing.models import CodeBatch, PrepaidCode, Product

    for sku, code in demo_codes().items():
        batch = CodeBatch.objects.create(
            product=Product.objects.get(sku=sku), size=1, note="demo code, see README"
        )
        PrepaidCode.objects.create(batch=batch, digest=codes.digest(codes.normalize(code)))


def demo_device_secret(serial: str) -> str:
    """The demo locks' device secrets are known, to connect `doorkeep simulate lock`."""
    return f"dks_demo-{serial.lower()}"


def _register(owner: User, entry: Entry, number: int) -> Lock:
    serial = f"DK-2025-{number:04d}"
    minted = add_manufactured_lock(serial, model_name="Doorkeep Mortise M2")
    lock = register_lock(
        owner, serial=serial, claim_secret=minted.claim_secret, entry_id=entry.pk, name=entry.name
    )
    set_device_secret(lock, demo_device_secret(serial))
    return lock


def _redeem(owner: User, lock: Lock, sku: str) -> None:
    _batch, (code,) = generate_batch(None, sku, 1, note="demo")
    redeem_for_lock(owner, lock.pk, code)


def _accounts_and_places() -> tuple[User, Organization, list[Entry]]:
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
        # Several entries per property, a manager, guest sharing and panels (R12).
        org = activate_building_management(owner, org.pk)
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
        for serial, secret in UNREGISTERED:
            add_manufactured_lock(serial, claim_secret=secret, model_name="Doorkeep Mortise M2")
    return owner, org, entries


def _canal_house(rng: random.Random, owner: User, org: Organization, entries: list[Entry]) -> None:
    with transaction.atomic():
        manager = User.objects.get(email=MANAGER)
        locks = [_register(owner, entry, n) for n, entry in enumerate(entries, start=1)]
        main, garage, bikes, roof = locks[0], locks[1], locks[2], locks[3]
        # The main entrance is paid for: 5 years of management, more keys, and
        # shared management with the facility company.
        for sku in ("MGMT-5Y", "KEYS-100", "ORGS-5Y"):
            _redeem(owner, main, sku)
        facility_user = create_user(FACILITY, PASSWORD, name="Finn Facility")
        facility = create_organization(facility_user, "Facility Partners BV")
        _batch, (upgrade,) = generate_batch(None, "ORG-MGMT", 1, note="demo")
        redeem_for_organization(facility_user, facility.pk, upgrade)
        now = timezone.now()
        shared = issue_key_to_organization(
            owner,
            main.pk,
            facility.pk,
            valid_until=now + timedelta(days=365),
            note="Maintenance contract 2026",
        )
        for name, tag in (
            ("Technician Ahmed Benali", "04C0FFEE123456"),
            ("Technician Lotte Kramer", "04BEEF00654321"),
        ):
            issue_key(
                facility_user,
                main.pk,
                KeySpec(HolderSpec(name=name), [CredentialSpec("tag", tag)]),
                parent_key_id=shared.pk,
            )
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
