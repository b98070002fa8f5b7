"""Forms of the charging-station installation steps (R49): the resident asks
in the portal; the owner's side decides and hands the work to the platform;
the platform (or the owner's side) schedules it and records the installed
station. They check the shape of the input; the services decide the rest."""

from __future__ import annotations

from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from doorkeep.installations.services import Electrician
from doorkeep.web.forms import ServiceErrorsMixin
from doorkeep.web.resident_forms import MAX_ID

_DATE = forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")
_CODE = {"autocomplete": "off", "autocapitalize": "characters", "spellcheck": "false"}


class InstallationRequestForm(ServiceErrorsMixin, forms.Form):
    FIELD_FOR_CODE = {
        "parking_space_not_found": "parking_space",
        "not_your_space": "parking_space",
        "station_exists": "parking_space",
        "installation_open": "parking_space",
        "invalid_power": "wished_power_kw",
    }

    property = forms.IntegerField(min_value=1, max_value=MAX_ID, widget=forms.HiddenInput)
    parking_space = forms.CharField(
        label=_("Parking space number"),
        max_length=20,
        help_text=_("As written at your space, for example P7."),
    )
    wished_power_kw = forms.FloatField(
        label=_("Wished power (kW)"),
        initial=11,
        help_text=_("11 kW is usual at home; ask your electrician if unsure."),
        widget=forms.NumberInput(attrs={"step": "0.1", "inputmode": "decimal"}),
    )
    notes = forms.CharField(
        label=_("Notes (optional)"),
        max_length=500,
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=_("Anything the installer should know: where the meter is, a wall or a post."),
    )


class ElectricianForm(ServiceErrorsMixin, forms.Form):
    """The owner's own electrician, for the platform to coordinate with."""

    FIELD_FOR_CODE = {"electrician_required": "name", "invalid_email": "email"}

    name = forms.CharField(label=_("Electrician's name"), max_length=150)
    company = forms.CharField(label=_("Company (optional)"), max_length=150, required=False)
    email = forms.EmailField(label=_("Email address"), max_length=254, required=False)
    phone = forms.CharField(
        label=_("Phone number"),
        max_length=40,
        required=False,
        help_text=_("An email address or a phone number, so that they can be reached."),
        widget=forms.TextInput(attrs={"type": "tel", "autocomplete": "off"}),
    )

    def electrician(self) -> Electrician:
        data = self.cleaned_data
        return Electrician(
            name=data["name"], company=data["company"], email=data["email"], phone=data["phone"]
        )


class ScheduleForm(ServiceErrorsMixin, forms.Form):
    FIELD_FOR_CODE = {"past_date": "day"}

    day = forms.DateField(label=_("Installation day"), widget=_DATE)


class InstalledForm(ServiceErrorsMixin, forms.Form):
    FIELD_FOR_CODE = {"serial_required": "station_serial", "station_serial_taken": "station_serial"}

    station_serial = forms.CharField(
        label=_("Serial number of the installed station"),
        max_length=40,
        widget=forms.TextInput(attrs=_CODE),
    )


def prefixed(form: Any, prefix: str, pk: int) -> Any:
    """The form's ids made unique on a page with one form per row."""
    form.auto_id = f"id_{prefix}{pk}_%s"
    return form
