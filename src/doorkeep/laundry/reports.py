"""What laundry machines' controllers report, turned into the platform's
records: the connection, the machine's state, the badge decisions it made
by itself (events), and its cycles. Plain synchronous functions, called by
the gateway (gateway/laundry/machines.py) in its database threads.

A cycle is stored once per controller sequence number however often it is
sent (a lost acknowledgement, the memory of a controller that was offline):
a start or an end sent again finds the same row. An end whose start the
platform never got is stored and flagged for review, never dropped; when its
start comes after all, the flag goes. Once a cycle has ended (and its start
is known) it is a use of the site's equipment: ``billing.usage`` prices it,
in the same transaction."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from django.db import transaction
from django.db.models import Max
from django.utils import timezone
from django.utils.translation import gettext as _

from doorkeep.badges.access import decide_equipment
from doorkeep.badges.models import Badge
from doorkeep.events.models import DenyReason, Event, EventKind
from doorkeep.events.services import record
from doorkeep.gateway.laundry.protocol import CycleRecord
from doorkeep.gateway.protocol import ProtocolError, parse_time
from doorkeep.gateway.services import Holder
from doorkeep.laundry import lists
from doorkeep.laundry.models import Cycle, CycleReview, Machine, MachineState
from doorkeep.properties.models import Property, zone_of
from doorkeep.residents.models import Residency

log = logging.getLogger("doorkeep.gateway")

REFUSED = "unknown device or wrong secret"
REFUSED_EVENT_EVERY = timedelta(minutes=1)  # at most one "wrong secret" event per machine
MAX_CLOCK_SKEW = timedelta(days=400)  # a time further from ours is taken as received


class MachineRefused(Exception):
    """Unknown serial, removed machine or wrong secret (not said which)."""


@dataclass(frozen=True)
class MachineSession:
    machine_id: int
    serial: str
    organization_id: int
    property_id: int
    acked_version: int
    acked_entries: dict[str, str]
    last_seq: int  # the highest event seq stored
    last_cycle: int  # the highest cycle seq stored
    secret_digest: str
    label: str


def _take_turn(machine_id: int) -> None:
    """Lock the machine's row until the transaction ends: its uploads are
    stored one at a time (a reconnecting controller may send a batch twice
    at once, on its old and its new connection)."""
    list(Machine.objects.select_for_update().filter(pk=machine_id).order_by().values_list("pk"))


def authenticate(serial: str, secret: str, *, peer: str = "") -> MachineSession:
    """The controller's hello: its serial and device secret. An unknown
    serial, a removed machine and a wrong secret are refused alike; the log
    says which, and a wrong secret is in the machine's events (at most once
    a minute)."""
    machine = Machine.objects.filter(serial=serial.strip().upper()).first()
    if machine is None or machine.removed_at is not None:
        log.warning("refused machine %r from %s: unknown or removed serial", serial[:32], peer)
        raise MachineRefused
    if not secrets.compare_digest(machine.secret_digest, Machine.digest_of(secret)):
        log.warning("refused machine %s from %s: wrong secret", machine.serial, peer)
        with transaction.atomic():
            _take_turn(machine.pk)  # attempts at once make one event
            if not Event.objects.filter(
                machine_id=machine.pk,
                kind=EventKind.MACHINE_REFUSED,
                occurred_at__gte=timezone.now() - REFUSED_EVENT_EVERY,
            ).exists():
                record(
                    EventKind.MACHINE_REFUSED,
                    organization_id=machine.organization_id,
                    property_id=machine.property_id,
                    machine_id=machine.pk,
                    reason="wrong_secret",
                    summary=_("A laundry machine with a wrong secret tried to connect"),
                    data={"peer": peer} if peer else None,
                )
        raise MachineRefused
    last_cycle = Cycle.objects.filter(machine=machine).aggregate(top=Max("seq"))["top"] or 0
    return MachineSession(
        machine.pk,
        machine.serial,
        machine.organization_id,
        machine.property_id,
        machine.acked_version,
        dict(machine.acked_entries or {}),
        machine.last_seq,
        last_cycle,
        machine.secret_digest,
        machine.label,
    )


def connected(
    session: MachineSession,
    *,
    gateway: str,
    url: str,
    at: datetime,
    firmware: str,
    clock_offset_ms: int | None,
    state: str | None,
    programs: list[str] | None,
) -> Holder | None:
    """Record that ``gateway`` holds the machine's connection, opened ``at``.
    Returns the gateway that held it until now, if another one still thinks
    it does."""
    before = (
        Machine.objects.filter(pk=session.machine_id, online=True)
        .exclude(gateway__in=["", gateway])
        .values_list("gateway", "gateway_url", "connected_at")
        .first()
    )
    fields: dict[str, Any] = {
        "online": True,
        "gateway": gateway,
        "gateway_url": url,
        "connected_at": at,
        "last_seen_at": at,
        "firmware": firmware[:40],
        "clock_offset_ms": clock_offset_ms,
        "last_error": "",
    }
    if state is not None:
        fields.update(state=state, state_at=at)
    if programs is not None:
        fields["programs"] = programs
    Machine.objects.filter(pk=session.machine_id).update(**fields)
    record(
        EventKind.MACHINE_CONNECTED,
        organization_id=session.organization_id,
        property_id=session.property_id,
        machine_id=session.machine_id,
        summary=_("Laundry machine %(machine)s online") % {"machine": session.label},
        data={"firmware": firmware[:40], "gateway": gateway},
    )
    return Holder(*before) if before else None


def disconnected(
    session: MachineSession, *, gateway: str, reason: str, connected_at: datetime
) -> None:
    """Offline, if this gateway still holds the machine by this connection
    or an older one (it may have connected again meanwhile). The flag and its
    event are one transaction."""
    with transaction.atomic():
        _disconnected(session, gateway=gateway, reason=reason, connected_at=connected_at)


def _disconnected(
    session: MachineSession, *, gateway: str, reason: str, connected_at: datetime
) -> None:
    gone = Machine.objects.filter(
        pk=session.machine_id, gateway=gateway, connected_at__lte=connected_at
    ).update(online=False, gateway="", gateway_url="", last_seen_at=timezone.now())
    if gone:
        record(
            EventKind.MACHINE_DISCONNECTED,
            organization_id=session.organization_id,
            property_id=session.property_id,
            machine_id=session.machine_id,
            summary=_("Laundry machine %(machine)s offline") % {"machine": session.label},
            data={"reason": reason[:100]},
        )


def report_state(
    session: MachineSession,
    *,
    state: str | None,
    programs: list[str] | None,
    firmware: str | None,
    clock_offset_ms: int | None,
) -> None:
    now = timezone.now()
    fields: dict[str, Any] = {"last_seen_at": now}
    if state is not None:
        fields.update(state=state, state_at=now)
    if programs is not None:
        fields["programs"] = programs
    if firmware is not None:
        fields["firmware"] = firmware[:40]
    if clock_offset_ms is not None:
        fields["clock_offset_ms"] = clock_offset_ms
    Machine.objects.filter(pk=session.machine_id).update(**fields)


@dataclass(frozen=True)
class Standing:
    """What a gateway checks of each machine it holds, every round."""

    organization_id: int
    secret_digest: str
    list_version: int


def standing(machine_ids: Iterable[int]) -> dict[int, Standing]:
    """The owner, device secret and list version of each machine not removed,
    by id: a machine missing here was removed; one with another owner or
    secret must reconnect."""
    rows = Machine.objects.filter(pk__in=list(machine_ids), removed_at__isnull=True).values_list(
        "pk", "organization_id", "secret_digest", "list_version"
    )
    return {pk: Standing(org, digest, version) for pk, org, digest, version in rows}


# --- the list -------------------------------------------------------------------------------


Current = tuple[int, str, dict[int, lists.Entry]]  # version, time zone, entries


def current(machine_id: int) -> Current:
    """The machine's list version, its site's time zone and the list."""
    machine = Machine.objects.select_related("property").get(pk=machine_id)
    prop = machine.property
    return machine.list_version, zone_of(prop).key, lists.entries(prop)


def current_many(machine_ids: list[int]) -> dict[int, Current]:
    """``current`` of many machines, each site's list worked out once."""
    found: dict[int, Current] = {}
    shared: dict[int, dict[int, lists.Entry]] = {}
    for machine in Machine.objects.select_related("property").filter(pk__in=machine_ids):
        if machine.property_id not in shared:
            shared[machine.property_id] = lists.entries(machine.property)
        found[machine.pk] = (
            machine.list_version,
            zone_of(machine.property).key,
            shared[machine.property_id],
        )
    return found


