"""The laundry controller's protocol against the real gateway: the handshake
of a lock with "kind": "laundry", its list of badges kept in step (a lost
badge reaches it as a difference), the badges it decides by itself stored as
events once, its state, and the errors and close codes of the lock protocol."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from gateway_helpers import PROMPTLY, eventually
from laundry_values import SECRET, UID, WASHER
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from doorkeep.badges import services as badges
from doorkeep.events.models import DenyReason, Event, EventKind
from doorkeep.gateway.simulator import NotWelcomed
from doorkeep.laundry import services
from doorkeep.laundry.models import Machine
from doorkeep.properties.models import BillingMode
from doorkeep.residents.services import ResidentSpec, add_resident, set_billing_mode, site_today

OTHER_UID = "04B0B1B2B3B4B5"


def washer() -> Machine:
    return Machine.objects.get(serial=WASHER)


def tags_on(machine: Any) -> set[str]:
    return {e["match"] for e in machine.entries.values()}


def in_step(machine: Any) -> None:
    """The platform recorded the machine's acknowledgement of what it holds."""
    eventually(lambda: washer().acked_version == machine.version)


def received(machine: Any, kind: str) -> list[dict[str, Any]]:
    return [m for m in machine.received if m.get("type") == kind]


async def raw_hello(url: str, hello: dict[str, Any]) -> tuple[list[dict[str, Any]], Any]:
    """Send one hello on a plain WebSocket; the frames received and how it closed."""
    frames = []
    async with connect(url, open_timeout=5) as ws:
        await ws.send(json.dumps(hello))
        try:
            async with asyncio.timeout(5):
                async for raw in ws:
                    frames.append(json.loads(raw))
        except (TimeoutError, ConnectionClosed):
            pass
    return frames, (ws.close_code, ws.close_reason)


def hello(**fields: Any) -> dict[str, Any]:
    return {
        "type": "hello",
        "protocol": 1,
        "kind": "laundry",
        "serial": WASHER,
        "secret": SECRET,
        "list_version": 0,
        **fields,
    }


def test_a_machine_with_its_secret_is_welcomed_with_the_badges_it_may_take(laundry, gateway, make):
    machine = make()
    gateway.run(machine.connect())

    welcome = received(machine, "welcome")[0]
    assert welcome["protocol"] == 1 and welcome["heartbeat"] == 30
    assert welcome["last_seq"] == 0 and welcome["last_cycle"] == 0
    assert "pin_key" not in welcome
    full = received(machine, "list.full")[0]
    assert full["entries"] == [{"id": laundry.badge.pk, "kind": "tag", "match": UID}]
    assert full["timezone"] == laundry.site.world.prop.timezone
    row = washer()
    assert row.online and row.state == "free"
    assert row.programs == list(machine.programs)
    eventually(lambda: washer().acked_version == row.list_version == machine.version)
    assert Event.objects.filter(kind=EventKind.MACHINE_CONNECTED, machine_id=row.pk).exists()


def test_a_wrong_secret_an_unknown_serial_and_a_removed_machine_are_refused_alike(
    laundry, gateway, make
):
    for serial, secret in ((WASHER, "not-the-secret"), ("WM-NOBODY-9999", SECRET)):
        machine = make(serial, secret)
        with pytest.raises(NotWelcomed) as refused:
            gateway.run(machine.connect())
        assert (refused.value.code, refused.value.reason) == (
            4003,
            "unknown device or wrong secret",
        )
    services.remove_machine(laundry.site.world.alice, laundry.washer.pk)
    machine = make()
    with pytest.raises(NotWelcomed) as refused:
        gateway.run(machine.connect())
    assert refused.value.code == 4003
    assert not washer().online
    wrong = Event.objects.filter(kind=EventKind.MACHINE_REFUSED, machine_id=laundry.washer.pk)
    assert [e.reason for e in wrong] == ["wrong_secret"]


