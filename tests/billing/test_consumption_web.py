"""Consumption pages: the resident's own in the portal (a bar chart per
month drawn as SVG beside a table with the same figures, cost or energy, a
month's days and uses with their prices, CSV of a year or a month), and a
site's, a unit's and a resident's for the site's owners, managers and
read-only collaborators. A resident finds only their own uses; a plain
member is told why not; another organization's site, unit or person is
not found (consumption_world.py describes the data)."""

from __future__ import annotations

import csv
import html
import io
import re
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from billing.consumption_world import ZURICH, Consumers, _local, build, charge, wash
from doorkeep.accounts.models import Membership, Role
from doorkeep.billing.models import Use


@pytest.fixture
def c(world: Any) -> Consumers:
    return build(world)


def client(user: Any) -> Client:
    browser = Client()
    browser.force_login(user)
    return browser


def page(response: Any) -> str:
    assert response.status_code == 200, (response.status_code, response.content[:400])
    return html.unescape(response.content.decode())


def rows_of(text: str, table_id: str) -> dict[str, str]:
    """The rows of a figures table by their data-key, as text without tags."""
    table = re.search(rf'<table class="table figures" id="{table_id}">(.*?)</table>', text, re.S)
    assert table is not None, table_id
    found = {}
    for key, body in re.findall(r'<tr data-key="([^"]+)"[^>]*>(.*?)</tr>', table[1], re.S):
        found[key] = " ".join(re.sub(r"<[^>]+>", " ", body).split())
    return found


def bars_of(text: str, chart: str = "") -> dict[str, tuple[str, list[str]]]:
    """key -> (total, kinds of its segments) of each bar of a chart (the
    page's first chart unless told)."""
    name = re.escape(chart) if chart else '[^"]+'
    figure = re.search(rf'<figure class="consumption-chart" id="{name}"(.*?)</figure>', text, re.S)
    assert figure is not None, chart
    found = {}
    for key, total, body in re.findall(
        r'<g class="bar" data-key="([^"]+)" data-total="([^"]*)">(.*?)</g>', figure[1], re.S
    ):
        found[key] = (total, re.findall(r'data-kind="(\w+)"', body))
    return found


def csv_of(response: Any) -> list[dict[str, str]]:
    assert response.status_code == 200, response.status_code
    assert response["Content-Type"].startswith("text/csv")
    content = b"".join(response.streaming_content).decode()
    lines = list(csv.reader(io.StringIO(content)))
    return [dict(zip(lines[0], line, strict=True)) for line in lines[1:]]


# --- the portal ------------------------------------------------------------------------------


def test_the_portal_shows_a_bar_per_month_beside_a_table_of_the_same_figures(
    c: Consumers,
) -> None:
    text = page(client(c.rosa).get("/portal/consumption/?year=2025"))

    assert "<svg" in text and 'role="group"' in text  # its bars are links: not one image
    # a chart per currency: CHF and EUR, never one sum
    chf, eur = bars_of(text, "chart-chf"), bars_of(text, "chart-eur")
    assert len(chf) == len(eur) == 12
    assert chf["2025-03"] == ("CHF 3.00", ["charging"])
    assert chf["2025-07"] == ("CHF 17.59", ["laundry", "badge"])
    assert eur["2025-07"] == ("EUR 4.00", ["charging", "laundry"])
    assert eur["2025-01"] == ("EUR 0.00", [])
    months = rows_of(text, "month-table")
    assert months["2025-04"] == "Apr 2025 1 CHF 6.15 — — CHF 6.15"
    # charging, laundry, badges, total: each currency on its own
    assert months["2025-07"] == (
        "Jul 2025 4 EUR 1.00 CHF 2.59 EUR 3.00 CHF 15.00 CHF 17.59 EUR 4.00"
    )
    assert months["total"].startswith("Total 7 ")
    assert "CHF 29.36" in months["total"] and "EUR 4.00" in months["total"]
    # Bruno's charging in A-12 is not hers
    assert "2.10" not in text and "Bruno" not in text
    # the month's bar and row lead to its days
    assert 'href="/portal/consumption/2025-07/?show=cost"' in text


