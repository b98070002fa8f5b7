"""Billing in the web UI (issue 14): a site's billing settings (who
invoices, days to pay), its tariffs (add one, remove one that has not
started), its billing runs (draft a month, look at the draft, draft it
again, discard it, finalize it), its invoices (filtered by status and
month), an invoice's page (lines, totals, payments, credit notes, the PDF, a
credit note), and the resident portal's invoices.

Everything is decided by the services (billing.services, billing.runs):
tariffs and runs are for the site's lock owners and building managers,
reading them for read-only collaborators too, finalizing and credit notes
for the lock owner and the platform's operator. A plain member is told why
not, an outsider (and another resident) finds nothing."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

from django.contrib import messages
from django.core.paginator import Paginator
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy as _lazy
from django.views.decorators.http import require_GET, require_POST

from doorkeep import policy
from doorkeep.accounts.models import User
from doorkeep.billing import api as billing_api
from doorkeep.billing import listings, runs, services
from doorkeep.billing import payments as payment_services
from doorkeep.billing.forms import (
    STATUS_LABELS,
    WEEKDAYS,
    CreditForm,
    DeleteTariffForm,
    DraftForm,
    FinalizeForm,
    InvoiceFilterForm,
    IssuerForm,
    SiteBillingForm,
    TariffForm,
    amount_text,
    last_month,
    laundry_prices_formset,
    percent_text,
)
from doorkeep.billing.models import (
    BillingRun,
    Invoice,
    InvoiceKind,
    InvoiceStatus,
    RunStatus,
    SiteBilling,
    Tariff,
)
from doorkeep.billing.pricing import money, rate_text
from doorkeep.billing.references import format_reference
from doorkeep.core.errors import DomainError, NotFound, PermissionDenied
from doorkeep.laundry.models import Machine
from doorkeep.properties.models import BillingMode, Property, zone_of
from doorkeep.web.views.common import _denial, _form_or_page_error, current_user, page_view

Action = policy.Action
INVOICES_PER_PAGE = 50

# Each status's look, with the badge colours the pages already have.
ISSUED = _lazy("Issued")
STATUS_CLASS = {
    "issued": "status-revoked",
    "draft": "sync-pending",
    "open": "status-scheduled",
    "overdue": "sync-failed",
    "paid": "status-active",
    "credited": "status-revoked",
}


# --- what the pages show -------------------------------------------------------------------


@dataclass
class Rights:
    """What the signed-in person may do at a site (asked of the policy and
    the services; the pages show only what they may do)."""

    manage_tariffs: bool
    draft: bool
    finalize: bool


def _rights(user: User, prop: Property) -> Rights:
    operator = policy.is_platform_operator(user)
    manage = policy.can(user, Action.MANAGE_TARIFFS, prop.organization_id, prop.pk)
    try:
        services.require_finalizer(user, prop)
        finalize = True
    except PermissionDenied:
        finalize = False
    return Rights(manage_tariffs=manage, draft=manage or operator, finalize=finalize)


@dataclass
class InvoiceRow:
    invoice: Invoice
    status: str
    total: str
    vat: str
    paid: str
    credited: str
    open: str
    reference: str

    @property
    def status_label(self) -> str:
        if self.status == "issued":
            return str(ISSUED)
        return str(STATUS_LABELS.get(self.status, self.status))

    @property
    def status_class(self) -> str:
        return STATUS_CLASS.get(self.status, "")


def invoice_row(invoice: Invoice, today: date | None = None) -> InvoiceRow:
    """What the pages show of an invoice. A credit note asks for nothing:
    once numbered it is "issued" (the service keeps it open)."""
    currency = invoice.currency
    status = runs.display_status(invoice, today)
    if invoice.kind == InvoiceKind.CREDIT_NOTE and status != "draft":
        status = "issued"
    return InvoiceRow(
        invoice,
        status,
        money(invoice.total, currency),
        money(invoice.vat, currency),
        money(invoice.paid, currency),
        money(invoice.credited, currency),
        money(invoice.open_amount, currency),
        format_reference(invoice.reference) if invoice.reference else "",
    )


@dataclass
class TariffRow:
    tariff: Tariff
    current: bool
    future: bool
    facts: list[tuple[str, str]] = field(default_factory=list)
    laundry_prices: list[str] = field(default_factory=list)
    form: DeleteTariffForm | None = None


def _per_kwh(rate: int, currency: str) -> str:
    return _("%(currency)s %(rate)s per kWh") % {"currency": currency, "rate": rate_text(rate)}


def _days_text(days: str) -> str:
    names = dict(WEEKDAYS)
    return ", ".join(str(names[d]) for d in days if d in names)


def tariff_row(tariff: Tariff, today: date, machines: dict[int, str]) -> TariffRow:
    c = tariff.currency
    facts = [
        (_("VAT"), f"{percent_text(tariff.vat_rate)} %"),
        (_("Charging"), _per_kwh(tariff.charging_rate, c)),
    ]
    if tariff.charging_low_rate is not None and tariff.high_start and tariff.high_end:
        facts.append(
            (
                _("Low tariff"),
                _("%(price)s outside %(start)s–%(end)s on %(days)s")
                % {
                    "price": _per_kwh(tariff.charging_low_rate, c),
                    "start": tariff.high_start.strftime("%H:%M"),
                    "end": tariff.high_end.strftime("%H:%M"),
                    "days": _days_text(tariff.high_days),
                },
            )
        )
    laundry = money(tariff.laundry_cycle_price, c)
    if tariff.laundry_rate:
        laundry = _("%(cycle)s per cycle + %(kwh)s") % {
            "cycle": laundry,
            "kwh": _per_kwh(tariff.laundry_rate, c),
        }
    else:
        laundry = _("%(cycle)s per cycle") % {"cycle": laundry}
    facts.append((_("Laundry"), laundry))
    if tariff.monthly_fee:
        facts.append(
            (
                tariff.monthly_fee_label or _("Monthly fee"),
                _("%(fee)s per month") % {"fee": money(tariff.monthly_fee, c)},
            )
        )
    facts.append((_("Extra badge"), money(tariff.extra_badge_price, c)))
    prices = []
    for price in tariff.laundry_prices.all():
        what = " · ".join(
            part
            for part in (
                machines.get(price.machine_id, "") if price.machine_id else "",
                price.program,
            )
            if part
        )
        amount = money(price.cycle_price, c)
        if price.rate:
            amount += " + " + _per_kwh(price.rate, c)
        prices.append(f"{what}: {amount}")
    return TariffRow(
        tariff,
        current=tariff.covers(today),
        future=tariff.valid_from > today,
        facts=facts,
        laundry_prices=prices,
    )


def _machine_names(prop: Property) -> dict[int, str]:
    """Every machine of the site by id, removed ones too (old prices name them)."""
    return {m.pk: m.label for m in Machine.objects.filter(property=prop)}


def _machines(prop: Property) -> list[tuple[int, str]]:
    return [
        (m.pk, m.label)
        for m in Machine.objects.filter(property=prop, removed_at__isnull=True).order_by(
            "name", "serial"
        )
    ]


def _site_context(user: User, prop: Property, section: str) -> dict[str, Any]:
    return {
        "nav": "locks",
        "prop": prop,
        "section": section,
        "tz": zone_of(prop),
        "rights": _rights(user, prop),
        "billing_site": prop.billing_mode == BillingMode.BILLING_AND_PAYMENTS,
    }


# --- billing settings --------------------------------------------------------------------


def _settings_page(
    request: HttpRequest,
    property_id: int,
    *,
    status: int = 200,
    error: str = "",
    settings_form: SiteBillingForm | None = None,
    issuer_form: IssuerForm | None = None,
) -> HttpResponse:
    user = current_user(request)
    prop, billing = listings.site_billing(user, property_id)
    context = _site_context(user, prop, "settings")
    rights: Rights = context["rights"]
    if (settings_form or issuer_form) and not rights.finalize:
        error = error or policy.denial(Action.FINALIZE_BILLING)
        status, settings_form, issuer_form = 403, None, None
    issuers = listings.issuers_for_site(prop)
    if rights.finalize:
        settings_form = settings_form or SiteBillingForm(
            initial={
                "issuer": billing.issuer_id if billing else None,
                "payment_days": billing.payment_days if billing else 30,
            },
            issuers=issuers,
        )
        issuer_form = issuer_form or IssuerForm(initial={"currency": prop.currency})
    tariffs = services.tariffs(user, prop.pk)
    today = services.today_at(prop)
    current = next((t for t in tariffs if t.covers(today)), None)
    context.update(
        billing=billing,
        issuer_choices=issuers,
        settings_form=settings_form,
        issuer_form=issuer_form,
        current_tariff=tariff_row(current, today, _machine_names(prop)) if current else None,
        error=error,
    )
    return render(request, "web/billing/settings.html", context, status=status)


@require_GET
@page_view
def site_billing(request: HttpRequest, property_id: int) -> HttpResponse:
    return _settings_page(request, property_id)


@require_POST
@page_view
def set_site_issuer(request: HttpRequest, property_id: int) -> HttpResponse:
    user = current_user(request)
    prop, _billing = listings.site_billing(user, property_id)
    form = SiteBillingForm(request.POST, issuers=listings.issuers_for_site(prop))
    if not form.is_valid():
        return _settings_page(request, property_id, status=400, settings_form=form)
    try:
        billing = services.set_site_billing(
            user,
            property_id,
            form.cleaned_data["issuer"],
            payment_days=form.cleaned_data["payment_days"],
        )
    except DomainError as exc:
        error = _form_or_page_error(form, exc)
        return _settings_page(
            request, property_id, status=exc.status, error=error, settings_form=form
        )
    _saved(request, billing)
    return redirect("web:site_billing", property_id=property_id)


def _saved(request: HttpRequest, billing: SiteBilling) -> None:
    messages.success(
        request,
        _("%(issuer)s invoices for this site; invoices give %(days)d days to pay.")
        % {"issuer": billing.issuer.name, "days": billing.payment_days},
    )


@require_POST
@page_view
def add_issuer(request: HttpRequest, property_id: int) -> HttpResponse:
    """A new issuer of the site's organization, chosen for the site at once."""
    user = current_user(request)
    prop, billing = listings.site_billing(user, property_id)
    form = IssuerForm(request.POST)
    if not form.is_valid():
        return _settings_page(request, property_id, status=400, issuer_form=form)
    try:
        with transaction.atomic():
            issuer = services.create_issuer(user, form.spec(), organization_id=prop.organization_id)
            billing = services.set_site_billing(
                user,
                property_id,
                issuer.pk,
                payment_days=billing.payment_days if billing else 30,
            )
    except DomainError as exc:
        error = _form_or_page_error(form, exc)
        return _settings_page(
            request, property_id, status=exc.status, error=error, issuer_form=form
        )
    _saved(request, billing)
    return redirect("web:site_billing", property_id=property_id)


