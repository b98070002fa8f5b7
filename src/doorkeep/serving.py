"""Where the running platform is: `doorkeep serve` notes its web address and
its gateway's in the data directory (``serving.json``), so that the simulators
started from the same place reach it on whatever PORT it was given, without
being told again. A variable set for the simulator itself (SITE_URL, PORT,
GATEWAY_URL, GATEWAY_PORT) or an option (--url, --base-url) wins."""

from __future__ import annotations

import json
import os
from pathlib import Path

from django.conf import settings

FILE_NAME = "serving.json"


def _file() -> Path:
    return Path(settings.DATA_DIR) / FILE_NAME


def _dialable(host: str) -> str:
    return "127.0.0.1" if host in {"", "0.0.0.0", "::", "[::]"} else host  # noqa: S104


def note(*, web_host: str, gateway: bool) -> Path:
    """Written by `doorkeep serve` once it knows its ports."""
    site_url = settings.SITE_URL
    if "SITE_URL" not in os.environ:
        site_url = f"http://{_dialable(web_host)}:{settings.PORT}"
    noted = {"site_url": site_url}
    if gateway:
        noted["gateway_url"] = settings.GATEWAY_PUBLIC_URL or (
            f"ws://{_dialable(settings.GATEWAY_HOST)}:{settings.GATEWAY_PORT}"
        )
    path = _file()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(noted), encoding="utf-8")
    return path


def forget() -> None:
    _file().unlink(missing_ok=True)


def _noted() -> dict[str, str]:
    try:
        found = json.loads(_file().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return {k: v for k, v in found.items() if isinstance(v, str)} if isinstance(found, dict) else {}


def _told(*names: str) -> bool:
    return any(os.environ.get(name) or os.environ.get(f"{name}_FILE") for name in names)


def site_url(given: str | None = None) -> str:
    """The platform's address for URLs a simulated panel makes."""
    if given:
        return given.rstrip("/")
    if not _told("SITE_URL", "PORT") and "site_url" in _noted():
        return _noted()["site_url"].rstrip("/")
    return str(settings.SITE_URL).rstrip("/")


def gateway_url(given: str | None = None) -> str:
    """The gateway a simulated device dials."""
    if given:
        return given
    if os.environ.get("GATEWAY_URL"):
        return os.environ["GATEWAY_URL"]
    if not _told("GATEWAY_PORT", "PORT") and "gateway_url" in _noted():
        return _noted()["gateway_url"]
    return f"ws://127.0.0.1:{settings.GATEWAY_PORT}"