def test_the_portal_shows_energy_instead_of_cost_with_a_link(c: Consumers) -> None:
    cost = page(client(c.rosa).get("/portal/consumption/?year=2025"))
    assert 'href="/portal/consumption/?year=2025&amp;show=energy"' in html.escape(cost, quote=False)

    text = page(client(c.rosa).get("/portal/consumption/?year=2025&show=energy"))

    assert 'id="chart-energy"' in text and 'id="chart-chf"' not in text
    bars = bars_of(text)
    assert len(bars) == 12
    assert bars["2025-04"] == ("20.5 kWh", ["charging"])
    assert bars["2025-07"] == ("5.7 kWh", ["charging", "laundry"])
    assert rows_of(text, "month-table")["2025-07"] == "Jul 2025 4 4.0 1.7 5.7"


def test_the_portal_month_shows_a_bar_per_day_and_each_use_with_its_price(
    c: Consumers,
) -> None:
    text = page(client(c.rosa).get("/portal/consumption/2025-07/"))

    assert len(bars_of(text, "days-chf")) == len(bars_of(text, "days-eur")) == 31
    assert bars_of(text, "days-chf")["2025-07-05"] == ("CHF 15.00", ["badge"])
    uses = re.findall(r'<tr id="use-(\d+)" data-day="([\d-]+)" data-kind="(\w+)">', text)
    assert [(day, kind) for _id, day, kind in uses] == [
        ("2025-07-02", "laundry"),
        ("2025-07-03", "laundry"),
        ("2025-07-04", "charging"),
        ("2025-07-05", "badge"),
    ]
    assert "CHF 15.00" in text and "EUR 3.00" in text and "0.800 kWh" in text
    assert "Charlie's Shed" in text  # the site column: her uses span two sites
    assert "Wed 2 Jul, 10:00" in text  # Zurich time
    assert 'href="/portal/consumption.csv' not in text  # the month's CSV, not the year's
    assert 'href="/portal/consumption/2025-07.csv"' in text


def test_a_month_in_the_portal_is_empty_when_nothing_was_used(c: Consumers) -> None:
    text = page(client(c.rosa).get("/portal/consumption/2025-02/"))

    assert 'id="nothing-used"' in text
    assert "Nothing used in this period." in text


def test_the_portal_csv_of_a_year_and_of_a_month(c: Consumers) -> None:
    year = client(c.rosa).get("/portal/consumption.csv?year=2025")
    assert 'filename="doorkeep-my-consumption-2025.csv"' in year["Content-Disposition"]
    lines = csv_of(year)
    assert len(lines) == 7
    assert {line["person"] for line in lines} == {"Rosa Resident"}

    month = csv_of(client(c.rosa).get("/portal/consumption/2025-04.csv"))
    assert [(m["day"], m["energy_kwh"], m["amount"]) for m in month] == [
        ("2025-04-01", "20.500", "6.15")
    ]


def test_the_portal_can_show_one_of_the_residents_sites(c: Consumers) -> None:
    text = page(client(c.rosa).get(f"/portal/consumption/?year=2025&site={c.shed.pk}"))

    assert 'id="chart-eur"' in text and 'id="chart-chf"' not in text
    assert "My consumption at Charlie's Shed" in text
    assert f'href="/portal/consumption/2025-07/?site={c.shed.pk}&amp;show=cost"' in (
        html.escape(text, quote=False)
    )


def test_a_resident_never_reaches_a_site_where_they_do_not_live(c: Consumers) -> None:
    bruno = client(c.bruno)
    assert bruno.get(f"/portal/consumption/?site={c.shed.pk}").status_code == 404
    assert bruno.get(f"/portal/consumption/2025-07/?site={c.shed.pk}").status_code == 404
    assert bruno.get(f"/portal/consumption.csv?site={c.shed.pk}").status_code == 404
    assert bruno.get("/portal/consumption/?site=abc").status_code == 404
    # nor another resident's pages of the site: those are for its managers
    unit = f"/properties/{c.prop.pk}/units/{c.b3.pk}/consumption/"
    person = f"/properties/{c.prop.pk}/residents/{c.rosa_person.pk}/consumption/"
    assert bruno.get(unit).status_code == 404
    assert bruno.get(person).status_code == 404
    assert "Rosa" not in bruno.get(person).content.decode()


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("/portal/consumption/2026-13/", "2026-13 is not a month"),
        ("/portal/consumption/2026-1/", "YYYY-MM"),
        ("/portal/consumption/1850-01/", "between 2000 and 2100"),
        ("/portal/consumption/?year=3000", "between 2000 and 2100"),
        ("/portal/consumption/?year=last", "four digits"),
        ("/portal/consumption.csv?year=1999", "between 2000 and 2100"),
        ("/portal/consumption/2026-13.csv", "2026-13 is not a month"),
    ],
)
def test_a_bad_month_or_year_is_a_422_page_that_says_why(
    c: Consumers, url: str, message: str
) -> None:
    response = client(c.rosa).get(url)

    assert response.status_code == 422
    assert message in html.unescape(response.content.decode())


