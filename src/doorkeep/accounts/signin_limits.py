"""Wrong passwords, limited the same way for the web sign-in (allauth, through
doorkeep.accounts.adapter) and for API tokens (POST /api/v1/auth/tokens).
See docs/decisions/0021-limits-per-account-and-address.md.

Three budgets of failures per hour, kept in the database (core.ratelimit):

- one account from one address: the tight one, which stops a guesser;
- one account from every address: a much higher ceiling against guessing
  spread over many addresses;
- one address, whatever the accounts: against one place trying a password
  on many accounts.

Each try takes a slot of every budget before the password is checked (so a
burst of concurrent tries cannot get past a limit) and gives them back when
the password was right: only failures count. So a stranger who guesses at an
account from elsewhere uses up only the budgets of their own address, and
the account's owner still signs in from theirs."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.utils.translation import gettext as _

from doorkeep.core import ratelimit
from doorkeep.core.clientip import limit_key
from doorkeep.core.models import RateLimitBucket

WINDOW = timedelta(hours=1)


def _account(email: str) -> str:
    """The login as a short digest: keys stay short, and no address is stored."""
    return hashlib.sha256(email.strip().lower().encode()).hexdigest()[:32]


@dataclass
class SignInAttempt:
    taken: list[str]

    def succeeded(self) -> None:
        """The password was right: the try does not count."""
        ratelimit.give_back_all(self.taken, window=WINDOW)
        self.taken = []


def begin(email: str, address: str) -> SignInAttempt:
    """Take one slot of each budget a password try uses, or raise
    RateLimited (taking none) when one of them is used up."""
    limits = settings.DOORKEEP
    account = _account(email)
    budgets = [(f"login:account:{account}", int(limits["LOGIN_FAILURES_PER_ACCOUNT"]))]
    if address:  # no address (command line, tests): only the account's own budget
        where = limit_key(address)
        per_pair = int(limits["LOGIN_FAILURES_PER_ACCOUNT_ADDRESS"])
        budgets.insert(0, (f"login:account-address:{account}:{where}", per_pair))
        budgets.append((f"login:address:{where}", int(limits["LOGIN_FAILURES_PER_ADDRESS"])))
    message = _("Too many failed sign-in attempts. Wait an hour, then try again.")
    return SignInAttempt(taken=ratelimit.take_all(budgets, window=WINDOW, message=message))


def forget_account(email: str) -> None:
    """The account's password was just reset by email: its failures, from
    every address, no longer hold its owner back."""
    account = _account(email)
    RateLimitBucket.objects.filter(key=f"login:account:{account}").delete()
    RateLimitBucket.objects.filter(key__startswith=f"login:account-address:{account}:").delete()
