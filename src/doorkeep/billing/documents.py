"""Invoices, credit notes, statements and site summaries as PDF (issue 14).

Pure rendering: plain frozen dataclasses in, PDF bytes out; no database. The
billing code fills the dataclasses from its models and keeps the bytes. The
labels are in the document's language (``language``); amounts are integer
minor units, VAT included.

An invoice is laid out as Swiss invoices are: the creditor's letterhead, the
debtor's address where a right-window envelope shows it (120 mm from the
left, 50 mm from the top) under the sender in small type, the title with
the number, the dates and the period, the lines, the subtotal without VAT,
the VAT included and the total, the payment terms, and the QR-bill payment
part (receipt and payment part, 105 mm high, with the perforation lines
qrbill draws) at the foot of the page. As on Swiss utility and telephone
bills, that page is the first: the summary and the payment slip come first,
the detail of the uses follows on the next pages, its header row repeated
on each. When the lines are too many to leave the payment part its 105 mm
on the page where they end, it goes at the foot of a page of its own right
after them (the separate payment page of the SIX guidelines), before the
detail. Pages other than the payment part's carry a footer with the page
number.

The payment part is there for an invoice of more than nothing paid to a
Swiss or Liechtenstein account: a QR reference with a QR-IBAN, an RF
creditor reference with an IBAN. An invoice paid to an account of another
country says in its terms where to transfer the money; a credit note has no
payment part and names the invoice it credits.

Fonts, characters and the drawing of the payment part: ``billing/pdf.py``."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Literal

from django.utils import translation
from django.utils.formats import date_format
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from doorkeep.billing.pdf import (
    ABOVE_PAYMENT_PART,
    BODY_W,
    BOTTOM,
    GREY,
    LEFT,
    QR_LANGUAGES,
    ROW_H,
    TOP,
    Column,
    PaymentPart,
    Writer,
    draw_payment_part,
    spc_text,
)
from doorkeep.billing.references import format_reference

WINDOW_X = 120.0
WINDOW_Y = 50.0
TITLE_Y = 88.0

# --- the plain data a document is made from ----------------------------------------------


@dataclass(frozen=True)
class Party:
    """A name and a postal address; the address may be partial (a resident
    whose address is not known has a name only)."""

    name: str
    street: str = ""
    house_number: str = ""
    postcode: str = ""
    city: str = ""
    country: str = "CH"

    @property
    def has_address(self) -> bool:
        """Postcode and city: what the QR-bill needs of a structured address."""
        return bool(self.postcode.strip() and self.city.strip())

    def lines(self, *, home_country: str = "CH") -> list[str]:
        street = " ".join(p for p in (self.street.strip(), self.house_number.strip()) if p)
        place = " ".join(p for p in (self.postcode.strip(), self.city.strip()) if p)
        country = self.country.strip().upper()
        if place and country and country != home_country.upper():
            place = f"{country}-{place}"
        return [line for line in (self.name.strip(), street, place) if line]


@dataclass(frozen=True)
class DocumentLine:
    """A line of an invoice: ``amount`` in minor units, VAT included;
    ``vat_rate`` in basis points (810 is 8.1 %); ``quantity`` as printed
    ("12 cycles", "143.250 kWh")."""

    description: str
    quantity: str
    amount: int
    vat_rate: int = 0


@dataclass(frozen=True)
class UseRow:
    """One use in a detail table: when (as printed), what, energy as printed
    ("12.345", or empty), its price in minor units, VAT included."""

    when: str
    what: str
    energy_kwh: str
    amount: int


@dataclass(frozen=True)
class InvoiceDocument:
    """An invoice or a credit note. ``total`` and ``vat`` in minor units
    (``vat`` is the VAT included in ``total``), ``vat_rate`` in basis points;
    ``period`` is the month billed as people read it ("March 2026");
    ``reference`` the payment reference (QR or RF); ``credited_number``
    the invoice a credit note credits."""

    kind: Literal["invoice", "credit_note"]
    number: str
    issued_on: date
    due_on: date | None
    period: str
    creditor: Party
    account: str
    vat_number: str
    debtor: Party
    site: str
    unit: str
    currency: str
    lines: Sequence[DocumentLine]
    total: int
    vat: int
    vat_rate: int
    reference: str
    uses: Sequence[UseRow] = ()
    language: str = "en"
    note: str = ""
    credited_number: str = ""


@dataclass(frozen=True)
class StatementDocument:
    """A resident's statement of a month in an individual-statements site:
    the owner collects payment; each use with its price, and the total."""

    owner: Party
    resident: Party
    site: str
    unit: str
    period: str
    issued_on: date
    currency: str
    uses: Sequence[UseRow]
    total: int
    language: str = "en"
    note: str = ""


@dataclass(frozen=True)
class SummaryRow:
    """One resident's month in a site summary."""

    resident: str
    unit: str
    uses: int
    energy_wh: int
    amount: int


