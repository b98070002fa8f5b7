"""Cycles as the controller reports them: a cycle released by a badge
belongs to the badge's holder and to the unit they lived in that day; starts
and ends are stored once however often they are sent; what happened while
the machine was offline is uploaded later; an end without a known start is
kept and flagged for review; and an ended cycle is a priced use."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from gateway_helpers import eventually
from laundry_values import UID

from doorkeep.billing.models import Use
from doorkeep.events.models import Event, EventKind
from doorkeep.laundry.models import Cycle, CycleReview, Machine
from doorkeep.residents.models import Residency
from doorkeep.residents.services import site_today


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def acks(machine: Any) -> list[dict[str, Any]]:
    return [m for m in machine.received if m.get("type") == "cycles.ack"]


def errors(machine: Any) -> list[dict[str, Any]]:
    return [m for m in machine.received if m.get("type") == "error"]


def send(gateway: Any, machine: Any, *records: dict[str, Any]) -> None:
    """Send one ``cycles`` batch and wait for its answer (an ack or an error)."""
    before = len(acks(machine)) + len(errors(machine))
    gateway.run(machine._send({"type": "cycles", "cycles": list(records)}))
    eventually(lambda: len(acks(machine)) + len(errors(machine)) > before)


def test_a_cycle_released_by_a_badge_is_the_residents_with_their_unit_and_is_priced(
    laundry, gateway, make
):
    machine = make(cycle_seconds=0.2)
    gateway.run(machine.connect())

    decision = gateway.run(machine.badge(UID, "Cotton 40"))
    assert decision is not None and decision.granted
    eventually(lambda: Cycle.objects.filter(ended_at__isnull=False).exists())

    cycle = Cycle.objects.get()
    assert (cycle.machine_id, cycle.seq, cycle.program) == (laundry.washer.pk, 1, "Cotton 40")
    assert cycle.person_id == laundry.site.rosa_person.pk
    assert cycle.unit_id == laundry.site.unit.pk
    assert cycle.badge_id == laundry.badge.pk and cycle.tag == UID
    assert cycle.energy_wh == 820 and not cycle.remote and not cycle.review
    assert cycle.started_at is not None and cycle.ended_at is not None
    assert cycle.started_at < cycle.ended_at
    assert Use.objects.filter(
        cycle=cycle, person_id=cycle.person_id, unit_id=cycle.unit_id
    ).exists()
    kinds = list(
        Event.objects.filter(machine_id=laundry.washer.pk, kind__startswith="laundry.")
        .order_by("id")
        .values_list("kind", flat=True)
    )
    assert kinds == [
        EventKind.LAUNDRY_AUTHORIZED,
        EventKind.LAUNDRY_STARTED,
        EventKind.LAUNDRY_ENDED,
    ]
    eventually(lambda: Machine.objects.get(pk=laundry.washer.pk).state == "free")
    eventually(lambda: not machine.cycle_outbox)


def test_a_start_and_an_end_sent_again_find_the_same_cycle(laundry, gateway, make):
    machine = make()
    gateway.run(machine.connect())
    started = datetime.now(UTC) - timedelta(minutes=50)
    start = {
        "seq": 7,
        "phase": "start",
        "started": iso(started),
        "program": "Cotton 60",
        "entry": laundry.badge.pk,
    }
    end = {
        "seq": 7,
        "phase": "end",
        "ended": iso(started + timedelta(minutes=45)),
        "program": "Cotton 60",
        "energy_wh": 1150,
    }

    send(gateway, machine, start, end)
    send(gateway, machine, start, end)
    send(gateway, machine, end)

    assert [(a["starts"], a["ends"]) for a in acks(machine)] == [([7], [7]), ([7], [7]), ([], [7])]
    cycle = Cycle.objects.get()
    assert (cycle.seq, cycle.energy_wh, cycle.started_at) == (
        7,
        1150,
        started.replace(microsecond=started.microsecond // 1000 * 1000),
    )
    assert Use.objects.filter(cycle=cycle).count() == 1
    assert Event.objects.filter(kind=EventKind.LAUNDRY_STARTED).count() == 1
    assert Event.objects.filter(kind=EventKind.LAUNDRY_ENDED).count() == 1


def test_cycles_run_while_offline_are_uploaded_when_the_machine_is_back(laundry, gateway, make):
    machine = make(cycle_seconds=0.1)
    gateway.run(machine.connect())
    eventually(lambda: Machine.objects.get(pk=laundry.washer.pk).acked_version == machine.version)
    gateway.run(machine.go_offline())
    eventually(lambda: not Machine.objects.get(pk=laundry.washer.pk).online)

    gateway.run(machine.badge(UID, "Quick 15"))
    eventually(lambda: machine.running is None)
    gateway.run(machine.badge(UID, "Synthetics 30"))
    eventually(lambda: machine.running is None)
    assert len(machine.cycle_outbox) == 4 and len(machine.outbox) == 2
    assert not Cycle.objects.exists()

    gateway.run(machine.connect())

    assert not machine.cycle_outbox and not machine.outbox
    cycles = list(Cycle.objects.order_by("seq"))
    assert [(c.seq, c.program, c.energy_wh) for c in cycles] == [
        (1, "Quick 15", 190),
        (2, "Synthetics 30", 480),
    ]
    assert all(c.person_id == laundry.site.rosa_person.pk and c.ended_at for c in cycles)
    assert all(
        c.received_at > c.occurred_at for c in Event.objects.filter(kind=EventKind.LAUNDRY_STARTED)
    )
    assert Use.objects.filter(cycle__in=cycles).count() == 2


def test_an_end_without_a_known_start_is_kept_flagged_until_its_start_comes(laundry, gateway, make):
    machine = make()
    gateway.run(machine.connect())
    ended = datetime.now(UTC) - timedelta(minutes=5)

    send(gateway, machine, {"seq": 3, "phase": "end", "ended": iso(ended), "energy_wh": 600})

    cycle = Cycle.objects.get()
    assert cycle.review == CycleReview.END_WITHOUT_START
    assert cycle.started_at is None and cycle.person_id is None and cycle.energy_wh == 600
    assert Event.objects.filter(kind=EventKind.LAUNDRY_FLAGGED, reason="end_without_start").exists()
    assert not Use.objects.exists()

    start = {
        "seq": 3,
        "phase": "start",
        "started": iso(ended - timedelta(minutes=40)),
        "program": "Cotton 40",
        "entry": laundry.badge.pk,
    }
    send(gateway, machine, start)

    cycle.refresh_from_db()
    assert cycle.review == "" and cycle.person_id == laundry.site.rosa_person.pk
    assert cycle.program == "Cotton 40"
    assert Use.objects.filter(cycle=cycle).count() == 1


def test_a_cycle_released_by_no_badge_of_a_resident_is_flagged(laundry, gateway, make):
    machine = make()
    gateway.run(machine.connect())
    now = datetime.now(UTC)

    send(gateway, machine, {"seq": 1, "phase": "start", "started": iso(now), "entry": 987654})

    cycle = Cycle.objects.get()
    assert cycle.review == CycleReview.NOT_AUTHORIZED and cycle.person_id is None


def test_a_cycle_belongs_to_the_unit_its_resident_lived_in_that_day(laundry, gateway, make):
    site = laundry.site
    today = site_today(site.world.prop)
    Residency.objects.filter(pk=site.residency.pk).update(move_in=today - timedelta(days=10))
    Residency.objects.create(
        unit=site.other_unit,
        person=site.rosa_person,
        move_in=today - timedelta(days=100),
        move_out=today - timedelta(days=11),
    )
    machine = make()
    gateway.run(machine.connect())
    back_then = datetime.now(UTC) - timedelta(days=20)

    send(
        gateway,
        machine,
        {"seq": 1, "phase": "start", "started": iso(back_then), "entry": laundry.badge.pk},
        {"seq": 2, "phase": "start", "started": iso(datetime.now(UTC)), "entry": laundry.badge.pk},
    )

    units = dict(Cycle.objects.values_list("seq", "unit_id"))
    assert units == {1: site.other_unit.pk, 2: site.unit.pk}


def test_a_batch_with_a_bad_record_is_refused_whole(laundry, gateway, make):
    machine = make()
    gateway.run(machine.connect())
    now = iso(datetime.now(UTC))

    send(
        gateway,
        machine,
        {"seq": 1, "phase": "start", "started": now},
        {"seq": 2, "phase": "rinse", "started": now},
    )
    send(gateway, machine, {"seq": 4, "phase": "end", "ended": now, "energy_wh": -5})
    send(gateway, machine, {"seq": 5, "phase": "start", "started": "yesterday"})

    assert [(e["code"], e.get("ref")) for e in errors(machine)] == [
        ("bad_message", 2),
        ("bad_message", 4),
        ("bad_message", 5),
    ]
    assert not Cycle.objects.exists()
    assert machine.online
