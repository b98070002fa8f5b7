"""A site with a year of use, for the consumption tests (and the browser
test): Alice's Canal House in Zurich, in CHF, with units A-12 and B-3.

- Rosa lives in A-12 until 30 June 2025, then in B-3; she also lives at
  Charlie's Shed (another organization, in Amsterdam, in EUR).
- Bruno moves into A-12 on 1 July 2025.
- Uses are recorded through billing.usage from real charging sessions,
  laundry cycles and an extra badge request, priced by each site's tariff:
  at the Canal House CHF 0.30 per kWh charging, CHF 2.50 a laundry cycle
  plus CHF 0.10 per kWh; at the Shed EUR 0.25 per kWh, EUR 3.00 a cycle.

Rosa's uses at the Canal House (times in Zurich):
  2025-03-31 23:30  charging 10.000 kWh  CHF 3.00  (A-12)  21:30 UTC: March
  2025-04-01 00:30  charging 20.500 kWh  CHF 6.15  (A-12)  March 31 in UTC: April here
  2025-06-30 10:00  laundry   1.200 kWh  CHF 2.62  (A-12)
  2025-07-02 10:00  laundry   0.900 kWh  CHF 2.59  (B-3, after moving)
  2025-07-05 12:00  extra badge          CHF 15.00 (B-3)
Bruno's: 2025-07-10 18:00 charging 7.000 kWh CHF 2.10 (A-12).
Rosa's at the Shed (Amsterdam): 2025-07-03 09:00 laundry 0.800 kWh EUR 3.00
on the washer "+Washer 1" (a name a spreadsheet would run: the CSV guards
it), 2025-07-04 20:00 charging 4.000 kWh EUR 1.00."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from doorkeep.accounts.models import User
from doorkeep.accounts.services import create_user
from doorkeep.badges.models import BadgeRequest
from doorkeep.billing import usage
from doorkeep.billing.models import Tariff, Use
from doorkeep.chargers.models import ChargingSession, Station
from doorkeep.keys.models import Person
from doorkeep.laundry.models import Cycle, Machine
from doorkeep.properties.models import Property
from doorkeep.residents.models import Residency, Unit
from doorkeep.residents.services import ResidentSpec, add_resident, add_unit

PASSWORD = "correct horse battery staple"
ZURICH = ZoneInfo("Europe/Zurich")
AMSTERDAM = ZoneInfo("Europe/Amsterdam")
_numbers = itertools.count(1)


@dataclass
class Consumers:
    world: Any
    prop: Property  # the Canal House, CHF
    shed: Property  # Charlie's Shed, EUR
    a12: Unit
    b3: Unit
    shed_unit: Unit
    rosa: User
    bruno: User
    rosa_person: Person  # at the Canal House
    rosa_shed_person: Person
    bruno_person: Person
    station: Station
    washer: Machine
    shed_station: Station
    shed_washer: Machine


def _local(zone: ZoneInfo, text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=zone)


def charge(
    c: Consumers, person: Person, unit: Unit, start: datetime, wh: int, *, shed: bool = False
) -> Use:
    station = c.shed_station if shed else c.station
    session = ChargingSession.objects.create(
        organization_id=station.organization_id,
        property_id=station.property_id,
        station=station,
        connector=1,
        transaction_id=f"T{next(_numbers)}",
        person=person,
        unit=unit,
        started_at=start,
        stopped_at=start + timedelta(hours=2),
        energy_wh=wh,
    )
    session = ChargingSession.objects.select_related("property", "station").get(pk=session.pk)
    use = usage.record_charging_use(session)
    assert use is not None
    return use


def wash(
    c: Consumers, person: Person, unit: Unit, start: datetime, wh: int, *, shed: bool = False
) -> Use:
    machine = c.shed_washer if shed else c.washer
    cycle = Cycle.objects.create(
        organization_id=machine.organization_id,
        property_id=machine.property_id,
        machine=machine,
        seq=next(_numbers),
        program="Eco 40",
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


def extra_badge(c: Consumers, person: Person, at: datetime, price: int = 1500) -> Use:
    request = BadgeRequest.objects.create(
        organization_id=c.prop.organization_id,
        property=c.prop,
        person=person,
        extra=True,
        price_minor=price,
        currency="CHF",
        sent_at=at,
    )
    request = BadgeRequest.objects.select_related("property", "badge").get(pk=request.pk)
    use = usage.record_badge_use(request)
    assert use is not None
    return use


def _resident(actor: User, prop: Property, user: User, unit: Unit, start: date, end: date | None):
    return add_resident(
        actor,
        prop.pk,
        ResidentSpec(user.name, user.email, start, unit_id=unit.pk, move_out=end),
    )


def build(world: Any, *, uses: bool = True) -> Consumers:
    prop = world.prop
    Property.objects.filter(pk=prop.pk).update(timezone="Europe/Zurich", currency="CHF")
    Property.objects.filter(pk=world.charlie_prop.pk).update(
        timezone="Europe/Amsterdam", currency="EUR"
    )
    prop.refresh_from_db()
    shed = Property.objects.get(pk=world.charlie_prop.pk)
    Tariff.objects.create(
        property=prop,
        valid_from=date(2024, 1, 1),
        currency="CHF",
        vat_rate=810,
        charging_rate=3000,
        laundry_cycle_price=250,
        laundry_rate=1000,
    )
    Tariff.objects.create(
        property=shed,
        valid_from=date(2024, 1, 1),
        currency="EUR",
        vat_rate=2100,
        charging_rate=2500,
        laundry_cycle_price=300,
    )
    a12 = add_unit(world.alice, prop.pk, "A-12")
    b3 = add_unit(world.alice, prop.pk, "B-3")
    shed_unit = add_unit(world.charlie, shed.pk, "Loft")
    rosa = create_user("rosa@example.com", PASSWORD, name="Rosa Resident")
    bruno = create_user("bruno@example.com", PASSWORD, name="Bruno Neighbour")
    first = _resident(world.alice, prop, rosa, a12, date(2025, 1, 1), date(2025, 6, 30))
    _resident(world.alice, prop, rosa, b3, date(2025, 7, 1), None)
    bruno_home = _resident(world.alice, prop, bruno, a12, date(2025, 7, 1), None)
    shed_home = _resident(world.charlie, shed, rosa, shed_unit, date(2025, 1, 1), None)
    assert Residency.objects.filter(person__user=rosa).count() == 3

    def station(site: Property, cp_id: str, name: str) -> Station:
        return Station.objects.create(
            organization_id=site.organization_id,
            property=site,
            charge_point_id=cp_id,
            name=name,
            password_digest=Station.digest_of("station-password-0001"),
        )

    def washer(site: Property, serial: str, name: str) -> Machine:
        return Machine.objects.create(
            organization_id=site.organization_id,
            property=site,
            name=name,
            serial=serial,
            secret_digest=Machine.digest_of("machine-secret"),
        )

    c = Consumers(
        world=world,
        prop=prop,
        shed=shed,
        a12=a12,
        b3=b3,
        shed_unit=shed_unit,
        rosa=rosa,
        bruno=bruno,
        rosa_person=first.person,
        rosa_shed_person=shed_home.person,
        bruno_person=bruno_home.person,
        station=station(prop, "CP-CANAL-1", "Garage"),
        washer=washer(prop, "WM-CANAL-1", "Washer 1"),
        shed_station=station(shed, "CP-SHED-1", "Shed charger"),
        shed_washer=washer(shed, "WM-SHED-1", "+Washer 1"),
    )
    if uses:
        rosa_p, bruno_p = c.rosa_person, c.bruno_person
        charge(c, rosa_p, a12, _local(ZURICH, "2025-03-31T23:30"), 10_000)
        charge(c, rosa_p, a12, _local(ZURICH, "2025-04-01T00:30"), 20_500)
        wash(c, rosa_p, a12, _local(ZURICH, "2025-06-30T10:00"), 1_200)
        wash(c, rosa_p, b3, _local(ZURICH, "2025-07-02T10:00"), 900)
        extra_badge(c, rosa_p, _local(ZURICH, "2025-07-05T12:00"))
        charge(c, bruno_p, a12, _local(ZURICH, "2025-07-10T18:00"), 7_000)
        shed_p = c.rosa_shed_person
        wash(c, shed_p, shed_unit, _local(AMSTERDAM, "2025-07-03T09:00"), 800, shed=True)
        charge(c, shed_p, shed_unit, _local(AMSTERDAM, "2025-07-04T20:00"), 4_000, shed=True)
    return c
