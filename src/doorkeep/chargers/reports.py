"""What charging stations report, turned into the platform's records: the
connection, BootNotification, StatusNotification, Authorize, transactions
and meter values. Plain synchronous functions, called by the gateway's OCPP
handlers in its database threads; they speak in the platform's terms (Wh,
UTC datetimes, the Status strings), and the handlers translate each OCPP
version to them.

Whatever a station sends that the platform cannot make sense of (a stop of
an unknown transaction, a meter going backwards) is stored and flagged for
review: never dropped, never an error to the station. Messages a station
queued while offline and sends again are stored once."""

from __future__ import annotations

import itertools
import json
import logging
import secrets
import zoneinfo
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from django.db import IntegrityError, connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from doorkeep.badges.access import (
    EquipmentDecision,
    badge_for_uid,
    decide_equipment,
    equipment_list,
    site_day,
)
from doorkeep.billing import usage
from doorkeep.chargers.lists import Status, end_of_day, status_of
from doorkeep.chargers.models import ChargingSession, Connector, MeterSample, Review, Station
from doorkeep.core.errors import InvalidInput
from doorkeep.events.models import DenyReason, Event, EventKind
from doorkeep.events.services import record
from doorkeep.keys.credentials import normalize_tag
from doorkeep.properties.models import zone_of
from doorkeep.residents.models import Residency

log = logging.getLogger("doorkeep.chargers")

REFUSED_EVENT_EVERY = timedelta(minutes=1)  # at most one "refused" event per station a minute
MAX_FUTURE = timedelta(minutes=10)  # a station's clock ahead of ours by more is not believed


class StationRefused(Exception):
    """Unknown station, removed station or wrong password (not said which)."""


def _take_turn(station_id: int) -> None:
    """Lock the station's row until the transaction ends (its writes that
    read first, one at a time)."""
    list(Station.objects.select_for_update().filter(pk=station_id).order_by().values_list("pk"))


@dataclass(frozen=True)
class StationSession:
    station_id: int
    charge_point_id: str
    organization_id: int
    property_id: int
    acked_version: int
    acked_entries: dict[str, str]


def authenticate(charge_point_id: str, password: str, *, peer: str = "") -> StationSession:
    """HTTP Basic authentication of a station (OCPP security profiles 1 and
    2): its id in the URL, the password issued at registration."""
    station = Station.objects.filter(charge_point_id=charge_point_id).first()
    if station is None or station.removed_at is not None:
        log.warning("refused station %r from %s: unknown id", charge_point_id[:48], peer)
        raise StationRefused
    if not secrets.compare_digest(station.password_digest, Station.digest_of(password)):
        log.warning("refused station %s from %s: wrong password", station.charge_point_id, peer)
        with transaction.atomic():
            # The station's row is the turn: attempts at once make one event.
            _take_turn(station.pk)
            if not Event.objects.filter(
                station_id=station.pk,
                kind=EventKind.STATION_REFUSED,
                occurred_at__gte=timezone.now() - REFUSED_EVENT_EVERY,
            ).exists():
                record(
                    EventKind.STATION_REFUSED,
                    organization_id=station.organization_id,
                    property_id=station.property_id,
                    station_id=station.pk,
                    reason="wrong_password",
                    summary=_("A charging station with a wrong password tried to connect"),
                    data={"peer": peer} if peer else None,
                )
        raise StationRefused
    return StationSession(
        station.pk,
        station.charge_point_id,
        station.organization_id,
        station.property_id,
        station.acked_version,
        dict(station.acked_entries or {}),
    )


def connected(
    session: StationSession, *, gateway: str, url: str, version: str, at: datetime
) -> None:
    Station.objects.filter(pk=session.station_id).update(
        online=True,
        gateway=gateway,
        gateway_url=url,
        connected_at=at,
        last_seen_at=at,
        ocpp_version=version,
    )
    record(
        EventKind.STATION_CONNECTED,
        organization_id=session.organization_id,
        property_id=session.property_id,
        station_id=session.station_id,
        summary=_("Charging station online (OCPP %(version)s)") % {"version": version},
        data={"gateway": gateway},
    )


