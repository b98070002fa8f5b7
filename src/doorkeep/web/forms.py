"""The web UI's forms. They parse and check the shape of the input; the
services decide everything else (permissions, uniqueness, limits)."""

from __future__ import annotations

import zoneinfo
from collections.abc import Iterable, Sequence
from datetime import date, datetime, time, timedelta, tzinfo
from functools import cache
from typing import Any

from django import forms
from django.core.validators import RegexValidator
from django.utils.translation import gettext_lazy as _

from doorkeep.core.errors import DomainError, InvalidInput
from doorkeep.events.models import EventKind
from doorkeep.events.selectors import EventFilter
from doorkeep.keys import schedule as schedules
from doorkeep.keys.models import KeyStatus, Person
from doorkeep.keys.services import CredentialSpec, HolderSpec, KeySpec
from doorkeep.properties.models import Entry

# How many people a "choose a person" select lists; beyond that the form
# asks for the email address instead (which finds an existing person too).
PEOPLE_IN_SELECT = 500

Choices = list[tuple[Any, Any]]


class ServiceErrorsMixin:
    """Put a service's error on the field it is about, if the form has one."""

    FIELD_FOR_CODE: dict[str, str] = {}

    def add_service_error(self, exc: DomainError) -> None:
        field = self.FIELD_FOR_CODE.get(exc.code)
        form: forms.Form = self  # type: ignore[assignment]
        if field is not None and field in form.fields:
            form.add_error(field, exc.message)
        else:
            form.add_error(None, exc.message)


# --- dates and times --------------------------------------------------------

_MOMENT_FORMATS = ("%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d %H:%M:%S")


class LocalMomentField(forms.Field):
    """A date, or a date and a time, as a person types it: local time, no zone.

    Returns a ``date`` or a naive ``datetime``; the form reads it in the
    property's time zone (see ``aware``)."""

    widget = forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M")
    default_error_messages = {
        "invalid": _("Enter a date (YYYY-MM-DD) or a date and time (YYYY-MM-DD HH:MM)."),
    }

    def to_python(self, value: Any) -> date | datetime | None:
        if value in self.empty_values:
            return None
        if isinstance(value, datetime | date):
            return value
        text = str(value).strip()
        for fmt in _MOMENT_FORMATS:
            try:
                return datetime.strptime(text, fmt)  # noqa: DTZ007 (naive on purpose)
            except ValueError:
                continue
        try:
            return date.fromisoformat(text)
        except ValueError:
            raise forms.ValidationError(self.error_messages["invalid"], code="invalid") from None


def aware(
    value: date | datetime | None, tz: tzinfo, *, end_of_day: bool = False
) -> datetime | None:
    """Read a local date or date-time in ``tz``. A bare date means the start of
    that day, or with ``end_of_day`` the end of it (the start of the next)."""
    if value is None:
        return None
    if not isinstance(value, datetime):
        day = value + timedelta(days=1) if end_of_day else value
        value = datetime.combine(day, time())  # naive: the zone is added below
    if value.tzinfo is not None:
        return value
    return value.replace(tzinfo=tz)


# --- dashboard: locks, properties, entries -----------------------------------


def entry_choices(entries: Iterable[Entry]) -> Choices:
    """Entries grouped by property, for a <select> with <optgroup>s."""
    groups: dict[int, tuple[str, list[tuple[int, str]]]] = {}
    for entry in entries:
        _label, items = groups.setdefault(entry.property_id, (entry.property.name, []))
        items.append((entry.pk, entry.name))
    return [("", _("Choose an entry")), *((label, items) for label, items in groups.values())]


class RegisterLockForm(ServiceErrorsMixin, forms.Form):
    FIELD_FOR_CODE = {
        "invalid_serial": "serial",
        "unknown_serial": "serial",
        "wrong_claim_secret": "claim_secret",
        "already_registered": "serial",
        "registered_to_other": "serial",
    }

    serial = forms.CharField(
        label=_("Serial number"),
        max_length=64,
        help_text=_("As printed on the lock's label, for example DK-1234-5678."),
        widget=forms.TextInput(attrs={"autocapitalize": "characters", "autocomplete": "off"}),
    )
    claim_secret = forms.CharField(
        label=_("Claim secret"),
        max_length=64,
        help_text=_("From the card that came with the lock."),
        widget=forms.TextInput(attrs={"autocapitalize": "characters", "autocomplete": "off"}),
    )
    # An id, not a choice: the service decides whether the user may use the entry.
    entry = forms.IntegerField(label=_("Entry"), widget=forms.Select)
    name = forms.CharField(
        label=_("Name"),
        max_length=150,
        required=False,
        help_text=_("Optional, for example 'Main entrance'."),
    )

    def __init__(self, *args: Any, entries: Iterable[Entry] = (), **kwargs: Any) -> None:
        kwargs.setdefault("auto_id", "id_register_%s")
        super().__init__(*args, **kwargs)
        self.fields["entry"].widget.choices = entry_choices(entries)


