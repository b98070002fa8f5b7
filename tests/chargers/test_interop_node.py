"""Interoperability: a station of another OCPP implementation, ocpp-rpc under
Node.js (interop/station.mjs), talks to the real gateway in OCPP 1.6J and
2.0.1 with its strict schema validation on, so every frame the gateway sends
is checked against the OCPP schemas by code that shares nothing with the
Python `ocpp` library. Both sides are checked: what the station was
answered, and what the platform recorded from what it sent.

Needs `node` and the station's packages (`npm ci --prefix
tests/chargers/interop`); `.ci/run` installs both, so CI always runs it."""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from charger_values import PASSWORD, UID
from gateway_helpers import eventually

from doorkeep.badges import services as badges
from doorkeep.chargers.lists import end_of_day
from doorkeep.chargers.models import ChargingSession, MeterSample, Station
from doorkeep.residents.services import ResidentSpec, add_resident, change_residency, site_today

INTEROP = Path(__file__).resolve().parent / "interop"
CP_ID = "CP-SHARED-1"
PROTOCOLS = ["ocpp1.6", "ocpp2.0.1"]
WAIT = 30.0  # seconds for what takes well under one (a busy machine, Node's start)


@pytest.fixture(scope="module")
def node() -> str:
    """The node binary, or a skip that says what to install (before the
    gateway and the site are set up for nothing)."""
    found = shutil.which("node")
    if found is None:
        pytest.skip(
            "Node.js is missing: `apt-get install nodejs npm`, then "
            "`npm ci --prefix tests/chargers/interop` (.ci/run does both)"
        )
    if not (INTEROP / "node_modules" / "ocpp-rpc").is_dir():
        pytest.skip(
            "the interop station's packages are missing: "
            "`npm ci --prefix tests/chargers/interop` (.ci/run does it)"
        )
    return found


def command(node: str, gateway: Any, protocol: str, *extra: str) -> list[str]:
    script = str(INTEROP / "station.mjs")
    return [node, script, f"{gateway.url}/ocpp", CP_ID, PASSWORD, protocol, UID, *extra]


def converse(node: str, gateway: Any, protocol: str) -> list[dict[str, Any]]:
    """Run the Node station's conversation against the gateway; its JSON lines."""
    result = subprocess.run(
        command(node, gateway, protocol),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=INTEROP,
        check=False,
    )
    assert result.returncode == 0, f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    return [json.loads(line) for line in result.stdout.splitlines() if line.strip()]


class Staying:
    """The Node station, staying connected after its conversation until told
    to go; its JSON lines as they come."""

    def __init__(self, node: str, gateway: Any, protocol: str) -> None:
        self.lines: list[dict[str, Any]] = []
        self.process = subprocess.Popen(
            command(node, gateway, protocol, "stay"),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=INTEROP,
        )
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            if line.strip():
                self.lines.append(json.loads(line))

    def handled(self, method: str) -> list[dict[str, Any]]:
        return handled(list(self.lines), method)

    def wait_for(self, check: Any) -> None:
        """Until ``check()`` holds; the station's lines if it exits first."""
        eventually(lambda: check() or self.process.poll() is not None, timeout=WAIT)
        assert check(), f"exit {self.process.poll()}: {self.lines}"

    def leave(self) -> list[dict[str, Any]]:
        """Close its standard input: it closes the connection and exits."""
        assert self.process.stdin is not None and self.process.stderr is not None
        if not self.process.stdin.closed:
            self.process.stdin.close()
        try:
            code = self.process.wait(timeout=WAIT)
        except subprocess.TimeoutExpired:
            self.process.kill()
            raise
        self.reader.join(WAIT)
        stderr = self.process.stderr.read()
        assert code == 0, f"exit {code}\nstdout:\n{self.lines}\nstderr:\n{stderr}"
        return self.lines


def calls(lines: list[dict[str, Any]], method: str) -> list[dict[str, Any]]:
    return [line for line in lines if line.get("call") == method]


def handled(lines: list[dict[str, Any]], method: str) -> list[dict[str, Any]]:
    return [line for line in lines if line.get("handled") == method]


