"""NTAG 424 DNA panels (R27): presence that a read-out code cannot relay.

The panel's tag makes a new URL at every tap (Secure Unique NFC, guests/
sun.py), which any phone opens in its browser with its own NFC reader. A tap
is taken in two steps (docs/decisions/0019-sun-tag-panels.md):

1. ``accept_tap``, when the phone opens the URL (signed in or not): the MAC
   must be genuine for the panel's keys and the counter newer than every
   counter seen before; the counter is then used up (the URL opens once, and
   an earlier URL nobody opened is dead once a later tap was seen). It gives
   a signed token with the moment of the tap, which the web UI keeps in the
   phone's session only.
2. ``verify_tap``, the guest's confirmation (after signing in if needed):
   within DOORKEEP_PANEL_TAP_SECONDS of the tap, once, then presence is
   verified exactly as with a code (presence.record_presence)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core import signing
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _

from doorkeep.accounts.models import User
from doorkeep.core.errors import Conflict, InvalidInput, NotFound
from doorkeep.guests import presence, sun
from doorkeep.guests.models import Panel, PanelTag, TapRedeemed
from doorkeep.properties.models import Entry

TOKEN_SALT = "doorkeep.guests.tags.tap"  # noqa: S105 - a namespace, not a secret
PICC_PLACEHOLDER = "0" * 32
MAC_PLACEHOLDER = "0" * 16


@dataclass(frozen=True)
class TagKeys:
    """What the installer programs into the tag, shown once."""

    sdm_meta_read_key: str  # hex: decrypts PICCData (the UID and counter)
    sdm_file_read_key: str  # hex: the SDMMAC's session keys
    url_template: str  # the NDEF URL, its mirrored parts as zeros


def window_seconds() -> int:
    return int(settings.DOORKEEP["PANEL_TAP_SECONDS"])


def tap_url(panel_id: int, picc_data: str, mac: str, *, base: str | None = None) -> str:
    """The URL the tag holds after a tap."""
    root = (base or settings.SITE_URL).rstrip("/")
    return f"{root}/guest/tag/{panel_id}/?picc_data={picc_data}&cmac={mac}"


def url_template(panel_id: int, *, base: str | None = None) -> str:
    return tap_url(panel_id, PICC_PLACEHOLDER, MAC_PLACEHOLDER, base=base)


def add_tag_panel(actor: User, entry_id: int, name: str) -> tuple[Panel, TagKeys]:
    """Install an NTAG 424 DNA panel at an entry: two new AES keys, returned
    once (stored encrypted) with the URL to program into the tag."""
    meta_key, file_key = sun.new_key(), sun.new_key()
    panel = presence.install_panel(
        actor,
        entry_id,
        name,
        tag=PanelTag.NTAG424,
        sdm_meta_read_key=meta_key,
        sdm_file_read_key=file_key,
    )
    return panel, TagKeys(meta_key, file_key, url_template(panel.pk))


def _tag_panel(panel_id: int) -> Panel:
    panel = Panel.objects.filter(pk=panel_id, tag=PanelTag.NTAG424).first()
    if panel is None:
        raise NotFound(_("This panel is not known here. Ask your host where the panel is."))
    return panel


def read(panel: Panel, picc_data: str, mac: str) -> sun.TapData:
    """The tap's UID and counter if it is genuine for the panel's keys."""
    try:
        return sun.read_tap(
            bytes.fromhex(panel.sdm_meta_read_key),
            bytes.fromhex(panel.sdm_file_read_key),
            picc_data.strip(),
            mac.strip(),
        )
    except sun.InvalidTap:
        raise InvalidInput(
            _("This tap could not be read as the panel's. Hold your phone to the panel again."),
            code="invalid_tap",
        ) from None


def accept_tap(panel_id: int, picc_data: str, mac: str) -> str:
    """Step 1: a phone opened the URL of a tap. Returns the tap's token."""
    panel = _tag_panel(panel_id)
    data = read(panel, picc_data, mac)
    uid = data.uid.hex().upper()
    fresh = Panel.objects.filter(pk=panel.pk, tag_counter__lt=data.counter).filter(
        Q(tag_uid="") | Q(tag_uid=uid)
    )
    if not fresh.update(tag_counter=data.counter, tag_uid=uid):
        if panel.tag_uid and panel.tag_uid != uid:
            raise InvalidInput(
                _("This tag is not the one installed in the panel. Ask your host."),
                code="invalid_tap",
            )
        raise Conflict(
            _(
                "This tap was already used, or the panel was tapped again since. Hold your "
                "phone to the panel again."
            ),
            code="tap_used",
        )
    # Taps of the panel that never reached the platform since the last one
    # that did: read by a phone and not opened, or by an NFC app. Recorded
    # with the presence this tap verifies (an unopened tap can be sent to
    # someone elsewhere: decision 0019).
    unopened = data.counter - panel.tag_counter - 1 if panel.tag_counter >= 0 else 0
    return signing.dumps(
        {"panel": panel.pk, "counter": data.counter, "unopened": max(unopened, 0)},
        salt=TOKEN_SALT,
    )


def _payload(token: str) -> dict[str, Any]:
    """The tap a token stands for, whatever its age."""
    try:
        payload: dict[str, Any] = signing.loads(token, salt=TOKEN_SALT)
    except signing.BadSignature:
        raise InvalidInput(
            _("This tap could not be read. Hold your phone to the panel again."),
            code="invalid_tap",
        ) from None
    return payload


def _in_time(token: str) -> bool:
    try:
        signing.loads(token, salt=TOKEN_SALT, max_age=window_seconds())
    except signing.SignatureExpired:
        return False
    return True


def _too_old() -> Conflict:
    return Conflict(
        _("Your tap is more than %(s)d seconds old. Hold your phone to the panel again.")
        % {"s": window_seconds()},
        code="tap_expired",
    )


def tapped_entry(token: str) -> Entry:
    """The entry of the panel a (fresh) tap was at, to ask the guest to confirm."""
    panel = _tag_panel(int(_payload(token)["panel"]))
    if not _in_time(token):
        raise _too_old()
    return Entry.objects.select_related("property").get(pk=panel.entry_id)


def verify_tap(user: User, token: str) -> Entry:
    """Step 2: the guest confirms the tap: presence is verified at its entry."""
    payload = _payload(token)
    panel = _tag_panel(int(payload["panel"]))
    counter = int(payload["counter"])
    entry = presence.shared_entry_for(user, panel.entry_id)
    if not _in_time(token):
        presence.record_refusal(user, entry, "tap_expired")
        raise _too_old()
    # Each tap verifies once; taps of several guests in a row each verify, in
    # whatever order they are confirmed. A tap older than the window cannot
    # be confirmed any more, so neither can its record be needed.
    TapRedeemed.objects.filter(
        panel=panel, at__lt=timezone.now() - timedelta(seconds=2 * window_seconds())
    ).delete()
    try:
        with transaction.atomic():
            TapRedeemed.objects.create(panel=panel, counter=counter)
            presence.record_presence(
                user, entry, panel, {"unopened_taps_before": int(payload.get("unopened", 0))}
            )
        redeemed = True
    except IntegrityError:
        redeemed = False
    if not redeemed:
        presence.record_refusal(user, entry, "tap_used")
        raise Conflict(
            _("This tap was already used. Hold your phone to the panel again."),
            code="tap_used",
        )
    return entry
