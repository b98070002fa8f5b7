"""Payments in the web UI: the bank files of an organization (for its lock
owners) and of the platform (for its operator), each with an upload form
and the list of imports; one import's report (matched, partly paid,
overpaid, unknown, already applied); and marking an invoice as paid by
hand, with a note (the invoice's page includes web/billing/payment_form.html
and this view sends the person back there).

The rules are in billing.payments: who may upload, what a file pays, that
nothing is applied twice. A refused file is shown on the form with the
reason; an outsider finds nothing (404), a member without the role is told
why (403)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django import forms
from django.contrib import messages
from django.core.files.uploadedfile import UploadedFile
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import NoReverseMatch, reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from doorkeep import policy
from doorkeep.accounts.models import Organization
from doorkeep.billing import camt, payments
from doorkeep.billing.models import BankFile, Invoice, Payment, PaymentOutcome
from doorkeep.billing.pricing import money
from doorkeep.core.errors import DomainError, InvalidInput, NotFound
from doorkeep.web.forms import ServiceErrorsMixin
from doorkeep.web.views.common import _form_or_page_error, current_user, page_view

FILES_PER_PAGE = 50

# How a report names each outcome, and the colour of its badge.
OUTCOMES: dict[str, tuple[Any, str]] = {
    PaymentOutcome.MATCHED: (gettext_lazy("Matched"), "status-active"),
    PaymentOutcome.PARTIAL: (gettext_lazy("Partly paid"), "status-expired"),
    PaymentOutcome.OVERPAID: (gettext_lazy("Overpaid"), "status-scheduled"),
    PaymentOutcome.UNKNOWN: (gettext_lazy("Unknown reference"), "status-revoked"),
    payments.ALREADY_APPLIED: (gettext_lazy("Already applied"), ""),
}


class BankFileForm(forms.Form):
    file = forms.FileField(
        label=gettext_lazy("Bank file"),
        help_text=gettext_lazy(
            "The camt.054 notification (or the camt.053 statement) of the account, as the "
            "e-banking gives it: an XML file."
        ),
        widget=forms.ClearableFileInput(attrs={"accept": ".xml,application/xml,text/xml"}),
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("auto_id", "id_bank_file_%s")
        super().__init__(*args, **kwargs)

    def clean_file(self) -> UploadedFile:
        upload: UploadedFile = self.cleaned_data["file"]
        if (upload.size or 0) > camt.MAX_BYTES:
            raise forms.ValidationError(
                _("The file is larger than %(mb)d MB; ask the bank for shorter periods.")
                % {"mb": camt.MAX_BYTES // (1024 * 1024)},
                code="too_large",
            )
        return upload


class MarkPaidForm(ServiceErrorsMixin, forms.Form):
    FIELD_FOR_CODE = {"note_required": "note", "note_too_long": "note"}

    note = forms.CharField(
        label=gettext_lazy("Note"),
        max_length=payments.NOTE_MAX,
        widget=forms.Textarea(attrs={"rows": 2}),
        error_messages={
            "required": gettext_lazy(
                "Say why the invoice is paid: a note is required (for example: paid in cash)."
            )
        },
        help_text=gettext_lazy(
            "Why it is paid, for whoever reads it later: paid in cash, a transfer without "
            "its reference…"
        ),
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("auto_id", "id_mark_paid_%s")
        super().__init__(*args, **kwargs)


# --- rows shown ------------------------------------------------------------------------------


def _outcome(value: str) -> tuple[str, str]:
    label, css = OUTCOMES.get(value, (value, ""))
    return str(label), css


@dataclass
class FileRow:
    bank_file: BankFile
    counts: dict[str, int]


@dataclass
class ReportRow:
    reference: str
    amount: str
    booked_on: str
    debtor: str
    outcome: str
    outcome_label: str
    outcome_class: str
    invoice: str | None
    invoice_url: str | None
    note: str


def invoice_url(invoice_id: int) -> str | None:
    """The invoice's page, once it exists in the URLs (web:invoice)."""
    try:
        return reverse("web:invoice", args=[invoice_id])
    except NoReverseMatch:
        return None


def _report_rows(report: dict[str, Any]) -> list[ReportRow]:
    rows = []
    for row in report.get("rows", []):
        label, css = _outcome(row["outcome"])
        invoice_id = row.get("invoice_id")
        rows.append(
            ReportRow(
                reference=row.get("reference") or "",
                amount=money(row["amount"], row["currency"]),
                booked_on=row.get("booked_on") or "",
                debtor=row.get("debtor") or "",
                outcome=row["outcome"],
                outcome_label=label,
                outcome_class=css,
                invoice=row.get("invoice"),
                invoice_url=invoice_url(invoice_id) if invoice_id else None,
                note=row.get("note") or "",
            )
        )
    return rows


def _summary(report: dict[str, Any]) -> list[tuple[str, str, int, str]]:
    """(outcome, label, count, sums per currency) for the report's head."""
    counts = report.get("counts", {})
    totals = report.get("totals", {})
    found = []
    for outcome in OUTCOMES:
        label, _css = _outcome(outcome)
        sums = ", ".join(
            money(by_outcome.get(outcome, 0), currency)
            for currency, by_outcome in totals.items()
            if by_outcome.get(outcome)
        )
        found.append((outcome, label, int(counts.get(outcome, 0)), sums))
    return found


# --- the bank files pages ------------------------------------------------------------------


