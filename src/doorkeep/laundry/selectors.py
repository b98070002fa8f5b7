"""Reading laundry machines and their cycles, with the right to read them: a
site's machines with their live state (for the site's page, which refreshes
itself, and the API), a machine's cycles, a site's cycles, and the machines
a resident may use.

Machines and cycles are for the site's lock owners, building managers and
read-only collaborators: the same right as charging stations (policy action
VIEW_STATIONS: the site's shared equipment; cycles name residents, as
charging sessions do). Another organization's machine does not exist for
the caller (404)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db.models import Q, QuerySet
from django.db.models.functions import Coalesce
from django.utils.translation import gettext as _

from doorkeep import policy
from doorkeep.accounts.models import User
from doorkeep.core.errors import InvalidInput, NotFound, PermissionDenied
from doorkeep.laundry.models import Cycle, Machine, MachineState
from doorkeep.properties.models import Property
from doorkeep.properties.services import get_property
from doorkeep.residents.models import Residency
from doorkeep.residents.services import site_today

VIEW = policy.Action.VIEW_STATIONS

_CYCLE_RELATED = ("machine", "person", "unit", "badge", "property")


def denial(action: policy.Action) -> str:
    """Why a member may not do this, in laundry words (the viewing right is
    the charging stations', whose own reason names charging stations)."""
    if action == VIEW:
        return _(
            "Only lock owners, building managers and read-only collaborators can see the "
            "laundry machines and laundry cycles of a site."
        )
    return policy.denial(action)


def get_site(actor: User, property_id: int, action: policy.Action = VIEW) -> Property:
    """A site whose machines the caller may ``action`` on (404 for another
    organization's, 403 with the reason for a role that does not allow it)."""
    prop = get_property(actor, property_id)
    if not policy.can(actor, action, prop.organization_id, prop.pk):
        raise PermissionDenied(denial(action))
    return prop


def get_machine(
    actor: User, machine_id: int, action: policy.Action = VIEW, *, removed: bool = False
) -> Machine:
    """A machine of a site the caller may ``action`` on. A removed machine is
    not found unless ``removed``. Another organization's machine, or one of
    a site a collaborator is not scoped to, is not found (404); a member
    whose role does not allow the action is refused (403)."""
    machine = Machine.objects.select_related("property").filter(pk=machine_id).first()
    if (
        machine is None
        or (machine.removed_at is not None and not removed)
        or policy.role_in(actor, machine.organization_id, machine.property_id) is None
    ):
        raise NotFound(_("Laundry machine not found."), code="machine_not_found")
    if not policy.can(actor, action, machine.organization_id, machine.property_id):
        raise PermissionDenied(denial(action))
    return machine


def machines_of_site(actor: User, property_id: int) -> list[Machine]:
    """The site's machines (not the removed ones), by name."""
    prop = get_site(actor, property_id)
    return list(Machine.objects.filter(property=prop, removed_at__isnull=True))


def live_state(machine: Machine) -> str:
    """What the site's page shows: free, running, out_of_order, or offline
    (the state the controller last reported means nothing while it is not
    connected)."""
    if not machine.online:
        return "offline"
    return str(machine.state or MachineState.FREE)


STATE_LABELS = {
    "free": MachineState.FREE.label,
    "running": MachineState.RUNNING.label,
    "out_of_order": MachineState.OUT_OF_ORDER.label,
}


def state_label(state: str) -> str:
    if state == "offline":
        return _("Offline")
    return str(STATE_LABELS.get(state, state))


def machine_status(machine: Machine) -> dict[str, Any]:
    """The machine's live state and its controller's connection and list."""
    return {
        "state": live_state(machine),
        "reported_state": machine.state,
        "state_at": machine.state_at,
        "online": machine.online,
        "programs": list(machine.programs or []),
        "firmware": machine.firmware,
        "connected_at": machine.connected_at,
        "last_seen_at": machine.last_seen_at,
        "clock_offset_ms": machine.clock_offset_ms,
        "list": {
            "state": sync_state(machine),
            "list_version": machine.list_version,
            "acked_version": machine.acked_version,
            "last_push_at": machine.last_push_at,
            "last_error": machine.last_error,
        },
    }


def sync_state(machine: Machine) -> str:
    """synced, pending or failed: whether it holds the platform's list."""
    if machine.acked_version >= machine.list_version:
        return "synced"
    if machine.last_error:
        return "failed"
    return "pending"


def gateway_url() -> str:
    """The address a controller dials (the gateway's public URL, as ws://)."""
    base = str(getattr(settings, "GATEWAY_PUBLIC_URL", "") or "").rstrip("/")
    if not base:
        return f"ws://{settings.GATEWAY_HOST}:{settings.GATEWAY_PORT}"
    if base.startswith("http://"):
        return "ws://" + base[len("http://") :]
    if base.startswith("https://"):
        return "wss://" + base[len("https://") :]
    return base


# --- cycles ---------------------------------------------------------------------------------


def _newest_first(rows: QuerySet[Cycle]) -> QuerySet[Cycle]:
    # A cycle whose start never arrived is placed by its end.
    return rows.order_by(Coalesce("started_at", "ended_at", "created_at").desc(), "-pk")


def cycles(
    actor: User,
    *,
    property_id: int | None = None,
    machine_id: int | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> QuerySet[Cycle]:
    """The cycles of a site or of one machine (a removed one too: cycles
    are records of use), newest first, started in [since, until) (or, with
    no known start, ended then)."""
    if machine_id is not None:
        machine = get_machine(actor, machine_id, removed=True)
        if property_id is not None and property_id != machine.property_id:
            raise NotFound(_("Laundry machine not found."), code="machine_not_found")
        rows = Cycle.objects.filter(machine=machine)
    elif property_id is not None:
        prop = get_site(actor, property_id)
        rows = Cycle.objects.filter(property=prop)
    else:
        raise InvalidInput(_("Name a site or a machine."), code="site_required")
    if since is not None and until is not None and until <= since:
        raise InvalidInput(
            _("The end of the period must come after its start."), code="invalid_period"
        )
    if since is not None:
        rows = rows.filter(
            Q(started_at__gte=since) | Q(started_at__isnull=True, ended_at__gte=since)
        )
    if until is not None:
        rows = rows.filter(Q(started_at__lt=until) | Q(started_at__isnull=True, ended_at__lt=until))
    return _newest_first(rows).select_related(*_CYCLE_RELATED)


# --- a resident -----------------------------------------------------------------------------


@dataclass
class ResidentSite:
    """A site where the account lives today, and its machines."""

    prop: Property
    person_id: int
    machines: list[Machine]


def machines_for_resident(actor: User) -> list[ResidentSite]:
    """The machines of each site where the account lives today (a resident
    may start a free one there from the portal)."""
    if not actor.is_authenticated:
        return []
    found: dict[int, ResidentSite] = {}
    residencies = Residency.objects.filter(person__user=actor).select_related("unit__property")
    for residency in residencies:
        prop = residency.unit.property
        if prop.pk in found or not residency.includes(site_today(prop)):
            continue
        found[prop.pk] = ResidentSite(prop, residency.person_id, [])
    if not found:
        return []
    for machine in Machine.objects.filter(property_id__in=found, removed_at__isnull=True):
        found[machine.property_id].machines.append(machine)
    return [site for site in found.values() if site.machines]


def my_cycles(actor: User) -> QuerySet[Cycle]:
    """The cycles started with the badges of the persons the account is, or
    by them from the portal, at every site, newest first."""
    return _newest_first(Cycle.objects.filter(person__user=actor)).select_related(*_CYCLE_RELATED)