def test_a_hello_it_cannot_read_is_answered_with_an_error_then_closed(laundry, gateway):
    frames, closed = gateway.run(raw_hello(gateway.url, hello(secret=None)))
    assert frames[0]["code"] == "bad_message" and closed[0] == 4002

    frames, closed = gateway.run(raw_hello(gateway.url, hello(state="washing")))
    assert frames == [
        {
            "type": "error",
            "code": "bad_message",
            "message": "state is free, running or out_of_order",
        }
    ]
    assert closed == (4002, "bad_message")

    frames, closed = gateway.run(raw_hello(gateway.url, hello(protocol=2)))
    assert frames[0]["code"] == "unsupported_protocol" and closed[0] == 4005
    assert not washer().online


def test_a_lost_badge_reaches_the_machine_as_a_difference_and_is_refused_as_lost(
    laundry, gateway, make
):
    machine = make()
    gateway.run(machine.connect())
    assert UID in tags_on(machine)
    before = machine.version

    badges.report_lost(laundry.site.rosa, laundry.badge.pk)

    gateway.run(machine.wait_for_version(before + 1, timeout=PROMPTLY))
    diff = received(machine, "list.diff")[-1]
    assert (diff["from"], diff["add"], diff["remove"]) == (before, [], [laundry.badge.pk])
    assert UID not in tags_on(machine)
    eventually(lambda: washer().acked_version == washer().list_version == machine.version)

    decision = gateway.run(machine.badge(UID))
    assert decision is not None and not decision.granted
    assert machine.running is None
    refused = Event.objects.get(kind=EventKind.LAUNDRY_REFUSED, machine_id=laundry.washer.pk)
    assert refused.reason == DenyReason.BADGE_LOST
    assert refused.person_id == laundry.site.rosa_person.pk
    assert refused.data["tag"] == UID and refused.device_seq == decision.seq


def test_a_machine_in_step_hears_so_and_a_change_while_offline_comes_as_a_difference(
    laundry, gateway, make
):
    machine = make()
    gateway.run(machine.connect())
    in_step(machine)
    gateway.run(machine.go_offline())
    gateway.run(machine.connect())
    assert received(machine, "list.ok")[-1] == {"type": "list.ok", "version": machine.version}

    gateway.run(machine.go_offline())
    held = machine.version
    badges.report_lost(laundry.site.rosa, laundry.badge.pk)
    gateway.run(machine.connect())

    diff = received(machine, "list.diff")[-1]
    assert diff["from"] == held and diff["remove"] == [laundry.badge.pk]
    assert machine.version == washer().list_version


def test_only_the_platforms_badges_are_listed_in_a_billing_and_payments_site(
    laundry, gateway, make
):
    world = laundry.site.world
    bruno = add_resident(
        world.alice,
        world.prop.pk,
        ResidentSpec(
            "Bruno Resident",
            "bruno@example.com",
            date(2024, 1, 1),
            unit_id=laundry.site.other_unit.pk,
        ),
    )
    own = badges.register_existing_badge(
        world.alice, world.prop.pk, bruno.person_id, uid=OTHER_UID, atqa="0044", sak="08"
    )
    machine = make()
    gateway.run(machine.connect())
    assert tags_on(machine) == {UID, OTHER_UID}

    set_billing_mode(world.alice, world.prop.pk, BillingMode.BILLING_AND_PAYMENTS, confirm=True)

    eventually(lambda: machine.version == washer().list_version)
    assert tags_on(machine) == {UID}
    assert received(machine, "list.diff")[-1]["remove"] == [own.pk]


def test_a_moving_out_resident_is_listed_until_the_end_of_the_last_day(laundry, gateway, make):
    prop = laundry.site.world.prop
    last_day = site_today(prop) + timedelta(days=3)
    residency = laundry.site.residency
    residency.move_out = last_day
    residency.save(update_fields=["move_out"])
    machine = make()
    gateway.run(machine.connect())

    (entry,) = machine.entries.values()
    midnight = datetime.combine(last_day + timedelta(days=1), time(0), ZoneInfo(prop.timezone))
    assert entry["until"] == midnight.astimezone(UTC).isoformat().replace("+00:00", "Z")
    assert machine.decide("tag", UID, at=midnight - timedelta(seconds=1)).granted
    assert machine.decide("tag", UID, at=midnight).reason == "expired"


