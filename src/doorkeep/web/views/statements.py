"""Monthly statements of an individual-statements site in the web UI (issue
14, item 5): a month's summary per resident, with each resident's
statement and the site's summary as PDF, and the uses as CSV."""

from __future__ import annotations

from datetime import timedelta

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from doorkeep import policy
from doorkeep.billing import pricing, statements
from doorkeep.billing.runs import month_of
from doorkeep.billing.services import site_for, today_at
from doorkeep.core.errors import InvalidInput
from doorkeep.web.views.common import current_user, page_view


def _file(body: bytes | str, content_type: str, name: str) -> HttpResponse:
    response = HttpResponse(body, content_type=content_type)
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


@require_GET
@page_view
def site_statements(request: HttpRequest, property_id: int) -> HttpResponse:
    user = current_user(request)
    asked = request.GET.get("month", "")
    error = ""
    try:
        month = month_of(asked) if asked else None
    except InvalidInput as exc:
        month, error = None, exc.message
    if month is None:  # last month, in the site's time zone
        site = site_for(user, property_id, policy.Action.VIEW_BILLING)
        month = (today_at(site).replace(day=1) - timedelta(days=1)).replace(day=1)
    prop, first, lines = statements.summary(user, property_id, month)
    total = sum(line.amount for line in lines)
    return render(
        request,
        "web/statements/site.html",
        {
            "nav": "locks",
            "prop": prop,
            "month": first,
            "month_text": first.strftime("%Y-%m"),
            "previous": (first - timedelta(days=1)).replace(day=1).strftime("%Y-%m"),
            "following": (first + timedelta(days=32)).replace(day=1).strftime("%Y-%m"),
            "rows": [
                {
                    "person": line.person,
                    "unit": line.unit,
                    "uses": line.uses,
                    "energy_kwh": f"{line.energy_wh / 1000:.2f}",
                    "amount": pricing.money(line.amount, prop.currency),
                }
                for line in lines
            ],
            "total": pricing.money(total, prop.currency),
            "error": error,
        },
        status=400 if error else 200,
    )


@require_GET
@page_view
def statement_pdf(
    request: HttpRequest, property_id: int, month: str, person_id: int
) -> HttpResponse:
    body = statements.statement_pdf(current_user(request), property_id, month, person_id)
    return _file(body, "application/pdf", f"statement-{month}-{person_id}.pdf")


@require_GET
@page_view
def statement_csv(
    request: HttpRequest, property_id: int, month: str, person_id: int
) -> HttpResponse:
    body = statements.statements_csv(current_user(request), property_id, month, person_id)
    return _file(body, "text/csv; charset=utf-8", f"statement-{month}-{person_id}.csv")


@require_GET
@page_view
def summary_pdf(request: HttpRequest, property_id: int, month: str) -> HttpResponse:
    body = statements.summary_pdf(current_user(request), property_id, month)
    return _file(body, "application/pdf", f"summary-{property_id}-{month}.pdf")


@require_GET
@page_view
def month_csv(request: HttpRequest, property_id: int, month: str) -> HttpResponse:
    body = statements.statements_csv(current_user(request), property_id, month)
    return _file(body, "text/csv; charset=utf-8", f"uses-{property_id}-{month}.csv")
