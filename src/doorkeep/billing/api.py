"""Tariffs, billing settings, billing runs and invoices in the API (issue
14).

Amounts are integers in minor units of the currency (cents, Rappen), in
fields named ``*_minor``; prices per kWh are integers in ten-thousandths of
the currency (``charging_rate`` 3500 is 0.35 per kWh) and VAT rates in
basis points (``vat_rate`` 810 is 8.1 %). Decimal strings are not taken.

Tariffs and billing runs are for the site's lock owners and building
managers; reading them, the invoices too, for read-only collaborators;
finalizing, credit notes and choosing who invoices for the lock owner and
the platform's operator. A plain member gets 403 with the reason, anyone
outside the organization 404. A resident reads their own invoices
(``/me/invoices``); another resident's answers 404."""

from __future__ import annotations

import re
from datetime import date, datetime, time
from typing import Annotated, Any

from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.utils.translation import gettext as _
from ninja import Query, Router, Schema, Status
from pydantic import Field

from doorkeep import policy
from doorkeep.api.util import actor
from doorkeep.billing import listings, runs, services
from doorkeep.billing.models import (
    BillingRun,
    Invoice,
    InvoiceStatus,
    Issuer,
    SiteBilling,
    Tariff,
)
from doorkeep.core.errors import Conflict
from doorkeep.gateway.api import ErrorOut
from doorkeep.properties.models import Property

router = Router(tags=["billing"])

Id = Annotated[int, Field(ge=1, le=2**63 - 1)]
# Wide enough for any price a service accepts; the services say what is wrong
# with a negative or too high one (negative_price, bad_amount: 400).
Minor = Annotated[int, Field(ge=-(2**62), le=2**62)]
Rate = Annotated[int, Field(ge=-(2**62), le=2**62)]

ERRORS: dict[int, type[Schema]] = {
    400: ErrorOut,
    403: ErrorOut,
    404: ErrorOut,
    409: ErrorOut,
    422: ErrorOut,
}


# --- schemas ----------------------------------------------------------------------------------


class LaundryPriceOut(Schema):
    id: int
    machine_id: int | None
    program: str = Field(description="Empty: every program of the machine")
    cycle_price_minor: int
    laundry_rate: int = Field(description="Per kWh, in ten-thousandths of the currency")


class TariffOut(Schema):
    id: int
    property_id: int
    valid_from: date
    valid_until: date | None = Field(description="The last day; null: until the next tariff")
    current: bool = Field(description="In force today, in the site's time zone")
    currency: str
    vat_rate: int = Field(description="Basis points: 810 is 8.1 %")
    charging_rate: int = Field(description="Per kWh, in ten-thousandths: 3500 is 0.35")
    charging_low_rate: int | None = Field(description="Per kWh outside the high-tariff hours")
    high_days: str = Field(description="ISO weekdays of the high tariff: 12345 is Monday-Friday")
    high_start: time | None
    high_end: time | None
    laundry_cycle_price_minor: int
    laundry_rate: int = Field(description="Per kWh, in ten-thousandths of the currency")
    monthly_fee_minor: int = Field(description="Per resident and month")
    monthly_fee_label: str
    extra_badge_price_minor: int
    laundry_prices: list[LaundryPriceOut] = Field(
        description="A price of its own for a machine, a program, or a program on a machine"
    )
    created_at: datetime


class LaundryPriceIn(Schema):
    machine_id: Id | None = None
    program: str = Field(default="", max_length=40)
    cycle_price_minor: Minor = 0
    laundry_rate: Rate = 0


class TariffIn(Schema):
    valid_from: date = Field(description="Today at the earliest, in the site's time zone")
    valid_until: date | None = None
    vat_rate: Rate = Field(default=0, description="Basis points, 0 to 5000")
    charging_rate: Rate = 0
    charging_low_rate: Rate | None = Field(
        default=None, description="Needs high_start and high_end"
    )
    high_days: str = Field(default="12345", max_length=7)
    high_start: time | None = None
    high_end: time | None = None
    laundry_cycle_price_minor: Minor = 0
    laundry_rate: Rate = 0
    monthly_fee_minor: Minor = 0
    monthly_fee_label: str = Field(default="", max_length=80)
    extra_badge_price_minor: Minor = 0
    laundry_prices: list[LaundryPriceIn] = Field(default_factory=list, max_length=200)


