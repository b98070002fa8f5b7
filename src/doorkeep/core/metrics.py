"""Metrics in the Prometheus text format (prometheus-client), for the web
workers; the gateway has its own (gateway/metrics.py).

Two kinds of figures:

- **Counted in the process** (latencies, limits hit): histograms and counters
  defined here. `doorkeep serve` runs several web workers; it points
  ``PROMETHEUS_MULTIPROC_DIR`` at an empty folder of its data directory
  before they start, so that every worker writes its figures there and a
  scrape of any worker adds up all of them (prometheus-client's multiprocess
  mode). Without the variable (tests, `manage runserver`) the figures are the
  process's own.
- **Read from the database at scrape time** (outbox backlog, devices online,
  lists behind): one `collect` per scrape, the same whichever worker answers,
  so they are never summed over workers.

A scrape needs the token of ``DOORKEEP_METRICS_TOKEN`` (Prometheus'
``authorization: credentials``); without a token set, /metrics answers 404.
"""

from __future__ import annotations

import functools
import os
import shutil
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar, cast

from django.db.models import Count, F, Min, Q
from django.utils import timezone
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
Fn = TypeVar("Fn", bound=Callable[..., Any])

# Seconds: from a few milliseconds (a decision in the database) to the
# longest a remote unlock may wait for its lock (gateway.routing: 30 s).
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

UNLOCK_SECONDS = Histogram(
    "doorkeep_unlock_seconds",
    "Remote unlocks asked by a web worker, from the request to the lock's answer, by outcome",
    ["outcome"],
    buckets=LATENCY_BUCKETS,
)
DECISION_SECONDS = Histogram(
    "doorkeep_access_decision_seconds",
    "Access decisions: the rule (keys.access.judge), without writing the event",
    buckets=LATENCY_BUCKETS,
)
LIMITS_HIT = Counter(
    "doorkeep_rate_limit_hits_total",
    "Attempts refused because a limit was used up, by the limit (core/ratelimit.py)",
    ["limit"],
)


OUTCOMES = frozenset({"opened", "offline", "timeout", "refused"})


def outcome_of(answer: dict[str, object]) -> str:
    """The label of a gateway's answer to an unlock (a bounded set: an
    unknown error is "error")."""
    if answer.get("ok"):
        return "opened"
    error = str(answer.get("error") or "")
    return error if error in OUTCOMES else "error"


def observe_unlock(started: float, answer: dict[str, object]) -> None:
    UNLOCK_SECONDS.labels(outcome_of(answer)).observe(time.perf_counter() - started)


def observed(histogram: Histogram) -> Callable[[Fn], Fn]:
    """Decorate a function so that each call's duration is observed."""

    def wrap(func: Fn) -> Fn:
        @functools.wraps(func)
        def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return func(*args, **kwargs)
            finally:
                histogram.observe(time.perf_counter() - started)

        return cast(Fn, timed)

    return wrap


def fresh_multiprocess_dir(data_dir: Path) -> Path:
    """An empty folder for the web workers' metric files (figures of a
    previous run would be added to this one's otherwise)."""
    folder = data_dir / "metrics"
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    return folder


def _age(oldest: datetime | None, now: datetime) -> float:
    return max(0.0, (now - oldest).total_seconds()) if oldest else 0.0


class DatabaseCollector(Collector):
    """Figures read from the database when scraped."""

    def collect(self) -> Iterator[Metric]:
        yield from _outbox()
        yield from _devices()


def _outbox() -> Iterator[Metric]:
    from doorkeep.notify.models import OutboxMessage

    now = timezone.now()
    due = Q(delivered_at__isnull=True, gave_up_at__isnull=True)
    backlog = GaugeMetricFamily(
        "doorkeep_outbox_backlog",
        "Messages (email, push, webhook) not delivered yet and still tried, by channel",
        labels=["channel"],
    )
    oldest = GaugeMetricFamily(
        "doorkeep_outbox_oldest_seconds",
        "Age of the oldest message not delivered yet and still tried, by channel",
        labels=["channel"],
    )
    failing = GaugeMetricFamily(
        "doorkeep_outbox_retrying",
        "Messages not delivered yet that failed at least once, by channel",
        labels=["channel"],
    )
    gave_up = GaugeMetricFamily(
        "doorkeep_outbox_gave_up",
        "Messages given up after their last attempt (kept for 30 days), by channel",
        labels=["channel"],
    )
    rows = (
        OutboxMessage.objects.order_by()
        .values("channel")
        .annotate(
            waiting=Count("id", filter=due),
            retrying=Count("id", filter=due & Q(attempts__gt=0)),
            given_up=Count("id", filter=Q(gave_up_at__isnull=False)),
            oldest=Min("created_at", filter=due),
        )
    )
    for row in rows:
        channel = [row["channel"]]
        backlog.add_metric(channel, row["waiting"])
        oldest.add_metric(channel, _age(row["oldest"], now))
        failing.add_metric(channel, row["retrying"])
        gave_up.add_metric(channel, row["given_up"])
    yield from (backlog, oldest, failing, gave_up)


def _devices() -> Iterator[Metric]:
    from doorkeep.chargers.models import Station
    from doorkeep.gateway.models import Device
    from doorkeep.laundry.models import Machine

    now = timezone.now()
    online = GaugeMetricFamily(
        "doorkeep_devices_online",
        "Devices connected to a gateway now, by kind (as the database knows it)",
        labels=["kind"],
    )
    behind = GaugeMetricFamily(
        "doorkeep_lists_behind",
        "Connected devices whose list is older than the platform's, by kind",
        labels=["kind"],
    )
    waiting = GaugeMetricFamily(
        "doorkeep_lists_behind_oldest_seconds",
        "Connected devices behind: seconds since the oldest of their last pushes",
        labels=["kind"],
    )
    locks = Device.objects.filter(online=True, lock__organization__isnull=False)
    late = locks.filter(acked_version__lt=F("lock__credential_version"))
    figures = [
        ("lock", locks.count(), late.count(), late.aggregate(m=Min("last_push_at"))["m"]),
    ]
    for kind, model in (("station", Station), ("machine", Machine)):
        connected = model.objects.filter(online=True, removed_at__isnull=True)
        late_ones = connected.filter(acked_version__lt=F("list_version"))
        figures.append((kind, connected.count(), late_ones.count(), None))
    for kind, count, late_count, oldest in figures:
        online.add_metric([kind], count)
        behind.add_metric([kind], late_count)
        waiting.add_metric([kind], _age(oldest, now) if late_count else 0.0)
    yield from (online, behind, waiting)


class _ProcessFigures(Collector):
    """This process's own metrics (the default registry: those above and the
    process collector's CPU and memory)."""

    def collect(self) -> Iterator[Metric]:
        from prometheus_client import REGISTRY

        yield from REGISTRY.collect()


def exposition() -> bytes:
    """The text a scrape gets: the figures of all web workers (multiprocess
    mode) or of this process, and the database's."""
    registry = CollectorRegistry()
    if os.environ.get(MULTIPROC_ENV):
        multiprocess.MultiProcessCollector(registry)
    else:
        registry.register(_ProcessFigures())
    registry.register(DatabaseCollector())
    return generate_latest(registry)
