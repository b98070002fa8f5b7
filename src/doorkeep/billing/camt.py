"""ISO 20022 bank files: reading camt.054 (debit and credit notifications) and
camt.053 (account statements), and writing a camt.054 for the demo.

``parse`` reads the credits of a file, one per transaction (an entry of
the bank may batch many), each with the amount in minor units, the
structured reference (a QR reference or an RF creditor reference), the
debtor and a stable ``key`` that names the transaction whatever file it
comes in: the account's IBAN and the bank's own reference for it. Debits
and entries that are not booked yet are counted, not returned.

The version of a message is read from its namespace
(``urn:iso:std:iso:20022:tech:xsd:camt.054.001.08``): the elements read
here are the same from .001.02 on, so any version is read. A file that is
not XML, is cut off, is another message (a pain.001 payment order, a
camt.052) or holds an entry that cannot be read is refused whole with a
``BankFileError`` that says why; nothing of it is then applied.

The parser resolves no entity, reads nothing from the network, keeps
libxml2's limits on depth and text size, and refuses a document type
declaration outright (bank files never have one; entity bombs do)."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from lxml import etree

from doorkeep.billing.references import normalize
from doorkeep.core.errors import Unprocessable

MAX_BYTES = 20 * 1024 * 1024
CURRENCIES = ("CHF", "EUR")
MINOR_PER_UNIT = 100
MAX_AMOUNT = Decimal(10) ** 12  # far beyond any payment of an invoice
KEY_MAX = 200  # Payment.key
REFERENCE_MAX = 40  # Payment.reference
DEBTOR_MAX = 140  # Payment.debtor

ISO_NAMESPACE = re.compile(
    r"^urn:iso:std:iso:20022:tech:xsd:(?P<area>[a-z]{4})\.(?P<number>\d{3})\.(?P<variant>\d{3})"
    r"\.(?P<version>\d{2})$"
)
# What each supported message calls its document and its statements.
MESSAGES = {
    "camt.053": ("BkToCstmrStmt", "Stmt"),
    "camt.054": ("BkToCstmrDbtCdtNtfctn", "Ntfctn"),
}
KNOWN_OTHERS = {
    "camt.052": gettext_lazy("an intraday account report (camt.052)"),
    "pain.001": gettext_lazy("a payment order (pain.001)"),
    "pain.002": gettext_lazy("a payment status report (pain.002)"),
    "pain.008": gettext_lazy("a direct debit order (pain.008)"),
}
_DOCTYPE = re.compile(rb"<!\s*(DOCTYPE|ENTITY)", re.IGNORECASE)


class BankFileError(Unprocessable):
    """A bank file that cannot be read: refused whole, with a message that
    says what is wrong (HTTP 422)."""

    code = "bank_file_refused"


@dataclass(frozen=True, slots=True)
class BankEntry:
    """One credit: a transaction of an entry (an entry may batch many)."""

    key: str  # stable: the same transaction in another file has the same key
    amount: int  # minor units
    currency: str
    booked_on: date | None
    reference: str  # the structured reference, normalized; "" without one
    debtor: str
    account: str  # the IBAN of the account credited
    entry: int  # the entry's position in the file (1-based), for messages


@dataclass(slots=True)
class BankStatement:
    message_type: str  # "camt.053" or "camt.054"
    version: str  # "001.08"
    message_id: str
    created_at: datetime | None
    accounts: list[str] = field(default_factory=list)
    entries: list[BankEntry] = field(default_factory=list)  # the credits
    debits: int = 0  # debit transactions, ignored
    not_booked: int = 0  # transactions of entries not booked yet (pending, information)


# --- reading ---------------------------------------------------------------------------------


def _refuse(message: str, reason: str, **details: Any) -> BankFileError:
    return BankFileError(message, reason=reason, **details)


def _check_bytes(data: bytes) -> None:
    if not data.strip():
        raise _refuse(_("The file is empty."), "empty")
    if len(data) > MAX_BYTES:
        raise _refuse(
            _("The file is larger than %(mb)d MB; ask the bank for shorter periods.")
            % {"mb": MAX_BYTES // (1024 * 1024)},
            "too_large",
        )
    if data.startswith(b"PK\x03\x04"):
        raise _refuse(
            _("This is a ZIP archive: unpack it and upload the XML files it holds, one by one."),
            "zip",
        )
    if _DOCTYPE.search(data):
        raise _refuse(
            _(
                "The file declares a document type (DOCTYPE or ENTITY); bank files never do, so "
                "it is refused for safety."
            ),
            "doctype",
        )
    start = data.lstrip(b"\xef\xbb\xbf \t\r\n")
    if not start.startswith(b"<") and not start.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise _refuse(
            _("This file is not XML; a camt.053 or camt.054 bank file is an XML file."), "not_xml"
        )


def _tree(data: bytes) -> Any:
    _check_bytes(data)
    parser = etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        huge_tree=False,
        load_dtd=False,
        dtd_validation=False,
        remove_comments=True,
        remove_pis=True,
    )
    try:
        parser.feed(data)
    except etree.XMLSyntaxError as exc:
        raise _refuse(
            _("This file is not valid XML: %(error)s.") % {"error": exc.msg or str(exc)},
            "not_xml",
        ) from None
    try:
        root = parser.close()
    except etree.XMLSyntaxError as exc:
        # The data ended before the document did: cut off in transfer.
        raise _refuse(
            _(
                "The file is cut off: it ends before its XML document does (%(error)s). "
                "Download it from the bank again."
            )
            % {"error": exc.msg or str(exc)},
            "truncated",
        ) from None
    if root.getroottree().docinfo.internalDTD is not None:  # any DOCTYPE, in another encoding
        raise _refuse(
            _(
                "The file declares a document type (DOCTYPE or ENTITY); bank files never do, so "
                "it is refused for safety."
            ),
            "doctype",
        )
    return root


def _local(tag: Any) -> str:
    return etree.QName(tag).localname if isinstance(tag, str) else str(tag)


def _message_of(root: Any) -> tuple[str, str, str, Any]:
    """(message type, version, namespace, the message's element) of a
    camt.053 or camt.054 document; refused otherwise, naming what it is."""
    qname = etree.QName(root)
    found = ISO_NAMESPACE.match(qname.namespace or "")
    if qname.localname != "Document" or found is None:
        raise _refuse(
            _(
                "This is not a camt.053 or camt.054 bank file: its root element is <%(root)s> "
                "where an ISO 20022 <Document> was expected."
            )
            % {"root": qname.localname},
            "not_camt",
            root=qname.localname,
        )
    kind = f"{found['area']}.{found['number']}"
    version = f"{found['variant']}.{found['version']}"
    if kind not in MESSAGES:
        known = KNOWN_OTHERS.get(kind)
        what = str(known) if known else _("an ISO 20022 %(kind)s message") % {"kind": kind}
        raise _refuse(
            _(
                "This is %(what)s, not a camt.053 or camt.054 bank file. Download the camt.054 "
                "notification (or the camt.053 statement) of the account from the e-banking."
            )
            % {"what": what},
            "not_camt",
            message_type=kind,
        )
    container, _statement = MESSAGES[kind]
    ns = found.string
    body = root.find(f"{{{ns}}}{container}")
    if body is None:
        children = [_local(child.tag) for child in root if isinstance(child.tag, str)]
        raise _refuse(
            _("This %(kind)s file has no <%(element)s> element (it has: %(found)s).")
            % {"kind": kind, "element": container, "found": ", ".join(children) or "—"},
            "not_camt",
            message_type=kind,
        )
    return kind, version, ns, body


class _Reader:
    """Reads paths like ``"Refs/AcctSvcrRef"`` in the document's namespace."""

    def __init__(self, ns: str) -> None:
        self.ns = ns
        self._paths: dict[str, str] = {}

    def _path(self, path: str) -> str:
        found = self._paths.get(path)
        if found is None:
            found = "/".join(f"{{{self.ns}}}{part}" for part in path.split("/"))
            self._paths[path] = found
        return found

    def find(self, element: Any, path: str) -> Any:
        return element.find(self._path(path))

    def findall(self, element: Any, path: str) -> list[Any]:
        return list(element.findall(self._path(path)))

    def text(self, element: Any, *paths: str) -> str:
        """The text of the first of ``paths`` that is there, stripped; "" for none."""
        for path in paths:
            found = element.find(self._path(path))
            if found is not None and (found.text or "").strip():
                return " ".join(found.text.split())
        return ""


def _amount(element: Any, where: str) -> tuple[int, str]:
    text = (element.text or "").strip()
    currency = (element.get("Ccy") or "").strip().upper()
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise _refuse(
            _("%(where)s: the amount %(amount)s is not a number.")
            % {"where": where, "amount": repr(text)},
            "amount_invalid",
        ) from None
    if not value.is_finite() or value < 0 or value >= MAX_AMOUNT:
        raise _refuse(
            _("%(where)s: the amount %(amount)s is not a possible payment.")
            % {"where": where, "amount": text},
            "amount_invalid",
        )
    if value != value.quantize(Decimal("0.01")):
        raise _refuse(
            _("%(where)s: the amount %(amount)s has more than 2 decimals.")
            % {"where": where, "amount": text},
            "amount_decimals",
        )
    if currency not in CURRENCIES:
        raise _refuse(
            _("%(where)s: the currency %(currency)s is not handled; only CHF and EUR are.")
            % {"where": where, "currency": currency or "—"},
            "currency",
            currency=currency,
        )
    return int(value * MINOR_PER_UNIT), currency


def _day(text: str, where: str) -> date | None:
    if not text:
        return None
    try:
        return date.fromisoformat(text[:10])
    except ValueError:
        raise _refuse(
            _("%(where)s: the booking date %(date)s is not a date.")
            % {"where": where, "date": repr(text)},
            "date_invalid",
        ) from None


def _moment(text: str) -> datetime | None:
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _side(reader: _Reader, element: Any, where: str) -> str:
    side = reader.text(element, "CdtDbtInd")
    if side not in ("CRDT", "DBIT"):
        raise _refuse(
            _("%(where)s: it says neither credit nor debit (CdtDbtInd is %(value)s).")
            % {"where": where, "value": repr(side)},
            "side_invalid",
        )
    return side


def _digest(*parts: object) -> str:
    text = "\x1f".join(str(p) for p in parts)
    return hashlib.sha256(text.encode()).hexdigest()[:40]


def _entries(
    reader: _Reader, statement: Any, number: int, result: BankStatement, seen: dict[str, int]
) -> int:
    """Read the entries of one statement (or notification) into ``result``;
    returns the number of the last entry read."""
    account = reader.text(statement, "Acct/Id/IBAN", "Acct/Id/Othr/Id").replace(" ", "").upper()
    if account and account not in result.accounts:
        result.accounts.append(account)
    for entry in reader.findall(statement, "Ntry"):
        number += 1
        entry_ref = reader.text(entry, "AcctSvcrRef") or reader.text(entry, "NtryRef")
        where = (
            _("Entry %(n)d (%(ref)s)") % {"n": number, "ref": entry_ref}
            if entry_ref
            else _("Entry %(n)d") % {"n": number}
        )
        entry_amount = reader.find(entry, "Amt")
        if entry_amount is None or not (entry_amount.text or "").strip():
            raise _refuse(_("%(where)s has no amount.") % {"where": where}, "amount_missing")
        entry_side = _side(reader, entry, where)
        booked = reader.text(entry, "Sts/Cd", "Sts") in ("", "BOOK")
        details = reader.findall(entry, "NtryDtls/TxDtls")
        # An entry without details is itself the one transaction.
        for index, tx in enumerate(details or [None], start=1):
            tx_where = (
                _("%(where)s, transaction %(i)d") % {"where": where, "i": index}
                if tx is not None
                else where
            )
            side = entry_side
            if tx is not None and reader.find(tx, "CdtDbtInd") is not None:
                side = _side(reader, tx, tx_where)
            if not booked:
                result.not_booked += 1
                continue
            if side == "DBIT":
                result.debits += 1
                continue
            amount_element = entry_amount if tx is None else _tx_amount(reader, tx)
            if amount_element is None and len(details) == 1:
                amount_element = entry_amount
            if amount_element is None or not (amount_element.text or "").strip():
                raise _refuse(_("%(where)s has no amount.") % {"where": tx_where}, "amount_missing")
            amount, currency = _amount(amount_element, tx_where)
            result.entries.append(
                _credit(reader, entry, tx, index, account, number, tx_where, amount, currency, seen)
            )
    return number


def _tx_amount(reader: _Reader, tx: Any) -> Any:
    for path in ("Amt", "AmtDtls/TxAmt/Amt", "AmtDtls/InstdAmt/Amt"):
        found = reader.find(tx, path)
        if found is not None:
            return found
    return None


def _credit(
    reader: _Reader,
    entry: Any,
    tx: Any | None,
    index: int,
    account: str,
    number: int,
    where: str,
    amount: int,
    currency: str,
    seen: dict[str, int],
) -> BankEntry:
    booked_on = _day(reader.text(entry, "BookgDt/Dt", "BookgDt/DtTm"), where)
    source = tx if tx is not None else entry
    reference = ""
    for ref in reader.findall(source, "RmtInf/Strd/CdtrRefInf/Ref"):
        if (ref.text or "").strip():
            reference = normalize(ref.text)
            break
    debtor = reader.text(
        source,
        "RltdPties/Dbtr/Pty/Nm",
        "RltdPties/Dbtr/Nm",
        "RltdPties/UltmtDbtr/Pty/Nm",
        "RltdPties/UltmtDbtr/Nm",
    )
    tx_ref = reader.text(tx, "Refs/AcctSvcrRef") if tx is not None else ""
    entry_ref = reader.text(entry, "AcctSvcrRef")
    if tx_ref:
        key = f"{account}/{tx_ref}"
    elif entry_ref:
        key = f"{account}/{entry_ref}/{index}"
    else:
        # No reference of the bank: a digest of the credit's fields. NtryRef
        # is among them, not the key itself: Swiss banks put the QR-IBAN
        # there, the same for every entry. The second credit with the very
        # same fields in the file gets a key of its own (and the same key in
        # another file that holds both).
        digest = _digest(
            account,
            reader.text(entry, "NtryRef"),
            booked_on,
            reader.text(entry, "ValDt/Dt", "ValDt/DtTm"),
            amount,
            currency,
            reference,
            debtor,
            reader.text(tx, "Refs/EndToEndId") if tx is not None else "",
            index,
        )
        seen[digest] = occurrence = seen.get(digest, 0) + 1
        key = f"{account}/sha256:{digest}" + (f"/{occurrence}" if occurrence > 1 else "")
    return BankEntry(
        key=key if len(key) <= KEY_MAX else f"sha256:{_digest(key)}",
        amount=amount,
        currency=currency,
        booked_on=booked_on,
        reference=reference[:REFERENCE_MAX],
        debtor=debtor[:DEBTOR_MAX],
        account=account,
        entry=number,
    )


def parse(data: bytes) -> BankStatement:
    """Read a camt.053 or camt.054 file: its credits, one per transaction.
    Raises ``BankFileError`` with a message for people when the file cannot
    be read; nothing is returned of such a file."""
    root = _tree(data)
    kind, version, ns, body = _message_of(root)
    reader = _Reader(ns)
    result = BankStatement(
        message_type=kind,
        version=version,
        message_id=reader.text(body, "GrpHdr/MsgId")[:64],
        created_at=_moment(reader.text(body, "GrpHdr/CreDtTm")),
    )
    _container, statement_tag = MESSAGES[kind]
    statements = reader.findall(body, statement_tag)
    if not statements:
        raise _refuse(
            _("This %(kind)s file holds no <%(element)s>: there is nothing to read in it.")
            % {"kind": kind, "element": statement_tag},
            "empty",
        )
    number = 0
    seen: dict[str, int] = {}
    for statement in statements:
        number = _entries(reader, statement, number, result, seen)
    return result


# --- writing (the demo's file) ---------------------------------------------------------------

CAMT054 = "urn:iso:std:iso:20022:tech:xsd:camt.054.001.08"


@dataclass(frozen=True, slots=True)
class CreditSpec:
    """A credit to write: what a payer sent for a reference."""

    amount: int  # minor units
    currency: str
    reference: str
    debtor: str
    bank_reference: str  # the bank's reference of the transaction (AcctSvcrRef)


def _decimal(amount: int) -> str:
    units, cents = divmod(amount, MINOR_PER_UNIT)
    return f"{units}.{cents:02d}"


def _reference_type(reference: str) -> str:
    return "SCOR" if reference.startswith("RF") else "QRR"


def write_camt054(
    account: str,
    credits: Sequence[CreditSpec],
    *,
    message_id: str,
    booked_on: date,
    created_at: datetime | None = None,
) -> bytes:
    """A camt.054.001.08 notification of ``credits`` to ``account``: one
    entry, booked on ``booked_on``, batching them (as a Swiss bank reports
    the QR-bill payments of a day), in the currency of the first one."""
    if not credits:
        raise ValueError("a bank file needs at least one credit")
    currency = credits[0].currency
    if any(c.currency != currency for c in credits):
        raise ValueError("one currency per file")
    created = (created_at or timezone.now()).astimezone(UTC).replace(microsecond=0)
    ns = CAMT054

    def el(parent: Any, tag: str, text: str | None = None, **attrs: str) -> Any:
        child = etree.SubElement(parent, f"{{{ns}}}{tag}", attrs)
        if text is not None:
            child.text = text
        return child

    root = etree.Element(f"{{{ns}}}Document", nsmap={None: ns})  # type: ignore[dict-item]
    body = el(root, "BkToCstmrDbtCdtNtfctn")
    header = el(body, "GrpHdr")
    el(header, "MsgId", message_id)
    el(header, "CreDtTm", created.isoformat())
    note = el(body, "Ntfctn")
    el(note, "Id", f"{message_id}-1")
    el(note, "CreDtTm", created.isoformat())
    acct = el(note, "Acct")
    el(el(acct, "Id"), "IBAN", account.replace(" ", ""))
    el(acct, "Ccy", currency)
    entry = el(note, "Ntry")
    el(entry, "Amt", _decimal(sum(c.amount for c in credits)), Ccy=currency)
    el(entry, "CdtDbtInd", "CRDT")
    el(el(entry, "Sts"), "Cd", "BOOK")
    el(el(entry, "BookgDt"), "Dt", booked_on.isoformat())
    el(el(entry, "ValDt"), "Dt", booked_on.isoformat())
    el(entry, "AcctSvcrRef", f"{message_id}-B1")
    domain = el(el(entry, "BkTxCd"), "Domn")
    el(domain, "Cd", "PMNT")
    family = el(domain, "Fmly")
    el(family, "Cd", "RCDT")
    el(family, "SubFmlyCd", "VCOM")
    details = el(entry, "NtryDtls")
    el(el(details, "Btch"), "NbOfTxs", str(len(credits)))
    for credit in credits:
        tx = el(details, "TxDtls")
        refs = el(tx, "Refs")
        el(refs, "AcctSvcrRef", credit.bank_reference)
        el(refs, "EndToEndId", "NOTPROVIDED")
        el(tx, "Amt", _decimal(credit.amount), Ccy=credit.currency)
        el(tx, "CdtDbtInd", "CRDT")
        el(el(el(el(tx, "RltdPties"), "Dbtr"), "Pty"), "Nm", credit.debtor[:DEBTOR_MAX])
        info = el(el(el(tx, "RmtInf"), "Strd"), "CdtrRefInf")
        el(el(el(info, "Tp"), "CdOrPrtry"), "Prtry", _reference_type(credit.reference))
        el(info, "Ref", credit.reference)
    return bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True))


def demo_bank_file(invoices: Iterable[Any], *, booked_on: date | None = None) -> bytes:
    """A camt.054 that pays each of ``invoices`` (billing Invoice rows, with
    their issuer and person) in full, what is still open on each: what the
    bank would send once the residents paid. Invoices with nothing open or
    no reference are left out, and so are those in another currency than
    the first's (a file is of one account). The account is the first
    invoice's issuer's; the bank's references are derived from the
    invoices, so the same file twice is the same payments. Raises
    ValueError when no invoice is left to pay."""
    rows = [inv for inv in invoices if inv.reference and inv.open_amount > 0]
    if not rows:
        raise ValueError("no open invoice with a reference to pay")
    day = booked_on or timezone.localdate()
    credits = [
        CreditSpec(
            amount=inv.open_amount,
            currency=inv.currency,
            reference=normalize(inv.reference),
            debtor=inv.person.name,
            bank_reference=f"DEMO-{inv.pk}-{inv.open_amount}",
        )
        for inv in rows
        if inv.currency == rows[0].currency
    ]
    return write_camt054(
        rows[0].issuer.account,
        credits,
        message_id=f"DEMO-{day:%Y%m%d}-{rows[0].pk}",
        booked_on=day,
    )
