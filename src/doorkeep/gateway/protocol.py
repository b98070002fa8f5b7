"""The lock protocol, version 1: JSON text messages over a WebSocket.

Parsing and validation only; no database, no I/O. docs/protocol/lock-v1.md
describes every message with an example. A message the gateway cannot accept
raises ProtocolError, which the gateway answers with an ``error`` frame."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any, TypeGuard

from doorkeep.core.text import storable

VERSION = 1
MAX_MESSAGE_BYTES = 64 * 1024  # larger messages get an error frame ("too_large")
MAX_FRAME_BYTES = 1024 * 1024  # larger frames close the connection (1009)
MAX_EVENTS_PER_BATCH = 500
MAX_ID = 2**63 - 1  # sequence numbers and list entry ids are 64-bit
# A clock offset within JSON's safe whole numbers (the whole range of times
# is about 2**48 ms either way, so in practice it is never clamped).
MAX_OFFSET_MS = 2**53 - 1

# The UID a lock read from a tag that matched no entry (an event's "tag"):
# upper-case hex, 4, 7 or 10 bytes. A tag's UID is not a secret; a PIN never
# travels back.
_TAG_UID = re.compile(r"[0-9A-F]{8}(?:[0-9A-F]{6}(?:[0-9A-F]{6})?)?")

DEVICE_TYPES = frozenset({"hello", "list.ack", "events", "status", "unlock.result", "time.request"})


class ProtocolError(Exception):
    """A message the gateway refuses; ``code`` goes into the error frame."""

    def __init__(self, code: str, message: str, ref: Any = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.ref = ref

    def frame(self) -> dict[str, Any]:
        frame: dict[str, Any] = {"type": "error", "code": self.code, "message": self.message}
        if self.ref is not None:
            frame["ref"] = self.ref
        return frame


def is_int(value: Any) -> TypeGuard[int]:
    """A JSON whole number (``true`` is not 1, ``1.0`` is not 1)."""
    return type(value) is int


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_time(value: Any, field: str, ref: Any = None) -> datetime:
    if not isinstance(value, str) or len(value) > 40:
        raise ProtocolError("bad_message", f"{field} must be an ISO 8601 time with a zone", ref)
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ProtocolError("bad_message", f"{field} is not an ISO 8601 time", ref) from None
    if moment.tzinfo is None:
        raise ProtocolError("bad_message", f"{field} needs a time zone (Z or +01:00)", ref)
    try:
        moment.astimezone(UTC)
    except OverflowError:
        raise ProtocolError("bad_message", f"{field} is out of range", ref) from None
    return moment


def decode(
    raw: str | bytes, *, first: bool = False, types: frozenset[str] = DEVICE_TYPES
) -> dict[str, Any]:
    """One message from a device: a JSON object with a ``type`` among
    ``types`` (a lock's by default; with ``first``, the connection's first
    message, which must be a hello)."""
    if isinstance(raw, bytes):
        raise ProtocolError("bad_message", "messages are JSON text frames, not binary")
    # len() counts characters; a character is at most 4 bytes in UTF-8.
    if len(raw) > MAX_MESSAGE_BYTES or (
        len(raw) * 4 > MAX_MESSAGE_BYTES
        and len(raw.encode("utf-8", "surrogatepass")) > MAX_MESSAGE_BYTES
    ):
        raise ProtocolError("too_large", f"a message is at most {MAX_MESSAGE_BYTES} bytes")
    try:
        message = json.loads(raw)
    except (ValueError, RecursionError):  # RecursionError: absurdly deep nesting
        raise ProtocolError("bad_json", "the message is not valid JSON") from None
    if not isinstance(message, dict):
        raise ProtocolError("bad_message", "a message is a JSON object")
    # Only a \u escape makes one (a raw NUL is not valid JSON; the frame's
    # text is valid UTF-8), so most messages skip the walk.
    if "\\u" in raw and not storable(message):
        raise ProtocolError(
            "bad_message", "text in a message may not contain NUL or unpaired surrogates"
        )
    kind = message.get("type")
    if first and kind != "hello":
        raise ProtocolError("hello_first", "the first message must be hello")
    if not isinstance(kind, str) or kind not in types:
        raise ProtocolError("unknown_type", f"unknown message type {str(kind)[:40]!r}")
    return message


def encode(message: dict[str, Any]) -> str:
    return json.dumps(message, separators=(",", ":"))


def hello(message: dict[str, Any]) -> tuple[str, str, int]:
    """Serial, secret and the list version the device holds."""
    if message.get("type") != "hello":
        raise ProtocolError("hello_first", "the first message must be hello")
    if not is_int(message.get("protocol")) or message["protocol"] != VERSION:
        raise ProtocolError(
            "unsupported_protocol",
            # As JSON: the string "1" reads "1", not 1.
            f"this gateway speaks protocol {VERSION} (a number), "
            f"not {json.dumps(message.get('protocol'))[:20]}",
        )
    serial, secret = message.get("serial"), message.get("secret")
    if not isinstance(serial, str) or not isinstance(secret, str) or not serial or not secret:
        raise ProtocolError("bad_message", "hello needs serial and secret (strings)")
    version = message.get("list_version", 0)
    if not is_int(version) or not 0 <= version <= MAX_ID:
        raise ProtocolError("bad_message", "list_version is a whole number, 0 or more")
    return serial[:32], secret[:200], version


def ack(message: dict[str, Any]) -> int:
    version = message.get("version")
    if not is_int(version) or not 0 <= version <= MAX_ID:
        raise ProtocolError("bad_message", "list.ack needs the version (a whole number)")
    return int(version)


def events(message: dict[str, Any]) -> list[dict[str, Any]]:
    """A batch of access events a lock decided by itself."""
    batch = message.get("events")
    if not isinstance(batch, list) or not batch:
        raise ProtocolError("bad_message", "events is a non-empty list")
    if len(batch) > MAX_EVENTS_PER_BATCH:
        raise ProtocolError("too_large", f"at most {MAX_EVENTS_PER_BATCH} events a batch")
    clean = []
    for item in batch:
        if not isinstance(item, dict):
            raise ProtocolError("bad_message", "each event is an object")
        seq = item.get("seq")
        if not is_int(seq) or not 0 < seq <= MAX_ID:
            raise ProtocolError("bad_message", "each event needs a positive whole seq")
        if item.get("outcome") not in ("granted", "denied"):
            raise ProtocolError("bad_message", "outcome is granted or denied", ref=seq)
        entry = item.get("entry")
        if entry is not None and (not is_int(entry) or not 0 < entry <= MAX_ID):
            raise ProtocolError("bad_message", "entry is the id of a list entry", ref=seq)
        event = {
            "seq": seq,
            "at": parse_time(item.get("at"), "at", ref=seq),
            "device_clock": item["at"],
            "outcome": item["outcome"],
            "reason": str(item.get("reason") or "")[:40],
            "kind": str(item.get("kind") or "")[:10],
            "entry": entry,
        }
        tag = unknown_tag(event, item.get("tag"))
        if tag is not None:
            event["tag"] = tag
        clean.append(event)
    return clean


def unknown_tag(event: dict[str, Any], value: Any) -> str | None:
    """The optional ``tag`` of a denied tag event that matched no entry: the
    UID the lock read, upper-case hex of 8, 14 or 20 digits (lower case is
    taken too). Anything else is dropped, not refused: the event itself is
    good and must be stored, and a lock whose reader garbles a UID would
    otherwise never get its batch through. On any other event (granted, a
    PIN, an entry that matched) the field is ignored."""
    if (
        value is None
        or event["outcome"] != "denied"
        or event["kind"] != "tag"
        or event["entry"] is not None
        or not isinstance(value, str)
        or len(value) > 20
    ):
        return None
    uid = value.upper()
    return uid if _TAG_UID.fullmatch(uid) else None


def clock_offset_ms(device_clock: Any, received: datetime) -> int | None:
    """How far the device's clock is ahead of ours (negative: behind), in
    milliseconds, exactly: a lock converts the gateway's times (an unlock's
    expiry) with it, so a clamped offset would make it misjudge them. None if
    the device did not say or said something that is not a time."""
    if device_clock is None:
        return None
    try:
        moment = parse_time(device_clock, "clock")
    except ProtocolError:
        return None
    offset = round((moment - received).total_seconds() * 1000)
    return max(-MAX_OFFSET_MS, min(MAX_OFFSET_MS, offset))
