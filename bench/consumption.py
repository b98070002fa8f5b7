"""The resident's consumption page with a year of use: GET /portal/consumption/
(a chart per month beside the table, one aggregate query), as the resident of
a site with 500 residents, through Django's test client: its server time,
median and p95 over 50 requests; target p95 <= 50 ms.

In the same run, the machine's floor: the bare aggregate query behind the
page (billing.consumption.months), a request without a page through the
same client (GET /sw.js: the session and the middleware), and a trivial
page of the same layout (GET /settings/tokens/: the header's navigation,
the messages, one short list). Also, for information: the resident's month page (a bar
per day and the month's uses), and the site's months page over every
resident's uses.

Data, written with bulk_create in the shape billing.usage records it: one
resident with ``--uses`` uses over the last 12 months (charging sessions
and laundry cycles, 1,500 by default), and ``--residents`` - 1 others with
``--others`` uses each (499 x 100 by default), each use with its charging
session or laundry cycle.

    .venv/bin/python bench/consumption.py [--postgres] [--repeat 50] [--uses 1500]
        [--residents 500] [--others 100] [--quiet-below LOAD]
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _setup

TARGET_MS = 50.0
BATCH = 2000


def wait_for_quiet(below: float) -> None:
    if below <= 0:
        return
    deadline = time.monotonic() + 600
    while os.getloadavg()[0] >= below and time.monotonic() < deadline:
        time.sleep(5)
    print(f"(load average {os.getloadavg()[0]:.2f}; waited for < {below})")


def build(world: _setup.World, *, uses: int, residents: int, others: int) -> Any:
    """The site's units, residents and uses; returns the resident's account."""
    from django.db import transaction

    from doorkeep.accounts.services import create_user
    from doorkeep.billing.models import Tariff, Use, UseKind
    from doorkeep.chargers.models import ChargingSession, Station
    from doorkeep.keys.models import Person
    from doorkeep.laundry.models import Cycle, Machine
    from doorkeep.properties.models import Property, zone_of
    from doorkeep.residents.models import Residency, Unit

    rng = random.Random(14)
    prop = world.prop
    Property.objects.filter(pk=prop.pk).update(timezone="Europe/Zurich", currency="CHF")
    prop.refresh_from_db()
    zone = zone_of(prop)
    org_id = prop.organization_id
    rosa = create_user("rosa@example.com", _setup.PASSWORD, name="Rosa Resident")
    now = datetime.now(UTC)
    first_day = (now.astimezone(zone).date().replace(day=1) - timedelta(days=330)).replace(day=1)
    span = (now - datetime.combine(first_day, datetime.min.time(), tzinfo=zone)).total_seconds()

    with transaction.atomic():
        Tariff.objects.create(
            property=prop,
            valid_from=date(2020, 1, 1),
            currency="CHF",
            vat_rate=810,
            charging_rate=3000,
            laundry_cycle_price=250,
            laundry_rate=1000,
        )
        units = Unit.objects.bulk_create(
            [Unit(property=prop, label=f"U-{n:03d}") for n in range(residents)]
        )
        people = Person.objects.bulk_create(
            [
                Person(
                    organization_id=org_id,
                    user=rosa if n == 0 else None,
                    name="Rosa Resident" if n == 0 else f"Resident {n:03d}",
                    email="rosa@example.com" if n == 0 else f"resident{n:03d}@example.com",
                )
                for n in range(residents)
            ]
        )
        Residency.objects.bulk_create(
            [
                Residency(unit=unit, person=person, move_in=date(2020, 1, 1))
                for unit, person in zip(units, people, strict=True)
            ]
        )
        station = Station.objects.create(
            organization_id=org_id,
            property=prop,
            charge_point_id="CP-BENCH-1",
            name="Garage",
            password_digest=Station.digest_of("bench"),
        )
        washer = Machine.objects.create(
            organization_id=org_id,
            property=prop,
            name="Washer 1",
            serial="WM-BENCH-1",
            secret_digest=Machine.digest_of("bench"),
        )
        tariff = Tariff.objects.get(property=prop)

    def moments(count: int) -> list[datetime]:
        return sorted(now - timedelta(seconds=rng.random() * span) for _ in range(count))

    seq = 0

    def write(person: Any, unit: Any, count: int) -> None:
        nonlocal seq
        for start in range(0, count, BATCH):
            starts = moments(min(BATCH, count - start))
            sessions, cycles, rows = [], [], []
            for at in starts:
                seq += 1
                if seq % 3 == 0:
                    wh = rng.randrange(2_000, 40_000)
                    sessions.append(
                        ChargingSession(
                            organization_id=org_id,
                            property=prop,
                            station=station,
                            connector=1,
                            transaction_id=str(seq),
                            person=person,
                            unit=unit,
                            started_at=at,
                            stopped_at=at + timedelta(hours=2),
                            energy_wh=wh,
                        )
                    )
                else:
                    wh = rng.randrange(300, 2_500)
                    cycles.append(
                        Cycle(
                            organization_id=org_id,
                            property=prop,
                            machine=washer,
                            seq=seq,
                            program="Eco 40",
                            person=person,
                            unit=unit,
                            started_at=at,
                            ended_at=at + timedelta(minutes=90),
                            energy_wh=wh,
                        )
                    )
            with transaction.atomic():
                ChargingSession.objects.bulk_create(sessions, batch_size=500)
                Cycle.objects.bulk_create(cycles, batch_size=500)
                for s in sessions:
                    assert s.started_at is not None and s.energy_wh is not None
                    rows.append(
                        Use(
                            organization_id=org_id,
                            property=prop,
                            kind=UseKind.CHARGING,
                            charging_session=s,
                            person=person,
                            unit=unit,
                            started_at=s.started_at,
                            ended_at=s.stopped_at,
                            day=s.started_at.astimezone(zone).date(),
                            label="Garage",
                            energy_wh=s.energy_wh,
                            tariff=tariff,
                            currency="CHF",
                            amount=(s.energy_wh * 3 + 5) // 10,
                            vat_rate=810,
                        )
                    )
                for c in cycles:
                    assert c.started_at is not None and c.energy_wh is not None
                    rows.append(
                        Use(
                            organization_id=org_id,
                            property=prop,
                            kind=UseKind.LAUNDRY,
                            cycle=c,
                            person=person,
                            unit=unit,
                            started_at=c.started_at,
                            ended_at=c.ended_at,
                            day=c.started_at.astimezone(zone).date(),
                            label="Washer 1 · Eco 40",
                            energy_wh=c.energy_wh,
                            tariff=tariff,
                            currency="CHF",
                            amount=250 + (c.energy_wh + 5) // 10,
                            vat_rate=810,
                        )
                    )
                Use.objects.bulk_create(rows, batch_size=500)

    write(people[0], units[0], uses)
    for person, unit in zip(people[1:], units[1:], strict=True):
        write(person, unit, others)
    return rosa


def timed(call: Callable[[], Any], repeat: int) -> list[float]:
    call()  # warm-up: templates, caches, the connection
    seconds = []
    for _ in range(repeat):
        started = time.perf_counter()
        call()
        seconds.append(time.perf_counter() - started)
    return seconds


def figures(label: str, seconds: list[float]) -> dict[str, float]:
    ms = [s * 1000 for s in seconds]
    median, p95 = statistics.median(ms), _setup.percentile(ms, 95)
    print(f"{label}: median {median:.2f} ms, p95 {p95:.2f} ms, max {max(ms):.2f} ms")
    return {"median_ms": round(median, 2), "p95_ms": round(p95, 2)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--postgres", action="store_true", help="use a throw-away PostgreSQL db")
    parser.add_argument("--repeat", type=int, default=50, help="timed requests per page")
    parser.add_argument("--uses", type=int, default=1500, help="the resident's uses in a year")
    parser.add_argument("--residents", type=int, default=500, help="residents of the site")
    parser.add_argument("--others", type=int, default=100, help="uses of each other resident")
    parser.add_argument("--quiet-below", type=float, default=0.0, help="wait for a quiet machine")
    args = parser.parse_args()

    db = _setup.setup(postgres=args.postgres)
    from django.db import connection, reset_queries
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from doorkeep.billing import consumption
    from doorkeep.billing.models import Use

    print(f"== the resident's consumption page on {db.label} ==")
    started = time.perf_counter()
    world = _setup.make_world(0)
    rosa = build(world, uses=args.uses, residents=args.residents, others=args.others)
    if db.backend == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
    total = Use.objects.count()
    mine = Use.objects.filter(person__user=rosa).count()
    print(
        f"setup: {args.residents} residents, {total:,} uses ({mine:,} of the resident's, "
        f"over the last 12 months) in {time.perf_counter() - started:.1f} s"
    )

    client = Client()
    client.force_login(rosa)
    owner = Client()
    owner.force_login(world.owner)
    portal = "/portal/consumption/"
    this_month = consumption.mine(rosa).today.strftime("%Y-%m")
    month_page = f"/portal/consumption/{this_month}/"
    site_page = f"/properties/{world.prop.pk}/consumption/"
    pages = (
        (portal, client),
        (month_page, client),
        (site_page, owner),
        ("/sw.js", client),
        ("/settings/tokens/", client),
    )
    for url, who in pages:
        response = who.get(url)
        assert response.status_code == 200, (url, response.status_code)
    body = client.get(portal).content.decode()
    assert body.count('<g class="bar"') == 12, "a bar per month"
    reset_queries()
    with CaptureQueriesContext(connection) as ctx:
        client.get(portal)
    queries = len(ctx.captured_queries)

    wait_for_quiet(args.quiet_below)
    load_before = os.getloadavg()[0]
    scope = consumption.mine(rosa)
    floor_query = figures(
        "floor: the bare aggregate query (consumption.months, 12 months)",
        timed(lambda: consumption.months(scope), args.repeat),
    )
    floor_request = figures(
        "floor: a request without a page (GET /sw.js, signed in)",
        timed(lambda: client.get("/sw.js"), args.repeat),
    )
    floor_page = figures(
        "floor: a trivial page of the same layout (GET /settings/tokens/, signed in)",
        timed(lambda: client.get("/settings/tokens/"), args.repeat),
    )
    page = figures(
        f"GET {portal} ({queries} SQL queries, {len(body):,} bytes)",
        timed(lambda: client.get(portal), args.repeat),
    )
    month = figures(
        f"GET {month_page} (the month's days and uses)",
        timed(lambda: client.get(month_page), args.repeat),
    )
    site = figures(
        f"GET {site_page} (the site's months, {total:,} uses, as its owner)",
        timed(lambda: owner.get(site_page), args.repeat),
    )
    load = f"{load_before:.2f} -> {os.getloadavg()[0]:.2f}"
    print(f"load average during the timed requests: {load}")
    passed = page["p95_ms"] <= TARGET_MS
    print(
        f"{'PASS' if passed else 'FAIL'}: the consumption page's p95 {page['p95_ms']:.2f} ms "
        f"(target <= {TARGET_MS:.0f} ms; the floor: query {floor_query['median_ms']:.2f} ms, "
        f"trivial page {floor_page['median_ms']:.2f} ms, medians)"
    )
    _setup.emit_result(
        "consumption",
        db.backend,
        uses=total,
        resident_uses=mine,
        queries=queries,
        page=page,
        month_page=month,
        site_page=site,
        floor_query=floor_query,
        floor_request=floor_request,
        floor_page=floor_page,
        passed=passed,
        load=load,
    )
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