@cache
def timezone_choices() -> list[tuple[str, str]]:
    names = sorted(
        name
        for name in zoneinfo.available_timezones()
        if "/" in name and not name.startswith(("Etc/", "SystemV/", "US/", "posix", "right"))
    )
    return [("UTC", "UTC"), *((name, name.replace("_", " ")) for name in names)]


class PropertyForm(ServiceErrorsMixin, forms.Form):
    FIELD_FOR_CODE = {
        "invalid_timezone": "timezone",
        "name_required": "name",
        "name_too_long": "name",
    }

    organization = forms.IntegerField(label=_("Organization"), widget=forms.Select)
    name = forms.CharField(label=_("Name"), max_length=150)
    address = forms.CharField(label=_("Address"), max_length=300, required=False)
    timezone = forms.CharField(
        label=_("Time zone"),
        max_length=64,
        initial="Europe/Amsterdam",
        help_text=_("Times of keys and events at this property are in this zone."),
        widget=forms.Select,
    )

    def __init__(self, *args: Any, organizations: Sequence[Any] = (), **kwargs: Any) -> None:
        kwargs.setdefault("auto_id", "id_property_%s")
        super().__init__(*args, **kwargs)
        field = self.fields["organization"]
        if len(organizations) == 1:
            field.widget = forms.HiddenInput()
            field.initial = organizations[0].pk
        else:
            field.widget.choices = [(o.pk, o.name) for o in organizations]
        self.fields["timezone"].widget.choices = timezone_choices()


class EntryForm(ServiceErrorsMixin, forms.Form):
    FIELD_FOR_CODE = {"name_required": "name", "name_too_long": "name", "entry_exists": "name"}

    name = forms.CharField(
        label=_("New entry"),
        max_length=150,
        widget=forms.TextInput(attrs={"placeholder": _("For example: Back door")}),
    )
    next = forms.CharField(required=False, widget=forms.HiddenInput)


# --- the lock page ------------------------------------------------------------


class RenameLockForm(ServiceErrorsMixin, forms.Form):
    FIELD_FOR_CODE = {"invalid_name": "name"}

    name = forms.CharField(label=_("Name"), max_length=150)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("auto_id", "id_rename_%s")
        super().__init__(*args, **kwargs)