class IssuerOut(Schema):
    id: int
    organization_id: int | None = Field(description="null: the platform's operator")
    name: str
    street: str
    house_number: str
    postcode: str
    city: str
    country: str
    account: str = Field(description="IBAN or QR-IBAN")
    currency: str
    vat_number: str
    email: str
    number_prefix: str
    next_number: int = Field(description="The number the next invoice or credit note gets")


class IssuerIn(Schema):
    organization_id: Id | None = Field(
        description="The organization that invoices; null: the platform's operator"
    )
    name: str = Field(max_length=70)
    street: str = Field(default="", max_length=70)
    house_number: str = Field(default="", max_length=16)
    postcode: str = Field(max_length=16)
    city: str = Field(max_length=35)
    country: str = Field(default="CH", max_length=2)
    account: str = Field(max_length=42, description="IBAN or QR-IBAN, spaces allowed")
    currency: str = Field(max_length=3, description="CHF or EUR")
    vat_number: str = Field(default="", max_length=30)
    email: str = Field(default="", max_length=254)
    number_prefix: str = Field(default="", max_length=12)


class InvoicingOut(Schema):
    property_id: int
    billing_mode: str
    currency: str
    issuer: IssuerOut | None = Field(description="Who invoices; null: not chosen yet")
    payment_days: int | None


class InvoicingIn(Schema):
    issuer_id: Id
    payment_days: int = Field(default=30, ge=-(2**31), le=2**31)


class InvoiceSummaryOut(Schema):
    id: int
    kind: str = Field(description="invoice or credit_note")
    number: str = Field(description="Empty while a draft")
    status: str = Field(description="draft, open, overdue, paid or credited")
    property_id: int
    property: str
    run_id: int | None
    month: str | None = Field(description="YYYY-MM")
    person_id: int
    person: str
    unit_id: int | None
    unit: str | None
    currency: str
    total_minor: int = Field(description="VAT included")
    vat_minor: int = Field(description="The VAT in the total")
    paid_minor: int
    credited_minor: int = Field(description="Taken off by credit notes")
    open_minor: int = Field(description="Still to pay: total, less payments and credit notes")
    reference: str
    issued_on: date | None
    due_on: date | None
    credits_id: int | None = Field(description="A credit note: the invoice it credits")


class LineOut(Schema):
    position: int
    kind: str = Field(description="charging, laundry, badge, fee or credit")
    description: str
    quantity: str
    amount_minor: int = Field(description="VAT included")
    vat_rate: int


class PaymentOut(Schema):
    id: int
    amount_minor: int
    currency: str
    outcome: str
    booked_on: date | None
    reference: str
    note: str
    created_at: datetime


class InvoiceOut(InvoiceSummaryOut):
    issuer_id: int
    issuer: str
    note: str = Field(description="A credit note: why")
    lines: list[LineOut]
    payments: list[PaymentOut]
    credit_notes: list[InvoiceSummaryOut]
    pdf_url: str | None = Field(description="Once finalized")


class RunOut(Schema):
    id: int
    property_id: int
    month: str = Field(description="YYYY-MM")
    status: str = Field(description="draft or finalized")
    invoices: int
    currency: str
    total_minor: int
    vat_minor: int
    created_at: datetime
    finalized_at: datetime | None


class RunDetailOut(RunOut):
    invoice_list: list[InvoiceSummaryOut]


class DraftIn(Schema):
    month: str = Field(max_length=20, description="YYYY-MM, a month that is over")


class CreditIn(Schema):
    amount_minor: Minor | None = Field(
        default=None, description="Left out: all that is not credited yet"
    )
    reason: str = Field(max_length=300, description="Printed on the credit note")


class InvoiceQuery(Schema):
    status: str | None = Field(None, description="draft, open, overdue, paid or credited")
    month: str | None = Field(None, max_length=20, description="YYYY-MM: the month billed")
    limit: int = Field(100, ge=1, le=1000)
    offset: int = Field(0, ge=0)


# --- helpers -----------------------------------------------------------------------------------


