"""Demo mode on the sign-in page: ``{% demo_logins %}`` lists the demo's
logins when `doorkeep serve --demo` runs (settings.DOORKEEP_DEMO), and
renders nothing otherwise."""

from __future__ import annotations

from typing import Any

from django import template
from django.conf import settings

register = template.Library()


@register.inclusion_tag("web/demo/logins.html")
def demo_logins() -> dict[str, Any]:
    if not settings.DOORKEEP_DEMO:
        return {"demo": False}
    from doorkeep.web.demo_logins import LOGINS, PASSWORD

    return {"demo": True, "logins": LOGINS, "password": PASSWORD}


@register.simple_tag
def demo_mode() -> bool:
    return bool(settings.DOORKEEP_DEMO)
