"""Laundry machines for the tests: Alice's site (units A-12 and B-3, Rosa
living in A-12 with an active platform badge and an account), a washer and a
dryer there, a real gateway on a free port, and simulated machines that
connect to it over real WebSockets (doorkeep.gateway.laundry.simulator)."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "gateway"))

from gateway_helpers import Running, start_gateway
from laundry_values import DRYER, SECRET, UID, WASHER

from doorkeep.badges import services as badges
from doorkeep.badges.models import Badge
from doorkeep.gateway.laundry.simulator import SimulatedMachine
from doorkeep.laundry.models import Machine, MachineKind


def _badges_conftest() -> Any:
    path = Path(__file__).resolve().parent.parent / "badges" / "conftest.py"
    spec = importlib.util.spec_from_file_location("badges_conftest", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["badges_conftest"] = module
    spec.loader.exec_module(module)
    return module


site = _badges_conftest().site  # the badges' site fixture: Alice's site, Rosa in A-12


@dataclass
class Laundry:
    site: Any
    washer: Machine
    dryer: Machine
    badge: Badge


def make_machine(
    site: Any, serial: str, *, kind: str = MachineKind.WASHER, name: str = ""
) -> Machine:
    return Machine.objects.create(
        organization_id=site.world.prop.organization_id,
        property=site.world.prop,
        kind=kind,
        name=name,
        serial=serial,
        secret_digest=Machine.digest_of(SECRET),
    )


def give_badge(site: Any, uid: str = UID) -> Badge:
    """Rosa asks for a badge; the platform operator hands it over."""
    req = badges.request_badge(site.rosa, badges.RequestSpec(property_id=site.world.prop.pk))
    badges.approve_request(site.operator, req.pk)
    badges.assign_badge(site.operator, req.pk, uid)
    badges.deliver_badge(site.operator, req.pk, "handed_over")
    req.refresh_from_db()
    assert req.badge is not None
    return req.badge


@pytest.fixture
def laundry(site: Any) -> Laundry:
    badge = give_badge(site)
    washer = make_machine(site, WASHER, name="Washer 1")
    dryer = make_machine(site, DRYER, kind=MachineKind.DRYER, name="Dryer 1")
    return Laundry(site, washer, dryer, badge)


@pytest.fixture
def gateway(transactional_db: None) -> Iterator[Running]:
    running, stop = start_gateway(poll_interval=0.2)
    yield running
    stop()


@pytest.fixture
def make(gateway: Running) -> Iterator[Callable[..., SimulatedMachine]]:
    """Simulated machines on the gateway's loop (cycles of 0.3 s unless
    told), closed after the test."""
    made: list[SimulatedMachine] = []

    def make_machine(serial: str = WASHER, secret: str = SECRET, **kwargs: Any) -> SimulatedMachine:
        kwargs.setdefault("cycle_seconds", 0.3)

        async def build() -> SimulatedMachine:
            return SimulatedMachine(
                gateway.url,
                serial,
                secret,
                on_event=lambda text: print(f"{serial}: {text}"),
                **kwargs,
            )

        machine = gateway.run(build())
        made.append(machine)
        return machine

    yield make_machine
    for machine in made:
        gateway.run(machine.close())
