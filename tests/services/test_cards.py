"""keys.cards: whether a card can be a badge on the stations (R46), from UID, ATQA and SAK."""

from __future__ import annotations

import pytest
from django.utils import translation

from doorkeep.core.errors import InvalidInput
from doorkeep.keys import cards

UID4 = "B3 2F 1A 7C"
UID7 = "04:A2:3B:4C:5D:6E:80"
UID10 = "04A23B4C5D6E80112233"


@pytest.fixture(autouse=True)
def _english():
    with translation.override("en"):
        yield


# Real-world readings, one or more per row of the table: (uid, atqa, sak, card_type).
ACCEPTED = [
    (UID4, "0004", "08", "mifare_classic_1k"),  # MIFARE Classic 1K, 4-byte NUID
    (UID7, "0044", "08", "mifare_classic_1k"),  # MIFARE Classic EV1 1K, 7-byte UID
    (UID4, "0x0002", "18", "mifare_classic_4k"),  # MIFARE Classic 4K
    (UID7, "00 42", "0x18", "mifare_classic_4k"),  # MIFARE Classic EV1 4K, 7-byte UID
    (UID4, "0004", "09", "mifare_classic_mini"),  # MIFARE Mini
    ("1A7B8C54", "0004", "88", "infineon_classic_1k"),  # Infineon SLE66R35
    (UID4, "0004", "28", "mifare_classic_1k_t_cl"),  # JCOP41 v2.3.1 with Classic 1K
    (UID4, "0304", "28", "mifare_classic_1k_t_cl"),  # JCOP31 with Classic 1K
    (UID7, "0044", "28", "mifare_classic_1k_t_cl"),  # MIFARE Plus 2K SL1, ISO 14443-4 on
    (UID4, "0002", "38", "mifare_classic_4k_t_cl"),  # Nokia 6212, Classic 4K emulated
    (UID7, "0042", "38", "mifare_classic_4k_t_cl"),  # MIFARE Plus 4K SL1, ISO 14443-4 on
]

REFUSED = [
    ("04 9C 2A 6A 3E 4D 80", "0044", "00", "mifare_ultralight_or_ntag", "Ultralight"),  # NTAG213
    (UID7, "0044", "00", "mifare_ultralight_or_ntag", "NTAG"),  # MIFARE Ultralight EV1
    (UID4, "0004", "10", "mifare_plus_sl2_2k", "security level 2"),
    (UID7, "0042", "11", "mifare_plus_sl2_4k", "security level 2"),
    ("04 36 5A 1A B2 2E 80", "0344", "20", "mifare_desfire", "DESFire"),  # DESFire EV1
    ("08 4F 21 9A", "0004", "20", "iso14443_4", "bank card"),  # EMV card, random UID
    (UID7, "0048", "20", "iso14443_4", "ISO 14443-4"),  # JCOP with 7-byte UID
    (UID7, "0344", "24", "iso14443_4", "T=CL"),  # DESFire (SAK 24)
    (UID4, "0004", "68", "iso14443_4", "T=CL"),  # phone, Classic emulated by the SIM
    (UID4, "0002", "98", "unknown", "SAK 98"),  # Gemplus MPCOS
    (UID4, "0004", "00", "unknown", "ATQA 0004"),  # SAK 00 but no Ultralight ATQA
    (UID7, "0344", "08", "unknown", "SAK 08"),  # Classic SAK, ATQA no Classic gives
    (UID7, "0044", "09", "unknown", "no MIFARE Classic"),  # Mini has a 4-byte UID only
    (UID10, "0084", "08", "unknown", "no MIFARE Classic"),  # no Classic has a 10-byte UID
    (UID4, "0F01", "01", "unknown", "no MIFARE Classic"),  # e.g. a TNP3xxx toy tag
]


@pytest.mark.parametrize(("uid", "atqa", "sak", "card_type"), ACCEPTED)
def test_it_accepts_every_mifare_classic_kind(uid, atqa, sak, card_type):
    _, verdict = cards.judge_card(uid, atqa, sak)

    assert verdict == cards.CardVerdict(True, card_type, verdict.label, "")
    assert "MIFARE Classic" in verdict.label


@pytest.mark.parametrize(("uid", "atqa", "sak", "card_type", "named"), REFUSED)
def test_it_refuses_anything_else_naming_what_it_saw(uid, atqa, sak, card_type, named):
    _, verdict = cards.judge_card(uid, atqa, sak)

    assert (verdict.compatible, verdict.card_type) == (False, card_type)
    assert named in verdict.reason
    assert "the stations read only MIFARE Classic cards" in verdict.reason


