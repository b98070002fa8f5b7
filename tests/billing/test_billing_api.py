"""Tariffs, billing settings, billing runs and invoices in the API
(billing/api.py): integers in minor units and ten-thousandths, the
services' refusals as JSON errors with their codes, the invoice PDF as a
download, a resident's own invoices; a plain member gets 403 with the
reason, another organization (and another resident) 404
(billing_world.py describes the site)."""

from __future__ import annotations

import json
from datetime import date
from typing import Any

import pytest

from billing.billing_world import IBAN, NOW, Biller, build, february, local
from doorkeep.billing import runs
from doorkeep.billing.models import BillingRun, Invoice, Issuer, SiteBilling, Tariff
from doorkeep.residents.services import set_billing_mode

FEB = date(2026, 2, 1)


@pytest.fixture
def b(world: Any, time_machine: Any) -> Biller:
    time_machine.move_to(NOW, tick=False)
    return build(world)


@pytest.fixture
def alice(b: Biller) -> Any:
    return b.world.bearer(b.world.alice)


def error_of(response: Any, status: int, code: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, (response.status_code, response.content[:500])
    body = response.json()
    assert body["message"].strip(), body
    if code is not None:
        assert body["code"] == code, body
    return body


def send(client: Any, method: str, url: str, body: Any = None) -> Any:
    return client.generic(
        method, url, "" if body is None else json.dumps(body), content_type="application/json"
    )


def finalized(b: Biller) -> BillingRun:
    february(b)
    return runs.finalize_run(b.world.alice, runs.draft_run(b.world.alice, b.prop.pk, FEB).pk)


# --- tariffs ----------------------------------------------------------------------------------


def test_a_sites_tariffs_are_listed_newest_first_with_the_current_one_marked(b, alice):
    send(alice, "POST", f"/api/v1/properties/{b.prop.pk}/tariffs", {"valid_from": "2026-04-01"})

    listed = alice.get(f"/api/v1/properties/{b.prop.pk}/tariffs").json()

    assert [(t["valid_from"], t["valid_until"], t["current"]) for t in listed] == [
        ("2026-04-01", None, False),
        ("2026-01-01", "2026-03-31", True),
    ]
    current = listed[1]
    assert (current["charging_rate"], current["laundry_cycle_price_minor"]) == (3500, 250)
    assert (current["vat_rate"], current["currency"]) == (810, "CHF")


def test_adding_a_tariff_takes_integers_and_answers_it(b, alice):
    body = {
        "valid_from": "2026-03-11",
        "vat_rate": 810,
        "charging_rate": 4000,
        "charging_low_rate": 2000,
        "high_start": "07:00",
        "high_end": "19:00",
        "high_days": "54321",
        "laundry_cycle_price_minor": 300,
        "monthly_fee_minor": 1000,
        "monthly_fee_label": "Service charge",
        "extra_badge_price_minor": 2000,
        "laundry_prices": [
            {"machine_id": b.washer.pk, "cycle_price_minor": 350},
            {"program": "Eco 40", "cycle_price_minor": 200, "laundry_rate": 500},
        ],
    }

    response = send(alice, "POST", f"/api/v1/properties/{b.prop.pk}/tariffs", body)

    assert response.status_code == 201, response.content
    out = response.json()
    assert out["current"] is False and out["high_days"] == "12345"  # it starts tomorrow
    assert (out["high_start"], out["high_end"]) == ("07:00:00", "19:00:00")
    assert [
        (p["machine_id"], p["program"], p["cycle_price_minor"]) for p in out["laundry_prices"]
    ] == [
        (b.washer.pk, "", 350),
        (None, "Eco 40", 200),
    ]
    tariff = Tariff.objects.get(pk=out["id"])
    assert (tariff.charging_low_rate, tariff.monthly_fee, tariff.extra_badge_price) == (
        2000,
        1000,
        2000,
    )


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"valid_from": "2026-04-01", "charging_rate": -1}, 400, "negative_price"),
        ({"valid_from": "2026-04-01", "laundry_cycle_price_minor": -250}, 400, "negative_price"),
        ({"valid_from": "2026-03-09"}, 400, "tariff_in_past"),
        ({"valid_from": "2026-04-01", "valid_until": "2026-03-31"}, 400, "bad_dates"),
        ({"valid_from": "2026-04-01", "vat_rate": 9000}, 400, "bad_vat_rate"),
        ({"valid_from": "2026-04-01", "charging_low_rate": 100}, 400, "bad_hours"),
        ({"valid_from": "2026-04-01", "laundry_prices": [{"cycle_price_minor": 1}]}, 400, None),
        ({"valid_from": "2026-04-01", "laundry_prices": [{"machine_id": 987654}]}, 404, None),
        ({"valid_from": "2026-04-01", "charging_rate": "0.35"}, 422, "validation_error"),
        ({"valid_from": "2026-04-01", "charging_rate": 0.35}, 422, "validation_error"),
        ({"charging_rate": 3500}, 422, "validation_error"),
    ],
)
def test_a_tariff_is_refused_with_the_services_code(b, alice, body, status, code):
    response = send(alice, "POST", f"/api/v1/properties/{b.prop.pk}/tariffs", body)

    error_of(response, status, code)
    assert Tariff.objects.count() == 1


