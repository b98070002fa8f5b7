"""Can this RFID card be a badge on the laundry machines and EV chargers? (R46)

The stations read MIFARE Classic cards only (ISO/IEC 14443 A, Crypto1 sectors).
A reader reports three values when a card is presented: the UID (4, 7 or 10
bytes), the ATQA (2 bytes, written most significant byte first, as NXP TagInfo
shows it: 0x0004) and the SAK (1 byte). ``CARD_TABLE`` maps SAK and ATQA to a
kind of card, after NXP AN10833 "MIFARE type identification procedure" (the SAK
and ATQA coding of NXP cards) and, for the non-NXP values, the proxmark3 and
libfreefare identification tables; docs/badge-compatibility.md lists the rows.

Decisions:
- MIFARE Plus in security level 1 answers exactly as a MIFARE Classic of its
  size does and is accepted under the Classic rows; in level 2 (SAK 10/11) it
  needs AES authentication and is refused; in level 3 it is an ISO 14443-4 card.
- SAK 28 / 38 (MIFARE Classic 1K / 4K emulation next to ISO 14443-4, on SmartMX,
  JCOP or a MIFARE Plus in SL1) speak MIFARE Classic and are accepted; any other
  SAK with bit 0x20 (ISO 14443-4, T=CL) is refused.
- SAK 88 is Infineon's MIFARE Classic 1K (SLE66R35): accepted.
- A Classic SAK with an ATQA no Classic card gives is refused as unknown.
- A reading whose UID length contradicts the ATQA's UID size bits, or whose
  ATQA is not an ISO 14443-3 ATQA, is a bad read: refused, "inconsistent_reading".
- A 4-byte UID starting with 08 is a random ID (ISO/IEC 14443-3): it changes at
  every presentation, so a card that gives one cannot be recognised: refused.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from django.utils.functional import Promise
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from doorkeep.core.errors import InvalidInput, Unprocessable
from doorkeep.keys.credentials import normalize_tag

_SEPARATORS = re.compile(r"[\s:\-.,]+")
_HEX = re.compile(r"[0-9A-Fa-f]+")
_UID_BYTES = {0: 4, 1: 7, 2: 10}  # ATQA bits 8-7 (0x00C0): single, double, triple size


@dataclass(frozen=True)
class CardReading:
    uid: str  # upper-case hex, no separators: 8, 14 or 20 digits
    atqa: str  # 4 upper-case hex digits, most significant byte first
    sak: str  # 2 upper-case hex digits


@dataclass(frozen=True)
class CardVerdict:
    compatible: bool
    card_type: str
    label: str
    reason: str  # empty when compatible


@dataclass(frozen=True)
class CardRow:
    """SAK matches when ``sak & sak_mask == sak_value``; ATQA when it is one of
    ``atqa`` after ``& atqa_mask`` (an empty ``atqa``: any). First match wins."""

    sak_value: int
    sak_mask: int
    atqa: tuple[int, ...]
    atqa_mask: int
    card_type: str
    label: Promise
    compatible: bool
    reason: Promise | str
    source: str


_NOT_CLASSIC = gettext_lazy(
    "The card answered SAK %(sak)s with ATQA %(atqa)s, which no MIFARE Classic card gives; "
    "the stations read only MIFARE Classic cards."
)
_T_CL = gettext_lazy(
    "This is an ISO 14443-4 (T=CL) smart card, such as a bank card, a phone, a MIFARE Plus "
    "in security level 3 or a JCOP card, without MIFARE Classic; the stations read only "
    "MIFARE Classic cards."
)
_AN = "NXP AN10833"
_ANY = 0xFF

CARD_TABLE: tuple[CardRow, ...] = (
    CardRow(0x08, _ANY, (0x0004, 0x0044), 0xFFFF, "mifare_classic_1k",
            gettext_lazy("MIFARE Classic 1K (or MIFARE Plus 2K in security level 1)"), True, "",
            f"{_AN}; NXP MF1S50yyX data sheet 9.4"),
    CardRow(0x18, _ANY, (0x0002, 0x0042), 0xFFFF, "mifare_classic_4k",
            gettext_lazy("MIFARE Classic 4K (or MIFARE Plus 4K in security level 1)"), True, "",
            f"{_AN}; NXP MF1S70yyX data sheet"),
    CardRow(0x09, _ANY, (0x0004,), 0xFFFF, "mifare_classic_mini",
            gettext_lazy("MIFARE Classic Mini"), True, "", _AN),
    CardRow(0x88, _ANY, (0x0004,), 0xFFFF, "infineon_classic_1k",
            gettext_lazy("Infineon MIFARE Classic 1K"), True, "",
            "proxmark3 cmdhf14a.c; libfreefare"),
    CardRow(0x28, _ANY, (0x0004, 0x0044), 0xF0FF, "mifare_classic_1k_t_cl",
            gettext_lazy("MIFARE Classic 1K with ISO 14443-4 (SmartMX, JCOP or MIFARE Plus SL1)"),
            True, "", f"{_AN}; libnfc target-subr.c; proxmark3 cmdhf14a.c"),
    CardRow(0x38, _ANY, (0x0002, 0x0042), 0xF0FF, "mifare_classic_4k_t_cl",
            gettext_lazy("MIFARE Classic 4K with ISO 14443-4 (SmartMX, JCOP or MIFARE Plus SL1)"),
            True, "", f"{_AN}; libnfc target-subr.c; libfreefare"),
    CardRow(0x00, _ANY, (0x0044,), 0xFFFF, "mifare_ultralight_or_ntag",
            gettext_lazy("MIFARE Ultralight or NTAG"), False,
            gettext_lazy("This is a MIFARE Ultralight or NTAG tag (SAK 00), a memory tag without "
                         "MIFARE Classic sectors; the stations read only MIFARE Classic cards."),
            _AN),
    CardRow(0x10, _ANY, (0x0004, 0x0044), 0xFFFF, "mifare_plus_sl2_2k",
            gettext_lazy("MIFARE Plus 2K in security level 2"), False,
            gettext_lazy("This is a MIFARE Plus 2K card in security level 2, which opens its "
                         "sectors only with AES keys; the stations read only MIFARE Classic "
                         "cards."), _AN),
    CardRow(0x11, _ANY, (0x0002, 0x0042), 0xFFFF, "mifare_plus_sl2_4k",
            gettext_lazy("MIFARE Plus 4K in security level 2"), False,
            gettext_lazy("This is a MIFARE Plus 4K card in security level 2, which opens its "
                         "sectors only with AES keys; the stations read only MIFARE Classic "
                         "cards."), _AN),
    CardRow(0x20, _ANY, (0x0344,), 0xFFFF, "mifare_desfire",
            gettext_lazy("MIFARE DESFire"), False,
            gettext_lazy("This is a MIFARE DESFire card (ISO 14443-4, T=CL); the stations read "
                         "only MIFARE Classic cards."), _AN),
    CardRow(0x20, 0x20, (), 0, "iso14443_4",
            gettext_lazy("ISO 14443-4 (T=CL) smart card"), False, _T_CL,
            f"{_AN}; ISO/IEC 14443-3 SAK bit 6"),
    CardRow(0x00, 0x00, (), 0, "unknown",
            gettext_lazy("Unknown card"), False, _NOT_CLASSIC, _AN),
)  # fmt: skip


def _hex_digits(value: str) -> str:
    """The hex digits of ``value``: separators and each group's 0x prefix removed."""
    parts = [p[2:] if p[:2] in ("0x", "0X") else p for p in _SEPARATORS.split(value.strip())]
    digits = "".join(parts)
    return digits.upper() if _HEX.fullmatch(digits) else ""


