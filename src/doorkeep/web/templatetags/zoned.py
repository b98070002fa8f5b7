"""``{% at moment where "fmt" %}``: a moment in the time zone of ``where`` (a
property, an invitation, a lock, a zone or its name), in the page's language;
``named=True`` adds the zone's name. ``as var`` keeps the text for a
blocktranslate. The rule is doorkeep.core.when.show."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from django import template

from doorkeep.core import when

register = template.Library()


@register.simple_tag
def at(
    moment: datetime | date | None,
    where: Any,
    fmt: str = "Y-m-d H:i",
    named: bool = False,
    empty: str = "—",
) -> str:
    return when.show(moment or None, where, fmt, named=named, empty=empty)


@register.filter
def zone_name(where: Any) -> str:
    """The name of the time zone of ``where`` (``Europe/Amsterdam``)."""
    return when.zone(where).key
