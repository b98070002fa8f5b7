"""Laundry machines at a site, as their owner and managers keep them:
registered with a device secret shown once, renamed, given a new secret,
removed. And a resident's start of a free machine from the portal.

Changes are for the site's lock owners and building managers (policy action
MANAGE_MACHINES); reading is in ``laundry.selectors`` (its functions are
importable from here too). Every change is an event in the site's log.

A new secret, or the machine's removal, closes the controller's connection
after the commit (the gateway holding it is told; its watch round closes it
too): from then on only the new secret is accepted (close 4009, then 4003
with the old one), as for a lock.

Who may start a machine is the platform's one equipment rule
(badges.access), for a badge presented at the machine (decided by the
controller from its list) and for a start from the portal alike."""

from __future__ import annotations

import re
import secrets
import uuid
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from doorkeep import policy
from doorkeep.accounts.models import User
from doorkeep.badges.access import decide_equipment
from doorkeep.badges.models import Badge, BadgeStatus
from doorkeep.core import registration
from doorkeep.core.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from doorkeep.events.models import DenyReason, EventKind
from doorkeep.events.services import record
from doorkeep.gateway.routing import (
    MACHINE_TIMEOUT,
    MachineOffline,
    MachineRejected,
    MachineTimeout,
    send_machine_start,
)
from doorkeep.keys.models import Person
from doorkeep.laundry.models import Machine, MachineKind, MachineState
from doorkeep.laundry.selectors import (
    cycles,
    gateway_url,
    get_machine,
    get_site,
    live_state,
    machine_status,
    machines_for_resident,
    machines_of_site,
    my_cycles,
    state_label,
)
from doorkeep.properties.models import Property
from doorkeep.residents.models import Residency
from doorkeep.residents.services import site_today

__all__ = [
    "MachineSpec",
    "StartAnswer",
    "change_machine",
    "cycles",
    "gateway_url",
    "get_machine",
    "get_site",
    "live_state",
    "machine_status",
    "machines_for_resident",
    "machines_of_site",
    "my_cycles",
    "new_secret",
    "register_machine",
    "remove_machine",
    "rotate_secret",
    "set_secret",
    "start_machine",
    "state_label",
]

MANAGE = policy.Action.MANAGE_MACHINES
SECRET_BYTES = 18  # 24 URL-safe characters
SERIAL = re.compile(r"^[A-Z0-9][A-Z0-9\-]{3,31}$")


def new_secret() -> str:
    """A controller's device secret: 24 random URL-safe characters."""
    return secrets.token_urlsafe(SECRET_BYTES)


def set_secret(machine: Machine, secret: str) -> None:
    """For demo data and tests: a device secret chosen by the caller."""
    Machine.objects.filter(pk=machine.pk).update(
        secret_digest=Machine.digest_of(secret), secret_set_at=timezone.now()
    )


# --- registering and changing -----------------------------------------------------------------


@dataclass
class MachineSpec:
    serial: str  # the controller's serial number
    kind: str = MachineKind.WASHER
    name: str = ""


def _serial(value: str) -> str:
    clean = re.sub(r"\s", "", value).upper()
    if not SERIAL.fullmatch(clean):
        raise InvalidInput(
            _(
                "A controller's serial number is 4 to 32 letters, digits and dashes, "
                "as printed on the controller (WM-2025-0001)."
            ),
            code="invalid_serial",
            field="serial",
        )
    return clean


def _kind(value: str) -> str:
    if value not in MachineKind.values:
        raise InvalidInput(
            _("A machine is a washing machine (washer) or a dryer (dryer)."),
            code="invalid_kind",
            field="kind",
        )
    return value


def _name(value: str) -> str:
    clean = " ".join(value.split())
    if len(clean) > 100:
        raise InvalidInput(
            _("A machine's name is at most 100 characters."), code="name_too_long", field="name"
        )
    return clean


def register_machine(actor: User, property_id: int, spec: MachineSpec) -> tuple[Machine, str]:
    """Register a laundry machine at a site by its controller's serial:
    returns it and its device secret, shown only this once (stored as a
    digest). A serial that a removed machine of the same organization had is
    that machine back, with a new secret and its old cycles."""
    prop = get_site(actor, property_id, MANAGE)
    serial = _serial(spec.serial)
    kind = _kind(spec.kind)
    name = _name(spec.name)
    secret = new_secret()
    taken = Conflict(
        _("A laundry machine with the serial %(serial)s is registered already.")
        % {"serial": serial},
        code="machine_exists",
        field="serial",
    )
    with transaction.atomic():
        machine = registration.claim(
            Machine,
            {"serial": serial},
            organization_id=prop.organization_id,
            taken=taken,
            create=lambda: Machine.objects.create(
                organization_id=prop.organization_id,
                property=prop,
                kind=kind,
                name=name,
                serial=serial,
                secret_digest=Machine.digest_of(secret),
            ),
            bring_back=lambda found: _bring_back(found, prop, kind, name, secret),
        )
        record(
            EventKind.MACHINE_REGISTERED,
            organization_id=prop.organization_id,
            property_id=prop.pk,
            machine_id=machine.pk,
            actor=actor,
            summary=_("Laundry machine %(machine)s registered (%(kind)s)")
            % {"machine": machine.label, "kind": MachineKind(kind).label},
            data={"serial": serial, "kind": kind},
        )
    return machine, secret


