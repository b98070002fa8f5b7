"""OCPP 2.0.1: the station's messages to the platform's records, and the
platform's calls (list, commands) in 2.0.1's words. An EVSE's id is the
connector number the platform keeps; badges are id tokens of type
ISO14443."""

from __future__ import annotations

import secrets
from typing import Any

from ocpp.routing import after, on
from ocpp.v201 import ChargePoint, call, call_result
from ocpp.v201.enums import Action

from doorkeep.chargers import reports
from doorkeep.chargers.lists import ListEntry
from doorkeep.gateway.ocpp import answers, csms
from doorkeep.gateway.ocpp.common import StationPoint, iso, readings, when

TOKEN_TYPE = "ISO14443"  # noqa: S105 - an id token type, not a secret


def _token_info(answer: reports.Answer) -> dict[str, Any]:
    info: dict[str, Any] = {"status": answer.status}
    if answer.expires is not None:
        info["cache_expiry_date_time"] = iso(answer.expires)
    return info


def _tag(id_token: dict[str, Any] | None) -> str:
    if not isinstance(id_token, dict):
        return ""
    return str(id_token.get("id_token") or "")


def _kind(id_token: dict[str, Any] | None) -> str:
    """The id token's type: a badge is ISO14443 (or ISO15693); a key code, an
    eMAID or a central token is refused as no badge (reports.authorize)."""
    if not isinstance(id_token, dict):
        return TOKEN_TYPE
    return str(id_token.get("type") or "")


def _energies(got: list[reports.Reading]) -> list[int]:
    return [r.energy_wh for r in sorted(got, key=lambda r: r.at) if r.energy_wh is not None]


