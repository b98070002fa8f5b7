"""Monthly statements of an individual-statements site: the summary per
resident, each resident's statement (PDF, CSV) with every use and its
price, for the owner and not for outsiders; a billing site has none."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime
from typing import Any

import pypdfium2 as pdfium
import pytest

from doorkeep.billing import statements
from doorkeep.billing.models import Use, UseKind
from doorkeep.core.errors import Conflict, NotFound
from doorkeep.properties.models import BillingMode, Property
from doorkeep.residents.services import ResidentSpec, add_resident, add_unit

pytestmark = pytest.mark.django_db


def _use(
    prop: Property, person_id: int, unit_id: int, day: date, amount: int, label: str, request: Any
) -> Use:
    moment = datetime(day.year, day.month, day.day, 10, tzinfo=UTC)
    return Use.objects.create(
        organization_id=prop.organization_id,
        property=prop,
        kind=UseKind.BADGE,
        badge_request=request,
        person_id=person_id,
        unit_id=unit_id,
        started_at=moment,
        ended_at=moment,
        day=day,
        label=label,
        energy_wh=1500,
        currency=prop.currency,
        amount=amount,
    )


@pytest.fixture
def statement_site(world: Any) -> dict[str, Any]:
    from doorkeep.badges.models import BadgeRequest

    prop = world.prop
    unit = add_unit(world.alice, prop.pk, "S1")
    resident = add_resident(
        world.alice,
        prop.pk,
        ResidentSpec(
            name="Zoë Ferré", email="zoe@example.com", move_in=date(2025, 1, 1), unit_id=unit.pk
        ),
    )
    made = []
    for n, (day, amount, label) in enumerate(
        [
            (date(2026, 10, 3), 250, "Washer · 40°C"),
            (date(2026, 10, 28), 300, '=HYPERLINK("x")'),
            (date(2026, 11, 1), 999, "November"),
        ]
    ):
        request = BadgeRequest.objects.create(
            organization_id=prop.organization_id,
            property=prop,
            person_id=resident.person_id,
            extra=True,
            price_minor=amount,
            note=str(n),
        )
        made.append(_use(prop, resident.person_id, unit.pk, day, amount, label, request))
    return {"prop": prop, "person_id": resident.person_id, "unit": unit}


def test_the_summary_counts_each_residents_month(
    world: Any, statement_site: dict[str, Any]
) -> None:
    prop, rows_month = statement_site["prop"], "2026-10"
    _prop, first, lines = statements.summary(world.alice, prop.pk, rows_month)
    assert first == date(2026, 10, 1)
    [line] = lines
    assert (line.person.name, line.unit, line.uses, line.amount) == ("Zoë Ferré", "S1", 2, 550)


def test_a_residents_csv_lists_each_use_with_its_price_and_guards_formulas(
    world: Any, statement_site: dict[str, Any]
) -> None:
    text = statements.statements_csv(
        world.alice, statement_site["prop"].pk, "2026-10", statement_site["person_id"]
    )
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [r["amount"] for r in rows] == ["2.50", "3.00"]
    assert rows[1]["what"].startswith("'=")  # never a formula in a spreadsheet


def test_the_statement_pdf_carries_the_uses_and_the_total(
    world: Any, statement_site: dict[str, Any]
) -> None:
    body = statements.statement_pdf(
        world.alice, statement_site["prop"].pk, "2026-10", statement_site["person_id"]
    )
    text = "".join(page.get_textpage().get_text_range() for page in pdfium.PdfDocument(body))
    assert "Zoë Ferré" in text
    assert "5.50" in text
    assert "November" not in text


def test_outsiders_get_404_and_billing_sites_have_no_statements(
    world: Any, statement_site: dict[str, Any]
) -> None:
    prop = statement_site["prop"]
    with pytest.raises(NotFound):
        statements.summary(world.charlie, prop.pk, "2026-10")
    Property.objects.filter(pk=prop.pk).update(billing_mode=BillingMode.BILLING_AND_PAYMENTS)
    with pytest.raises(Conflict):
        statements.summary(world.alice, prop.pk, "2026-10")


def test_the_api_answers_json_pdf_and_csv(world: Any, statement_site: dict[str, Any]) -> None:
    prop, person = statement_site["prop"], statement_site["person_id"]
    client = world.bearer(world.alice)
    answer = client.get(f"/api/v1/properties/{prop.pk}/statements/2026-10")
    assert answer.status_code == 200, answer.content
    assert answer.json()["total_minor"] == 550
    pdf = client.get(f"/api/v1/properties/{prop.pk}/statements/2026-10/residents/{person}.pdf")
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
    summary = client.get(f"/api/v1/properties/{prop.pk}/statements/2026-10/summary.pdf")
    assert summary.status_code == 200 and summary["Content-Type"] == "application/pdf"
    assert client.get(f"/api/v1/properties/{prop.pk}/statements/2026-13").status_code in (400, 422)
    outsider = world.bearer(world.charlie)
    assert outsider.get(f"/api/v1/properties/{prop.pk}/statements/2026-10").status_code == 404


def test_the_statements_page_lists_residents_with_their_documents(
    world: Any, statement_site: dict[str, Any]
) -> None:
    prop, person = statement_site["prop"], statement_site["person_id"]
    client = world.client(world.alice)
    page = client.get(f"/properties/{prop.pk}/statements/?month=2026-10")
    assert page.status_code == 200
    text = page.content.decode()
    assert "Zoë Ferré" in text and "EUR 5.50" in text
    pdf = client.get(f"/properties/{prop.pk}/statements/2026-10/{person}.pdf")
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
    assert client.get(f"/properties/{prop.pk}/statements/?month=2026-13").status_code == 400
    outsider = world.client(world.charlie)
    assert outsider.get(f"/properties/{prop.pk}/statements/?month=2026-10").status_code == 404
