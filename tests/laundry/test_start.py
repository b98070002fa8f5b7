"""A resident starts a free machine of their site from the portal: the
`start` command reaches the simulated machine through the real gateway, and
the cycle that follows is theirs. Refused when the machine is busy, out of
order or offline, when the machine itself refuses, when the one equipment
rule refuses their badge, and to anyone who does not live there."""

from __future__ import annotations

import pytest
from gateway_helpers import eventually

from doorkeep.badges import services as badges
from doorkeep.core.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from doorkeep.events.models import DenyReason, Event, EventKind
from doorkeep.gateway.routing import MachineOffline, MachineRejected, MachineTimeout
from doorkeep.laundry import services
from doorkeep.laundry.models import Cycle, Machine


def state_of(machine_id: int) -> str:
    return Machine.objects.get(pk=machine_id).state


def test_a_resident_starts_a_free_machine_and_the_cycle_is_theirs(laundry, gateway, make):
    machine = make(cycle_seconds=0.2)
    gateway.run(machine.connect())

    answer = services.start_machine(laundry.site.rosa, laundry.washer.pk, program="Quick 15")

    assert machine.started == [answer.request_id]
    eventually(lambda: Cycle.objects.filter(ended_at__isnull=False).exists())
    cycle = Cycle.objects.get()
    assert cycle.remote and cycle.program == "Quick 15" and cycle.energy_wh == 190
    assert cycle.person_id == laundry.site.rosa_person.pk
    assert cycle.unit_id == laundry.site.unit.pk
    event = Event.objects.get(kind=EventKind.LAUNDRY_AUTHORIZED, machine_id=laundry.washer.pk)
    assert event.data["request_id"] == answer.request_id and event.data["asked"] == "portal"
    assert event.actor_id == laundry.site.rosa.pk


def test_a_machine_running_a_cycle_or_out_of_order_cannot_be_started(laundry, gateway, make):
    machine = make(cycle_seconds=30)
    gateway.run(machine.connect())
    gateway.run(machine.badge("04A1B2C3D4E5F6"))
    eventually(lambda: state_of(laundry.washer.pk) == "running")

    with pytest.raises(Conflict) as busy:
        services.start_machine(laundry.site.rosa, laundry.washer.pk)
    assert busy.value.code == "machine_busy" and busy.value.status == 409

    gateway.run(machine.end_cycle())
    gateway.run(machine.set_state("out_of_order"))
    eventually(lambda: state_of(laundry.washer.pk) == "out_of_order")
    with pytest.raises(Conflict) as broken:
        services.start_machine(laundry.site.rosa, laundry.washer.pk)
    assert broken.value.code == "machine_out_of_order"
    assert machine.started == []


def test_an_offline_machine_answers_503_and_the_attempt_is_logged(laundry, gateway):
    with pytest.raises(MachineOffline) as offline:
        services.start_machine(laundry.site.rosa, laundry.washer.pk)

    assert offline.value.status == 503
    refused = Event.objects.get(kind=EventKind.LAUNDRY_REFUSED, machine_id=laundry.washer.pk)
    assert refused.reason == "machine_offline" and refused.person_id == laundry.site.rosa_person.pk


def test_the_machines_own_refusal_is_a_409_with_its_reason(laundry, gateway, make):
    machine = make(refuse_starts="door open")
    gateway.run(machine.connect())

    with pytest.raises(MachineRejected) as rejected:
        services.start_machine(laundry.site.rosa, laundry.washer.pk)

    assert rejected.value.status == 409 and "door open" in rejected.value.message
    assert not Cycle.objects.exists()


def test_a_machine_that_does_not_answer_is_a_504(laundry, gateway, make):
    machine = make()
    gateway.run(machine.connect())

    async def deaf(message):
        pass

    machine._start_asked = deaf  # type: ignore[method-assign]
    with pytest.raises(MachineTimeout):
        services.start_machine(laundry.site.rosa, laundry.washer.pk, timeout=0.5)


def test_a_lost_badge_starts_no_machine_and_the_refusal_says_why(laundry, gateway, make):
    machine = make()
    gateway.run(machine.connect())
    badges.report_lost(laundry.site.rosa, laundry.badge.pk)

    with pytest.raises(PermissionDenied) as refused:
        services.start_machine(laundry.site.rosa, laundry.washer.pk)

    assert refused.value.code == "laundry_refused"
    assert refused.value.details["reason"] == DenyReason.BADGE_LOST
    assert "reported lost" in refused.value.message
    assert machine.started == []
    assert Event.objects.filter(
        kind=EventKind.LAUNDRY_REFUSED, reason=DenyReason.BADGE_LOST, machine_id=laundry.washer.pk
    ).exists()


def test_someone_who_does_not_live_there_finds_no_machine(laundry, gateway, make):
    machine = make()
    gateway.run(machine.connect())

    for who in (laundry.site.world.alice, laundry.site.world.bob, laundry.site.world.charlie):
        with pytest.raises(NotFound):
            services.start_machine(who, laundry.washer.pk)
    assert machine.started == []


def test_a_program_the_machine_does_not_offer_is_refused(laundry, gateway, make):
    machine = make()
    gateway.run(machine.connect())

    with pytest.raises(InvalidInput) as bad:
        services.start_machine(laundry.site.rosa, laundry.washer.pk, program="Hot tub")

    assert bad.value.code == "invalid_program" and "Cotton 40" in bad.value.message
