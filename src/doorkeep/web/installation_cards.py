"""A charging-station installation as the pages show it (R49): its steps with
their dates in the site's time zone, and the forms of the next step for the
page it is on (the site's residents page, the operator's list). Shared by the
resident portal, the site's page, the operator's list and the detail page."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

from django import forms
from django.urls import reverse
from django.utils.translation import gettext as _

from doorkeep.installations.models import OPEN, Installation
from doorkeep.installations.models import InstallationStatus as S
from doorkeep.web import queries
from doorkeep.web.installation_forms import ElectricianForm, InstalledForm, ScheduleForm, prefixed
from doorkeep.web.resident_forms import RefuseForm

HANDED = (S.ORGANIZING, S.COORDINATING, S.SCHEDULED)


@dataclass
class Step:
    label: str
    at: datetime | None
    reached: bool
    detail: str = ""


@dataclass
class Failed:
    """A step refused on the page: the row, the form that came back (if the
    step has one) and the message when the form does not show it."""

    installation_id: int
    form: forms.Form | None
    message: str


@dataclass
class InstallationCard:
    item: Installation
    tz: ZoneInfo
    steps: list[Step]
    error: str = ""
    decline_form: RefuseForm | None = None
    electrician_form: ElectricianForm | None = None
    schedule_form: ScheduleForm | None = None
    installed_form: InstalledForm | None = None
    urls: dict[str, str] = field(default_factory=dict)  # the actions shown, by name

    @property
    def power(self) -> str:
        return _("%(kw)s kW") % {"kw": f"{self.item.wished_power_w / 1000:g}"}

    @property
    def unit(self) -> str:
        space_unit = self.item.parking_space.unit
        return space_unit.label if space_unit else ""

    @property
    def may_decide(self) -> bool:
        return self.item.status == S.REQUESTED

    @property
    def may_hand_over(self) -> bool:
        return self.item.status == S.APPROVED

    @property
    def may_schedule(self) -> bool:
        return self.item.status in HANDED

    @property
    def may_cancel(self) -> bool:
        """The owner's side and the operator: while it is open."""
        return self.item.status in OPEN

    @property
    def resident_may_cancel(self) -> bool:
        """The resident: before the work is handed on."""
        return self.item.status in (S.REQUESTED, S.APPROVED)

    @property
    def failed_form(self) -> str:
        """Which action form came back with an error (to open its <details>)."""
        for name in ("decline_form", "electrician_form", "schedule_form", "installed_form"):
            form = getattr(self, name)
            if form is not None and form.is_bound:
                return name
        return ""


def steps(item: Installation) -> list[Step]:
    """Each step with its date: those reached, then (while it is open) those to come."""
    i = item
    handed_label = str(S(i.status).label) if i.status in (S.ORGANIZING, S.COORDINATING) else ""
    if not handed_label and i.handed_at is not None:
        handed_label = str(
            S.COORDINATING.label if i.electrician_name else S.ORGANIZING.label
        )  # scheduled, installed or cancelled since
    electrician = ", ".join(
        part
        for part in (
            i.electrician_name,
            i.electrician_company,
            i.electrician_email,
            i.electrician_phone,
        )
        if part
    )
    path = [Step(str(S.REQUESTED.label), i.created_at, True)]
    if i.status == S.DECLINED:
        return [*path, Step(str(S.DECLINED.label), i.decided_at, True, i.decline_reason)]
    path += [
        Step(str(S.APPROVED.label), i.decided_at, i.decided_at is not None),
        Step(
            handed_label or _("Handed to the platform"),
            i.handed_at,
            i.handed_at is not None,
            electrician,
        ),
        Step(
            str(S.SCHEDULED.label),
            i.scheduled_at,
            i.scheduled_at is not None,
            _("for %(day)s") % {"day": i.scheduled_for.isoformat()} if i.scheduled_for else "",
        ),
        Step(
            str(S.INSTALLED.label),
            i.installed_at,
            i.installed_at is not None,
            _("station %(serial)s") % {"serial": i.station_serial} if i.station_serial else "",
        ),
    ]
    if i.status in OPEN:
        return path
    reached = [step for step in path if step.reached]  # skipped steps are not shown
    if i.status == S.CANCELLED:
        reached.append(Step(str(S.CANCELLED.label), i.cancelled_at, True))
    return reached


def card(item: Installation) -> InstallationCard:
    return InstallationCard(item, queries.zone_of(item.property), steps(item))


def _url(name: str, *args: int) -> str:
    return reverse(f"web:{name}", args=args)


def for_site(item: Installation, failed: Failed | None) -> InstallationCard:
    """On the site's residents page (owner, building manager): every step."""
    row = _with_forms(item, failed, owner=True)
    site, pk = item.property_id, item.pk
    if row.may_decide:
        row.urls["approve"] = _url("site_installation_approve", site, pk)
        row.urls["decline"] = _url("site_installation_decline", site, pk)
    if row.may_hand_over:
        row.urls["organize"] = _url("site_installation_organize", site, pk)
        row.urls["electrician"] = _url("site_installation_electrician", site, pk)
    if row.may_schedule:
        row.urls["schedule"] = _url("site_installation_schedule", site, pk)
        row.urls["installed"] = _url("site_installation_installed", site, pk)
    if row.may_cancel:
        row.urls["cancel"] = _url("site_installation_cancel", site, pk)
    return row


def for_operator(item: Installation, failed: Failed | None) -> InstallationCard:
    """On the platform operator's list: schedule it, record it installed."""
    row = _with_forms(item, failed, owner=False)
    if row.may_schedule:
        row.urls["schedule"] = _url("operator_installation_schedule", item.pk)
        row.urls["installed"] = _url("operator_installation_installed", item.pk)
    return row


def for_resident(item: Installation) -> InstallationCard:
    """In the resident's portal: follow it; cancel it before it is handed on."""
    row = card(item)
    if row.resident_may_cancel:
        row.urls["cancel"] = _url("portal_installation_cancel", item.pk)
    return row


def _with_forms(item: Installation, failed: Failed | None, *, owner: bool) -> InstallationCard:
    """A card with the forms of its next step: ``owner`` for the site's page
    (decline, electrician, schedule, installed), else the operator's
    (schedule, installed). A form that came back with an error takes its place."""
    row = card(item)
    mine = failed if failed is not None and failed.installation_id == item.pk else None
    back = mine.form if mine is not None else None
    pk = item.pk
    if owner and row.may_decide:
        row.decline_form = prefixed(
            back if isinstance(back, RefuseForm) else RefuseForm(), "decline", pk
        )
    if owner and row.may_hand_over:
        row.electrician_form = prefixed(
            back if isinstance(back, ElectricianForm) else ElectricianForm(), "electrician", pk
        )
    if row.may_schedule:
        row.schedule_form = prefixed(
            back
            if isinstance(back, ScheduleForm)
            else ScheduleForm(initial={"day": item.scheduled_for}),
            "schedule",
            pk,
        )
        row.installed_form = prefixed(
            back if isinstance(back, InstalledForm) else InstalledForm(), "installed", pk
        )
    if mine is not None:
        row.error = mine.message
    return row
