"""Reading the bank's ISO 20022 files: camt.054 (.001.04 to .001.08 and
beyond, by the namespace) and camt.053, each credit with its amount in
minor units, reference, debtor and a key that names it in any file; and
refusing what is not such a file, with a message that says why."""

from __future__ import annotations

import zipfile
from datetime import date
from io import BytesIO

import pytest

from doorkeep.billing import camt
from doorkeep.billing.camt import BankFileError, parse

from .camt_samples import (
    ACCOUNT,
    EUR_ACCOUNT,
    QR_MATCHED,
    QR_OVERPAID,
    QR_PARTIAL,
    QR_SPACED,
    QR_UNKNOWN,
    QR_V04,
    RF_MATCHED,
    invoice,
    issuer,
    sample,
)


def refused(data: bytes, reason: str) -> str:
    with pytest.raises(BankFileError) as caught:
        parse(data)
    assert caught.value.details["reason"] == reason, caught.value.details
    assert caught.value.status == 422
    assert caught.value.code == "bank_file_refused"
    return caught.value.message


# --- reading ---------------------------------------------------------------------------------


def test_a_swiss_camt054_gives_one_credit_per_transaction_of_its_batched_entry():
    statement = parse(sample("camt054_chf_qr.xml"))

    assert statement.message_type == "camt.054"
    assert statement.version == "001.08"
    assert statement.message_id == "20260203375204000006411"
    assert statement.accounts == [ACCOUNT]
    assert [(e.reference, e.amount, e.entry) for e in statement.entries] == [
        (QR_MATCHED, 12050, 1),
        (QR_PARTIAL, 5000, 1),
        (QR_OVERPAID, 13115, 1),
        (QR_UNKNOWN, 3500, 2),
        (QR_SPACED, 6430, 4),
    ]
    assert {e.currency for e in statement.entries} == {"CHF"}
    assert {e.booked_on for e in statement.entries} == {date(2026, 2, 3)}
    assert [e.debtor for e in statement.entries[:3]] == [
        "Rosa Resident",
        "Sanne de Vries",
        "Lucas Janssen",
    ]


def test_debits_and_entries_not_booked_are_counted_not_read():
    statement = parse(sample("camt054_chf_qr.xml"))

    assert statement.debits == 1
    assert statement.not_booked == 1
    assert all(e.amount != 1200 and e.amount != 9900 for e in statement.entries)


def test_the_key_is_the_account_and_the_banks_reference_of_the_transaction():
    keys = [e.key for e in parse(sample("camt054_chf_qr.xml")).entries]

    assert keys[0] == f"{ACCOUNT}/20260203001234001"
    # No reference of the bank on the transaction: the entry's, and its position in it.
    assert keys[4] == f"{ACCOUNT}/ZV20260203/000126/1"
    assert len(set(keys)) == len(keys)


def test_the_same_transaction_in_another_file_has_the_same_key():
    first = {e.key: e for e in parse(sample("camt054_chf_qr.xml")).entries}
    overlap = parse(sample("camt054_chf_overlap.xml")).entries

    assert overlap[0].key in first
    assert first[overlap[0].key].amount == overlap[0].amount
    assert overlap[1].key not in first


def test_a_reference_printed_in_groups_is_read_without_spaces():
    statement = parse(sample("camt054_chf_qr.xml"))

    assert statement.entries[4].reference == QR_SPACED


def test_a_camt053_statement_in_eur_with_a_creditor_reference():
    statement = parse(sample("camt053_eur_rf.xml"))

    assert statement.message_type == "camt.053"
    assert statement.accounts == [EUR_ACCOUNT]  # printed in groups in the file
    assert [(e.reference, e.amount, e.currency) for e in statement.entries] == [
        (RF_MATCHED, 25000, "EUR"),
        ("", 8000, "EUR"),  # only a free text: no reference
    ]
    assert statement.entries[0].debtor == "Anna Meier"
    assert statement.entries[0].key == f"{EUR_ACCOUNT}/EUR20260228-0001-01"
    assert statement.debits == 1


def test_an_older_camt054_version_04_is_read_too():
    (credit,) = parse(sample("camt054_v04_chf.xml")).entries

    assert (credit.reference, credit.amount, credit.debtor) == (QR_V04, 4500, "Emma Weber")
    assert credit.booked_on == date(2026, 1, 15)


@pytest.mark.parametrize("version", ["04", "05", "06", "07", "08", "10"])
def test_the_version_is_read_from_the_namespace(version):
    data = sample("camt054_chf_rest.xml").replace(
        b"camt.054.001.08", f"camt.054.001.{version}".encode()
    )

    statement = parse(data)

    assert statement.version == f"001.{version}"
    assert [e.amount for e in statement.entries] == [3000]


def test_credits_without_any_reference_of_the_bank_get_a_digest_of_their_fields():
    data = sample("camt054_chf_rest.xml")
    data = data.replace(b"<AcctSvcrRef>ZV20260210/000031</AcctSvcrRef>", b"")
    data = data.replace(b"<AcctSvcrRef>20260210000310001</AcctSvcrRef>", b"")
    # The same credit twice in one entry, as some banks send standing orders.
    start = data.index(b"<TxDtls>")
    end = data.index(b"</TxDtls>") + len(b"</TxDtls>")
    twice = data[:end] + data[start:end] + data[end:]

    once = parse(data).entries
    both = parse(twice).entries

    assert once[0].key.startswith(f"{ACCOUNT}/sha256:")
    assert once[0].key == parse(data).entries[0].key  # stable
    assert len({e.key for e in both}) == 2  # each its own, though alike


