"""Gateway leases: how the platform notices a gateway that died.

Every running gateway holds a row in GatewayLease and renews it every
quarter of DOORKEEP_GATEWAY_LEASE_SECONDS. A gateway killed with -9, a
machine that lost its power or its network, renews no more: once its lease
has run out, the first of the gateways still running that looks deletes the
lease and records the dead gateway's locks, charging stations and laundry
machines offline, with an event each. When those devices reconnect, to any
gateway, that gateway takes them over as usual.

Every time is the database's clock (``Now()``), so gateways on machines whose
clocks disagree still agree on which lease has run out. A gateway that was
alive all along but could not renew (a stall longer than the lease) finds
its lease gone at its next renewal: it takes a new one and records the
devices it still holds online again (``reclaim``). Decision 0024.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import DateTimeField, ExpressionWrapper, Model, QuerySet
from django.db.models.functions import Now
from django.utils.translation import gettext as _

from doorkeep.events.models import EventKind
from doorkeep.events.services import record
from doorkeep.gateway.models import Device, GatewayLease

log = logging.getLogger("doorkeep.gateway")


def seconds() -> float:
    """How long a lease lasts without renewal."""
    return float(settings.DOORKEEP_GATEWAY_LEASE_SECONDS)


def renew_every() -> float:
    """How often a gateway renews its lease (and looks for dead ones)."""
    return seconds() / 4


def _expiry() -> ExpressionWrapper:
    return ExpressionWrapper(Now() + timedelta(seconds=seconds()), output_field=DateTimeField())


def take(gateway: str, url: str) -> Swept:
    """A gateway starts: its lease, from now. Devices still recorded as held
    under its id were held by a predecessor of the same id that did not stop
    cleanly (`doorkeep serve` restarts its gateway under the same id): they
    are recorded offline, with an event each, and its lease is taken over."""
    with transaction.atomic():
        left = _offline(gateway, _("gateway %(gateway)s restarted") % {"gateway": gateway})
        GatewayLease.objects.update_or_create(
            gateway=gateway,
            defaults={
                "url": url,
                "started_at": Now(),
                "renewed_at": Now(),
                "expires_at": _expiry(),
            },
        )
    return left


def renew(gateway: str, url: str) -> bool:
    """Extend the lease. False when it was gone (another gateway took it for
    dead): it is taken again, and the caller must ``reclaim`` its devices."""
    if GatewayLease.objects.filter(gateway=gateway).update(
        url=url, renewed_at=Now(), expires_at=_expiry()
    ):
        return True
    try:
        with transaction.atomic():
            GatewayLease.objects.create(
                gateway=gateway,
                url=url,
                started_at=Now(),
                renewed_at=Now(),
                expires_at=_expiry(),
            )
    except IntegrityError:  # taken again meanwhile by a gateway of the same id
        pass
    return False


def held(gateway: str) -> bool:
    """Whether the gateway's lease is there (it was not taken for dead)."""
    return GatewayLease.objects.filter(gateway=gateway).exists()


def give_up(gateway: str) -> Swept:
    """A gateway stops cleanly: its devices were recorded offline one by one;
    any whose write failed is recorded offline here, then the lease goes
    (a device left online under a gateway without a lease would never be
    swept)."""
    with transaction.atomic():
        left = _offline(gateway, _("gateway %(gateway)s stopped") % {"gateway": gateway})
        GatewayLease.objects.filter(gateway=gateway).delete()
    return left


@dataclass(frozen=True)
class Swept:
    """What was recorded offline for one dead gateway."""

    gateway: str
    locks: int
    stations: int
    machines: int


def sweep() -> list[Swept]:
    """Every gateway whose lease ran out: delete the lease and record its
    devices offline. Several gateways may sweep at once: the one whose
    DELETE removed the lease does the rest, in the same transaction, so each
    device gets one event."""
    swept = []
    for gateway in GatewayLease.objects.filter(expires_at__lt=Now()).values_list(
        "gateway", flat=True
    ):
        try:  # each dead gateway on its own: one that fails does not hold up the others
            with transaction.atomic():
                deleted, _rows = GatewayLease.objects.filter(
                    gateway=gateway, expires_at__lt=Now()
                ).delete()
                if deleted:
                    why = _("gateway %(gateway)s stopped answering") % {"gateway": gateway}
                    swept.append(_offline(gateway, why))
        except Exception:
            log.exception("could not record the devices of gateway %s offline", gateway)
    return swept


def _offline(gateway: str, why: str) -> Swept:
    """Record the devices held under ``gateway`` offline, each with its event."""
    held = {kind: rows.filter(gateway=gateway, online=True) for kind, rows in _devices().items()}
    flipped = _flip_all(held, online=False, data={"reason": why[:100]})
    return Swept(gateway, *(len(flipped[kind]) for kind in KINDS))


