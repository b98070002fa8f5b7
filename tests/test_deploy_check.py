"""`doorkeep manage check --deploy` with the production settings that
docs/operations.md gives reports no warning, and the security headers they
turn on are sent."""

from __future__ import annotations

import base64
import os
import re
import subprocess
import sys
from pathlib import Path

from cryptography.fernet import Fernet
from cryptography.hazmat.primitives.asymmetric import ec

DOCS = Path(__file__).resolve().parents[1] / "docs" / "operations.md"
DOORKEEP = str(Path(sys.executable).with_name("doorkeep"))


def _production_env() -> dict[str, str]:
    text = DOCS.read_text()
    block = re.search(r"<!-- production-env -->\n```sh\n(.*?)```", text, re.S)
    assert block, "docs/operations.md lost its production environment block"
    env = {}
    for line in block.group(1).splitlines():
        name, _, value = line.partition("=")
        env[name.strip()] = value.strip()
    return env


def test_the_documented_production_settings_pass_the_deploy_check(tmp_path):
    documented = _production_env()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DOORKEEP_", "DJANGO_"))}
    env.pop("DATABASE_URL", None)
    env.update(documented)
    env["DOORKEEP_DATA_DIR"] = str(tmp_path)
    # The secrets the file names: made here, where the docs say /etc/doorkeep.
    key = ec.generate_private_key(ec.SECP256R1()).private_numbers().private_value
    contents = {
        "SECRET_KEY_FILE": "x" * 20 + "production-secret-key-for-the-test-only",
        "DOORKEEP_VAPID_PRIVATE_KEY_FILE": base64.urlsafe_b64encode(key.to_bytes(32, "big"))
        .decode()
        .rstrip("="),
        "DOORKEEP_METRICS_TOKEN_FILE": "metrics-token",
        "DOORKEEP_ENCRYPTION_KEYS_FILE": Fernet.generate_key().decode(),
    }
    for name, content in contents.items():
        assert name in documented, f"{name} is no longer in the documented settings"
        path = tmp_path / name.lower()
        path.write_text(content)
        env[name] = str(path)

    check = subprocess.run(
        [DOORKEEP, "manage", "check", "--deploy", "--fail-level", "WARNING"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert check.returncode == 0, check.stdout + check.stderr
    assert "System check identified no issues" in check.stdout


def test_production_redirects_to_https_and_sends_hsts_and_the_policy(client, settings):
    settings.SECURE_SSL_REDIRECT = True
    settings.SECURE_HSTS_SECONDS = 31_536_000
    settings.SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

    plain = client.get("/accounts/login/")
    assert plain.status_code == 301
    assert plain["Location"].startswith("https://")
    # Health checks inside the network stay on plain HTTP.
    assert client.get("/healthz").status_code == 200

    secure = client.get("/accounts/login/", HTTP_X_FORWARDED_PROTO="https")
    assert secure.status_code == 200
    assert secure["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains"
    assert "script-src 'self'" in secure["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in secure["Content-Security-Policy"]