def _bring_back(machine: Machine, prop: Property, kind: str, name: str, secret: str) -> None:
    """A removed machine registered again: in use again, with what its
    controller holds unknown (it gets the whole list at its next connection)."""
    machine.property, machine.kind, machine.name = prop, kind, name
    machine.secret_digest, machine.secret_set_at = Machine.digest_of(secret), timezone.now()
    machine.state, machine.state_at = MachineState.FREE, None
    registration.relist(machine)


def _locked(actor: User, machine_id: int) -> Machine:
    """The machine, for a change by its site's owner or managers, locked
    until the transaction ends."""
    get_machine(actor, machine_id, MANAGE)
    return (
        Machine.objects.select_for_update(of=("self",))
        .select_related("property")
        .get(pk=machine_id)
    )


def change_machine(
    actor: User, machine_id: int, *, name: str | None = None, kind: str | None = None
) -> Machine:
    """Rename a machine, or say what it is (washer or dryer). None leaves a
    field as it is."""
    with transaction.atomic():
        machine = _locked(actor, machine_id)
        before = {"name": machine.name, "kind": machine.kind}
        if name is not None:
            machine.name = _name(name)
        if kind is not None:
            machine.kind = _kind(kind)
        after = {"name": machine.name, "kind": machine.kind}
        if after == before:
            return machine
        machine.save(update_fields=["name", "kind"])
        record(
            EventKind.MACHINE_CHANGED,
            organization_id=machine.organization_id,
            property_id=machine.property_id,
            machine_id=machine.pk,
            actor=actor,
            summary=_("Laundry machine %(serial)s changed: %(name)s, %(kind)s")
            % {
                "serial": machine.serial,
                "name": machine.label,
                "kind": MachineKind(machine.kind).label,
            },
            data={"before": before, "after": after},
        )
    return machine


def rotate_secret(actor: User, machine_id: int) -> str:
    """A new device secret, shown only this once. The controller's current
    connection is closed after the commit; from then on only the new secret
    is accepted."""
    secret = new_secret()
    with transaction.atomic():
        machine = _locked(actor, machine_id)
        machine.secret_digest = Machine.digest_of(secret)
        machine.secret_set_at = timezone.now()
        machine.save(update_fields=["secret_digest", "secret_set_at"])
        _drop_after_commit(machine.pk, "the machine got a new device secret")
        record(
            EventKind.MACHINE_SECRET_ROTATED,
            organization_id=machine.organization_id,
            property_id=machine.property_id,
            machine_id=machine.pk,
            actor=actor,
            summary=_("A new device secret was issued for laundry machine %(machine)s")
            % {"machine": machine.label},
        )
    return secret


def remove_machine(actor: User, machine_id: int) -> Machine:
    """Take a machine out of use: it is no longer listed, its connection is
    closed after the commit and new ones are refused. Its cycles are records
    of use and are kept."""
    with transaction.atomic():
        machine = _locked(actor, machine_id)
        machine.removed_at = timezone.now()
        machine.save(update_fields=["removed_at"])
        _drop_after_commit(machine.pk, "the machine was removed")
        record(
            EventKind.MACHINE_REMOVED,
            organization_id=machine.organization_id,
            property_id=machine.property_id,
            machine_id=machine.pk,
            actor=actor,
            summary=_("Laundry machine %(machine)s removed") % {"machine": machine.label},
            data={"serial": machine.serial},
        )
    return machine


def _drop_after_commit(machine_id: int, reason: str) -> None:
    from doorkeep.gateway.routing import drop_machine

    transaction.on_commit(lambda: drop_machine(machine_id, reason))


# --- a resident, from the portal --------------------------------------------------------------


@dataclass(frozen=True)
class StartAnswer:
    machine: Machine
    request_id: str
    program: str


def _refusal(reason: str) -> str:
    """Why a resident's badge does not start a machine, in their words."""
    messages: dict[str, str] = {
        DenyReason.BADGE_LOST: _(
            "Your badge was reported lost, so it starts no machine. Ask for a new one in the "
            "portal, or have the owner switch it on again if you found it."
        ),
        DenyReason.CREDENTIAL_DEACTIVATED: _("Your badge is switched off."),
        DenyReason.UNKNOWN_CREDENTIAL: _("Your badge is not active yet."),
        DenyReason.NOT_A_RESIDENT: _("You are not a resident of this site today."),
        DenyReason.MOVED_OUT: _("You are no longer a resident of this site."),
        DenyReason.PLATFORM_BADGES_ONLY: _(
            "This site's laundry machines take only badges issued by the platform; ask for one "
            "in the portal."
        ),
    }
    return messages.get(reason, _("Your badge cannot start this machine."))


