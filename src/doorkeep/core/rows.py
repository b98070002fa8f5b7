"""Rows read by hand-written SQL, turned into what the ORM would have given.

The hottest paths (the access decision, remote unlock, token checks) write
their SQL by hand because the ORM spends longer building those queries than
the database spends answering them. These helpers keep what they return the
same as the ORM's."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, TypeVar

from django.db import connection, models
from django.utils.dateparse import parse_datetime

M = TypeVar("M", bound=models.Model)


def aware(value: object) -> datetime | None:
    """A datetime column read by hand: SQLite gives text in UTC, PostgreSQL an
    aware datetime."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    parsed = parse_datetime(str(value))
    if parsed is None:  # pragma: no cover - the column always holds a datetime
        raise ValueError(f"not a datetime: {value!r}")
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def partial(model: type[M], **values: Any) -> M:
    """An instance as the ORM loads it with ``.only()`` these fields: the
    others are deferred and load if something reads them. Give only values
    that need no conversion (ids, text); booleans and datetimes converted."""
    fields = [f.attname for f in model._meta.concrete_fields if f.attname in values]
    if len(fields) != len(values):
        unknown = sorted(set(values) - set(fields))
        raise TypeError(f"{model.__name__} has no fields {unknown}")
    return model.from_db(connection.alias, fields, [values[name] for name in fields])
