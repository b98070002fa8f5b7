"""The interface in French, Dutch, Italian and German (E7): every message of
the source is translated, placeholders survive translation, the compiled
catalogues are those of the .po files, and a page is served in the language
asked for.

The catalogue checks use GNU gettext's tools (``make messages`` needs them
too); ``.ci/run`` installs them where they are missing."""

from __future__ import annotations

import gettext
import html
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from django.core.management import call_command
from django.test import Client, override_settings

import doorkeep

PACKAGE = Path(doorkeep.__file__).parent
LANGUAGES = ["fr", "nl", "it", "de"]
# %(name)s, %(count)d, %s, %d, {name}: what must come through a translation unchanged.
PLACEHOLDER = re.compile(r"%\(\w+\)[sd]|%[sd]|\{\w*\}")


def _po(language: str) -> Path:
    return PACKAGE / "locale" / language / "LC_MESSAGES" / "django.po"


def _catalogue(mo: Path) -> dict[object, str]:
    with mo.open("rb") as handle:
        return dict(gettext.GNUTranslations(handle)._catalog)  # type: ignore[attr-defined]


def _po_string(lines: list[str]) -> str:
    """The text of a .po string written over one or more quoted lines."""
    return "".join(
        line.strip()[1:-1].encode("latin-1", "backslashreplace").decode("unicode_escape")
        for line in lines
    )


def _plural_msgids(po: Path) -> dict[str, str]:
    """msgid -> msgid_plural of the catalogue's plural messages (a compiled
    catalogue keeps only the singular)."""
    found: dict[str, str] = {}
    entry = re.compile(r'^msgid ((?:".*"\n)+)msgid_plural ((?:".*"\n)+)', re.M)
    for singular, plural in entry.findall(po.read_text(encoding="utf-8")):
        found[_po_string(singular.split("\n")[:-1])] = _po_string(plural.split("\n")[:-1])
    return found


def _needs_gettext() -> None:
    missing = [tool for tool in ("msgfmt", "msgcmp", "xgettext") if shutil.which(tool) is None]
    if missing:
        pytest.skip(
            f"GNU gettext is missing ({', '.join(missing)}): `apt-get install gettext` "
            "(.ci/run does it) to check the catalogues"
        )


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_compiled_catalogue_is_the_po_file_compiled(language, tmp_path):
    _needs_gettext()
    fresh = tmp_path / "django.mo"
    subprocess.run(["msgfmt", "--check", "-o", str(fresh), str(_po(language))], check=True)
    committed = _po(language).with_suffix(".mo")
    assert _catalogue(committed) == _catalogue(fresh), "run `make messages` and commit the .mo"


@pytest.mark.parametrize("language", LANGUAGES)
def test_placeholders_come_through_every_translation(language):
    plurals = _plural_msgids(_po(language))
    broken = []
    for key, translated in _catalogue(_po(language).with_suffix(".mo")).items():
        if key == "":
            continue  # the header
        if isinstance(key, tuple):  # a plural form: it may leave the number out ("une clé"),
            # or use it where only the English plural does ("These %(counter)s badges")
            allowed = set(PLACEHOLDER.findall(key[0])) | set(
                PLACEHOLDER.findall(plurals.get(key[0], ""))
            )
            if not set(PLACEHOLDER.findall(translated)) <= allowed:
                broken.append((key, translated))
        elif sorted(PLACEHOLDER.findall(str(key))) != sorted(PLACEHOLDER.findall(translated)):
            broken.append((key, translated))
    assert broken == []


def test_every_message_of_the_source_is_translated(tmp_path, monkeypatch):
    """The messages are extracted afresh from a copy of the package (so that
    nothing here is written to), and each language must translate them all."""
    _needs_gettext()
    copy = tmp_path / "doorkeep"
    shutil.copytree(
        PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__", "locale", "migrations")
    )
    (copy / "locale").mkdir()
    monkeypatch.chdir(copy)
    with override_settings(LOCALE_PATHS=[copy / "locale"]):
        call_command(
            "makemessages", locale=["fr"], add_location="file", no_obsolete=True, verbosity=0
        )
    extracted = copy / "locale" / "fr" / "LC_MESSAGES" / "django.po"
    assert extracted.stat().st_size > 10_000  # the extraction did find the messages
    for language in LANGUAGES:
        compared = subprocess.run(
            ["msgcmp", str(_po(language)), str(extracted)],
            capture_output=True,
            text=True,
            check=False,
        )
        assert compared.returncode == 0, (
            f"{language}: untranslated, fuzzy or missing messages (`make messages`, then "
            f"translate):\n{compared.stderr[:3000]}"
        )


@pytest.mark.parametrize("language", LANGUAGES)
def test_a_page_is_served_in_the_language_asked_for(world, language):
    catalogue = _catalogue(_po(language).with_suffix(".mo"))
    client = Client(headers={"accept-language": f"{language},en;q=0.5"})
    client.force_login(world.alice)

    body = html.unescape(client.get("/").content.decode())

    assert f'<html lang="{language}">' in body
    for msgid in ("Locks", "My doors", "Sign out"):
        assert catalogue[msgid] != msgid
        assert f">{catalogue[msgid]}<" in body, msgid