def tariff_out(tariff: Tariff, today: date) -> dict[str, Any]:
    return {
        "id": tariff.pk,
        "property_id": tariff.property_id,
        "valid_from": tariff.valid_from,
        "valid_until": tariff.valid_until,
        "current": tariff.covers(today),
        "currency": tariff.currency,
        "vat_rate": tariff.vat_rate,
        "charging_rate": tariff.charging_rate,
        "charging_low_rate": tariff.charging_low_rate,
        "high_days": tariff.high_days,
        "high_start": tariff.high_start,
        "high_end": tariff.high_end,
        "laundry_cycle_price_minor": tariff.laundry_cycle_price,
        "laundry_rate": tariff.laundry_rate,
        "monthly_fee_minor": tariff.monthly_fee,
        "monthly_fee_label": tariff.monthly_fee_label,
        "extra_badge_price_minor": tariff.extra_badge_price,
        "laundry_prices": [
            {
                "id": p.pk,
                "machine_id": p.machine_id,
                "program": p.program,
                "cycle_price_minor": p.cycle_price,
                "laundry_rate": p.rate,
            }
            for p in tariff.laundry_prices.all()
        ],
        "created_at": tariff.created_at,
    }


def issuer_out(issuer: Issuer) -> dict[str, Any]:
    fields = (
        "name",
        "street",
        "house_number",
        "postcode",
        "city",
        "country",
        "account",
        "currency",
        "vat_number",
        "email",
        "number_prefix",
        "next_number",
    )
    return {
        "id": issuer.pk,
        "organization_id": issuer.organization_id,
        **{name: getattr(issuer, name) for name in fields},
    }


def invoicing_out(prop: Property, billing: SiteBilling | None) -> dict[str, Any]:
    return {
        "property_id": prop.pk,
        "billing_mode": prop.billing_mode,
        "currency": prop.currency,
        "issuer": issuer_out(billing.issuer) if billing else None,
        "payment_days": billing.payment_days if billing else None,
    }


def summary_out(invoice: Invoice, today: date | None = None) -> dict[str, Any]:
    return {
        "id": invoice.pk,
        "kind": invoice.kind,
        "number": invoice.number,
        "status": runs.display_status(invoice, today),
        "property_id": invoice.property_id,
        "property": invoice.property.name,
        "run_id": invoice.run_id,
        "month": invoice.month.strftime("%Y-%m") if invoice.month else None,
        "person_id": invoice.person_id,
        "person": invoice.person.name,
        "unit_id": invoice.unit_id,
        "unit": invoice.unit.label if invoice.unit else None,
        "currency": invoice.currency,
        "total_minor": invoice.total,
        "vat_minor": invoice.vat,
        "paid_minor": invoice.paid,
        "credited_minor": invoice.credited,
        "open_minor": invoice.open_amount,
        "reference": invoice.reference,
        "issued_on": invoice.issued_on,
        "due_on": invoice.due_on,
        "credits_id": invoice.credits_id,
    }


def invoice_out(invoice: Invoice, pdf_url: str) -> dict[str, Any]:
    notes = invoice.credit_notes.select_related("person", "unit", "property").order_by("pk")
    return {
        **summary_out(invoice),
        "issuer_id": invoice.issuer_id,
        "issuer": invoice.issuer.name,
        "note": invoice.note,
        "lines": [
            {
                "position": line.position,
                "kind": line.kind,
                "description": line.description,
                "quantity": line.quantity,
                "amount_minor": line.amount,
                "vat_rate": line.vat_rate,
            }
            for line in invoice.lines.all()
        ],
        "payments": [
            {
                "id": p.pk,
                "amount_minor": p.amount,
                "currency": p.currency,
                "outcome": p.outcome,
                "booked_on": p.booked_on,
                "reference": p.reference,
                "note": p.note,
                "created_at": p.created_at,
            }
            for p in invoice.payments.order_by("created_at", "pk")
        ],
        "credit_notes": [summary_out(n) for n in notes],
        "pdf_url": pdf_url if invoice.status != InvoiceStatus.DRAFT else None,
    }