# --- badge decisions ------------------------------------------------------------------------


def _moment(value: datetime, now: datetime) -> datetime:
    """A time the controller sent, believed unless it is far from ours (a
    controller whose clock was never set)."""
    return now if abs(value - now) > MAX_CLOCK_SKEW else value


def _stored_events(machine_id: int, seqs: set[int]) -> set[tuple[int, datetime]]:
    found = set()
    rows = Event.objects.filter(machine_id=machine_id, device_seq__in=seqs).values_list(
        "device_seq", "data__device_clock"
    )
    for seq, clock in rows:
        if seq is None:
            continue
        try:
            found.add((int(seq), parse_time(clock, "at")))
        except (ProtocolError, TypeError, ValueError):
            continue
    return found


def store_events(session: MachineSession, batch: list[dict[str, Any]]) -> list[int]:
    """The badge decisions the controller made by itself: a granted one is
    ``laundry.authorized`` naming the badge's holder (from the list entry,
    a badge id), a denied one ``laundry.refused``; for a tag the controller
    did not hold, the platform's rule says why (reported lost, moved out,
    not a resident...) and whose badge it is. Each event is stored once per
    (seq, time by the controller's clock). Returns the seqs to acknowledge."""
    now = timezone.now()
    with transaction.atomic():
        _take_turn(session.machine_id)
        machine = Machine.objects.select_related("property").get(pk=session.machine_id)
        prop = machine.property
        stored = _stored_events(machine.pk, {item["seq"] for item in batch})
        entries = {item["entry"] for item in batch if isinstance(item.get("entry"), int)}
        badges = {
            b.pk: b
            for b in Badge.objects.filter(
                pk__in=entries, organization_id=session.organization_id
            ).select_related("person")
        }
        rows = []
        for item in batch:
            if (item["seq"], item["at"]) in stored:
                continue  # sent again: stored already
            stored.add((item["seq"], item["at"]))
            rows.append(_event_row(machine, prop, item, badges, now))
        Event.objects.bulk_create(rows)
        top = max(item["seq"] for item in batch)
        Machine.objects.filter(pk=machine.pk, last_seq__lt=top).update(last_seq=top)
        Machine.objects.filter(pk=machine.pk).update(last_seen_at=now)
    return sorted(item["seq"] for item in batch)


