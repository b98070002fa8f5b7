"""The local authorization list of a charging station: the badges it keeps
to decide alone (OCPP's SendLocalList), derived from the platform's one
equipment rule (badges.access.equipment_list), and its version.

Like a lock's list, a station's list has one version, raised in the
transaction that changes what it should hold (a badge switched on or off, a
resident moving in or out, the site's billing mode, the station's parking
space) and announced to the gateway holding the station after the commit
(``changed``). The gateway compares the list with the fingerprints the
station acknowledged and sends the difference. A list that changes with
the calendar (a move-in day begins) is caught by the gateway's recheck,
which raises the version itself (``resync``)."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from doorkeep.badges.access import EquipmentDecision, equipment_list
from doorkeep.chargers.models import Station
from doorkeep.events.models import DenyReason
from doorkeep.properties.models import Property, zone_of

log = logging.getLogger("doorkeep.chargers")


class Status:
    """The answers OCPP 1.6 and 2.0.1 share (AuthorizationStatus)."""

    ACCEPTED = "Accepted"
    BLOCKED = "Blocked"
    EXPIRED = "Expired"
    INVALID = "Invalid"


def status_of(decision: EquipmentDecision) -> str:
    """Accepted, Blocked (lost or switched off), Expired (moved out) or Invalid."""
    if decision.allowed:
        return Status.ACCEPTED
    if decision.reason in (DenyReason.BADGE_LOST, DenyReason.CREDENTIAL_DEACTIVATED):
        return Status.BLOCKED
    if decision.reason == DenyReason.MOVED_OUT:
        return Status.EXPIRED
    return Status.INVALID


@dataclass(frozen=True)
class ListEntry:
    id_tag: str
    status: str
    expires: datetime | None = None  # Accepted until then (a move-out day's end)

    @property
    def fingerprint(self) -> str:
        until = self.expires.astimezone(UTC).isoformat() if self.expires else ""
        return f"{self.status}|{until}"


def entries(station: Station, *, at: datetime | None = None) -> dict[str, ListEntry]:
    """The list the station should hold now, by id tag (the badge's UID)."""
    prop = station.property
    found = {}
    for uid, decision in equipment_list(prop, at=at, space=station.parking_space).items():
        expires = end_of_day(prop, decision.until) if decision.allowed else None
        found[uid] = ListEntry(uid, status_of(decision), expires)
    return found


def end_of_day(prop: Property, day: date | None) -> datetime | None:
    """The end of ``day`` at the site (its next midnight), in UTC."""
    if day is None:
        return None
    return datetime.combine(day + timedelta(days=1), time(0), zone_of(prop)).astimezone(UTC)


def snapshot(listed: dict[str, ListEntry]) -> dict[str, str]:
    return {tag: entry.fingerprint for tag, entry in listed.items()}


def difference(
    acked: dict[str, str], listed: dict[str, ListEntry]
) -> tuple[list[ListEntry], list[str]]:
    """Entries to add or replace, and id tags to remove, to turn the list
    the station acknowledged (its fingerprints) into ``listed``."""
    changed = [e for tag, e in listed.items() if acked.get(tag) != e.fingerprint]
    removed = sorted(tag for tag in acked if tag not in listed)
    return changed, removed


# --- the version, and the notice ----------------------------------------------------------


def changed(
    *,
    property_ids: Iterable[int] = (),
    person_ids: Iterable[int] = (),
    station_ids: Iterable[int] = (),
) -> list[int]:
    """The lists of these stations may have changed: the stations at these
    sites, at the sites where these people live or lived, and these. Raises
    their version in this transaction; the gateways holding them are told
    after the commit. Returns the stations' ids."""
    from doorkeep.residents.models import Residency

    sites = set(property_ids)
    people = list(person_ids)
    if people:
        sites |= set(
            Residency.objects.filter(person_id__in=people).values_list(
                "unit__property_id", flat=True
            )
        )
    named = set(station_ids)
    if not sites and not named:
        return []
    ids = list(
        Station.objects.filter(removed_at__isnull=True)
        .filter(Q(property_id__in=sites) | Q(pk__in=named))
        .values_list("pk", flat=True)
    )
    if not ids:
        return []
    Station.objects.filter(pk__in=ids).update(list_version=F("list_version") + 1)
    transaction.on_commit(lambda: _announce(ids))
    return ids


def _announce(ids: list[int]) -> None:
    from doorkeep.gateway.routing import notify_stations

    notify_stations(ids)


def raise_version(station_id: int, seen: int) -> int:
    """The list changed without a recorded change (the calendar turned): the
    station needs a new version for it. Raises it if it is still ``seen``;
    returns the version now."""
    Station.objects.filter(pk=station_id, list_version=seen).update(
        list_version=F("list_version") + 1
    )
    return int(Station.objects.filter(pk=station_id).values_list("list_version", flat=True)[0])


def acknowledged(station_id: int, version: int, fingerprints: dict[str, str]) -> None:
    Station.objects.filter(pk=station_id).update(
        acked_version=version,
        acked_entries=fingerprints,
        last_push_at=timezone.now(),
        last_error="",
    )


def push_failed(station_id: int, error: str) -> None:
    Station.objects.filter(pk=station_id).update(last_error=error[:200])
