"""A lost badge, off 1,000 locks at once (P7): a badge that opens 1,000
connected locks is reported lost; from the report's commit to the last lock's
acknowledgement of its new list, p99 at most 1 second.

Set-up: one organization with 1,000 registered locks (real services), a few
PIN keys on each (written in bulk as ``issue_key`` writes them), and one
person with a key on every lock (a PIN, in bulk) whose badge is switched on
through ``badges.services`` (``_switch_on``: its tag credential added to all
1,000 keys, each lock's version raised). ``doorkeep gateway`` runs as a
subprocess; the 1,000 simulated locks live in another process (this script's
``fleet`` command), which notes when each lock sends each ``list.ack``
(CLOCK_MONOTONIC, the same clock in every process). The reports are made
here through the services, as a web worker makes them: ``report_lost``
raises the 1,000 versions in its transaction and, after the commit, makes one
call (``gateway.routing.notify_changed_many``) that sends one notice to each
gateway holding any of the locks, naming them all (here one gateway: one
notice, on a kept-open internal WebSocket).

Each repetition (``--repeat``, 20 by default) switches the badge on again
(``reactivate``, waiting for all 1,000 acknowledgements; where it fails on
the database, the same ``_switch_on`` with the badge's row alone locked, and
the output says so), then reports it lost and measures from the commit:

  - to the last lock's ``list.ack`` (the fleet's own timestamps) and to the
    last acknowledgement recorded by the gateway (``Device.acked_version``;
    the time from ``Device.last_seen_at``, which the recording sets): the
    target is the latter's p99 over the repetitions;
  - the same per lock (1,000 a repetition): when the gateway sent the push
    (``Device.last_push_at``), when the lock acknowledged, when it was
    recorded;
  - the notices: when the call started and when it returned (every
    gateway answered), how many notices it sent and the locks they named.

Where the time goes, piece by piece, before the gateway starts (in this
process, one thread): the report with every lock offline, and the gateway's
database work (the list differences, the acknowledgements recorded) with its
SQL statements, one lock at a time and in batches as the gateway does it for
a notice; once the locks are connected, one notice naming 1,000 locks to the
idle gateway. The output ends with a few lines that put these figures next
to the run's; ``--profile`` adds py-spy of the gateway.

The machine's floor, measured in the same run: its speed (Python additions,
a byte to another process and back), a bare websockets echo server's
round trip one after the other on one connection (as the notices go) and
1,000 connections each sent one message at once (as the pushes go).

    .venv/bin/python bench/badge_lost.py [--postgres] [--repeat 20] [--locks 1000]
        [--keys-per-lock 5] [--gateway-db-threads N] [--profile] [--quiet-below LOAD]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import statistics
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _setup
import gateway_common as gc

TARGET_MS = 1000.0
UID = "04B1D5A77E3C80"  # the badge: a 7-byte MIFARE Classic UID
PERSON_PIN = "2468013"  # 7 digits: never one of the 6-digit bulk PINs


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--postgres", action="store_true", help="use a throw-away PostgreSQL db")
    parser.add_argument("--repeat", type=int, default=20, help="timed reports (after 1 warm-up)")
    parser.add_argument("--locks", type=int, default=1000)
    parser.add_argument(
        "--keys-per-lock", type=int, default=5, help="other people's PIN keys on each lock"
    )
    parser.add_argument(
        "--gateway-db-threads",
        type=int,
        default=None,
        help="run the Gateway class with this many database threads (default: `doorkeep "
        "gateway` as it is)",
    )
    parser.add_argument("--profile", action="store_true", help="py-spy of the gateway")
    parser.add_argument("--py-spy", default=None, help="the py-spy program")
    gc.add_quiet_below(parser)
    args = parser.parse_args()

    gc.raise_open_files(args.locks * 2 + 2000)
    db = _setup.setup(postgres=args.postgres)
    logdir = db.tempdir / "logs"
    logdir.mkdir()
    from django.db import transaction

    from doorkeep.badges.services import report_lost
    from doorkeep.gateway import routing
    from doorkeep.gateway.models import Device
    from doorkeep.gateway.server import DB_THREADS
    from doorkeep.locks.models import Lock

    print(f"== a lost badge, off {args.locks:,} connected locks, on {db.label} ==")
    print(gc.load_line() + " at start")
    t0 = time.perf_counter()
    world = _setup.make_world(args.locks)
    made_world = time.perf_counter() - t0
    import gateway_idle

    others = gateway_idle.bulk_keys_for(world, args.keys_per_lock)
    person, badge = person_with_badge(world)
    switched_on = time.perf_counter()
    _switch_on_timed(badge)
    switch_on_s = time.perf_counter() - switched_on
    from doorkeep.gateway.services import set_device_secret

    for lock in world.locks:
        set_device_secret(lock, gc.DEVICE_SECRET)
    print(
        f"setup: {args.locks:,} locks ({made_world:.1f} s through the services), "
        f"{others:,} other PIN keys, {person.name} with a key on every lock and badge {UID} "
        f"switched on ({switch_on_s:.1f} s for _switch_on on {args.locks:,} keys), in "
        f"{time.perf_counter() - t0:.1f} s"
    )
    if analyzed := gc.analyze_postgres():
        print(analyzed)
    results: dict[str, Any] = {"locks": args.locks, "keys_per_lock": args.keys_per_lock + 1}
    gc.wait_for_quiet(args.quiet_below)
    results["floor"] = floor(args.locks, logdir)
    results["pieces"] = pieces(world, badge)

    # --- the gateway and the fleet ------------------------------------------------------
    port = gc.free_port()
    gateway = gc.start_gateway(
        port, logdir=logdir, db_threads=args.gateway_db_threads, env={"GATEWAY_PORT": str(port)}
    )
    url = f"ws://{gc.LOOPBACK}:{port}"
    serials = [lock.serial for lock in world.locks]
    lock_of_serial = {lock.serial: lock.pk for lock in world.locks}
    t0 = time.perf_counter()
    fleet = LockFleet(url, serials, logdir=logdir)
    ready = fleet.read(timeout=900)
    what = "`doorkeep gateway`" if args.gateway_db_threads is None else "the Gateway class"
    print(
        f"\ngateway: {what} ({args.gateway_db_threads or DB_THREADS} db threads); "
        f"{ready['ready']:,} of "
        f"{args.locks:,} simulated locks connected and synced in "
        f"{time.perf_counter() - t0:.1f} s (one process)"
    )
    if ready["ready"] != args.locks:
        print(f"!! not all locks connected: {ready['errors']}")
    results["idle_notices_ms"] = idle_notices(world.locks[0].pk, args.locks)

    def versions() -> list[int]:
        by_serial = dict(
            Lock.objects.filter(organization=world.org).values_list("serial", "credential_version")
        )
        return [by_serial[s] for s in serials]

    def wait_recorded(targets: list[int], timeout: float = 60) -> None:
        want = dict(zip([lock_of_serial[s] for s in serials], targets, strict=True))
        deadline = time.monotonic() + timeout
        while True:
            rows = Device.objects.filter(lock_id__in=want).values_list("lock_id", "acked_version")
            if all(acked >= want[lock_id] for lock_id, acked in rows):
                return
            if time.monotonic() > deadline:
                raise TimeoutError("the gateway did not record every acknowledgement")
            time.sleep(0.01)

    def device_times() -> dict[int, tuple[datetime | None, datetime | None]]:
        return {
            lock_id: (pushed, seen)
            for lock_id, pushed, seen in Device.objects.filter(
                lock__organization=world.org
            ).values_list("lock_id", "last_push_at", "last_seen_at")
        }

    # The notices, timed: bump_version's callback imports notify_changed_many
    # at each call (one call a commit: one notice to each gateway), and
    # counted (changed_command makes each gateway's notice).
    notices: list[tuple[float, float]] = []
    sent: list[int] = []  # the locks each notice named
    notify, command_of = routing.notify_changed_many, routing.changed_command

    def timed_notify(changes: Any) -> None:
        started = time.monotonic()
        try:
            notify(changes)
        finally:
            notices.append((started, time.monotonic()))

    def counted_command(changes: Any) -> dict[str, Any]:
        command = command_of(changes)
        sent.append(len(command["changes"]))
        return command

    routing.notify_changed_many = timed_notify
    routing.changed_command = counted_command

    def change(service: Any, label: str) -> dict[str, Any]:
        """One report (or reactivation), timed from its commit."""
        fleet.command("mark")
        notices.clear()
        sent.clear()
        commit: list[tuple[float, float]] = []
        called = time.monotonic()
        with transaction.atomic():
            # Registered first, so it runs first after the commit: the commit's time.
            transaction.on_commit(lambda: commit.append((time.monotonic(), time.time())))
            service(world.owner, badge.pk)
        returned = time.monotonic()
        targets = versions()
        answer = fleet.command("wait " + json.dumps(targets), timeout=120)
        if answer["missing"]:
            raise RuntimeError(f"{answer['missing']} locks did not acknowledge the {label}")
        wait_recorded(targets)
        committed, committed_wall = commit[0]
        acks = [t - committed for t in answer["times"]]
        stamps = device_times()
        pushes, recorded, push_to_ack, ack_to_recorded = [], [], [], []
        for serial, ack in zip(serials, acks, strict=True):
            pushed_at, seen_at = stamps[lock_of_serial[serial]]
            assert pushed_at is not None and seen_at is not None
            # The gateway's wall clock and the fleet's monotonic one, each
            # from the commit as read on that clock.
            pushed = pushed_at.timestamp() - committed_wall
            seen = seen_at.timestamp() - committed_wall
            pushes.append(pushed)
            recorded.append(seen)
            push_to_ack.append(ack - pushed)
            ack_to_recorded.append(seen - ack)
        return {
            "in_transaction": committed - called,
            "call": returned - called,
            "notices_done": (notices[-1][1] - committed) if notices else 0.0,
            "first_notice": (notices[0][0] - committed) if notices else 0.0,
            "notice_each": [end - start for start, end in notices],
            "notices": len(notices),
            "notices_sent": list(sent),
            "acks": acks,
            "pushes": pushes,
            "recorded": recorded,
            "push_to_ack": push_to_ack,
            "ack_to_recorded": ack_to_recorded,
            "pushes_received": answer["pushes"],
            "last_ack": max(acks),
            "last_recorded": max(recorded),
        }

    gc.settle_here()
    py_spy = gc.find_py_spy(args.py_spy) if args.profile else None
    if args.profile and py_spy is None:
        print("(py-spy not found: pip install py-spy into a venv and pass --py-spy PATH)")
    spy_out = logdir / "pyspy-gateway.txt"
    print(
        f"\n-- {args.repeat} reports (after 1 warm-up), each after switching the badge on again --"
    )
    print(gc.load_line())
    meter = gc.CpuMeter(
        {"gateway": gateway.tree, "lock fleet": fleet.child.tree, "reporting process": _me}
        | (
            {"postgres": lambda: gc.postgres_backends(db.pg_name)}
            if db.backend == "postgresql"
            else {}
        )
    )
    runs: list[dict[str, Any]] = []
    ons: list[dict[str, Any]] = []
    spy = None
    for run in range(args.repeat + 1):
        if run == 1:
            meter.start()
            if py_spy:
                spy = gc.py_spy_record(py_spy, gateway.pid, 600, spy_out)
        if run > 0:  # the badge is active at the start
            ons.append(change(switch_on_again, "reactivation"))
        measured = change(report_lost, "report")
        if run == 0:
            continue  # warm-up
        runs.append(measured)
        print(
            f"  #{run:>2}: last ack {1000 * measured['last_ack']:7.1f} ms, recorded "
            f"{1000 * measured['last_recorded']:7.1f} ms; notices taken "
            f"{1000 * measured['notices_done']:7.1f} ms; service call "
            f"{1000 * measured['call']:7.1f} ms ({1000 * measured['in_transaction']:.1f} ms "
            "before the commit)",
            flush=True,
        )
    meter.stop()
    if spy is not None:
        spy.send_signal(signal.SIGINT)
        spy.wait(30)
    fleet_stats = fleet.stop()
    gateway.stop()

    def seconds(key: str, source: list[dict[str, Any]] = runs) -> list[float]:
        return [r[key] for r in source]

    def flat(key: str, source: list[dict[str, Any]] = runs) -> list[float]:
        return [x for r in source for x in r[key]]

    n = args.locks
    print(f"\n-- report_lost: from the commit, over {len(runs)} reports --")
    print(gc.ms_line("last lock's list.ack sent (the fleet's clock)", seconds("last_ack")))
    print(gc.ms_line("last acknowledgement recorded (Device)", seconds("last_recorded")))
    print(f"per lock ({n:,} a report):")
    print(gc.ms_line("    push sent by the gateway", flat("pushes")))
    print(gc.ms_line("    list.ack sent by the lock", flat("acks")))
    print(gc.ms_line("    acknowledgement recorded", flat("recorded")))
    print("where the time goes:")
    sent_each = [r["notices_sent"] for r in runs]
    calls = statistics.fmean(r["notices"] for r in runs)
    print(
        f"    notices: {calls:.2f} call(s) of notify_changed_many per report, sending "
        f"{statistics.fmean(len(x) for x in sent_each):.2f} notice(s) naming "
        f"{statistics.fmean(sum(x) for x in sent_each):,.0f} locks in all"
    )
    print(gc.ms_line("    commit -> the notices' call starts", seconds("first_notice")))
    print(gc.ms_line("    commit -> every gateway took its notice", seconds("notices_done")))
    pushes_each = statistics.fmean(r["pushes_received"] / n for r in runs)
    print(
        f"    pushes a lock received per report: {pushes_each:.2f} on average (1 is the "
        "difference; more: the 2-second watch round found the version raised before the "
        "lock's notice came, and pushed first)"
    )
    print(gc.ms_line("    push sent -> list.ack sent, per lock", flat("push_to_ack")))
    print(gc.ms_line("    list.ack sent -> recorded, per lock", flat("ack_to_recorded")))
    print(
        gc.ms_line(
            f"    service call, start -> commit ({n:,} versions raised)", seconds("in_transaction")
        )
    )
    print(gc.ms_line("    service call, start -> returned (notices included)", seconds("call")))
    print(
        gc.ms_line(
            "reactivation (switched on again), commit -> last ack recorded",
            seconds("last_recorded", ons),
        )
    )
    print("\n".join(meter.lines(per=len(runs) * 2, unit="change (a report or a reactivation)")))
    if spy is not None:
        print("\npy-spy of the gateway during the measured changes:")
        print("\n".join(gc.py_spy_summary(spy_out)))
    p99 = gc.pct([1000 * s for s in seconds("last_recorded")], 99)
    passed = p99 <= TARGET_MS and len(runs) == args.repeat
    print(
        f"\n{'PASS' if passed else 'FAIL'}: report_lost, commit -> last of {n:,} "
        f"acknowledgements recorded, p99 {p99:.1f} ms (target <= {TARGET_MS:g} ms); "
        f"{gc.load_line()}"
    )
    print(
        f"fleet at the end: {fleet_stats and fleet_stats.get('online')} online, "
        f"{fleet_stats and fleet_stats.get('errors')} protocol errors"
    )
    summary = time_summary(results, runs, meter, n)
    print("\n".join(summary))
    results |= {
        "last_ack_ms": gc.ms_summary(seconds("last_ack")),
        "last_recorded_ms": gc.ms_summary(seconds("last_recorded")),
        "per_lock_push_ms": gc.ms_summary(flat("pushes")),
        "per_lock_ack_ms": gc.ms_summary(flat("acks")),
        "per_lock_recorded_ms": gc.ms_summary(flat("recorded")),
        "notices_done_ms": gc.ms_summary(seconds("notices_done")),
        "notice_ms": gc.ms_summary(flat("notice_each")),
        "notices_per_report": statistics.fmean(len(r["notices_sent"]) for r in runs),
        "pushes_per_lock": round(pushes_each, 3),
        "in_transaction_ms": gc.ms_summary(seconds("in_transaction")),
        "reactivation_last_recorded_ms": gc.ms_summary(seconds("last_recorded", ons)),
        "cpu_s": {k: round(v, 2) for k, v in meter.used.items()},
        "wall_s": round(meter.wall, 1),
    }
    _setup.emit_result(
        "badge_lost",
        db.backend,
        passed=passed,
        target_ms=TARGET_MS,
        p99_ms=round(p99, 1),
        repeat=len(runs),
        **results,
        load=round(os.getloadavg()[0], 2),
    )
    return 0 if passed else 1


def time_summary(
    results: dict[str, Any], runs: list[dict[str, Any]], meter: gc.CpuMeter, n: int
) -> list[str]:
    """Where the time of a report goes, in a few lines of figures from this run."""
    pieces, idle = results["pieces"], results["idle_notices_ms"]
    batched = pieces["batched"]
    batched_ms = batched["prepare_ms"] + batched["record_ms"]
    changes = 2 * len(runs)
    gateway_cpu = 1000 * meter.used.get("gateway", 0.0) / max(changes, 1)
    last = statistics.median(r["last_recorded"] for r in runs) * 1000
    notices = statistics.median(r["notices_done"] for r in runs) * 1000
    sent = statistics.fmean(len(r["notices_sent"]) for r in runs)
    pushed = [x for r in runs for x in r["pushes"]]
    lag = [x for r in runs for x in r["ack_to_recorded"]]
    in_tx = statistics.median(r["in_transaction"] for r in runs) * 1000
    return [
        "\nwhere the time goes (medians of this run):",
        f"  - the notices: one call after the commit, {sent:.0f} notice(s) (one to each gateway, "
        f"naming its locks), every gateway answered {notices:.0f} ms after the commit (the "
        f"service call, the web request, returns then; a notice naming {n:,} locks the idle "
        f"gateway does not hold: {idle['p50']:.2f} ms)",
        f"  - the gateway's database work for {n:,} locks, alone in one thread: "
        f"{batched_ms:.0f} ms in batches as the gateway does it ({batched['statements']} SQL "
        f"statements), {1000 * pieces['db_work_s']:.0f} ms one lock at a time "
        f"({pieces['statements_per_lock']:.0f} statements a lock)",
        f"  - in the run the gateway spent {gateway_cpu:.0f} ms of CPU per change "
        f"({gateway_cpu / n:.2f} ms a lock: sending and receiving {n:,} lock messages, "
        f"the database calls, in one process); pushes sent p50 {1000 * gc.pct(pushed, 50):.0f} "
        f"ms, p90 {1000 * gc.pct(pushed, 90):.0f} ms after the commit; the last "
        f"acknowledgement was recorded after {last:.0f} ms",
        f"  - an acknowledgement waits to be recorded with the others that came meanwhile: "
        f"list.ack -> recorded p50 {1000 * gc.pct(lag, 50):.0f} ms, p90 "
        f"{1000 * gc.pct(lag, 90):.0f} ms",
        f"  - before the commit, raising the {n:,} versions in the report's transaction takes "
        f"{in_tx:.0f} ms (not counted: the target runs from the commit)",
    ]


def _me() -> list[int]:
    return [os.getpid()]


# --- set-up ---------------------------------------------------------------------------------


def person_with_badge(world: _setup.World) -> tuple[Any, Any]:
    """Rita, with a PIN key on every lock (bulk, in the shape issue_key writes
    it), and her badge, not yet switched on."""
    from django.db import transaction
    from django.db.models import F
    from django.utils import timezone

    from doorkeep.badges.models import Badge, BadgeSource, BadgeStatus
    from doorkeep.events.models import Event, EventKind
    from doorkeep.keys.credentials import device_lookup, pin_digest
    from doorkeep.keys.models import Credential, CredentialKind, Key, KeyCredential, Person
    from doorkeep.locks.models import Lock

    now = timezone.now()
    with transaction.atomic():
        person = Person.objects.create(
            organization=world.org, name="Rita Resident", email="rita@example.com"
        )
        pin = Credential.objects.create(
            person=person, kind=CredentialKind.PIN, lookup=pin_digest(PERSON_PIN), display="•" * 7
        )
        keys = Key.objects.bulk_create(
            [
                Key(
                    lock=lock,
                    organization=world.org,
                    lock_owner=world.org,
                    person=person,
                    issued_by=world.owner,
                    issued_at=now,
                )
                for lock in world.locks
            ],
            batch_size=500,
        )
        KeyCredential.objects.bulk_create(
            [
                KeyCredential(
                    key=key,
                    credential=pin,
                    lock=lock,
                    kind=CredentialKind.PIN,
                    lookup=pin.lookup,
                    device_lookup=device_lookup(CredentialKind.PIN, PERSON_PIN, lock.serial),
                )
                for key, lock in zip(keys, world.locks, strict=True)
            ],
            batch_size=500,
        )
        Lock.objects.filter(organization=world.org).update(
            credential_version=F("credential_version") + 1
        )
        Event.objects.bulk_create(
            [
                Event(
                    organization_id=world.org.pk,
                    kind=EventKind.KEY_ISSUED,
                    occurred_at=now,
                    received_at=now,
                    property_id=world.prop.pk,
                    lock=lock,
                    person=person,
                    key=key,
                    actor=world.owner,
                    summary=f"Key issued to {person.name} (pin)",
                    data={"credentials": ["pin"]},
                )
                for key, lock in zip(keys, world.locks, strict=True)
            ],
            batch_size=500,
        )
        badge = Badge.objects.create(
            organization=world.org,
            person=person,
            uid=UID,
            source=BadgeSource.PLATFORM,
            status=BadgeStatus.PENDING,
            created_by=world.owner,
        )
    return person, badge


def _switch_on_timed(badge: Any) -> None:
    """The badge on every key of its person, as activating it does (no
    gateway runs yet: the notices find every lock offline)."""
    from django.db import transaction

    from doorkeep.badges.services import _switch_on

    with transaction.atomic():
        changed = _switch_on(badge)
    assert changed > 0


# --- where the time goes, piece by piece ----------------------------------------------------


def pieces(world: _setup.World, badge: Any) -> dict[str, Any]:
    """Before any gateway runs, in this process, one thread, no contention:
    the work a report makes, piece by piece. The service call with every lock
    offline (its notice finds no gateway); then what the gateway's database
    threads do for the 1,000 locks: the list difference from the notice's
    keys (the version, the key's rows, the encoded ``list.diff``) and the
    acknowledgement recorded (the version, the changed fingerprints), one
    lock at a time (``syncing.prepare``, ``syncing.record_ack``) and in
    batches as the gateway does it for a notice (``syncing.prepare_many``,
    ``syncing.record_acks``, SYNC_BATCH and ACK_BATCH locks a call). The
    badge is switched on again at the end."""
    from django.db import connection
    from django.utils import timezone

    from doorkeep.badges.services import report_lost
    from doorkeep.gateway import lists, services, syncing
    from doorkeep.gateway.server import ACK_BATCH, SYNC_BATCH
    from doorkeep.keys.models import Key

    key_of = dict(
        Key.objects.filter(person_id=badge.person_id, revoked_at__isnull=True).values_list(
            "lock_id", "pk"
        )
    )
    sessions, before = {}, {}
    for lock in world.locks:
        current = lists.build(lock.pk)
        sessions[lock.pk] = services.authenticate(lock.serial, gc.DEVICE_SECRET)
        before[lock.pk] = (current.version, current.rows, current.snapshot())

    def settle() -> None:
        """Each lock as a gateway leaves it after a full list, before the report."""
        for lock in world.locks:
            version, _rows, snapshot = before[lock.pk]
            services.acknowledged(
                sessions[lock.pk], version, sent_at=timezone.now(), snapshot=snapshot
            )

    settle()
    started = time.perf_counter()
    report_lost(world.owner, badge.pk)
    call = time.perf_counter() - started
    syncs = [
        syncing.Sync(lock.pk, version, rows, {}, False, (version + 1, (key_of[lock.pk],)))
        for lock in world.locks
        for version, rows, _snapshot in [before[lock.pk]]
    ]
    # One lock at a time.
    prepares, records, sizes = [], [], []
    counted = _Statements()
    with connection.execute_wrapper(counted):
        for sync in syncs:
            started = time.perf_counter()
            prepared = syncing.prepare(
                sync.lock_id, sync.acked_version, sync.acked_rows, {}, False, sync.hint
            )
            prepared_at = time.perf_counter()
            assert prepared.push is not None and not prepared.push.full
            syncing.record_ack(sessions[sync.lock_id], prepared.push)
            recorded_at = time.perf_counter()
            prepares.append(prepared_at - started)
            records.append(recorded_at - prepared_at)
            sizes.append(len(prepared.text))
    statements = counted.count / len(world.locks)
    # In batches, as the gateway does it for a notice.
    settle()
    counted = _Statements()
    with connection.execute_wrapper(counted):
        started = time.perf_counter()
        made: list[Any] = []
        for at in range(0, len(syncs), SYNC_BATCH):
            made.extend(syncing.prepare_many(syncs[at : at + SYNC_BATCH]))
        prepared_at = time.perf_counter()
        acks = [(sessions[sync.lock_id], p.push) for sync, p in zip(syncs, made, strict=True)]
        assert all(push is not None and not push.full for _session, push in acks)
        for at in range(0, len(acks), ACK_BATCH):
            syncing.record_acks(acks[at : at + ACK_BATCH])
        recorded_at = time.perf_counter()
    batched_statements = counted.count
    batched_prepare, batched_record = prepared_at - started, recorded_at - prepared_at
    switch_on_again(world.owner, badge.pk)
    n = len(world.locks)
    print(f"\n-- piece by piece, in this process (one thread, {n:,} locks, no gateway yet) --")
    print(
        f"report_lost with every lock offline (its notice finds no gateway): {1000 * call:.1f} ms"
    )
    print(gc.ms_line("one lock at a time: the list difference (syncing.prepare)", prepares))
    print(gc.ms_line("one lock at a time: the acknowledgement (syncing.record_ack)", records))
    print(
        f"one lock at a time: {statements:.1f} SQL statements a lock (BEGIN, COMMIT aside); "
        "list.diff "
        f"{statistics.fmean(sizes):.0f} bytes; for {n:,} locks, one after the other: "
        f"{sum(prepares) + sum(records):.2f} s of database-thread work"
    )
    print(
        f"in batches as the gateway does it ({SYNC_BATCH} differences, {ACK_BATCH} "
        f"acknowledgements a call): the {n:,} differences {1000 * batched_prepare:.0f} ms, "
        f"the {n:,} acknowledgements {1000 * batched_record:.0f} ms; "
        f"{batched_statements} SQL statements in all"
    )
    return {
        "report_offline_ms": round(1000 * call, 1),
        "prepare_ms": gc.ms_summary(prepares),
        "record_ack_ms": gc.ms_summary(records),
        "statements_per_lock": round(statements, 1),
        "db_work_s": round(sum(prepares) + sum(records), 3),
        "batched": {
            "prepare_ms": round(1000 * batched_prepare, 1),
            "record_ms": round(1000 * batched_record, 1),
            "statements": batched_statements,
            "sync_batch": SYNC_BATCH,
            "ack_batch": ACK_BATCH,
        },
    }


class _Statements:
    """Counts the SQL statements run through Django's cursors (an
    ``execute_wrapper``; ``executemany`` is one), BEGIN and COMMIT aside."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self, execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        if not sql.lstrip().upper().startswith(("BEGIN", "COMMIT", "ROLLBACK")):
            self.count += 1
        return execute(sql, params, many, context)