def disconnected(session: StationSession, *, gateway: str, connected_at: datetime) -> None:
    """Offline, unless another connection of the station came since. The
    flag and its event are one transaction: whoever sees the station offline
    also finds the event."""
    with transaction.atomic():
        _disconnected(session, gateway=gateway, connected_at=connected_at)


def _disconnected(session: StationSession, *, gateway: str, connected_at: datetime) -> None:
    gone = Station.objects.filter(
        pk=session.station_id, gateway=gateway, connected_at=connected_at
    ).update(online=False, gateway="", gateway_url="")
    if gone:
        record(
            EventKind.STATION_DISCONNECTED,
            organization_id=session.organization_id,
            property_id=session.property_id,
            station_id=session.station_id,
            summary=_("Charging station offline"),
        )


def seen_many(station_ids: list[int]) -> None:
    """The stations' last message is now (many stations in one statement)."""
    Station.objects.filter(pk__in=set(station_ids)).update(last_seen_at=timezone.now())


def seen(station_id: int, *, heartbeat: bool = False) -> None:
    now = timezone.now()
    fields = {"last_seen_at": now, **({"last_heartbeat_at": now} if heartbeat else {})}
    Station.objects.filter(pk=station_id).update(**fields)


def booted(station_id: int, *, vendor: str, model: str, serial: str, firmware: str) -> None:
    Station.objects.filter(pk=station_id).update(
        vendor=vendor[:50],
        model=model[:50],
        serial_number=serial[:50],
        firmware=firmware[:50],
        last_boot_at=timezone.now(),
        last_seen_at=timezone.now(),
    )


def connector_status(station_id: int, number: int, status: str, error_code: str = "") -> None:
    Connector.objects.update_or_create(
        station_id=station_id,
        number=number,
        defaults={
            "status": status[:20],
            "error_code": error_code[:50],
            "updated_at": timezone.now(),
        },
    )


def station_time(moment: datetime | None) -> datetime:
    """A time a station sent, believed unless it is in the future."""
    now = timezone.now()
    if moment is None or moment > now + MAX_FUTURE:
        return now
    return moment


# --- who may charge -------------------------------------------------------------------------


@dataclass(frozen=True)
class Answer:
    status: str  # Status.*
    reason: str  # a DenyReason value, "" when accepted
    expires: datetime | None = None


CARD_UID = "ISO14443"  # an OCPP id token type
BADGE_TOKENS = (CARD_UID, "ISO15693")  # OCPP 2.0.1 id token types a badge's UID comes as


def authorize(
    station_id: int,
    id_tag: str,
    *,
    at: datetime | None = None,
    what: str = "authorize",
    token_type: str = CARD_UID,
    log: bool = True,
) -> Answer:
    """The platform's one equipment rule for the badge presented at the
    station, as an OCPP answer; every answer is an event with its reason
    (``log``: False for a message sent again, answered as before). A 2.0.1
    id token of another type than a card's UID (a key code, an eMAID, a
    central token) is no badge: Invalid."""
    station = Station.objects.select_related("property", "parking_space").get(pk=station_id)
    if token_type in BADGE_TOKENS:
        decision = decide_equipment(station.property, id_tag, at=at, space=station.parking_space)
    else:
        decision = EquipmentDecision(False, DenyReason.MALFORMED_CREDENTIAL, None)
    status = status_of(decision)
    badge = decision.badge
    if not log:
        expires = end_of_day(station.property, decision.until) if decision.allowed else None
        return Answer(status, decision.reason, expires)
    record(
        EventKind.CHARGING_AUTHORIZED if decision.allowed else EventKind.CHARGING_REFUSED,
        organization_id=station.organization_id,
        property_id=station.property_id,
        station_id=station.pk,
        person=badge.person if badge is not None else None,
        reason=decision.reason,
        credential_kind="tag",
        summary=_authorize_summary(station.label, id_tag, status),
        data={
            "id_tag": id_tag[:40],
            "status": status,
            "asked": what,
            **({"token_type": token_type[:20]} if token_type != CARD_UID else {}),
        },
    )
    expires = end_of_day(station.property, decision.until) if decision.allowed else None
    return Answer(status, decision.reason, expires)


# --- Authorize from a site's decisions, read once -----------------------------------------