@dataclass(frozen=True)
class SiteSummaryDocument:
    """A site's month, one row per resident, for the owner."""

    owner: Party
    site: str
    period: str
    issued_on: date
    currency: str
    rows: Sequence[SummaryRow]
    language: str = "en"


# --- formatting --------------------------------------------------------------------------------


def _amount(minor: int, currency: str) -> str:
    sign = "-" if minor < 0 else ""
    units, cents = divmod(abs(minor), 100)
    grouped = f"{units:,}".replace(",", "'" if currency == "CHF" else ",")
    return f"{sign}{grouped}.{cents:02d}"


def format_money(minor: int, currency: str) -> str:
    """``CHF 1'234.50``, ``EUR 1,234.50``, ``CHF -12.30``: integer minor
    units, two decimals, thousands grouped as the currency's people do."""
    return f"{currency} {_amount(minor, currency)}"


def format_energy(wh: int) -> str:
    """Watt-hours as kWh with three decimals, exactly: 12345 -> ``12.345``."""
    sign = "-" if wh < 0 else ""
    kwh, rest = divmod(abs(wh), 1000)
    return f"{sign}{kwh}.{rest:03d}"


def format_rate(basis_points: int) -> str:
    """A VAT rate: 810 -> ``8.1 %``, 800 -> ``8 %``."""
    units, rest = divmod(basis_points, 100)
    decimals = f"{rest:02d}".rstrip("0")
    return f"{units}.{decimals} %" if decimals else f"{units} %"


def _day(value: date | None) -> str:
    return date_format(value, "DATE_FORMAT") if value else ""


def _grouped(account: str) -> str:
    compact = "".join(account.split()).upper()
    return " ".join(compact[i : i + 4] for i in range(0, len(compact), 4))


def _party_texts(party: Party) -> list[str]:
    return [party.name, party.street, party.house_number, party.postcode, party.city]


def _use_texts(uses: Sequence[UseRow]) -> Iterator[str]:
    for use in uses:
        yield use.when
        yield use.what
        yield use.energy_kwh


# --- blocks shared by the documents ------------------------------------------------------------


def _letterhead(writer: Writer, party: Party, extra: Sequence[str] = ()) -> None:
    writer.font(13, bold=True)
    writer.cell(LEFT, TOP, 100.0, party.name, height=6.0)
    writer.font(8.5)
    writer.color(GREY)
    y = TOP + 7.0
    for line in [*party.lines()[1:], *extra]:
        writer.cell(LEFT, y, 100.0, line, height=4.0)
        y += 4.0
    writer.color()


def _window(writer: Writer, recipient: Party, sender: Party) -> None:
    """The recipient where the envelope's window shows it, the sender in
    small type above."""
    writer.font(6.5)
    writer.color(GREY)
    writer.cell(WINDOW_X, WINDOW_Y - 6.0, 75.0, ", ".join(sender.lines()), height=3.5)
    writer.color()
    writer.font(10)
    y = WINDOW_Y
    for line in recipient.lines(home_country=sender.country or "CH"):
        writer.cell(WINDOW_X, y, 75.0, line, height=4.8)
        y += 4.8


def _facts(writer: Writer, y: float, pairs: Sequence[tuple[str, str]]) -> float:
    """Label-value pairs in two columns; returns the y under them."""
    half = (len(pairs) + 1) // 2
    width = BODY_W / 2
    for index, (label, value) in enumerate(pairs):
        x = LEFT + (width if index >= half else 0.0)
        row_y = y + (index % half) * 4.6
        writer.font(8.5)
        writer.color(GREY)
        writer.cell(x, row_y, 26.0, label, height=4.6)
        writer.color()
        writer.cell(x + 26.0, row_y, width - 27.0, value, height=4.6)
    return y + half * 4.6


def _totals(writer: Writer, y: float, rows: Sequence[tuple[str, str, bool]]) -> float:
    """Label-amount rows at the right; a strong row is ruled above and in
    bold. Returns the y under them."""
    x = LEFT + BODY_W - 95.0
    for label, value, strong in rows:
        height = 5.5 if strong else ROW_H
        writer.font(10 if strong else 8.5, bold=strong)
        if strong:
            writer.rule(y, x=x, width=95.0, weight=0.3)
            y += 0.8
        writer.cell(x, y, 65.0, label, height=height)
        writer.cell(x + 65.0, y, 30.0, value, align="R", height=height)
        y += height
    return y + 2.0


