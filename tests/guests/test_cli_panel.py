"""`doorkeep simulate panel`: what a panel shows, from its id or its secret."""

from __future__ import annotations

import re
import time
from typing import Any

from guest_helpers import GuestWorld

from doorkeep.cli import main
from doorkeep.guests import presence
from doorkeep.guests import services as guests
from doorkeep.guests.models import Presence


def test_the_simulated_panel_shows_a_code_that_verifies(gw: GuestWorld, capsys: Any) -> None:
    guests.accept(gw.gina, gw.invite().pk)
    panel, _secret = presence.add_panel(gw.w.alice, gw.w.entry.pk, "Lobby")
    assert (
        main(["simulate", "panel", str(panel.pk), "--once", "--base-url", "https://dk.example"])
        == 0
    )
    out = capsys.readouterr().out
    found = re.search(r"code (\d{6}) .*NFC tag: (\S+)", out)
    assert found, out
    assert found.group(2) == (
        f"https://dk.example/guest/tap/?entry={gw.w.entry.pk}&panel={panel.pk}&code={found.group(1)}"
    )
    presence.verify(gw.gina, gw.w.entry.pk, found.group(1))
    assert Presence.objects.filter(guest=gw.gina).exists()


def test_a_panel_configured_by_hand(db: None, capsys: Any) -> None:
    secret = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
    assert (
        main(["simulate", "panel", "--secret", secret, "--entry", "3", "--panel", "9", "--once"])
        == 0
    )
    code = re.search(r"code (\d{6})", capsys.readouterr().out)
    now = time.time()
    assert code and code.group(1) in {presence.code_at(secret, now - d)[0] for d in (0, 30)}


def test_clear_messages_for_bad_arguments(db: None, capsys: Any) -> None:
    assert main(["simulate", "panel", "424242", "--once"]) != 0
    assert "no panel 424242" in capsys.readouterr().err
    assert main(["simulate", "panel", "--once"]) != 0
    assert "give the panel's id" in capsys.readouterr().err
    assert (
        main(
            [
                "simulate",
                "panel",
                "--secret",
                "not base32!",
                "--entry",
                "1",
                "--panel",
                "1",
                "--once",
            ]
        )
        != 0
    )
    assert "not base32" in capsys.readouterr().err
