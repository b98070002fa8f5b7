"""Reasons in words: an event keeps a stable code in ``reason`` (for the API
and programs); the web log and the CSV's ``reason_text`` column show it in the
reader's language."""

from __future__ import annotations

import functools
from typing import Any

from django.utils.translation import gettext_lazy as _

from doorkeep.events.models import DenyReason

# Every code the platform writes as an event's reason, besides DenyReason.
_WORDS: dict[str, Any] = {
    # remote unlock: what the lock did
    "lock_offline": _("The lock was offline"),
    "lock_timeout": _("The lock did not answer in time"),
    "lock_refused": _("The lock refused to open"),
    # prepaid codes
    "code_typo": _("Typing error in the code"),
    "not_a_code": _("Not a prepaid code"),
    "unknown_code": _("Unknown code"),
    "code_used": _("Code already used"),
    "code_expired": _("Code expired"),
    "wrong_product": _("Code for another product"),
    "option_needs_management": _("The option needs full management first"),
    "already_upgraded": _("Already upgraded"),
    "rate_limited": _("Too many attempts: tried again too soon"),
    # registering a lock
    "unknown_serial": _("Unknown serial number"),
    "wrong_claim_secret": _("Wrong claim secret"),
    # devices
    "wrong_secret": _("Wrong device secret"),
    "wrong_password": _("Wrong password"),
    "gateway stopped": _("The gateway stopped"),
    # keys taken back
    "lock_removed": _("The lock was removed"),
    # payments
    "too_large": _("More than the amount due"),
}


@functools.cache
def _all_words() -> dict[str, Any]:
    """The codes above, the access decision's and those of the other apps'
    choices written as reasons (a charging session or laundry cycle to
    review, a payment's outcome)."""
    from doorkeep.billing.models import PaymentOutcome
    from doorkeep.chargers.models import Review
    from doorkeep.laundry.models import CycleReview

    words: dict[str, Any] = {}
    for choices in (PaymentOutcome, CycleReview, Review, DenyReason):
        words.update(choices.choices)
    return words | _WORDS


def reason_text(code: str) -> str:
    """``code`` in words, in the active language; a reason that is no code of
    the platform's (a charging station's own stop reason, say) as it came."""
    if not code:
        return ""
    words = _all_words().get(code)
    return str(words) if words is not None else code


def known_codes() -> set[str]:
    return set(_all_words())
