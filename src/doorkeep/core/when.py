"""Moments as people read them: in the time zone of the property they belong
to, named where the reader could take them for another zone's time.

Times are stored in UTC. Whatever a person reads (a page, an email, a
notification, a message built in a service) goes through ``show`` or the
``{% at %}`` template tag (doorkeep/web/templatetags/zoned.py), never through
a bare ``|date`` of a UTC moment.
"""

from __future__ import annotations

import zoneinfo
from datetime import date, datetime
from typing import Any

from django.utils import formats

UTC_ZONE = zoneinfo.ZoneInfo("UTC")


def zone(where: Any) -> zoneinfo.ZoneInfo:
    """The time zone of ``where``: a ZoneInfo, a zone name, an object with a
    ``timezone`` name (a Property) or an ``entry``/``property`` that has one;
    UTC for None or a name this machine does not know."""
    if isinstance(where, zoneinfo.ZoneInfo):
        return where
    if where is None or where == "":
        return UTC_ZONE
    if not isinstance(where, str):
        for attribute in ("timezone", "property", "entry"):
            inner = getattr(where, attribute, None)
            if inner is not None:
                return zone(inner)
        return UTC_ZONE
    try:
        return zoneinfo.ZoneInfo(where)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return UTC_ZONE


def local(moment: datetime, where: Any) -> datetime:
    """``moment`` on the wall clock of ``where``."""
    return moment.astimezone(zone(where))


def local_day(moment: datetime, where: Any) -> date:
    """The calendar day ``moment`` falls on at ``where``."""
    return local(moment, where).date()


def show(
    moment: datetime | date | None,
    where: Any,
    fmt: str = "Y-m-d H:i",
    *,
    named: bool = False,
    empty: str = "—",
) -> str:
    """``moment`` as text in the time zone of ``where``, in the page's language
    (Django date format ``fmt``), followed by the zone's name in brackets when
    ``named``: in emails, on guests' pages, wherever the reader may be in
    another zone or not know the property's. A plain date is shown as is."""
    if moment is None:
        return empty
    tz = zone(where)
    if isinstance(moment, datetime):
        moment = moment.astimezone(tz)
    text = formats.date_format(moment, fmt)
    return f"{text} ({tz.key})" if named else text
