"""The gateway's work with the database: device authentication, list
acknowledgements, uploaded events and status. Plain synchronous functions; the
asyncio gateway runs them in worker threads."""

from __future__ import annotations

import json
import logging
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db import IntegrityError, connection, transaction
from django.db.models import F, OuterRef, Q, Subquery
from django.utils import timezone
from django.utils.translation import gettext as _

from doorkeep import policy
from doorkeep.accounts.models import User
from doorkeep.core.errors import NotFound
from doorkeep.events.models import DenyReason, Event, EventKind
from doorkeep.events.services import record
from doorkeep.gateway.models import Device
from doorkeep.gateway.protocol import ProtocolError, is_int, parse_time
from doorkeep.keys.models import Credential, CredentialKind, KeyCredential
from doorkeep.locks.models import Lock

log = logging.getLogger("doorkeep.gateway")

MAX_BATCH = 500
MAX_CLOCK_SKEW = timedelta(days=400)


class DeviceRefused(Exception):
    def __init__(self, close_code: int, reason: str) -> None:
        super().__init__(reason)
        self.close_code = close_code
        self.reason = reason


# WebSocket close codes of the lock protocol (4000-4999 are the application's).
CLOSE_AUTH_TIMEOUT = 4000
CLOSE_BAD_HELLO = 4002
CLOSE_REFUSED = 4003  # unknown device or wrong secret: the reason does not say which
CLOSE_PROTOCOL = 4005
CLOSE_FLOODING = 4008
CLOSE_REPLACED = 4009  # the same lock connected again elsewhere, or its secret was replaced


def new_device_secret(lock: Lock) -> str:
    """Issue a new device secret for the lock (at registration, and to rotate).
    The old one stops working. Returns the secret: it is shown once."""
    secret = "dks_" + secrets.token_urlsafe(24)
    Device.objects.update_or_create(
        lock=lock,
        defaults={"secret_digest": Device.digest_of(secret), "secret_set_at": timezone.now()},
    )
    return secret


def set_device_secret(lock: Lock, secret: str) -> None:
    """For demo data and tests: a device secret chosen by the caller."""
    Device.objects.update_or_create(
        lock=lock,
        defaults={"secret_digest": Device.digest_of(secret), "secret_set_at": timezone.now()},
    )


def rotate_device_secret(actor: User, lock_id: int) -> str:
    lock = Lock.objects.filter(pk=lock_id, organization__isnull=False).first()
    if lock is None:
        raise NotFound(_("Lock not found."))
    policy.require(actor, policy.Action.REGISTER_LOCKS, lock.organization_id, what=_("Lock"))
    with transaction.atomic():
        secret = new_device_secret(lock)
        record(
            EventKind.DEVICE_SECRET_ROTATED,
            organization_id=lock.organization_id or 0,
            lock=lock,
            actor=actor,
            summary=_("A new device secret was issued"),
        )
    return secret


@dataclass(frozen=True)
class Session:
    lock_id: int
    serial: str
    organization_id: int
    device_id: int
    acked_version: int
    acked_entries: dict[str, str]
    last_device_seq: int
    secret_digest: str = ""


REFUSED = "unknown device or wrong secret"
REFUSED_EVENT_EVERY = timedelta(minutes=1)  # at most one "wrong secret" event per lock


def authenticate(serial: str, secret: str, *, peer: str = "") -> Session:
    """The device's hello: serial and secret. Unknown serial, unregistered lock
    and wrong secret are refused alike (the close reason does not tell which);
    the log and, for a registered lock, its event log say which."""
    lock = Lock.objects.select_related("device").filter(serial=serial.upper()).first()
    device = getattr(lock, "device", None) if lock else None
    if lock is None or lock.organization_id is None or device is None:
        log.warning("refused device %r from %s: unknown or unregistered serial", serial, peer)
        raise DeviceRefused(CLOSE_REFUSED, REFUSED)
    if not secrets.compare_digest(device.secret_digest, Device.digest_of(secret)):
        log.warning("refused device %s from %s: wrong secret", lock.serial, peer)
        now = timezone.now()
        # One event a minute per lock: somebody trying secrets must not bury
        # the lock's log (every attempt is in the gateway's log).
        if not Event.objects.filter(
            lock_id=lock.pk,
            occurred_at__gte=now - REFUSED_EVENT_EVERY,
            kind=EventKind.DEVICE_REFUSED,
        ).exists():
            record(
                EventKind.DEVICE_REFUSED,
                organization_id=lock.organization_id,
                lock=lock,
                reason="wrong_secret",
                summary=_("A device with a wrong secret tried to connect"),
                occurred_at=now,
                data={"peer": peer} if peer else None,
            )
        raise DeviceRefused(CLOSE_REFUSED, REFUSED)
    snapshot = snapshot_of(device)
    return Session(
        lock.pk,
        lock.serial,
        lock.organization_id,
        device.pk,
        # Without the fingerprints of what it acknowledged, a difference cannot
        # be computed: -1 makes the gateway send the full list.
        device.acked_version if snapshot is not None else -1,
        snapshot or {},
        device.last_device_seq,
        device.secret_digest,
    )