def _use_columns(currency: str) -> list[Column]:
    return [
        Column(_("When"), 32.0),
        Column(_("Use"), 93.0),
        Column(_("Energy (kWh)"), 24.0, "R"),
        Column(_("Amount (%(currency)s)") % {"currency": currency}, 26.0, "R"),
    ]


def _use_rows(uses: Sequence[UseRow], currency: str) -> Iterator[tuple[str, str, str, str]]:
    for use in uses:
        yield use.when, use.what, use.energy_kwh, _amount(use.amount, currency)


def _uses_count(count: int) -> str:
    return ngettext("%(count)s use", "%(count)s uses", count) % {"count": count}


# --- invoices and credit notes -----------------------------------------------------------------


def has_payment_part(doc: InvoiceDocument) -> bool:
    """A numbered invoice of more than nothing, with its reference, paid in
    CHF or EUR to a Swiss or Liechtenstein account: what a QR-bill is made
    for (a draft, which has no number yet, is not to be paid)."""
    account = "".join(doc.account.split()).upper()
    return (
        doc.kind == "invoice"
        and bool(doc.number)
        and bool(doc.reference)
        and doc.total > 0
        and account[:2] in ("CH", "LI")
        and doc.currency in ("CHF", "EUR")
    )


def _qr_address(party: Party) -> dict[str, str] | None:
    """The party's address as qrbill takes it; None without a postcode and
    a city, or when the name is in letters the QR-bill cannot carry (a name
    in Cyrillic would be question marks: the blank box is better)."""
    name = spc_text(party.name)[:70]
    if not name or not party.has_address or name.count("?") > party.name.count("?"):
        return None
    return {
        "name": name,
        "street": spc_text(party.street)[:70],
        "house_num": spc_text(party.house_number)[:16],
        "pcode": spc_text(party.postcode)[:16],
        "city": spc_text(party.city)[:35],
        "country": (party.country or "CH").strip().upper()[:2] or "CH",
    }


def payment_part(doc: InvoiceDocument) -> PaymentPart:
    """The QR-bill of an invoice: the creditor and the account, the total,
    the reference (QRR with a QR-IBAN, SCOR with an IBAN), the invoice's
    number as additional information, and the debtor when their address has
    a postcode and a city (else the blank "Payable by" box). ValueError when
    the data cannot make one (an account that is not an IBAN, a reference
    that does not go with the account)."""
    creditor = _qr_address(doc.creditor)
    if creditor is None:
        raise ValueError("The creditor needs a name, a postcode and a city for a QR-bill.")
    units, cents = divmod(doc.total, 100)
    language = doc.language.split("-")[0].lower()  # "de-ch" -> "de"
    fields = {
        "account": doc.account,
        "creditor": creditor,
        "amount": f"{units}.{cents:02d}",
        "currency": doc.currency,
        "reference_number": doc.reference or None,
        "additional_information": spc_text(doc.number)[:140],
        "language": language if language in QR_LANGUAGES else "en",
    }
    debtor = _qr_address(doc.debtor)
    if debtor is not None:
        try:
            return PaymentPart(debtor=debtor, **fields)
        except ValueError as exc:
            if "debtor" not in str(exc):
                raise
            # A debtor address qrbill refuses (a country code it does not
            # know): the blank box rather than no invoice.
    return PaymentPart(debtor=None, **fields)


def _title(doc: InvoiceDocument) -> str:
    if doc.kind == "credit_note":
        if not doc.number:
            return _("Draft credit note")
        return _("Credit note %(number)s") % {"number": doc.number}
    if not doc.number:
        return _("Draft invoice")
    return _("Invoice %(number)s") % {"number": doc.number}


def _terms(doc: InvoiceDocument, qr: bool) -> str:
    total = format_money(abs(doc.total), doc.currency)
    if doc.kind == "credit_note":
        return _(
            "This credit note refers to invoice %(invoice)s. The amount of %(total)s is "
            "credited to you: it is set off against an open invoice or paid back to you."
        ) % {"invoice": doc.credited_number or "-", "total": total}
    if not doc.number:
        return _("This is a draft, not an invoice yet: do not pay it.")
    if doc.total <= 0:
        return _("There is nothing to pay for this invoice.")
    reference = format_reference(doc.reference)
    if qr:
        how = _(
            "Please pay %(total)s with the QR-bill payment part, or by bank transfer "
            "quoting the reference %(reference)s."
        ) % {"total": total, "reference": reference}
    else:
        how = _(
            "Please transfer %(total)s to the account %(account)s of %(creditor)s, "
            "quoting the reference %(reference)s."
        ) % {
            "total": total,
            "account": _grouped(doc.account),
            "creditor": doc.creditor.name,
            "reference": reference,
        }
    if doc.due_on is None:
        return how
    return _("Payable by %(due)s.") % {"due": _day(doc.due_on)} + " " + how