def idle_notices(lock_id: int, count: int, repeat: int = 50) -> dict[str, Any]:
    """One notice naming ``count`` locks (that the gateway does not hold: it
    answers at once that it does not), ``repeat`` times on this thread's
    internal link to the gateway, while nothing changes: the notice's own
    floor through the real gateway."""
    from doorkeep.gateway import routing
    from doorkeep.gateway.models import Device

    url = Device.objects.values_list("gateway_url", flat=True).get(lock_id=lock_id)
    command = routing.changed_command(
        [routing.Change(-1 - i, (1234567,), 1234) for i in range(count)]
    )
    times = []
    for _ in range(repeat + 5):
        started = time.perf_counter()
        routing._ask(url, command, 5.0)
        times.append(time.perf_counter() - started)
    times = times[5:]
    print(
        gc.ms_line(
            f"one notice naming {count:,} locks to the idle gateway, {repeat} times; each", times
        )
    )
    return gc.ms_summary(times)


_fallback_said: list[bool] = []


def switch_on_again(actor: Any, badge_id: int) -> None:
    """``badges.services.reactivate``. Where it fails on the database (on
    PostgreSQL it locks the badge with ``select_related("credential")``, a
    nullable join that FOR UPDATE refuses), the same switch-on with the
    badge's row alone locked, so that the reports can still be measured."""
    from django.db import NotSupportedError, transaction

    from doorkeep.badges.models import Badge
    from doorkeep.badges.services import _switch_on, reactivate

    try:
        reactivate(actor, badge_id)
        return
    except NotSupportedError as exc:
        if not _fallback_said:
            _fallback_said.append(True)
            print(
                f"!! badges.services.reactivate failed on this database: {exc}. The badge is "
                "switched on again here with _switch_on, its row locked with of=('self',) "
                "(no event, no notification); the reports are measured as they are."
            )
    with transaction.atomic():
        badge = (
            Badge.objects.select_for_update(of=("self",))
            .select_related("person", "credential")
            .get(pk=badge_id)
        )
        _switch_on(badge)


