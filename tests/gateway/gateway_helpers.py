"""Helpers for the gateway tests: a real gateway in a background thread, and a
wait-until helper."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from django.db import connection

from doorkeep.gateway.server import Gateway
from doorkeep.gateway.simulator import SimulatedLock

T = TypeVar("T")
DEVICE_SECRET = "dks_test-device-secret"

# How long a test waits for what the gateway does in well under a second (a
# push after a change, a close after a new secret). Generous, so that a busy
# machine does not fail the suite, and far below the watch round the tests
# that tell the two apart slow down to (60 s). How fast it is, bench/ measures.
PROMPTLY = 10.0


class Running:
    def __init__(self, gateway: Gateway, loop: asyncio.AbstractEventLoop) -> None:
        self.gateway = gateway
        self.loop = loop

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.gateway.port}"

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 20) -> T:
        """Run a coroutine on the gateway's loop (where simulated locks live too)."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def lock(self, serial: str, secret: str = DEVICE_SECRET, **kwargs: Any) -> SimulatedLock:
        async def make() -> SimulatedLock:
            return SimulatedLock(self.url, serial, secret, **kwargs)

        return self.run(make())


def start_gateway(**kwargs: Any) -> tuple[Running, Callable[[], None]]:
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    kwargs.setdefault("poll_interval", 0.1)
    gateway = Gateway(host="127.0.0.1", port=0, **kwargs)
    asyncio.run_coroutine_threadsafe(gateway.start(), loop).result(10)
    running = Running(gateway, loop)

    def stop() -> None:
        asyncio.run_coroutine_threadsafe(gateway.stop(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)

    return running, stop


def eventually(check: Callable[[], bool], timeout: float = PROMPTLY) -> None:
    """Wait until ``check()`` holds (the other side works in its own time)."""
    import time

    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("the condition did not come true in time")
        time.sleep(0.02)


def give(world, name="Dana", *, valid_from=None, valid_until=None, schedule=None, **creds):
    """Issue Alice's lock a key for ``name`` with the credentials given as
    kind=value (pin="2580", tag="04A22B1C")."""
    from doorkeep.keys.services import CredentialSpec, HolderSpec, KeySpec, issue_key

    spec = [CredentialSpec(kind, value) for kind, value in creds.items()]
    return issue_key(
        world.alice,
        world.lock.pk,
        KeySpec(
            HolderSpec(name=name, email=f"{name.lower()}@example.com"),
            spec,
            valid_from=valid_from,
            valid_until=valid_until,
            schedule=schedule,
        ),
    )


def version(world) -> int:
    """The platform's list version of Alice's lock."""
    from doorkeep.locks.models import Lock

    return Lock.objects.get(pk=world.lock.pk).credential_version


def deafen(device: SimulatedLock) -> None:
    """The simulated lock stops answering unlock commands (it still reads them)."""
    original = device._on_message

    async def deaf(message: dict[str, Any]) -> None:
        if message.get("type") != "unlock":
            await original(message)

    device._on_message = deaf  # type: ignore[method-assign]


def spy_on_reads(monkeypatch) -> list[tuple[tuple[int, ...] | None, int]]:
    """Record each list read by the gateway or the test, per lock: the keys
    asked for (None for the whole list, ``lists.rows``; a notice's keys,
    ``lists.rows_of_keys``) and the number of rows read."""
    from doorkeep.gateway import lists

    seen: list[tuple[tuple[int, ...] | None, int]] = []
    whole, of_keys = lists.rows, lists.rows_of_keys

    def spy(lock_id, owner_id, *, at=None):
        found = whole(lock_id, owner_id, at=at)
        seen.append((None, len(found)))
        return found

    def spy_keys(wanted, *, at=None):
        found = of_keys(wanted, at=at)
        for lock_id, (_owner, keys) in wanted.items():
            seen.append((tuple(keys), len(found[lock_id])))
        return found

    monkeypatch.setattr(lists, "rows", spy)
    monkeypatch.setattr(lists, "rows_of_keys", spy_keys)
    return seen


def slow_down(device: SimulatedLock, seconds: float) -> None:
    """The simulated lock takes ``seconds`` to apply each list (and ack it)."""
    apply = device._apply

    async def slow(message: dict[str, Any]) -> None:
        await asyncio.sleep(seconds)
        await apply(message)

    device._apply = slow  # type: ignore[method-assign]


def more_locks(world, count: int) -> list:
    """Alice's lock and ``count`` more of hers (registered at her front
    door), each with the test device secret."""
    from doorkeep.gateway.services import set_device_secret
    from doorkeep.locks.services import add_manufactured_lock, register_lock

    secret = "ABCD-EFGH-JKLM-NPQR"
    locks = [world.lock]
    for n in range(count):
        serial = f"DK-MORE-{n + 1:04d}"
        add_manufactured_lock(serial, claim_secret=secret)
        locks.append(
            register_lock(world.alice, serial=serial, claim_secret=secret, entry_id=world.entry.pk)
        )
    for lock in locks:
        set_device_secret(lock, DEVICE_SECRET)
    return locks


BADGE_UID = "04A22B1C"


def badge_everywhere(world, locks):
    """Rosa, a resident of Alice's Canal House with a PIN key on each of
    ``locks`` and an active badge (registered through the badge service: its
    tag is on every key). Returns (her badge, her keys by lock id)."""
    from datetime import date

    from doorkeep.badges.services import register_existing_badge
    from doorkeep.keys.services import CredentialSpec, HolderSpec, KeySpec, issue_key
    from doorkeep.residents.services import ResidentSpec, add_resident, add_unit

    unit = add_unit(world.alice, world.prop.pk, "A-12")
    residency = add_resident(
        world.alice,
        world.prop.pk,
        ResidentSpec(
            name="Rosa Resident",
            email="rosa@example.com",
            move_in=date(2024, 1, 1),
            unit_id=unit.pk,
        ),
    )
    keys = {
        lock.pk: issue_key(
            world.alice,
            lock.pk,
            KeySpec(
                HolderSpec(person_id=residency.person_id),
                [CredentialSpec("pin", f"{24681357 + i}")],
            ),
        )
        for i, lock in enumerate(locks)
    }
    badge = register_existing_badge(
        world.alice, world.prop.pk, residency.person_id, uid=BADGE_UID, atqa="0004", sak="08"
    )
    assert badge.is_active
    return badge, keys


def lock_version(lock) -> int:
    from doorkeep.locks.models import Lock

    return Lock.objects.values_list("credential_version", flat=True).get(pk=lock.pk)


def database_url() -> str:
    """The test database as a DATABASE_URL, for a process of its own."""
    from pathlib import Path

    db = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{Path(db['NAME']).resolve()}"
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    return (
        f"postgres://{db['USER']}{password}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}"
        f"/{db['NAME']}"
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
