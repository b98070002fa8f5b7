"""A billing run (issue 14): a billing-and-payments site with 500 residents
and 50,000 uses in a month (40,000 laundry cycles on two machines, 10,000
charging sessions on one station), drafted and finalized: one invoice per
resident with its lines, VAT, number, reference and PDF (QR-bill included,
each use listed). Target: draft and finalize together at most 30 s.

The set-up writes the sessions, cycles and uses in bulk, priced by the same
``billing.pricing`` functions ``billing.usage`` uses; the run itself goes
through ``billing.runs`` as the web page and ``doorkeep serve`` do. The
machine's floor, in the same run and database: reading the 50,000 uses
(one SELECT), taking them all (one UPDATE, rolled back), and rendering one
bare page with the QR-bill 500 times.

    .venv/bin/python bench/billing_run.py [--postgres] [--residents 500] [--uses 50000]
"""

from __future__ import annotations

import argparse
import io
import sys
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _setup

TARGET_S = 30.0


def build(world: _setup.World, residents: int, uses: int) -> tuple[int, date]:
    from doorkeep.billing import pricing
    from doorkeep.billing.models import Use, UseKind
    from doorkeep.billing.services import (
        IssuerSpec,
        TariffSpec,
        create_issuer,
        create_tariff,
        set_site_billing,
    )
    from doorkeep.chargers.models import ChargingSession, Station
    from doorkeep.keys.models import Person
    from doorkeep.laundry.models import Cycle, Machine
    from doorkeep.properties.models import BillingMode, Property, zone_of
    from doorkeep.residents.models import Residency, Unit

    prop = world.prop
    Property.objects.filter(pk=prop.pk).update(
        billing_mode=BillingMode.BILLING_AND_PAYMENTS, currency="CHF"
    )
    prop.refresh_from_db()
    zone = zone_of(prop)
    today = datetime.now(UTC).astimezone(zone).date()
    month = (today.replace(day=1) - timedelta(days=1)).replace(day=1)
    tariff = create_tariff(
        None,
        prop.pk,
        TariffSpec(
            valid_from=month - timedelta(days=60),
            vat_rate=810,
            charging_rate=3500,
            charging_low_rate=2500,
            high_start=datetime.min.time().replace(hour=7),
            high_end=datetime.min.time().replace(hour=20),
            laundry_cycle_price=250,
            laundry_rate=1000,
            monthly_fee=500,
            monthly_fee_label="Laundry room upkeep",
        ),
        allow_past=True,
    )
    issuer = create_issuer(
        None,
        IssuerSpec(
            name="Doorkeep SA",
            postcode="1003",
            city="Lausanne",
            account="CH44 3199 9123 0008 8901 2",
            currency="CHF",
        ),
        organization_id=None,
    )
    set_site_billing(None, prop.pk, issuer.pk, payment_days=30)
    units = Unit.objects.bulk_create(
        Unit(property=prop, label=f"U{n:03d}") for n in range(residents)
    )
    people = Person.objects.bulk_create(
        Person(organization=world.org, name=f"Resident {n:03d}", email=f"r{n}@example.com")
        for n in range(residents)
    )
    if units[0].pk is None or people[0].pk is None:
        units = list(Unit.objects.filter(property=prop).order_by("pk"))
        people = list(Person.objects.filter(organization=world.org).order_by("pk"))
    Residency.objects.bulk_create(
        Residency(unit=u, person=p, move_in=date(2020, 1, 1))
        for u, p in zip(units, people, strict=True)
    )
    machines = [
        Machine.objects.create(
            organization=world.org, property=prop, serial=f"DK-WM-B{n}", secret_digest="x"
        )
        for n in range(2)
    ]
    station = Station.objects.create(
        organization=world.org, property=prop, charge_point_id="BENCH-CP", password_digest="x"
    )
    start = datetime.combine(month, datetime.min.time(), tzinfo=zone)
    span = (pricing.month_bounds(month, zone)[1] - start).total_seconds() - 7200
    charging = uses // 5
    sessions = ChargingSession.objects.bulk_create(
        ChargingSession(
            organization=world.org,
            property=prop,
            station=station,
            transaction_id=str(n),
            person=people[n % residents],
            unit=units[n % residents],
            started_at=start + timedelta(seconds=span * n / charging),
            stopped_at=start + timedelta(seconds=span * n / charging + 5400),
            meter_start_wh=0,
            meter_stop_wh=7000 + n % 5000,
            energy_wh=7000 + n % 5000,
        )
        for n in range(charging)
    )
    if sessions[0].pk is None:
        sessions = list(ChargingSession.objects.filter(station=station).order_by("pk"))
    laundry = uses - charging
    cycles = Cycle.objects.bulk_create(
        Cycle(
            organization=world.org,
            property=prop,
            machine=machines[n % 2],
            seq=n + 1,
            program="40°C",
            person=people[n % residents],
            unit=units[n % residents],
            started_at=start + timedelta(seconds=span * n / laundry),
            ended_at=start + timedelta(seconds=span * n / laundry + 3600),
            energy_wh=900,
        )
        for n in range(laundry)
    )
    if cycles[0].pk is None:
        cycles = list(Cycle.objects.filter(property=prop).order_by("pk"))
    rows = []
    for session in sessions:
        assert session.started_at and session.energy_wh is not None
        price = pricing.price_charging(
            tariff, session.energy_wh, session.started_at, session.stopped_at, zone
        )
        rows.append(
            Use(
                organization=world.org,
                property=prop,
                kind=UseKind.CHARGING,
                charging_session=session,
                person_id=session.person_id,
                unit_id=session.unit_id,
                started_at=session.started_at,
                ended_at=session.stopped_at,
                day=session.started_at.astimezone(zone).date(),
                label="BENCH-CP",
                energy_wh=session.energy_wh,
                tariff=tariff,
                currency="CHF",
                amount=price.amount,
                vat_rate=810,
                pricing=price.detail,
            )
        )
    for cycle in cycles:
        assert cycle.started_at
        price = pricing.price_cycle(tariff, cycle.machine_id, cycle.program, 900)
        rows.append(
            Use(
                organization=world.org,
                property=prop,
                kind=UseKind.LAUNDRY,
                cycle=cycle,
                person_id=cycle.person_id,
                unit_id=cycle.unit_id,
                started_at=cycle.started_at,
                ended_at=cycle.ended_at,
                day=cycle.started_at.astimezone(zone).date(),
                label="Washer · 40°C",
                energy_wh=900,
                tariff=tariff,
                currency="CHF",
                amount=price.amount,
                vat_rate=810,
                pricing=price.detail,
            )
        )
    Use.objects.bulk_create(rows, batch_size=2000)
    return prop.pk, month


