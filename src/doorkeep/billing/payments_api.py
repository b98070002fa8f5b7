"""Payments in the API: uploading the bank's ISO 20022 files (camt.054 and
camt.053) with the report of what they paid, the files uploaded before, an
invoice's payments, and marking an invoice as paid by hand.

A bank file is sent as ``multipart/form-data`` with the file in the field
``file`` (``curl -F file=@camt054.xml``); ``organization_id`` (a query
parameter) says whose invoices it pays. The platform's operator leaves it
out to match the invoices of every organization; a lock owner who may
finalize billing in one organization only may leave it out too. Bank files
are for lock owners and the platform's operator (403 with the reason for
other members, 404 for anyone outside the organization)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any

from django.http import HttpRequest
from django.utils.translation import gettext as _
from ninja import File, Query, Router, Schema, Status
from ninja.files import UploadedFile
from pydantic import Field

from doorkeep import policy
from doorkeep.api.util import actor
from doorkeep.billing import camt, payments
from doorkeep.billing.models import BankFile, Invoice, Payment, PaymentOutcome
from doorkeep.core.errors import InvalidInput, Unprocessable
from doorkeep.gateway.api import ErrorOut

router = Router(tags=["payments"])

Id = Annotated[int, Field(ge=1, le=2**63 - 1)]
ERRORS: dict[int, type[Schema]] = {
    400: ErrorOut,
    403: ErrorOut,
    404: ErrorOut,
    409: ErrorOut,
    422: ErrorOut,
}


# --- schemas ----------------------------------------------------------------------------------


class CountsOut(Schema):
    credits: int = Field(description="Credits read from the file (one per transaction)")
    matched: int = Field(description="Paid exactly what was open on their invoice")
    partial: int = Field(description="Paid less than was open: the invoice stays open")
    overpaid: int = Field(description="Paid more than was open (or an invoice paid already)")
    unknown: int = Field(description="No invoice has their reference: kept for a look")
    already_applied: int = Field(description="Applied by an earlier file: nothing changed")
    debits: int = Field(description="Debits of the account: not read")
    not_booked: int = Field(description="Pending or informative entries: not applied")


class RowOut(Schema):
    reference: str = Field(description="The structured reference, without spaces; empty: none")
    amount: int = Field(description="Minor units")
    currency: str
    booked_on: date | None
    debtor: str
    entry: int = Field(description="The bank's entry it is part of (1-based, in the file)")
    outcome: str = Field(description="matched, partial, overpaid, unknown or already_applied")
    invoice_id: int | None
    invoice: str | None = Field(description="The invoice's number")
    payment_id: int | None = Field(description="The payment stored (null: already applied)")
    note: str = Field(description="Why it is unknown, when something says why")


class ReportOut(Schema):
    message_type: str = Field(description="camt.053 or camt.054")
    version: str = Field(description="The message's version, as 001.08")
    message_id: str
    created_at: datetime | None
    accounts: list[str] = Field(description="The IBANs of the accounts the file is about")
    counts: CountsOut
    totals: dict[str, dict[str, int]] = Field(
        description="Per currency and outcome, the sum in minor units"
    )
    rows: list[RowOut]


class BankFileSummaryOut(Schema):
    id: int
    organization_id: int | None = Field(description="null: uploaded by the platform's operator")
    filename: str
    uploaded_at: datetime
    uploaded_by: str | None
    message_type: str
    message_id: str
    counts: CountsOut | None


class BankFileOut(BankFileSummaryOut):
    digest: str = Field(description="SHA-256 of the file")
    report: ReportOut


class ListQuery(Schema):
    organization_id: int | None = Field(
        None, description="One organization's files (the operator: 0 for the platform's own)"
    )
    limit: int = Field(50, ge=1, le=500)
    offset: int = Field(0, ge=0)


class MarkPaidIn(Schema):
    note: str = Field(
        max_length=300, description="Why it is paid (required): paid in cash, by hand…"
    )


class PaymentOut(Schema):
    id: int
    invoice_id: int | None
    outcome: str = Field(description="matched, partial, overpaid, unknown or manual")
    amount: int = Field(description="Minor units")
    currency: str
    reference: str
    booked_on: date | None
    debtor: str
    note: str
    created_by: str | None = Field(description="Who marked it paid (manual payments)")
    created_at: datetime
    bank_file_id: int | None


class InvoiceStateOut(Schema):
    id: int
    number: str
    status: str
    total: int
    paid: int
    open_amount: int
    currency: str
    paid_at: datetime | None


class MarkedPaidOut(Schema):
    invoice: InvoiceStateOut
    payment: PaymentOut


# --- helpers -----------------------------------------------------------------------------------


def _who(user: Any) -> str | None:
    if user is None:
        return None
    return str(user.name or user.email)


def _summary(bank_file: BankFile) -> dict[str, Any]:
    return {
        "id": bank_file.pk,
        "organization_id": bank_file.organization_id,
        "filename": bank_file.filename,
        "uploaded_at": bank_file.uploaded_at,
        "uploaded_by": _who(bank_file.uploaded_by),
        "message_type": bank_file.message_type,
        "message_id": bank_file.message_id,
        "counts": (bank_file.report or {}).get("counts"),
    }


def _bank_file_out(bank_file: BankFile) -> dict[str, Any]:
    return {**_summary(bank_file), "digest": bank_file.digest, "report": bank_file.report}


def _payment_out(payment: Payment) -> dict[str, Any]:
    return {
        "id": payment.pk,
        "invoice_id": payment.invoice_id,
        "outcome": payment.outcome,
        "amount": payment.amount,
        "currency": payment.currency,
        "reference": payment.reference,
        "booked_on": payment.booked_on,
        "debtor": payment.debtor,
        "note": payment.note,
        "created_by": _who(payment.created_by),
        "created_at": payment.created_at,
        "bank_file_id": payment.bank_file_id,
    }


def _invoice_state(invoice: Invoice) -> dict[str, Any]:
    return {
        "id": invoice.pk,
        "number": invoice.number,
        "status": invoice.status,
        "total": invoice.total,
        "paid": invoice.paid,
        "open_amount": invoice.open_amount,
        "currency": invoice.currency,
        "paid_at": invoice.paid_at,
    }


def _organization_for(request: HttpRequest, organization_id: int | None) -> int | None:
    """The organization an upload is for: as given; left out, none for the
    operator, the one organization a lock owner may upload for."""
    user = actor(request)
    if organization_id is not None or policy.is_platform_operator(user):
        return organization_id
    choices = payments.upload_organizations(user)
    if len(choices) == 1:
        return choices[0].pk
    if len(choices) > 1:
        raise InvalidInput(
            _(
                "You may upload bank files for several organizations: say which one with "
                "organization_id."
            ),
            code="organization_required",
        )
    return None  # refused by the service: not found


# --- bank files --------------------------------------------------------------------------------


@router.post(
    "bank-files",
    response={201: BankFileOut, **ERRORS},
    summary="Upload a bank file (camt.054 or camt.053)",
)
def upload_bank_file(
    request: HttpRequest,
    file: File[UploadedFile | None] = None,
    organization_id: Annotated[int | None, Query(description="Whose invoices it pays")] = None,
) -> Status[dict[str, Any]]:
    """Multipart form data, the file in the field `file`. Each credit is
    matched to an open (or paid) invoice by its structured reference (a QR
    reference or an RF creditor reference): `report.rows` says, for each,
    what it did (`matched`, `partial`, `overpaid`, `unknown`,
    `already_applied`). The same file again, or one that repeats some of
    its credits, applies nothing twice. Errors: `bank_file_refused` (422:
    not XML, cut off, not a camt.053 or camt.054, an entry without amount,
    a currency other than CHF or EUR…; `details.reason` says which, and
    nothing of the file is applied), `file_required` (422),
    `organization_required` (400), `import_in_progress` (409)."""
    org = _organization_for(request, organization_id)
    payments.require_uploader(actor(request), org)  # who may, before what is sent
    if file is None:
        raise Unprocessable(
            _("Attach the bank file as multipart form data, in the field file."),
            code="file_required",
            field="file",
        )
    if (file.size or 0) > camt.MAX_BYTES:
        raise camt.BankFileError(
            _("The file is larger than %(mb)d MB; ask the bank for shorter periods.")
            % {"mb": camt.MAX_BYTES // (1024 * 1024)},
            reason="too_large",
        )
    data = file.read()
    bank_file = payments.import_bank_file(
        actor(request), data, file.name or "", organization_id=org
    )
    return Status(201, _bank_file_out(bank_file))


@router.get("bank-files", response=list[BankFileSummaryOut], summary="Bank files uploaded")
def list_bank_files(request: HttpRequest, query: Query[ListQuery]) -> list[dict[str, Any]]:
    """Newest first, with the counts of their reports: the operator's every
    file; a lock owner's those of their organizations."""
    rows = payments.bank_files(actor(request), organization_id=query.organization_id)
    return [_summary(f) for f in rows[query.offset : query.offset + query.limit]]