@dataclass(frozen=True)
class Decided:
    """The equipment rule's answer for every badge a station of a site (and
    parking space) may be shown, read in one go (``decided_for``): what the
    gateway answers Authorize from, without the database, while the site's
    lists do not change (decision 14)."""

    organization_id: int
    property_id: int
    parking_space_id: int | None
    zone: str
    day: date  # the site's day the decisions hold for
    answers: dict[
        str, tuple[str, str, datetime | None, int | None]
    ]  # uid: status, reason, until, person


Place = tuple[int, int | None]  # a station's site and parking space: who may charge there


def place_of(station_id: int) -> tuple[Place, str]:
    """The station's site and parking space, and its label (for the events)."""
    station = Station.objects.get(pk=station_id)
    return (station.property_id, station.parking_space_id), station.label


def places_of(station_ids: list[int]) -> dict[int, tuple[Place, str]]:
    """``place_of`` of many stations, in one query."""
    return {
        station.pk: ((station.property_id, station.parking_space_id), station.label)
        for station in Station.objects.filter(pk__in=station_ids)
    }


def decided_for(place: Place) -> Decided:
    """The decisions for a site and parking space (``Decided``)."""
    from doorkeep.properties.models import Property
    from doorkeep.residents.models import ParkingSpace

    property_id, space_id = place
    prop = Property.objects.get(pk=property_id)
    space = ParkingSpace.objects.filter(pk=space_id).first() if space_id is not None else None
    answers = {}
    for uid, decision in equipment_list(prop, space=space).items():
        expires = end_of_day(prop, decision.until) if decision.allowed else None
        person = decision.badge.person_id if decision.badge is not None else None
        answers[uid] = (status_of(decision), decision.reason, expires, person)
    return Decided(
        prop.organization_id, prop.pk, space_id, prop.timezone or "UTC", site_day(prop), answers
    )


def answer_from(decided: Decided, id_tag: str, *, at: datetime | None = None) -> Answer | None:
    """The answer for ``id_tag`` from ``decided``, or None when it cannot say
    (a UID it does not list, a malformed one, another day at the site): the
    database decides those (``authorize``)."""
    try:
        uid = normalize_tag(id_tag)
    except InvalidInput:
        return None
    found = decided.answers.get(uid)
    if found is None:
        return None
    moment = at or timezone.now()
    if moment.astimezone(zoneinfo.ZoneInfo(decided.zone)).date() != decided.day:
        return None
    status, reason, expires, _person = found
    return Answer(status, reason, expires)


@dataclass(frozen=True)
class Answered:
    """An Authorize answered from ``Decided``, to be logged (``record_answers``)."""

    station_id: int
    label: str
    decided: Decided
    id_tag: str
    answer: Answer
    at: datetime


ANSWER_ROWS = 250  # rows of one INSERT (11 values each: within SQLite's 32,766 variables)
_ANSWER_COLUMNS = (
    "organization_id",
    "kind",
    "reason",
    "occurred_at",
    "received_at",
    "property_id",
    "station_id",
    "person_id",
    "credential_kind",
    "summary",
    "data",
)


def record_answers(items: list[Answered]) -> None:
    """The events of Authorize answers given from ``Decided``: the events
    ``authorize`` writes through ``record`` (compared field by field in
    tests/chargers/test_authorize_answers.py), many in one statement written
    by hand (the ORM's inserts were a fifth of the gateway's work at 900
    answers a second: bench/chargers.py)."""
    if not items:
        return
    ops = connection.ops
    now = ops.adapt_datetimefield_value(timezone.now())
    words = _("%(station)s: %(tag)s %(status)s")  # translated once for the lot
    rows = []
    for item in items:
        status = item.answer.status
        person = item.decided.answers[normalize_tag(item.id_tag)][3]
        rows.append(
            (
                item.decided.organization_id,
                EventKind.CHARGING_AUTHORIZED
                if status == Status.ACCEPTED
                else EventKind.CHARGING_REFUSED,
                item.answer.reason,
                ops.adapt_datetimefield_value(item.at),
                now,
                item.decided.property_id,
                item.station_id,
                person,
                "tag",
                (words % {"station": item.label, "tag": item.id_tag[:40], "status": status})[:300],
                json.dumps({"id_tag": item.id_tag[:40], "status": status, "asked": "authorize"}),
            )
        )
    columns = ", ".join(_ANSWER_COLUMNS)
    one = "(" + ", ".join(["%s"] * len(_ANSWER_COLUMNS)) + ")"
    with transaction.atomic(), connection.cursor() as cursor:
        for start in range(0, len(rows), ANSWER_ROWS):
            part = rows[start : start + ANSWER_ROWS]
            # One statement of many rows: one round trip to the database.
            sql = f"INSERT INTO events_event ({columns}) VALUES {', '.join([one] * len(part))}"  # noqa: S608 - fixed columns
            cursor.execute(sql, [value for row in part for value in row])