def _invoice_texts(doc: InvoiceDocument) -> Iterator[str]:
    yield from (doc.number, doc.period, doc.vat_number, doc.site, doc.unit, doc.note)
    yield doc.credited_number
    yield from _party_texts(doc.creditor)
    yield from _party_texts(doc.debtor)
    for line in doc.lines:
        yield line.description
        yield line.quantity
    yield from _use_texts(doc.uses)


def render_invoice(doc: InvoiceDocument) -> bytes:
    """The PDF of an invoice or a credit note."""
    with translation.override(doc.language):
        return _render_invoice(doc)


def _render_invoice(doc: InvoiceDocument) -> bytes:
    title = _title(doc)
    bill = payment_part(doc) if has_payment_part(doc) else None
    writer = Writer(
        title=title,
        head=f"{doc.creditor.name} · {title} · {doc.debtor.name}",
        foot=f"{doc.creditor.name} · {title}",
        language=doc.language,
        texts=_invoice_texts(doc),
    )
    writer.new_page()
    vat_number = [_("VAT number %(number)s") % {"number": doc.vat_number}] if doc.vat_number else []
    _letterhead(writer, doc.creditor, vat_number)
    _window(writer, doc.debtor, doc.creditor)

    writer.font(15, bold=True)
    writer.cell(LEFT, TITLE_Y, BODY_W, title, height=7.0)
    facts = [(_("Date"), _day(doc.issued_on))]
    if doc.kind == "invoice" and doc.due_on:
        facts.append((_("Due date"), _day(doc.due_on)))
    if doc.period:
        facts.append((_("Period"), doc.period))
    if doc.kind == "credit_note" and doc.credited_number:
        facts.append((_("Credits invoice"), doc.credited_number))
    if doc.reference and doc.kind == "invoice":
        facts.append((_("Reference"), format_reference(doc.reference)))
    if doc.site:
        facts.append((_("Site"), doc.site))
    if doc.unit:
        facts.append((_("Unit"), doc.unit))
    y = _facts(writer, TITLE_Y + 9.0, facts) + 6.0

    columns = [
        Column(_("Description"), 95.0),
        Column(_("Quantity"), 36.0, "R"),
        Column(_("VAT"), 18.0, "R"),
        Column(_("Amount (%(currency)s)") % {"currency": doc.currency}, 26.0, "R"),
    ]
    rows = (
        (
            line.description,
            line.quantity,
            format_rate(line.vat_rate) if line.vat_rate else "",
            _amount(line.amount, doc.currency),
        )
        for line in doc.lines
    )
    y = writer.table(y, columns, rows, title=title)

    totals: list[tuple[str, str, bool]] = []
    if doc.vat or doc.vat_rate:
        rates = {line.vat_rate for line in doc.lines if line.vat_rate}
        if doc.vat_rate and rates <= {doc.vat_rate}:
            vat_label = _("VAT %(rate)s included") % {"rate": format_rate(doc.vat_rate)}
        else:
            vat_label = _("VAT included")
        totals.append((_("Subtotal excl. VAT"), _amount(doc.total - doc.vat, doc.currency), False))
        totals.append((vat_label, _amount(doc.vat, doc.currency), False))
    label = _("Total credited") if doc.kind == "credit_note" else _("Total")
    totals.append((f"{label} {doc.currency}", _amount(doc.total, doc.currency), True))
    if y + len(totals) * ROW_H + 25.0 > BOTTOM:
        y = writer.new_page()
    y = _totals(writer, y, totals) + 2.0

    writer.font(9)
    y = writer.paragraph(LEFT, y, BODY_W, _terms(doc, bill is not None))
    if doc.note:
        y = writer.paragraph(LEFT, y + 2.0, BODY_W, doc.note)

    if bill is not None:
        if y > ABOVE_PAYMENT_PART:
            writer.new_page()
        draw_payment_part(writer, bill)

    if doc.uses:
        if bill is not None or y + 4 * ROW_H + 12.0 > BOTTOM:
            y = writer.new_page()
        else:
            y += 8.0
        _uses_table(writer, y, _("Detail of uses"), doc.uses, doc.currency)
    return writer.output()


