"""Parsing and normalising the credentials a person can present.

- PIN code: 4 to 8 digits. Only a keyed HMAC-SHA256 digest is kept; the key
  is DOORKEEP_PIN_SECRET (by default derived from SECRET_KEY), so a stolen
  database alone does not let anyone try the 10^8 possible codes.
- RFID tag: a UID of 4, 7 or 10 bytes written in hex, with or without
  separators; kept as upper-case hex without separators.
- Remote: the fob's serial number, upper-case, letters, digits and dashes.
- Phone: the person's account; the lookup is the person's id.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass

from django.conf import settings
from django.utils.translation import gettext as _

from doorkeep.core.errors import InvalidInput
from doorkeep.keys.models import CredentialKind

_PIN = re.compile(r"[0-9]{4,8}")  # ASCII digits only: \d also matches "١٢٣٤"
_HEX = re.compile(r"^[0-9A-F]+$")
_REMOTE = re.compile(r"^[A-Z0-9][A-Z0-9\-]{2,31}$")


@dataclass(frozen=True)
class Presented:
    """A credential as given by a person or a device, normalised."""

    kind: CredentialKind
    lookup: str
    display: str


def pin_digest(pin: str) -> str:
    secret = getattr(settings, "DOORKEEP_PIN_SECRET", "") or settings.SECRET_KEY
    key = hashlib.sha256(b"doorkeep.pin:" + secret.encode()).digest()
    return hmac.new(key, pin.encode(), hashlib.sha256).hexdigest()


def lock_pin_key(serial: str) -> bytes:
    """The key a lock uses to check PIN codes offline: derived from the platform's
    PIN secret and the lock's serial, so a lock learns only its own key, never
    the platform's, and a stolen lock says nothing about other locks' PINs."""
    secret = getattr(settings, "DOORKEEP_PIN_SECRET", "") or settings.SECRET_KEY
    return hmac.new(
        secret.encode(), b"doorkeep.lock-pin:" + serial.encode(), hashlib.sha256
    ).digest()


def device_lookup(kind: str, value: str, serial: str) -> str:
    """What the lock's own list holds for a credential: for a PIN, the
    HMAC-SHA256 of the PIN under the lock's key; otherwise the normal lookup."""
    if kind == CredentialKind.PIN:
        pin = normalize_pin(value)
        return hmac.new(lock_pin_key(serial), pin.encode(), hashlib.sha256).hexdigest()
    return presented(kind, value).lookup


def normalize_pin(value: str) -> str:
    pin = value.strip()
    if not _PIN.fullmatch(pin):
        raise InvalidInput(_("A PIN code is 4 to 8 digits."), code="invalid_pin")
    return pin


def normalize_tag(value: str) -> str:
    uid = re.sub(r"[\s:\-.]", "", value.strip()).upper()
    if uid.startswith("0X"):
        uid = uid[2:]
    if not uid or not _HEX.match(uid):
        raise InvalidInput(
            _("A tag UID is written in hexadecimal digits (0-9, A-F)."), code="invalid_tag"
        )
    if len(uid) not in (8, 14, 20):
        raise InvalidInput(
            _("A tag UID is 4, 7 or 10 bytes (8, 14 or 20 hex digits); this one has %(n)d digits.")
            % {"n": len(uid)},
            code="invalid_tag",
        )
    return uid


def normalize_remote(value: str) -> str:
    serial = re.sub(r"\s", "", value.strip()).upper()
    if not _REMOTE.match(serial):
        raise InvalidInput(
            _("A remote's serial number is 3 to 32 letters, digits or dashes."),
            code="invalid_remote",
        )
    return serial


def presented(kind: str, value: str) -> Presented:
    """Normalise a credential of ``kind``; raise InvalidInput with a clear message."""
    if kind == CredentialKind.PIN:
        pin = normalize_pin(value)
        return Presented(CredentialKind.PIN, pin_digest(pin), "••••")  # length not revealed
    if kind == CredentialKind.TAG:
        uid = normalize_tag(value)
        return Presented(CredentialKind.TAG, uid, uid)
    if kind == CredentialKind.REMOTE:
        serial = normalize_remote(value)
        return Presented(CredentialKind.REMOTE, serial, serial)
    if kind == CredentialKind.PHONE:
        return Presented(CredentialKind.PHONE, str(value), _("Phone"))
    raise InvalidInput(
        _("Unknown credential kind %(kind)s; use phone, pin, remote or tag.") % {"kind": kind},
        code="invalid_credential_kind",
    )