# --- tariffs -----------------------------------------------------------------------------


def _tariffs_page(
    request: HttpRequest,
    property_id: int,
    *,
    status: int = 200,
    error: str = "",
    form: TariffForm | None = None,
    prices: Any = None,
    failed_delete: tuple[int, DeleteTariffForm] | None = None,
) -> HttpResponse:
    user = current_user(request)
    tariffs = services.tariffs(user, property_id)
    prop = services.site_for(user, property_id, Action.VIEW_BILLING)
    context = _site_context(user, prop, "tariffs")
    rights: Rights = context["rights"]
    if (form is not None or failed_delete is not None) and not rights.manage_tariffs:
        error = error or _denial(user, Action.MANAGE_TARIFFS, prop.organization_id, prop.pk)
        status, form, prices, failed_delete = 403, None, None, None
    today = services.today_at(prop)
    names = _machine_names(prop)
    rows = [tariff_row(t, today, names) for t in tariffs]
    machines = _machines(prop)
    if rights.manage_tariffs:
        for row in rows:
            if row.future:
                failed = failed_delete and failed_delete[0] == row.tariff.pk
                row.form = failed_delete[1] if failed and failed_delete else DeleteTariffForm()
                row.form.auto_id = f"id_delete{row.tariff.pk}_%s"
        if form is None:
            current = next((r.tariff for r in rows if r.current), None)
            form = TariffForm(initial=_initial(prop, current, today))
        prices = prices or laundry_prices_formset(machines=machines)
    context.update(
        tariffs=rows,
        today=today,
        form=form,
        prices=prices,
        machines=machines,
        error=error,
    )
    return render(request, "web/billing/tariffs.html", context, status=status)