def test_amounts_with_trailing_zeros_are_exact():
    data = sample("camt054_chf_rest.xml").replace(b">30.00<", b">30.500<")

    assert parse(data).entries[0].amount == 3050


# --- refusing --------------------------------------------------------------------------------


def test_a_file_that_is_not_xml_is_refused():
    message = refused(b"Date;Amount;Reference\n2026-02-03;120.50;21000\n", "not_xml")

    assert "not XML" in message


def test_an_empty_file_is_refused():
    assert "empty" in refused(b"  \n", "empty")


def test_a_file_cut_off_in_transfer_says_so_with_the_parsers_reason():
    data = sample("camt054_chf_qr.xml")

    message = refused(data[: len(data) // 2], "truncated")

    assert "cut off" in message
    assert "line" in message  # lxml's own words say where


def test_a_payment_order_is_refused_as_what_it_is():
    message = refused(sample("pain001.xml"), "not_camt")

    assert "pain.001" in message
    assert "camt.054" in message


def test_a_camt052_report_is_not_taken_for_a_statement():
    data = sample("camt054_chf_rest.xml").replace(b"camt.054.001.08", b"camt.052.001.08")

    assert "camt.052" in refused(data, "not_camt")


def test_another_xml_document_names_its_root_element():
    message = refused(b"<?xml version='1.0'?><html><body>Statement</body></html>", "not_camt")

    assert "<html>" in message


def test_a_document_type_declaration_with_an_entity_bomb_is_refused():
    bomb = b"""<?xml version="1.0"?>
<!DOCTYPE Document [
  <!ENTITY lol "lol">
  <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
  <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
  <!ENTITY lol9 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
]>
<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.054.001.08">&lol9;</Document>"""

    assert "DOCTYPE" in refused(bomb, "doctype")


def test_an_external_entity_is_refused_in_any_encoding():
    xxe = (
        '<?xml version="1.0" encoding="UTF-16"?>\n'
        '<!DOCTYPE Document [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>\n'
        '<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.054.001.08">&xxe;</Document>'
    ).encode("utf-16")

    message = refused(xxe, "doctype")

    assert "root:" not in message


def test_a_zip_archive_is_refused_with_what_to_do():
    buffer = BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("camt054.xml", sample("camt054_chf_rest.xml"))

    assert "unpack" in refused(buffer.getvalue(), "zip")


def test_an_entry_without_amount_is_refused():
    data = sample("camt054_chf_rest.xml").replace(
        b'<Amt Ccy="CHF">30.00</Amt>\n        <CdtDbtInd>', b"<CdtDbtInd>", 1
    )

    message = refused(data, "amount_missing")

    assert "Entry 1" in message
    assert "no amount" in message


def test_a_currency_other_than_chf_or_eur_is_refused():
    data = sample("camt054_chf_rest.xml").replace(b'Ccy="CHF">30.00', b'Ccy="USD">30.00')

    assert "USD" in refused(data, "currency")


def test_an_amount_with_more_than_two_decimals_is_refused():
    data = sample("camt054_chf_rest.xml").replace(b">30.00<", b">30.005<")

    assert "30.005" in refused(data, "amount_decimals")


@pytest.mark.parametrize("amount", [b"-30.00", b"thirty", b"NaN"])
def test_an_amount_that_is_not_a_possible_payment_is_refused(amount):
    data = sample("camt054_chf_rest.xml").replace(b">30.00<", b">" + amount + b"<")

    refused(data, "amount_invalid")


def test_an_entry_that_says_neither_credit_nor_debit_is_refused():
    data = sample("camt054_chf_rest.xml").replace(
        b"<CdtDbtInd>CRDT</CdtDbtInd>", b"<CdtDbtInd>X</CdtDbtInd>", 1
    )

    refused(data, "side_invalid")


def test_a_file_larger_than_the_limit_is_refused_before_it_is_read(monkeypatch):
    monkeypatch.setattr(camt, "MAX_BYTES", 1000)

    refused(sample("camt054_chf_qr.xml"), "too_large")


# --- the demo's file ---------------------------------------------------------------------------


def test_the_demo_file_pays_the_given_invoices_in_full_and_reads_back(world):
    chf = issuer(account="CH4431999123000889012")
    first = invoice(world.prop, reference=QR_MATCHED, total=12050, by=chf)
    second = invoice(world.prop, reference=QR_PARTIAL, total=8000, by=chf, paid=5000)

    statement = parse(camt.demo_bank_file([first, second], booked_on=date(2026, 3, 2)))

    assert statement.message_type == "camt.054"
    assert statement.accounts == ["CH4431999123000889012"]
    assert [(e.reference, e.amount, e.currency) for e in statement.entries] == [
        (QR_MATCHED, 12050, "CHF"),
        (QR_PARTIAL, 3000, "CHF"),  # what is still open
    ]
    assert [e.debtor for e in statement.entries] == ["Rosa Resident", "Rosa Resident"]
    assert {e.booked_on for e in statement.entries} == {date(2026, 3, 2)}
    again = parse(camt.demo_bank_file([first, second], booked_on=date(2026, 3, 2)))
    assert [e.key for e in again.entries] == [e.key for e in statement.entries]


def test_a_file_in_utf16_is_read_like_any_other():
    text = sample("camt054_chf_rest.xml").decode().replace('encoding="UTF-8"', 'encoding="UTF-16"')

    (credit,) = parse(text.encode("utf-16")).entries

    assert (credit.reference, credit.amount) == (QR_PARTIAL, 3000)
