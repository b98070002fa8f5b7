"""A billing-and-payments site for the tariff, billing-run and invoice tests.

Alice's Canal House, in Zurich and in CHF, bills through the platform with
her organization as the issuer ("Alice Locks AG", QR-IBAN, numbers RE-…),
30 days to pay. Rosa lives in A-12 and Bruno in B-3 (both since 2024, both
with an account); Otto is the platform's operator; Mia a building manager of
Alice's organization and Rea a read-only collaborator of the Canal House.

The tariff since 1 January 2026: charging CHF 0.35 per kWh, a laundry
cycle CHF 2.50, VAT 8.1 %. The clock stands at 10 March 2026, 12:00 UTC
(a Tuesday), until a test moves it (``travel``). Uses are recorded through
billing.usage from real charging sessions and laundry cycles (``charge``,
``wash``)."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from doorkeep.accounts.models import Membership, Organization, Role, User
from doorkeep.accounts.services import create_user
from doorkeep.billing import services, usage
from doorkeep.billing.models import Issuer, Tariff, Use
from doorkeep.chargers.models import ChargingSession, Station
from doorkeep.keys.models import Person
from doorkeep.laundry.models import Cycle, Machine
from doorkeep.properties.models import Property
from doorkeep.properties.services import create_property
from doorkeep.residents.models import Unit
from doorkeep.residents.services import ResidentSpec, add_resident, add_unit, set_billing_mode

PASSWORD = "correct horse battery staple"
ZURICH = ZoneInfo("Europe/Zurich")
NOW = datetime(2026, 3, 10, 12, 0, tzinfo=ZoneInfo("UTC"))
QR_IBAN = "CH44 3199 9123 0008 8901 2"  # the SIX example QR-IBAN
IBAN = "CH93 0076 2011 6238 5295 7"
_numbers = itertools.count(1)


@dataclass
class Biller:
    world: Any
    prop: Property
    a12: Unit
    b3: Unit
    rosa: User
    bruno: User
    rosa_person: Person
    bruno_person: Person
    operator: User
    manager: User
    reader: User
    issuer: Issuer
    tariff: Tariff
    station: Station
    washer: Machine
    dryer: Machine


def local(text: str) -> datetime:
    """A moment written in the site's time (Zurich)."""
    return datetime.fromisoformat(text).replace(tzinfo=ZURICH)


def make_site(
    actor: User,
    organization_id: int,
    name: str,
    *,
    prop: Property | None = None,
    mode: str = "billing_and_payments",
) -> Property:
    site = prop or create_property(actor, organization_id, name=name)
    Property.objects.filter(pk=site.pk).update(timezone="Europe/Zurich", currency="CHF")
    set_billing_mode(actor, site.pk, mode, confirm=True)
    site.refresh_from_db()
    return site


def resident(actor: User, prop: Property, user: User, unit: Unit) -> Person:
    home = add_resident(
        actor, prop.pk, ResidentSpec(user.name, user.email, date(2024, 1, 1), unit_id=unit.pk)
    )
    return home.person


def station_at(prop: Property, cp_id: str) -> Station:
    return Station.objects.create(
        organization_id=prop.organization_id,
        property=prop,
        charge_point_id=cp_id,
        name=cp_id,
        password_digest=Station.digest_of("station-password-0001"),
    )


def machine_at(prop: Property, serial: str, name: str) -> Machine:
    return Machine.objects.create(
        organization_id=prop.organization_id,
        property=prop,
        name=name,
        serial=serial,
        secret_digest=Machine.digest_of("machine-secret"),
    )


def charge(
    station: Station,
    person: Person,
    unit: Unit | None,
    start: datetime,
    wh: int,
    *,
    hours: float = 2,
) -> Use:
    """A finished charging session, recorded as a use (priced there and then)."""
    session = ChargingSession.objects.create(
        organization_id=station.organization_id,
        property_id=station.property_id,
        station=station,
        connector=1,
        transaction_id=f"T{next(_numbers)}",
        person=person,
        unit=unit,
        started_at=start,
        stopped_at=start + timedelta(hours=hours),
        energy_wh=wh,
    )
    session = ChargingSession.objects.select_related("property", "station").get(pk=session.pk)
    use = usage.record_charging_use(session)
    assert use is not None
    return use