def test_the_portal_page_costs_the_same_queries_with_a_year_of_use(c: Consumers) -> None:
    browser = client(c.bruno)
    browser.get("/portal/consumption/?year=2025")  # the session noted once

    def count() -> int:
        with CaptureQueriesContext(connection) as queries:
            page(browser.get("/portal/consumption/?year=2025"))
        return len(queries)

    few = count()
    for month in range(1, 13):
        for day in (3, 13, 23):
            charge(
                c, c.bruno_person, c.a12, _local(ZURICH, f"2025-{month:02d}-{day:02d}T08:00"), 5_000
            )
            wash(c, c.bruno_person, c.a12, _local(ZURICH, f"2025-{month:02d}-{day:02d}T18:00"), 900)
    assert Use.objects.filter(person=c.bruno_person).count() == 73
    assert count() == few
    assert few <= 8


def test_the_portal_links_to_the_consumption_page(c: Consumers) -> None:
    text = page(client(c.rosa).get("/portal/"))

    assert 'href="/portal/consumption/"' in text


# --- owners, managers, collaborators ----------------------------------------------------------


def test_the_site_page_shows_the_sites_months_and_links_to_them(c: Consumers) -> None:
    alice = client(c.world.alice)
    assert f'href="/properties/{c.prop.pk}/consumption/"' in page(
        alice.get(f"/properties/{c.prop.pk}/")
    )
    text = page(alice.get(f"/properties/{c.prop.pk}/consumption/?year=2025"))

    assert "Consumption · Canal House" in text
    bars = bars_of(text)
    assert len(bars) == 12  # one currency
    assert bars["2025-07"] == ("CHF 19.69", ["charging", "laundry", "badge"])
    assert rows_of(text, "month-table")["total"] == (
        "Total 6 CHF 11.25 CHF 5.21 CHF 15.00 CHF 31.46"
    )
    assert "Charlie" not in text and "EUR" not in text


def test_a_site_month_has_a_table_per_unit_and_per_resident_with_links(c: Consumers) -> None:
    text = page(client(c.world.alice).get(f"/properties/{c.prop.pk}/consumption/2025-07/"))

    units = rows_of(text, "unit-table")
    assert units == {
        f"unit-{c.a12.pk}": "A-12 1 CHF 2.10 — — CHF 2.10",
        f"unit-{c.b3.pk}": "B-3 2 — CHF 2.59 CHF 15.00 CHF 17.59",
    }
    residents = rows_of(text, "resident-table")
    assert list(residents) == [f"resident-{c.bruno_person.pk}", f"resident-{c.rosa_person.pk}"]
    unit_url = f"/properties/{c.prop.pk}/units/{c.b3.pk}/consumption/2025-07/?show=cost"
    person_url = f"/properties/{c.prop.pk}/residents/{c.rosa_person.pk}/consumption/2025-07/"
    assert f'href="{unit_url}"' in text
    assert f'href="{person_url}?show=cost"' in text
    assert "Bruno Neighbour" in text and "Rosa Resident" in text


