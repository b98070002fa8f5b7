"""An NTAG 424 DNA panel as a guest meets it: `doorkeep simulate panel` (run
as a person runs it, on the served platform's PORT, without
DOORKEEP_DATA_DIR) gives the URL of a tap; the phone's browser opens it on
the live server, signs in, confirms, and presence is verified. The same URL
does not work twice, and a property that requires the tag hides typed codes."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import requests
from django.conf import settings
from django.db import connection
from guest_helpers import PASSWORD, GuestWorld, open_policy

from doorkeep.guests import services as guests
from doorkeep.guests import tags
from doorkeep.guests.models import Panel, Presence

DOORKEEP = str(Path(sys.executable).with_name("doorkeep"))


def database_url() -> str:
    db = connection.settings_dict
    if db["ENGINE"] == "django.db.backends.sqlite3":
        return f"sqlite:///{db['NAME']}"
    return f"postgres://{db['USER']}:{db['PASSWORD'] or ''}@{db['HOST']}:{db['PORT']}/{db['NAME']}"


def simulate_tap(panel_id: int, port: int, cwd: Path) -> str:
    """One tap of the simulated panel, run in a new terminal's environment."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DOORKEEP_", "DATABASE_URL", "PORT", "SITE_URL"))
    }
    env.update(
        PORT=str(port),
        DATABASE_URL=database_url(),
        DOORKEEP_ENCRYPTION_KEYS=",".join(settings.DOORKEEP_ENCRYPTION_KEYS),
    )
    result = subprocess.run(
        [DOORKEEP, "simulate", "panel", str(panel_id), "--once"],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    found = re.search(r"NFC tag: (\S+)", result.stdout)
    assert found, result.stdout
    return found.group(1)


def csrf(page: requests.Response) -> str:
    found = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)
    assert found, page.text[:500]
    return found.group(1)


def test_a_guest_taps_a_tag_panel_signs_in_and_presence_is_verified(
    gw: GuestWorld, live_server: Any, tmp_path: Path
) -> None:
    open_policy(gw.w, require_presence=True, require_tag=True)
    guests.accept(gw.gina, gw.invite().pk)
    panel, _keys = tags.add_tag_panel(gw.w.alice, gw.w.entry.pk, "Lobby tag")
    port = urlsplit(live_server.url).port
    url = simulate_tap(panel.pk, port, tmp_path)
    assert url.startswith(f"http://127.0.0.1:{port}/guest/tag/{panel.pk}/?picc_data=")

    phone = requests.Session()
    login = phone.get(url, timeout=30)  # the tap, then the sign-in page
    assert "/accounts/login/" in login.url
    confirm = phone.post(
        login.url,
        data={"login": gw.gina.email, "password": PASSWORD, "csrfmiddlewaretoken": csrf(login)},
        headers={"Referer": login.url},
        timeout=30,
    )
    assert urlsplit(confirm.url).path == "/guest/tag/confirm/"
    assert gw.w.entry.name in confirm.text
    done = phone.post(
        confirm.url,
        data={"csrfmiddlewaretoken": csrf(confirm)},
        headers={"Referer": confirm.url},
        timeout=30,
    )
    assert done.status_code == 200 and "Presence verified" in done.text
    assert Presence.objects.filter(guest=gw.gina, property=gw.w.prop).exists()

    again = phone.get(url, timeout=30)  # the same URL, opened again (or sent on)
    assert again.status_code == 409 and "already used" in again.text
    verify_page = phone.get(f"http://127.0.0.1:{port}/guest/entries/{gw.w.entry.pk}/verify/")
    assert 'id="tag-only"' in verify_page.text and 'id="code-form"' not in verify_page.text


def test_a_forged_tap_answers_a_page_not_a_server_error(gw: GuestWorld, live_server: Any) -> None:
    panel, _keys = tags.add_tag_panel(gw.w.alice, gw.w.entry.pk, "Lobby tag")
    base = f"{live_server.url}/guest/tag/{panel.pk}/"
    forged = requests.get(f"{base}?picc_data={'AB' * 16}&cmac={'00' * 8}", timeout=30)
    assert forged.status_code == 400 and "could not be read" in forged.text
    assert requests.get(f"{base}?picc_data=zz&cmac=", timeout=30).status_code == 400
    unknown = requests.get(f"{live_server.url}/guest/tag/999999/?picc_data=&cmac=", timeout=30)
    assert unknown.status_code == 404


def test_the_building_manager_installs_a_tag_panel_and_requires_the_tag(gw: GuestWorld) -> None:
    w = gw.w
    alice = w.client(w.alice)
    installed = alice.post(
        f"/properties/{w.prop.pk}/panels/", {"entry": w.entry.pk, "name": "Lobby", "tag": "ntag424"}
    )
    panel = Panel.objects.get()
    page = installed.content.decode()
    assert installed.status_code == 200 and panel.tag == "ntag424"
    assert panel.sdm_meta_read_key in page and panel.sdm_file_read_key in page
    assert f"/guest/tag/{panel.pk}/?picc_data={'0' * 32}&amp;cmac={'0' * 16}" in page
    assert "no-cache" in installed["Cache-Control"]
    later = alice.get(f"/properties/{w.prop.pk}/guests/").content.decode()
    assert panel.sdm_meta_read_key not in later and "NTAG 424 DNA" in later
    saved = alice.post(
        f"/properties/{w.prop.pk}/guests/policy/",
        {
            "sharing_enabled": "on",
            "shareable": [str(w.entry.pk)],
            "max_guests_per_resident": "5",
            "require_presence": "on",
            "require_tag": "on",
        },
    )
    assert saved.status_code == 302 and guests.policy_of(w.prop.pk).require_tag
