"""The simulator commands as a person runs them, in a second terminal and a
folder of their choice, without DOORKEEP_DATA_DIR: on the PORT the platform
was given, or found from the `doorkeep serve` of the same folder; and a clear
message, not a traceback, when there is no platform database to read."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from gateway_helpers import DEVICE_SECRET, Running, give, start_gateway

from doorkeep import serving

DOORKEEP = str(Path(sys.executable).with_name("doorkeep"))


def clean_env(**extra: str) -> dict[str, str]:
    """The environment of a new terminal: none of the test's Doorkeep settings."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DOORKEEP_", "DATABASE_URL", "PORT", "GATEWAY_", "SITE_URL"))
    }
    return {**env, **extra}


def run(args: list[str], cwd: Path, env: dict[str, str], stdin: str = "") -> Any:
    return subprocess.run(
        [DOORKEEP, "simulate", *args],
        cwd=cwd,
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_a_simulated_panel_without_a_database_says_what_to_do(tmp_path: Path) -> None:
    result = run(["panel", "1", "--once"], tmp_path, clean_env(PORT="8090"))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert f"no Doorkeep database at {tmp_path / 'var' / 'doorkeep.sqlite3'}" in result.stderr
    assert "DOORKEEP_DATA_DIR or DATABASE_URL" in result.stderr
    assert not (tmp_path / "var" / "doorkeep.sqlite3").exists()


def test_a_panel_configured_by_hand_makes_urls_on_the_port_given(tmp_path: Path) -> None:
    zeros = "0" * 32
    tag = ["--meta-key", zeros, "--file-key", zeros, "--uid", "04DE5F1EACC040"]
    result = run(
        ["panel", *tag, "--panel", "4", "--counter", "60", "--once"],
        tmp_path,
        clean_env(PORT="8090"),
    )
    assert result.returncode == 0, result.stderr
    # AN12196's example tag (all-zero keys, this UID, counter 61) gives this SDMMAC.
    assert "tap 61  NFC tag: http://127.0.0.1:8090/guest/tag/4/?picc_data=" in result.stdout
    assert result.stdout.strip().endswith("&cmac=94EED9EE65337086")


def test_a_simulated_lock_reaches_the_gateway_of_a_platform_on_another_port(
    world: Any, gateway: Running, tmp_path: Path
) -> None:
    from doorkeep.gateway.services import set_device_secret

    set_device_secret(world.lock, DEVICE_SECRET)
    port = gateway.gateway.port - 1  # PORT=N puts the gateway on N + 1
    result = run(
        ["lock", world.lock.serial, "--secret", DEVICE_SECRET],
        tmp_path,
        clean_env(PORT=str(port)),
        stdin="status\nquit\n",
    )
    assert result.returncode == 0, result.stderr
    assert f"connecting to ws://127.0.0.1:{gateway.gateway.port}" in result.stdout
    assert "Online." in result.stdout


def test_a_simulated_lock_finds_the_platform_served_from_the_same_folder(
    world: Any, gateway: Running, tmp_path: Path, settings: Any
) -> None:
    from doorkeep.gateway.services import set_device_secret

    set_device_secret(world.lock, DEVICE_SECRET)
    # `PORT=… doorkeep serve` in tmp_path notes where it runs (./var/serving.json).
    settings.DATA_DIR = tmp_path / "var"
    settings.PORT, settings.GATEWAY_PORT = gateway.gateway.port - 1, gateway.gateway.port
    settings.SITE_URL = f"http://127.0.0.1:{gateway.gateway.port - 1}"
    serving.note(web_host="0.0.0.0", gateway=True)  # noqa: S104
    result = run(
        ["lock", world.lock.serial, "--secret", DEVICE_SECRET],
        tmp_path,
        clean_env(),  # no PORT in the simulator's terminal
        stdin="quit\n",
    )
    assert result.returncode == 0, result.stderr
    assert "Online." in result.stdout
    serving.forget()
    assert not (tmp_path / "var" / "serving.json").exists()


def test_a_simulated_lock_says_it_lost_the_gateway_and_comes_back_when_it_is_restarted(
    transactional_db: None, world: Any, tmp_path: Path
) -> None:
    import queue
    import threading
    import time

    from test_simulator_reconnect import gateway_on

    from doorkeep.events.models import Event
    from doorkeep.gateway.models import Device
    from doorkeep.gateway.services import set_device_secret

    set_device_secret(world.lock, DEVICE_SECRET)
    give(world, pin="2580")
    first, stop_first = start_gateway()
    port = first.gateway.port
    simulator = subprocess.Popen(
        [DOORKEEP, "simulate", "lock", world.lock.serial, "--secret", DEVICE_SECRET],
        cwd=tmp_path,
        env=clean_env(GATEWAY_URL=f"ws://127.0.0.1:{port}"),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()
    seen: list[str] = []
    assert simulator.stdout is not None and simulator.stdin is not None
    output = simulator.stdout
    threading.Thread(target=lambda: [lines.put(line) for line in output], daemon=True).start()

    def wait_for(text: str) -> str:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                line = lines.get(timeout=0.5)
            except queue.Empty:
                continue
            seen.append(line)
            if text in line:
                return line
        raise AssertionError(f"no {text!r} in {''.join(seen)}")

    def type_in(command: str) -> None:
        assert simulator.stdin is not None
        simulator.stdin.write(command + "\n")
        simulator.stdin.flush()

    second_stop = None
    try:
        wait_for("Online. Type:")
        stop_first()
        lost = wait_for("connection lost (1001")
        assert "reconnecting in" in lost
        type_in("pin 2580")  # decided alone while the gateway is away
        wait_for("OPEN  granted")
        second, second_stop = gateway_on(port)
        back = wait_for("back online")
        assert "(reconnection 1)" in back
        type_in("list")
        assert "0 events waiting" in wait_for("events waiting")
        assert Device.objects.get(lock=world.lock).gateway == second.gateway.id
        assert Event.objects.filter(lock=world.lock, device_seq__isnull=False).count() == 1
        # offline on purpose: no reconnecting; online resumes it.
        type_in("offline")
        wait_for("Offline:")
        type_in("online")
        wait_for("Online again")
        type_in("quit")
        simulator.stdin.close()
        assert simulator.wait(30) == 0
        assert simulator.stderr is not None
        assert "Traceback" not in simulator.stderr.read()
    finally:
        if simulator.poll() is None:
            simulator.kill()
            simulator.wait()
        if second_stop is not None:
            second_stop()


def test_a_simulated_lock_refused_by_the_gateway_stops_with_the_reason(
    world: Any, gateway: Running, tmp_path: Path
) -> None:
    from doorkeep.gateway.services import set_device_secret

    set_device_secret(world.lock, DEVICE_SECRET)
    result = run(
        ["lock", world.lock.serial, "--secret", "dks_not-the-secret", "--url", gateway.url],
        tmp_path,
        clean_env(),
        stdin="status\n",
    )
    assert result.returncode == 2
    assert "not reconnecting" in result.stdout
    assert "Online." not in result.stdout
    assert "the gateway refused the lock: unknown device or wrong secret (4003)" in result.stderr
    assert "Traceback" not in result.stderr