def _uses_table(
    writer: Writer, y: float, title: str, uses: Sequence[UseRow], currency: str
) -> float:
    writer.font(11, bold=True)
    writer.cell(LEFT, y, BODY_W, title, height=6.0)
    columns = _use_columns(currency)
    y = writer.table(y + 7.0, columns, _use_rows(uses, currency), title=title)
    if y + ROW_H > BOTTOM:
        y = writer.new_page()
    writer.font(8.5, bold=True)
    total = _amount(sum(use.amount for use in uses), currency)
    writer.row(y, columns, [_uses_count(len(uses)), "", "", total])
    return y + ROW_H


# --- statements and site summaries -------------------------------------------------------------


def render_statement(doc: StatementDocument) -> bytes:
    """The PDF of a resident's statement of a month: each use with its
    price, and the total; the owner collects payment (no payment part)."""
    with translation.override(doc.language):
        title = _("Statement %(period)s") % {"period": doc.period}
        texts = [doc.site, doc.unit, doc.period, doc.note]
        texts += _party_texts(doc.owner) + _party_texts(doc.resident)
        writer = Writer(
            title=title,
            head=f"{doc.owner.name} · {title} · {doc.resident.name}",
            foot=f"{doc.owner.name} · {title}",
            language=doc.language,
            texts=[*texts, *_use_texts(doc.uses)],
        )
        writer.new_page()
        _letterhead(writer, doc.owner)
        _window(writer, doc.resident, doc.owner)
        writer.font(15, bold=True)
        writer.cell(LEFT, TITLE_Y, BODY_W, title, height=7.0)
        facts = [(_("Date"), _day(doc.issued_on)), (_("Period"), doc.period)]
        if doc.site:
            facts.append((_("Site"), doc.site))
        if doc.unit:
            facts.append((_("Unit"), doc.unit))
        y = _facts(writer, TITLE_Y + 9.0, facts) + 6.0
        columns = _use_columns(doc.currency)
        y = writer.table(y, columns, _use_rows(doc.uses, doc.currency), title=title)
        if y + 3 * ROW_H + 20.0 > BOTTOM:
            y = writer.new_page()
        total = _("Total %(currency)s") % {"currency": doc.currency}
        rows = [
            (_uses_count(len(doc.uses)), "", False),
            (total, _amount(doc.total, doc.currency), True),
        ]
        y = _totals(writer, y, rows)
        writer.font(9)
        text = _(
            "Prices include VAT where it applies. This statement is not an invoice: "
            "%(owner)s collects the amount as agreed with you."
        ) % {"owner": doc.owner.name}
        y = writer.paragraph(LEFT, y + 2.0, BODY_W, text)
        if doc.note:
            writer.paragraph(LEFT, y + 2.0, BODY_W, doc.note)
        return writer.output()


def render_site_summary(doc: SiteSummaryDocument) -> bytes:
    """The PDF of a site's month for its owner: a row per resident with
    their uses, energy and amount, and the totals."""
    with translation.override(doc.language):
        title = _("Summary %(period)s") % {"period": doc.period}
        texts = [doc.site, doc.period, *_party_texts(doc.owner)]
        for row in doc.rows:
            texts += [row.resident, row.unit]
        writer = Writer(
            title=f"{title} · {doc.site}",
            head=f"{doc.owner.name} · {doc.site} · {title}",
            foot=f"{doc.owner.name} · {doc.site} · {title}",
            language=doc.language,
            texts=texts,
        )
        writer.new_page()
        _letterhead(writer, doc.owner)
        writer.font(15, bold=True)
        writer.cell(LEFT, 45.0, BODY_W, title, height=7.0)
        facts = [(_("Site"), doc.site), (_("Period"), doc.period), (_("Date"), _day(doc.issued_on))]
        y = _facts(writer, 54.0, facts) + 6.0
        columns = [
            Column(_("Resident"), 70.0),
            Column(_("Unit"), 30.0),
            Column(_("Uses"), 18.0, "R"),
            Column(_("Energy (kWh)"), 27.0, "R"),
            Column(_("Amount (%(currency)s)") % {"currency": doc.currency}, 30.0, "R"),
        ]
        rows = (
            (
                row.resident,
                row.unit,
                str(row.uses),
                format_energy(row.energy_wh),
                _amount(row.amount, doc.currency),
            )
            for row in doc.rows
        )
        y = writer.table(y, columns, rows, title=title)
        if y + ROW_H > BOTTOM:
            y = writer.new_page()
        writer.font(8.5, bold=True)
        writer.row(
            y,
            columns,
            [
                _("Total"),
                "",
                str(sum(row.uses for row in doc.rows)),
                format_energy(sum(row.energy_wh for row in doc.rows)),
                _amount(sum(row.amount for row in doc.rows), doc.currency),
            ],
        )
        return writer.output()
