"""Template tags that put the laundry machines on pages other apps render:
the Laundry section of a site's page (``{% laundry_site_section %}``, with
``prop`` in the context) and of the resident portal
(``{% laundry_portal_section %}``). Each renders nothing for someone who
may not see it. The sections are web/machines/_section.html and
_portal.html; views/machines.py makes their content."""

from __future__ import annotations

from typing import Any

from django import template
from django.template.loader import render_to_string
from django.utils.safestring import SafeString, mark_safe

from doorkeep.accounts.models import User

register = template.Library()


def _user(context: template.Context) -> User | None:
    request = context.get("request")
    user = getattr(request, "user", None)
    return user if isinstance(user, User) else None


@register.simple_tag(takes_context=True)
def laundry_site_section(context: template.Context) -> SafeString:
    from doorkeep.web.views.machines import section

    user, prop = _user(context), context.get("prop")
    if user is None or prop is None:
        return mark_safe("")
    laundry: dict[str, Any] | None = section(user, prop)
    if laundry is None:
        return mark_safe("")
    return mark_safe(  # noqa: S308 - rendered by the template engine, escaped there
        render_to_string("web/machines/_section.html", laundry, request=context.get("request"))
    )


@register.simple_tag(takes_context=True)
def laundry_portal_section(context: template.Context) -> SafeString:
    from doorkeep.web.views.machines import portal_section

    user = _user(context)
    if user is None:
        return mark_safe("")
    laundry = portal_section(user)
    if not laundry["sites"]:
        return mark_safe("")
    return mark_safe(  # noqa: S308 - rendered by the template engine, escaped there
        render_to_string(
            "web/machines/_portal.html", {"laundry": laundry}, request=context.get("request")
        )
    )
