"""Limits are shared by every worker process: wrong passwords made in another
process (another web worker, another machine) count here too, and so do
allauth's own limits, kept in Django's cache: the database's, or Redis."""

from __future__ import annotations

import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.core.cache import cache
from django.db import connection
from django.test import Client

ROOT = Path(__file__).resolve().parents[1]
ADDRESS = "203.0.113.9"
PASSWORD = "correct horse battery staple"
IN_MEMORY = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# Another worker: a separate Django process on the same database.
WORKER = """
import sys
import django
django.setup()
from django.test import Client
what, count = sys.argv[1], int(sys.argv[2])
client = Client(REMOTE_ADDR="203.0.113.9")
for _ in range(count):
    if what == "sign-in":
        client.post("/accounts/login/", {"login": "alice@example.com", "password": "nope"})
    else:
        client.post("/accounts/password/reset/", {"email": "alice@example.com"})
"""


def database_url() -> str:
    db = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{db['NAME']}"
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    return f"postgres://{db['USER']}{password}@{db['HOST']}:{db['PORT'] or 5432}/{db['NAME']}"


def in_another_worker(what: str, count: int, environment: dict[str, str] | None = None) -> None:
    result = subprocess.run(
        [sys.executable, "-c", WORKER, what, str(count)],
        env={
            "PATH": "/usr/bin:/bin",
            "PYTHONPATH": str(ROOT / "src"),
            "DJANGO_SETTINGS_MODULE": "doorkeep.settings",
            "DOORKEEP_DATA_DIR": str(django_settings.DATA_DIR),
            "DATABASE_URL": database_url(),
            "EMAIL_URL": "memory:",
        }
        | (environment or {}),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]


@pytest.mark.django_db(transaction=True)
def test_wrong_passwords_in_another_worker_count_in_this_one(world):
    in_another_worker("sign-in", 10)

    client = Client(REMOTE_ADDR=ADDRESS)
    response = client.post("/accounts/login/", {"login": "alice@example.com", "password": PASSWORD})

    assert "Too many failed login attempts" in response.content.decode()
    assert "_auth_user_id" not in client.session


@pytest.fixture(params=["database", "redis"])
def shared_cache(request, settings, transactional_db):
    """Django's cache as production has it, the database's or Redis (under a
    key prefix of this test's own); the environment another worker needs."""
    if request.param == "database":
        settings.CACHES = {
            "default": {
                "BACKEND": "django.core.cache.backends.db.DatabaseCache",
                "LOCATION": "doorkeep_cache",
            }
        }
        yield {}
        cache.clear()
        settings.CACHES = IN_MEMORY  # what tests/conftest.py empties after the test
        return
    import redis

    url = "redis://127.0.0.1:6379/0"
    client = redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=5)
    try:
        client.ping()
    except redis.RedisError as exc:
        pytest.skip(f"Redis is not reachable at {url}: {exc}")
    prefix = f"doorkeep-test-{uuid.uuid4().hex[:10]}"
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": url,
            "KEY_PREFIX": f"{prefix}:cache",
        }
    }
    yield {"DOORKEEP_CACHE": "redis", "REDIS_URL": url, "DOORKEEP_GATEWAY_REDIS_PREFIX": prefix}
    for key in client.scan_iter(f"{prefix}:*"):
        client.delete(key)
    settings.CACHES = IN_MEMORY


def test_allauths_own_limits_are_shared_by_the_workers_through_the_cache(world, shared_cache):
    in_another_worker("reset", 5, shared_cache)  # allauth: 5 password resets a minute per address

    response = Client(REMOTE_ADDR=ADDRESS).post(
        "/accounts/password/reset/", {"email": "alice@example.com"}
    )

    assert response.status_code == 429