def _resident_at(actor: User, machine: Machine) -> Person:
    """The person the account is at the machine's site, living there today;
    otherwise the machine does not exist for them."""
    residency = (
        Residency.objects.on(site_today(machine.property))
        .filter(unit__property_id=machine.property_id, person__user=actor)
        .select_related("person")
        .first()
    )
    if residency is None:
        raise NotFound(_("Laundry machine not found."), code="machine_not_found")
    return residency.person


def _badge_of(person: Person) -> Badge:
    """The person's badge that speaks for them: an active one, else the one
    reported lost, else any (the refusal then says why)."""
    badges = Badge.objects.filter(person=person).order_by("-pk")
    badge = (
        badges.filter(status=BadgeStatus.ACTIVE).first()
        or badges.filter(status=BadgeStatus.LOST).first()
        or badges.first()
    )
    if badge is None:
        raise Conflict(
            _(
                "You have no badge yet: the laundry machines start with one. Ask for it in the "
                "portal."
            ),
            code="no_badge",
        )
    return badge


def _program(machine: Machine, program: str) -> str:
    clean = program.strip()
    offered = list(machine.programs or [])
    if clean and offered and clean not in offered:
        raise InvalidInput(
            _("%(machine)s has no program %(program)s; it offers: %(programs)s.")
            % {"machine": machine.label, "program": clean[:40], "programs": ", ".join(offered)},
            code="invalid_program",
            field="program",
        )
    if len(clean) > 40:
        raise InvalidInput(
            _("A program's name is at most 40 characters."), code="invalid_program", field="program"
        )
    return clean


def start_machine(
    actor: User, machine_id: int, *, program: str = "", timeout: float = MACHINE_TIMEOUT
) -> StartAnswer:
    """A resident starts a free machine of their site from the portal: the
    controller is asked to start (a ``start`` command, through the gateway
    holding it) if the site's one equipment rule lets their badge use it
    now. A refusal says why (403 ``laundry_refused``, its reason in
    ``details``), a machine in use or out of order is a conflict (409), an
    offline one 503, no answer in time 504, and the machine's own refusal
    409 (``machine_rejected``). Each attempt is an event."""
    machine = (
        Machine.objects.select_related("property")
        .filter(pk=machine_id, removed_at__isnull=True)
        .first()
    )
    if machine is None:
        raise NotFound(_("Laundry machine not found."), code="machine_not_found")
    person = _resident_at(actor, machine)
    badge = _badge_of(person)
    chosen = _program(machine, program)

    def refused(reason: str, summary: str, **data: object) -> None:
        record(
            EventKind.LAUNDRY_REFUSED,
            organization_id=machine.organization_id,
            property_id=machine.property_id,
            machine_id=machine.pk,
            person=person,
            actor=actor,
            reason=reason[:40],
            credential_kind="tag",
            summary=summary,
            data={"asked": "portal", "tag": badge.uid, **data},
        )

    decision = decide_equipment(machine.property, badge.uid)
    if not decision.allowed:
        refused(
            decision.reason,
            _("%(machine)s: %(name)s could not start it from the portal")
            % {"machine": machine.label, "name": person.name},
        )
        raise PermissionDenied(
            _refusal(decision.reason), code="laundry_refused", reason=decision.reason
        )
    if machine.online and machine.state == MachineState.RUNNING:
        raise Conflict(
            _("%(machine)s is running a cycle: wait until it is free.")
            % {"machine": machine.label},
            code="machine_busy",
        )
    if machine.online and machine.state == MachineState.OUT_OF_ORDER:
        raise Conflict(
            _("%(machine)s is out of order.") % {"machine": machine.label},
            code="machine_out_of_order",
        )
    request_id = uuid.uuid4().hex
    try:
        send_machine_start(
            machine.pk, request_id, program=chosen, person_id=person.pk, timeout=timeout
        )
    except (MachineOffline, MachineTimeout, MachineRejected) as exc:
        refused(
            exc.code,
            _("%(machine)s did not start for %(name)s: %(reason)s")
            % {"machine": machine.label, "name": person.name, "reason": exc.message},
            request_id=request_id,
        )
        raise
    record(
        EventKind.LAUNDRY_AUTHORIZED,
        organization_id=machine.organization_id,
        property_id=machine.property_id,
        machine_id=machine.pk,
        person=person,
        actor=actor,
        credential_kind="tag",
        summary=_("%(machine)s started from the portal by %(name)s")
        % {"machine": machine.label, "name": person.name},
        data={
            "asked": "portal",
            "request_id": request_id,
            "tag": badge.uid,
            **({"program": chosen} if chosen else {}),
        },
    )
    return StartAnswer(machine, request_id, chosen)
