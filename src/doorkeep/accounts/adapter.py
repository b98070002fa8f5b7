"""django-allauth's adapter (settings.ACCOUNT_ADAPTER): the account emails
(address confirmation, password reset) greet from Doorkeep and end with the
site's public address (SITE_URL), not the host a request happened to use
("Hello from 127.0.0.1:8600")."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from allauth.account.adapter import DefaultAccountAdapter
from django.conf import settings

PRODUCT = "Doorkeep"


@dataclass(frozen=True)
class PublicSite:
    """What allauth's email templates read as ``current_site``."""

    name: str
    domain: str


def public_site() -> PublicSite:
    return PublicSite(name=PRODUCT, domain=settings.SITE_URL)


class AccountAdapter(DefaultAccountAdapter):
    def send_mail(self, template_prefix: str, email: str, context: dict[str, Any]) -> None:
        super().send_mail(template_prefix, email, {**context, "current_site": public_site()})
