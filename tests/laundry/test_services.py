"""Keeping a site's laundry machines: registering (a serial a removed machine
had brings it back with its cycles), removal closing the live connection,
and the list versions that rise with every change of who may use the
machines (the one equipment rule's hooks: badges, residents, billing mode)."""

from __future__ import annotations

from datetime import date

import pytest
from gateway_helpers import eventually
from laundry_values import WASHER

from doorkeep.badges import services as badges
from doorkeep.core.errors import Conflict, NotFound, PermissionDenied
from doorkeep.events.models import Event, EventKind
from doorkeep.gateway.simulator import NotWelcomed
from doorkeep.laundry import services
from doorkeep.laundry.models import Cycle, Machine
from doorkeep.properties.models import BillingMode
from doorkeep.residents.services import ResidentSpec, add_resident, set_billing_mode


def version(machine: Machine) -> int:
    return Machine.objects.values_list("list_version", flat=True).get(pk=machine.pk)


def test_registering_checks_the_serial_and_who_asks(laundry):
    world = laundry.site.world
    machine, secret = services.register_machine(
        world.alice, world.prop.pk, services.MachineSpec(" wm-2025-0007 ", "dryer", "  Dryer   3 ")
    )
    assert (machine.serial, machine.kind, machine.name) == ("WM-2025-0007", "dryer", "Dryer 3")
    assert len(secret) == 24 and machine.secret_digest == Machine.digest_of(secret)
    assert Event.objects.filter(kind=EventKind.MACHINE_REGISTERED, machine_id=machine.pk).exists()

    with pytest.raises(PermissionDenied):
        services.register_machine(world.bob, world.prop.pk, services.MachineSpec("WM-BOB-0001"))
    with pytest.raises(NotFound):
        services.register_machine(world.charlie, world.prop.pk, services.MachineSpec("WM-C-0001"))
    with pytest.raises(Conflict):
        services.register_machine(
            world.charlie, world.charlie_prop.pk, services.MachineSpec(WASHER)
        )


def test_a_removed_machine_registered_again_comes_back_with_its_cycles(laundry):
    world = laundry.site.world
    Cycle.objects.create(
        organization_id=world.org.pk, property=world.prop, machine=laundry.washer, seq=1
    )
    services.remove_machine(world.alice, laundry.washer.pk)
    before = version(laundry.washer)

    again, secret = services.register_machine(
        world.alice, world.prop.pk, services.MachineSpec(WASHER, name="Washer again")
    )

    assert again.pk == laundry.washer.pk and again.removed_at is None
    assert again.name == "Washer again" and again.acked_version == 0
    assert version(again) == before + 1
    assert again.secret_digest == Machine.digest_of(secret)
    assert Cycle.objects.filter(machine=again).count() == 1


def test_removing_a_connected_machine_closes_its_connection_and_refuses_the_next(
    laundry, gateway, make
):
    machine = make()
    gateway.run(machine.connect())

    services.remove_machine(laundry.site.world.alice, laundry.washer.pk)

    eventually(lambda: machine.close_code == 4009)
    with pytest.raises(NotWelcomed):
        gateway.run(machine.connect())
    assert [
        m.label
        for m in services.machines_of_site(laundry.site.world.alice, laundry.site.world.prop.pk)
    ] == ["Dryer 1"]


def test_every_change_of_who_may_use_the_machines_raises_their_list_versions(laundry):
    world = laundry.site.world
    start = version(laundry.washer)
    add_resident(
        world.alice,
        world.prop.pk,
        ResidentSpec(
            "Bruno", "bruno@example.com", date(2024, 1, 1), unit_id=laundry.site.other_unit.pk
        ),
    )
    after_move_in = version(laundry.washer)
    badges.report_lost(laundry.site.rosa, laundry.badge.pk)
    after_lost = version(laundry.washer)
    set_billing_mode(world.alice, world.prop.pk, BillingMode.BILLING_AND_PAYMENTS, confirm=True)
    after_mode = version(laundry.washer)

    assert start < after_move_in < after_lost < after_mode
    assert version(laundry.dryer) == after_mode
