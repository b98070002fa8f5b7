"""A simulated entry panel (`doorkeep simulate panel`): a code panel shows its
time-based code and the URL in its NFC tag; an NTAG 424 DNA panel makes, at
each tap, the URL its tag would (guests/sun.py), with the next counter."""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings

from doorkeep.guests import presence, sun, tags


class PanelUnavailable(Exception):
    """The panel cannot be simulated; the message says why and what to do."""


HINT = (
    "Run it in the folder where `make run` (or `doorkeep serve`) runs, or with the platform's "
    "DOORKEEP_DATA_DIR or DATABASE_URL; or give the panel's secret (--secret with --entry and "
    "--panel) or its tag keys (--meta-key and --file-key with --panel)."
)


@dataclass
class SimulatedPanel:
    name: str
    entry_id: int
    panel_id: int
    secret: str = ""  # a code panel's base32 secret
    meta_key: bytes = b""  # an NTAG 424 DNA panel's keys
    file_key: bytes = b""
    uid: bytes = b""
    counter: int = 0  # the tag's last counter; a tap uses the next

    @property
    def is_tag(self) -> bool:
        return bool(self.meta_key)

    def show(self, base: str, now: float | None = None) -> tuple[str, float]:
        """A code panel's line now, and the seconds until its code changes."""
        moment = time.time() if now is None else now
        code, _step = presence.code_at(self.secret, moment)
        seconds = int(settings.DOORKEEP["PANEL_CODE_SECONDS"])
        left = seconds - int(moment % seconds)
        url = presence.tag_url(self.entry_id, self.panel_id, code, base=base)
        return f"{self.name}: code {code} (for {left} s more)  NFC tag: {url}", left

    def tap(self, base: str) -> str:
        """An NTAG 424 DNA panel's next tap, as a line with the URL."""
        self.counter += 1
        picc, mac = sun.make_tap(self.meta_key, self.file_key, self.uid, self.counter)
        url = tags.tap_url(self.panel_id, picc, mac, base=base)
        return f"{self.name}: tap {self.counter}  NFC tag: {url}"


def default_uid(panel_id: int) -> bytes:
    """A stable 7-byte UID (NXP's 04 first) for a simulated tag."""
    return b"\x04" + hashlib.sha256(f"doorkeep-panel-{panel_id}".encode()).digest()[:6]


def _database_problem() -> str | None:
    from django.db import DatabaseError, connection

    db = connection.settings_dict
    if db["ENGINE"] == "django.db.backends.sqlite3" and not Path(str(db["NAME"])).exists():
        return f"there is no Doorkeep database at {db['NAME']}"
    try:
        tables = connection.introspection.table_names()
    except DatabaseError as exc:
        return f"the database cannot be opened ({exc})"
    if "guests_panel" not in tables:
        return f"the database {db['NAME']} has no Doorkeep tables yet"
    return None


def from_database(panel_id: int) -> SimulatedPanel:
    """The panel ``panel_id`` as the platform knows it (its secrets decrypted)."""
    from doorkeep.core.crypto import SecretUnreadable
    from doorkeep.guests.models import Panel

    problem = _database_problem()
    if problem:
        raise PanelUnavailable(f"{problem}. {HINT}")
    try:
        found = Panel.objects.select_related("entry").filter(pk=panel_id).first()
    except SecretUnreadable:
        raise PanelUnavailable(
            "the panel's secrets cannot be decrypted with this DOORKEEP_ENCRYPTION_KEYS (or "
            f"the data directory's key). {HINT}"
        ) from None
    if found is None:
        raise PanelUnavailable(f"no panel {panel_id}; its id is on the property's Guests page")
    panel = SimulatedPanel(f"{found.name} at {found.entry.name}", found.entry_id, found.pk)
    if found.has_sun_tag:
        panel.meta_key = bytes.fromhex(found.sdm_meta_read_key)
        panel.file_key = bytes.fromhex(found.sdm_file_read_key)
        panel.uid = bytes.fromhex(found.tag_uid) if found.tag_uid else default_uid(found.pk)
        panel.counter = max(found.tag_counter, 0)
    else:
        panel.secret = found.secret
    return panel


def by_hand(
    *,
    panel_id: int | None,
    entry_id: int | None,
    secret: str | None,
    meta_key: str | None,
    file_key: str | None,
    uid: str | None,
) -> SimulatedPanel:
    """A panel configured by hand: a code panel's secret, or a tag's keys."""
    if panel_id is None:
        raise PanelUnavailable("give --panel too (the panel's id)")
    if meta_key or file_key:
        try:
            keys = bytes.fromhex(meta_key or ""), bytes.fromhex(file_key or "")
            chosen = bytes.fromhex(uid) if uid else default_uid(panel_id)
        except ValueError:
            raise PanelUnavailable("the keys and the UID are hexadecimal") from None
        if len(keys[0]) != sun.KEY_BYTES or len(keys[1]) != sun.KEY_BYTES:
            raise PanelUnavailable("--meta-key and --file-key are 16 bytes each (32 hex digits)")
        if len(chosen) != sun.UID_BYTES:
            raise PanelUnavailable("--uid is 7 bytes (14 hex digits)")
        return SimulatedPanel("panel", 0, panel_id, meta_key=keys[0], file_key=keys[1], uid=chosen)
    if entry_id is None or not secret:
        raise PanelUnavailable("with --secret, give --entry and --panel too")
    try:
        presence.code_at(secret)
    except (ValueError, TypeError):  # binascii.Error is a ValueError
        raise PanelUnavailable("the secret is not base32") from None
    return SimulatedPanel("panel", entry_id, panel_id, secret=secret)