def test_every_row_of_the_table_has_a_real_reading_here():
    tested = {row[3] for row in ACCEPTED} | {row[3] for row in REFUSED}

    assert {row.card_type for row in cards.CARD_TABLE} == tested
    assert all(row.source for row in cards.CARD_TABLE)
    assert all(bool(row.reason) != row.compatible for row in cards.CARD_TABLE)


def test_it_accepts_a_mifare_classic_1k():
    reading, verdict = cards.judge_card("b3-2f-1a-7c", "0x0004", "0x08")

    assert reading == cards.CardReading(uid="B32F1A7C", atqa="0004", sak="08")
    assert verdict.compatible
    assert verdict.label == "MIFARE Classic 1K (or MIFARE Plus 2K in security level 1)"


def test_it_refuses_a_desfire_naming_it():
    _, verdict = cards.judge_card("04365A1AB22E80", "0344", "20")

    assert verdict == cards.CardVerdict(
        False,
        "mifare_desfire",
        "MIFARE DESFire",
        "This is a MIFARE DESFire card (ISO 14443-4, T=CL); the stations read only MIFARE "
        "Classic cards.",
    )


def test_it_refuses_an_unknown_card_quoting_its_values():
    _, verdict = cards.judge_card(UID4, "0002", "98")

    assert "SAK 98 with ATQA 0002" in verdict.reason


@pytest.mark.parametrize(
    ("uid", "atqa", "expected", "got"),
    [(UID7, "0004", 4, 7), (UID4, "0044", 7, 4), (UID4, "0084", 10, 4), (UID10, "0042", 7, 10)],
)
def test_it_refuses_a_uid_whose_length_contradicts_the_atqa(uid, atqa, expected, got):
    _, verdict = cards.judge_card(uid, atqa, "08")

    assert (verdict.compatible, verdict.card_type) == (False, "inconsistent_reading")
    assert f"announces a {expected}-byte UID but the UID has {got} bytes" in verdict.reason


def test_it_refuses_an_atqa_with_the_reserved_uid_size():
    _, verdict = cards.judge_card(UID4, "00C4", "08")

    assert verdict.card_type == "inconsistent_reading"
    assert "reserved UID size" in verdict.reason


@pytest.mark.parametrize(
    ("atqa", "swapped"), [("0400", "0004"), ("4400", "0044"), ("0006", "0600")]
)
def test_it_refuses_an_atqa_no_card_gives_suggesting_the_other_byte_order(atqa, swapped):
    _, verdict = cards.judge_card(UID4, atqa, "08")

    assert (verdict.compatible, verdict.card_type) == (False, "inconsistent_reading")
    assert f"it would be {swapped}" in verdict.reason


def test_it_refuses_a_classic_card_giving_a_random_uid():
    _, verdict = cards.judge_card("08 12 34 56", "0004", "08")

    assert (verdict.compatible, verdict.card_type) == (False, "random_uid")
    assert "random UID" in verdict.reason
    assert verdict.label.startswith("MIFARE Classic 1K")


@pytest.mark.parametrize("atqa", ["0x0004", "00 04", "0004", "00:04", "0x00 0x04", " 00-04 "])
def test_it_reads_the_atqa_with_or_without_separators(atqa):
    assert cards.read_card(UID4, atqa, "08").atqa == "0004"


@pytest.mark.parametrize("sak", ["08", "0x08", "8", " 08 ", "0X8"])
def test_it_reads_the_sak_as_one_byte(sak):
    assert cards.read_card(UID4, "0004", sak).sak == "08"


def test_it_writes_the_reading_in_upper_case():
    assert cards.read_card("04:a2:3b:4c:5d:6e:80", "00 4a", "2b") == cards.CardReading(
        uid="04A23B4C5D6E80", atqa="004A", sak="2B"
    )


@pytest.mark.parametrize(
    ("uid", "atqa", "sak", "field"),
    [
        ("", "0004", "08", "uid"),
        ("B32F1A", "0004", "08", "uid"),
        ("B32F1A7G", "0004", "08", "uid"),
        (UID4, "", "08", "atqa"),
        (UID4, "004", "08", "atqa"),
        (UID4, "00044", "08", "atqa"),
        (UID4, "00G4", "08", "atqa"),
        (UID4, "0x", "08", "atqa"),
        (UID4, "\uff10\uff10\uff10\uff14", "08", "atqa"),
        (UID4, "0004", "", "sak"),
        (UID4, "0004", "108", "sak"),
        (UID4, "0004", "0x", "sak"),
        (UID4, "0004", "G8", "sak"),
        (UID4, "0004", "\ufb00", "sak"),
    ],
)
def test_it_refuses_a_malformed_value_naming_the_field(uid, atqa, sak, field):
    with pytest.raises(InvalidInput) as caught:
        cards.read_card(uid, atqa, sak)

    assert caught.value.code == f"invalid_{field}"
    assert caught.value.details == {"field": field}
    assert field.upper() in caught.value.message