def _initial(prop: Property, current: Tariff | None, today: date) -> dict[str, Any]:
    """A new tariff's form starts from the one in force (what changes is
    usually one price), from today."""
    if current is None:
        return {
            "valid_from": today,
            "extra_badge_price": amount_text(prop.extra_badge_price_minor),
        }
    return {
        "valid_from": today,
        "vat_rate": percent_text(current.vat_rate),
        "charging_rate": rate_text(current.charging_rate),
        "charging_low_rate": rate_text(current.charging_low_rate)
        if current.charging_low_rate is not None
        else "",
        "high_start": current.high_start,
        "high_end": current.high_end,
        "high_days": list(current.high_days),
        "laundry_cycle_price": amount_text(current.laundry_cycle_price),
        "laundry_rate": rate_text(current.laundry_rate) if current.laundry_rate else "",
        "monthly_fee": amount_text(current.monthly_fee) if current.monthly_fee else "",
        "monthly_fee_label": current.monthly_fee_label,
        "extra_badge_price": amount_text(current.extra_badge_price),
    }


@require_GET
@page_view
def site_tariffs(request: HttpRequest, property_id: int) -> HttpResponse:
    return _tariffs_page(request, property_id)


@require_POST
@page_view
def add_tariff(request: HttpRequest, property_id: int) -> HttpResponse:
    user = current_user(request)
    prop = services.site_for(user, property_id, Action.VIEW_BILLING)
    form = TariffForm(request.POST)
    prices = laundry_prices_formset(request.POST, machines=_machines(prop))
    form_ok = form.is_valid()
    if not (prices.is_valid() and form_ok):
        return _tariffs_page(request, property_id, status=400, form=form, prices=prices)
    specs = [spec for spec in (f.spec() for f in prices.forms) if spec is not None]
    try:
        tariff = services.create_tariff(user, property_id, form.spec(specs))
    except DomainError as exc:
        error = _form_or_page_error(form, exc)
        return _tariffs_page(
            request, property_id, status=exc.status, error=error, form=form, prices=prices
        )
    messages.success(
        request,
        _("The tariff from %(day)s is added.") % {"day": tariff.valid_from.isoformat()},
    )
    return redirect(reverse("web:site_tariffs", kwargs={"property_id": property_id}))