# --- the floor ------------------------------------------------------------------------------


def floor(count: int, logdir: Path) -> dict[str, Any]:
    """The machine's speed, and a bare websockets echo server (the gateway's
    options): ``count`` round trips one after the other on one connection
    (as the notices go), and ``count`` connections each sent one message at
    once, until the last echo (as the pushes go)."""
    speed = gc.machine_speed()
    print("\n-- the machine's floor, this run --")
    print(gc.machine_speed_line(speed))
    port = gc.free_port()
    echo = gc.start_echo(port, logdir=logdir)
    try:
        sequential, bursts = asyncio.run(_echo_rounds(f"ws://{gc.LOOPBACK}:{port}", count))
    finally:
        echo.stop()
    print(
        f"bare websockets echo: {count:,} round trips one after the other on one connection: "
        f"median {1000 * statistics.median(sequential):.1f} ms, max "
        f"{1000 * max(sequential):.1f} ms (5 runs)"
    )
    print(
        f"bare websockets echo: {count:,} connections, one message each at once, the last echo: "
        f"median {1000 * statistics.median(bursts):.1f} ms, max {1000 * max(bursts):.1f} ms "
        "(5 runs)"
    )
    return {
        "machine": speed,
        "echo_sequential_ms": gc.ms_summary(sequential),
        "echo_burst_ms": gc.ms_summary(bursts),
    }