def _authorize_summary(label: str, id_tag: str, status: str) -> str:
    return (
        _("%(station)s: %(tag)s %(status)s")
        % {"station": label, "tag": id_tag[:40], "status": status}
    )[:300]


def _whose(
    station: Station, id_tag: str, day_of: datetime
) -> tuple[int | None, int | None, int | None]:
    """The badge (as the equipment rule picks it), its person and the unit
    they lived in at the site that day (at a private station, the station's
    unit when they lived there)."""
    try:
        clean = normalize_tag(id_tag)
    except InvalidInput:
        return None, None, None
    badge = badge_for_uid(station.organization_id, clean)
    if badge is None:
        return None, None, None
    day = day_of.astimezone(zone_of(station.property)).date()
    units = list(
        Residency.objects.on(day)
        .filter(person_id=badge.person_id, unit__property_id=station.property_id)
        .order_by("unit_id")
        .values_list("unit_id", flat=True)
    )
    space_unit = station.parking_space.unit_id if station.parking_space else None
    unit = space_unit if space_unit in units else (units[0] if units else None)
    return badge.pk, badge.person_id, unit


# --- transactions ------------------------------------------------------------------------


@dataclass(frozen=True)
class Started:
    transaction_id: str
    answer: Answer
    new: bool


def start(
    station_id: int,
    *,
    connector: int,
    id_tag: str,
    meter_start_wh: int | None,
    at: datetime,
    transaction_id: str | None = None,
    remote: bool = False,
    token_type: str = CARD_UID,
) -> Started:
    """A transaction started (1.6 StartTransaction: ``transaction_id`` None,
    the platform numbers it; 2.0.1 TransactionEvent Started: the station's
    id). A start sent again (its answer was lost) is the same session,
    answered as before and not logged again: in 1.6 it is known by the
    station's own start time (``reported_start``, as sent, even from a clock
    that is ahead), connector and badge."""
    reported = at
    at = station_time(at)
    station = Station.objects.select_related("property", "parking_space").get(pk=station_id)
    with transaction.atomic():
        # The station's row is the turn: a start sent twice at once, or the
        # start, readings and stop of one transaction handled at once (2.0.1,
        # each call in its own task), make one session.
        _take_turn(station_id)
        sessions = ChargingSession.objects.filter(station=station)
        if transaction_id is None:
            same = sessions.filter(
                connector=connector, id_tag=id_tag[:40], reported_start=reported
            ).first()
        else:
            same = sessions.filter(transaction_id=transaction_id).first()
        replay = same is not None and same.started_at is not None
        answer = (
            authorize(
                station_id, id_tag, at=at, what="start", token_type=token_type, log=not replay
            )
            if id_tag
            else Answer(Status.ACCEPTED, "")
        )
        if same is not None and replay:
            return Started(same.transaction_id, answer, False)
        badge, person, unit = (
            _whose(station, id_tag, at)
            if id_tag and token_type in BADGE_TOKENS
            else (None, None, None)
        )
        session = same or ChargingSession(
            organization_id=station.organization_id,
            property_id=station.property_id,
            station=station,
            transaction_id=transaction_id or f"pending-{secrets.token_hex(8)}",
        )
        session.connector = connector
        if id_tag or not session.id_tag:  # a badge presented earlier, in an event sent first
            session.id_tag = id_tag[:40]
            session.badge_id, session.person_id, session.unit_id = badge, person, unit
        session.started_at, session.meter_start_wh = at, meter_start_wh
        session.reported_start = reported
        session.remote = session.remote or remote
        flagged = session.review
        if session.review == Review.STOP_WITHOUT_START:
            session.review = ""  # its start came after all (sent late, out of order)
        if answer.status != Status.ACCEPTED and not session.review:
            session.review = Review.NOT_AUTHORIZED
        session.updated_at = timezone.now()
        _settle(session)
        session.save()
        if transaction_id is None:
            session.transaction_id = _number(station, session.pk)
            session.save(update_fields=["transaction_id"])
        _event(session, EventKind.CHARGING_STARTED, at)
        if session.review and session.review != flagged:
            _event(session, EventKind.CHARGING_FLAGGED, at)
        if session.stopped_at is not None:  # its stop came first: the use is complete now
            usage.record_charging_use(session)
    return Started(session.transaction_id, answer, True)