@require_POST
@page_view
def delete_tariff(request: HttpRequest, tariff_id: int) -> HttpResponse:
    user = current_user(request)
    tariff = services.get_tariff(user, tariff_id, Action.VIEW_BILLING)
    form = DeleteTariffForm(request.POST)
    if not form.is_valid():
        return _tariffs_page(
            request, tariff.property_id, status=400, failed_delete=(tariff.pk, form)
        )
    try:
        services.delete_tariff(user, tariff_id)
    except DomainError as exc:
        if isinstance(exc, NotFound):
            raise
        return _tariffs_page(request, tariff.property_id, status=exc.status, error=exc.message)
    messages.success(
        request,
        _("The tariff from %(day)s is removed.") % {"day": tariff.valid_from.isoformat()},
    )
    return redirect("web:site_tariffs", property_id=tariff.property_id)


# --- billing runs ------------------------------------------------------------------------


@dataclass
class RunLine:
    run: BillingRun
    invoices: int
    total: str
    vat: str


def _runs_page(
    request: HttpRequest,
    property_id: int,
    *,
    status: int = 200,
    error: str = "",
    form: DraftForm | None = None,
) -> HttpResponse:
    user = current_user(request)
    prop, rows = listings.runs(user, property_id)
    context = _site_context(user, prop, "runs")
    rights: Rights = context["rights"]
    if form is not None and not rights.draft:
        error = error or _denial(user, Action.MANAGE_TARIFFS, prop.organization_id, prop.pk)
        status, form = 403, None
    today = services.today_at(prop)
    if rights.draft and context["billing_site"]:
        form = form or DraftForm(initial={"month": last_month(today)})
    billing = SiteBilling.objects.filter(property=prop).select_related("issuer").first()
    context.update(
        runs=[
            RunLine(r.run, r.invoices, money(r.total, prop.currency), money(r.vat, prop.currency))
            for r in rows
        ],
        form=form,
        billing=billing,
        error=error,
    )
    return render(request, "web/billing/runs.html", context, status=status)


