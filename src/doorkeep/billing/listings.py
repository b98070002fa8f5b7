"""Reads of a site's billing that the web pages and the API share: the
issuers one may choose from, a site's billing settings, its billing runs
with their totals, a run's invoices, a site's invoices by status and month.
Each asks the policy first (``services.site_for``): another organization's
site answers 404, a role that may not see billing 403."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING

from django.db.models import Count, F, Q, QuerySet, Sum
from django.utils.translation import gettext as _

from doorkeep import policy
from doorkeep.billing.models import (
    BillingRun,
    Invoice,
    InvoiceKind,
    InvoiceStatus,
    Issuer,
    SiteBilling,
)
from doorkeep.billing.runs import month_of
from doorkeep.billing.services import site_for, today_at
from doorkeep.core.errors import InvalidInput, NotFound
from doorkeep.properties.models import Property

if TYPE_CHECKING:
    from doorkeep.accounts.models import User

VIEW = policy.Action.VIEW_BILLING

# What a person reads as an invoice's status (runs.display_status).
STATUSES = ("draft", "open", "overdue", "paid", "credited")


def issuers(actor: User, *, organization_id: int | None = None) -> list[Issuer]:
    """The platform's issuers and those of the organizations whose billing
    the actor may see (the platform's operator: every issuer). With
    ``organization_id``: that organization's and the platform's; an
    organization the actor cannot see answers 404."""
    operator = policy.is_platform_operator(actor)
    rows = Issuer.objects.all()
    if organization_id is not None:
        if not operator and not policy.can(actor, VIEW, organization_id):
            raise NotFound(_("Organization not found."))
        rows = rows.filter(Q(organization__isnull=True) | Q(organization_id=organization_id))
    elif not operator:
        rows = rows.filter(
            Q(organization__isnull=True) | Q(organization__in=policy.organizations(actor, VIEW))
        )
    return list(rows.order_by("organization_id", "name", "pk"))


def issuers_for_site(prop: Property) -> list[Issuer]:
    """Who may invoice for ``prop`` (the caller has checked the actor may
    see its billing): the platform's issuers and its organization's, in
    the site's currency."""
    return list(
        Issuer.objects.filter(
            Q(organization__isnull=True) | Q(organization_id=prop.organization_id),
            currency=prop.currency,
        ).order_by("organization_id", "name", "pk")
    )


def site_billing(actor: User, property_id: int) -> tuple[Property, SiteBilling | None]:
    """The site and how it invoices (None: no issuer chosen yet)."""
    prop = site_for(actor, property_id, VIEW)
    billing = SiteBilling.objects.select_related("issuer").filter(property=prop).first()
    return prop, billing


@dataclass
class RunRow:
    run: BillingRun
    invoices: int
    total: int  # minor units, VAT included
    vat: int


def _totals(runs: QuerySet[BillingRun]) -> list[RunRow]:
    only_invoices = Q(invoices__kind=InvoiceKind.INVOICE)
    rows = runs.annotate(
        n=Count("invoices", filter=only_invoices),
        sum_total=Sum("invoices__total", filter=only_invoices),
        sum_vat=Sum("invoices__vat", filter=only_invoices),
    )
    return [RunRow(r, r.n, r.sum_total or 0, r.sum_vat or 0) for r in rows]


def runs(actor: User, property_id: int) -> tuple[Property, list[RunRow]]:
    """The site's billing runs, the newest month first, with their totals."""
    prop = site_for(actor, property_id, VIEW)
    return prop, _totals(BillingRun.objects.filter(property=prop).order_by("-month", "-pk"))


def run_row(run: BillingRun) -> RunRow:
    return _totals(BillingRun.objects.filter(pk=run.pk))[0]


def invoices_of_run(run: BillingRun) -> list[Invoice]:
    """A run's invoices (the caller got the run through ``runs.get_run``),
    by unit and person."""
    return list(
        Invoice.objects.filter(run=run)
        .select_related("person", "unit", "property")
        .order_by("unit__label", "person__name", "pk")
    )


def _overdue(today: date) -> Q:
    return Q(
        kind=InvoiceKind.INVOICE,
        status=InvoiceStatus.OPEN,
        due_on__lt=today,
        total__gt=F("paid") + F("credited"),
    )


def month_or_none(value: str | None) -> date | None:
    """A month as typed (YYYY-MM), or None when nothing is typed."""
    if value is None or not str(value).strip():
        return None
    return month_of(value)


def site_invoices(
    actor: User, property_id: int, *, status: str | None = None, month: date | None = None
) -> tuple[Property, QuerySet[Invoice]]:
    """The site's invoices and credit notes, newest first; ``status`` as a
    person reads it (open, overdue, paid, credited, draft), ``month`` the
    month billed."""
    prop = site_for(actor, property_id, VIEW)
    rows = Invoice.objects.filter(property=prop)
    if status:
        if status not in STATUSES:
            raise InvalidInput(
                _("The status is one of %(statuses)s.") % {"statuses": ", ".join(STATUSES)},
                code="bad_status",
            )
        today = today_at(prop)
        if status == "overdue":
            rows = rows.filter(_overdue(today))
        elif status == "open":
            rows = rows.filter(status=InvoiceStatus.OPEN).exclude(_overdue(today))
        else:
            rows = rows.filter(status=status)
    if month is not None:
        rows = rows.filter(month=month)
    rows = rows.select_related("person", "unit", "property", "credits").order_by(
        F("issued_on").desc(nulls_first=True), "-pk"
    )
    return prop, rows
