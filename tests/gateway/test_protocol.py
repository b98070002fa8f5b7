"""The lock protocol at the wire: the handshake, bad input, throttling and
the status and time messages, against a real gateway over real WebSockets."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from gateway_helpers import DEVICE_SECRET, PROMPTLY, eventually
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from doorkeep.events.models import Event, EventKind
from doorkeep.gateway import protocol, server
from doorkeep.gateway.models import Device
from doorkeep.gateway.remote import remote_unlock
from doorkeep.gateway.services import new_device_secret, set_device_secret
from doorkeep.gateway.simulator import NotWelcomed
from doorkeep.keys.services import CredentialSpec, HolderSpec, KeySpec, issue_key
from doorkeep.locks.models import Lock
from doorkeep.locks.services import add_manufactured_lock, register_lock

# --- a bare WebSocket client, to send what no well-behaved lock sends --------------------------


async def open_raw(url: str) -> ClientConnection:
    return await connect(url, max_size=None, ping_interval=None, compression=None, open_timeout=5)


def hello_of(serial: str, secret: str = DEVICE_SECRET, **extra: Any) -> str:
    message = {"type": "hello", "protocol": 1, "serial": serial, "secret": secret, **extra}
    return json.dumps(message)


async def receive(ws: ClientConnection, timeout: float = PROMPTLY) -> dict[str, Any]:
    return json.loads(await asyncio.wait_for(ws.recv(), timeout))


async def until_closed(ws: ClientConnection, timeout: float = PROMPTLY) -> list[dict[str, Any]]:
    """Every message until the gateway closes the connection."""
    frames: list[dict[str, Any]] = []
    try:
        async with asyncio.timeout(timeout):
            async for raw in ws:
                frames.append(json.loads(raw))
    except ConnectionClosed:
        pass
    except TimeoutError:
        raise AssertionError(f"the gateway did not close the connection: {frames[-3:]}") from None
    return frames


async def until_quiet(ws: ClientConnection, quiet: float) -> list[dict[str, Any]]:
    """Every message until the gateway says nothing for ``quiet`` seconds."""
    frames: list[dict[str, Any]] = []
    with pytest.raises(TimeoutError):
        while True:
            frames.append(await receive(ws, timeout=quiet))
    return frames


# A time request from a clock set to 2001: its answer is told apart by its offset.
MARKER = json.dumps({"type": "time.request", "clock": "2001-01-01T00:00:00Z"})


def _is_marker_answer(frame: dict[str, Any]) -> bool:
    offset = frame.get("clock_offset_ms")
    years = offset / (365.25 * 86_400_000) if isinstance(offset, int) else 0
    return frame.get("type") == "time" and -40 < years < -20


async def answer_to(ws: ClientConnection, message: str | bytes) -> dict[str, Any] | None:
    """The gateway's answer to ``message``, None if it answers nothing (a
    status, a late unlock.result). A lock's messages are handled in order, so
    the answer is what comes before the answer to a marker sent after it."""
    await ws.send(message)
    await ws.send(MARKER)
    frames: list[dict[str, Any]] = []
    while not _is_marker_answer(frame := await receive(ws, timeout=PROMPTLY)):
        frames.append(frame)
    assert len(frames) <= 1, frames
    return frames[0] if frames else None


async def online(url: str, serial: str) -> ClientConnection:
    """A raw connection past the handshake, its first list acknowledged."""
    ws = await open_raw(url)
    await ws.send(hello_of(serial, clock=protocol.now_iso()))
    welcome = await receive(ws)
    assert welcome["type"] == "welcome", welcome
    listed = await receive(ws)
    assert listed["type"] == "list.full", listed
    await ws.send(json.dumps({"type": "list.ack", "version": listed["version"]}))
    return ws


def refused_with(gateway, first: str | bytes) -> tuple[list[dict[str, Any]], int | None, str]:
    async def go():
        ws = await open_raw(gateway.url)
        await ws.send(first)
        frames = await until_closed(ws)
        return frames, ws.close_code, ws.close_reason

    return gateway.run(go())


def give(world, name: str, lock=None, **creds: str):
    lock = lock or world.lock
    spec = [CredentialSpec(kind, value) for kind, value in creds.items()]
    return issue_key(
        world.alice,
        lock.pk,
        KeySpec(HolderSpec(name=name, email=f"{name.lower()}@example.com"), spec),
    )


def platform_version(lock) -> int:
    return Lock.objects.get(pk=lock.pk).credential_version


@pytest.fixture
def other(world, gateway):
    """A second lock of Alice's, at the garage, connected and in step: the
    bystander that must not notice what another connection does."""
    add_manufactured_lock("DK-TEST-0002", claim_secret="ABCD-EFGH-JKLM-NPQR")
    lock = register_lock(
        world.alice,
        serial="DK-TEST-0002",
        claim_secret="ABCD-EFGH-JKLM-NPQR",
        entry_id=world.entry2.pk,
        name="Garage lock",
    )
    set_device_secret(lock, DEVICE_SECRET)
    give(world, "Alice", lock=lock, phone="")  # alice may open it remotely
    device = gateway.lock(lock.serial)
    gateway.run(device.connect())
    device.record = lock  # type: ignore[attr-defined]
    return device


def assert_still_working(world, gateway, other) -> None:
    """The bystander lock still gets its list pushed and answers an unlock."""
    give(world, "Bystander", lock=other.record, pin="8642")
    gateway.run(other.wait_for_version(platform_version(other.record), timeout=PROMPTLY))
    assert other.decide("pin", "8642").granted
    unlocked = remote_unlock(world.alice, world.entry2.pk, timeout=PROMPTLY)
    assert unlocked.request_id in other.opened


# --- the handshake -------------------------------------------------------------------------------


def test_a_connection_that_sends_no_hello_is_closed_with_4000(gateway, monkeypatch):
    monkeypatch.setattr(server, "HELLO_TIMEOUT", 0.3)

    async def go():
        ws = await open_raw(gateway.url)
        started = time.monotonic()
        await until_closed(ws)
        return ws.close_code, ws.close_reason, time.monotonic() - started

    code, reason, waited = gateway.run(go())

    assert code == 4000
    assert reason == "send hello first"
    assert waited < 3


def test_a_first_message_that_is_not_hello_gets_an_error_frame_and_close_4002(world, gateway):
    frames, code, _reason = refused_with(gateway, json.dumps({"type": "status", "battery": 50}))

    assert code == 4002
    assert frames == [
        {"type": "error", "code": "hello_first", "message": "the first message must be hello"}
    ]


def test_bad_json_in_hello_gets_an_error_frame_and_close_4002(world, gateway):
    frames, code, reason = refused_with(gateway, '{"type": "hello", "serial": ')

    assert code == 4002
    assert reason == "bad_json"
    assert [f["code"] for f in frames] == ["bad_json"]


def test_a_hello_without_a_secret_gets_an_error_frame_and_close_4002(world, gateway):
    frames, code, _reason = refused_with(
        gateway, json.dumps({"type": "hello", "protocol": 1, "serial": world.lock.serial})
    )

    assert code == 4002
    assert frames[0]["code"] == "bad_message"
    assert "secret" in frames[0]["message"]


def test_an_unsupported_protocol_version_gets_an_error_frame_and_close_4005(world, gateway, device):
    frames, code, reason = refused_with(gateway, hello_of(world.lock.serial, protocol=2))

    assert code == 4005
    assert reason == "unsupported_protocol"
    assert frames[0]["code"] == "unsupported_protocol"
    assert frames[0]["message"] == "this gateway speaks protocol 1 (a number), not 2"
    # true is not 1, nor is "1"
    frames, code, _reason = refused_with(gateway, hello_of(world.lock.serial, protocol=True))
    assert code == 4005
    assert frames[0]["message"].endswith("not true")
    frames, code, _reason = refused_with(gateway, hello_of(world.lock.serial, protocol="1"))
    assert code == 4005
    assert frames[0]["message"] == 'this gateway speaks protocol 1 (a number), not "1"'


def test_an_unknown_serial_and_a_wrong_secret_are_refused_alike_with_4003_and_logged(
    world, gateway, device, caplog
):
    caplog.set_level(logging.WARNING, logger="doorkeep.gateway")

    _f, unknown_code, unknown_reason = refused_with(gateway, hello_of("DK-NOBODY-0042"))
    _f, wrong_code, wrong_reason = refused_with(gateway, hello_of(world.lock.serial, "dks_wrong"))

    assert unknown_code == wrong_code == 4003
    assert unknown_reason == wrong_reason == "unknown device or wrong secret"
    logged = [r.getMessage() for r in caplog.records if r.name == "doorkeep.gateway"]
    assert any("DK-NOBODY-0042" in m and "unknown" in m for m in logged), logged
    assert any(world.lock.serial in m and "wrong secret" in m for m in logged), logged
    refused = Event.objects.filter(lock=world.lock, kind=EventKind.DEVICE_REFUSED)
    assert refused.count() == 1
    assert refused.get().reason == "wrong_secret"


def test_the_simulator_hears_a_refusal_at_once_with_its_close_code(world, gateway, device):
    impostor = gateway.lock(world.lock.serial, secret="dks_wrong")
    started = time.monotonic()

    with pytest.raises(NotWelcomed) as refused:
        gateway.run(impostor.connect(timeout=5))

    assert time.monotonic() - started < 2
    assert refused.value.code == impostor.close_code == 4003
    assert "wrong secret" in str(refused.value)


def test_a_second_connection_of_the_same_lock_replaces_the_first_with_4009(world, gateway, device):
    give(world, "Alice", phone="")
    gateway.run(device.connect())
    again = gateway.lock(world.lock.serial)

    gateway.run(again.connect())

    eventually(lambda: device.close_code is not None)
    assert device.close_code == 4009
    assert not device.online and again.online
    assert list(gateway.gateway.connections) == [world.lock.pk]
    # The lock stays online, and commands reach the new connection.
    eventually(lambda: Device.objects.get(lock=world.lock).online)
    time.sleep(0.3)
    assert Device.objects.get(lock=world.lock).online
    unlocked = remote_unlock(world.alice, world.entry.pk, timeout=PROMPTLY)
    assert again.opened == [unlocked.request_id]
    assert device.opened == []


def test_a_new_device_secret_closes_the_connection_and_the_old_secret_is_refused(
    world, gateway, device
):
    gateway.run(device.connect())

    secret = new_device_secret(world.lock)

    eventually(lambda: device.close_code is not None)
    assert device.close_code == 4009
    with pytest.raises(NotWelcomed):
        gateway.run(device.connect(timeout=PROMPTLY))
    assert device.close_code == 4003
    device.secret = secret
    gateway.run(device.connect())
    assert device.online


# --- bad input after the handshake ---------------------------------------------------------------


def test_malformed_json_gets_an_error_frame_and_the_connection_stays_usable(world, gateway, device):
    async def go():
        ws = await online(gateway.url, world.lock.serial)
        await ws.send("{not json")
        error = await receive(ws)
        await ws.send(json.dumps({"type": "time.request"}))
        reply = await receive(ws)
        await ws.close()
        return error, reply

    error, reply = gateway.run(go())

    assert error == {
        "type": "error",
        "code": "bad_json",
        "message": "the message is not valid JSON",
    }
    assert reply["type"] == "time"


def test_an_oversized_message_gets_too_large_and_the_connection_stays(world, gateway, device):
    async def go():
        ws = await online(gateway.url, world.lock.serial)
        padding = "x" * (protocol.MAX_MESSAGE_BYTES + 1)
        await ws.send(json.dumps({"type": "status", "firmware": padding}))
        error = await receive(ws)
        # Characters are counted as UTF-8 bytes: 20,000 euro signs are 60,000 bytes.
        await ws.send(json.dumps({"type": "status", "firmware": "€" * 22000}, ensure_ascii=False))
        error2 = await receive(ws)
        await ws.send(json.dumps({"type": "time.request"}))
        reply = await receive(ws)
        await ws.close()
        return error, error2, reply

    error, error2, reply = gateway.run(go())

    assert error["type"] == "error" and error["code"] == "too_large"
    assert str(protocol.MAX_MESSAGE_BYTES) in error["message"]
    assert error2["code"] == "too_large"
    assert reply["type"] == "time"
    assert Device.objects.get(lock=world.lock).firmware == ""


def test_a_frame_over_the_frame_limit_closes_only_that_connection_with_1009(
    world, gateway, device, other
):
    async def go():
        ws = await online(gateway.url, world.lock.serial)
        await ws.send("x" * (protocol.MAX_FRAME_BYTES + 1))
        await until_closed(ws)
        return ws.close_code

    assert gateway.run(go()) == 1009
    eventually(lambda: world.lock.pk not in gateway.gateway.connections)
    assert other.online
    assert_still_working(world, gateway, other)


def test_an_unknown_message_type_gets_an_error_frame(world, gateway, device):
    async def go():
        ws = await online(gateway.url, world.lock.serial)
        await ws.send(json.dumps({"type": "reboot"}))
        error = await receive(ws)
        await ws.send(json.dumps({"no": "type"}))
        error2 = await receive(ws)
        await ws.close()
        return error, error2

    error, error2 = gateway.run(go())

    assert error == {
        "type": "error",
        "code": "unknown_type",
        "message": "unknown message type 'reboot'",
    }
    assert error2["code"] == "unknown_type"


def test_a_bad_event_batch_gets_an_error_frame_and_nothing_is_stored(world, gateway, device):
    good = {"seq": 1, "at": protocol.now_iso(), "outcome": "granted"}

    async def go():
        ws = await online(gateway.url, world.lock.serial)
        answers = []
        for batch in (
            [good, {**good, "seq": 2, "outcome": "maybe"}],
            [good, {**good, "seq": True}],
            [{**good, "at": "yesterday"}],
            [{**good, "at": "2025-01-01T10:00:00"}],  # no zone
            [{**good, "entry": 2**70}],
            [good] * (protocol.MAX_EVENTS_PER_BATCH + 1),
            [],
        ):
            await ws.send(json.dumps({"type": "events", "events": batch}))
            answers.append(await receive(ws))
        await ws.close()
        return answers

    answers = gateway.run(go())

    assert [a["code"] for a in answers] == [
        "bad_message",
        "bad_message",
        "bad_message",
        "bad_message",
        "bad_message",
        "too_large",
        "bad_message",
    ]
    assert answers[0]["ref"] == 2
    assert "outcome" in answers[0]["message"]
    assert not Event.objects.filter(lock=world.lock, device_seq__isnull=False).exists()


def test_the_gateway_survives_all_kinds_of_garbage_and_a_lock_still_connects_and_syncs(
    world, gateway, device, other
):
    garbage: list[str | bytes] = [
        b"\x00\x01binary",
        "[" * 30000 + "]" * 30000,  # nesting deeper than any parser's recursion
        "1" * 5000,  # a number too long to read
        "null",
        '"just a string"',
        json.dumps({"type": "hello", "protocol": 1, "serial": "X", "secret": "Y"}),
        json.dumps({"type": "list.ack", "version": "seven"}),
        json.dumps({"type": "list.ack", "version": 99}),
        json.dumps({"type": "status", "battery": "full", "firmware": {"a": 1}, "clock": 5}),
        json.dumps({"type": "status", "clock": "9999-12-31T23:59:59-23:59"}),
        json.dumps({"type": "unlock.result", "request_id": None}),
        json.dumps({"type": "unlock.result", "request_id": "never-asked", "ok": True}),
        json.dumps({"type": "time.request", "clock": "0001-01-01T00:00:00+14:00"}),
        json.dumps({"type": "events", "events": "all of them"}),
    ]

    async def go():
        ws = await online(gateway.url, world.lock.serial)
        answers = [await answer_to(ws, message) for message in garbage]
        await ws.close()
        return answers

    answers = gateway.run(go())

    codes = [a.get("code") if a else None for a in answers]
    assert codes[:8] == [
        "bad_message",
        "bad_json",
        "bad_json",
        "bad_message",
        "bad_message",
        "already_hello",
        "bad_message",
        "bad_ack",
    ]
    assert "internal" not in codes
    assert answers[12]["type"] == "time"
    # The gateway is fine: the lock connects again and syncs, the bystander works.
    give(world, "Dana", pin="2580")
    gateway.run(device.connect())
    assert device.version == platform_version(world.lock)
    assert device.decide("pin", "2580").granted
    assert_still_working(world, gateway, other)


# --- throttling ---------------------------------------------------------------------------------


def test_a_burst_over_the_budget_is_throttled_but_the_connection_stays(world, gateway, device):
    async def go():
        ws = await online(gateway.url, world.lock.serial)
        for _ in range(server.BURST + 25):
            await ws.send(json.dumps({"type": "time.request"}))
        frames = await until_quiet(ws, 1)
        await asyncio.sleep(1)
        await ws.send(json.dumps({"type": "time.request"}))
        after = await receive(ws)
        await ws.close()
        return frames, after

    frames, after = gateway.run(go())

    kinds = [f["type"] for f in frames]
    throttled = [f for f in frames if f["type"] == "error"]
    assert kinds.count("time") >= server.BURST - 1  # the list.ack used one
    assert kinds.count("time") < server.BURST + 25  # some were dropped
    assert [f["code"] for f in throttled] == ["throttled"]  # said once, not for every message
    assert "slow down" in throttled[0]["message"]
    assert after["type"] == "time"


def test_a_flooding_lock_is_closed_with_4008_and_another_lock_is_unaffected(
    world, gateway, device, other
):
    async def go():
        ws = await online(gateway.url, world.lock.serial)
        frames = []
        try:
            for _ in range(500):
                await ws.send(json.dumps({"type": "time.request"}))
        except ConnectionClosed:
            pass
        frames = await until_closed(ws)
        return frames, ws.close_code, ws.close_reason

    frames, code, reason = gateway.run(go())

    assert code == 4008
    assert "flooding" in reason
    assert [f["code"] for f in frames if f["type"] == "error"] == ["throttled"]
    assert_still_working(world, gateway, other)


def test_answers_the_gateway_waits_for_pass_when_the_budget_is_spent(
    world, gateway, device, monkeypatch
):
    """A list acknowledgement and an unlock result answer the gateway's own
    messages: they are never dropped by the throttle (a lock acknowledging
    many changes a second lost an ack and stayed unacknowledged)."""
    monkeypatch.setattr(server, "MESSAGES_PER_SECOND", 0.01)  # spent stays spent
    give(world, "Alice", phone="")

    async def spend() -> ClientConnection:
        ws = await online(gateway.url, world.lock.serial)
        for _ in range(server.BURST + 5):
            await ws.send(json.dumps({"type": "time.request"}))
        frames = await until_quiet(ws, 0.5)
        assert [f["code"] for f in frames if f["type"] == "error"] == ["throttled"]
        return ws

    async def next_of(ws: ClientConnection, kind: str) -> dict[str, Any]:
        while (frame := await receive(ws))["type"] != kind:
            pass
        return frame

    async def acknowledge(ws: ClientConnection) -> int:
        diff = await next_of(ws, "list.diff")
        await ws.send(json.dumps({"type": "list.ack", "version": diff["version"]}))
        return diff["version"]

    async def open_up(ws: ClientConnection) -> str:
        command = await next_of(ws, "unlock")
        # Not answers: dropped (over the budget), the connection stays.
        for request_id in (["x"], {"a": 1}, 7, "not-asked"):
            bad = {"type": "unlock.result", "request_id": request_id, "ok": True}
            await ws.send(json.dumps(bad))
        await ws.send(json.dumps({"type": "list.ack", "version": 10**6}))
        answer = {"type": "unlock.result", "request_id": command["request_id"], "ok": True}
        await ws.send(json.dumps(answer))
        return command["request_id"]

    ws = gateway.run(spend())
    acked = asyncio.run_coroutine_threadsafe(acknowledge(ws), gateway.loop)
    give(world, "Dana", pin="2580")
    version = acked.result(5)

    assert version == platform_version(world.lock)
    eventually(lambda: Device.objects.get(lock=world.lock).acked_version == version)

    answered = asyncio.run_coroutine_threadsafe(open_up(ws), gateway.loop)
    unlocked = remote_unlock(world.alice, world.entry.pk, timeout=PROMPTLY)
    assert answered.result(5) == unlocked.request_id

    # Anything else still spends the budget: dropped, said at most once a second.
    async def ask_time() -> list[dict[str, Any]]:
        await ws.send(json.dumps({"type": "time.request"}))
        frames = await until_quiet(ws, 0.5)
        await ws.close()
        return frames

    assert all(f["type"] != "time" for f in gateway.run(ask_time()))


# --- status and time -----------------------------------------------------------------------------


def test_a_status_message_updates_battery_firmware_and_clock_offset(world, gateway, device):
    gateway.run(device.connect())
    device.battery, device.firmware, device.clock_skew = 41, "sim-2.1", 90.0

    gateway.run(device.send_status())

    def reported():
        row = Device.objects.get(lock=world.lock)
        return row.battery == 41 and row.firmware == "sim-2.1"

    eventually(reported)
    row = Device.objects.get(lock=world.lock)
    assert 88_000 < row.clock_offset_ms < 92_000


def test_a_time_request_gets_the_gateway_time_and_the_clock_offset(world, gateway, device):
    device.clock_skew = -300.0  # five minutes slow
    gateway.run(device.connect())

    reply = gateway.run(device.request_time())

    gateway_time = datetime.fromisoformat(reply["time"].replace("Z", "+00:00"))
    assert abs(gateway_time - datetime.now(UTC)) < timedelta(seconds=2)
    assert -302_000 < reply["clock_offset_ms"] < -298_000
    welcome = next(m for m in device.received if m["type"] == "welcome")
    assert -302_000 < welcome["clock_offset_ms"] < -298_000
    assert Device.objects.get(lock=world.lock).clock_offset_ms == welcome["clock_offset_ms"]


def test_a_lock_whose_clock_is_decades_off_is_still_accepted(world, gateway, device):
    device.clock_skew = 40 * 365 * 86400.0

    gateway.run(device.connect())
    gateway.run(device.send_status())
    reply = gateway.run(device.request_time())

    assert device.online
    forty_years_ms = 40 * 365 * 86400 * 1000
    assert abs(reply["clock_offset_ms"] - forty_years_ms) < 2000
    eventually(
        lambda: abs(Device.objects.get(lock=world.lock).clock_offset_ms - forty_years_ms) < 2000
    )


def test_a_change_while_a_lock_is_being_welcomed_waits_for_the_welcome(
    world, gateway, device, monkeypatch
):
    """The welcome is always the first frame: a change that reaches the gateway
    while it is still registering the connection is in the first list instead."""
    entered = asyncio.Event()
    register = server.Gateway._register

    async def register_slowly(self, lock_id):
        entered.set()
        await asyncio.sleep(0.6)  # the change's notice arrives meanwhile
        await register(self, lock_id)

    monkeypatch.setattr(server.Gateway, "_register", register_slowly)

    async def hello_then_change():
        ws = await open_raw(gateway.url)
        await ws.send(hello_of(world.lock.serial, clock=protocol.now_iso()))
        await entered.wait()
        await asyncio.to_thread(give, world, "Late", pin="97531")
        first, second = await receive(ws), await receive(ws)
        await ws.close()
        return first, second

    first, second = gateway.run(hello_then_change())

    assert first["type"] == "welcome", first
    assert second["type"] == "list.full"
    assert second["version"] == platform_version(world.lock)


def test_an_old_connections_late_goodbye_leaves_the_new_one_online(world, device):
    """A lock that reconnects to the same gateway at once: the old connection's
    'disconnected' may be written after the new one's 'connected' (another
    database thread). It must not mark the lock offline, or the watch round
    would close the new connection (4009)."""
    from doorkeep.gateway import services

    session = services.authenticate(world.lock.serial, DEVICE_SECRET)
    first = datetime(2026, 11, 21, 10, 0, 0, 123456, tzinfo=UTC)
    second = first + timedelta(milliseconds=3)
    for at in (first, second):
        services.connected(
            session, gateway="gw-1", url="http://gw-1", hello={}, clock_offset_ms=None, at=at
        )

    services.disconnected(session, gateway="gw-1", reason="closed", connected_at=first)

    row = Device.objects.get(lock=world.lock)
    assert row.online and row.gateway == "gw-1"
    assert world.lock.pk in services.standing("gw-1")
    services.disconnected(session, gateway="gw-1", reason="closed", connected_at=second)
    row.refresh_from_db()
    assert not row.online and row.gateway == ""
