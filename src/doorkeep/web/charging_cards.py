"""Charging stations as the pages show them: a station with its live state
and where it stands (the site's stations page, the station page), and the
resident portal's Charging section (the stations a resident may use, with
their free connectors; their running sessions; their past ones). Shared by
views/stations.py and views/portal.py.

A resident sees whether a connector is free or in use, never who uses it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from django.db.models import Q
from django.utils.translation import gettext as _

from doorkeep.accounts.models import User
from doorkeep.chargers import services
from doorkeep.chargers.models import ChargingSession, Station
from doorkeep.gateway.models import SyncState
from doorkeep.properties.models import Property, zone_of
from doorkeep.residents.selectors import residencies_of_user
from doorkeep.residents.services import site_today

PORTAL_SESSIONS_SHOWN = 20
# A connector a session may start on: free, or plugged in and waiting (1.6
# Preparing; 2.0.1 Occupied), or not reported yet. Not Unavailable, Faulted,
# Reserved, nor Finishing (1.6: the last session's cable still in).
STARTABLE = frozenset({"", "Available", "Preparing", "Occupied"})


def where(station: Station) -> str:
    """Where the station stands, and so who may charge there."""
    space = station.parking_space
    if space is None:
        return _("Shared, at no parking space")
    if space.unit is not None:
        return _("Parking space %(number)s, private to %(unit)s") % {
            "number": space.number,
            "unit": space.unit.label,
        }
    return _("Parking space %(number)s, shared") % {"number": space.number}


@dataclass
class StationCard:
    """A station with its live state (``chargers.selectors.station_status``)."""

    station: Station
    status: dict[str, Any]

    @property
    def where(self) -> str:
        return where(self.station)

    @property
    def sync(self) -> SyncState:
        return SyncState(self.status["local_list"]["state"])

    @property
    def running(self) -> int:
        return sum(1 for c in self.status["connectors"] if c["session"] is not None)


def station_cards(stations: list[Station]) -> list[StationCard]:
    """Cards for many stations, their states read in two queries."""
    states = services.statuses(stations)
    return [StationCard(s, states[s.pk]) for s in stations]


# --- the resident portal -------------------------------------------------------------------


@dataclass
class PortalConnector:
    number: int
    status: str
    busy: bool  # a session runs on it
    mine: bool  # and it is theirs

    @property
    def free(self) -> bool:
        return not self.busy and self.status in STARTABLE


@dataclass
class PortalStation:
    station: Station
    online: bool
    connectors: list[PortalConnector]

    @property
    def where(self) -> str:
        return where(self.station)

    @property
    def private(self) -> bool:
        return self.station.private


@dataclass
class PortalSite:
    prop: Property
    stations: list[PortalStation]


@dataclass
class SessionRow:
    session: ChargingSession
    tz: ZoneInfo

    @property
    def energy_wh(self) -> int | None:
        return services.energy_so_far(self.session)


@dataclass
class ChargingPanel:
    sites: list[PortalSite] = field(default_factory=list)
    running: list[SessionRow] = field(default_factory=list)
    past: list[SessionRow] = field(default_factory=list)

    @property
    def shown(self) -> bool:
        """Worth a section: a station they may use, or sessions of theirs."""
        return any(site.stations for site in self.sites) or bool(self.running or self.past)

    @property
    def zones(self) -> list[str]:
        return sorted({row.tz.key for row in [*self.running, *self.past]})


def _connectors(status: dict[str, Any], people: set[int]) -> list[PortalConnector]:
    rows = [
        PortalConnector(
            c["number"],
            c["status"],
            c["session"] is not None,
            c["session"] is not None and c["session"]["person_id"] in people,
        )
        for c in status["connectors"]
        if c["number"] != 0  # 0 is the station as a whole
    ]
    # A station that has not said anything of its connectors yet: its first one.
    return rows or [PortalConnector(1, "", False, False)]


def for_resident(user: User) -> ChargingPanel:
    """The portal's Charging section: at each site where the account lives
    today, the stations its residents may use (the shared ones and those of
    their unit's parking spaces), and the account's own sessions."""
    residencies = [r for r in residencies_of_user(user) if r.includes(site_today(r.unit.property))]
    props = {r.unit.property_id: r.unit.property for r in residencies}
    units = {r.unit_id for r in residencies}
    people = {r.person_id for r in residencies}
    stations = list(
        Station.objects.filter(property_id__in=props, removed_at__isnull=True)
        .filter(
            Q(parking_space__isnull=True)
            | Q(parking_space__unit__isnull=True)
            | Q(parking_space__unit_id__in=units)
        )
        .select_related("property", "parking_space__unit")
    )
    states = services.statuses(stations)
    panel = ChargingPanel()
    for prop in sorted(props.values(), key=lambda p: (p.name, p.pk)):
        panel.sites.append(
            PortalSite(
                prop,
                [
                    PortalStation(s, s.online, _connectors(states[s.pk], people))
                    for s in stations
                    if s.property_id == prop.pk
                ],
            )
        )
    mine = services.my_sessions(user)
    panel.running = [
        SessionRow(s, zone_of(s.property))
        for s in mine.filter(stopped_at__isnull=True, started_at__isnull=False)
    ]
    panel.past = [
        SessionRow(s, zone_of(s.property))
        for s in mine.filter(stopped_at__isnull=False)[:PORTAL_SESSIONS_SHOWN]
    ]
    return panel
