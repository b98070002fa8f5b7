"""Monthly statements of an individual-statements site in the API: the
summary (JSON, PDF, CSV) and each resident's statement (PDF, CSV). For the
site's owners, managers and read-only collaborators, and the platform's
operator; a site billed by the platform answers 409 `not_a_statements_site`."""

from __future__ import annotations

from typing import Annotated

from django.http import HttpRequest, HttpResponse
from ninja import Router, Schema
from pydantic import Field

from doorkeep.api.util import actor
from doorkeep.billing import statements
from doorkeep.gateway.api import ErrorOut

router = Router(tags=["statements"])

Id = Annotated[int, Field(ge=1, le=2**63 - 1)]
Month = Annotated[str, Field(pattern=r"^[0-9]{4}-[0-9]{2}$", examples=["2026-11"])]
ERRORS: dict[int, type[Schema]] = {
    400: ErrorOut,
    403: ErrorOut,
    404: ErrorOut,
    409: ErrorOut,
}


class StatementRowOut(Schema):
    person_id: int
    resident: str
    unit: str
    uses: int
    energy_wh: int
    amount_minor: int


class StatementsOut(Schema):
    property_id: int
    month: str
    currency: str
    total_minor: int
    residents: list[StatementRowOut]


def _file(body: bytes | str, content_type: str, name: str) -> HttpResponse:
    response = HttpResponse(body, content_type=content_type)
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


@router.get(
    "/properties/{property_id}/statements/{month}",
    response={200: StatementsOut, **ERRORS},
    summary="A month's statements of a site: one row per resident",
)
def month_statements(request: HttpRequest, property_id: Id, month: Month) -> StatementsOut:
    prop, first, lines = statements.summary(actor(request), property_id, month)
    return StatementsOut(
        property_id=prop.pk,
        month=first.strftime("%Y-%m"),
        currency=prop.currency,
        total_minor=sum(line.amount for line in lines),
        residents=[
            StatementRowOut(
                person_id=line.person.pk,
                resident=line.person.name,
                unit=line.unit,
                uses=line.uses,
                energy_wh=line.energy_wh,
                amount_minor=line.amount,
            )
            for line in lines
        ],
    )


@router.get(
    "/properties/{property_id}/statements/{month}/summary.pdf",
    response={200: None, **ERRORS},
    summary="The site's summary of a month as a PDF",
)
def summary_pdf(request: HttpRequest, property_id: Id, month: Month) -> HttpResponse:
    body = statements.summary_pdf(actor(request), property_id, month)
    return _file(body, "application/pdf", f"summary-{property_id}-{month}.pdf")


@router.get(
    "/properties/{property_id}/statements/{month}/uses.csv",
    response={200: None, **ERRORS},
    summary="Every use of the month with its price, as CSV",
)
def month_csv(request: HttpRequest, property_id: Id, month: Month) -> HttpResponse:
    body = statements.statements_csv(actor(request), property_id, month)
    return _file(body, "text/csv; charset=utf-8", f"uses-{property_id}-{month}.csv")


@router.get(
    "/properties/{property_id}/statements/{month}/residents/{person_id}.pdf",
    response={200: None, **ERRORS},
    summary="A resident's statement of the month as a PDF",
)
def resident_pdf(
    request: HttpRequest, property_id: Id, month: Month, person_id: Id
) -> HttpResponse:
    body = statements.statement_pdf(actor(request), property_id, month, person_id)
    return _file(body, "application/pdf", f"statement-{month}-{person_id}.pdf")


@router.get(
    "/properties/{property_id}/statements/{month}/residents/{person_id}.csv",
    response={200: None, **ERRORS},
    summary="A resident's uses of the month with their prices, as CSV",
)
def resident_csv(
    request: HttpRequest, property_id: Id, month: Month, person_id: Id
) -> HttpResponse:
    body = statements.statements_csv(actor(request), property_id, month, person_id)
    return _file(body, "text/csv; charset=utf-8", f"statement-{month}-{person_id}.csv")