def run_out(row: listings.RunRow, *, detail: bool = False) -> dict[str, Any]:
    run = row.run
    out: dict[str, Any] = {
        "id": run.pk,
        "property_id": run.property_id,
        "month": run.month.strftime("%Y-%m"),
        "status": run.status,
        "invoices": row.invoices,
        "currency": run.property.currency,
        "total_minor": row.total,
        "vat_minor": row.vat,
        "created_at": run.created_at,
        "finalized_at": run.finalized_at,
    }
    if detail:
        today = services.today_at(run.property)
        out["invoice_list"] = [summary_out(i, today) for i in listings.invoices_of_run(run)]
    return out


def _run_detail(run: BillingRun) -> dict[str, Any]:
    return run_out(listings.run_row(run), detail=True)


def pdf_filename(invoice: Invoice) -> str:
    """The invoice's number as a file name (letters, digits, dots, dashes)."""
    stem = re.sub(r"[^A-Za-z0-9._-]+", "-", invoice.number).strip("-.") or f"invoice-{invoice.pk}"
    return f"{stem}.pdf"


def pdf_response(invoice: Invoice) -> HttpResponse:
    """The PDF as finalized, to download; a draft has none yet (409)."""
    if invoice.status == InvoiceStatus.DRAFT or not invoice.pdf:
        raise Conflict(
            _("A draft invoice has no PDF yet: it is made when its billing run is finalized."),
            code="invoice_draft",
        )
    response = HttpResponse(bytes(invoice.pdf), content_type="application/pdf")
    response["Content-Disposition"] = f'attachment; filename="{pdf_filename(invoice)}"'
    return response


def _spec(body: TariffIn) -> services.TariffSpec:
    return services.TariffSpec(
        valid_from=body.valid_from,
        valid_until=body.valid_until,
        vat_rate=body.vat_rate,
        charging_rate=body.charging_rate,
        charging_low_rate=body.charging_low_rate,
        high_days=body.high_days,
        high_start=body.high_start,
        high_end=body.high_end,
        laundry_cycle_price=body.laundry_cycle_price_minor,
        laundry_rate=body.laundry_rate,
        monthly_fee=body.monthly_fee_minor,
        monthly_fee_label=body.monthly_fee_label,
        extra_badge_price=body.extra_badge_price_minor,
        laundry_prices=[
            services.LaundryPriceSpec(
                machine_id=p.machine_id,
                program=p.program,
                cycle_price=p.cycle_price_minor,
                rate=p.laundry_rate,
            )
            for p in body.laundry_prices
        ],
    )


# --- tariffs ----------------------------------------------------------------------------------


@router.get(
    "properties/{property_id}/tariffs",
    response={200: list[TariffOut], **ERRORS},
    summary="A site's tariffs",
)
def list_tariffs(request: HttpRequest, property_id: int) -> list[dict[str, Any]]:
    """The newest first; `current` marks the one in force today."""
    rows = services.tariffs(actor(request), property_id)
    prop = Property.objects.get(pk=property_id)
    today = services.today_at(prop)
    return [tariff_out(t, today) for t in rows]


@router.post(
    "properties/{property_id}/tariffs",
    response={201: TariffOut, **ERRORS},
    summary="Add a tariff",
)
def add_tariff(request: HttpRequest, property_id: int, body: TariffIn) -> Status[dict[str, Any]]:
    """From `valid_from` (today at the earliest: use that has happened keeps
    its price) to `valid_until` (null: until the next tariff). The tariff in
    force without an end date ends the day before. Errors: `negative_price`,
    `bad_amount`, `bad_vat_rate`, `bad_dates`, `bad_hours`, `bad_laundry_price`,
    `tariff_in_past` (400), `not_found` (a machine of another site, 404),
    `tariff_overlap` (409)."""
    tariff = services.create_tariff(actor(request), property_id, _spec(body))
    return Status(201, tariff_out(tariff, services.today_at(tariff.property)))


@router.delete("tariffs/{tariff_id}", response={204: None, **ERRORS}, summary="Remove a tariff")
def delete_tariff(request: HttpRequest, tariff_id: int) -> Status[None]:
    """Only a tariff that has not started (409 `tariff_started`); the one
    before it runs on as if it had never been."""
    services.delete_tariff(actor(request), tariff_id)
    return Status(204, None)


# --- who invoices -----------------------------------------------------------------------------


