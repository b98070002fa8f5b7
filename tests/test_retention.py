"""Event-log retention (E3): old events go, by age, and nothing else does."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from doorkeep.cli import main
from doorkeep.events.models import Event
from doorkeep.events.retention import purge
from doorkeep.events.services import record


def events_at(world: Any, *ages_in_days: int) -> None:
    now = timezone.now()
    for days in ages_in_days:
        record("lock.updated", organization_id=world.org.pk, occurred_at=now - timedelta(days=days))


def test_events_older_than_the_retention_are_removed(world: Any, settings: Any) -> None:
    settings.DOORKEEP = {**settings.DOORKEEP, "EVENT_RETENTION_DAYS": 30}
    Event.objects.all()._raw_delete(Event.objects.db)  # type: ignore[attr-defined]
    events_at(world, 1, 29, 31, 400)
    assert purge(dry_run=True).deleted == 2
    assert Event.objects.count() == 4
    result = purge()
    assert result.deleted == 2
    ages = sorted((timezone.now() - e.occurred_at).days for e in Event.objects.all())
    assert ages == [1, 29]
    assert purge().deleted == 0


def test_retention_zero_keeps_everything(world: Any, settings: Any) -> None:
    settings.DOORKEEP = {**settings.DOORKEEP, "EVENT_RETENTION_DAYS": 0}
    events_at(world, 5000)
    before = Event.objects.count()
    assert purge().cutoff is None
    assert Event.objects.count() == before


def test_purging_works_in_batches(world: Any, monkeypatch: Any) -> None:
    from doorkeep.events import retention

    monkeypatch.setattr(retention, "BATCH", 3)
    events_at(world, *([800] * 7))
    old = Event.objects.filter(occurred_at__lt=timezone.now() - timedelta(days=731)).count()
    assert old == 7
    assert purge().deleted == 7


def test_the_log_still_refuses_every_other_delete(world: Any) -> None:
    events_at(world, 800)
    with pytest.raises(TypeError):
        Event.objects.all().delete()


def test_the_command(world: Any, capsys: Any) -> None:
    events_at(world, 10, 20)
    assert main(["events", "purge", "--days", "15", "--dry-run"]) == 0
    assert "Would remove 1 event(s)" in capsys.readouterr().out
    assert main(["events", "purge", "--days", "15"]) == 0
    assert "Removed 1 event(s)" in capsys.readouterr().out
    assert main(["events", "purge", "--days", "0"]) != 0
    assert "at least 1" in capsys.readouterr().err