@require_GET
@page_view
def site_billing_runs(request: HttpRequest, property_id: int) -> HttpResponse:
    return _runs_page(request, property_id)


@require_POST
@page_view
def draft_billing_run(request: HttpRequest, property_id: int) -> HttpResponse:
    user = current_user(request)
    services.site_for(user, property_id, Action.VIEW_BILLING)
    form = DraftForm(request.POST)
    if not form.is_valid():
        return _runs_page(request, property_id, status=400, form=form)
    try:
        run = runs.draft_run(user, property_id, form.cleaned_data["month"])
    except DomainError as exc:
        # About the site or the month's run, not about what was typed: at the top.
        site_level = exc.code in ("not_a_billing_site", "no_issuer", "run_finalized")
        error = exc.message if site_level else _form_or_page_error(form, exc)
        return _runs_page(request, property_id, status=exc.status, error=error, form=form)
    _drafted(request, run)
    return redirect("web:billing_run", run_id=run.pk)


def _drafted(request: HttpRequest, run: BillingRun) -> None:
    count = run.invoices.count()
    messages.success(
        request,
        _("%(month)s is drafted: %(n)d invoices. Look them over, then finalize.")
        % {"month": run.month.strftime("%Y-%m"), "n": count},
    )


def _run_page(
    request: HttpRequest,
    run_id: int,
    *,
    status: int = 200,
    error: str = "",
    finalize_form: FinalizeForm | None = None,
) -> HttpResponse:
    user = current_user(request)
    run = runs.get_run(user, run_id)
    prop = run.property
    context = _site_context(user, prop, "runs")
    rights: Rights = context["rights"]
    if finalize_form is not None and not rights.finalize:
        error = error or policy.denial(Action.FINALIZE_BILLING)
        status, finalize_form = 403, None
    draft = run.status == RunStatus.DRAFT
    if draft and rights.finalize:
        finalize_form = finalize_form or FinalizeForm()
    row = listings.run_row(run)
    today = services.today_at(prop)
    context.update(
        run=run,
        draft=draft,
        total=money(row.total, prop.currency),
        vat=money(row.vat, prop.currency),
        invoices=[invoice_row(i, today) for i in listings.invoices_of_run(run)],
        finalize_form=finalize_form,
        error=error,
    )
    return render(request, "web/billing/run.html", context, status=status)


@require_GET
@page_view
def billing_run(request: HttpRequest, run_id: int) -> HttpResponse:
    return _run_page(request, run_id)