def floor(prop_id: int, residents: int) -> dict[str, float]:
    from django.db import connection, transaction
    from fpdf import FPDF
    from qrbill import QRBill

    figures = {}
    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT id, kind, vat_rate, amount, energy_wh, person_id FROM billing_use "
            "WHERE property_id = %s",
            [prop_id],
        )
        count = len(cursor.fetchall())
    figures["read_s"] = time.perf_counter() - started
    started = time.perf_counter()
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(
                "UPDATE billing_use SET invoice_line_id = NULL WHERE property_id = %s "
                "AND invoice_line_id IS NULL",
                [prop_id],
            )
        transaction.set_rollback(True)
    figures["update_s"] = time.perf_counter() - started
    figures["uses_read"] = count
    started = time.perf_counter()
    for _n in range(residents):
        bill = QRBill(
            account="CH44 3199 9123 0008 8901 2",
            creditor={"name": "Doorkeep SA", "pcode": "1003", "city": "Lausanne"},
            amount="123.45",
            reference_number="210000000003139471430009017",
        )
        svg = io.StringIO()
        bill.as_svg(svg, full_page=False)
        pdf = FPDF()
        pdf.add_page()
        pdf.set_font("helvetica", size=10)
        pdf.cell(text="Invoice")
        pdf.image(io.BytesIO(svg.getvalue().encode()), x=0, y=192, w=210)
        pdf.output()
    figures["bare_pdfs_s"] = time.perf_counter() - started
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--postgres", action="store_true")
    parser.add_argument("--residents", type=int, default=500)
    parser.add_argument("--uses", type=int, default=50_000)
    parser.add_argument("--profile", action="store_true", help="print where the run's time goes")
    args = parser.parse_args()
    db = _setup.setup(postgres=args.postgres)
    from django.conf import settings

    settings.DOORKEEP_OUTBOX_KICK = False  # the emails are queued, as a run queues them
    world = _setup.make_world(locks=0)
    started = time.perf_counter()
    prop_id, month = build(world, args.residents, args.uses)
    print(
        f"{db.label}: {args.residents} residents, {args.uses:,} uses in {month:%Y-%m} "
        f"(set-up {time.perf_counter() - started:.1f} s)"
    )
    import cProfile
    import pstats

    from doorkeep.billing import runs
    from doorkeep.billing.models import Invoice, Use

    profiler = cProfile.Profile() if args.profile else None
    if profiler:
        profiler.enable()
    started = time.perf_counter()
    run = runs.draft_run(None, prop_id, month)
    drafted = time.perf_counter() - started
    if profiler:
        profiler.disable()
    started = time.perf_counter()
    runs.finalize_run(None, run.pk)
    finalized = time.perf_counter() - started
    if profiler:
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(30)
    invoices = Invoice.objects.filter(run=run)
    billed = Use.objects.filter(property_id=prop_id, invoice_line__isnull=False).count()
    with_pdf = invoices.exclude(pdf=None).count()
    total = drafted + finalized
    print(f"draft: {drafted:.2f} s ({invoices.count()} invoices, {billed:,} uses billed)")
    print(f"finalize (numbers, references, {with_pdf} PDFs, emails queued): {finalized:.2f} s")
    verdict = "ok" if total <= TARGET_S else "MISSED"
    print(f"run: {total:.2f} s (target at most {TARGET_S:.0f} s): {verdict}")
    bare = floor(prop_id, args.residents)
    print(
        f"floor: one SELECT of {bare['uses_read']:,} uses {bare['read_s']:.2f} s, "
        f"one UPDATE of them {bare['update_s']:.2f} s, {args.residents} bare QR-bill pages "
        f"{bare['bare_pdfs_s']:.2f} s"
    )
    _setup.emit_result(
        "billing_run",
        db.backend,
        draft_s=round(drafted, 3),
        finalize_s=round(finalized, 3),
        total_s=round(total, 3),
        target_s=TARGET_S,
        passed=total <= TARGET_S,
        **{k: round(v, 3) for k, v in bare.items()},
    )
    return 0 if total <= TARGET_S else 1


if __name__ == "__main__":
    sys.exit(main())
