"""Demo data for laundry, consumption and billing (issue 14).

The Keizersgracht residence (billing and payments, EUR) has a washer and a
dryer, a tariff since the month before last, two months of charging and
laundry, and both months billed by the platform's issuer: of the month
before last, Camille's invoice is overdue (reminded) and the others were
paid from a bank file; of last month, Sanne's was paid at the office and
the others are open: the bank file written to
``DATA_DIR/demo/camt054-demo.xml`` pays them (upload it on the Bank files
page). The Oudegracht studios
(individual statements) have a washer and their own tariff: their owner
downloads monthly statements."""

from __future__ import annotations

import random
from datetime import date, datetime, time, timedelta

from django.conf import settings
from django.utils import timezone

from doorkeep.accounts.models import User
from doorkeep.billing import runs, usage
from doorkeep.billing.models import Invoice, InvoiceStatus
from doorkeep.billing.services import IssuerSpec, TariffSpec, create_issuer, create_tariff
from doorkeep.billing.services import set_site_billing as set_billing
from doorkeep.laundry.models import Cycle, Machine, MachineKind
from doorkeep.properties.models import Property, zone_of
from doorkeep.residents.models import Residency

MACHINES = (
    ("DK-WM-0001", "Washer", MachineKind.WASHER, "keizersgracht"),
    ("DK-DR-0001", "Dryer", MachineKind.DRYER, "keizersgracht"),
    ("DK-WM-0002", "Washer", MachineKind.WASHER, "studios"),
)
PROGRAMS = {MachineKind.WASHER: ("40°C", "60°C", "Quick 30"), MachineKind.DRYER: ("Cotton dry",)}


def demo_machine_secret(serial: str) -> str:
    """The demo machines' secrets are known, to connect `doorkeep simulate machine`."""
    return f"dms_demo-{serial.lower()}"


def months_back(today: date) -> tuple[date, date, date]:
    """(the month before last, last month, this month): their first days."""
    this = today.replace(day=1)
    last = (this - timedelta(days=1)).replace(day=1)
    before = (last - timedelta(days=1)).replace(day=1)
    return before, last, this


def billing_setup(keizersgracht: Property, studios: Property) -> None:
    """Before any use is recorded: the tariffs (they price use as it is
    recorded), the machines and the issuer."""
    today = timezone.now().astimezone(zone_of(keizersgracht)).date()
    before, _last, _this = months_back(today)
    start = before - timedelta(days=31)
    create_tariff(
        None,
        keizersgracht.pk,
        TariffSpec(
            valid_from=start,
            vat_rate=810,
            charging_rate=3500,  # EUR 0.35 per kWh, 07:00-20:00 on weekdays
            charging_low_rate=2500,  # EUR 0.25 per kWh otherwise
            high_start=time(7),
            high_end=time(20),
            laundry_cycle_price=250,
            laundry_rate=0,
            extra_badge_price=1500,
        ),
        allow_past=True,
    )
    create_tariff(
        None,
        studios.pk,
        TariffSpec(valid_from=start, vat_rate=0, laundry_cycle_price=300, charging_rate=3000),
        allow_past=True,
    )
    sites = {"keizersgracht": keizersgracht, "studios": studios}
    for serial, name, kind, site in MACHINES:
        prop = sites[site]
        Machine.objects.create(
            organization_id=prop.organization_id,
            property=prop,
            kind=kind,
            name=name,
            serial=serial,
            secret_digest=Machine.digest_of(demo_machine_secret(serial)),
            programs=list(PROGRAMS[kind]),
        )
    issuer = create_issuer(
        None,
        IssuerSpec(
            name="Doorkeep SA",
            street="Avenue de la Gare",
            house_number="10",
            postcode="1003",
            city="Lausanne",
            country="CH",
            account="CH93 0076 2011 6238 5295 7",
            currency="EUR",
            vat_number="CHE-123.456.789 MWST",
            email="billing@demo.doorkeep.test",
            number_prefix="DK-",
        ),
        organization_id=None,
    )
    set_billing(None, keizersgracht.pk, issuer.pk, payment_days=20)


def laundry_history(prop: Property, rng: random.Random) -> None:
    """Cycles of the site's residents over the last two months and a bit, as
    the controllers reported them (started from a badge or the portal)."""
    zone = zone_of(prop)
    now = timezone.now()
    today = now.astimezone(zone).date()
    before, _last, _this = months_back(today)
    machines = list(Machine.objects.filter(property=prop))
    residents = list(
        Residency.objects.filter(unit__property=prop, move_out__isnull=True).select_related(
            "person"
        )
    )
    seq = {m.pk: 0 for m in machines}
    day = before
    while day < today:
        for residency in residents:
            if rng.random() > 0.22:  # about one wash every four or five days
                continue
            machine = rng.choice(machines)
            seq[machine.pk] += 1
            start = datetime.combine(
                day, time(rng.randrange(7, 21), rng.randrange(60)), tzinfo=zone
            )
            minutes = 50 if machine.kind == MachineKind.DRYER else rng.choice((35, 75, 95))
            end = start + timedelta(minutes=minutes)
            if end >= now:
                continue
            cycle = Cycle.objects.create(
                organization_id=prop.organization_id,
                property=prop,
                machine=machine,
                seq=seq[machine.pk],
                program=rng.choice(PROGRAMS[MachineKind(machine.kind)]),
                person=residency.person,
                unit_id=residency.unit_id,
                remote=True,
                started_at=start,
                ended_at=end,
                energy_wh=rng.randrange(300, 1900),
            )
            usage.record_cycle_use(cycle)
        day += timedelta(days=1)
    for machine in machines:
        Machine.objects.filter(pk=machine.pk).update(last_seq=seq[machine.pk])


def bill(owner: User, operator: User, keizersgracht: Property, travel: object) -> None:
    """Both months billed, paid and reminded as the module's docstring says."""
    from doorkeep.billing import camt, payments

    zone = zone_of(keizersgracht)
    today = timezone.now().astimezone(zone).date()
    before, last, this = months_back(today)

    def at(day: date, hour: int) -> datetime:
        return datetime.combine(day, time(hour), tzinfo=zone)

    with travel(at(last + timedelta(days=1), 9)):  # type: ignore[operator]
        first = runs.draft_run(owner, keizersgracht.pk, before)
        runs.finalize_run(owner, first.pk)
    older = list(Invoice.objects.filter(run=first).select_related("person"))
    camille = [i for i in older if i.person.name.startswith("Camille")]
    paid_then = [i for i in older if i not in camille]
    with travel(at(last + timedelta(days=12), 10)):  # type: ignore[operator]
        payments.import_bank_file(
            operator,
            camt.demo_bank_file(paid_then, booked_on=last + timedelta(days=11)),
            "camt054-earlier.xml",
            organization_id=None,
        )
    runs.send_reminders()  # Camille's is past its due date
    with travel(at(this, 8)):  # type: ignore[operator]
        second = runs.draft_run(owner, keizersgracht.pk, last)
        runs.finalize_run(owner, second.pk)
    latest = list(Invoice.objects.filter(run=second).select_related("person"))
    sanne = [i for i in latest if i.person.name.startswith("Sanne")]
    for invoice in sanne:
        payments.mark_paid(owner, invoice.pk, note="Paid in cash at the building office")
    still_open = list(Invoice.objects.filter(run=second, status=InvoiceStatus.OPEN))
    folder = settings.DATA_DIR / "demo"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "camt054-demo.xml").write_bytes(camt.demo_bank_file(still_open, booked_on=today))