def test_overlapping_dates_are_a_conflict(b, alice):
    url = f"/api/v1/properties/{b.prop.pk}/tariffs"
    send(alice, "POST", url, {"valid_from": "2026-04-01", "valid_until": "2026-04-30"})

    body = error_of(
        send(alice, "POST", url, {"valid_from": "2026-04-20", "valid_until": "2026-05-10"}),
        409,
        "tariff_overlap",
    )

    assert "2026-04-01" in body["message"]


def test_a_future_tariff_is_deleted_and_a_started_one_stays(b, alice):
    future = send(
        alice, "POST", f"/api/v1/properties/{b.prop.pk}/tariffs", {"valid_from": "2026-05-01"}
    ).json()

    assert alice.delete(f"/api/v1/tariffs/{future['id']}").status_code == 204
    error_of(alice.delete(f"/api/v1/tariffs/{b.tariff.pk}"), 409, "tariff_started")
    assert list(Tariff.objects.values_list("pk", "valid_until")) == [(b.tariff.pk, None)]


# --- who invoices -----------------------------------------------------------------------------


def test_the_invoicing_of_a_site_names_its_issuer_and_days_to_pay(b, alice):
    out = alice.get(f"/api/v1/properties/{b.prop.pk}/invoicing").json()

    assert out["billing_mode"] == "billing_and_payments"
    assert (out["issuer"]["name"], out["issuer"]["account"]) == (
        "Alice Locks AG",
        "CH4431999123000889012",
    )
    assert (out["payment_days"], out["issuer"]["next_number"]) == (30, 1)


def test_an_owner_adds_an_issuer_for_her_organization_and_chooses_it(b, alice):
    created = send(
        alice,
        "POST",
        "/api/v1/issuers",
        {
            "organization_id": b.world.org.pk,
            "name": "Alice Locks Billing",
            "postcode": "8002",
            "city": "Zürich",
            "account": IBAN,
            "currency": "CHF",
        },
    )
    assert created.status_code == 201, created.content
    issuer_id = created.json()["id"]

    chosen = send(
        alice,
        "PUT",
        f"/api/v1/properties/{b.prop.pk}/invoicing",
        {"issuer_id": issuer_id, "payment_days": 20},
    )

    assert chosen.status_code == 200, chosen.content
    assert (chosen.json()["issuer"]["id"], chosen.json()["payment_days"]) == (issuer_id, 20)
    assert SiteBilling.objects.get(property=b.prop).issuer_id == issuer_id


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"account": "CH00 0000 0000"}, 400, "bad_iban"),
        ({"currency": "USD"}, 400, "bad_currency"),
        ({"name": "  "}, 400, "missing"),
        ({"organization_id": None}, 404, None),  # the platform's: its operator only
    ],
)
def test_an_issuer_is_refused_with_the_services_code(b, alice, body, status, code):
    full = {
        "organization_id": b.world.org.pk,
        "name": "Alice Locks Billing",
        "postcode": "8002",
        "city": "Zürich",
        "account": IBAN,
        "currency": "CHF",
        **body,
    }

    error_of(send(alice, "POST", "/api/v1/issuers", full), status, code)
    assert Issuer.objects.count() == 1


