"""Forms of the residents and badges pages: a site's residents and billing
(owner, building manager), the resident portal and the operator's badge
queue. They check the shape of the input; the services decide the rest."""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from django import forms
from django.core.files.uploadedfile import UploadedFile
from django.utils.translation import gettext_lazy as _

from doorkeep.badges.models import Delivery
from doorkeep.properties.models import BillingMode, Currency
from doorkeep.residents.models import Residency, Unit
from doorkeep.residents.portal import normalize_code
from doorkeep.web.forms import ServiceErrorsMixin

MAX_IMPORT_BYTES = 2 * 1024 * 1024
_DATE = forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")
_CODE = {"autocomplete": "off", "autocapitalize": "characters", "spellcheck": "false"}

MAX_ID = 2**63 - 1  # an id beyond this names nothing (and SQLite cannot compare it)


def _select(field: forms.Field, choices: list[tuple[Any, Any]]) -> None:
    field.widget.choices = choices


# --- the site: units, parking spaces, residents ---------------------------------------


class UnitForm(ServiceErrorsMixin, forms.Form):
    FIELD_FOR_CODE = {"required": "label", "too_long": "label", "unit_exists": "label"}

    label = forms.CharField(
        label=_("New unit"),
        max_length=40,
        widget=forms.TextInput(attrs={"placeholder": _("For example: 2B")}),
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("auto_id", "id_unit_%s")
        super().__init__(*args, **kwargs)


class ParkingSpaceForm(ServiceErrorsMixin, forms.Form):
    FIELD_FOR_CODE = {
        "required": "number",
        "too_long": "number",
        "parking_space_exists": "number",
        "unit_not_found": "unit",
    }

    number = forms.CharField(label=_("Parking space number"), max_length=20)
    # An id, not a choice: the service decides whether the unit is the site's.
    unit = forms.IntegerField(
        min_value=1,
        max_value=MAX_ID,
        label=_("Unit"),
        required=False,
        widget=forms.Select,
        help_text=_("A space of a unit is private to its residents."),
    )
    station_serial = forms.CharField(
        label=_("Charging station serial (optional)"),
        max_length=40,
        required=False,
        widget=forms.TextInput(attrs=_CODE),
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("auto_id", "id_space_%s")
        super().__init__(*args, **kwargs)

    def set_units(self, units: Iterable[Unit]) -> None:
        _select(self.fields["unit"], [("", _("None (shared)")), *((u.pk, u.label) for u in units)])


class ResidentForm(ServiceErrorsMixin, forms.Form):
    FIELD_FOR_CODE = {
        "email_required": "email",
        "invalid_email": "email",
        "unit_not_found": "unit",
        "invalid_dates": "move_out",
        "residency_overlaps": "move_in",
    }

    name = forms.CharField(label=_("Name"), max_length=150)
    email = forms.EmailField(label=_("Email address"), max_length=254)
    unit = forms.IntegerField(min_value=1, max_value=MAX_ID, label=_("Unit"), widget=forms.Select)
    move_in = forms.DateField(label=_("Move-in"), widget=_DATE)
    move_out = forms.DateField(
        label=_("Move-out (optional)"),
        required=False,
        widget=_DATE,
        help_text=_("The last day lived there."),
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("auto_id", "id_resident_%s")
        super().__init__(*args, **kwargs)

    def set_units(self, units: Iterable[Unit]) -> None:
        _select(self.fields["unit"], [("", _("Choose a unit")), *((u.pk, u.label) for u in units)])


class MoveOutForm(forms.Form):
    move_out = forms.DateField(label=_("Move-out"), required=False, widget=_DATE)


class ImportForm(ServiceErrorsMixin, forms.Form):
    csv = forms.CharField(
        label=_("Lines to import"),
        required=False,
        widget=forms.Textarea(
            attrs={
                "rows": 5,
                "spellcheck": "false",
                "placeholder": "name,email,unit,move_in\nAnna Meier,anna@example.com,2B,2026-01-31",
            }
        ),
        help_text=_(
            "One resident a line: name, email, unit, move-in date (2026-01-31). Comma, "
            "semicolon or tab; a header line with those names is skipped."
        ),
    )
    file = forms.FileField(label=_("Or a CSV file"), required=False)
    add_missing_units = forms.BooleanField(
        label=_("Add units that do not exist yet"), required=False
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("auto_id", "id_import_%s")
        super().__init__(*args, **kwargs)

    def clean_file(self) -> str | None:
        upload: UploadedFile | None = self.cleaned_data.get("file")
        if upload is None:
            return None
        if (upload.size or 0) > MAX_IMPORT_BYTES:
            raise forms.ValidationError(
                _("The file is larger than 2 MB; import it in parts."), code="too_large"
            )
        raw = upload.read()
        for encoding in ("utf-8-sig", "cp1252"):  # Excel saves "CSV" in the latter
            try:
                text = raw.decode(encoding)
            except UnicodeDecodeError:
                continue
            if "\x00" not in text:
                return text
        raise forms.ValidationError(
            _("This file is not a CSV text file. Save it as CSV (UTF-8) and try again."),
            code="not_text",
        )

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        pasted, uploaded = (data.get("csv") or "").strip(), data.get("file")
        if "file" in self.errors:
            return data
        if pasted and uploaded:
            raise forms.ValidationError(
                _("Paste the lines or choose a file, not both."), code="two_sources"
            )
        if not pasted and not uploaded:
            raise forms.ValidationError(
                _("Paste the lines to import, or choose a CSV file."), code="nothing"
            )
        if "\x00" in pasted:
            raise forms.ValidationError(_("The lines hold a character that is not text."))
        return data

    def text(self) -> str:
        return str(self.cleaned_data.get("file") or self.cleaned_data["csv"])


# --- the site's billing ------------------------------------------------------------


class BillingModeForm(forms.Form):
    mode = forms.ChoiceField(
        label=_("Billing mode"), choices=BillingMode.choices, widget=forms.RadioSelect
    )
    confirm = forms.BooleanField(required=False, widget=forms.HiddenInput)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("auto_id", "id_mode_%s")
        super().__init__(*args, **kwargs)


class BadgePriceForm(ServiceErrorsMixin, forms.Form):
    FIELD_FOR_CODE = {"invalid_currency": "currency", "invalid_price": "price"}

    currency = forms.ChoiceField(label=_("Currency"), choices=Currency.choices)
    price = forms.DecimalField(
        label=_("Price of an extra badge"),
        min_value=Decimal(0),
        max_value=Decimal(1000),
        max_digits=7,
        decimal_places=2,
        help_text=_("A resident's first badge is included; 0 makes extra badges free too."),
        widget=forms.NumberInput(attrs={"step": "0.01", "inputmode": "decimal"}),
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("auto_id", "id_price_%s")
        super().__init__(*args, **kwargs)

    def price_minor(self) -> int:
        return int(self.cleaned_data["price"] * 100)


# --- badges ----------------------------------------------------------------------------


class RegisterBadgeForm(ServiceErrorsMixin, forms.Form):
    """An existing (third-party) badge of a resident, with the reader's values.
    A refused card or billing mode is said above the form, not under a field."""

    FIELD_FOR_CODE = {
        "invalid_uid": "uid",
        "invalid_atqa": "atqa",
        "invalid_sak": "sak",
        "resident_not_found": "person",
        "badge_exists": "uid",
        "badge_taken": "uid",
    }

    # An id, not a choice: the service decides whether they live at the site.
    person = forms.IntegerField(
        min_value=1, max_value=MAX_ID, label=_("Resident"), widget=forms.Select
    )
    uid = forms.CharField(
        label=_("UID"),
        max_length=64,
        help_text=_("For example B3:2F:1A:7C."),
        widget=forms.TextInput(attrs=_CODE),
    )
    atqa = forms.CharField(
        label=_("ATQA"),
        max_length=16,
        help_text=_("For example 0x0004."),
        widget=forms.TextInput(attrs=_CODE),
    )
    sak = forms.CharField(
        label=_("SAK"),
        max_length=8,
        help_text=_("For example 08."),
        widget=forms.TextInput(attrs=_CODE),
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("auto_id", "id_register_%s")
        super().__init__(*args, **kwargs)

    def set_residents(self, residents: Iterable[Residency]) -> None:
        seen: dict[int, str] = {}
        for residency in residents:
            seen.setdefault(
                residency.person_id, f"{residency.person.name} ({residency.unit.label})"
            )
        _select(self.fields["person"], [("", _("Choose a resident")), *seen.items()])


class LostForm(ServiceErrorsMixin, forms.Form):
    """Report a badge lost, and perhaps ask for a replacement in the same step.
    The resident confirms the price of the replacement they will pay."""

    FIELD_FOR_CODE = {"price_not_confirmed": "confirm_price", "not_a_resident": "replacement"}

    replacement = forms.BooleanField(label=_("Ask for a replacement"), required=False)
    property = forms.IntegerField(
        min_value=1, max_value=MAX_ID, required=False, widget=forms.HiddenInput
    )
    price_minor = forms.IntegerField(required=False, min_value=0, widget=forms.HiddenInput)
    confirm_price = forms.BooleanField(required=False)

    def accepted_price(self) -> int | None:
        data = self.cleaned_data
        return data["price_minor"] if data["confirm_price"] else None


# --- the resident portal and the operator's queue -------------------------------------------


class BadgeRequestForm(ServiceErrorsMixin, forms.Form):
    FIELD_FOR_CODE = {
        "parking_space_not_found": "parking_space",
        "station_not_found": "station_serial",
        "station_not_at_space": "station_serial",
        "price_not_confirmed": "confirm_price",
    }

    property = forms.IntegerField(min_value=1, max_value=MAX_ID, widget=forms.HiddenInput)
    price_minor = forms.IntegerField(required=False, min_value=0, widget=forms.HiddenInput)
    confirm_price = forms.BooleanField(required=False)
    parking_space = forms.CharField(
        label=_("Parking space number (optional)"),
        max_length=20,
        required=False,
        help_text=_("For a private charging station at your parking space."),
    )
    station_serial = forms.CharField(
        label=_("Or the charging station's serial number (optional)"),
        max_length=40,
        required=False,
        widget=forms.TextInput(attrs=_CODE),
    )

    def accepted_price(self) -> int | None:
        data = self.cleaned_data
        return data["price_minor"] if data["confirm_price"] else None


class RefuseForm(ServiceErrorsMixin, forms.Form):
    FIELD_FOR_CODE = {"reason_required": "reason"}

    reason = forms.CharField(label=_("Reason"), max_length=300)


class AssignForm(ServiceErrorsMixin, forms.Form):
    FIELD_FOR_CODE = {"invalid_uid": "uid", "badge_taken": "uid", "badge_exists": "uid"}

    uid = forms.CharField(
        label=_("Badge UID"),
        max_length=64,
        help_text=_("Type it, or present the badge to the desk reader."),
        widget=forms.TextInput(attrs=_CODE),
    )


class DeliverForm(ServiceErrorsMixin, forms.Form):
    FIELD_FOR_CODE = {"invalid_delivery": "delivery"}

    delivery = forms.ChoiceField(choices=Delivery.choices)


# --- portal logins (the public pages with the site's code) ---------------------------------


class JoinCodeForm(forms.Form):
    code = forms.CharField(
        label=_("The code on the notice"),
        max_length=20,
        help_text=_("For example ABCD-EFGH."),
        widget=forms.TextInput(attrs={**_CODE, "autofocus": True}),
    )

    def clean_code(self) -> str:
        code = normalize_code(self.cleaned_data["code"])
        if not code:
            raise forms.ValidationError(
                _("Type the code on the notice in your building."), code="required"
            )
        return code


class JoinForm(ServiceErrorsMixin, forms.Form):
    FIELD_FOR_CODE = {
        "name_required": "name",
        "invalid_email": "email",
        "unit_not_found": "unit",
    }

    name = forms.CharField(
        label=_("Your name"), max_length=150, widget=forms.TextInput(attrs={"autocomplete": "name"})
    )
    email = forms.EmailField(
        label=_("Your email address"),
        max_length=254,
        help_text=_("We send a link to it, to confirm that it is yours."),
        widget=forms.EmailInput(attrs={"autocomplete": "email"}),
    )
    unit = forms.CharField(
        label=_("Your unit"),
        max_length=40,
        help_text=_("As on your door or letterbox, for example 2B."),
    )
