"""Run every benchmark, each in its own process and throw-away database, and
print a summary table: access decisions, event log and lock page on SQLite,
and the event log on PostgreSQL too when the server is reachable; then the
gateway, badge, gateway lease, charger, billing, invoice and consumption
benchmarks with their own defaults, on SQLite and (those with a database) PostgreSQL, and the
scaled-out set-up behind nginx (PostgreSQL and Redis).

    .venv/bin/python bench/run_all.py [--events 1000000] [--n 20000] [--no-postgres]
        [--quiet-below 0.5] [--skip gateway_idle --skip chargers ...]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import _setup  # noqa: E402


def wait_for_quiet(below: float) -> None:
    """Wait (at most 10 minutes) until the 1-minute load average is below ``below``."""
    if below <= 0:
        return
    deadline = time.monotonic() + 600
    while os.getloadavg()[0] >= below and time.monotonic() < deadline:
        time.sleep(5)
    print(f"(load average {os.getloadavg()[0]:.2f}; waited for < {below})")


def run(script: str, *args: str, quiet_below: float = 0.0) -> tuple[dict[str, Any] | None, float]:
    """Run one benchmark, echoing its output; return its RESULT line."""
    wait_for_quiet(quiet_below)
    command = [sys.executable, str(HERE / script), *args]
    print(f"\n$ {' '.join([Path(sys.executable).name, f'bench/{script}', *args])}", flush=True)
    started = time.perf_counter()
    result: dict[str, Any] | None = None
    with subprocess.Popen(  # noqa: S603 - our own scripts, fixed arguments
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=HERE.parent
    ) as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            if line.startswith("RESULT "):
                result = json.loads(line[len("RESULT ") :])
            else:
                print(line, end="", flush=True)
    elapsed = time.perf_counter() - started
    if result is None:
        print(f"!! {script} {' '.join(args)} ended with exit code {proc.returncode} and no result")
    return result, elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--n", type=int, default=20_000)
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument(
        "--quiet-below",
        type=float,
        default=0.0,
        metavar="LOAD",
        help="before each benchmark wait (up to 10 minutes) until the 1-minute load average "
        "is below LOAD: other work on a shared machine skews the timings",
    )
    parser.add_argument(
        "--skip",
        action="append",
        default=[],
        choices=[name for name, _ in MORE],
        help="leave out one of the further benchmarks (repeatable)",
    )
    args = parser.parse_args()
    quiet = args.quiet_below

    print(
        f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}, "
        f"{os.cpu_count()} CPUs"
    )
    started = time.perf_counter()
    rows: list[tuple[str, ...]] = []  # benchmark, database, figures, target, verdict, load
    failed = False

    def verdict(result: dict[str, Any] | None) -> str:
        nonlocal failed
        if result is None or not result["passed"]:
            failed = True
        return "ERROR" if result is None else "PASS" if result["passed"] else "FAIL"

    result, _ = run("access_decisions.py", "--n", str(args.n), quiet_below=quiet)
    figures = "-"
    if result:
        figures = (
            f"{result['rate']:,}/s; "
            f"p50 {result['p50_ms']:.3f} ms, p99 {result['p99_ms']:.3f} ms; "
            f"{result['events']:,} events"
        )
    load = result["load"] if result else ""
    rows.append(("access decisions", "SQLite", figures, ">= 2,000/s", verdict(result), load))

    backends: list[tuple[str, list[str]]] = [("SQLite", [])]
    if args.no_postgres:
        print("\n(PostgreSQL skipped: --no-postgres)")
    elif _setup.postgres_reachable():
        backends.append(("PostgreSQL", ["--postgres"]))
    else:
        print(f"\n(PostgreSQL not reachable at {_setup.PG_SERVER}; event log on SQLite only)")
    for label, extra in backends:
        name = f"event log, {args.events:,} events"
        result, _ = run("event_log.py", "--events", str(args.events), *extra, quiet_below=quiet)
        if result is None:
            rows.append((name, label, "-", "p99 <= 10 ms", verdict(result), ""))
            continue
        rows.append((name, label, f"fill {result['fill_s']:.1f} s", "", "", ""))
        for key, title in (
            ("first", "first page"),
            ("second", "second page (cursor)"),
            ("denied", "denied, last 30 days"),
            ("deep", "deep page (info)"),
        ):
            part = result[key]
            figures = (
                f"p50 {part['p50_ms']:.2f} ms, p99 {part['p99_ms']:.2f} ms, "
                f"max {part['max_ms']:.2f} ms"
            )
            target = "p99 <= 10 ms" if part["counts"] else "-"
            mark = ("ok" if part["ok"] else "over") if part["counts"] else ""
            rows.append((f"  {title}", label, figures, target, mark, ""))
        rows.append(
            ("  event log verdict", label, "", "p99 <= 10 ms", verdict(result), result["load"])
        )

    result, _ = run("lock_page.py", quiet_below=quiet)
    if result:
        for size in ("small", "large"):
            part = result[size]
            figures = f"{part['queries']} queries, {part['median_ms']:.1f} ms median"
            rows.append((f"lock page, {part['label']}", "SQLite", figures, "", "", ""))
        rows.append(
            (
                f"  lock page verdict ({result['target']})",
                "SQLite",
                "",
                "equal query counts",
                verdict(result),
                result["load"],
            )
        )
    else:
        rows.append(("lock page", "SQLite", "-", "equal query counts", verdict(result), ""))

    for name, on_database in MORE:
        if name in args.skip:
            continue
        for label, extra in backends if on_database else [("-", [])]:
            result, _ = run(f"{name}.py", *extra, quiet_below=quiet)
            load = str(result.get("load", "")) if result else ""
            rows.append((name, label, _figures(result), "its own", verdict(result), load))

    total = time.perf_counter() - started
    widths = [max(len(row[i]) for row in [*rows, HEADER]) for i in range(len(HEADER))]
    print(
        f"\n== summary (all benchmarks in {total:.0f} s; load average now "
        f"{os.getloadavg()[0]:.2f}; 'load' is the 1-minute load average while timing) =="
    )
    for row in [HEADER, tuple("-" * w for w in widths), *rows]:
        print(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        )
    return 1 if failed else 0


# The further benchmarks, each with its own target (printed by the script), and
# whether it runs against a database.
MORE = [
    ("gateway_unlock", True),
    ("gateway_sync", True),
    ("gateway_idle", True),
    ("badge_lost", True),
    ("gateway_lease", True),
    ("chargers", True),
    ("billing_run", True),
    ("consumption", True),
    ("invoice_pdf", False),
    ("scaled_out", False),  # PostgreSQL, Redis and nginx of its own choosing
]


def _figures(result: dict[str, Any] | None, width: int = 90) -> str:
    """The scalar figures of a RESULT line, in its order, cut to ``width``."""
    if result is None:
        return "-"
    skip = {"bench", "backend", "passed", "load"}
    parts = [
        f"{key} {value:,}" if isinstance(value, int) else f"{key} {value}"
        for key, value in result.items()
        if key not in skip and isinstance(value, int | float) and not isinstance(value, bool)
    ]
    text = ", ".join(parts)
    return text if len(text) <= width else text[: width - 1] + "…"


HEADER = ("benchmark", "database", "figures", "target", "verdict", "load")

if __name__ == "__main__":
    sys.exit(main())