class StationPoint201(StationPoint, ChargePoint):
    actions = frozenset(str(action.value) for action in Action)

    @on(Action.boot_notification)
    async def on_boot(self, charging_station: dict[str, Any], reason: str, **kw: Any) -> Any:
        await self.db(
            reports.booted,
            self.station_id,
            vendor=str(charging_station.get("vendor_name") or ""),
            model=str(charging_station.get("model") or ""),
            serial=str(charging_station.get("serial_number") or ""),
            firmware=str(charging_station.get("firmware_version") or ""),
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
    async def on_status(self, connector_status: str, evse_id: int, **kw: Any) -> Any:
        await self.db(reports.connector_status, self.station_id, evse_id, connector_status)
        return call_result.StatusNotification()

    @on(Action.authorize)
    async def on_authorize(self, id_token: dict[str, Any], **kw: Any) -> Any:
        if _kind(id_token) in reports.BADGE_TOKENS:
            answer = await answers.authorize(self.gateway, self.link, _tag(id_token))
        else:
            answer = await self.db(
                reports.authorize, self.station_id, _tag(id_token), token_type=_kind(id_token)
            )
        return call_result.Authorize(id_token_info=_token_info(answer))

    @on(Action.transaction_event)
    async def on_transaction_event(
        self,
        event_type: str,
        timestamp: str,
        trigger_reason: str,
        seq_no: int,
        transaction_info: dict[str, Any],
        **kw: Any,
    ) -> Any:
        transaction_id = str(transaction_info.get("transaction_id") or "")
        evse = kw.get("evse") or {}
        connector = int(evse.get("id") or 0) if isinstance(evse, dict) else 0
        tag, kind = _tag(kw.get("id_token")), _kind(kw.get("id_token"))
        got = readings(kw.get("meter_value"))
        at = when(timestamp)
        answer: reports.Answer | None = None
        if event_type == "Started":
            energies = _energies(got)
            started = await self.db(
                reports.start,
                self.station_id,
                connector=connector,
                id_tag=tag,
                meter_start_wh=energies[0] if energies else None,
                at=at,
                transaction_id=transaction_id,
                remote=trigger_reason == "RemoteStart"
                or transaction_info.get("remote_start_id") is not None
                or self.link.started_remotely(tag),
                token_type=kind,
            )
            answer = started.answer if tag else None
        elif tag:
            answer = await self.db(
                reports.authorize, self.station_id, tag, what="transaction", token_type=kind
            )
        if got:
            await self.db(
                reports.meter_values,
                self.station_id,
                got,
                transaction_id=transaction_id,
                connector=connector,
                keep_unknown=True,
            )
        if tag and kind in reports.BADGE_TOKENS and event_type != "Started":
            await self.db(reports.identified, self.station_id, transaction_id, tag, at=at)
        if event_type == "Ended":
            energies = _energies(got)
            await self.db(
                reports.stop,
                self.station_id,
                transaction_id,
                meter_stop_wh=energies[-1] if energies else None,
                at=at,
                reason=str(transaction_info.get("stopped_reason") or trigger_reason or ""),
                id_tag=tag,
                connector=connector,
            )
        if answer is not None:
            return call_result.TransactionEvent(id_token_info=_token_info(answer))
        return call_result.TransactionEvent()

    @on(Action.meter_values)
    async def on_meter_values(self, evse_id: int, meter_value: list[Any], **kw: Any) -> Any:
        await self.db(
            reports.meter_values, self.station_id, readings(meter_value), connector=evse_id
        )
        return call_result.MeterValues()

    @on(Action.notify_event)
    async def on_notify_event(self, **kw: Any) -> Any:
        return call_result.NotifyEvent()

    @on(Action.notify_report)
    async def on_notify_report(self, **kw: Any) -> Any:
        return call_result.NotifyReport()

    @on(Action.security_event_notification)
    async def on_security_event(self, **kw: Any) -> Any:
        return call_result.SecurityEventNotification()

    @on(Action.firmware_status_notification)
    async def on_firmware_status(self, **kw: Any) -> Any:
        return call_result.FirmwareStatusNotification()

    # --- the platform's calls ---------------------------------------------------------------

    async def local_list_version(self) -> int | None:
        result = await self.call(call.GetLocalListVersion(), suppress=False)
        version = int(result.version_number)
        return version if version >= 0 else None

    async def send_local_list(
        self, version: int, entries: list[ListEntry], removed: list[str], *, whole: bool
    ) -> str:
        data: list[dict[str, Any]] = [
            {
                "id_token": {"id_token": entry.id_tag, "type": TOKEN_TYPE},
                "id_token_info": {
                    "status": entry.status,
                    **({"cache_expiry_date_time": iso(entry.expires)} if entry.expires else {}),
                },
            }
            for entry in entries
        ]
        data += [{"id_token": {"id_token": tag, "type": TOKEN_TYPE}} for tag in removed]
        result = await self.call(
            call.SendLocalList(
                version_number=version,
                update_type="Full" if whole else "Differential",
                local_authorization_list=data or None,
            ),
            suppress=False,
        )
        return str(result.status)

    async def command(self, action: str, args: dict[str, Any]) -> str:
        evse = int(args.get("connector") or 0)
        if action == "reset":
            payload: Any = call.Reset(type="Immediate" if args.get("hard") else "OnIdle")
        elif action == "unlock_connector":
            payload = call.UnlockConnector(evse_id=evse or 1, connector_id=1)
        elif action == "change_availability":
            payload = call.ChangeAvailability(
                operational_status="Operative" if args.get("available", True) else "Inoperative",
                evse={"id": evse} if evse else None,
            )
        elif action == "remote_start":
            payload = call.RequestStartTransaction(
                id_token={"id_token": str(args["id_tag"]), "type": TOKEN_TYPE},
                remote_start_id=secrets.randbelow(2**31 - 1) + 1,
                evse_id=evse or 1,
            )
        elif action == "remote_stop":
            payload = call.RequestStopTransaction(transaction_id=str(args["transaction_id"]))
        else:
            raise ValueError(f"unknown command {action}")
        result = await self.call(payload, suppress=False)
        return str(result.status)
