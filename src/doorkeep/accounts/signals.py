"""Hooks into django-allauth: a confirmed email address links the keys issued
to that address, and a new account gets its own organization."""

from __future__ import annotations

from typing import Any

from allauth.account.signals import email_confirmed, user_signed_up
from django.dispatch import receiver

from doorkeep.accounts.models import User
from doorkeep.accounts.services import ensure_personal_organization


@receiver(user_signed_up)
def _on_signup(sender: Any, request: Any, user: User, **kwargs: Any) -> None:
    ensure_personal_organization(user)


@receiver(email_confirmed)
def _on_email_confirmed(sender: Any, request: Any, email_address: Any, **kwargs: Any) -> None:
    from doorkeep.keys.services import link_account

    user = email_address.user
    if email_address.email.lower() == user.email.lower():
        link_account(user)
