"""``{{ event.reason|in_words }}``: an event's reason code in the reader's
language (events/reasons.py), as the event log shows it."""

from __future__ import annotations

from django import template

from doorkeep.events.reasons import reason_text

register = template.Library()


@register.filter
def in_words(code: str) -> str:
    return reason_text(code) if code else ""
