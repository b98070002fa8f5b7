"""Who lives where, on a given day."""

from __future__ import annotations

from datetime import date

from django.db.models import QuerySet

from doorkeep.accounts.models import User
from doorkeep.properties.models import Property
from doorkeep.residents.models import Residency


def residencies_on(prop: Property | int, day: date) -> QuerySet[Residency]:
    """The residencies of the site that include ``day``."""
    property_id = prop if isinstance(prop, int) else prop.pk
    return (
        Residency.objects.on(day)
        .filter(unit__property_id=property_id)
        .select_related("unit", "person")
    )


def is_resident(person_id: int, property_id: int, day: date) -> bool:
    return (
        Residency.objects.on(day)
        .filter(person_id=person_id, unit__property_id=property_id)
        .exists()
    )


def residencies_of_user(user: User, day: date | None = None) -> QuerySet[Residency]:
    """The residencies of the people the account is (one per organization),
    current on ``day`` when given, newest first."""
    rows = Residency.objects.filter(person__user=user)
    if day is not None:
        rows = rows.on(day)
    return rows.select_related("unit__property", "person").order_by("-move_in", "-id")