@router.get("issuers", response={200: list[IssuerOut], **ERRORS}, summary="Issuers")
def list_issuers(request: HttpRequest, organization_id: int | None = None) -> list[dict[str, Any]]:
    """The platform's issuers and your organizations'; `organization_id`
    narrows to one organization's (and the platform's)."""
    return [
        issuer_out(i) for i in listings.issuers(actor(request), organization_id=organization_id)
    ]


@router.post("issuers", response={201: IssuerOut, **ERRORS}, summary="Add an issuer")
def add_issuer(request: HttpRequest, body: IssuerIn) -> Status[dict[str, Any]]:
    """Who invoices: name, address and the account paid to (a QR-IBAN takes
    QR references, another IBAN RF creditor references). For an
    organization: its lock owner; `organization_id` null: the platform's
    operator. Errors: `bad_iban`, `bad_currency`, `missing` (400)."""
    spec = services.IssuerSpec(
        name=body.name,
        postcode=body.postcode,
        city=body.city,
        account=body.account,
        currency=body.currency,
        street=body.street,
        house_number=body.house_number,
        country=body.country,
        vat_number=body.vat_number,
        email=body.email,
        number_prefix=body.number_prefix,
    )
    issuer = services.create_issuer(actor(request), spec, organization_id=body.organization_id)
    return Status(201, issuer_out(issuer))


@router.get(
    "properties/{property_id}/invoicing",
    response={200: InvoicingOut, **ERRORS},
    summary="Who invoices for a site",
)
def get_invoicing(request: HttpRequest, property_id: int) -> dict[str, Any]:
    """The issuer of a billing-and-payments site and the days an invoice
    gives to pay (the billing mode and the badge price are at
    `…/billing`)."""
    prop, billing = listings.site_billing(actor(request), property_id)
    return invoicing_out(prop, billing)


@router.put(
    "properties/{property_id}/invoicing",
    response={200: InvoicingOut, **ERRORS},
    summary="Choose who invoices for a site",
)
def put_invoicing(request: HttpRequest, property_id: int, body: InvoicingIn) -> dict[str, Any]:
    """`issuer_id`: the platform's or the site's organization's (another's:
    404), in the site's currency (`bad_currency`, 400); `payment_days` 1 to
    120 (`bad_payment_days`, 400). The lock owner or the platform's operator."""
    user = actor(request)
    services.set_site_billing(user, property_id, body.issuer_id, payment_days=body.payment_days)
    prop, billing = listings.site_billing(user, property_id)
    return invoicing_out(prop, billing)


# --- billing runs -----------------------------------------------------------------------------


@router.get(
    "properties/{property_id}/billing-runs",
    response={200: list[RunOut], **ERRORS},
    summary="A site's billing runs",
)
def list_runs(request: HttpRequest, property_id: int) -> list[dict[str, Any]]:
    """The newest month first, with their invoices' count and totals."""
    _prop, rows = listings.runs(actor(request), property_id)
    return [run_out(r) for r in rows]


@router.post(
    "properties/{property_id}/billing-runs",
    response={200: RunDetailOut, 201: RunDetailOut, **ERRORS},
    summary="Draft a month (or draft it again)",
)
def draft_run(request: HttpRequest, property_id: int, body: DraftIn) -> Status[dict[str, Any]]:
    """One invoice per resident for the month's uses not billed yet (and
    earlier ones that were not), the month's fees, VAT and totals: 201 for a
    new draft, 200 when the month's draft is drafted again. Errors:
    `bad_month`, `month_not_over`, `no_issuer` (400), `not_a_billing_site`
    (409: the site uses individual statements), `run_finalized` (409)."""
    user = actor(request)
    services.site_for(user, property_id, policy.Action.VIEW_BILLING)
    month = runs.month_of(body.month)
    existed = BillingRun.objects.filter(property_id=property_id, month=month).exists()
    run = runs.draft_run(user, property_id, month)
    return Status(200 if existed else 201, _run_detail(runs.get_run(user, run.pk)))


@router.get(
    "billing-runs/{run_id}", response={200: RunDetailOut, **ERRORS}, summary="A billing run"
)
def get_run(request: HttpRequest, run_id: int) -> dict[str, Any]:
    """With its invoices (`invoice_list`)."""
    return _run_detail(runs.get_run(actor(request), run_id))