def _event_row(
    machine: Machine,
    prop: Property,
    item: dict[str, Any],
    badges: dict[int, Badge],
    now: datetime,
) -> Event:
    granted = item["outcome"] == "granted"
    occurred = _moment(item["at"], now)
    badge = badges.get(item["entry"]) if isinstance(item.get("entry"), int) else None
    reason = "" if granted else str(item.get("reason") or DenyReason.UNKNOWN_CREDENTIAL)[:40]
    data: dict[str, Any] = {"source": "machine", "device_clock": item["device_clock"]}
    if item.get("entry") is not None:
        data["entry"] = item["entry"]
    if "tag" in item:
        data["tag"] = item["tag"]
        if reason == DenyReason.UNKNOWN_CREDENTIAL:
            # The controller does not hold it: the platform's rule says why.
            decision = decide_equipment(prop, item["tag"], at=occurred)
            badge = decision.badge
            if not decision.allowed and decision.reason:
                reason = decision.reason
    person = badge.person if badge is not None else None
    if granted:
        summary = _("%(machine)s released for %(name)s") % {
            "machine": machine.label,
            "name": person.name if person else _("an unknown badge"),
        }
    else:
        why = DenyReason(reason).label if reason in DenyReason.values else reason
        summary = _("%(machine)s refused a badge: %(reason)s") % {
            "machine": machine.label,
            "reason": why,
        }
        if person is not None:
            summary = _("%(machine)s refused the badge of %(name)s: %(reason)s") % {
                "machine": machine.label,
                "name": person.name,
                "reason": why,
            }
    return Event(
        organization_id=machine.organization_id,
        kind=EventKind.LAUNDRY_AUTHORIZED if granted else EventKind.LAUNDRY_REFUSED,
        reason=reason,
        occurred_at=occurred,
        received_at=now,
        property_id=machine.property_id,
        machine_id=machine.pk,
        person_id=person.pk if person else None,
        credential_kind="tag" if item.get("kind") in ("tag", "") else "",
        summary=summary[:300],
        data=data,
        device_seq=item["seq"],
    )