@require_POST
@page_view
def redraft_billing_run(request: HttpRequest, run_id: int) -> HttpResponse:
    user = current_user(request)
    run = runs.get_run(user, run_id)
    try:
        run = runs.draft_run(user, run.property_id, run.month)
    except DomainError as exc:
        if isinstance(exc, NotFound):
            raise
        return _run_page(request, run_id, status=exc.status, error=exc.message)
    _drafted(request, run)
    return redirect("web:billing_run", run_id=run.pk)


@require_POST
@page_view
def discard_billing_run(request: HttpRequest, run_id: int) -> HttpResponse:
    user = current_user(request)
    run = runs.get_run(user, run_id)
    try:
        runs.discard_run(user, run_id)
    except DomainError as exc:
        if isinstance(exc, NotFound):
            raise
        return _run_page(request, run_id, status=exc.status, error=exc.message)
    messages.success(
        request,
        _("The draft of %(month)s is discarded; its uses will be billed by a later run.")
        % {"month": run.month.strftime("%Y-%m")},
    )
    return redirect("web:site_billing_runs", property_id=run.property_id)


@require_POST
@page_view
def finalize_billing_run(request: HttpRequest, run_id: int) -> HttpResponse:
    form = FinalizeForm(request.POST)
    if not form.is_valid():
        return _run_page(request, run_id, status=400, finalize_form=form)
    try:
        run = runs.finalize_run(current_user(request), run_id)
    except DomainError as exc:
        if isinstance(exc, NotFound):
            raise
        return _run_page(request, run_id, status=exc.status, error=exc.message)
    messages.success(
        request,
        _("%(month)s is finalized: %(n)d invoices are numbered and on their way.")
        % {"month": run.month.strftime("%Y-%m"), "n": run.invoices.count()},
    )
    return redirect("web:billing_run", run_id=run.pk)


# --- a site's invoices -------------------------------------------------------------------


@require_GET
@page_view
def site_invoices(request: HttpRequest, property_id: int) -> HttpResponse:
    user = current_user(request)
    form = InvoiceFilterForm(request.GET or None)
    valid = form.is_valid() if form.is_bound else True
    data = form.cleaned_data if form.is_bound and valid else {}
    prop, rows = listings.site_invoices(
        user,
        property_id,
        status=data.get("status") or None,
        month=data.get("month"),
    )
    page = Paginator(rows, INVOICES_PER_PAGE).get_page(request.GET.get("page"))
    today = services.today_at(prop)
    context = _site_context(user, prop, "invoices")
    context.update(
        form=form,
        page=page,
        invoices=[invoice_row(i, today) for i in page],
    )
    return render(request, "web/billing/invoices.html", context, status=200 if valid else 400)


# --- an invoice --------------------------------------------------------------------------


@dataclass
class LineRow:
    kind: str
    description: str
    quantity: str
    amount: str
    vat_rate: str


@dataclass
class PaymentRow:
    payment: Any
    amount: str


