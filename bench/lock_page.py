"""The lock page with 10 keys and with 2,500 keys: the number of SQL queries
must not grow with the number of keys.

Renders GET /locks/<id>/ as the lock owner (web UI). While the web UI does not
serve that URL yet, falls back to the API the page is built on,
GET /api/v1/locks/<id>/keys?limit=500. PASS when both locks take the same
number of queries.

    .venv/bin/python bench/lock_page.py [--postgres] [--repeat 10]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _setup

SMALL, LARGE = 10, 2500


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--postgres", action="store_true", help="use a throw-away PostgreSQL db")
    parser.add_argument("--repeat", type=int, default=10, help="timed renders per lock")
    parser.add_argument("--api", action="store_true", help="measure the API, not the page")
    args = parser.parse_args()

    db = _setup.setup(postgres=args.postgres)
    from django.db import connection, reset_queries
    from django.test import Client
    from django.test.utils import CaptureQueriesContext
    from django.urls import Resolver404, resolve

    print(f"== lock page on {db.label} ==")
    print(f"load average at start: {os.getloadavg()[0]:.2f}")
    t0 = time.perf_counter()
    world = _setup.make_world(2)
    small_lock, large_lock = world.locks
    _setup.bulk_keys(world, small_lock, SMALL, prefix="guest")
    _setup.bulk_keys(world, large_lock, LARGE, prefix="tenant")
    elapsed = time.perf_counter() - t0
    print(f"setup: a lock with {SMALL} keys and one with {LARGE:,} in {elapsed:.1f} s")

    client = Client()
    client.force_login(world.owner)

    def web_url(lock: Any) -> str:
        return f"/locks/{lock.pk}/"

    def api_url(lock: Any) -> str:
        return f"/api/v1/locks/{lock.pk}/keys?limit=500"

    target, url_of = "API GET /api/v1/locks/<id>/keys?limit=500", api_url
    if not args.api:
        try:
            resolve(web_url(small_lock))
        except Resolver404:
            print("web UI: /locks/<id>/ is not served yet; measuring the API instead")
        else:
            status = client.get(web_url(small_lock)).status_code
            if status == 200:
                target, url_of = "web page GET /locks/<id>/", web_url
            else:
                print(f"web UI: /locks/<id>/ answered {status}; measuring the API instead")
    print(f"measuring: {target}")

    load_before = os.getloadavg()[0]
    rows = []
    for label, lock, keys in (("10 keys", small_lock, SMALL), ("2,500 keys", large_lock, LARGE)):
        url = url_of(lock)
        response = client.get(url)  # warm-up: templates, caches, connection
        assert response.status_code == 200, (url, response.status_code)
        reset_queries()  # each request resets the log; start the capture from an empty one
        with CaptureQueriesContext(connection) as ctx:
            response = client.get(url)
        captured = list(ctx.captured_queries)  # copy before the next request resets the log
        queries = len(captured)
        size = len(response.content)
        shown = ""
        if url_of is api_url:
            body = response.json()
            assert body["count"] == keys, body["count"]
            shown = f", {len(body['items'])} of {body['count']:,} keys in the response"
        seconds = []
        for _ in range(args.repeat):
            t = time.perf_counter()
            response = client.get(url)
            seconds.append(time.perf_counter() - t)
            assert response.status_code == 200
        median = statistics.median(seconds) * 1000
        rows.append({"label": label, "queries": queries, "median_ms": round(median, 1)})
        print(
            f"{label}: {queries} SQL queries, render median {median:.1f} ms "
            f"(min {min(seconds) * 1000:.1f}, max {max(seconds) * 1000:.1f}) over {args.repeat}, "
            f"{size:,} bytes{shown}"
        )
        if os.environ.get("BENCH_SHOW_SQL"):
            for q in captured:
                print("   ", q["sql"][:200])

    load = f"{load_before:.2f} -> {os.getloadavg()[0]:.2f}"
    print(f"load average during the timed renders: {load}")
    passed = rows[0]["queries"] == rows[1]["queries"]
    print(
        f"{'PASS' if passed else 'FAIL'}: {rows[0]['queries']} queries with {SMALL} keys, "
        f"{rows[1]['queries']} with {LARGE:,} (must be equal)"
    )
    _setup.emit_result(
        "lock_page",
        db.backend,
        target=target,
        small=rows[0],
        large=rows[1],
        passed=passed,
        load=load,
    )
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