@router.post(
    "billing-runs/{run_id}/finalize",
    response={200: RunDetailOut, **ERRORS},
    summary="Finalize a billing run",
)
def finalize_run(request: HttpRequest, run_id: int) -> dict[str, Any]:
    """Numbers the invoices without gaps (per issuer), dates them, makes
    their PDFs and emails them; they never change after (a correction is a
    credit note). The lock owner or the platform's operator. Errors:
    `no_issuer` (400), `run_finalized` (409)."""
    user = actor(request)
    run = runs.finalize_run(user, run_id)
    return _run_detail(runs.get_run(user, run.pk))


@router.delete(
    "billing-runs/{run_id}", response={204: None, **ERRORS}, summary="Discard a draft run"
)
def discard_run(request: HttpRequest, run_id: int) -> Status[None]:
    """Its uses are free to be billed again. A finalized run stays (409
    `run_finalized`)."""
    runs.discard_run(actor(request), run_id)
    return Status(204, None)


# --- invoices ---------------------------------------------------------------------------------


def _pdf_url(invoice: Invoice) -> str:
    return f"/api/v1/invoices/{invoice.pk}/pdf"


@router.get("invoices/{invoice_id}", response={200: InvoiceOut, **ERRORS}, summary="An invoice")
def get_invoice(request: HttpRequest, invoice_id: int) -> dict[str, Any]:
    """Its lines, payments and credit notes; `status` is open, overdue,
    paid, credited or draft."""
    invoice = runs.get_invoice(actor(request), invoice_id)
    return invoice_out(invoice, _pdf_url(invoice))


@router.get(
    "invoices/{invoice_id}/pdf",
    response={200: None, **ERRORS},
    summary="An invoice's PDF",
    openapi_extra={
        "responses": {200: {"content": {"application/pdf": {}}, "description": "The PDF"}}
    },
)
def get_invoice_pdf(request: HttpRequest, invoice_id: int) -> HttpResponse:
    """As it was finalized (with its QR-bill), named after its number. A
    draft has none (409 `invoice_draft`)."""
    return pdf_response(runs.get_invoice(actor(request), invoice_id))


@router.post(
    "invoices/{invoice_id}/credit-notes",
    response={201: InvoiceOut, **ERRORS},
    summary="Issue a credit note",
)
def credit_invoice(request: HttpRequest, invoice_id: int, body: CreditIn) -> Status[dict[str, Any]]:
    """For `amount_minor` (left out: all that was not credited yet), with the
    reason printed on it; numbered in the issuer's sequence, it takes the
    amount off what the invoice asks for. The lock owner or the platform's
    operator. Errors: `missing_reason`, `bad_amount` (400),
    `not_creditable` (409: a draft, or a credit note)."""
    note = runs.credit_invoice(
        actor(request), invoice_id, reason=body.reason, amount=body.amount_minor
    )
    return Status(201, invoice_out(note, _pdf_url(note)))


def _page(rows: QuerySet[Invoice], query: InvoiceQuery, today: date) -> list[dict[str, Any]]:
    return [summary_out(i, today) for i in rows[query.offset : query.offset + query.limit]]


@router.get(
    "properties/{property_id}/invoices",
    response={200: list[InvoiceSummaryOut], **ERRORS},
    summary="A site's invoices",
)
def site_invoices(
    request: HttpRequest, property_id: int, query: Query[InvoiceQuery]
) -> list[dict[str, Any]]:
    """Invoices and credit notes, newest first (drafts before them);
    `status` open, overdue, paid, credited or draft (`bad_status`, 400),
    `month` YYYY-MM (`bad_month`, 400), `limit` (≤ 1000), `offset`."""
    prop, rows = listings.site_invoices(
        actor(request),
        property_id,
        status=query.status,
        month=listings.month_or_none(query.month),
    )
    return _page(rows, query, services.today_at(prop))


@router.get("me/invoices", response=list[InvoiceSummaryOut], summary="Your invoices")
def my_invoices(request: HttpRequest) -> list[dict[str, Any]]:
    """Your finalized invoices and credit notes, at every site, newest first."""
    rows = runs.my_invoices(actor(request))
    full = Invoice.objects.select_related("person", "unit", "property").in_bulk(
        [r.pk for r in rows]
    )
    return [summary_out(full[r.pk]) for r in rows]