def test_the_operator_adds_the_platforms_issuer_which_every_owner_may_choose(b, alice):
    operator = b.world.bearer(b.operator)
    created = send(
        operator,
        "POST",
        "/api/v1/issuers",
        {
            "organization_id": None,
            "name": "Doorkeep Billing",
            "postcode": "3000",
            "city": "Bern",
            "account": IBAN,
            "currency": "CHF",
        },
    ).json()

    names = [i["name"] for i in alice.get("/api/v1/issuers").json()]
    charlies = [i["name"] for i in b.world.bearer(b.world.charlie).get("/api/v1/issuers").json()]
    chosen = send(
        alice, "PUT", f"/api/v1/properties/{b.prop.pk}/invoicing", {"issuer_id": created["id"]}
    )

    assert created["organization_id"] is None
    assert sorted(names) == ["Alice Locks AG", "Doorkeep Billing"]
    assert charlies == ["Doorkeep Billing"]
    assert chosen.json()["issuer"]["name"] == "Doorkeep Billing"


def test_another_organizations_issuer_cannot_be_chosen(b, alice):
    from doorkeep.billing import services

    charlies = services.create_issuer(
        b.world.charlie,
        services.IssuerSpec("Charlie Sarl", "1200", "Genève", IBAN, "CHF"),
        organization_id=b.world.charlie_org.pk,
    )

    error_of(
        send(alice, "PUT", f"/api/v1/properties/{b.prop.pk}/invoicing", {"issuer_id": charlies.pk}),
        404,
    )
    error_of(
        send(
            alice,
            "PUT",
            f"/api/v1/properties/{b.prop.pk}/invoicing",
            {"issuer_id": b.issuer.pk, "payment_days": 0},
        ),
        400,
        "bad_payment_days",
    )
    error_of(alice.get(f"/api/v1/issuers?organization_id={b.world.charlie_org.pk}"), 404)
    assert SiteBilling.objects.get(property=b.prop).issuer_id == b.issuer.pk


# --- billing runs -----------------------------------------------------------------------------


def test_drafting_a_month_answers_the_run_with_its_invoices(b, alice):
    february(b)
    url = f"/api/v1/properties/{b.prop.pk}/billing-runs"

    first = send(alice, "POST", url, {"month": "2026-02"})
    again = send(alice, "POST", url, {"month": "2026-02"})

    assert (first.status_code, again.status_code) == (201, 200)
    run = first.json()
    assert (run["month"], run["status"], run["invoices"], run["currency"]) == (
        "2026-02",
        "draft",
        2,
        "CHF",
    )
    assert (run["total_minor"], run["vat_minor"]) == (1025, 77)
    assert {
        (i["person"], i["unit"], i["total_minor"], i["vat_minor"], i["status"])
        for i in run["invoice_list"]
    } == {
        ("Rosa Resident", "A-12", 775, 58, "draft"),
        ("Bruno Neighbour", "B-3", 250, 19, "draft"),
    }
    assert again.json()["total_minor"] == 1025 and again.json()["id"] == run["id"]
    listed = alice.get(url).json()
    assert [(r["id"], r["invoices"], r["total_minor"]) for r in listed] == [(run["id"], 2, 1025)]


@pytest.mark.parametrize(
    ("month", "status", "code"),
    [
        ("2026-03", 400, "month_not_over"),
        ("February", 400, "bad_month"),
        ("2026-13", 400, "bad_month"),
    ],
)
def test_a_month_that_cannot_be_drafted_is_refused(b, alice, month, status, code):
    response = send(alice, "POST", f"/api/v1/properties/{b.prop.pk}/billing-runs", {"month": month})

    error_of(response, status, code)
    assert not BillingRun.objects.exists()


def test_an_individual_statements_site_has_no_runs(b, alice):
    set_billing_mode(b.world.alice, b.prop.pk, "individual_statements", confirm=True)

    body = error_of(
        send(alice, "POST", f"/api/v1/properties/{b.prop.pk}/billing-runs", {"month": "2026-02"}),
        409,
        "not_a_billing_site",
    )

    assert "individual statements" in body["message"]


