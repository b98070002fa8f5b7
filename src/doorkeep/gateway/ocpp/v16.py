"""OCPP 1.6J: the station's messages to the platform's records, and the
platform's calls (list, commands) in 1.6's words."""

from __future__ import annotations

from typing import Any

from ocpp.routing import after, on
from ocpp.v16 import ChargePoint, call, call_result
from ocpp.v16.enums import Action

from doorkeep.chargers import reports
from doorkeep.chargers.lists import ListEntry
from doorkeep.gateway.ocpp import answers, csms
from doorkeep.gateway.ocpp.common import StationPoint, iso, readings, when


def _id_tag_info(answer: reports.Answer) -> dict[str, Any]:
    info: dict[str, Any] = {"status": answer.status}
    if answer.expires is not None:
        info["expiry_date"] = iso(answer.expires)
    return info


class StationPoint16(StationPoint, ChargePoint):
    malformed_code = "FormationViolation"
    missing_code = "ProtocolError"  # "Payload for Action is incomplete"
    actions = frozenset(str(action.value) for action in Action)

    @on(Action.boot_notification)
    async def on_boot(self, charge_point_vendor: str, charge_point_model: str, **kw: Any) -> Any:
        await self.db(
            reports.booted,
            self.station_id,
            vendor=charge_point_vendor,
            model=charge_point_model,
            serial=kw.get("charge_point_serial_number") or kw.get("charge_box_serial_number") or "",
            firmware=kw.get("firmware_version") or "",
        )
        return call_result.BootNotification(
            current_time=iso(when(None)) or "",
            interval=csms.HEARTBEAT_INTERVAL,
            status="Accepted",
        )

    @after(Action.boot_notification)
    def after_boot(self, **kw: Any) -> None:
        self.link.booted.set()

    @on(Action.heartbeat)
    async def on_heartbeat(self, **kw: Any) -> Any:
        await self.db(reports.seen, self.station_id, heartbeat=True)
        return call_result.Heartbeat(current_time=iso(when(None)) or "")

    @on(Action.status_notification)
    async def on_status(self, connector_id: int, error_code: str, status: str, **kw: Any) -> Any:
        code = "" if error_code == "NoError" else error_code
        await self.db(reports.connector_status, self.station_id, connector_id, status, code)
        return call_result.StatusNotification()

    @on(Action.authorize)
    async def on_authorize(self, id_tag: str, **kw: Any) -> Any:
        answer = await answers.authorize(self.gateway, self.link, id_tag)
        return call_result.Authorize(id_tag_info=_id_tag_info(answer))

    @on(Action.start_transaction)
    async def on_start(
        self, connector_id: int, id_tag: str, meter_start: int, timestamp: str, **kw: Any
    ) -> Any:
        started = await self.db(
            reports.start,
            self.station_id,
            connector=connector_id,
            id_tag=id_tag,
            meter_start_wh=meter_start,
            at=when(timestamp),
            remote=self.link.started_remotely(id_tag),
        )
        return call_result.StartTransaction(
            transaction_id=int(started.transaction_id), id_tag_info=_id_tag_info(started.answer)
        )

    @on(Action.stop_transaction)
    async def on_stop(self, meter_stop: int, timestamp: str, transaction_id: int, **kw: Any) -> Any:
        id_tag = kw.get("id_tag") or ""
        session = await self.db(
            reports.stop,
            self.station_id,
            str(transaction_id),
            meter_stop_wh=meter_stop,
            at=when(timestamp),
            reason=kw.get("reason") or "Local",
            id_tag=id_tag,
        )
        if kw.get("transaction_data"):
            await self.db(
                reports.meter_values,
                self.station_id,
                readings(kw["transaction_data"]),
                transaction_id=session.transaction_id,
            )
        if id_tag:
            answer = await self.db(reports.authorize, self.station_id, id_tag, what="stop")
            return call_result.StopTransaction(id_tag_info=_id_tag_info(answer))
        return call_result.StopTransaction()

    @on(Action.meter_values)
    async def on_meter_values(self, connector_id: int, meter_value: list[Any], **kw: Any) -> Any:
        transaction = kw.get("transaction_id")
        await self.db(
            reports.meter_values,
            self.station_id,
            readings(meter_value),
            transaction_id=None if transaction is None else str(transaction),
            connector=connector_id,
        )
        return call_result.MeterValues()

    @on(Action.data_transfer)
    async def on_data_transfer(self, vendor_id: str, **kw: Any) -> Any:
        return call_result.DataTransfer(status="UnknownVendorId")

    # --- the platform's calls ---------------------------------------------------------------

    async def local_list_version(self) -> int | None:
        result = await self.call(call.GetLocalListVersion(), suppress=False)
        version = int(result.list_version)
        return version if version >= 0 else None

    async def send_local_list(
        self, version: int, entries: list[ListEntry], removed: list[str], *, whole: bool
    ) -> str:
        data: list[dict[str, Any]] = [
            {
                "id_tag": entry.id_tag,
                "id_tag_info": {
                    "status": entry.status,
                    **({"expiry_date": iso(entry.expires)} if entry.expires else {}),
                },
            }
            for entry in entries
        ]
        data += [{"id_tag": tag} for tag in removed]
        result = await self.call(
            call.SendLocalList(
                list_version=version,
                update_type="Full" if whole else "Differential",
                local_authorization_list=data,
            ),
            suppress=False,
        )
        return str(result.status)

    async def command(self, action: str, args: dict[str, Any]) -> str:
        if action == "reset":
            payload: Any = call.Reset(type="Hard" if args.get("hard") else "Soft")
        elif action == "unlock_connector":
            payload = call.UnlockConnector(connector_id=int(args.get("connector") or 1))
        elif action == "change_availability":
            payload = call.ChangeAvailability(
                connector_id=int(args.get("connector") or 0),
                type="Operative" if args.get("available", True) else "Inoperative",
            )
        elif action == "remote_start":
            payload = call.RemoteStartTransaction(
                id_tag=str(args["id_tag"]), connector_id=int(args.get("connector") or 1)
            )
        elif action == "remote_stop":
            payload = call.RemoteStopTransaction(transaction_id=int(args["transaction_id"]))
        else:
            raise ValueError(f"unknown command {action}")
        result = await self.call(payload, suppress=False)
        return str(result.status)