def _invoice_page(
    request: HttpRequest,
    invoice_id: int,
    *,
    portal: bool,
    status: int = 200,
    error: str = "",
    credit_form: CreditForm | None = None,
) -> HttpResponse:
    user = current_user(request)
    invoice = runs.get_invoice(user, invoice_id)
    own = invoice.person.user_id == user.pk
    if portal and not own:
        raise NotFound(_("Invoice not found."))
    try:
        services.require_finalizer(user, invoice.property)
        can_credit = not portal
    except PermissionDenied:
        can_credit = False
    if credit_form is not None and not can_credit:
        error = error or policy.denial(Action.FINALIZE_BILLING)
        status, credit_form = 403, None
    creditable = (
        invoice.kind == InvoiceKind.INVOICE
        and invoice.status != InvoiceStatus.DRAFT
        and invoice.total > invoice.credited
    )
    if can_credit and creditable:
        credit_form = credit_form or CreditForm()
    currency = invoice.currency
    notes = invoice.credit_notes.select_related("person", "unit", "property").order_by("pk")
    pdf_url = (
        reverse("web:portal_invoice_pdf", kwargs={"invoice_id": invoice.pk})
        if portal
        else reverse("web:invoice_pdf", kwargs={"invoice_id": invoice.pk})
    )
    context = {
        "nav": "portal" if portal else "locks",
        "portal": portal,
        "prop": invoice.property,
        "invoice": invoice,
        "row": invoice_row(invoice),
        "lines": [
            LineRow(
                line.get_kind_display(),
                line.description,
                line.quantity,
                money(line.amount, currency),
                f"{percent_text(line.vat_rate)} %",
            )
            for line in invoice.lines.all()
        ],
        "payments": [
            PaymentRow(p, money(p.amount, p.currency))
            for p in invoice.payments.order_by("created_at", "pk")
        ],
        "credit_notes": [invoice_row(n) for n in notes],
        "credit_form": credit_form,
        "pdf_url": pdf_url if invoice.status != InvoiceStatus.DRAFT and invoice.pdf else "",
        # Marking as paid (web/billing/payment_form.html, web:invoice-mark-paid).
        "can_mark_paid": not portal and payment_services.can_mark_paid(user, invoice),
        "error": error,
    }
    return render(request, "web/billing/invoice.html", context, status=status)


@require_GET
@page_view
def invoice_detail(request: HttpRequest, invoice_id: int) -> HttpResponse:
    user = current_user(request)
    invoice = runs.get_invoice(user, invoice_id)
    if invoice.person.user_id == user.pk:
        try:
            services.site_for(user, invoice.property_id, Action.VIEW_BILLING)
        except DomainError:  # their own invoice, not their site's billing: the portal's page
            return redirect("web:portal_invoice", invoice_id=invoice.pk)
    return _invoice_page(request, invoice_id, portal=False)


@require_GET
@page_view
def invoice_pdf(request: HttpRequest, invoice_id: int) -> HttpResponse:
    return billing_api.pdf_response(runs.get_invoice(current_user(request), invoice_id))


@require_POST
@page_view
def credit_invoice(request: HttpRequest, invoice_id: int) -> HttpResponse:
    user = current_user(request)
    runs.get_invoice(user, invoice_id)  # another organization's: 404
    form = CreditForm(request.POST)
    if not form.is_valid():
        return _invoice_page(request, invoice_id, portal=False, status=400, credit_form=form)
    try:
        note = runs.credit_invoice(
            user,
            invoice_id,
            reason=form.cleaned_data["reason"],
            amount=form.cleaned_data["amount"],
        )
    except DomainError as exc:
        if isinstance(exc, NotFound):
            raise
        error = _form_or_page_error(form, exc)
        return _invoice_page(
            request, invoice_id, portal=False, status=exc.status, error=error, credit_form=form
        )
    messages.success(
        request,
        _("Credit note %(number)s for %(amount)s is issued and sent.")
        % {"number": note.number, "amount": money(note.total, note.currency)},
    )
    return redirect("web:invoice", invoice_id=invoice_id)


# --- the resident portal -----------------------------------------------------------------


@require_GET
@page_view
def portal_invoices(request: HttpRequest) -> HttpResponse:
    user = current_user(request)
    rows = runs.my_invoices(user)
    full = Invoice.objects.select_related("person", "unit", "property").in_bulk(
        [r.pk for r in rows]
    )
    return render(
        request,
        "web/billing/portal_invoices.html",
        {"nav": "portal", "invoices": [invoice_row(full[r.pk]) for r in rows]},
    )


@require_GET
@page_view
def portal_invoice(request: HttpRequest, invoice_id: int) -> HttpResponse:
    return _invoice_page(request, invoice_id, portal=True)


@require_GET
@page_view
def portal_invoice_pdf(request: HttpRequest, invoice_id: int) -> HttpResponse:
    user = current_user(request)
    invoice = runs.get_invoice(user, invoice_id)
    if invoice.person.user_id != user.pk:
        raise NotFound(_("Invoice not found."))
    return billing_api.pdf_response(invoice)