NUMBER_STEP = 2**30  # OCPP 1.6 transaction ids are 32-bit integers


def _number(station: Station, pk: int) -> str:
    """The 1.6 transaction id of a new session: its own id, unless the
    station already used that number (a stop of a transaction the platform
    never saw, stored under the station's number): then the next free one
    NUMBER_STEP further (the station's row is locked: no one takes it
    meanwhile)."""
    number = pk
    while ChargingSession.objects.filter(station=station, transaction_id=str(number)).exists():
        number += NUMBER_STEP
    return str(number)


def stop(
    station_id: int,
    transaction_id: str,
    *,
    meter_stop_wh: int | None,
    at: datetime,
    reason: str = "",
    id_tag: str = "",
    connector: int = 0,
) -> ChargingSession:
    """A transaction ended. A stop of a transaction the platform does not
    know is stored as a session flagged for review; a stop sent again
    changes nothing."""
    at = station_time(at)
    with transaction.atomic():
        _take_turn(station_id)  # as ``start``: one transaction's messages, one at a time
        station = Station.objects.select_related("property", "parking_space").get(pk=station_id)
        session = ChargingSession.objects.filter(
            station=station, transaction_id=transaction_id
        ).first()
        if session is not None and session.stopped_at is not None:
            return session
        flagged = session.review if session is not None else ""
        if session is None:
            badge, person, unit = _whose(station, id_tag, at) if id_tag else (None, None, None)
            session = ChargingSession(
                organization_id=station.organization_id,
                property_id=station.property_id,
                station=station,
                connector=connector,
                transaction_id=transaction_id,
                id_tag=id_tag[:40],
                badge_id=badge,
                person_id=person,
                unit_id=unit,
                review=Review.STOP_WITHOUT_START,
            )
        session.stopped_at, session.meter_stop_wh = at, meter_stop_wh
        session.stop_reason = reason[:40]
        session.power_w = None
        session.updated_at = timezone.now()
        _settle(session)
        try:
            with transaction.atomic():
                session.save()
        except IntegrityError:  # the same unknown stop, stored meanwhile by another thread
            return ChargingSession.objects.get(station=station, transaction_id=transaction_id)
        _event(session, EventKind.CHARGING_STOPPED, at)
        # Flagged now, or earlier without an event (readings of a start not
        # yet known make the session flagged, quietly: the start may follow).
        if session.review and (session.review != flagged or flagged == Review.STOP_WITHOUT_START):
            _event(session, EventKind.CHARGING_FLAGGED, at)
        usage.record_charging_use(session)
    return session


def identified(station_id: int, transaction_id: str, id_tag: str, *, at: datetime) -> None:
    """The badge of a transaction that started without one (OCPP 2.0.1: the
    cable plugged in first, the badge presented in a later event): the
    session keeps it, its person and their unit."""
    with transaction.atomic():
        session = (
            ChargingSession.objects.select_for_update()
            .select_related("station")
            .filter(station_id=station_id, transaction_id=transaction_id)
            .first()
        )
        if session is None or session.id_tag or not id_tag:
            return
        badge, person, unit = _whose(session.station, id_tag, station_time(at))
        ChargingSession.objects.filter(pk=session.pk).update(
            id_tag=id_tag[:40],
            badge_id=badge,
            person_id=person,
            unit_id=unit,
            updated_at=timezone.now(),
        )


@dataclass(frozen=True)
class Reading:
    at: datetime
    energy_wh: int | None
    power_w: int | None


