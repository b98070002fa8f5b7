"""Charging stations for the tests: Alice's site (units A-12 and B-3, Rosa
living in A-12 with an active platform badge), a shared station and a
private one at Rosa's parking space, and a real gateway on a free port that
stations reach with the `ocpp` library over real WebSockets."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "gateway"))

from charger_values import PASSWORD, UID
from gateway_helpers import Running, start_gateway

from doorkeep.badges import services as badges
from doorkeep.badges.models import Badge
from doorkeep.chargers.models import Station


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
class Stations:
    site: Any
    shared: Station
    private: Station
    badge: Badge


def make_station(site: Any, cp_id: str, *, space: Any = None) -> Station:
    return Station.objects.create(
        organization_id=site.world.prop.organization_id,
        property=site.world.prop,
        parking_space=space,
        charge_point_id=cp_id,
        password_digest=Station.digest_of(PASSWORD),
    )


def give_badge(site: Any, uid: str = UID) -> Badge:
    req = badges.request_badge(site.rosa, badges.RequestSpec(property_id=site.world.prop.pk))
    badges.approve_request(site.operator, req.pk)
    badges.assign_badge(site.operator, req.pk, uid)
    badges.deliver_badge(site.operator, req.pk, "handed_over")
    req.refresh_from_db()
    assert req.badge is not None
    return req.badge


@pytest.fixture
def stations(site: Any) -> Stations:
    badge = give_badge(site)
    shared = make_station(site, "CP-SHARED-1")
    private = make_station(site, "CP-PRIVATE-7", space=site.space)
    return Stations(site, shared, private, badge)


@pytest.fixture
def gateway(transactional_db: None) -> Iterator[Running]:
    running, stop = start_gateway(poll_interval=0.5)
    yield running
    stop()