def read_card(uid: str, atqa: str, sak: str) -> CardReading:
    """Normalise a reading; raise Unprocessable (an InvalidInput answered 422;
    code invalid_uid/_atqa/_sak, field)."""
    try:
        uid_hex = normalize_tag(uid)
    except InvalidInput as error:
        raise Unprocessable(error.message, code="invalid_uid", field="uid") from error
    atqa_hex = _hex_digits(atqa)
    if len(atqa_hex) != 4:
        raise Unprocessable(
            _(
                "The ATQA is 2 bytes, written as 4 hexadecimal digits such as 0004, 0x0044 "
                "or 00 44."
            ),
            code="invalid_atqa",
            field="atqa",
        )
    sak_hex = _hex_digits(sak)
    if len(sak_hex) not in (1, 2):
        raise Unprocessable(
            _("The SAK is 1 byte, written as 1 or 2 hexadecimal digits such as 08, 0x08 or 8."),
            code="invalid_sak",
            field="sak",
        )
    return CardReading(uid=uid_hex, atqa=atqa_hex, sak=sak_hex.zfill(2))


def _inconsistency(reading: CardReading) -> str:
    """Why the reading cannot be what a card answered; empty when it can."""
    atqa = int(reading.atqa, 16)
    if bin(atqa & 0x1F).count("1") != 1:  # ISO 14443-3: one bit-frame anticollision bit
        swapped = reading.atqa[2:] + reading.atqa[:2]
        return _(
            "The ATQA %(atqa)s is not one a card gives: exactly one of its bits 1 to 5 must be "
            "set. Check the reading; written in the other byte order it would be %(swapped)s."
        ) % {"atqa": reading.atqa, "swapped": swapped}
    expected = _UID_BYTES.get((atqa >> 6) & 0b11)
    if expected is None:
        return _("The ATQA %(atqa)s announces a reserved UID size; check the reading.") % {
            "atqa": reading.atqa
        }
    if len(reading.uid) != 2 * expected:
        return _(
            "The reading does not hold together: the ATQA %(atqa)s announces a %(expected)d-byte "
            "UID but the UID has %(got)d bytes. Present the card again or check the values."
        ) % {"atqa": reading.atqa, "expected": expected, "got": len(reading.uid) // 2}
    return ""


def _row(reading: CardReading) -> CardRow:
    sak, atqa = int(reading.sak, 16), int(reading.atqa, 16)
    for row in CARD_TABLE:
        if (sak & row.sak_mask) == row.sak_value and (
            not row.atqa or (atqa & row.atqa_mask) in row.atqa
        ):
            return row
    raise AssertionError("CARD_TABLE ends with a row that matches any reading")


def judge(reading: CardReading) -> CardVerdict:
    """Whether the card read can be a badge on the stations, and if not, why."""
    inconsistency = _inconsistency(reading)
    if inconsistency:
        return CardVerdict(False, "inconsistent_reading", _("Inconsistent reading"), inconsistency)
    row = _row(reading)
    label = str(row.label)
    if not row.compatible:
        reason = str(row.reason) % {"sak": reading.sak, "atqa": reading.atqa}
        return CardVerdict(False, row.card_type, label, reason)
    if len(reading.uid) == 8 and reading.uid.startswith("08"):
        return CardVerdict(
            False,
            "random_uid",
            label,
            _(
                "This %(label)s gives a random UID (4 bytes starting with 08) that changes each "
                "time it is presented; the stations recognise a badge by its UID."
            )
            % {"label": label},
        )
    return CardVerdict(True, row.card_type, label, "")


def judge_card(uid: str, atqa: str, sak: str) -> tuple[CardReading, CardVerdict]:
    reading = read_card(uid, atqa, sak)
    return reading, judge(reading)