def test_finalizing_numbers_the_invoices_and_a_finalized_run_stays(b, alice):
    february(b)
    run = runs.draft_run(b.world.alice, b.prop.pk, FEB)

    manager = error_of(
        send(b.world.bearer(b.manager), "POST", f"/api/v1/billing-runs/{run.pk}/finalize"), 403
    )
    done = send(alice, "POST", f"/api/v1/billing-runs/{run.pk}/finalize")

    assert "Only the owner or the platform operator" in manager["message"]
    assert done.status_code == 200, done.content
    out = done.json()
    assert out["status"] == "finalized" and out["finalized_at"]
    assert sorted(i["number"] for i in out["invoice_list"]) == ["RE-000001", "RE-000002"]
    assert {i["due_on"] for i in out["invoice_list"]} == {"2026-04-09"}
    error_of(send(alice, "POST", f"/api/v1/billing-runs/{run.pk}/finalize"), 409, "run_finalized")
    error_of(alice.delete(f"/api/v1/billing-runs/{run.pk}"), 409, "run_finalized")
    error_of(
        send(alice, "POST", f"/api/v1/properties/{b.prop.pk}/billing-runs", {"month": "2026-02"}),
        409,
        "run_finalized",
    )


def test_a_draft_run_is_discarded(b, alice):
    february(b)
    run = runs.draft_run(b.world.alice, b.prop.pk, FEB)

    assert alice.delete(f"/api/v1/billing-runs/{run.pk}").status_code == 204
    assert not BillingRun.objects.exists() and not Invoice.objects.exists()
    error_of(alice.get(f"/api/v1/billing-runs/{run.pk}"), 404)


# --- invoices ---------------------------------------------------------------------------------


def test_an_invoice_has_its_lines_totals_and_pdf(b, alice):
    run = finalized(b)
    rosa = Invoice.objects.get(run=run, person=b.rosa_person)

    out = alice.get(f"/api/v1/invoices/{rosa.pk}").json()
    pdf = alice.get(f"/api/v1/invoices/{rosa.pk}/pdf")

    assert (out["number"], out["status"], out["total_minor"], out["open_minor"]) == (
        "RE-000001",
        "open",
        775,
        775,
    )
    assert [(li["kind"], li["amount_minor"], li["vat_rate"]) for li in out["lines"]] == [
        ("charging", 525, 810),
        ("laundry", 250, 810),
    ]
    assert out["issuer"] == "Alice Locks AG" and out["payments"] == []
    assert out["pdf_url"] == f"/api/v1/invoices/{rosa.pk}/pdf"
    assert pdf.status_code == 200
    assert pdf["Content-Type"] == "application/pdf"
    assert pdf["Content-Disposition"] == 'attachment; filename="RE-000001.pdf"'
    assert pdf.content == bytes(rosa.pdf) and pdf.content.startswith(b"%PDF")


def test_a_draft_invoice_has_no_pdf_yet(b, alice):
    february(b)
    run = runs.draft_run(b.world.alice, b.prop.pk, FEB)
    draft = Invoice.objects.get(run=run, person=b.rosa_person)

    assert alice.get(f"/api/v1/invoices/{draft.pk}").json()["pdf_url"] is None
    error_of(alice.get(f"/api/v1/invoices/{draft.pk}/pdf"), 409, "invoice_draft")


