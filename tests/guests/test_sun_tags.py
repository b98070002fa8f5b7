"""NTAG 424 DNA panels (R27): Secure Unique NFC checked against the published
examples of NXP's AN12196, and taps that verify presence once, in time, and
only at a property's shared entries."""

from __future__ import annotations

from typing import Any

import pytest
import time_machine
from django.db import connection
from guest_helpers import GuestWorld, open_policy

from doorkeep.core.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from doorkeep.events.models import Event, EventKind
from doorkeep.guests import presence, sun, tags
from doorkeep.guests import services as guests
from doorkeep.guests.models import Panel, Presence

ZERO_KEY = bytes(16)


# --- AN12196's examples ---------------------------------------------------------------


def test_the_application_notes_sun_message_decrypts_and_its_mac_verifies() -> None:
    # AN12196, SUN with encrypted PICCData, both keys all zeros:
    # https://ntag.nxp.com/424?e=EF963FF7828658A599F3041510671E88&c=94EED9EE65337086
    data = sun.read_tap(ZERO_KEY, ZERO_KEY, "EF963FF7828658A599F3041510671E88", "94EED9EE65337086")
    assert data.uid == bytes.fromhex("04DE5F1EACC040")
    assert data.counter == 61


def test_the_application_notes_sdmmac_follows_from_the_session_key_of_sv2() -> None:
    # AN12196, plain mirroring: UID 041E3C8A2D6B80, SDMReadCtr 000006, SDMMAC 4B00064004B0B3D3.
    mac = sun.sdmmac(ZERO_KEY, bytes.fromhex("041E3C8A2D6B80"), 6)
    assert mac.hex().upper() == "4B00064004B0B3D3"


def test_picc_data_decrypts_with_a_key_that_is_not_the_factory_key() -> None:
    key = bytes.fromhex("42AFF114F2CB3B6141BE6DC95DFC5416")
    data = sun.decrypt_picc_data(key, bytes.fromhex("8ACADDEF0A9B62CDAE39A16B83FC14DE"))
    assert (data.uid.hex(), data.counter) == ("041d3c8a2d6b80", 291)


def test_a_wrong_mac_or_key_or_malformed_data_is_refused() -> None:
    picc = "EF963FF7828658A599F3041510671E88"
    with pytest.raises(sun.InvalidTap):
        sun.read_tap(ZERO_KEY, ZERO_KEY, picc, "94EED9EE65337087")
    with pytest.raises(sun.InvalidTap):
        sun.read_tap(bytes(15) + b"\x01", ZERO_KEY, picc, "94EED9EE65337086")
    with pytest.raises(sun.InvalidTap):
        sun.read_tap(ZERO_KEY, bytes(15) + b"\x01", picc, "94EED9EE65337086")
    for bad_picc, bad_mac in [("XYZ", "94EED9EE65337086"), (picc[:30], "94EED9EE65337086")]:
        with pytest.raises(sun.InvalidTap):
            sun.read_tap(ZERO_KEY, ZERO_KEY, bad_picc, bad_mac)


def test_a_simulated_tap_reads_back() -> None:
    meta, file = bytes.fromhex(sun.new_key()), bytes.fromhex(sun.new_key())
    picc, mac = sun.make_tap(meta, file, bytes.fromhex("04A1B2C3D4E5F6"), 4242)
    assert sun.read_tap(meta, file, picc, mac) == sun.TapData(bytes.fromhex("04A1B2C3D4E5F6"), 4242)


# --- taps at a panel -------------------------------------------------------------------

UID = bytes.fromhex("04A1B2C3D4E5F6")


class Tag:
    """A programmed NTAG 424 DNA tag: each ``tap`` makes the next URL."""

    def __init__(self, keys: tags.TagKeys, uid: bytes = UID, counter: int = 0) -> None:
        self.meta = bytes.fromhex(keys.sdm_meta_read_key)
        self.file = bytes.fromhex(keys.sdm_file_read_key)
        self.uid, self.counter = uid, counter

    def tap(self) -> tuple[str, str]:
        self.counter += 1
        return sun.make_tap(self.meta, self.file, self.uid, self.counter)


def tag_panel(gw: GuestWorld, entry_id: int | None = None) -> tuple[Panel, Tag]:
    panel, keys = tags.add_tag_panel(gw.w.alice, entry_id or gw.w.entry.pk, "Lobby tag")
    return panel, Tag(keys)