@dataclass(frozen=True)
class Holder:
    """The gateway that held a lock's connection before (by the Device row)."""

    gateway: str
    url: str
    connected_at: datetime | None = None  # recorded by that gateway, from its own clock


def connected(
    session: Session,
    *,
    gateway: str,
    url: str,
    hello: dict[str, Any],
    clock_offset_ms: int | None,
    at: datetime | None = None,
) -> Holder | None:
    """Record that ``gateway`` now holds the lock's connection, opened ``at``
    (which names the connection for ``disconnected``). Returns the gateway
    that held it until now, if another one still thinks it does (the lock
    reconnected elsewhere before the old connection died)."""
    now = at or timezone.now()
    before = (
        Device.objects.filter(pk=session.device_id, online=True)
        .exclude(gateway__in=["", gateway])
        .values_list("gateway", "gateway_url", "connected_at")
        .first()
    )
    Device.objects.filter(pk=session.device_id).update(
        online=True,
        gateway=gateway,
        gateway_url=url,
        connected_at=now,
        last_seen_at=now,
        firmware=str(hello.get("firmware", ""))[:40],
        battery=_battery(hello.get("battery")),
        clock_offset_ms=clock_offset_ms,
        last_error="",
    )
    record(
        EventKind.DEVICE_CONNECTED,
        organization_id=session.organization_id,
        lock_id=session.lock_id,
        summary=_("Lock online"),
        data={"firmware": str(hello.get("firmware", ""))[:40], "gateway": gateway},
    )
    return Holder(*before) if before else None


def disconnected(
    session: Session, *, gateway: str, reason: str, connected_at: datetime | None = None
) -> None:
    """Record the lock offline, if this gateway still holds it (the lock may
    have reconnected elsewhere) and, given ``connected_at``, by that
    connection or an older one: a lock that reconnected to the same gateway
    at once must not be marked offline by its old connection's late goodbye,
    and a connection whose own "connected" was never written (it failed)
    still takes down the row of the connection it replaced."""
    now = timezone.now()
    held = Device.objects.filter(pk=session.device_id, gateway=gateway)
    if connected_at is not None:
        held = held.filter(connected_at__lte=connected_at)
    with transaction.atomic():  # whoever sees the lock offline finds the event
        updated = held.update(online=False, gateway="", gateway_url="", last_seen_at=now)
        if updated:
            record(
                EventKind.DEVICE_DISCONNECTED,
                organization_id=session.organization_id,
                lock_id=session.lock_id,
                summary=_("Lock offline"),
                data={"reason": reason[:100]},
            )


def _battery(value: Any) -> int | None:
    return value if is_int(value) and 0 <= value <= 100 else None


def status(session: Session, message: dict[str, Any], clock_offset_ms: int | None) -> None:
    fields: dict[str, Any] = {"last_seen_at": timezone.now()}
    if "battery" in message:
        fields["battery"] = _battery(message["battery"])
    if "firmware" in message:
        fields["firmware"] = str(message["firmware"])[:40]
    if clock_offset_ms is not None:
        fields["clock_offset_ms"] = clock_offset_ms
    Device.objects.filter(pk=session.device_id).update(**fields)


SNAPSHOT_VERSION = "v"  # the key of acked_entries naming the version it describes


@dataclass(frozen=True)
class Ack:
    """A lock's acknowledgement of list ``version``, pushed at ``sent_at``,
    with the fingerprints of what it holds now when they are known: all of
    them (``snapshot``, after a full list), or those that changed since
    version ``since`` (``patch``, after a difference: None for an entry
    removed)."""

    session: Session
    version: int
    sent_at: datetime
    snapshot: dict[str, str] | None = None
    since: int | None = None
    patch: dict[str, str | None] | None = None