def test_a_credit_note_is_issued_and_lowers_what_is_open(b, alice):
    rosa = Invoice.objects.get(run=finalized(b), person=b.rosa_person)

    created = send(
        alice,
        "POST",
        f"/api/v1/invoices/{rosa.pk}/credit-notes",
        {"amount_minor": 175, "reason": "Session charged twice"},
    )
    after = alice.get(f"/api/v1/invoices/{rosa.pk}").json()

    assert created.status_code == 201, created.content
    note = created.json()
    assert (note["kind"], note["number"], note["total_minor"], note["credits_id"]) == (
        "credit_note",
        "RE-000003",
        175,
        rosa.pk,
    )
    assert note["note"] == "Session charged twice"
    assert (after["credited_minor"], after["open_minor"]) == (175, 600)
    assert [n["number"] for n in after["credit_notes"]] == ["RE-000003"]


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"reason": "  "}, 400, "missing_reason"),
        ({"reason": "Too much", "amount_minor": 776}, 400, "bad_amount"),
        ({"reason": "Minus", "amount_minor": -1}, 400, "bad_amount"),
        ({"amount_minor": 100}, 422, "validation_error"),
        ({"reason": "Cents", "amount_minor": "1.75"}, 422, "validation_error"),
    ],
)
def test_a_credit_note_is_refused_with_the_services_code(b, alice, body, status, code):
    rosa = Invoice.objects.get(run=finalized(b), person=b.rosa_person)

    error_of(send(alice, "POST", f"/api/v1/invoices/{rosa.pk}/credit-notes", body), status, code)
    assert Invoice.objects.count() == 2


def test_a_sites_invoices_are_filtered_by_status_and_month(b, alice, time_machine):
    run = finalized(b)
    bruno = Invoice.objects.get(run=run, person=b.bruno_person)
    Invoice.objects.filter(pk=bruno.pk).update(status="paid", paid=bruno.total)
    url = f"/api/v1/properties/{b.prop.pk}/invoices"

    def numbers(query: str) -> list[str]:
        response = alice.get(url + query)
        assert response.status_code == 200, response.content
        return sorted(i["number"] for i in response.json())

    assert numbers("") == ["RE-000001", "RE-000002"]
    assert numbers("?status=open") == ["RE-000001"]
    assert numbers("?status=paid") == ["RE-000002"]
    assert numbers("?status=overdue") == []
    assert numbers("?month=2026-02") == ["RE-000001", "RE-000002"]
    assert numbers("?month=2026-01") == []
    time_machine.move_to(local("2026-04-10 09:00"), tick=False)
    assert numbers("?status=overdue") == ["RE-000001"]
    assert numbers("?status=open") == []
    assert [i["status"] for i in alice.get(url + "?status=overdue").json()] == ["overdue"]
    error_of(alice.get(url + "?status=late"), 400, "bad_status")
    error_of(alice.get(url + "?month=soon"), 400, "bad_month")


def test_a_resident_reads_her_own_invoices_and_not_her_neighbours(b):
    run = finalized(b)
    rosa_api = b.world.bearer(b.rosa)
    mine = Invoice.objects.get(run=run, person=b.rosa_person)
    bruno = Invoice.objects.get(run=run, person=b.bruno_person)

    listed = rosa_api.get("/api/v1/me/invoices").json()

    assert [(i["id"], i["number"], i["property"]) for i in listed] == [
        (mine.pk, "RE-000001", "Canal House")
    ]
    assert rosa_api.get(f"/api/v1/invoices/{mine.pk}").status_code == 200
    assert rosa_api.get(f"/api/v1/invoices/{mine.pk}/pdf").content.startswith(b"%PDF")
    for path in (f"/api/v1/invoices/{bruno.pk}", f"/api/v1/invoices/{bruno.pk}/pdf"):
        body = error_of(rosa_api.get(path), 404)
        assert "Bruno" not in json.dumps(body)
    error_of(
        send(rosa_api, "POST", f"/api/v1/invoices/{mine.pk}/credit-notes", {"reason": "Mine"}),
        403,
    )
    assert b.world.bearer(b.world.charlie).get("/api/v1/me/invoices").json() == []


# --- roles ------------------------------------------------------------------------------------


@pytest.fixture
def ids(b: Biller) -> dict[str, int]:
    run = finalized(b)
    future = Tariff.objects.create(
        property=b.prop, valid_from=date(2026, 6, 1), currency="CHF", vat_rate=810
    )
    return {
        "property_id": b.prop.pk,
        "tariff_id": future.pk,
        "run_id": run.pk,
        "invoice_id": Invoice.objects.get(run=run, person=b.rosa_person).pk,
    }


