"""Finalizing takes the numbers in one short transaction, then renders and
sends each invoice: an invoice whose PDF fails (or a crash between the two)
is left numbered and without its PDF, the others are delivered, and
``deliver_pending`` completes it without sending anything twice."""

from __future__ import annotations

from typing import Any
from unittest import mock

import pytest

from billing.billing_world import NOW, Biller, build, february
from doorkeep.billing import paper, runs
from doorkeep.billing.models import Invoice, InvoiceStatus, RunStatus
from doorkeep.notify.models import OutboxMessage


@pytest.fixture
def b(world: Any, time_machine: Any) -> Biller:
    time_machine.move_to(NOW, tick=False)
    return build(world)


def emails() -> list[int]:
    return sorted(
        m.payload["invoice_id"]
        for m in OutboxMessage.objects.filter(channel="email")
        if "invoice_id" in m.payload
    )


def test_a_delivery_cut_short_is_completed_once(b: Biller) -> None:
    february(b)
    run = runs.draft_run(b.world.alice, b.prop.pk, "2026-02")
    real = paper.render
    calls = {"n": 0}

    def crash_on_second(invoice: Invoice) -> bytes:
        calls["n"] += 1
        if calls["n"] == 2:
            raise RuntimeError("the machine went down")
        return real(invoice)

    with mock.patch.object(paper, "render", crash_on_second):
        runs.finalize_run(b.world.alice, run.pk)  # logged; the others are delivered
    run.refresh_from_db()
    assert run.status == RunStatus.FINALIZED  # the numbers are final
    invoices = list(Invoice.objects.filter(run=run).order_by("seq"))
    assert len(invoices) >= 2 and all(i.status == InvoiceStatus.OPEN for i in invoices)
    assert [i.seq for i in invoices] == list(
        range(invoices[0].seq, invoices[0].seq + len(invoices))
    )
    with_pdf = [i.pk for i in invoices if i.pdf]
    assert len(with_pdf) == len(invoices) - 1 and emails() == with_pdf

    assert runs.deliver_pending() == 1
    assert runs.deliver_pending() == 0
    assert emails() == sorted(i.pk for i in invoices)  # each invoice mailed once
    for invoice in Invoice.objects.filter(run=run):
        assert bytes(invoice.pdf).startswith(b"%PDF")
