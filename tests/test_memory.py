"""Served processes freeze what they loaded at start-up (doorkeep/core/memory.py),
so that full garbage collections no longer walk Django and the app."""

from __future__ import annotations

import os
import subprocess
import sys

from django.conf import settings

PROBE = "import gc, doorkeep.wsgi; print(gc.get_freeze_count())"


def frozen_after_importing_the_application(**env: str) -> int:
    result = subprocess.run(
        [sys.executable, "-c", PROBE],
        env={
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "doorkeep.settings",
            "DOORKEEP_DATA_DIR": str(settings.DATA_DIR),
            **env,
        },
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return int(result.stdout.strip().splitlines()[-1])


def test_a_web_worker_of_doorkeep_serve_freezes_what_it_loaded():
    # Django, the app and their modules: tens of thousands of objects.
    assert frozen_after_importing_the_application(DOORKEEP_GC_FREEZE="1") > 10_000


def test_importing_the_application_elsewhere_freezes_nothing():
    assert frozen_after_importing_the_application(DOORKEEP_GC_FREEZE="") == 0


def test_the_gateway_settles_before_serving(monkeypatch):
    from doorkeep.core import memory
    from doorkeep.gateway import server

    calls: list[str] = []
    monkeypatch.setattr(memory, "settle", lambda: calls.append("settled"))

    async def serve_forever(self) -> None:
        calls.append("serving")

    monkeypatch.setattr(server.Gateway, "serve_forever", serve_forever)

    server.run("127.0.0.1", 0)

    assert calls == ["settled", "serving"]