async def _echo_rounds(url: str, count: int, runs: int = 5) -> tuple[list[float], list[float]]:
    from websockets.asyncio.client import connect

    message = json.dumps({"op": "changed", "lock": 123456, "keys": [1234567], "version": 1234})
    gate = asyncio.Semaphore(100)

    async def one() -> Any:
        async with gate:
            return await connect(url, ping_interval=None, compression=None, open_timeout=60)

    conns = await asyncio.gather(*(one() for _ in range(count)))
    try:
        sequential = []
        for _ in range(runs + 1):
            started = time.perf_counter()
            for _ in range(count):
                await conns[0].send(message)
                await conns[0].recv()
            sequential.append(time.perf_counter() - started)

        async def round_trip(ws: Any) -> None:
            await ws.send(message)
            await ws.recv()

        bursts = []
        for _ in range(runs + 1):
            started = time.perf_counter()
            await asyncio.gather(*(round_trip(ws) for ws in conns))
            bursts.append(time.perf_counter() - started)
    finally:
        await asyncio.gather(*(ws.close() for ws in conns), return_exceptions=True)
    return sequential[1:], bursts[1:]


# --- the fleet: simulated locks that note when they acknowledge -----------------------------


class LockFleet:
    """This script's ``fleet`` command in its own process, driven by lines on
    its stdin: ``mark`` (forget the acknowledgements seen so far), ``wait
    [versions]`` (answer, once each lock acknowledged at least its version,
    when it did: CLOCK_MONOTONIC seconds, in the order of the serials),
    ``quit``."""

    def __init__(self, url: str, serials: list[str], *, logdir: Path) -> None:
        serial_file = logdir / "badge-fleet.serials"
        serial_file.write_text("\n".join(serials))
        argv = [
            sys.executable,
            str(Path(__file__).resolve()),
            "fleet",
            "--url",
            url,
            "--serials",
            str(serial_file),
        ]
        self.child = gc.spawn("badge-fleet", argv, logdir=logdir, pipes=True)

    def read(self, timeout: float = 600) -> dict[str, Any]:
        return gc.read_json_line(self.child, timeout)

    def command(self, text: str, timeout: float = 60) -> dict[str, Any]:
        stdin = self.child.proc.stdin
        assert stdin is not None
        stdin.write(text + "\n")
        stdin.flush()
        return self.read(timeout)

    def stop(self) -> dict[str, Any] | None:
        result = None
        if self.child.alive():
            with contextlib.suppress(Exception):
                result = self.command("quit", timeout=60)
        self.child.stop()
        return result


