"""Payment references: QR references (27 digits, mod-10 recursive check
digit) for QR-IBANs, ISO 11649 creditor references (RF) for other IBANs,
unique per issuer and invoice; how they print and how matching compares
them."""

from __future__ import annotations

import pytest
from stdnum import iso11649
from stdnum.ch import esr

from doorkeep.billing import references as refs

QR_IBAN = "CH44 3199 9123 0008 8901 2"
IBAN = "CH93 0076 2011 6238 5295 7"


def test_the_published_qr_reference_is_valid_and_prints_in_fives():
    assert refs.is_valid("210000000003139471430009017")
    assert refs.format_reference("210000000003139471430009017") == (
        "21 00000 00003 13947 14300 09017"
    )


def test_a_qr_reference_with_a_wrong_check_digit_is_not_valid():
    assert not refs.is_valid("210000000003139471430009018")
    assert not refs.is_valid("21000000000313947143000901")  # a digit short


def test_the_published_creditor_reference_is_valid_and_prints_in_fours():
    assert refs.is_valid("RF18539007547034")
    assert refs.is_valid("rf18 5390 0754 7034")
    assert refs.format_reference("RF18539007547034") == "RF18 5390 0754 7034"
    assert not refs.is_valid("RF19539007547034")


def test_a_qr_reference_has_27_digits_and_its_check_digit():
    reference = refs.qr_reference(42, issuer_id=7)
    assert reference == "000000000700000000000000423"
    assert len(reference) == 27 and reference.isdigit()
    assert esr.is_valid(reference)
    assert reference[-1] == esr.calc_check_digit(reference[:-1])


def test_a_creditor_reference_is_valid_iso_11649():
    reference = refs.creditor_reference(42, issuer_id=7)
    assert reference.startswith("RF")
    assert iso11649.is_valid(reference)
    assert reference[4:] == "17000000042"
    assert len(reference) <= 25


def test_references_are_unique_per_issuer_and_invoice_number():
    pairs = [(issuer, number) for issuer in (1, 2, 12, 123) for number in range(1, 200)]
    qr = {refs.qr_reference(number, issuer_id=issuer) for issuer, number in pairs}
    rf = {refs.creditor_reference(number, issuer_id=issuer) for issuer, number in pairs}
    assert len(qr) == len(pairs)
    assert len(rf) == len(pairs)
    # Issuer 1's invoice 23 and issuer 12's invoice 3 do not collide.
    assert refs.creditor_reference(23, issuer_id=1) != refs.creditor_reference(3, issuer_id=12)


def test_the_same_invoice_always_gets_the_same_reference():
    assert refs.qr_reference(5, issuer_id=3) == refs.qr_reference(5, issuer_id=3)
    assert refs.creditor_reference(5, issuer_id=3) == refs.creditor_reference(5, issuer_id=3)


def test_a_qr_iban_is_told_from_an_iban():
    assert refs.is_qr_iban(QR_IBAN)
    assert refs.is_qr_iban("CH4431999123000889012")
    assert not refs.is_qr_iban(IBAN)
    assert not refs.is_qr_iban("DE89 3704 0044 0532 0130 00")
    assert not refs.is_qr_iban("CH44 3199 9123 0008 8901 3")  # wrong check digits
    assert not refs.is_qr_iban("")


def test_reference_for_gives_a_qr_reference_to_a_qr_iban_and_rf_to_an_iban():
    assert refs.reference_for(QR_IBAN, 9, issuer_id=2) == refs.qr_reference(9, issuer_id=2)
    assert refs.reference_for(IBAN, 9, issuer_id=2) == refs.creditor_reference(9, issuer_id=2)
    assert refs.reference_for("DE89370400440532013000", 9, issuer_id=2).startswith("RF")


def test_normalize_removes_spaces_and_upper_cases():
    assert refs.normalize(" rf18 5390 0754\t7034 ") == "RF18539007547034"
    assert refs.normalize("21 00000 00003 13947 14300 09017") == "210000000003139471430009017"
    assert refs.normalize("") == ""


def test_format_reference_groups_what_it_does_not_know_in_fours():
    assert refs.format_reference("ab12cd34ef") == "AB12 CD34 EF"


@pytest.mark.parametrize(
    ("number", "issuer_id"), [(0, 1), (-5, 1), (1, 0), (10**16, 1), (1, 10**10)]
)
def test_a_qr_reference_refuses_numbers_it_cannot_hold(number, issuer_id):
    with pytest.raises(ValueError):
        refs.qr_reference(number, issuer_id=issuer_id)


@pytest.mark.parametrize(("number", "issuer_id"), [(0, 1), (1, -1), (10**19, 1), (1, 10**9)])
def test_a_creditor_reference_refuses_numbers_it_cannot_hold(number, issuer_id):
    with pytest.raises(ValueError):
        refs.creditor_reference(number, issuer_id=issuer_id)