def test_a_units_and_a_residents_pages_show_their_own_figures(c: Consumers) -> None:
    alice = client(c.world.alice)
    unit = page(alice.get(f"/properties/{c.prop.pk}/units/{c.a12.pk}/consumption/?year=2025"))
    assert "Consumption of unit A-12 · Canal House" in unit
    assert [k for k, (total, _) in bars_of(unit).items() if total != "CHF 0.00"] == [
        "2025-03",
        "2025-04",
        "2025-06",
        "2025-07",
    ]

    person = page(
        alice.get(f"/properties/{c.prop.pk}/residents/{c.rosa_person.pk}/consumption/2025-07/")
    )
    assert "Consumption of Rosa Resident · Canal House" in person
    uses = re.findall(r'<tr id="use-\d+" data-day="([\d-]+)" data-kind="(\w+)">', person)
    assert uses == [("2025-07-02", "laundry"), ("2025-07-05", "badge")]
    assert "B-3" in person and "Charlie's Shed" not in person


def test_the_sites_csv_of_a_month_and_the_units_of_a_year(c: Consumers) -> None:
    alice = client(c.world.alice)
    month = csv_of(alice.get(f"/properties/{c.prop.pk}/consumption/2025-07.csv"))
    assert [(m["person"], m["unit"], m["amount"]) for m in month] == [
        ("Rosa Resident", "B-3", "2.59"),
        ("Rosa Resident", "B-3", "15.00"),
        ("Bruno Neighbour", "A-12", "2.10"),
    ]
    year = alice.get(f"/properties/{c.prop.pk}/units/{c.a12.pk}/consumption.csv?year=2025")
    assert f"doorkeep-unit-{c.a12.pk}-consumption-2025.csv" in year["Content-Disposition"]
    assert len(csv_of(year)) == 4


def test_the_residents_list_links_to_each_residents_and_units_consumption(
    c: Consumers,
) -> None:
    text = page(client(c.world.alice).get(f"/properties/{c.prop.pk}/residents/"))

    assert f'href="/properties/{c.prop.pk}/residents/{c.rosa_person.pk}/consumption/"' in text
    assert f'href="/properties/{c.prop.pk}/units/{c.b3.pk}/consumption/"' in text


def _site_urls(c: Consumers) -> list[str]:
    site = f"/properties/{c.prop.pk}"
    unit = f"{site}/units/{c.a12.pk}/consumption"
    person = f"{site}/residents/{c.rosa_person.pk}/consumption"
    return [
        f"{site}/consumption/",
        f"{site}/consumption/2025-07/",
        f"{site}/consumption.csv",
        f"{site}/consumption/2025-07.csv",
        f"{unit}/",
        f"{unit}/2025-07/",
        f"{unit}.csv",
        f"{unit}/2025-07.csv",
        f"{person}/",
        f"{person}/2025-07/",
        f"{person}.csv",
        f"{person}/2025-07.csv",
    ]


def test_a_plain_member_is_told_why_not(c: Consumers) -> None:
    bob = client(c.world.bob)
    for url in _site_urls(c):
        response = bob.get(url)
        assert response.status_code == 403, url
        assert "can see the consumption" in html.unescape(response.content.decode())


def test_another_organization_finds_nothing(c: Consumers) -> None:
    charlie = client(c.world.charlie)
    for url in _site_urls(c):
        response = charlie.get(url)
        assert response.status_code == 404, url
        text = response.content.decode()
        assert "Rosa" not in text and "Canal House" not in text


def test_a_unit_of_another_site_is_not_found_under_this_site(c: Consumers, world: Any) -> None:
    from doorkeep.properties.services import create_property

    other = create_property(world.alice, world.org.pk, name="Other House")
    response = client(world.alice).get(f"/properties/{other.pk}/units/{c.a12.pk}/consumption/")

    assert response.status_code == 404


def test_a_read_only_collaborator_of_the_site_reads_it_and_not_another_site(
    c: Consumers, world: Any
) -> None:
    from doorkeep.accounts.services import create_user
    from doorkeep.properties.services import create_property

    other = create_property(world.alice, world.org.pk, name="Other House")
    agent = create_user("agent@example.com", "correct horse battery staple", name="Agent")
    Membership.objects.create(
        user=agent, organization=world.org, role=Role.READ_ONLY, property=c.prop
    )
    browser = client(agent)

    assert browser.get(f"/properties/{c.prop.pk}/consumption/2025-07/").status_code == 200
    assert browser.get(f"/properties/{other.pk}/consumption/").status_code == 404