@router.get(
    "bank-files/{bank_file_id}",
    response={200: BankFileOut, **ERRORS},
    summary="A bank file and its report",
)
def get_bank_file(request: HttpRequest, bank_file_id: int) -> dict[str, Any]:
    return _bank_file_out(payments.get_bank_file(actor(request), bank_file_id))


# --- an invoice's payments ---------------------------------------------------------------------


@router.get(
    "invoices/{invoice_id}/payments",
    response={200: list[PaymentOut], **ERRORS},
    summary="An invoice's payments",
)
def invoice_payments(request: HttpRequest, invoice_id: int) -> list[dict[str, Any]]:
    """From bank files and marked by hand, oldest first."""
    return [_payment_out(p) for p in payments.payments_of(actor(request), invoice_id)]


@router.post(
    "invoices/{invoice_id}/mark-paid",
    response={200: MarkedPaidOut, **ERRORS},
    summary="Mark an invoice as paid",
)
def mark_paid(request: HttpRequest, invoice_id: int, body: MarkPaidIn) -> dict[str, Any]:
    """For money that came another way (cash, a transfer without its
    reference): a manual payment of what is open, with the note and its
    author. Errors: `note_required` (400), `invoice_draft`, `credit_note`,
    `already_paid`, `invoice_credited` (409)."""
    invoice = payments.mark_paid(actor(request), invoice_id, note=body.note)
    payment = (
        Payment.objects.select_related("created_by")
        .filter(invoice=invoice, outcome=PaymentOutcome.MANUAL)
        .order_by("-id")
        .first()
    )
    assert payment is not None  # mark_paid stored it
    return {"invoice": _invoice_state(invoice), "payment": _payment_out(payment)}
