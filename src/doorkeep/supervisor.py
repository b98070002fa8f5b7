"""What `doorkeep serve` does while it runs: keep its child processes (the
web server, the gateway) running, and run the platform's periodic jobs.
`doorkeep jobs` runs the same jobs without children (docs/operations.md,
"Running under systemd").

A child that stops is started again after 1, 2, 4 … seconds (at most 30);
one that had stayed up a minute starts again after 1 second. Each stop is
one line in the log, saying which child, why and when it starts again. One
exception: a child that stops within ``FIRST_START_SECONDS`` of its very
first start (its port is taken, a setting is wrong) stops serve, with exit
status 1: trying again would only repeat the mistake. SIGTERM, SIGINT
(Ctrl-C) and SIGHUP stop everything."""

from __future__ import annotations

import logging
import os
import shlex
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger("doorkeep.serve")

FIRST_START_SECONDS = 15.0
BACKOFF_FIRST = 1.0
BACKOFF_MAX = 30.0
STEADY_SECONDS = 60.0  # up this long: the next restart waits BACKOFF_FIRST again
STOP_GRACE = 15.0  # seconds children get to stop before SIGKILL
TEND_EVERY = 0.25  # seconds between looks at the children


@dataclass
class Child:
    """A program serve runs, and starts again when it stops."""

    name: str  # "web server", "gateway"
    argv: list[str]
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    started: float = 0.0
    starts: int = 0
    backoff: float = 0.0  # the wait before the latest restart
    restart_at: float = 0.0

    def start(self) -> None:
        # Each child leads its own process group, so that stopping it stops what
        # it started too: granian stopped while it starts its workers leaves them
        # running otherwise (and serving, on the port). In their own sessions
        # too: a terminal's Ctrl-C or hang-up reaches serve only, which stops them.
        self.process = subprocess.Popen(self.argv, start_new_session=True)  # noqa: S603
        self.started = time.monotonic()
        self.starts += 1

    def command(self) -> str:
        return shlex.join([Path(self.argv[0]).name, *self.argv[1:]])


def why_stopped(returncode: int) -> str:
    if returncode < 0:
        try:
            return f"was killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"was killed by signal {-returncode}"
    return f"exited with code {returncode}"


def _hourly_jobs() -> tuple[tuple[str, Callable[[], int]], ...]:
    from doorkeep.billing import runs as billing_runs
    from doorkeep.billing import services as billing_services
    from doorkeep.events.retention import purge as purge_events
    from doorkeep.guests.services import report_expired
    from doorkeep.licensing.services import send_reminders

    return (
        ("licence reminders", send_reminders),
        ("expired invitations", report_expired),
        ("old events", lambda: purge_events().deleted),
        ("billing runs of last month", lambda: len(billing_runs.finalize_due())),
        ("invoices not delivered yet", billing_runs.deliver_pending),
        ("invoice reminders", billing_runs.send_reminders),
        ("extra badge prices", billing_services.sync_badge_prices),
    )


class Jobs:
    """The periodic jobs: licence and invoice reminders, expired invitations,
    old events, billing runs and badge prices every ``hourly`` seconds; due
    notifications (Web Push, email, webhooks) every ``outbox`` seconds. 0
    turns a group off. Each job on its own: one failing never keeps the
    others from running, and the next round tries again."""

    def __init__(self, *, hourly: int, outbox: int) -> None:
        self.hourly, self.outbox = hourly, outbox
        self.next_hourly = self.next_outbox = time.monotonic()

    def run_due(self) -> bool:
        """Run what is due; False if a job failed (logged)."""
        from doorkeep.notify.outbox import deliver_due

        ok = True
        if self.hourly and time.monotonic() >= self.next_hourly:
            for label, job in _hourly_jobs():
                ok = _run(label, job) and ok
            self.next_hourly = time.monotonic() + self.hourly
        if self.outbox and time.monotonic() >= self.next_outbox:
            ok = _run("notifications", deliver_due, quiet=True) and ok
            self.next_outbox = time.monotonic() + self.outbox
        return ok


