"""Payment references of invoices: the Swiss QR reference and the ISO 11649
creditor reference (RF), and the test that tells a QR-IBAN from an IBAN.

A QR-bill pays to a QR-IBAN with a QR reference (27 digits, the last a
recursive mod-10 check digit) or to an ordinary IBAN with a creditor
reference (``RF`` + two check digits + up to 21 characters). Both are made
from the issuer's id and the invoice's sequence number, so they are unique
per issuer and invoice and the same invoice always gets the same one:

* QR reference: 10 digits of issuer id, 16 of sequence number, check digit
  (issuer 7, invoice 42: ``000000000700000000000000423``).
* RF reference: one digit giving the issuer id's length, the issuer id, then
  the sequence number on at least 9 digits (issuer 7, invoice 42:
  ``RF`` + check + ``17000000042``): unambiguous, and short enough to type.

Bank files print references in groups, in any case; ``normalize`` is what
matching compares."""

from __future__ import annotations

from stdnum import iban, iso11649
from stdnum.ch import esr
from stdnum.iso7064 import mod_97_10

QR_IBAN_COUNTRIES = ("CH", "LI")
QR_IID_FIRST = 30000
QR_IID_LAST = 31999

ISSUER_DIGITS = 10  # QR reference: issuer id width
NUMBER_DIGITS = 16  # QR reference: sequence number width
RF_NUMBER_DIGITS = 9  # RF reference: the sequence number's minimum width
RF_PAYLOAD_MAX = 21


def normalize(ref: str) -> str:
    """A reference as matching compares it: no spaces, upper case."""
    return "".join((ref or "").split()).upper()


def is_qr_iban(account: str) -> bool:
    """A valid Swiss or Liechtenstein IBAN whose institution id (characters
    5 to 9) is in 30000-31999: a QR-IBAN, which takes a QR reference."""
    compact = iban.compact(account or "")
    if compact[:2] not in QR_IBAN_COUNTRIES or not iban.is_valid(compact):
        return False
    return QR_IID_FIRST <= int(compact[4:9]) <= QR_IID_LAST


def _check(number: int, issuer_id: int) -> None:
    if number <= 0:
        raise ValueError("The invoice number must be positive.")
    if issuer_id <= 0:
        raise ValueError("The issuer id must be positive.")


def qr_reference(number: int, *, issuer_id: int) -> str:
    """The 27-digit QR reference of invoice ``number`` of an issuer."""
    _check(number, issuer_id)
    if issuer_id >= 10**ISSUER_DIGITS or number >= 10**NUMBER_DIGITS:
        raise ValueError("The issuer id or invoice number is too large for a QR reference.")
    body = f"{issuer_id:0{ISSUER_DIGITS}d}{number:0{NUMBER_DIGITS}d}"
    return body + esr.calc_check_digit(body)


def creditor_reference(number: int, *, issuer_id: int) -> str:
    """The ISO 11649 creditor reference (``RF…``) of invoice ``number`` of an
    issuer, without spaces."""
    _check(number, issuer_id)
    issuer = str(issuer_id)
    payload = f"{len(issuer)}{issuer}{number:0{RF_NUMBER_DIGITS}d}"
    if len(issuer) > 9 or len(payload) > RF_PAYLOAD_MAX:
        raise ValueError("The issuer id or invoice number is too large for a creditor reference.")
    reference = f"RF{mod_97_10.calc_check_digits(payload + 'RF')}{payload}"
    return iso11649.validate(reference)


def reference_for(account: str, number: int, *, issuer_id: int) -> str:
    """The reference an invoice paid to ``account`` carries: a QR reference
    for a QR-IBAN, a creditor reference for any other IBAN."""
    if is_qr_iban(account):
        return qr_reference(number, issuer_id=issuer_id)
    return creditor_reference(number, issuer_id=issuer_id)


def is_valid(ref: str) -> bool:
    """A well-formed QR reference or creditor reference."""
    compact = normalize(ref)
    if compact.startswith("RF"):
        return iso11649.is_valid(compact)
    return len(compact) == 27 and esr.is_valid(compact)


def format_reference(ref: str) -> str:
    """A reference grouped for print: ``21 00000 00003 13947 14300 09017``
    (QR reference, in fives from the right) or ``RF18 5390 0754 7034``
    (creditor reference, in fours); anything else in fours."""
    compact = normalize(ref)
    if compact.startswith("RF") and iso11649.is_valid(compact):
        return iso11649.format(compact)
    if compact.isdigit() and esr.is_valid(compact):
        return esr.format(compact)
    return " ".join(compact[i : i + 4] for i in range(0, len(compact), 4))