class RemoveLockForm(forms.Form):
    confirm = forms.BooleanField(
        label=_("Yes, remove this lock. All its keys are taken back."),
        error_messages={"required": _("Tick the box to confirm that the lock is to be removed.")},
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("auto_id", "id_remove_%s")
        super().__init__(*args, **kwargs)


KEY_STATUS_CHOICES: Choices = [
    ("live", _("Not taken back")),
    (KeyStatus.ACTIVE.value, _("Active now")),
    (KeyStatus.SCHEDULED.value, _("Not yet valid")),
    (KeyStatus.EXPIRED.value, _("Expired")),
    (KeyStatus.REVOKED.value, _("Taken back")),
    ("all", _("All keys")),
]


class KeySearchForm(forms.Form):
    q = forms.CharField(
        label=_("Search"),
        required=False,
        max_length=100,
        widget=forms.TextInput(
            attrs={"type": "search", "placeholder": _("Name, email, note, tag or remote")}
        ),
    )
    status = forms.ChoiceField(label=_("Status"), required=False, choices=KEY_STATUS_CHOICES)

    def values(self) -> tuple[str, str]:
        """The search text and the status for keys.selectors.keys_of_lock."""
        if not self.is_bound or not self.is_valid():
            return "", "live"
        status = self.cleaned_data["status"] or "live"
        return self.cleaned_data["q"], "" if status == "all" else status


def _schedule_field() -> forms.CharField:
    return forms.CharField(
        label=_("Weekly schedule"),
        required=False,
        max_length=1000,
        help_text=_("Empty for any time. For example: mon-fri 07:00-19:00; sat 09:00-13:00"),
        widget=forms.Textarea(
            attrs={"rows": 2, "placeholder": "mon-fri 07:00-19:00; sat 09:00-13:00"}
        ),
    )


_pin = RegexValidator(r"^\d{4,8}$", _("A PIN code is 4 to 8 digits."))


class IssueKeyForm(ServiceErrorsMixin, forms.Form):
    FIELD_FOR_CODE = {
        "invalid_pin": "pin",
        "invalid_tag": "tag",
        "invalid_remote": "remote",
        "phone_needs_email": "email",
        "invalid_email": "email",
        "holder_required": "name",
        "person_not_found": "person",
        "invalid_window": "valid_until",
        "invalid_schedule": "schedule",
    }

    person = forms.IntegerField(label=_("Existing person"), required=False, widget=forms.Select)
    name = forms.CharField(label=_("Name"), max_length=150, required=False)
    email = forms.EmailField(
        label=_("Email address"),
        max_length=254,
        required=False,
        help_text=_("Someone who already holds a key is found by their address."),
    )
    pin = forms.CharField(
        label=_("PIN code"),
        required=False,
        max_length=8,
        validators=[_pin],
        help_text=_("4 to 8 digits."),
        widget=forms.TextInput(
            attrs={"inputmode": "numeric", "autocomplete": "off", "pattern": "[0-9]{4,8}"}
        ),
    )
    tag = forms.CharField(
        label=_("RFID tag UID"),
        required=False,
        max_length=64,
        help_text=_("Hexadecimal, for example 04:A2:2B:1C."),
        widget=forms.TextInput(attrs={"autocomplete": "off", "autocapitalize": "characters"}),
    )
    remote = forms.CharField(
        label=_("Remote serial number"),
        required=False,
        max_length=64,
        widget=forms.TextInput(attrs={"autocomplete": "off", "autocapitalize": "characters"}),
    )
    phone = forms.BooleanField(
        label=_("Phone (the person's account; needs an email address)"), required=False
    )
    valid_from = LocalMomentField(label=_("Valid from"), required=False)
    valid_until = LocalMomentField(label=_("Valid until"), required=False)
    schedule = _schedule_field()
    note = forms.CharField(label=_("Note"), max_length=200, required=False)

    def __init__(
        self, *args: Any, people: Sequence[Person] | None = None, tz: tzinfo, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self.tz = tz
        field = self.fields["person"]
        if people is None:  # too many to list: the email address finds them
            field.widget = forms.HiddenInput()
        else:
            field.widget.choices = [
                ("", _("Someone new (give a name and email below)")),
                *((p.pk, f"{p.name} <{p.email}>" if p.email else p.name) for p in people),
            ]

    def clean_schedule(self) -> list[dict[str, Any]] | None:
        try:
            return schedules.parse_text(self.cleaned_data["schedule"])
        except InvalidInput as exc:
            raise forms.ValidationError(exc.message, code=exc.code) from None

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("person") is not None and (data.get("name") or data.get("email")):
            raise forms.ValidationError(
                _("Choose an existing person, or give a name and an email address; not both."),
                code="holder_twice",
            )
        return data

    def spec(self) -> KeySpec:
        data = self.cleaned_data
        credentials = [
            CredentialSpec(kind, data[kind]) for kind in ("pin", "tag", "remote") if data[kind]
        ]
        if data["phone"]:
            credentials.append(CredentialSpec("phone"))
        return KeySpec(
            holder=HolderSpec(person_id=data["person"], name=data["name"], email=data["email"]),
            credentials=credentials,
            valid_from=aware(data["valid_from"], self.tz),
            valid_until=aware(data["valid_until"], self.tz, end_of_day=True),
            schedule=data["schedule"],
            note=data["note"],
        )


class EditKeyForm(ServiceErrorsMixin, forms.Form):
    """Change a live key: its validity window, weekly schedule and note. A key
    held by an organization has no schedule (the field is left out)."""

    FIELD_FOR_CODE = {
        "invalid_window": "valid_until",
        "outside_shared_window": "valid_until",
        "invalid_schedule": "schedule",
    }

    valid_from = LocalMomentField(label=_("Valid from"), required=False)
    valid_until = LocalMomentField(label=_("Valid until"), required=False)
    schedule = _schedule_field()
    note = forms.CharField(label=_("Note"), max_length=200, required=False)

    def __init__(self, *args: Any, tz: tzinfo, with_schedule: bool = True, **kwargs: Any) -> None:
        kwargs.setdefault("auto_id", "id_edit_%s")
        super().__init__(*args, **kwargs)
        self.tz = tz
        if not with_schedule:
            del self.fields["schedule"]

    @classmethod
    def initial_for(cls, key: Any, tz: tzinfo) -> dict[str, Any]:
        """The form's initial values for ``key``, its dates in ``tz``."""

        def local(moment: datetime | None) -> datetime | None:
            return moment.astimezone(tz).replace(tzinfo=None) if moment else None

        return {
            "valid_from": local(key.valid_from),
            "valid_until": local(key.valid_until),
            "schedule": schedules.to_text(key.schedule),
            "note": key.note,
        }

    def clean_schedule(self) -> list[dict[str, Any]] | None:
        try:
            return schedules.parse_text(self.cleaned_data["schedule"])
        except InvalidInput as exc:
            raise forms.ValidationError(exc.message, code=exc.code) from None

    def changes(self) -> dict[str, Any]:
        """Keyword arguments for keys.services.update_key."""
        data = self.cleaned_data
        return {
            "valid_from": aware(data["valid_from"], self.tz),
            "valid_until": aware(data["valid_until"], self.tz, end_of_day=True),
            "schedule": data.get("schedule"),
            "note": data["note"],
        }


# --- licences, upgrades and shared management ----------------------------------

# What a refused prepaid code is about: the code field, whatever the reason.
_CODE_ERRORS = (
    "code_typo",
    "not_a_code",
    "unknown_code",
    "code_used",
    "code_expired",
    "wrong_product",
    "option_needs_management",
    "already_upgraded",
    "rate_limited",
)


class PrepaidCodeForm(ServiceErrorsMixin, forms.Form):
    FIELD_FOR_CODE = dict.fromkeys(_CODE_ERRORS, "code")

    code = forms.CharField(
        label=_("Prepaid code"),
        max_length=64,
        help_text=_("20 letters and digits, as on the card, for example 7KQ2-M9XW-4TNB-8HRC-J5DF."),
        widget=forms.TextInput(
            attrs={
                "autocomplete": "off",
                "autocapitalize": "characters",
                "spellcheck": "false",
                "placeholder": "XXXX-XXXX-XXXX-XXXX-XXXX",
            }
        ),
    )

    def __init__(self, *args: Any, prefix_id: str = "code", **kwargs: Any) -> None:
        kwargs.setdefault("auto_id", f"id_{prefix_id}_%s")
        super().__init__(*args, **kwargs)


class OrganizationKeyForm(ServiceErrorsMixin, forms.Form):
    """Issue a key to an organization (shared management)."""

    FIELD_FOR_CODE = {
        "organization_not_found": "organization",
        "own_organization": "organization",
        "key_exists": "organization",
        "invalid_window": "valid_until",
    }

    # An id, not a choice: the service decides which organizations may receive keys.
    organization = forms.IntegerField(label=_("Organization"), widget=forms.Select)
    valid_from = LocalMomentField(label=_("Valid from"), required=False)
    valid_until = LocalMomentField(label=_("Valid until"), required=False)
    note = forms.CharField(label=_("Note"), max_length=200, required=False)

    def __init__(
        self,
        *args: Any,
        organizations: Sequence[Any] | None,
        tz: tzinfo,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("auto_id", "id_orgkey_%s")
        super().__init__(*args, **kwargs)
        self.tz = tz
        field = self.fields["organization"]
        if organizations is None:  # too many to list: the organization's number
            field.widget = forms.NumberInput()
            field.label = _("Organization number")
            field.help_text = _("Ask the organization for its number on Doorkeep.")
        else:
            field.widget.choices = [
                ("", _("Choose an organization")),
                *((o.pk, o.name) for o in organizations),
            ]

    def window(self) -> tuple[datetime | None, datetime | None]:
        data = self.cleaned_data
        return aware(data["valid_from"], self.tz), aware(
            data["valid_until"], self.tz, end_of_day=True
        )


# --- the event log -------------------------------------------------------------


OUTCOME_CHOICES: Choices = [
    ("", _("Any outcome")),
    ("granted", _("Granted")),
    ("denied", _("Denied")),
]


class EventFilterForm(forms.Form):
    start = LocalMomentField(label=_("From"), required=False)
    end = LocalMomentField(
        label=_("To"), required=False, help_text=_("A date alone includes the whole day.")
    )
    kind = forms.ChoiceField(label=_("Kind"), required=False)
    outcome = forms.ChoiceField(label=_("Outcome"), required=False, choices=OUTCOME_CHOICES)
    person = forms.IntegerField(label=_("Person"), required=False, widget=forms.Select)

    def __init__(
        self, *args: Any, people: Sequence[Person] | None = None, tz: tzinfo, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self.tz = tz
        self.fields["kind"].choices = [("", _("Any kind")), *EventKind.choices]  # type: ignore[attr-defined]
        field = self.fields["person"]
        if people is None:
            field.widget = forms.HiddenInput()
        else:
            field.widget.choices = [
                ("", _("Anyone")),
                *((p.pk, p.name) for p in people),
            ]

    def to_filter(self) -> EventFilter:
        data = self.cleaned_data
        return EventFilter(
            start=aware(data["start"], self.tz),
            end=aware(data["end"], self.tz, end_of_day=True),
            kinds=(data["kind"],) if data["kind"] else (),
            person_id=data["person"],
            outcome=data["outcome"] or None,
        )


# --- API tokens -----------------------------------------------------------------


class TokenForm(forms.Form):
    name = forms.CharField(
        label=_("Name"),
        max_length=100,
        required=False,
        help_text=_("What the token is for, for example 'Door sync script'."),
    )