def refused(lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Frames that failed either side's validation, and calls left unanswered."""
    return [
        line
        for line in lines
        if "strictValidationFailure" in line
        or "badMessage" in line
        or "error" in line
        or line.get("answer") == "NotImplemented"
    ]


def list_version(line: dict[str, Any]) -> int:
    params = line["params"]
    return int(params["listVersion"] if "listVersion" in params else params["versionNumber"])


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_an_ocpp_rpc_station_charges_with_rosas_badge(node, stations, gateway, protocol):
    site = stations.site
    # Rosa moves out in a month: every answer about her badge, and the list,
    # carry a date (a format the schemas check).
    last_day = site_today(site.world.prop) + timedelta(days=30)
    change_residency(site.world.alice, site.residency.pk, move_out=last_day)

    lines = converse(node, gateway, protocol)
    v16 = protocol == "ocpp1.6"

    assert not refused(lines)
    assert lines[0] == {"connected": protocol}

    # The station's side: what it was answered.
    (boot,) = calls(lines, "BootNotification")
    assert boot["answer"]["status"] == "Accepted"
    assert boot["answer"]["interval"] > 0
    (authz,) = calls(lines, "Authorize")
    info, expiry = ("idTagInfo", "expiryDate") if v16 else ("idTokenInfo", "cacheExpiryDateTime")
    assert authz["answer"][info]["status"] == "Accepted"
    until = datetime.fromisoformat(authz["answer"][info][expiry].replace("Z", "+00:00"))
    assert until == end_of_day(site.world.prop, last_day)  # midnight after it, at the site
    if v16:
        (start,) = calls(lines, "StartTransaction")
        (stop,) = calls(lines, "StopTransaction")
        transaction_id = str(start["answer"]["transactionId"])
        meter_start = start["params"]["meterStart"]
        meter_stop = stop["params"]["meterStop"]
        vendor = boot["params"]["chargePointVendor"]
        model = boot["params"]["chargePointModel"]
    else:
        start, stop = calls(lines, "TransactionEvent")
        assert (start["params"]["eventType"], stop["params"]["eventType"]) == ("Started", "Ended")
        transaction_id = start["params"]["transactionInfo"]["transactionId"]
        meter_start = start["params"]["meterValue"][0]["sampledValue"][0]["value"]
        meter_stop = stop["params"]["meterValue"][0]["sampledValue"][0]["value"]
        vendor = boot["params"]["chargingStation"]["vendorName"]
        model = boot["params"]["chargingStation"]["model"]
    assert start["answer"][info]["status"] == "Accepted"
    assert stop["answer"][info]["status"] == "Accepted"
    (meter,) = calls(lines, "MeterValues")
    assert meter["answer"] == {}

    # The gateway asked for the station's list version (it held none), then
    # sent the whole list: Rosa's badge, until the end of her last day.
    (asked,) = handled(lines, "GetLocalListVersion")
    assert asked["answer"] == ({"listVersion": 0} if v16 else {"versionNumber": 0})
    (sent,) = handled(lines, "SendLocalList")
    assert sent["params"]["updateType"] == "Full"
    assert sent["answer"] == {"status": "Accepted"}
    assert sent["held"][UID]["status"] == "Accepted"
    assert sent["held"][UID][expiry] == authz["answer"][info][expiry]

    # The platform's side: what it recorded from what the station sent.
    station = Station.objects.get(pk=stations.shared.pk)
    assert (station.vendor, station.model) == (vendor, model)
    session = ChargingSession.objects.get(station=station, transaction_id=transaction_id)
    assert session.person_id == site.rosa_person.pk
    assert session.badge_id == stations.badge.pk
    assert session.unit_id == site.unit.pk
    assert session.connector == 1
    assert (session.meter_start_wh, session.meter_stop_wh) == (meter_start, meter_stop)
    assert session.energy_wh == meter_stop - meter_start == 1500
    assert session.started_at < session.stopped_at
    assert not session.review
    samples = MeterSample.objects.filter(session=session).values_list("energy_wh", flat=True)
    assert 1500 in samples  # the MeterValues reading, sent in kWh

    # The list the station acknowledged is the one the platform recorded.
    eventually(lambda: Station.objects.get(pk=station.pk).acked_version == list_version(sent))
    station.refresh_from_db()
    assert station.list_version == list_version(sent)
    assert station.acked_entries.keys() == {UID}


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_an_ocpp_rpc_station_follows_the_list_through_differential_updates(
    node, stations, gateway, protocol
):
    site = stations.site
    station = Staying(node, gateway, protocol)
    try:
        station.wait_for(lambda: any("staying" in line for line in station.lines))
        (whole,) = station.handled("SendLocalList")
        assert whole["params"]["updateType"] == "Full"

        # Bea moves into B-3 with a badge, and out again yesterday; Rosa's
        # move-out is set a month ahead, then she reports her badge lost.
        bea = add_resident(
            site.world.alice,
            site.world.prop.pk,
            ResidentSpec(
                name="Bea",
                email="bea@example.com",
                move_in=date(2024, 5, 1),
                unit_id=site.other_unit.pk,
            ),
        )
        card = badges.register_existing_badge(
            site.world.alice,
            site.world.prop.pk,
            bea.person_id,
            uid="04112233",
            atqa="0004",
            sak="08",
        )
        station.wait_for(lambda: card.uid in station.handled("SendLocalList")[-1]["held"])
        today = site_today(site.world.prop)
        change_residency(site.world.alice, bea.pk, move_out=today - timedelta(days=1))
        change_residency(site.world.alice, site.residency.pk, move_out=today + timedelta(days=30))
        badges.report_lost(site.rosa, stations.badge.pk)

        def in_step() -> bool:
            held = Station.objects.get(pk=stations.shared.pk)
            return held.acked_version == held.list_version

        eventually(in_step, timeout=WAIT)
    finally:
        lines = station.leave()

    assert not refused(lines)
    sent = handled(lines, "SendLocalList")
    assert [line["params"]["updateType"] for line in sent[1:]] == ["Differential"] * (len(sent) - 1)
    assert all(line["answer"] == {"status": "Accepted"} for line in sent)
    # What the station holds after the differences is what the platform lists.
    held = sent[-1]["held"]
    assert held.keys() == {UID, "04112233"}
    assert held[UID]["status"] == "Blocked"
    assert held["04112233"]["status"] == "Expired"  # Bea moved out: refused even offline
    recorded = Station.objects.get(pk=stations.shared.pk)
    assert recorded.acked_version == recorded.list_version == list_version(sent[-1])
    assert recorded.acked_entries.keys() == {UID, "04112233"}
