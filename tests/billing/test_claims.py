"""Uses are taken by invoice lines in batches (one UPDATE for several lines):
each use ends up on its own line across batch boundaries, and a use taken
meanwhile by someone else undoes the whole draft, saying why."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import transaction

from billing.billing_world import NOW, Biller, build, february, local, wash
from doorkeep.billing import runs
from doorkeep.billing.models import InvoiceLine, Use
from doorkeep.core.errors import Conflict


@pytest.fixture
def b(world: Any, time_machine: Any) -> Biller:
    time_machine.move_to(NOW, tick=False)
    return build(world)


def test_each_use_lands_on_its_own_line_across_batches(
    b: Biller, monkeypatch: pytest.MonkeyPatch
) -> None:
    february(b)
    for day in range(1, 8):
        wash(b.dryer, b.bruno_person, b.b3, local(f"2026-02-{day:02d} 09:00"))
    monkeypatch.setattr(runs, "CLAIM_CHUNK", 3)  # several statements, lines split over them
    run = runs.draft_run(b.world.alice, b.prop.pk, "2026-02")
    for line in InvoiceLine.objects.filter(invoice__run=run):
        uses = Use.objects.filter(invoice_line=line)
        assert uses.exists() or line.kind == "fee"
        assert {u.person_id for u in uses} <= {line.invoice.person_id}
        assert sum(u.amount for u in uses) == line.amount or line.kind == "fee"
    assert not Use.objects.filter(property=b.prop, invoice_line__isnull=True).exists()


def test_a_use_taken_meanwhile_undoes_the_claim(b: Biller) -> None:
    february(b)
    run = runs.draft_run(b.world.alice, b.prop.pk, "2026-02")
    line = InvoiceLine.objects.filter(invoice__run=run).first()
    assert line is not None
    taken = list(Use.objects.filter(invoice_line=line).values_list("pk", flat=True))
    late = wash(b.washer, b.rosa_person, b.a12, local("2026-02-25 10:00"))
    with pytest.raises(Conflict) as refused, transaction.atomic():
        runs._claim([(line, [late.pk, *taken])])
    assert refused.value.code == "uses_taken"
    late.refresh_from_db()
    assert late.invoice_line_id is None  # nothing half-applied
