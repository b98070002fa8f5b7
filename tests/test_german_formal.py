"""German addresses people formally (Sie) everywhere, allauth's account pages,
messages and emails included: allauth's own German catalogue uses the informal
du, and src/doorkeep/locale_allauth overrides each of those messages."""

from __future__ import annotations

import gettext
import re
from pathlib import Path

import allauth
from django.test import Client
from django.utils import translation

INFORMAL = re.compile(r"\b(du|dein\w*|dich|dir)\b", re.IGNORECASE)


def _allauth_informal_messages() -> list[str]:
    mo = Path(allauth.__file__).parent / "locale" / "de" / "LC_MESSAGES" / "django.mo"
    with mo.open("rb") as handle:
        catalogue = gettext.GNUTranslations(handle)._catalog  # type: ignore[attr-defined]
    found = []
    for key, text in catalogue.items():
        msgid = key[0] if isinstance(key, tuple) else key
        if msgid and INFORMAL.search(text):
            found.append(msgid)
    return sorted(set(found))


def test_allauth_has_informal_german_that_needs_overriding() -> None:
    # If allauth ever turns formal, this override can go.
    assert len(_allauth_informal_messages()) > 20


def test_every_informal_allauth_message_reads_formally_in_german() -> None:
    informal = []
    with translation.override("de"):
        for msgid in _allauth_informal_messages():
            if INFORMAL.search(translation.gettext(msgid)):
                informal.append(msgid)
    assert informal == []


def test_the_password_reset_page_speaks_formally_in_german(db) -> None:
    page = Client(HTTP_ACCEPT_LANGUAGE="de").get("/accounts/password/reset/")
    text = page.content.decode()
    assert page.status_code == 200
    assert "Sie" in text
    assert not INFORMAL.search(re.sub(r"<[^>]+>", " ", text))
