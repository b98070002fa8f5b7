"""Invoice, credit note, statement and site summary PDFs, read back as a
person and a bank would: the page rendered by pdfium and its QR code decoded
by zxing-cpp (the Swiss Payments Code's fields), and the page's text. No
database: the documents are plain data."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import date

import pypdfium2 as pdfium
import pytest
import zxingcpp

from doorkeep.billing import documents, pdf
from doorkeep.billing.documents import (
    DocumentLine,
    InvoiceDocument,
    Party,
    SiteSummaryDocument,
    StatementDocument,
    SummaryRow,
    UseRow,
    format_money,
    render_invoice,
    render_site_summary,
    render_statement,
)
from doorkeep.billing.pricing import money
from doorkeep.billing.references import creditor_reference, format_reference, qr_reference

QR_IBAN = "CH4431999123000889012"
IBAN = "CH9300762011623852957"
CREDITOR = Party("Hausverwaltung Müller AG", "Bahnhofstrasse", "12", "8001", "Zürich", "CH")
DEBTOR = Party("Zoë Müller-Weiß", "Rue de la Gare", "5b", "1003", "Lausanne", "CH")


def lines(n: int = 3) -> list[DocumentLine]:
    return [
        DocumentLine(f"Laundry, washer {i + 1}", f"{i + 2} cycles", 350 * (i + 1), 810)
        for i in range(n)
    ]


def uses(n: int) -> list[UseRow]:
    return [
        UseRow(
            when=f"2026-03-{i % 28 + 1:02d} 18:{i % 60:02d}",
            what=f"Charging at P2, session {i + 1}",
            energy_kwh=f"{i + 1}.250",
            amount=100 + i,
        )
        for i in range(n)
    ]


def invoice(**changes: object) -> InvoiceDocument:
    doc_lines = lines()
    total = sum(line.amount for line in doc_lines)
    doc = InvoiceDocument(
        kind="invoice",
        number="2026-00042",
        issued_on=date(2026, 4, 2),
        due_on=date(2026, 5, 2),
        period="March 2026",
        creditor=CREDITOR,
        account=QR_IBAN,
        vat_number="CHE-123.456.789 MWST",
        debtor=DEBTOR,
        site="Résidence du Lac",
        unit="2A",
        currency="CHF",
        lines=doc_lines,
        total=total,
        vat=1573 * total // 21000,
        vat_rate=810,
        reference=qr_reference(42, issuer_id=3),
        uses=uses(5),
        language="en",
    )
    return replace(doc, **changes)  # type: ignore[arg-type]


def pages_of(data: bytes) -> list[tuple[str, list[str]]]:
    """(text, QR codes' texts) of each page."""
    document = pdfium.PdfDocument(data)
    try:
        out = []
        for page in document:
            text = page.get_textpage().get_text_range()
            image = page.render(scale=3).to_pil()
            codes = [code.text for code in zxingcpp.read_barcodes(image)]
            out.append((text, codes))
        return out
    finally:
        document.close()


def text_of(data: bytes) -> str:
    document = pdfium.PdfDocument(data)
    try:
        return "\n".join(page.get_textpage().get_text_range() for page in document)
    finally:
        document.close()


def page_count(data: bytes) -> int:
    document = pdfium.PdfDocument(data)
    try:
        return len(document)
    finally:
        document.close()


def spc(text: str) -> dict[str, str]:
    """The Swiss Payments Code's fields of a QR-bill's QR code."""
    values = text.splitlines()
    assert values[0] == "SPC" and values[1] == "0200", values[:2]
    names = {
        3: "iban",
        5: "creditor",
        9: "creditor_city",
        18: "amount",
        19: "currency",
        20: "debtor_type",
        21: "debtor",
        24: "debtor_postcode",
        25: "debtor_city",
        27: "reference_type",
        28: "reference",
        29: "message",
        30: "trailer",
    }
    return {name: values[index] for index, name in names.items()}


def the_qr_code(data: bytes) -> dict[str, str]:
    codes = [(index, code) for index, (_, found) in enumerate(pages_of(data)) for code in found]
    assert len(codes) == 1, codes
    assert codes[0][0] == 0, "the payment part is on the first page"
    return spc(codes[0][1])


def test_a_chf_invoice_to_a_qr_iban_decodes_to_its_amount_qr_reference_and_iban():
    doc = invoice()
    fields = the_qr_code(render_invoice(doc))
    assert fields["iban"] == QR_IBAN
    assert fields["amount"] == "21.00"
    assert fields["currency"] == "CHF"
    assert fields["reference_type"] == "QRR"
    assert fields["reference"] == qr_reference(42, issuer_id=3)
    assert fields["message"] == "2026-00042"
    assert fields["creditor"] == "Hausverwaltung Müller AG"
    assert fields["creditor_city"] == "Zürich"
    assert (fields["debtor"], fields["debtor_postcode"]) == ("Zoë Müller-Weiß", "1003")
    assert fields["trailer"] == "EPD"


def test_a_eur_invoice_to_an_iban_carries_an_rf_creditor_reference():
    reference = creditor_reference(42, issuer_id=3)
    doc = invoice(account=IBAN, currency="EUR", reference=reference, total=123456, vat=9250)
    data = render_invoice(doc)
    fields = the_qr_code(data)
    assert fields["iban"] == IBAN
    assert fields["amount"] == "1234.56"
    assert fields["currency"] == "EUR"
    assert fields["reference_type"] == "SCOR"
    assert fields["reference"] == reference
    text = text_of(data)
    assert "EUR 1,234.56" in text
    assert format_reference(reference) in text


def test_the_pdf_text_carries_the_number_the_debtor_with_accents_and_the_total():
    text = text_of(render_invoice(invoice(total=123450, vat=9250)))
    assert "Invoice 2026-00042" in text
    assert "Zoë Müller-Weiß" in text
    assert "Rue de la Gare 5b" in text
    assert "1'234.50" in text
    assert "CHF 1'234.50" in text  # in the payment terms
    assert "Hausverwaltung Müller AG" in text
    assert "Résidence du Lac" in text
    assert "VAT 8.1 % included" in text


def test_a_name_beyond_latin_1_prints_as_written_and_the_qr_code_keeps_it():
    doc = invoice(debtor=replace(DEBTOR, name="Đurđa Ćirić"))
    data = render_invoice(doc)
    text = text_of(data)
    if pdf.unicode_fonts("latin") is None:  # no DejaVu Sans on this machine
        assert "Durda Ciric" in text
    else:
        assert "Đurđa Ćirić" in text
    assert the_qr_code(data)["debtor"] == "Đurđa Ćirić"


def test_without_a_unicode_font_names_are_transliterated_not_lost(monkeypatch):
    monkeypatch.setattr(pdf, "unicode_fonts", lambda cut="wide": None)
    data = render_invoice(invoice(debtor=replace(DEBTOR, name="Łukasz Đurić")))
    text = text_of(data)
    assert "Lukasz Duric" in text
    assert the_qr_code(data)["debtor"] == "Łukasz Đurić"


def test_a_debtor_without_postcode_and_city_gets_the_blank_payable_by_box():
    data = render_invoice(invoice(debtor=Party("Jean Dupont", street="Rue 1")))
    fields = the_qr_code(data)
    assert fields["debtor_type"] == "" and fields["debtor"] == ""
    text = text_of(data)
    assert "Payable by (name/address)" in text
    assert "Jean Dupont" in text  # in the address window


def test_a_300_use_invoice_runs_over_pages_and_keeps_its_qr_code_on_the_first():
    doc = invoice(uses=uses(300))
    data = render_invoice(doc)
    pages = pages_of(data)
    assert len(pages) >= 6
    assert [index for index, (_, codes) in enumerate(pages) if codes] == [0]
    assert spc(pages[0][1][0])["amount"] == "21.00"
    detail = pages[1:]
    for number, (text, _) in enumerate(detail, start=2):
        assert "Amount (CHF)" in text, number  # the header row, on every page
        assert f"Page {number} of {len(pages)}" in text
    assert "Detail of uses (continued)" in detail[1][0]
    everything = "\n".join(text for text, _ in pages)
    assert "session 1\n" in everything or "session 1 " in everything
    assert "session 300" in everything
    assert "300 uses" in everything
    assert format(sum(100 + i for i in range(300)) / 100, ".2f") in everything


def test_an_invoice_with_many_lines_gives_the_payment_part_a_page_of_its_own():
    doc = invoice(lines=lines(30), total=sum(350 * (i + 1) for i in range(30)), uses=uses(10))
    pages = pages_of(render_invoice(doc))
    with_codes = [index for index, (_, codes) in enumerate(pages) if codes]
    assert with_codes == [1]
    assert "Laundry, washer 30" in pages[0][0] + pages[1][0]
    assert "Detail of uses" in pages[2][0]


def test_a_credit_note_has_no_qr_code_and_names_the_invoice_it_credits():
    doc = invoice(kind="credit_note", number="2026-00043", credited_number="2026-00042")
    pages = pages_of(render_invoice(doc))
    assert all(not codes for _, codes in pages)
    text = "\n".join(text for text, _ in pages)
    assert "Credit note 2026-00043" in text
    assert "refers to invoice 2026-00042" in text
    assert "Payment part" not in text


def test_an_invoice_of_nothing_has_no_payment_part():
    pages = pages_of(render_invoice(invoice(total=0, vat=0, uses=[])))
    assert all(not codes for _, codes in pages)
    assert "nothing to pay" in pages[0][0]


def test_a_draft_without_a_number_has_no_payment_part_and_says_not_to_pay():
    pages = pages_of(render_invoice(invoice(number="", reference="", due_on=None)))
    assert all(not codes for _, codes in pages)
    assert "Draft invoice" in pages[0][0]
    assert "do not pay" in pages[0][0]


def test_the_terms_give_the_due_date_and_the_reference():
    text = text_of(render_invoice(invoice()))
    assert "Payable by May 2, 2026." in text
    assert format_reference(qr_reference(42, issuer_id=3)) in text


def test_an_invoice_to_an_account_abroad_says_where_to_transfer_without_a_qr_bill():
    reference = creditor_reference(42, issuer_id=3)
    doc = invoice(account="DE89370400440532013000", currency="EUR", reference=reference)
    pages = pages_of(render_invoice(doc))
    assert all(not codes for _, codes in pages)
    assert "DE89 3704 0044 0532 0130 00" in pages[0][0]
    assert format_reference(reference) in pages[0][0]


def test_a_qr_iban_with_a_creditor_reference_is_refused_with_a_reason():
    with pytest.raises(ValueError, match="QR-IBAN requires a QRR"):
        render_invoice(invoice(reference=creditor_reference(42, issuer_id=3)))


@pytest.mark.parametrize(
    ("language", "payment_part", "date_label"),
    [
        ("de", "Zahlteil", "Datum"),
        ("fr", "Section paiement", "Date"),
        ("nl", "Payment part", "Datum"),
    ],
)
def test_the_labels_and_the_payment_part_follow_the_documents_language(
    language, payment_part, date_label
):
    text = text_of(render_invoice(invoice(language=language)))
    assert payment_part in text
    assert date_label in text


def test_a_statement_lists_each_use_with_its_price_and_the_total():
    rows = uses(12)
    doc = StatementDocument(
        owner=Party("Hans Besitzer", "Seeweg", "3", "6003", "Luzern"),
        resident=Party("Ana Ştefănescu", "Seeweg", "3", "6003", "Luzern"),
        site="Seeweg 3",
        unit="EG links",
        period="March 2026",
        issued_on=date(2026, 4, 1),
        currency="CHF",
        uses=rows,
        total=sum(row.amount for row in rows),
        language="en",
    )
    pages = pages_of(render_statement(doc))
    assert all(not codes for _, codes in pages)
    text = "\n".join(text for text, _ in pages)
    for row in rows:
        assert row.what in text
        assert f"{row.amount / 100:.2f}" in text
    assert "Total CHF" in text
    assert "12.66" in text  # 12 uses from 1.00 to 1.11
    assert "12 uses" in text
    assert "Statement March 2026" in text
    assert "not an invoice" in text
    if pdf.unicode_fonts("latin") is not None:
        assert "Ana Ştefănescu" in text


def test_a_long_statement_repeats_its_header_row_on_every_page():
    rows = uses(150)
    doc = StatementDocument(
        owner=Party("Hans Besitzer"),
        resident=Party("Rosa Resident"),
        site="Seeweg 3",
        unit="",
        period="March 2026",
        issued_on=date(2026, 4, 1),
        currency="EUR",
        uses=rows,
        total=sum(row.amount for row in rows),
        language="en",
    )
    data = render_statement(doc)
    document = pdfium.PdfDocument(data)
    try:
        texts = [page.get_textpage().get_text_range() for page in document]
    finally:
        document.close()
    assert len(texts) >= 3
    assert all("Amount (EUR)" in text for text in texts)
    assert "session 150" in texts[-1] or "session 150" in texts[-2]


def test_the_site_summary_has_a_row_per_resident_and_the_totals():
    rows = [
        SummaryRow("Rosa Resident", "2A", 3, 12_345, 1_250),
        SummaryRow("Sanne de Vries", "3B", 5, 1_000, 2_000),
        SummaryRow("Zoë Müller", "4C", 0, 0, 0),
    ]
    doc = SiteSummaryDocument(
        owner=Party("Hans Besitzer", "Seeweg", "3", "6003", "Luzern"),
        site="Seeweg 3",
        period="March 2026",
        issued_on=date(2026, 4, 1),
        currency="CHF",
        rows=rows,
        language="en",
    )
    data = render_site_summary(doc)
    assert page_count(data) == 1
    text = text_of(data)
    for row in rows:
        assert row.resident in text
        assert row.unit in text
    assert "12.345" in text and "13.345" in text  # energy of Rosa, and in all
    assert "12.50" in text and "32.50" in text  # amount of Rosa, and in all
    assert re.search(r"Total\s+8\b", text)


@pytest.mark.parametrize(
    ("minor", "currency", "expected"),
    [
        (123450, "CHF", "CHF 1'234.50"),
        (123450, "EUR", "EUR 1,234.50"),
        (-1230, "CHF", "CHF -12.30"),
        (5, "CHF", "CHF 0.05"),
        (0, "EUR", "EUR 0.00"),
        (123456789012, "CHF", "CHF 1'234'567'890.12"),
    ],
)
def test_money_is_formatted_with_two_decimals_and_grouped_thousands(minor, currency, expected):
    assert format_money(minor, currency) == expected
    assert money(minor, currency) == expected  # as the rest of the platform writes it


def test_the_qr_bill_text_keeps_the_characters_banks_accept():
    assert pdf.spc_text("Đurđa  Ćirić\n") == "Đurđa Ćirić"
    assert pdf.spc_text("Ştefan Ţurcanu") == "Ştefan Ţurcanu"  # cedilla forms: Latin Ext-A
    assert pdf.spc_text("Ș€") == "Ș€"
    assert pdf.spc_text("Ǆ Ζωή") == "DZ ???"


def test_core_font_text_is_transliterated_only_where_needed():
    assert pdf.western("Zoë Müller-Weiß, Šime, 5 €") == "Zoë Müller-Weiß, Šime, 5 €"
    assert pdf.western("Łukasz Đurić") == "Lukasz Duric"
    assert pdf.latin1("Šime – 5 €") == "Sime - 5 EUR"


def test_a_document_embeds_a_font_only_for_letters_beyond_windows_1252():
    assert pdf.charset(["Zoë Müller-Weiß", "Šime", "5 €", ""]) == "core"
    assert pdf.charset(["Zoë", "Ćirić", "Ştefan Ţurcanu"]) == "latin"
    assert pdf.charset(["Zoë", "Иван Петров"]) == "wide"


def test_greek_and_cyrillic_names_print_with_the_wider_font():
    data = render_invoice(invoice(debtor=replace(DEBTOR, name="Иван Петров")))
    text = text_of(data)
    if pdf.unicode_fonts("wide") is not None:
        assert "Иван Петров" in text
    # Letters the QR-bill cannot carry: the blank "Payable by" box, not "????".
    assert the_qr_code(data)["debtor"] == ""


def test_the_payment_part_follows_the_debtors_address_or_leaves_the_box_blank():
    with_address = documents.payment_part(invoice())
    assert with_address.debtor is not None and with_address.debtor.city == "Lausanne"
    assert documents.payment_part(invoice(debtor=Party("Jean Dupont"))).debtor is None
    # A country qrbill does not know: the blank box rather than no invoice.
    unknown = replace(DEBTOR, country="XX")
    assert documents.payment_part(invoice(debtor=unknown)).debtor is None


def test_the_qr_codes_rectangles_cover_exactly_its_dark_modules():
    modules = documents.payment_part(invoice()).qr_modules()
    covered = [[False] * len(row) for row in modules]
    for column, row, width, height in pdf._rectangles(modules):
        for y in range(row, row + height):
            for x in range(column, column + width):
                assert modules[y][x] and not covered[y][x]
                covered[y][x] = True
    assert covered == modules
