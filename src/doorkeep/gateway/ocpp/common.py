"""What the OCPP 1.6 and 2.0.1 charge points of the gateway share: the
database, malformed frames, meter readings and times, and the calls of the
platform (the list, the commands) that each version spells its own way."""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any, TypeVar

from ocpp import exceptions as errors
from ocpp.exceptions import OCPPError
from ocpp.messages import CallError, MessageType, unpack
from websockets.exceptions import ConnectionClosed

from doorkeep.chargers.lists import ListEntry
from doorkeep.chargers.reports import Reading

if TYPE_CHECKING:
    from doorkeep.gateway.ocpp.csms import StationLink
    from doorkeep.gateway.server import Gateway

log = logging.getLogger("doorkeep.gateway.ocpp")
# The library's log of every frame (settings.LOGGING keeps it at WARNING).
FRAMES = logging.getLogger("doorkeep.gateway.ocpp.frames")
T = TypeVar("T")

ENERGY = "Energy.Active.Import.Register"
POWER = "Power.Active.Import"
SEEN_EVERY = 10.0  # seconds: how often a busy station's last_seen_at is written


class StationPoint:
    """Mixed into the ``ocpp`` library's ChargePoint of each version."""

    gateway: Gateway
    link: StationLink
    malformed_code = "FormatViolation"  # 1.6 names it FormationViolation
    # A required field missing. OCPP 1.6 names an incomplete payload
    # ProtocolError; OCPP 2.0.1 names it an occurrence constraint violation,
    # spelt as 1.6 and 2.0.1 spell it (the corrected spelling is 2.1's).
    missing_code = "OccurenceConstraintViolation"
    actions: frozenset[str] = frozenset()  # every action of the version, either direction

    def __init__(self, cp_id: str, connection: Any, gateway: Gateway, link: StationLink) -> None:
        from doorkeep.gateway.ocpp.csms import RESPONSE_TIMEOUT

        super().__init__(cp_id, connection, response_timeout=RESPONSE_TIMEOUT)  # type: ignore[call-arg]
        self.gateway, self.link = gateway, link
        # The library logs every frame at INFO (badge UIDs, whole local
        # lists): to a logger of its own, quiet unless asked for.
        self.logger = FRAMES
        # The ids of the platform's calls waiting for their answers: an
        # answer to anything else (or too late) is dropped, not queued.
        self.awaiting: set[str] = set()

    async def call(
        self,
        payload: Any,
        suppress: bool = True,
        unique_id: str | None = None,
        skip_schema_validation: bool = False,
    ) -> Any:
        unique_id = unique_id or str(uuid.uuid4())
        self.awaiting.add(unique_id)
        try:
            return await super().call(  # type: ignore[misc]
                payload, suppress, unique_id, skip_schema_validation
            )
        finally:
            self.awaiting.discard(unique_id)

    async def db(self, func: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        return await self.gateway.db(func, *args, **kwargs)

    @property
    def station_id(self) -> int:
        return self.link.session.station_id

    async def route_message(self, raw_msg: str) -> None:
        """One frame, routed as the library routes it, with the answers the
        specification names where the library gives none or another: a frame
        it cannot read gets a CALLERROR (the library would only log it); an
        action nobody knows is NotImplemented and one known but not taken
        here NotSupported (the library has them the other way round); a
        required field missing is ``missing_code``."""
        try:
            msg = unpack(raw_msg)
        except ValueError:  # an integer of more than 4,300 digits, say
            if not _is_answer(raw_msg):
                await self.send_error(
                    _unique_id(raw_msg) or "-1", self.malformed_code, "Unreadable JSON"
                )
            return
        except OCPPError as error:
            code = self.malformed_code if error.code == "FormatViolation" else error.code
            log.info("station %s sent a malformed frame: %s", self.id, error)  # type: ignore[attr-defined]
            if not _is_answer(raw_msg):  # an answer is never answered
                unique_id = _unique_id(raw_msg) or "-1"
                await self.send_error(unique_id, code, str(error.description or error.code))
            return
        if msg.message_type_id != MessageType.Call:
            if msg.unique_id not in self.awaiting:
                log.debug("station %s answered no call of ours: dropped", self.id)  # type: ignore[attr-defined]
                return
            await super().route_message(raw_msg)  # type: ignore[misc]
            return
        if not isinstance(msg.payload, dict):
            await self.send_error(msg.unique_id, self.malformed_code, "The payload is an object")
            return
        try:
            if msg.action not in self.route_map:  # type: ignore[attr-defined]
                raise self._unhandled(str(msg.action))
            await self._handle_call(msg)  # type: ignore[attr-defined]
        except errors.ProtocolError as error:  # the schema's "required" (the request's)
            await self.send_error(msg.unique_id, self.missing_code, _described(error))
        except OCPPError as error:
            await self.send_error(msg.unique_id, error.code, _described(error))
        except ConnectionClosed:
            return
        self._seen()

    def _unhandled(self, action: str) -> OCPPError:
        if action in self.actions:
            return errors.NotSupportedError(
                description="Requested Action is recognized but not supported by the receiver",
                details={"cause": f"{action} is not taken by the central system"},
            )
        return errors.NotImplementedError(
            description="Requested Action is not known by receiver",
            details={"cause": f"{action[:48]} is no OCPP action"},
        )

    def _seen(self) -> None:
        """The station's last message, recorded at most every SEEN_EVERY
        seconds (a write per message would double the database's work)."""
        now = time.monotonic()
        if now - self.link.seen_at >= SEEN_EVERY:
            self.link.seen_at = now
            self.gateway.spawn(self.gateway.seen(self.station_id), name="station-seen")

    async def send_error(self, unique_id: str, code: str, description: str) -> None:
        frame = CallError(unique_id, code, description[:255], {}).to_json()
        try:
            await self._send(frame)  # type: ignore[attr-defined]
        except Exception:
            return

    # --- what each version spells its own way --------------------------------------------

    async def local_list_version(self) -> int | None:
        raise NotImplementedError

    async def send_local_list(
        self, version: int, entries: list[ListEntry], removed: list[str], *, whole: bool
    ) -> str:
        raise NotImplementedError

    async def command(self, action: str, args: dict[str, Any]) -> str:
        raise NotImplementedError


def _described(error: OCPPError) -> str:
    cause = error.details.get("cause") if isinstance(error.details, dict) else None
    return f"{error.description}: {cause}" if cause else str(error.description or error.code)


def _is_answer(raw: str) -> bool:
    try:
        message = json.loads(raw)
    except ValueError:
        return False
    return isinstance(message, list) and bool(message) and message[0] in (3, 4)


# A frame's unique id read from its start, for a frame JSON cannot read whole.
_LEADING_ID = re.compile(r'\s*\[\s*[234]\s*,\s*"([^"\\]{1,36})"')


def _unique_id(raw: str) -> str | None:
    try:
        message = json.loads(raw)
    except ValueError:
        found = _LEADING_ID.match(raw)
        return found.group(1) if found else None
    if isinstance(message, list) and len(message) > 1 and isinstance(message[1], str):
        return message[1][:36]
    return None


def when(value: Any) -> datetime:
    """A time a station sent (ISO 8601), in UTC; now when unreadable."""
    if isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            moment = None
        if moment is not None:
            return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    return datetime.now(UTC)


def iso(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _number(value: Any) -> Decimal | None:
    try:
        number = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None
    return number if number.is_finite() else None


_SCALE = {"wh": 1, "kwh": 1000, "w": 1, "kw": 1000}
MAX_DIGITS = 15  # a reading of 10^15 Wh or more (a terawatt-hour meter) is not a reading


def _plausible(number: Decimal, multiplier: int) -> bool:
    """Whether a value can be a meter's: checked before it is scaled, since
    scaling "9e999999" or a multiplier of a million would hold the event loop
    for seconds."""
    if abs(multiplier) > 9:
        return False
    return number.is_zero() or number.adjusted() + multiplier + 3 < MAX_DIGITS


def readings(meter_values: list[dict[str, Any]] | None) -> list[Reading]:
    """Energy (Wh) and power (W) from OCPP meter values of either version:
    1.6's ``unit`` ("Wh", "kWh", "W", "kW"), 2.0.1's ``unit_of_measure`` with
    its ``multiplier``; a value per phase is not the total and is left out."""
    found = []
    for meter_value in meter_values or []:
        energy = power = None
        for sample in meter_value.get("sampled_value") or []:
            if sample.get("phase"):
                continue
            measurand = sample.get("measurand") or ENERGY
            if measurand not in (ENERGY, POWER):
                continue
            unit = sample.get("unit")
            multiplier = 0
            measure = sample.get("unit_of_measure")
            if isinstance(measure, dict):
                unit = measure.get("unit", unit)
                try:
                    multiplier = int(measure.get("multiplier") or 0)
                except (TypeError, ValueError):
                    continue
            unit = str(unit or ("Wh" if measurand == ENERGY else "W")).lower()
            number = _number(sample.get("value"))
            if number is None or unit not in _SCALE or not _plausible(number, multiplier):
                continue
            value = int((number * _SCALE[unit] * (Decimal(10) ** multiplier)).to_integral_value())
            if measurand == ENERGY and unit in ("wh", "kwh"):
                energy = value
            elif measurand == POWER and unit in ("w", "kw"):
                power = value
        if energy is not None or power is not None:
            found.append(Reading(when(meter_value.get("timestamp")), energy, power))
    return found