def reclaim(
    gateway: str,
    url: str,
    *,
    locks: Iterable[int] = (),
    stations: Iterable[int] = (),
    machines: Iterable[int] = (),
) -> Reclaimed:
    """The gateway was taken for dead but still holds these connections (lock
    ids, station ids, machine ids): record them online again, under it. A
    device that reconnected elsewhere meanwhile is left to that gateway.
    Returns the ids recorded online (the caller records offline again any
    whose connection closed meanwhile: its goodbye found nothing to undo)."""
    devices = _devices()
    asked = {
        "lock": devices["lock"].filter(lock_id__in=list(locks)),
        "station": devices["station"].filter(pk__in=list(stations)),
        "machine": devices["machine"].filter(pk__in=list(machines)),
    }
    with transaction.atomic():
        flipped = _flip_all(
            {kind: rows.filter(online=False, gateway="") for kind, rows in asked.items()},
            online=True,
            data={"gateway": gateway},
            gateway=gateway,
            gateway_url=url,
        )
    return Reclaimed(
        [row["lock_id"] for row in flipped["lock"]],
        [row["pk"] for row in flipped["station"]],
        [row["pk"] for row in flipped["machine"]],
    )


@dataclass(frozen=True)
class Reclaimed:
    """The lock, station and machine ids a reclaim recorded online again."""

    locks: list[int]
    stations: list[int]
    machines: list[int]

    def __len__(self) -> int:
        return len(self.locks) + len(self.stations) + len(self.machines)


KINDS = ("lock", "station", "machine")


def _devices() -> dict[str, QuerySet[Any]]:
    """The rows that say which gateway holds a device, by kind."""
    from doorkeep.chargers.models import Station
    from doorkeep.laundry.models import Machine

    return {
        "lock": Device.objects.all(),
        "station": Station.objects.all(),
        "machine": Machine.objects.all(),
    }


def _flip_all(
    rows: dict[str, QuerySet[Any]], *, online: bool, data: dict[str, Any], **fields: str
) -> dict[str, list[dict[str, Any]]]:
    """``_flip`` each kind's rows, and record each device's event."""
    flipped = {}
    for kind, matching in rows.items():
        flipped[kind] = _flip(matching, online=online, **fields)
        for row in flipped[kind]:
            _record(kind, row, online=online, data=data)
    return flipped


def _record(kind: str, row: dict[str, Any], *, online: bool, data: dict[str, Any]) -> None:
    """The device's "came online" or "went offline" event, as the gateway
    writes it when a connection opens or closes."""
    if kind == "lock":
        if row["lock__organization_id"] is None:
            return  # the lock was removed meanwhile: nobody's log to write to
        record(
            EventKind.DEVICE_CONNECTED if online else EventKind.DEVICE_DISCONNECTED,
            organization_id=row["lock__organization_id"],
            lock_id=row["lock_id"],
            summary=_("Lock online") if online else _("Lock offline"),
            data=data,
        )
    elif kind == "station":
        record(
            EventKind.STATION_CONNECTED if online else EventKind.STATION_DISCONNECTED,
            organization_id=row["organization_id"],
            property_id=row["property_id"],
            station_id=row["pk"],
            summary=_("Charging station online") if online else _("Charging station offline"),
            data=data,
        )
    else:
        words = (
            _("Laundry machine %(machine)s online")
            if online
            else _("Laundry machine %(machine)s offline")
        )
        record(
            EventKind.MACHINE_CONNECTED if online else EventKind.MACHINE_DISCONNECTED,
            organization_id=row["organization_id"],
            property_id=row["property_id"],
            machine_id=row["pk"],
            summary=words % {"machine": row["label"]},
            data=data,
        )


def _flip(rows: QuerySet[Any], *, online: bool, **fields: str) -> list[dict[str, Any]]:
    """Set ``online`` (and ``fields``; offline empties the gateway) on the rows
    that still match, and return those rows: selected FOR UPDATE first, so
    that a device reconnecting meanwhile is either flipped or left alone,
    never half."""
    model: type[Model] = rows.model
    wanted = ["pk"]
    if model is Device:
        wanted += ["lock_id", "lock__organization_id"]
    else:
        wanted += ["organization_id", "property_id", "name"]
        if model._meta.model_name == "machine":
            wanted.append("serial")
    if not online:
        fields = {"gateway": "", "gateway_url": ""}
    with transaction.atomic():
        found = list(rows.select_for_update(of=("self",)).values(*wanted))
        if found:
            rows.filter(pk__in=[row["pk"] for row in found]).update(online=online, **fields)
    for row in found:
        if "serial" in row:
            row["label"] = row["name"] or row["serial"]
    return found


def live() -> dict[str, str]:
    """The gateways whose lease is running: id -> URL."""
    return dict(GatewayLease.objects.filter(expires_at__gte=Now()).values_list("gateway", "url"))