def _run(label: str, job: Callable[[], int], *, quiet: bool = False) -> bool:
    try:
        done = job()
    except Exception:
        log.exception("%s failed", label)
        return False
    if done and not quiet:
        log.info("%s: %d", label, done)
    return True


def supervise(children: Sequence[Child], jobs: Jobs) -> int:
    """Run ``children`` and ``jobs`` until SIGTERM, SIGINT or SIGHUP (exit
    status 0), or until a child fails its first start (1). Without children:
    the jobs alone (`doorkeep jobs`)."""
    stop = threading.Event()

    def _on_signal(signum: int, frame: object) -> None:
        stop.set()

    handlers = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
    previous = {signum: signal.signal(signum, _on_signal) for signum in handlers}
    # The jobs run in a thread of their own: a slow one (an SMTP server that
    # takes its time) must not delay noticing a child that stopped, its
    # restart, or a SIGTERM.
    worker = threading.Thread(target=_keep_running, args=(jobs, stop), name="jobs", daemon=True)
    try:
        for child in children:
            child.start()
        worker.start()
        while not stop.is_set():
            for child in children:
                if not _tend(child):
                    return 1
            stop.wait(TEND_EVERY)
    finally:
        stop.set()  # the jobs thread ends after the job it is running
        stop_groups([c.process for c in children if c.process is not None], grace=STOP_GRACE)
        for signum, handler in previous.items():
            if handler is not None:  # None: not set from Python
                signal.signal(signum, handler)
    return 0


def _keep_running(jobs: Jobs, stop: threading.Event) -> None:
    from django.db import connections

    try:
        while not stop.is_set():
            jobs.run_due()
            stop.wait(1.0)
    finally:
        connections.close_all()


def _tend(child: Child) -> bool:
    """Start ``child`` again if its wait is over; notice if it stopped. False:
    it failed its first start, serve should stop."""
    now = time.monotonic()
    if child.process is None:
        if now >= child.restart_at:
            child.start()
            log.info("%s started again", child.name)
        return True
    returncode = child.process.poll()
    if returncode is None:
        return True
    up = now - child.started
    stop_groups([child.process], grace=5.0)  # what it started (granian's workers)
    child.process = None
    if child.starts == 1 and up < FIRST_START_SECONDS:
        log.error(
            "%s (%s) %s %.0f s after it started: stopping (its messages are above)",
            child.name,
            child.command(),
            why_stopped(returncode),
            up,
        )
        return False
    steady = up >= STEADY_SECONDS
    child.backoff = (
        BACKOFF_FIRST if steady else min(child.backoff * 2 or BACKOFF_FIRST, BACKOFF_MAX)
    )
    child.restart_at = time.monotonic() + child.backoff
    log.warning(
        "%s (%s) %s after %.0f s up; starting it again in %.0f s (restart %d)",
        child.name,
        child.command(),
        why_stopped(returncode),
        up,
        child.backoff,
        child.starts,
    )
    return True


def stop_groups(children: Sequence[subprocess.Popen[bytes]], *, grace: float) -> None:
    """SIGTERM to each child's process group; SIGKILL to whatever of a group
    is still there after ``grace`` seconds (a worker whose server has gone)."""

    def signal_group(child: subprocess.Popen[bytes], signum: int) -> bool:
        """Signal the group (0: only ask whether anybody is left in it)."""
        try:
            os.killpg(child.pid, signum)  # the group's id is its leader's pid
        except ProcessLookupError:
            return False  # nobody left in the group
        return True

    for child in children:
        signal_group(child, signal.SIGTERM)
    deadline = time.monotonic() + grace
    for child in children:
        # The leader may be gone (poll reaps it) while its workers still stop.
        while time.monotonic() < deadline and (child.poll() is None or signal_group(child, 0)):
            time.sleep(0.1)
        if signal_group(child, signal.SIGKILL):
            child.wait()