async def _fleet(url: str, serials: list[str], concurrency: int = 50) -> None:
    import django

    django.setup()
    from doorkeep.gateway.simulator import SimulatedLock

    acks: list[list[tuple[float, int]]] = [[] for _ in serials]  # per lock, since the mark
    targets: list[int] | None = None
    done: list[float | None] = [None] * len(serials)
    left = [0]
    pushes = [0]  # list pushes received by all locks since the mark
    all_done = asyncio.Event()

    def tracer(index: int) -> Any:
        def trace(direction: str, message: dict[str, Any]) -> None:
            if direction == "<-" and message.get("type") in ("list.diff", "list.full"):
                pushes[0] += 1
            if direction != "->" or message.get("type") != "list.ack":
                return
            now, version = time.monotonic(), int(message.get("version") or 0)
            acks[index].append((now, version))
            if targets is not None and done[index] is None and version >= targets[index]:
                done[index] = now
                left[0] -= 1
                if left[0] == 0:
                    all_done.set()

        return trace

    locks = [
        SimulatedLock(url, serial, gc.DEVICE_SECRET, trace=tracer(i))
        for i, serial in enumerate(serials)
    ]
    gate = asyncio.Semaphore(concurrency)

    async def connect(lock: SimulatedLock) -> str:
        error = ""
        for attempt in range(5):
            async with gate:
                try:
                    await lock.connect(timeout=60)
                    return ""
                except Exception as exc:
                    error = f"{type(exc).__name__}: {exc}"[:120]
            await asyncio.sleep(0.5 * (attempt + 1))
        return error

    errors = [e for e in await asyncio.gather(*(connect(lock) for lock in locks)) if e]
    gc.settle_here()
    print(
        json.dumps({"ready": sum(1 for lock in locks if lock.online), "errors": errors[:3]}),
        flush=True,
    )
    loop = asyncio.get_running_loop()
    while True:
        line = await loop.run_in_executor(None, sys.stdin.readline)
        command, _, rest = line.strip().partition(" ")
        if command == "mark":
            for seen in acks:
                seen.clear()
            targets, pushes[0] = None, 0
            print(json.dumps({"ok": True}), flush=True)
        elif command == "wait":
            wanted: list[int] = json.loads(rest)
            for i, seen in enumerate(acks):
                done[i] = min((t for t, v in seen if v >= wanted[i]), default=None)
            left[0] = sum(1 for t in done if t is None)
            all_done.clear()
            targets = wanted
            if left[0]:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(all_done.wait(), 100)
            print(
                json.dumps(
                    {
                        "times": done,
                        "missing": sum(1 for t in done if t is None),
                        "pushes": pushes[0],
                    }
                ),
                flush=True,
            )
        elif not line or command == "quit":
            print(
                json.dumps(
                    {
                        "online": sum(1 for lock in locks if lock.online),
                        "errors": sum(len(lock.errors) for lock in locks),
                    }
                ),
                flush=True,
            )
            break
    await asyncio.gather(*(lock.close() for lock in locks), return_exceptions=True)


def fleet_main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description="simulated locks that time their acks")
    parser.add_argument("command", choices=["fleet"])
    parser.add_argument("--url", required=True)
    parser.add_argument("--serials", required=True)
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "doorkeep.settings")
    gc.raise_open_files()
    serials = [s for s in Path(args.serials).read_text().split() if s]
    asyncio.run(_fleet(args.url, serials))
    return 0


if __name__ == "__main__":
    if sys.argv[1:2] == ["fleet"]:
        sys.exit(fleet_main(sys.argv[1:]))
    sys.exit(main())