CALLS = [
    ("GET", "/api/v1/properties/{property_id}/tariffs", None),
    ("POST", "/api/v1/properties/{property_id}/tariffs", {"valid_from": "2026-07-01"}),
    ("DELETE", "/api/v1/tariffs/{tariff_id}", None),
    ("GET", "/api/v1/properties/{property_id}/invoicing", None),
    ("PUT", "/api/v1/properties/{property_id}/invoicing", {"issuer_id": 1}),
    ("GET", "/api/v1/properties/{property_id}/billing-runs", None),
    ("POST", "/api/v1/properties/{property_id}/billing-runs", {"month": "2026-01"}),
    ("GET", "/api/v1/billing-runs/{run_id}", None),
    ("POST", "/api/v1/billing-runs/{run_id}/finalize", None),
    ("DELETE", "/api/v1/billing-runs/{run_id}", None),
    ("GET", "/api/v1/invoices/{invoice_id}", None),
    ("GET", "/api/v1/invoices/{invoice_id}/pdf", None),
    ("POST", "/api/v1/invoices/{invoice_id}/credit-notes", {"reason": "Mine now"}),
    ("GET", "/api/v1/properties/{property_id}/invoices", None),
]


def snapshot() -> tuple[Any, ...]:
    return (
        list(Tariff.objects.order_by("pk").values_list("pk", "valid_from", "valid_until")),
        list(SiteBilling.objects.values_list("property_id", "issuer_id", "payment_days")),
        list(BillingRun.objects.order_by("pk").values_list("pk", "status")),
        list(Invoice.objects.order_by("pk").values_list("pk", "status", "credited")),
    )


@pytest.mark.parametrize(("method", "path", "body"), CALLS, ids=[f"{m} {p}" for m, p, _ in CALLS])
def test_an_outsider_gets_404_and_learns_nothing(b, ids, method, path, body):
    before = snapshot()

    response = send(b.world.bearer(b.world.charlie), method, path.format(**ids), body)

    error_of(response, 404)
    text = response.content.decode()
    assert "Canal House" not in text and "Rosa" not in text and "forbidden" not in text
    assert snapshot() == before


@pytest.mark.parametrize(("method", "path", "body"), CALLS, ids=[f"{m} {p}" for m, p, _ in CALLS])
def test_a_plain_member_is_refused_with_a_reason(b, ids, method, path, body):
    before = snapshot()

    response = send(b.world.bearer(b.world.bob), method, path.format(**ids), body)

    body_out = error_of(response, 403, "forbidden")  # a member sees the site: told why not
    assert "Only" in body_out["message"]
    assert snapshot() == before


READ_ONLY_ALLOWED = {
    ("GET", "/api/v1/properties/{property_id}/tariffs"),
    ("GET", "/api/v1/properties/{property_id}/invoicing"),
    ("GET", "/api/v1/properties/{property_id}/billing-runs"),
    ("GET", "/api/v1/billing-runs/{run_id}"),
    ("GET", "/api/v1/invoices/{invoice_id}"),
    ("GET", "/api/v1/invoices/{invoice_id}/pdf"),
    ("GET", "/api/v1/properties/{property_id}/invoices"),
}


@pytest.mark.parametrize(("method", "path", "body"), CALLS, ids=[f"{m} {p}" for m, p, _ in CALLS])
def test_a_read_only_collaborator_reads_and_changes_nothing(b, ids, method, path, body):
    before = snapshot()

    response = send(b.world.bearer(b.reader), method, path.format(**ids), body)

    if (method, path) in READ_ONLY_ALLOWED:
        assert response.status_code == 200, response.content
    else:
        error_of(response, 403, "forbidden")
    assert snapshot() == before


def test_the_operator_reads_and_finalizes_any_billing_site(b):
    february(b)
    run = runs.draft_run(b.world.alice, b.prop.pk, FEB)
    operator = b.world.bearer(b.operator)

    listed = operator.get(f"/api/v1/properties/{b.prop.pk}/billing-runs")
    done = send(operator, "POST", f"/api/v1/billing-runs/{run.pk}/finalize")

    assert listed.status_code == 200 and listed.json()[0]["id"] == run.pk
    assert done.status_code == 200 and done.json()["status"] == "finalized"
