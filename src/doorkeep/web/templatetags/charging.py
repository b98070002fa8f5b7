"""Template filters for charging stations: energy and power as people read
them, in the page's language (``{{ session.energy_wh|kwh }}``)."""

from __future__ import annotations

from decimal import Decimal

from django import template
from django.utils.formats import number_format
from django.utils.translation import gettext as _

register = template.Library()


@register.filter
def kwh(wh: int | None) -> str:
    """Watt-hours as kWh with three decimals (exact: energy is kept in Wh),
    or a dash when unknown."""
    if wh is None or isinstance(wh, bool):
        return "—"
    return _("%(energy)s kWh") % {"energy": number_format(Decimal(int(wh)) / 1000, 3)}


@register.filter
def kw(watts: int | None) -> str:
    """Watts as kW with one decimal, or a dash when unknown."""
    if watts is None or isinstance(watts, bool):
        return "—"
    return _("%(power)s kW") % {"power": number_format(Decimal(int(watts)) / 1000, 1)}
