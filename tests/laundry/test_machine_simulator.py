"""`doorkeep simulate machine` against the real gateway, as a person runs it:
a badge typed at its prompt releases the washer, the cycle it runs ends up
as a Cycle of the badge's holder with their unit, priced as a use; a wrong
secret is refused with a message, not a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from gateway_helpers import eventually
from laundry_values import SECRET, UID, WASHER

from doorkeep.billing.models import Use
from doorkeep.laundry.models import Cycle, Machine

DOORKEEP = str(Path(sys.executable).with_name("doorkeep"))


def simulate(gateway, *args: str, lines: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [DOORKEEP, "simulate", "machine", *args, "--url", gateway.url],
        input=lines,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_a_badge_typed_at_the_simulator_runs_a_cycle_that_is_the_residents(laundry, gateway):
    result = simulate(
        gateway,
        WASHER.lower(),
        "--secret",
        SECRET,
        "--cycle-seconds",
        "30",
        lines=f"list\nbadge {UID} Cotton 60\nend\nbadge 04FFFFFF\nquit\n",
    )

    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "Online, free. Programs: Cotton 60, Cotton 40, Synthetics 30, Quick 15." in out
    assert "list version 1, 1 badges" in out
    assert "RELEASED badge accepted" in out and "CYCLE 1 started: Cotton 60" in out
    assert "CYCLE 1 ended: Cotton 60, 1150 Wh" in out
    assert "REFUSED  unknown_credential" in out
    cycle = Cycle.objects.get()
    assert (cycle.machine_id, cycle.program, cycle.energy_wh) == (
        laundry.washer.pk,
        "Cotton 60",
        1150,
    )
    assert cycle.person_id == laundry.site.rosa_person.pk
    assert cycle.unit_id == laundry.site.unit.pk
    assert Use.objects.filter(cycle=cycle, person_id=cycle.person_id).exists()
    eventually(lambda: not Machine.objects.get(pk=laundry.washer.pk).online)


def test_the_simulator_says_so_when_the_gateway_refuses_the_machine(laundry, gateway):
    result = simulate(gateway, WASHER, "--secret", "not-the-secret")

    assert result.returncode == 2
    assert "the gateway refused the machine: unknown device or wrong secret (4003)" in result.stderr
    assert "Traceback" not in result.stderr
    assert not Cycle.objects.exists()


def test_the_simulator_keeps_cycles_while_offline_and_uploads_them_when_back(laundry, gateway):
    result = simulate(
        gateway,
        WASHER,
        "--secret",
        SECRET,
        "--cycle-seconds",
        "30",
        lines=f"offline\nbadge {UID} Quick 15\nend\nlist\nonline\nquit\n",
    )

    assert result.returncode == 0, result.stderr
    assert "0 events and 2 cycle records waiting" not in result.stdout
    assert "1 events and 2 cycle records waiting" in result.stdout
    assert "kept events and cycles uploaded" in result.stdout
    cycle = Cycle.objects.get()
    assert cycle.program == "Quick 15" and cycle.person_id == laundry.site.rosa_person.pk


def test_the_simulator_finds_the_gateway_of_a_platform_on_another_port(laundry, gateway, tmp_path):
    # A second terminal in any folder: PORT as the platform was given, no
    # DOORKEEP_DATA_DIR, no --url (PORT=N puts the gateway on N + 1).
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DOORKEEP_", "GATEWAY_"))}
    env["PORT"] = str(gateway.gateway.port - 1)
    result = subprocess.run(
        [DOORKEEP, "simulate", "machine", WASHER, "--secret", SECRET],
        input="list\nquit\n",
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        env=env,
    )
    assert result.returncode == 0, result.stderr
    assert "Online, free." in result.stdout
    assert not (tmp_path / "var" / "doorkeep.sqlite3").exists()
