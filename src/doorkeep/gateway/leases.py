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
    from doorkeep.chargers.models import Station
    from doorkeep.laundry.models import Machine

    locks = _flip(Device.objects.filter(gateway=gateway, online=True), online=False)
    for device in locks:
        if device["lock__organization_id"] is None:
            continue  # the lock was removed meanwhile: nobody's log to write to
        record(
            EventKind.DEVICE_DISCONNECTED,
            organization_id=device["lock__organization_id"],
            lock_id=device["lock_id"],
            summary=_("Lock offline"),
            data={"reason": why[:100]},
        )
    stations = _flip(Station.objects.filter(gateway=gateway, online=True), online=False)
    for station in stations:
        record(
            EventKind.STATION_DISCONNECTED,
            organization_id=station["organization_id"],
            property_id=station["property_id"],
            station_id=station["pk"],
            summary=_("Charging station offline"),
            data={"reason": why[:100]},
        )
    machines = _flip(Machine.objects.filter(gateway=gateway, online=True), online=False)
    for machine in machines:
        record(
            EventKind.MACHINE_DISCONNECTED,
            organization_id=machine["organization_id"],
            property_id=machine["property_id"],
            machine_id=machine["pk"],
            summary=_("Laundry machine %(machine)s offline") % {"machine": machine["label"]},
            data={"reason": why[:100]},
        )
    return Swept(gateway, len(locks), len(stations), len(machines))


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
    from doorkeep.chargers.models import Station
    from doorkeep.laundry.models import Machine

    back = {"gateway": gateway, "gateway_url": url}
    with transaction.atomic():
        devices = _flip(
            Device.objects.filter(lock_id__in=list(locks), online=False, gateway=""),
            online=True,
            **back,
        )
        for device in devices:
            if device["lock__organization_id"] is None:
                continue  # removed meanwhile; the watch round closes its connection
            record(
                EventKind.DEVICE_CONNECTED,
                organization_id=device["lock__organization_id"],
                lock_id=device["lock_id"],
                summary=_("Lock online"),
                data={"gateway": gateway},
            )
        held = _flip(
            Station.objects.filter(pk__in=list(stations), online=False, gateway=""),
            online=True,
            **back,
        )
        for station in held:
            record(
                EventKind.STATION_CONNECTED,
                organization_id=station["organization_id"],
                property_id=station["property_id"],
                station_id=station["pk"],
                summary=_("Charging station online"),
                data={"gateway": gateway},
            )
        kept = _flip(
            Machine.objects.filter(pk__in=list(machines), online=False, gateway=""),
            online=True,
            **back,
        )
        for machine in kept:
            record(
                EventKind.MACHINE_CONNECTED,
                organization_id=machine["organization_id"],
                property_id=machine["property_id"],
                machine_id=machine["pk"],
                summary=_("Laundry machine %(machine)s online") % {"machine": machine["label"]},
                data={"gateway": gateway},
            )
    return Reclaimed(
        [row["lock_id"] for row in devices],
        [row["pk"] for row in held],
        [row["pk"] for row in kept],
    )


@dataclass(frozen=True)
class Reclaimed:
    """The lock, station and machine ids a reclaim recorded online again."""

    locks: list[int]
    stations: list[int]
    machines: list[int]

    def __len__(self) -> int:
        return len(self.locks) + len(self.stations) + len(self.machines)


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