def meter_values(
    station_id: int,
    readings: list[Reading],
    *,
    transaction_id: str | None = None,
    connector: int = 0,
    keep_unknown: bool = False,
) -> ChargingSession | None:
    """Readings during a session (by its transaction id, else the session
    running on the connector). Readings of no session are not kept (a
    station's idle meter), unless ``keep_unknown``: readings of a transaction
    whose start has not arrived yet (2.0.1, sent out of order) make its
    session, flagged until the start comes. Each moment is stored once; a
    reading lower than an earlier one flags the session."""
    if not readings:
        return None
    with transaction.atomic():
        _take_turn(station_id)  # as ``start``: one transaction's messages, one at a time
        sessions = ChargingSession.objects.filter(station_id=station_id)
        if transaction_id is not None:
            session = sessions.filter(transaction_id=transaction_id).first()
        else:
            session = (
                sessions.filter(connector=connector, stopped_at__isnull=True)
                .exclude(started_at=None)
                .order_by("-started_at")
                .first()
            )
        if session is None and keep_unknown and transaction_id:
            station = Station.objects.get(pk=station_id)
            session, _new = ChargingSession.objects.get_or_create(
                station=station,
                transaction_id=transaction_id,
                defaults={
                    "organization_id": station.organization_id,
                    "property_id": station.property_id,
                    "connector": connector,
                    "review": Review.STOP_WITHOUT_START,
                },
            )
        if session is None:
            return None
        MeterSample.objects.bulk_create(
            [
                MeterSample(
                    session=session, at=station_time(r.at), energy_wh=r.energy_wh, power_w=r.power_w
                )
                for r in readings
            ],
            ignore_conflicts=True,
        )
        _take(session, readings)
    return session


def _take(session: ChargingSession, readings: list[Reading]) -> None:
    """The session after new readings: its power (while it runs), and what
    ``_settle`` makes of all its readings."""
    latest = max(readings, key=lambda r: r.at)
    if session.stopped_at is None and latest.power_w is not None:
        session.power_w = latest.power_w
    flagged = session.review
    _settle(session)
    session.updated_at = timezone.now()
    session.save(update_fields=["meter_last_wh", "power_w", "energy_wh", "review", "updated_at"])
    if session.review == Review.METER_BACKWARDS and flagged != session.review:
        _event(session, EventKind.CHARGING_FLAGGED, timezone.now())


def _settle(session: ChargingSession) -> None:
    """The session's last reading and energy from everything the station
    sent, read back in time order (messages arrive in any order): the meter
    at the start, the readings, the meter at the stop. A meter that went
    backwards anywhere flags the session, and its energy is not guessed."""
    energies = (
        list(
            MeterSample.objects.filter(session=session, energy_wh__isnull=False)
            .order_by("at")
            .values_list("energy_wh", flat=True)
        )
        if session.pk is not None
        else []
    )
    if energies:
        session.meter_last_wh = energies[-1]
    start, stop = session.meter_start_wh, session.meter_stop_wh
    steps = [start, *energies, stop]
    known = [step for step in steps if step is not None]
    end = stop if stop is not None else session.meter_last_wh
    if any(b < a for a, b in itertools.pairwise(known)):
        session.energy_wh = None
        session.review = session.review or Review.METER_BACKWARDS
    elif start is not None and end is not None:
        session.energy_wh = end - start
    else:
        session.energy_wh = None


def _event(session: ChargingSession, kind: str, at: datetime) -> None:
    energy = session.energy_wh
    if kind == EventKind.CHARGING_STARTED:
        summary = _("Charging started on connector %(n)d") % {"n": session.connector}
    elif kind == EventKind.CHARGING_STOPPED:
        summary = (
            _("Charging stopped: %(kwh)s kWh") % {"kwh": f"{energy / 1000:.2f}"}
            if energy is not None
            else _("Charging stopped")
        )
    else:
        summary = _("Charging session needs review: %(why)s") % {
            "why": Review(session.review).label if session.review else "?"
        }
    record(
        kind,
        organization_id=session.organization_id,
        property_id=session.property_id,
        station_id=session.station_id,
        person=session.person,
        reason=session.review if kind == EventKind.CHARGING_FLAGGED else "",
        occurred_at=at,
        summary=summary,
        data={
            "transaction": session.transaction_id,
            "connector": session.connector,
            **({"energy_wh": energy} if energy is not None else {}),
        },
    )
