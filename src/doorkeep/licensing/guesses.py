"""Wrong prepaid codes: what counts as a guess, and the limits on guesses
(docs/licensing.md; docs/decisions/0021-limits-per-account-and-address.md).

A guess is a code that is not one of ours: not a code at all, a typo, or a
well-formed code nobody issued. A code that exists but cannot be used (used
already, expired, for the other kind of product, not usable in the lock's
state) is the card in the person's hand, not a guess, and does not count.

Two budgets per hour: per account, and per client address. The address
budget stops one machine guessing through many accounts; once it is used
up, an account of some standing (older than a day) that has not guessed
wrong itself this hour may still enter a code, so the colleagues of an
office behind one address are not locked out by one person's mistakes, and
every further account a guesser brings gets one guess an hour."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.utils import timezone
from django.utils.translation import gettext as _

from doorkeep.accounts.models import User
from doorkeep.core import ratelimit
from doorkeep.core.clientip import limit_key
from doorkeep.core.errors import RateLimited

WINDOW = timedelta(hours=1)
ESTABLISHED = timedelta(days=1)
GUESSES = frozenset({"not_a_code", "code_typo", "unknown_code"})


@dataclass
class CodeAttempt:
    taken: list[str]

    def settle(self, refusal: str | None) -> None:
        """The code was accepted (``refusal`` None) or refused with that
        code: only a guess keeps its slots."""
        if refusal in GUESSES:
            return
        ratelimit.give_back_all(self.taken, window=WINDOW)
        self.taken = []


def begin(actor: User, client_ip: str) -> CodeAttempt:
    """Take a slot of the actor's budget and of the address's, or raise RateLimited."""
    message = _("Too many wrong codes. Wait an hour, then try again.")
    limits = settings.DOORKEEP
    account_key = f"code:user:{actor.pk}"
    made = ratelimit.take(
        account_key, limit=int(limits["CODE_ATTEMPTS_PER_HOUR"]), window=WINDOW, message=message
    )
    attempt = CodeAttempt(taken=[account_key])
    if not client_ip:  # no address (command line, tests): do not lump all such callers together
        return attempt
    address_key = f"code:ip:{limit_key(client_ip)}"
    try:
        ratelimit.take(
            address_key,
            limit=int(limits["CODE_ATTEMPTS_PER_ADDRESS_PER_HOUR"]),
            window=WINDOW,
            message=message,
        )
    except RateLimited:
        clean = made == 1  # no guess of its own this hour (other attempts were given back)
        if not clean or actor.date_joined > timezone.now() - ESTABLISHED:
            attempt.settle(None)
            raise
        return attempt
    attempt.taken.append(address_key)
    return attempt