def acknowledged(
    session: Session, version: int, *, sent_at: datetime, snapshot: dict[str, str] | None = None
) -> None:
    """``acknowledged_many`` of one lock, without a patch."""
    acknowledged_many([Ack(session, version, sent_at, snapshot)])


# An acknowledgement, by hand (one statement prepared once for many locks):
# the lock is in step, with no error, seen now; after a full list with its
# whole snapshot.
_ACK_SQL = (
    "UPDATE gateway_device SET acked_version = %s, last_error = '', last_seen_at = %s, "
    "last_push_at = %s{entries} WHERE id = %s"
)
# A patch of the stored fingerprints, applied in the database. SQLite: a JSON
# merge patch (RFC 7396) deletes the keys whose value is null.
_PATCH_SQL = {
    "sqlite": "UPDATE gateway_device SET acked_entries = json_patch(acked_entries, %s) "
    "WHERE id = %s",
    "postgresql": "UPDATE gateway_device "
    "SET acked_entries = (acked_entries - %s::text[]) || %s::jsonb WHERE id = %s",
}


def acknowledged_many(acks: Sequence[Ack]) -> list[Ack]:
    """The locks acknowledged these lists: each is in step (the version it
    acknowledged, when that list was pushed, no error, seen now), and its
    fingerprints are stored: the whole ``snapshot`` in the same write, or
    after it the ``patch``, applied in the database (a few fingerprints
    written instead of thousands), where the stored ones are those of
    ``since``. The snapshot names its version, so a snapshot left behind (a
    gateway that stopped in between) is never taken for that of the
    acknowledged version: the lock then gets the full list.

    Whatever the number of locks: one transaction of one statement (prepared
    once) for the acknowledgements, committed first (it is what the platform
    shows; a patch of thousands of fingerprints takes longer); then one for
    the patches: the stored fingerprints' versions read with their rows
    locked (FOR UPDATE; SQLite's transactions take the write lock as they
    begin), one statement. Returns the acks whose patch did not apply: their
    fingerprints are not written (acknowledge them again with their whole
    snapshot)."""
    if not acks:
        return []
    now = connection.ops.adapt_datetimefield_value(timezone.now())
    plain: list[tuple[Any, ...]] = []
    whole: list[tuple[Any, ...]] = []
    patches: list[Ack] = []
    for ack in acks:
        sent_at = connection.ops.adapt_datetimefield_value(ack.sent_at)
        row = (ack.version, now, sent_at)
        if ack.snapshot is not None:
            entries = json.dumps({**ack.snapshot, SNAPSHOT_VERSION: ack.version})
            whole.append((*row, entries, ack.session.device_id))
        else:
            plain.append((*row, ack.session.device_id))
            if ack.patch is not None and ack.since is not None:
                patches.append(ack)
    with transaction.atomic(), connection.cursor() as cursor:
        if plain:
            cursor.executemany(_ACK_SQL.format(entries=""), plain)
        if whole:
            cursor.executemany(_ACK_SQL.format(entries=", acked_entries = %s"), whole)
    if not patches:
        return []
    with transaction.atomic(), connection.cursor() as cursor:
        stored = dict(
            Device.objects.select_for_update()
            .filter(pk__in={ack.session.device_id for ack in patches})
            .values_list("pk", f"acked_entries__{SNAPSHOT_VERSION}")
        )
        apply = [ack for ack in patches if stored.get(ack.session.device_id) == ack.since]
        if apply:
            cursor.executemany(*_patch_statement(apply))
    return [ack for ack in patches if stored.get(ack.session.device_id) != ack.since]


def _patch_statement(acks: list[Ack]) -> tuple[str, list[tuple[Any, ...]]]:
    params: list[tuple[Any, ...]] = []
    for ack in acks:
        patch = {**(ack.patch or {}), SNAPSHOT_VERSION: ack.version}
        if connection.vendor == "postgresql":
            added = {k: v for k, v in patch.items() if v is not None}
            removed = [k for k, v in patch.items() if v is None]
            params.append((removed, json.dumps(added), ack.session.device_id))
        else:
            params.append((json.dumps(patch), ack.session.device_id))
    return _PATCH_SQL["postgresql" if connection.vendor == "postgresql" else "sqlite"], params


def snapshot_of(device: Device) -> dict[str, str] | None:
    """The fingerprints stored for the version the device acknowledged, or
    None if what is stored describes another version (or nothing)."""
    stored = dict(device.acked_entries or {})
    if stored.pop(SNAPSHOT_VERSION, None) != device.acked_version:
        return None
    return stored