# --- cycles -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Stored:
    """What a ``cycles`` batch acknowledges: the seqs of its starts and ends."""

    starts: list[int]
    ends: list[int]


def store_cycles(
    session: MachineSession, records: Sequence[CycleRecord], portal: dict[str, int] | None = None
) -> Stored:
    """Store a batch of cycle records, in order, in one transaction. A cycle
    belongs to the person whose badge released the machine (the list entry
    is a badge id) or who started it from the portal (``portal``: request id
    to person id, as the gateway sent the start; else found in the start's
    event), and to the unit they lived in at the site on the day it started.
    ``billing.usage.record_cycle_use`` prices a cycle once it has ended,
    in this transaction."""
    now = timezone.now()
    with transaction.atomic():
        _take_turn(session.machine_id)
        machine = Machine.objects.select_related("property").get(pk=session.machine_id)
        known = {
            c.seq: c
            for c in Cycle.objects.filter(machine=machine, seq__in={r.seq for r in records})
        }
        for item in records:
            cycle = known.get(item.seq)
            if item.phase == "start":
                cycle = _started(machine, cycle, item, portal or {}, now)
            else:
                cycle = _ended(machine, cycle, item, now)
            if cycle is not None:
                known[item.seq] = cycle
        Machine.objects.filter(pk=machine.pk).update(last_seen_at=now)
    return Stored(
        sorted({r.seq for r in records if r.phase == "start"}),
        sorted({r.seq for r in records if r.phase == "end"}),
    )


def _new_cycle(machine: Machine, seq: int) -> Cycle:
    return Cycle(
        organization_id=machine.organization_id,
        property_id=machine.property_id,
        machine=machine,
        seq=seq,
    )


def _unit_on(prop: Property, person_id: int, day: date) -> int | None:
    return (
        Residency.objects.on(day)
        .filter(person_id=person_id, unit__property_id=prop.pk)
        .order_by("unit_id")
        .values_list("unit_id", flat=True)
        .first()
    )


def _portal_person(machine: Machine, request_id: str, portal: dict[str, int]) -> int | None:
    """Who started the machine from the portal with this request: as the
    gateway was told when it sent the start, else the start's event."""
    if request_id in portal:
        return portal[request_id]
    return (
        Event.objects.filter(
            machine_id=machine.pk,
            kind=EventKind.LAUNDRY_AUTHORIZED,
            data__request_id=request_id,
        )
        .values_list("person_id", flat=True)
        .first()
    )