def accepted(gw: GuestWorld, **kwargs: Any) -> None:
    guests.accept(gw.gina, gw.invite(**kwargs).pk)


def test_a_tap_verifies_presence_and_is_logged(gw: GuestWorld) -> None:
    open_policy(gw.w, require_presence=True)
    accepted(gw)
    panel, tag = tag_panel(gw)
    token = tags.accept_tap(panel.pk, *tag.tap())
    assert tags.tapped_entry(token) == gw.w.entry
    assert tags.verify_tap(gw.gina, token) == gw.w.entry
    assert Presence.objects.filter(guest=gw.gina, property=gw.w.prop).exists()
    event = Event.objects.get(kind=EventKind.PRESENCE_VERIFIED)
    assert event.data == {
        "entry_id": gw.w.entry.pk,
        "panel_id": panel.pk,
        "tag": "ntag424",
        "unopened_taps_before": 0,  # the first tap the platform saw
    }
    assert presence.standing(gw.gina, gw.w.prop.pk).verified


def test_taps_read_and_never_opened_are_counted_in_the_presence_they_precede(
    gw: GuestWorld,
) -> None:
    """A tap read by an NFC app and not opened could be sent to someone
    elsewhere: the owner sees how many came between two opened taps."""
    accepted(gw)
    panel, tag = tag_panel(gw)
    tags.verify_tap(gw.gina, tags.accept_tap(panel.pk, *tag.tap()))
    tag.tap(), tag.tap()  # read, never opened
    tags.verify_tap(gw.gina, tags.accept_tap(panel.pk, *tag.tap()))
    verified = Event.objects.filter(kind=EventKind.PRESENCE_VERIFIED).order_by("id")
    assert [e.data["unopened_taps_before"] for e in verified] == [0, 2]


def test_the_same_url_opens_once_and_an_older_url_is_dead_after_a_newer_tap(
    gw: GuestWorld,
) -> None:
    accepted(gw)
    panel, tag = tag_panel(gw)
    first = tag.tap()
    tags.accept_tap(panel.pk, *first)
    with pytest.raises(Conflict) as again:
        tags.accept_tap(panel.pk, *first)
    assert again.value.code == "tap_used"
    harvested = tag.tap()  # read from the tag, not opened: sent to someone elsewhere
    tags.accept_tap(panel.pk, *tag.tap())  # someone taps the panel after
    with pytest.raises(Conflict) as dead:
        tags.accept_tap(panel.pk, *harvested)
    assert dead.value.code == "tap_used"


def test_a_token_verifies_once(gw: GuestWorld) -> None:
    accepted(gw)
    panel, tag = tag_panel(gw)
    token = tags.accept_tap(panel.pk, *tag.tap())
    tags.verify_tap(gw.gina, token)
    with pytest.raises(Conflict) as again:
        tags.verify_tap(gw.gina, token)
    assert again.value.code == "tap_used"
    assert Event.objects.get(kind=EventKind.PRESENCE_REFUSED).reason == "tap_used"
    assert Event.objects.filter(kind=EventKind.PRESENCE_VERIFIED).count() == 1


def test_taps_in_a_row_each_verify_in_whatever_order_they_are_confirmed(
    gw: GuestWorld,
) -> None:
    """Two guests tap one after the other; the second confirms first. Both
    verify (each tap once), and neither token verifies twice."""
    accepted(gw)
    panel, tag = tag_panel(gw)
    first = tags.accept_tap(panel.pk, *tag.tap())
    second = tags.accept_tap(panel.pk, *tag.tap())
    tags.verify_tap(gw.gina, second)
    tags.verify_tap(gw.gina, first)
    assert Event.objects.filter(kind=EventKind.PRESENCE_VERIFIED).count() == 2
    for token in (first, second):
        with pytest.raises(Conflict) as again:
            tags.verify_tap(gw.gina, token)
        assert again.value.code == "tap_used"