def test_badge_decisions_are_stored_once_however_often_they_are_sent(laundry, gateway, make):
    machine = make()
    gateway.run(machine.connect())
    granted = gateway.run(machine.badge(UID))
    gateway.run(machine.end_cycle())
    unknown = gateway.run(machine.badge(OTHER_UID))
    assert granted is not None and granted.granted
    assert unknown is not None and not unknown.granted

    events = Event.objects.filter(
        machine_id=laundry.washer.pk,
        kind__in=[EventKind.LAUNDRY_AUTHORIZED, EventKind.LAUNDRY_REFUSED],
    ).order_by("device_seq")
    assert [(e.kind, e.reason, e.person_id) for e in events] == [
        (EventKind.LAUNDRY_AUTHORIZED, "", laundry.site.rosa_person.pk),
        (EventKind.LAUNDRY_REFUSED, DenyReason.UNKNOWN_CREDENTIAL, None),
    ]
    assert "Rosa Resident" in events[0].summary

    again = [
        {
            "seq": granted.seq,
            "at": events[0].data["device_clock"],
            "outcome": "granted",
            "reason": "",
            "kind": "tag",
            "entry": laundry.badge.pk,
        }
    ]
    gateway.run(machine._send({"type": "events", "events": again}))
    eventually(lambda: received(machine, "events.ack")[-1]["seqs"] == [granted.seq])
    assert Event.objects.filter(machine_id=laundry.washer.pk, device_seq=granted.seq).count() == 1
    assert washer().last_seq == unknown.seq


def test_the_machines_state_and_programs_are_recorded_as_it_reports_them(laundry, gateway, make):
    machine = make()
    gateway.run(machine.connect())

    gateway.run(machine.set_state("out_of_order"))
    eventually(lambda: washer().state == "out_of_order")
    assert services.live_state(washer()) == "out_of_order"

    machine.programs = {"Eco 40": 600, "Wool": 300}
    gateway.run(machine.set_state("free"))
    eventually(lambda: washer().programs == ["Eco 40", "Wool"])
    assert washer().state == "free" and washer().state_at is not None

    gateway.run(machine.close())
    eventually(lambda: not washer().online)
    assert services.live_state(washer()) == "offline"


def test_a_message_the_gateway_refuses_gets_an_error_frame_and_the_connection_stays(
    laundry, gateway, make
):
    machine = make()
    gateway.run(machine.connect())

    gateway.run(machine._send({"type": "status", "battery": 50}))  # a lock's, not a machine's
    gateway.run(machine._send({"type": "state", "state": "spinning"}))
    gateway.run(machine._send({"type": "list.ack", "version": 999}))
    eventually(lambda: len(machine.errors) == 3)

    assert [e["code"] for e in machine.errors] == ["unknown_type", "bad_message", "bad_ack"]
    assert machine.online
    assert gateway.run(machine.request_time())["type"] == "time"


def test_a_new_secret_closes_the_connection_and_only_the_new_one_is_accepted(
    laundry, gateway, make
):
    machine = make()
    gateway.run(machine.connect())

    secret = services.rotate_secret(laundry.site.world.alice, laundry.washer.pk)

    eventually(lambda: machine.close_code == 4009)
    with pytest.raises(NotWelcomed):
        gateway.run(machine.connect())
    fresh = make(secret=secret)
    gateway.run(fresh.connect())
    assert washer().online and len(secret) == 24


def test_the_same_machine_connecting_again_replaces_its_older_connection(laundry, gateway, make):
    first = make()
    gateway.run(first.connect())
    second = make()
    gateway.run(second.connect())

    eventually(lambda: first.close_code == 4009)
    assert first.close_reason == "connected again"
    assert second.online and washer().online
    assert list(gateway.gateway.machines) == [laundry.washer.pk]


def test_a_machine_sending_too_fast_is_throttled_and_stays_connected(laundry, gateway, make):
    machine = make()
    gateway.run(machine.connect())

    async def burst() -> None:
        for _ in range(90):
            await machine._send({"type": "state", "state": "free"})

    gateway.run(burst())

    eventually(lambda: any(e["code"] == "throttled" for e in machine.errors))
    assert machine.online
    gateway.run(asyncio.sleep(1.5))  # the budget fills up again: the next message is read
    assert gateway.run(machine.request_time())["type"] == "time"