def _started(
    machine: Machine,
    cycle: Cycle | None,
    item: CycleRecord,
    portal: dict[str, int],
    now: datetime,
) -> Cycle | None:
    if cycle is not None and cycle.started_at is not None:
        return None  # sent again: stored already
    cycle = cycle or _new_cycle(machine, item.seq)
    prop = machine.property
    started = _moment(item.at, now)
    cycle.started_at = started
    cycle.program = item.program or cycle.program
    flagged = cycle.review
    if cycle.review == CycleReview.END_WITHOUT_START:
        cycle.review = ""  # its start came after all (sent late, out of order)
    person_id: int | None = None
    if item.entry is not None:
        badge = Badge.objects.filter(pk=item.entry, organization_id=machine.organization_id).first()
        if badge is not None:
            cycle.badge, cycle.tag, person_id = badge, badge.uid, badge.person_id
    elif item.request_id:
        cycle.remote = True
        person_id = _portal_person(machine, item.request_id, portal)
    unit_id = None
    if person_id is not None:
        unit_id = _unit_on(prop, person_id, started.astimezone(zone_of(prop)).date())
    cycle.person_id, cycle.unit_id = person_id, unit_id
    if item.entry is not None and unit_id is None and not cycle.review:
        # Released by an entry that is no badge of a resident that day.
        cycle.review = CycleReview.NOT_AUTHORIZED
    cycle.updated_at = now
    cycle.save()
    _event(cycle, EventKind.LAUNDRY_STARTED, started)
    if cycle.review and cycle.review != flagged:
        _event(cycle, EventKind.LAUNDRY_FLAGGED, now)
    if cycle.ended_at is not None:
        _used(cycle)  # its end came first
    return cycle


def _ended(machine: Machine, cycle: Cycle | None, item: CycleRecord, now: datetime) -> Cycle | None:
    if cycle is not None and cycle.ended_at is not None:
        return None  # sent again: stored already
    new = cycle is None
    cycle = cycle or _new_cycle(machine, item.seq)
    if new:
        cycle.review = CycleReview.END_WITHOUT_START
    cycle.ended_at = _moment(item.at, now)
    cycle.energy_wh = item.energy_wh
    cycle.program = item.program or cycle.program
    cycle.updated_at = now
    cycle.save()
    _event(cycle, EventKind.LAUNDRY_ENDED, cycle.ended_at)
    if new:
        _event(cycle, EventKind.LAUNDRY_FLAGGED, now)
    if cycle.started_at is not None:
        _used(cycle)
    return cycle


def _used(cycle: Cycle) -> None:
    """The cycle is over: a use of the site's equipment, priced once."""
    from doorkeep.billing.usage import record_cycle_use

    record_cycle_use(cycle)


def _event(cycle: Cycle, kind: str, at: datetime) -> None:
    machine = cycle.machine
    if kind == EventKind.LAUNDRY_STARTED:
        summary = _("%(machine)s started a cycle") % {"machine": machine.label}
        if cycle.program:
            summary = _("%(machine)s started a cycle: %(program)s") % {
                "machine": machine.label,
                "program": cycle.program,
            }
    elif kind == EventKind.LAUNDRY_ENDED:
        summary = _("%(machine)s ended a cycle") % {"machine": machine.label}
        if cycle.energy_wh is not None:
            summary = _("%(machine)s ended a cycle: %(kwh)s kWh") % {
                "machine": machine.label,
                "kwh": f"{cycle.energy_wh / 1000:.2f}",
            }
    else:
        summary = _("Laundry cycle needs review: %(why)s") % {
            "why": CycleReview(cycle.review).label if cycle.review else "?"
        }
    record(
        kind,
        organization_id=cycle.organization_id,
        property_id=cycle.property_id,
        machine_id=cycle.machine_id,
        person=cycle.person,
        reason=cycle.review if kind == EventKind.LAUNDRY_FLAGGED else "",
        occurred_at=at,
        summary=summary,
        data={
            "seq": cycle.seq,
            "cycle": cycle.pk,
            **({"program": cycle.program} if cycle.program else {}),
            **({"energy_wh": cycle.energy_wh} if cycle.energy_wh is not None else {}),
            **({"remote": True} if cycle.remote else {}),
        },
    )


def state_label(machine: Machine) -> str:
    """free, running, out_of_order or offline: what the site's page shows."""
    if not machine.online:
        return "offline"
    return str(machine.state or MachineState.FREE)