def wash(
    machine: Machine,
    person: Person,
    unit: Unit | None,
    start: datetime,
    *,
    program: str = "Eco 40",
    wh: int = 0,
) -> Use:
    """A finished laundry cycle, recorded as a use."""
    cycle = Cycle.objects.create(
        organization_id=machine.organization_id,
        property_id=machine.property_id,
        machine=machine,
        seq=next(_numbers),
        program=program,
        person=person,
        unit=unit,
        started_at=start,
        ended_at=start + timedelta(minutes=90),
        energy_wh=wh,
    )
    cycle = Cycle.objects.select_related("property", "machine").get(pk=cycle.pk)
    use = usage.record_cycle_use(cycle)
    assert use is not None
    return use


def base_tariff(prop: Property, **prices: Any) -> Tariff:
    spec = services.TariffSpec(
        valid_from=date(2026, 1, 1),
        vat_rate=810,
        charging_rate=3500,
        laundry_cycle_price=250,
        **prices,
    )
    return services.create_tariff(None, prop.pk, spec, allow_past=True)


def build(world: Any) -> Biller:
    prop = make_site(world.alice, world.org.pk, "", prop=world.prop)
    a12 = add_unit(world.alice, prop.pk, "A-12")
    b3 = add_unit(world.alice, prop.pk, "B-3")
    rosa = create_user("rosa@example.com", PASSWORD, name="Rosa Resident")
    bruno = create_user("bruno@example.com", PASSWORD, name="Bruno Neighbour")
    rosa_person = resident(world.alice, prop, rosa, a12)
    bruno_person = resident(world.alice, prop, bruno, b3)

    operator = create_user("otto@example.com", PASSWORD, name="Otto Operator")
    platform = Organization.objects.create(name="Doorkeep platform", is_platform=True)
    platform.memberships.create(user=operator, role=Role.PLATFORM_OPERATOR)
    manager = create_user("mia@example.com", PASSWORD, name="Mia Manager")
    Membership.objects.create(user=manager, organization=world.org, role=Role.BUILDING_MANAGER)
    reader = create_user("rea@example.com", PASSWORD, name="Rea Reader")
    Membership.objects.create(
        user=reader, organization=world.org, role=Role.READ_ONLY, property=prop
    )

    issuer = services.create_issuer(
        world.alice,
        services.IssuerSpec(
            name="Alice Locks AG",
            street="Bahnhofstrasse",
            house_number="1",
            postcode="8001",
            city="Zürich",
            account=QR_IBAN,
            currency="CHF",
            number_prefix="RE-",
        ),
        organization_id=world.org.pk,
    )
    services.set_site_billing(world.alice, prop.pk, issuer.pk, payment_days=30)
    return Biller(
        world=world,
        prop=prop,
        a12=a12,
        b3=b3,
        rosa=rosa,
        bruno=bruno,
        rosa_person=rosa_person,
        bruno_person=bruno_person,
        operator=operator,
        manager=manager,
        reader=reader,
        issuer=issuer,
        tariff=base_tariff(prop),
        station=station_at(prop, "CP-CANAL-1"),
        washer=machine_at(prop, "WM-0001", "Washer 1"),
        dryer=machine_at(prop, "WM-0002", "Dryer 1"),
    )


def february(b: Biller) -> dict[str, Use]:
    """Rosa: two sessions (10 and 5 kWh: CHF 3.50 and 1.75) and a cycle
    (CHF 2.50); Bruno: a cycle. In February 2026."""
    return {
        "rosa_charge_1": charge(b.station, b.rosa_person, b.a12, local("2026-02-03 19:00"), 10_000),
        "rosa_charge_2": charge(b.station, b.rosa_person, b.a12, local("2026-02-17 08:00"), 5_000),
        "rosa_wash": wash(b.washer, b.rosa_person, b.a12, local("2026-02-20 10:00")),
        "bruno_wash": wash(b.washer, b.bruno_person, b.b3, local("2026-02-21 10:00")),
    }
