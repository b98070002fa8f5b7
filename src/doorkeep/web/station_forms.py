"""Forms of the charging-station pages: registering a station, renaming or
moving it, removing it, the commands sent to it, and the month a list of
sessions covers. They check the shape of the input; the services
(chargers.services) decide the rest and say why they refuse."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import MAXYEAR, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from django import forms
from django.utils.translation import gettext_lazy as _

from doorkeep.chargers.services import ACTIONS, MAX_CONNECTOR
from doorkeep.residents.models import ParkingSpace
from doorkeep.web.forms import ServiceErrorsMixin

MAX_ID = 2**63 - 1  # an id beyond this names nothing (and SQLite cannot compare it)
_CODE = {"autocomplete": "off", "autocapitalize": "none", "spellcheck": "false"}


def space_label(space: ParkingSpace) -> str:
    if space.unit is not None:
        return str(_("%(number)s (private to %(unit)s)")) % {
            "number": space.number,
            "unit": space.unit.label,
        }
    return str(_("%(number)s (shared)")) % {"number": space.number}


class _SpaceChoice:
    """A form with a ``parking_space`` field: a select of the site's spaces,
    by id (the service decides whether the id is a space of the site)."""

    fields: dict[str, forms.Field]

    def set_spaces(self, spaces: Iterable[ParkingSpace]) -> None:
        field = self.fields["parking_space"]
        field.widget.choices = [
            ("", _("None: shared by every resident")),
            *((s.pk, space_label(s)) for s in spaces),
        ]


class StationForm(_SpaceChoice, ServiceErrorsMixin, forms.Form):
    FIELD_FOR_CODE = {
        "invalid_charge_point_id": "charge_point_id",
        "station_exists": "charge_point_id",
        "name_too_long": "name",
        "parking_space_not_found": "parking_space",
    }

    # Longer than a charge point id may be: the service's message says what one is.
    charge_point_id = forms.CharField(
        label=_("Charge point id"),
        max_length=100,
        widget=forms.TextInput(attrs={**_CODE, "placeholder": "CP-1"}),
        help_text=_(
            "As the station is set up to call itself: the last part of the address it dials "
            "(…/ocpp/CP-1). Letters, digits, dots, dashes and underscores."
        ),
    )
    name = forms.CharField(label=_("Name (optional)"), max_length=100, required=False)
    parking_space = forms.IntegerField(
        label=_("Parking space"),
        min_value=1,
        max_value=MAX_ID,
        required=False,
        widget=forms.Select,
        help_text=_(
            "At a unit's parking space the station is private to the unit's residents; "
            "otherwise every resident of the site may charge there."
        ),
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("auto_id", "id_station_%s")
        super().__init__(*args, **kwargs)


class ChangeStationForm(_SpaceChoice, ServiceErrorsMixin, forms.Form):
    FIELD_FOR_CODE = {"name_too_long": "name", "parking_space_not_found": "parking_space"}

    name = forms.CharField(label=_("Name"), max_length=100, required=False)
    parking_space = forms.IntegerField(
        label=_("Parking space"),
        min_value=1,
        max_value=MAX_ID,
        required=False,
        widget=forms.Select,
        help_text=_("Moving it to or from a unit's space changes who may charge there."),
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("auto_id", "id_change_%s")
        super().__init__(*args, **kwargs)


class RemoveStationForm(forms.Form):
    confirm = forms.BooleanField(
        label=_("Yes, remove this station. It can no longer connect; its sessions are kept."),
        error_messages={
            "required": _("Tick the box to confirm that the station is to be removed.")
        },
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("auto_id", "id_remove_%s")
        super().__init__(*args, **kwargs)


class CommandForm(forms.Form):
    """One command to a station, as the buttons of the station page send it
    (the action is the button's form's; a few buttons add their own value)."""

    action = forms.ChoiceField(choices=[(a, a) for a in ACTIONS])
    hard = forms.BooleanField(required=False)
    connector = forms.IntegerField(
        label=_("Connector"), min_value=0, max_value=MAX_CONNECTOR, required=False
    )
    available = forms.TypedChoiceField(
        choices=[("yes", _("Available")), ("no", _("Unavailable"))],
        coerce=lambda value: value == "yes",
        required=False,
        empty_value=None,
    )
    id_tag = forms.CharField(label=_("Badge UID"), max_length=40, required=False)
    session_id = forms.IntegerField(min_value=1, max_value=MAX_ID, required=False)

    # The arguments each action takes (the others the form may hold are left out).
    ARGS: dict[str, tuple[str, ...]] = {
        "reset": ("hard",),
        "unlock_connector": ("connector",),
        "change_availability": ("connector", "available"),
        "remote_start": ("id_tag", "connector"),
        "remote_stop": ("session_id",),
    }

    def command(self) -> tuple[str, dict[str, Any]]:
        """The action and its arguments, for ``services.send_command``."""
        data = self.cleaned_data
        action = data["action"]
        args = {name: data.get(name) for name in self.ARGS[action]}
        if action == "remote_start" and not (args.get("id_tag") or "").strip():
            args["id_tag"] = None  # the service says a badge is needed
        return action, {k: v for k, v in args.items() if v is not None}


class MonthForm(forms.Form):
    """The month a list of sessions covers, in the site's time zone; empty:
    every month."""

    month = forms.DateField(
        label=_("Month"),
        required=False,
        input_formats=["%Y-%m"],
        widget=forms.DateInput(attrs={"type": "month"}, format="%Y-%m"),
        error_messages={"invalid": _("Enter a month as YYYY-MM, for example 2026-01.")},
    )

    def period(self, tz: ZoneInfo) -> tuple[datetime | None, datetime | None]:
        """The month as [since, until) in the site's time zone, or (None, None)."""
        day: date | None = self.cleaned_data.get("month") if self.is_valid() else None
        if day is None:
            return None, None
        since = datetime(day.year, day.month, 1, tzinfo=tz)
        year, month = (day.year + 1, 1) if day.month == 12 else (day.year, day.month + 1)
        if year > MAXYEAR:
            return since, None
        return since, datetime(year, month, 1, tzinfo=tz)
