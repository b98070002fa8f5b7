from __future__ import annotations

import asyncio
import base64

from ocpp.v16 import ChargePoint, call
from websockets.asyncio.client import connect

from conftest import PASSWORD, UID
from gateway_helpers import eventually

from doorkeep.chargers.models import ChargingSession, Station


def test_a_16_conversation(stations, gateway):
    auth = base64.b64encode(f"CP-SHARED-1:{PASSWORD}".encode()).decode()

    async def talk():
        async with connect(
            f"{gateway.url}/ocpp/CP-SHARED-1",
            subprotocols=["ocpp1.6"],
            additional_headers={"Authorization": f"Basic {auth}"},
        ) as ws:
            cp = ChargePoint("CP-SHARED-1", ws)
            task = asyncio.create_task(cp.start())
            boot = await cp.call(
                call.BootNotification(charge_point_model="M", charge_point_vendor="V")
            )
            authz = await cp.call(call.Authorize(id_tag=UID))
            start = await cp.call(
                call.StartTransaction(
                    connector_id=1, id_tag=UID, meter_start=1000, timestamp="2026-12-06T10:00:00Z"
                )
            )
            await cp.call(
                call.MeterValues(
                    connector_id=1,
                    transaction_id=start.transaction_id,
                    meter_value=[
                        {
                            "timestamp": "2026-12-06T10:05:00Z",
                            "sampledValue": [{"value": "1.5", "unit": "kWh"}],
                        }
                    ],
                )
            )
            stop = await cp.call(
                call.StopTransaction(
                    meter_stop=2500,
                    timestamp="2026-12-06T10:10:00Z",
                    transaction_id=start.transaction_id,
                )
            )
            task.cancel()
            return boot, authz, start, stop

    boot, authz, start, stop = gateway.run(talk())
    assert boot.status == "Accepted"
    assert authz.id_tag_info["status"] == "Accepted"
    session = ChargingSession.objects.get(transaction_id=str(start.transaction_id))
    assert session.energy_wh == 1500
    eventually(lambda: Station.objects.get(pk=stations.shared.pk).acked_version > 0)
