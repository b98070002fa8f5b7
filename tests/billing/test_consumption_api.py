"""Consumption in the API: /me/consumption (months, a month's days and
uses, CSV), and a site's, a unit's and a resident's for the site's owners,
managers and read-only collaborators; a bad month or year is a 422 that
says why (consumption_world.py describes the data)."""

from __future__ import annotations

import csv
import io
from typing import Any

import pytest
from django.test import Client

from billing.consumption_world import Consumers, build
from doorkeep.accounts.services import create_token


@pytest.fixture
def c(world: Any) -> Consumers:
    return build(world)


def bearer(user: Any) -> Client:
    _row, token = create_token(user, "test")
    return Client(headers={"authorization": f"Bearer {token}"})


def ok(response: Any) -> Any:
    assert response.status_code == 200, (response.status_code, response.content[:400])
    return response.json()


def refused(response: Any, status: int, code: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, (response.status_code, response.content[:400])
    body = response.json()
    assert body["message"].strip()
    if code is not None:
        assert body["code"] == code, body
    return body


def csv_lines(response: Any) -> list[dict[str, str]]:
    assert response.status_code == 200, (response.status_code, response.content[:400])
    assert response["Content-Type"].startswith("text/csv")
    lines = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    return [dict(zip(lines[0], line, strict=True)) for line in lines[1:]]


def test_my_months_sum_energy_per_kind_and_cost_per_currency(c: Consumers) -> None:
    body = ok(bearer(c.rosa).get("/api/v1/me/consumption?year=2025"))

    assert (body["year"], body["first_month"], body["last_month"]) == (2025, "2025-01", "2025-12")
    assert body["currencies"] == ["CHF", "EUR"]
    july = {m["month"]: m for m in body["months"]}["2025-07"]
    assert july["uses"] == 4
    assert july["laundry"] == {"uses": 2, "energy_wh": 1_700}
    assert july["charging"] == {"uses": 1, "energy_wh": 4_000}
    assert july["badge"] == {"uses": 1, "energy_wh": 0}
    assert july["costs"] == [
        {
            "currency": "CHF",
            "charging": 0,
            "laundry": 259,
            "badge": 1500,
            "total": 1759,
            "total_text": "CHF 17.59",
        },
        {
            "currency": "EUR",
            "charging": 100,
            "laundry": 300,
            "badge": 0,
            "total": 400,
            "total_text": "EUR 4.00",
        },
    ]
    assert [cost["total"] for cost in body["total"]["costs"]] == [2936, 400]


def test_my_month_has_its_days_and_uses(c: Consumers) -> None:
    body = ok(bearer(c.rosa).get("/api/v1/me/consumption/2025-04"))

    assert body["month"] == "2025-04"
    assert len(body["days"]) == 30
    assert body["days"][0]["day"] == "2025-04-01"
    assert body["days"][0]["charging"] == {"uses": 1, "energy_wh": 20_500}
    assert body["uses_count"] == 1
    (use,) = body["uses"]
    assert (use["kind"], use["amount"], use["currency"], use["unit"]) == (
        "charging",
        615,
        "CHF",
        "A-12",
    )
    assert use["started_at"].startswith("2025-03-31T22:30")  # UTC; April 1 at the site
    assert body["units"] is None and body["residents"] is None


def test_my_month_pages_its_uses(c: Consumers) -> None:
    body = ok(bearer(c.rosa).get("/api/v1/me/consumption/2025-07?limit=2&offset=1"))

    assert body["uses_count"] == 4
    assert [u["day"] for u in body["uses"]] == ["2025-07-03", "2025-07-04"]


def test_my_csv_of_a_year_and_of_a_month(c: Consumers) -> None:
    rosa = bearer(c.rosa)
    year = rosa.get("/api/v1/me/consumption.csv?year=2025")
    assert "doorkeep-my-consumption-2025.csv" in year["Content-Disposition"]
    assert len(csv_lines(year)) == 7

    month = csv_lines(rosa.get(f"/api/v1/me/consumption/2025-07.csv?property_id={c.shed.pk}"))
    assert [(m["label"], m["amount"], m["currency"]) for m in month] == [
        ("'+Washer 1 · Eco 40", "3.00", "EUR"),
        ("Shed charger", "1.00", "EUR"),
    ]


def test_my_consumption_holds_only_my_own_uses(c: Consumers) -> None:
    body = ok(bearer(c.bruno).get("/api/v1/me/consumption?year=2025"))

    assert body["total"]["uses"] == 1
    assert body["total"]["costs"][0]["total"] == 210
    refused(bearer(c.bruno).get(f"/api/v1/me/consumption?property_id={c.shed.pk}"), 404)
    # someone with no use at all: an empty year, not an error
    empty = ok(bearer(c.world.charlie).get("/api/v1/me/consumption?year=2025"))
    assert empty["total"]["uses"] == 0 and empty["currencies"] == []


@pytest.mark.parametrize(
    ("url", "code", "message"),
    [
        ("/api/v1/me/consumption/2026-13", "invalid_month", "2026-13 is not a month"),
        ("/api/v1/me/consumption/2026-00.csv", "invalid_month", "is not a month"),
        ("/api/v1/me/consumption/1999-01", "invalid_year", "between 2000 and 2100"),
        ("/api/v1/me/consumption/2026-3", "validation_error", "month"),
        ("/api/v1/me/consumption?year=1999", "invalid_year", "between 2000 and 2100"),
        ("/api/v1/me/consumption?year=99999999999", "invalid_year", "between 2000 and 2100"),
        ("/api/v1/me/consumption.csv?year=2101", "invalid_year", "between 2000 and 2100"),
        ("/api/v1/me/consumption?year=twenty", "validation_error", "year"),
        ("/api/v1/me/consumption/2026-01?limit=0", "validation_error", "limit"),
    ],
)
def test_a_bad_month_or_year_is_a_422_that_says_why(
    c: Consumers, url: str, code: str, message: str
) -> None:
    body = refused(bearer(c.rosa).get(url), 422, code)

    assert message in body["message"]


def test_a_site_month_has_its_units_and_residents(c: Consumers) -> None:
    body = ok(bearer(c.world.alice).get(f"/api/v1/properties/{c.prop.pk}/consumption/2025-07"))

    assert body["currencies"] == ["CHF"]
    assert [(u["name"], u["uses"]) for u in body["units"]] == [("A-12", 1), ("B-3", 2)]
    assert [(r["id"], r["costs"][0]["total"]) for r in body["residents"]] == [
        (c.bruno_person.pk, 210),
        (c.rosa_person.pk, 1759),
    ]
    assert [u["person"] for u in body["uses"]] == [
        "Rosa Resident",
        "Rosa Resident",
        "Bruno Neighbour",
    ]


def test_a_sites_units_and_residents_months(c: Consumers) -> None:
    alice = bearer(c.world.alice)
    site = ok(alice.get(f"/api/v1/properties/{c.prop.pk}/consumption?year=2025"))
    unit = ok(alice.get(f"/api/v1/units/{c.b3.pk}/consumption?year=2025"))
    person = ok(
        alice.get(
            f"/api/v1/properties/{c.prop.pk}/residents/{c.rosa_person.pk}/consumption?year=2025"
        )
    )

    assert site["total"]["uses"] == 6 and site["total"]["costs"][0]["total"] == 3146
    assert unit["total"]["uses"] == 2
    assert [m["month"] for m in unit["months"] if m["uses"]] == ["2025-07"]
    assert person["total"]["uses"] == 5
    assert "EUR" not in person["currencies"]  # her Shed uses are another organization's
    lines = csv_lines(alice.get(f"/api/v1/units/{c.a12.pk}/consumption/2025-07.csv"))
    assert [(line["person"], line["amount"]) for line in lines] == [("Bruno Neighbour", "2.10")]


def _site_paths(c: Consumers) -> list[str]:
    site = f"/api/v1/properties/{c.prop.pk}"
    unit = f"/api/v1/units/{c.a12.pk}/consumption"
    person = f"{site}/residents/{c.rosa_person.pk}/consumption"
    return [
        f"{site}/consumption",
        f"{site}/consumption/2025-07",
        f"{site}/consumption.csv",
        f"{site}/consumption/2025-07.csv",
        unit,
        f"{unit}/2025-07",
        f"{unit}.csv",
        f"{unit}/2025-07.csv",
        person,
        f"{person}/2025-07",
        f"{person}.csv",
        f"{person}/2025-07.csv",
    ]


def test_a_plain_member_gets_403_with_the_reason(c: Consumers) -> None:
    bob = bearer(c.world.bob)
    for path in _site_paths(c):
        body = refused(bob.get(path), 403, "forbidden")
        assert "can see the consumption" in body["message"], path


def test_another_organization_gets_404_and_nothing_of_it(c: Consumers) -> None:
    charlie = bearer(c.world.charlie)
    for path in _site_paths(c):
        body = refused(charlie.get(path), 404)
        assert "Rosa" not in str(body) and "Canal" not in str(body), path
    # nor his own site's consumption with Alice's person
    refused(
        charlie.get(f"/api/v1/properties/{c.shed.pk}/residents/{c.rosa_person.pk}/consumption"),
        404,
        "resident_not_found",
    )


def test_a_resident_cannot_read_another_residents_consumption(c: Consumers) -> None:
    rosa = bearer(c.rosa)
    person = f"/api/v1/properties/{c.prop.pk}/residents/{c.bruno_person.pk}/consumption"

    refused(rosa.get(person), 404)
    refused(rosa.get(f"/api/v1/units/{c.a12.pk}/consumption"), 404)