def push_failed(session: Session, error: str, *, sent_at: datetime | None = None) -> None:
    fields: dict[str, Any] = {"last_error": error[:200]}
    if sent_at is not None:
        fields["last_push_at"] = sent_at
    Device.objects.filter(pk=session.device_id).update(**fields)


def store_events(session: Session, batch: list[dict[str, Any]]) -> list[int]:
    """Store access events a lock decided by itself. Each event is stored once,
    however often it is sent: an event is its sequence number and its time by
    the lock's clock. A number stored with another time is another event,
    from a lock that lost its counter and numbers again from 1: it is stored
    too, without ``device_seq`` (unique per lock), its number kept in
    ``data["seq"]``. Returns the sequence numbers now safely stored, to
    acknowledge."""
    now = timezone.now()
    lock = Lock.objects.select_related("entry").get(pk=session.lock_id)
    property_id = lock.entry.property_id if lock.entry else None
    ids = {e["entry"] for e in batch if isinstance(e.get("entry"), int)}
    # Only the current owner's keys: a lock that changed hands may still
    # upload what it decided with the previous owner's list, and those people
    # must not be named in the new owner's log.
    matched = {
        kc.pk: kc
        for kc in KeyCredential.objects.filter(
            pk__in=ids, lock_id=lock.pk, key__lock_owner_id=session.organization_id
        ).select_related("key")
    }
    known = _known_tags(session, lock.pk, batch)
    mine = Event.objects.filter(lock_id=lock.pk)
    stored = _events_of(mine.filter(device_seq__in={item["seq"] for item in batch}), "device_seq")
    taken = {seq for seq, _ in stored}
    reused = {e["seq"] for e in batch if e["seq"] in taken and (e["seq"], e["at"]) not in stored}
    if reused:
        log.warning("lock %s numbers events again: %s", session.serial, sorted(reused)[:10])
        stored |= _events_of(
            mine.filter(device_seq__isnull=True, data__seq__in=reused), "data__seq"
        )
    rows = []
    for item in batch:
        seq = item["seq"]
        if (seq, item["at"]) in stored:
            continue  # sent again: stored already
        stored.add((seq, item["at"]))
        entry_id = item.get("entry")
        kc = matched.get(entry_id) if isinstance(entry_id, int) else None
        granted = item["outcome"] == "granted"
        reason = "" if granted else str(item.get("reason") or DenyReason.UNKNOWN_CREDENTIAL)[:40]
        person_id, key_id, summary = None, None, ""
        if kc is not None:
            person_id, key_id, summary = kc.key.person_id, kc.key_id, kc.key.holder_name
        badge = known.get(item["tag"]) if "tag" in item else None
        if badge is not None and reason == DenyReason.UNKNOWN_CREDENTIAL:
            # The lock no longer holds it because it was reported lost, or
            # because its key was taken back: the platform knows; say so.
            reason = badge.reason
            person_id, key_id, summary = badge.person_id, badge.key_id, badge.name
        occurred = item["at"]
        if abs(occurred - now) > MAX_CLOCK_SKEW:  # a lock with a broken clock
            occurred = now
        rows.append(
            Event(
                organization_id=session.organization_id,
                kind=EventKind.ACCESS_GRANTED if granted else EventKind.ACCESS_DENIED,
                reason=reason,
                occurred_at=occurred,
                received_at=now,
                property_id=property_id,
                lock_id=lock.pk,
                person_id=person_id,
                key_id=key_id,
                credential_kind=item.get("kind", "")
                if item.get("kind") in CredentialKind.values
                else "",
                summary=summary,
                data={"source": "lock", "device_clock": item["device_clock"]}
                | ({"tag": item["tag"]} if "tag" in item else {})
                | ({"seq": seq} if seq in taken else {}),
                device_seq=None if seq in taken else seq,
            )
        )
    try:
        Event.objects.bulk_create(rows, ignore_conflicts=True)
    except IntegrityError:  # pragma: no cover - ignore_conflicts covers duplicates
        log.exception("storing events of %s failed", session.serial)
        return []
    top = max(item["seq"] for item in batch)
    Device.objects.filter(pk=session.device_id, last_device_seq__lt=top).update(last_device_seq=top)
    Device.objects.filter(pk=session.device_id).update(last_seen_at=now)
    return sorted(item["seq"] for item in batch)


@dataclass(frozen=True)
class KnownTag:
    """Whose tag a lock did not know is, and why the lock no longer holds it."""

    person_id: int
    name: str
    key_id: int | None  # their key on this lock under which the tag opened it, if any
    reason: str  # DenyReason.BADGE_LOST or DenyReason.REVOKED


