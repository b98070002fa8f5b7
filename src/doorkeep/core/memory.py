"""Long-running processes (the gateway, the web workers) load Django, the app
and their modules once and keep them for their whole life. Python's garbage
collector would still walk all of it at every full collection: measured in
the gateway, each took 58-71 ms, stopping every connection for as long, and
was the stall of a full list sync's p99 (bench/gateway_sync.py). Frozen after
start-up, those objects are no longer walked: a full collection then takes
about 1 ms."""

from __future__ import annotations

import gc
import os

FREEZE_ENV = "DOORKEEP_GC_FREEZE"  # set by `doorkeep serve` for its web workers


def settle() -> None:
    """Collect what start-up left behind, then freeze the rest (it lives as
    long as the process)."""
    gc.collect()
    gc.freeze()


def settle_if_served() -> None:
    """In a web worker started by `doorkeep serve` (not in tests or scripts
    that import the application)."""
    if os.environ.get(FREEZE_ENV) == "1":
        settle()
