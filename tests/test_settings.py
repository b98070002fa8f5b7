import subprocess
import sys

import pytest
from django.core.exceptions import ImproperlyConfigured

from doorkeep import env


def test_it_reads_booleans_strictly(monkeypatch):
    monkeypatch.setenv("X_FLAG", "yes")
    assert env.env_bool("X_FLAG", False) is True
    monkeypatch.setenv("X_FLAG", "0")
    assert env.env_bool("X_FLAG", True) is False
    monkeypatch.setenv("X_FLAG", "maybe")
    with pytest.raises(ImproperlyConfigured, match="X_FLAG='maybe' is not a boolean"):
        env.env_bool("X_FLAG", False)


def test_it_refuses_a_non_numeric_integer_and_one_below_the_minimum(monkeypatch):
    monkeypatch.setenv("X_NUM", "ten")
    with pytest.raises(ImproperlyConfigured, match="not an integer"):
        env.env_int("X_NUM", 1)
    monkeypatch.setenv("X_NUM", "0")
    with pytest.raises(ImproperlyConfigured, match="below the minimum"):
        env.env_int("X_NUM", 1, minimum=1)


def test_it_reads_a_secret_from_a_file(monkeypatch, tmp_path):
    secret = tmp_path / "secret"
    secret.write_text("s3cr3t-from-file\n")
    monkeypatch.setenv("X_TOKEN_FILE", str(secret))
    monkeypatch.setenv("X_TOKEN", "ignored")
    assert env.env_str("X_TOKEN", "") == "s3cr3t-from-file"
    monkeypatch.setenv("X_TOKEN_FILE", str(tmp_path / "missing"))
    with pytest.raises(ImproperlyConfigured, match="cannot be read"):
        env.env_str("X_TOKEN", "")


def test_it_splits_lists_and_drops_empty_items(monkeypatch):
    monkeypatch.setenv("X_HOSTS", "a.example, b.example,,")
    assert env.env_list("X_HOSTS", []) == ["a.example", "b.example"]


def test_it_generates_and_keeps_a_development_secret_key(monkeypatch, tmp_path):
    monkeypatch.delenv("SECRET_KEY", raising=False)
    first = env.secret_key(tmp_path, production=False)
    assert len(first) >= 50
    assert env.secret_key(tmp_path, production=False) == first
    assert (tmp_path / "secret_key").stat().st_mode & 0o777 == 0o600


def test_production_requires_a_long_secret_key(monkeypatch, tmp_path):
    monkeypatch.delenv("SECRET_KEY", raising=False)
    with pytest.raises(ImproperlyConfigured, match="SECRET_KEY is not set"):
        env.secret_key(tmp_path, production=True)
    monkeypatch.setenv("SECRET_KEY", "short")
    with pytest.raises(ImproperlyConfigured, match="at least 32"):
        env.secret_key(tmp_path, production=True)


def test_it_understands_email_urls():
    smtp = env.email_settings("smtp+tls://user%40x:p%3Ass@mail.example:2525?from=Doors <d@x.org>")
    assert smtp["EMAIL_HOST"] == "mail.example"
    assert smtp["EMAIL_PORT"] == 2525
    assert smtp["EMAIL_HOST_USER"] == "user@x"
    assert smtp["EMAIL_HOST_PASSWORD"] == "p:ss"
    assert smtp["EMAIL_USE_TLS"] is True
    assert smtp["DEFAULT_FROM_EMAIL"] == "Doors <d@x.org>"
    assert env.email_settings("smtp+ssl://mail.example")["EMAIL_PORT"] == 465
    assert "console" in str(env.email_settings("console:")["EMAIL_BACKEND"])


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("carrier-pigeon://coop", "unknown scheme"),
        ("smtp://", "needs a host"),
        ("smtp://mail:notaport", "not a number"),
    ],
)
def test_it_refuses_bad_email_urls(url, message):
    with pytest.raises(ImproperlyConfigured, match=message):
        env.email_settings(url)


def test_a_bad_setting_stops_the_command_with_a_message(tmp_path):
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-m", "doorkeep.cli", "migrate"],
        env={
            "PATH": "/usr/bin:/bin",
            "DOORKEEP_DATA_DIR": str(tmp_path),
            "DEBUG": "perhaps",
            "PYTHONPATH": "src",
        },
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "configuration error: DEBUG='perhaps' is not a boolean" in result.stderr
    assert "Traceback" not in result.stderr


def _settings_of(tmp_path, **environ: str) -> subprocess.CompletedProcess[str]:
    """``doorkeep manage shell`` printing SITE_URL and GATEWAY_PORT, in a fresh
    process with only ``environ`` set."""
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "doorkeep.cli",
            "manage",
            "shell",
            "--verbosity=0",
            "-c",
            "from django.conf import settings; print(settings.SITE_URL, settings.GATEWAY_PORT)",
        ],
        env={"PATH": "/usr/bin:/bin", "DOORKEEP_DATA_DIR": str(tmp_path), "PYTHONPATH": "src"}
        | environ,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_the_site_address_and_the_gateway_port_follow_port_unless_set(tmp_path):
    assert _settings_of(tmp_path).stdout.split() == ["http://127.0.0.1:8000", "8001"]
    assert _settings_of(tmp_path, PORT="9123").stdout.split() == ["http://127.0.0.1:9123", "9124"]
    given = _settings_of(tmp_path, PORT="9123", SITE_URL="https://doors.example/", GATEWAY_PORT="7")
    assert given.stdout.split() == ["https://doors.example", "7"]
    wrong = _settings_of(tmp_path, PORT="65535")
    assert wrong.returncode == 2
    assert "configuration error: PORT=65535 is above the maximum of 65534" in wrong.stderr