def _known_tags(session: Session, lock_id: int, batch: list[dict[str, Any]]) -> dict[str, KnownTag]:
    """For the denied tag events of ``batch`` that matched no entry and carry
    the UID read (``tag``): the UIDs that are a badge reported lost, or a tag
    whose key on this lock was taken back, by UID, in one query for the whole
    batch.

    A UID is looked up among the tag credentials of the owner's people and
    those with a key credential on this lock under the current owner (a key
    issued under an organization's key belongs to a person of that
    organization). The credential that opened this lock comes first (as the
    platform's own decision finds it), then the newest; it is a lost badge
    when it was switched off as one (``deactivated_reason`` badge_lost), and
    taken back when its newest key on this lock is revoked."""
    tags = {item["tag"] for item in batch if "tag" in item}
    if not tags:
        return {}
    org = session.organization_id
    here = KeyCredential.objects.filter(
        credential_id=OuterRef("pk"), lock_id=lock_id, key__lock_owner_id=org
    ).order_by("-key__issued_at", "-pk")
    rows = (
        Credential.objects.filter(kind=CredentialKind.TAG, lookup__in=tags)
        .annotate(
            here_key=Subquery(here.values("key_id")[:1]),
            here_revoked=Subquery(here.values("key__revoked_at")[:1]),
        )
        .filter(Q(person__organization_id=org) | Q(here_key__isnull=False))
        .values_list(
            "lookup",
            "pk",
            "person_id",
            "person__name",
            "deactivated_at",
            "deactivated_reason",
            "here_key",
            "here_revoked",
        )
    )
    best: dict[str, tuple[tuple[bool, int], KnownTag | None]] = {}
    for uid, pk, person_id, name, off_at, off_reason, key_id, revoked_at in rows:
        rank = (key_id is not None, pk)
        if uid in best and best[uid][0] >= rank:
            continue
        found = None
        if off_at is not None and off_reason == DenyReason.BADGE_LOST:
            found = KnownTag(person_id, name, key_id, DenyReason.BADGE_LOST)
        elif key_id is not None and revoked_at is not None:
            found = KnownTag(person_id, name, key_id, DenyReason.REVOKED)
        best[uid] = (rank, found)
    return {uid: tag for uid, (_rank, tag) in best.items() if tag is not None}


def _events_of(events: Any, seq_field: str) -> set[tuple[int, datetime]]:
    """(sequence number, time by the lock's clock) of uploaded ``events``."""
    found = set()
    for seq, clock in events.values_list(seq_field, "data__device_clock"):
        try:
            found.add((int(seq), parse_time(clock, "at")))
        except (ProtocolError, TypeError, ValueError):
            continue  # not a time: matches no event sent
    return found


@dataclass(frozen=True)
class Standing:
    """What a gateway checks of each connected lock, every round."""

    version: int
    organization_id: int | None
    secret_digest: str


def standing(gateway: str) -> dict[int, Standing]:
    """The list version, owner and device secret of each lock recorded as held
    by ``gateway``, by lock id: one query, whatever else is connected
    elsewhere. A held lock missing here was removed or is held elsewhere now;
    one with another owner or device secret must reconnect."""
    rows = Device.objects.filter(gateway=gateway, online=True).values_list(
        "lock_id", "lock__credential_version", "lock__organization_id", "secret_digest"
    )
    return {pk: Standing(version, org, digest or "") for pk, version, org, digest in rows}


def credential_changed(credential_id: int) -> list[int]:
    """A credential was changed or is about to be deleted outside the key
    services (the admin: switched off, switched on again, removed): the lists
    of the locks it opens change, so their versions go up in the caller's
    transaction, and their gateways hear of it after the commit. Returns the
    locks' ids."""
    from doorkeep.keys.services import bump_version

    lock_ids = sorted(
        set(
            KeyCredential.objects.filter(credential_id=credential_id, active=True).values_list(
                "lock_id", flat=True
            )
        )
    )
    for lock_id in lock_ids:
        bump_version(lock_id)
    return lock_ids


def bump(lock_id: int) -> int:
    """Raise the lock's list version (its list changed by itself: a window
    ended). Returns the new version."""
    Lock.objects.filter(pk=lock_id).update(credential_version=F("credential_version") + 1)
    return Lock.objects.values_list("credential_version", flat=True).get(pk=lock_id)
