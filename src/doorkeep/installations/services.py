"""Charging-station installations (R49): the verbs, each a step whose state
the resident, the owner's side and the platform operator follow.

    requested ─┬─ approved ─┬─ organizing ───┬─ scheduled ─┬─ installed
               └─ declined  └─ coordinating ─┴─────────────┘
    (cancelled from any open step; installed without a day set first when
    the electrician simply came)

Who does what: the resident asks (and may cancel before the work is handed
on); the owner or a building manager approves or declines and hands the work
to the platform, naming their own electrician or not; the platform operator
(or the owner's side) schedules it and records the installed station, whose
serial is then the station's at that parking space."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from django.db import IntegrityError, transaction
from django.db.models import Q, QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _

from doorkeep import policy
from doorkeep.accounts.models import User
from doorkeep.badges.services import resident_person
from doorkeep.core.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from doorkeep.events.models import EventKind
from doorkeep.events.services import record
from doorkeep.installations import hooks
from doorkeep.installations.models import OPEN, Installation, InstallationStatus
from doorkeep.properties.models import Property
from doorkeep.residents.models import ParkingSpace, Residency
from doorkeep.residents.services import site_today

S = InstallationStatus
MAX_POWER_W = 350_000


def visible_to(actor: User) -> QuerySet[Installation]:
    """The installations ``actor`` may follow: their own, those of the sites
    they manage, and for the platform operator those handed to the platform."""
    rows = Installation.objects.select_related("property", "parking_space", "person")
    mine = Q(person__user=actor) | policy.scope(actor, policy.Action.MANAGE_RESIDENTS)
    if policy.is_platform_operator(actor):
        mine |= Q(handed_at__isnull=False)
    return rows.filter(mine)


def get_installation(actor: User, installation_id: int) -> Installation:
    found = visible_to(actor).filter(pk=installation_id).first()
    if found is None:
        raise NotFound(_("Installation not found."), code="installation_not_found")
    return found


def _locked(actor: User, installation_id: int) -> Installation:
    found = get_installation(actor, installation_id)
    return (
        Installation.objects.select_for_update(of=("self",))
        .select_related("property", "parking_space", "person")
        .get(pk=found.pk)
    )


def _is_manager(actor: User, item: Installation) -> bool:
    return policy.can(actor, policy.Action.MANAGE_RESIDENTS, item.organization_id, item.property_id)


def _is_resident(actor: User, item: Installation) -> bool:
    return item.person.user_id == actor.pk


def _step(item: Installation, allowed: tuple[str, ...], doing: str) -> None:
    if item.status not in allowed:
        raise Conflict(
            _("This installation’s status is “%(status)s”; it cannot be %(doing)s now.")
            % {"status": S(item.status).label, "doing": doing},
            code="wrong_step",
        )


def _save(actor: User, item: Installation, kind: str, summary: str, *fields: str) -> None:
    item.updated_by = actor
    item.save(update_fields=["status", "updated_by", *fields])
    record(
        kind,
        organization_id=item.organization_id,
        property_id=item.property_id,
        person=item.person,
        actor=actor,
        summary=summary,
        data={"installation_id": item.pk, "status": item.status},
    )
    hooks.changed(item)


def request_installation(
    actor: User, property_id: int, *, parking_space: str, wished_power_kw: float, notes: str = ""
) -> Installation:
    """A resident asks for a charging station at their parking space."""
    prop = Property.objects.filter(pk=property_id).first()
    if prop is None:
        raise NotFound(_("Site not found."), code="site_not_found")
    person = resident_person(actor, prop)
    number = parking_space.strip()
    space = ParkingSpace.objects.filter(property=prop, number=number).first()
    if space is None:
        raise InvalidInput(
            _("Parking space %(number)s is not a space of this site.") % {"number": number},
            code="parking_space_not_found",
            field="parking_space",
        )
    if space.unit_id is not None:
        lives = Residency.objects.on(site_today(prop)).filter(person=person, unit_id=space.unit_id)
        if not lives.exists():
            raise PermissionDenied(
                _("Parking space %(number)s belongs to another unit.") % {"number": number},
                code="not_your_space",
            )
    if space.station_serial:
        raise Conflict(
            _("Parking space %(number)s already has a charging station.") % {"number": number},
            code="station_exists",
        )
    if not 1 <= wished_power_kw <= MAX_POWER_W / 1000:
        raise InvalidInput(
            _("The wished power is between 1 and 350 kW (11 kW is usual at home)."),
            code="invalid_power",
            field="wished_power_kw",
        )
    try:
        with transaction.atomic():
            item = Installation.objects.create(
                organization_id=prop.organization_id,
                property=prop,
                parking_space=space,
                person=person,
                requested_by=actor,
                wished_power_w=round(wished_power_kw * 1000),
                notes=notes.strip()[:500],
            )
            _save(
                actor,
                item,
                EventKind.INSTALLATION_REQUESTED,
                _("%(name)s asked for a charging station at parking space %(number)s")
                % {"name": person.name, "number": number},
            )
    except IntegrityError:
        raise Conflict(
            _("An installation at parking space %(number)s is already under way.")
            % {"number": number},
            code="installation_open",
        ) from None
    return item


def _manager_step(actor: User, installation_id: int) -> Installation:
    item = _locked(actor, installation_id)
    if not _is_manager(actor, item):
        raise PermissionDenied(
            _("Only the owner or a building manager of the site decides on an installation.")
        )
    return item


def decide(actor: User, installation_id: int, *, approve: bool, reason: str = "") -> Installation:
    reason = " ".join(reason.split())[:300]
    if not approve and not reason:
        raise InvalidInput(_("Say why the installation is declined."), code="reason_required")
    with transaction.atomic():
        item = _manager_step(actor, installation_id)
        _step(item, (S.REQUESTED,), _("decided"))
        item.status = S.APPROVED if approve else S.DECLINED
        item.decline_reason, item.decided_at = reason, timezone.now()
        _save(
            actor,
            item,
            EventKind.INSTALLATION_APPROVED if approve else EventKind.INSTALLATION_DECLINED,
            (
                _("Charging station at %(number)s approved")
                if approve
                else _("Charging station at %(number)s declined: %(reason)s")
            )
            % {"number": item.parking_space.number, "reason": reason},
            "decline_reason",
            "decided_at",
        )
    return item


@dataclass
class Electrician:
    name: str
    company: str = ""
    email: str = ""
    phone: str = ""


def hand_over(
    actor: User, installation_id: int, *, electrician: Electrician | None = None
) -> Installation:
    """The owner asks the platform to organize the installation, or names
    their own electrician for the platform to coordinate with."""
    if electrician is not None:
        if not electrician.name.strip():
            raise InvalidInput(_("Give the electrician's name."), code="electrician_required")
        if not (electrician.email.strip() or electrician.phone.strip()):
            raise InvalidInput(
                _("Give the electrician's email address or phone number, so they can be reached."),
                code="electrician_contact_required",
            )
        if electrician.email and "@" not in electrician.email:
            raise InvalidInput(
                _("%(email)s is not an email address.") % {"email": electrician.email},
                code="invalid_email",
                field="email",
            )
    with transaction.atomic():
        item = _manager_step(actor, installation_id)
        _step(item, (S.APPROVED,), _("handed to the platform"))
        item.handed_at = timezone.now()
        if electrician is None:
            item.status = S.ORGANIZING
            summary = _("The platform organizes the charging station at %(number)s")
        else:
            item.status = S.COORDINATING
            item.electrician_name = electrician.name.strip()[:150]
            item.electrician_company = electrician.company.strip()[:150]
            item.electrician_email = electrician.email.strip().lower()[:254]
            item.electrician_phone = electrician.phone.strip()[:40]
            summary = _("The platform coordinates the charging station at %(number)s with %(who)s")
        _save(
            actor,
            item,
            EventKind.INSTALLATION_ORGANIZING
            if item.status == S.ORGANIZING
            else EventKind.INSTALLATION_COORDINATING,
            summary % {"number": item.parking_space.number, "who": item.electrician_name},
            "handed_at",
            "electrician_name",
            "electrician_company",
            "electrician_email",
            "electrician_phone",
        )
    return item


def _platform_step(actor: User, installation_id: int) -> Installation:
    item = _locked(actor, installation_id)
    if not (policy.is_platform_operator(actor) or _is_manager(actor, item)):
        raise PermissionDenied(
            _("The platform operator or the site's owner schedules and completes installations.")
        )
    return item


def schedule(actor: User, installation_id: int, day: date) -> Installation:
    with transaction.atomic():
        item = _platform_step(actor, installation_id)
        _step(item, (S.ORGANIZING, S.COORDINATING, S.SCHEDULED), _("scheduled"))
        if day < site_today(item.property):
            raise InvalidInput(_("The installation day cannot be in the past."), code="past_date")
        item.status, item.scheduled_for, item.scheduled_at = S.SCHEDULED, day, timezone.now()
        _save(
            actor,
            item,
            EventKind.INSTALLATION_SCHEDULED,
            _("Charging station at %(number)s scheduled for %(day)s")
            % {"number": item.parking_space.number, "day": day.isoformat()},
            "scheduled_for",
            "scheduled_at",
        )
    return item


def complete(actor: User, installation_id: int, *, station_serial: str) -> Installation:
    """The station is installed: its serial becomes the station's at that space,
    and the station is registered at the site with the serial as its charge
    point id (``item.station_password``: its password, shown once; None when
    it could not be registered so, see chargers.services.register_installed)."""
    serial = "".join(station_serial.split()).upper()
    if not serial or len(serial) > 40:
        raise InvalidInput(
            _("Give the installed station's serial number (at most 40 characters)."),
            code="serial_required",
            field="station_serial",
        )
    with transaction.atomic():
        item = _platform_step(actor, installation_id)
        _step(item, (S.SCHEDULED, S.ORGANIZING, S.COORDINATING), _("completed"))
        taken = ParkingSpace.objects.filter(property=item.property, station_serial=serial).exclude(
            pk=item.parking_space_id
        )
        if taken.exists():
            raise Conflict(
                _("Station %(serial)s is already at another parking space of this site.")
                % {"serial": serial},
                code="station_serial_taken",
            )
        ParkingSpace.objects.filter(pk=item.parking_space_id).update(station_serial=serial)
        item.parking_space.station_serial = serial
        item.status, item.station_serial, item.installed_at = S.INSTALLED, serial, timezone.now()
        _save(
            actor,
            item,
            EventKind.INSTALLATION_INSTALLED,
            _("Charging station %(serial)s installed at %(number)s")
            % {"serial": serial, "number": item.parking_space.number},
            "station_serial",
            "installed_at",
        )
        from doorkeep.chargers.services import register_installed

        item.station_password = register_installed(actor, item.parking_space, serial)
    return item


def cancel(actor: User, installation_id: int) -> Installation:
    """The resident cancels before the work is handed on; the owner's side
    and the operator while it is open."""
    with transaction.atomic():
        item = _locked(actor, installation_id)
        _step(item, OPEN, _("cancelled"))  # first: cancelled twice is not a matter of rights
        staff = _is_manager(actor, item) or policy.is_platform_operator(actor)
        if not staff and not (
            _is_resident(actor, item) and item.status in (S.REQUESTED, S.APPROVED)
        ):
            raise PermissionDenied(
                _("Once handed to the platform, only the owner or the operator can cancel it.")
            )
        item.status, item.cancelled_at = S.CANCELLED, timezone.now()
        _save(
            actor,
            item,
            EventKind.INSTALLATION_CANCELLED,
            _("Installation at %(number)s cancelled") % {"number": item.parking_space.number},
            "cancelled_at",
        )
    return item