def _files_page(
    request: HttpRequest,
    org_id: int | None,
    *,
    status: int = 200,
    form: BankFileForm | None = None,
) -> HttpResponse:
    user = current_user(request)
    if org_id is None:
        policy.require_platform_operator(user)
        org = None
    else:
        payments.require_uploader(user, org_id)
        org = Organization.objects.get(pk=org_id)
    files = payments.bank_files(user, organization_id=org_id)
    page = Paginator(files, FILES_PER_PAGE).get_page(request.GET.get("page"))
    rows = [FileRow(f, (f.report or {}).get("counts", {})) for f in page]
    upload_url = (
        reverse("web:operator_upload_bank_file")
        if org is None
        else reverse("web:upload_bank_file", kwargs={"org_id": org.pk})
    )
    return render(
        request,
        "web/billing/bank_files.html",
        {
            "nav": "operator_bank_files" if org is None else "locks",
            "org": org,
            "form": form or BankFileForm(),
            "upload_url": upload_url,
            "rows": rows,
            "page": page,
        },
        status=status,
    )


def _upload(request: HttpRequest, org_id: int | None) -> HttpResponse:
    user = current_user(request)
    if org_id is None:
        policy.require_platform_operator(user)
    else:
        payments.require_uploader(user, org_id)  # before reading the file
    form = BankFileForm(request.POST, request.FILES)
    if not form.is_valid():
        return _files_page(request, org_id, status=400, form=form)
    upload: UploadedFile = form.cleaned_data["file"]
    try:
        bank_file = payments.import_bank_file(
            user, upload.read(), upload.name or "", organization_id=org_id
        )
    except NotFound:
        raise
    except DomainError as exc:
        form.add_error("file", exc.message)
        return _files_page(request, org_id, status=exc.status, form=form)
    counts = bank_file.report["counts"]
    messages.success(
        request,
        _(
            "%(name)s read: %(matched)d matched, %(partial)d partly paid, %(overpaid)d overpaid, "
            "%(unknown)d unknown, %(again)d already applied."
        )
        % {
            "name": bank_file.filename or bank_file.message_type,
            "matched": counts["matched"],
            "partial": counts["partial"],
            "overpaid": counts["overpaid"],
            "unknown": counts["unknown"],
            "again": counts[payments.ALREADY_APPLIED],
        },
    )
    return redirect("web:bank_file", bank_file_id=bank_file.pk)


@require_GET
@page_view
def bank_files(request: HttpRequest, org_id: int) -> HttpResponse:
    return _files_page(request, org_id)


@require_POST
@page_view
def upload_bank_file(request: HttpRequest, org_id: int) -> HttpResponse:
    return _upload(request, org_id)


@require_GET
@page_view
def operator_bank_files(request: HttpRequest) -> HttpResponse:
    return _files_page(request, None)


@require_POST
@page_view
def operator_upload_bank_file(request: HttpRequest) -> HttpResponse:
    return _upload(request, None)


@require_GET
@page_view
def bank_file(request: HttpRequest, bank_file_id: int) -> HttpResponse:
    user = current_user(request)
    found = payments.get_bank_file(user, bank_file_id)
    report = found.report or {}
    if found.organization_id is None:
        back = reverse("web:operator_bank_files")
    else:
        back = reverse("web:bank_files", kwargs={"org_id": found.organization_id})
    return render(
        request,
        "web/billing/bank_file.html",
        {
            "nav": "operator_bank_files" if found.organization_id is None else "locks",
            "bank_file": found,
            "report": report,
            "counts": report.get("counts", {}),
            "summary": _summary(report),
            "rows": _report_rows(report),
            "back": back,
        },
    )


# --- marking an invoice as paid ------------------------------------------------------------


def _mark_page(
    request: HttpRequest,
    invoice: Invoice,
    *,
    status: int = 200,
    form: MarkPaidForm | None = None,
    error: str = "",
) -> HttpResponse:
    user = current_user(request)
    history: list[Payment] = list(
        Payment.objects.filter(invoice=invoice)
        .select_related("created_by")
        .order_by("created_at", "id")
    )
    return render(
        request,
        "web/billing/payment_mark.html",
        {
            "nav": "locks",
            "invoice": invoice,
            "invoice_url": invoice_url(invoice.pk),
            "total": money(invoice.total, invoice.currency),
            "paid": money(invoice.paid, invoice.currency),
            "open": money(invoice.open_amount, invoice.currency),
            "payments": [
                (p, money(p.amount, p.currency), p.get_outcome_display()) for p in history
            ],
            "can_mark": payments.can_mark_paid(user, invoice),
            "payment_form": form or MarkPaidForm(),
            "error": error,
        },
        status=status,
    )


@require_http_methods(["GET", "POST"])
@page_view
def invoice_mark_paid(request: HttpRequest, invoice_id: int) -> HttpResponse:
    """GET: the invoice's payments and the form; POST: mark it as paid, then
    back to the invoice's page (the form is also on that page)."""
    user = current_user(request)
    invoice = payments.invoice_to_mark(user, invoice_id)
    if request.method == "GET":
        return _mark_page(request, invoice)
    form = MarkPaidForm(request.POST)
    if not form.is_valid():
        return _mark_page(request, invoice, status=400, form=form)
    try:
        invoice = payments.mark_paid(user, invoice_id, note=form.cleaned_data["note"])
    except NotFound:
        raise
    except DomainError as exc:
        # A note refused goes on the form; why the invoice cannot be paid
        # (paid already, a draft…) at the top: the form is no longer shown.
        error = _form_or_page_error(form, exc) if isinstance(exc, InvalidInput) else exc.message
        invoice.refresh_from_db()
        return _mark_page(request, invoice, status=exc.status, form=form, error=error)
    messages.success(
        request,
        _("Invoice %(number)s is marked as paid.") % {"number": invoice.number or invoice.pk},
    )
    target = invoice_url(invoice.pk) or reverse("web:invoice-mark-paid", args=[invoice.pk])
    return redirect(target)