def test_a_tap_older_than_the_window_verifies_nothing(gw: GuestWorld, settings: Any) -> None:
    settings.DOORKEEP = {**settings.DOORKEEP, "PANEL_TAP_SECONDS": 60}
    accepted(gw)
    panel, tag = tag_panel(gw)
    with time_machine.travel(0, tick=False) as clock:
        token = tags.accept_tap(panel.pk, *tag.tap())
        clock.shift(61)
        with pytest.raises(Conflict) as late:
            tags.verify_tap(gw.gina, token)
    assert late.value.code == "tap_expired" and "60 seconds" in late.value.message
    assert not Presence.objects.filter(guest=gw.gina).exists()
    refusal = Event.objects.get(kind=EventKind.PRESENCE_REFUSED)
    assert (refusal.actor, refusal.reason) == (gw.gina, "tap_expired")


def test_a_forged_tap_another_tag_or_a_code_panel_is_refused(gw: GuestWorld) -> None:
    accepted(gw)
    panel, tag = tag_panel(gw)
    picc, mac = tag.tap()
    with pytest.raises(InvalidInput) as forged:
        tags.accept_tap(panel.pk, picc, "00" * 8)
    assert forged.value.code == "invalid_tap"
    tags.accept_tap(panel.pk, picc, mac)  # the tag's UID is now known
    keys = tags.TagKeys(panel.sdm_meta_read_key, panel.sdm_file_read_key, "")
    clone = Tag(keys, uid=bytes.fromhex("04000000000001"), counter=tag.counter)
    with pytest.raises(InvalidInput):
        tags.accept_tap(panel.pk, *clone.tap())
    code_panel, _secret = presence.add_panel(gw.w.alice, gw.w.entry.pk, "Code panel")
    with pytest.raises(NotFound):
        tags.accept_tap(code_panel.pk, *tag.tap())


def test_a_tap_at_an_entry_not_shared_or_by_a_stranger_verifies_nothing(gw: GuestWorld) -> None:
    accepted(gw, entry_ids=[gw.w.entry.pk])
    garage, garage_tag = tag_panel(gw, gw.w.entry2.pk)
    token = tags.accept_tap(garage.pk, *garage_tag.tap())
    with pytest.raises(PermissionDenied) as not_shared:
        tags.verify_tap(gw.gina, token)
    assert not_shared.value.code == "entry_not_shared"
    with pytest.raises(NotFound):
        tags.verify_tap(gw.w.charlie, tags.accept_tap(garage.pk, *garage_tag.tap()))
    assert not Presence.objects.exists()


def test_a_property_that_requires_the_tag_refuses_typed_codes(gw: GuestWorld) -> None:
    open_policy(gw.w, require_presence=True, require_tag=True)
    accepted(gw)
    code_panel, _secret = presence.add_panel(gw.w.alice, gw.w.entry.pk, "Code panel")
    code, _step = presence.code_at(code_panel.secret)
    with pytest.raises(PermissionDenied) as refused:
        presence.verify(gw.gina, gw.w.entry.pk, code)
    assert refused.value.code == "tag_required"
    assert not Presence.objects.exists()
    panel, tag = tag_panel(gw)
    tags.verify_tap(gw.gina, tags.accept_tap(panel.pk, *tag.tap()))
    assert Presence.objects.filter(guest=gw.gina).exists()


def test_without_the_requirement_code_panels_keep_working_beside_tag_panels(
    gw: GuestWorld,
) -> None:
    accepted(gw)
    tag_panel(gw)
    code_panel, _secret = presence.add_panel(gw.w.alice, gw.w.entry.pk, "Code panel")
    code, _step = presence.code_at(code_panel.secret)
    presence.verify(gw.gina, gw.w.entry.pk, code)
    assert Presence.objects.filter(guest=gw.gina).exists()


def test_the_tag_keys_are_stored_encrypted(gw: GuestWorld) -> None:
    panel, keys = tags.add_tag_panel(gw.w.alice, gw.w.entry.pk, "Lobby tag")
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT sdm_meta_read_key, sdm_file_read_key FROM guests_panel WHERE id = %s",
            [panel.pk],
        )
        stored = cursor.fetchone()
    assert keys.sdm_meta_read_key not in stored[0] and stored[0].startswith("enc1:")
    assert keys.sdm_file_read_key not in stored[1] and stored[1].startswith("enc1:")
    fresh = Panel.objects.get(pk=panel.pk)
    assert fresh.sdm_meta_read_key == keys.sdm_meta_read_key
    assert keys.url_template.endswith(
        f"/guest/tag/{panel.pk}/?picc_data={'0' * 32}&cmac={'0' * 16}"
    )