def test_it_generates_and_keeps_a_development_vapid_key_pair(monkeypatch, tmp_path):
    monkeypatch.delenv("DOORKEEP_VAPID_PRIVATE_KEY", raising=False)
    private, public = env.vapid_keys(tmp_path, production=False)

    assert env.vapid_keys(tmp_path, production=False) == (private, public)
    assert (tmp_path / "vapid.json").stat().st_mode & 0o777 == 0o600
    assert len(private) == 43 and len(public) == 87  # 32 bytes and a 65-byte point, base64url
    assert env.vapid_keys(tmp_path / "prod", production=True) is None  # push off, not invented


def test_the_vapid_public_key_is_derived_and_must_match(monkeypatch, tmp_path):
    private, public = env.vapid_keys(tmp_path, production=False)
    monkeypatch.setenv("DOORKEEP_VAPID_PRIVATE_KEY", private)

    assert env.vapid_keys(tmp_path / "other", production=True) == (private, public)
    monkeypatch.setenv("DOORKEEP_VAPID_PUBLIC_KEY", public)
    assert env.vapid_keys(tmp_path / "other", production=True) == (private, public)
    monkeypatch.setenv("DOORKEEP_VAPID_PUBLIC_KEY", public[:-2] + "AA")
    with pytest.raises(ImproperlyConfigured, match="does not belong"):
        env.vapid_keys(tmp_path, production=True)
    monkeypatch.setenv("DOORKEEP_VAPID_PRIVATE_KEY", "c2hvcnQ")
    with pytest.raises(ImproperlyConfigured, match="32 bytes, base64url"):
        env.vapid_keys(tmp_path, production=True)


def test_it_reads_durations_in_seconds_or_unlimited(monkeypatch):
    assert env.env_seconds("X_AGE", None) is None
    monkeypatch.setenv("X_AGE", "30")
    assert env.env_seconds("X_AGE", None) == 30
    monkeypatch.setenv("X_AGE", " Unlimited ")
    assert env.env_seconds("X_AGE", 60) is None
    monkeypatch.setenv("X_AGE", "-1")
    with pytest.raises(ImproperlyConfigured, match="X_AGE=-1 is below the minimum of 0"):
        env.env_seconds("X_AGE", None)


@pytest.mark.parametrize(
    ("value", "expected"), [(None, "60"), ("0", "0"), ("300", "300"), ("unlimited", "None")]
)
def test_database_connections_are_reopened_after_the_age_set(tmp_path, value, expected):
    import subprocess
    import sys

    environment = {
        "PATH": "/usr/bin:/bin",
        "DOORKEEP_DATA_DIR": str(tmp_path),
        "PYTHONPATH": "src",
        "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/unused",
    }
    if value is not None:
        environment["DB_CONN_MAX_AGE"] = value
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "import os; os.environ['DJANGO_SETTINGS_MODULE'] = 'doorkeep.settings'; "
            "from django.conf import settings; "
            "print(settings.DATABASES['default']['CONN_MAX_AGE'])",
        ],
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert result.stdout.strip() == expected


def test_it_reads_trusted_proxies_as_addresses_and_networks(monkeypatch):
    monkeypatch.setenv("X_PROXIES", "10.0.0.0/8, 192.0.2.1, ::1")
    assert [str(n) for n in env.env_networks("X_PROXIES", [])] == [
        "10.0.0.0/8",
        "192.0.2.1/32",
        "::1/128",
    ]
    monkeypatch.setenv("X_PROXIES", "10.0.0.0/8, proxy.example")
    with pytest.raises(ImproperlyConfigured, match=r"'proxy\.example' is not an IP address"):
        env.env_networks("X_PROXIES", [])


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, "django.core.cache.backends.db.DatabaseCache doorkeep_cache"),
        ("redis", "django.core.cache.backends.redis.RedisCache redis://127.0.0.1:6379/0"),
    ],
)
def test_the_cache_is_shared_by_every_worker_the_database_or_redis(tmp_path, value, expected):
    """Never a worker's memory: it holds allauth's limits."""
    environment = {"PATH": "/usr/bin:/bin", "DOORKEEP_DATA_DIR": str(tmp_path), "PYTHONPATH": "src"}
    if value is not None:
        environment["DOORKEEP_CACHE"] = value
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "import os; os.environ['DJANGO_SETTINGS_MODULE'] = 'doorkeep.settings'; "
            "from django.conf import settings; c = settings.CACHES['default']; "
            "print(c['BACKEND'], c['LOCATION'])",
        ],
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert result.stdout.strip() == expected


def test_migrate_makes_the_cache_table(tmp_path):
    import sqlite3

    subprocess.run(
        [sys.executable, "-m", "doorkeep.cli", "migrate"],
        env={"PATH": "/usr/bin:/bin", "DOORKEEP_DATA_DIR": str(tmp_path), "PYTHONPATH": "src"},
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    with sqlite3.connect(tmp_path / "doorkeep.sqlite3") as db:
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master")}
    assert "doorkeep_cache" in tables


def test_the_old_token_attempts_setting_stops_the_program_and_names_the_new_ones(tmp_path):
    result = _settings_of(tmp_path, DOORKEEP_TOKEN_ATTEMPTS_PER_HOUR="20")

    assert result.returncode != 0
    assert "DOORKEEP_LOGIN_FAILURES_PER_ACCOUNT_ADDRESS" in result.stderr
