"""Forms of the billing pages: a tariff (prices typed as people write them,
"0.35" per kWh, "2.50" per cycle, "8.1" % VAT) with its laundry prices of
their own, who invoices for a site, a new issuer, the month to draft,
finalizing, a credit note, and the filter of a site's invoices.

They check the shape of the input and turn typed amounts into integers with
``services.parse_amount`` (which refuses a negative price and says so); the
services decide the rest (dates, overlaps, hours) and say why they refuse."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, timedelta
from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from doorkeep.billing import services
from doorkeep.billing.listings import STATUSES
from doorkeep.billing.models import RATE_SCALE, Issuer
from doorkeep.core.errors import DomainError
from doorkeep.web.forms import ServiceErrorsMixin

PERCENT_SCALE = 100  # "8.1" % is 810 basis points
WEEKDAYS = [
    ("1", _("Mon")),
    ("2", _("Tue")),
    ("3", _("Wed")),
    ("4", _("Thu")),
    ("5", _("Fri")),
    ("6", _("Sat")),
    ("7", _("Sun")),
]
STATUS_LABELS = {
    "draft": _("Draft"),
    "open": pgettext_lazy("invoice status", "Open"),
    "overdue": _("Overdue"),
    "paid": _("Paid"),
    "credited": _("Credited"),
}
LAUNDRY_PRICE_ROWS = 3  # empty rows offered below the ones filled in


def amount_text(minor: int) -> str:
    """Minor units as typed back into a form: 250 -> "2.50"."""
    units, cents = divmod(minor, 100)
    return f"{units}.{cents:02d}"


def percent_text(basis_points: int) -> str:
    """810 -> "8.1"."""
    units, rest = divmod(basis_points, 100)
    return f"{units}.{rest:02d}".rstrip("0").rstrip(".")


class _Amounts:
    """Fields holding typed amounts, turned into integers by the service's
    own parser; its refusal is the field's error."""

    cleaned_data: dict[str, Any]
    fields: dict[str, forms.Field]

    def typed_amount(self, name: str, scale: int, *, optional_none: bool = False) -> int | None:
        text = (self.cleaned_data.get(name) or "").strip()
        if not text:
            return None if optional_none else 0
        label = str(self.fields[name].label)
        try:
            return services.parse_amount(text, label, scale=scale)
        except DomainError as exc:
            raise forms.ValidationError(exc.message, code=exc.code) from None


def _amount_field(label: Any, *, help_text: Any = "", placeholder: str = "0") -> forms.CharField:
    return forms.CharField(
        label=label,
        max_length=30,
        required=False,
        help_text=help_text,
        widget=forms.TextInput(
            attrs={"inputmode": "decimal", "autocomplete": "off", "placeholder": placeholder}
        ),
    )


class TariffForm(_Amounts, ServiceErrorsMixin, forms.Form):
    FIELD_FOR_CODE = {
        "tariff_in_past": "valid_from",
        "tariff_overlap": "valid_from",
        "bad_dates": "valid_until",
        "bad_vat_rate": "vat_rate",
        "bad_hours": "high_start",
    }

    valid_from = forms.DateField(
        label=_("Valid from"),
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
        help_text=_("Today at the earliest: use that has happened keeps the price it had."),
    )
    valid_until = forms.DateField(
        label=_("Valid until (optional)"),
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
        help_text=_("Its last day. Empty: until the next tariff starts."),
    )
    vat_rate = _amount_field(
        _("VAT rate (%)"), help_text=_("Prices include it. For example 8.1."), placeholder="8.1"
    )
    charging_rate = _amount_field(
        _("Charging, per kWh"), help_text=_("For example 0.35."), placeholder="0.35"
    )
    charging_low_rate = _amount_field(
        _("Charging, per kWh in low-tariff hours (optional)"),
        help_text=_("Outside the high-tariff hours below. Empty: one price at all hours."),
        placeholder="",
    )
    high_start = forms.TimeField(
        label=_("High tariff from"),
        required=False,
        widget=forms.TimeInput(attrs={"type": "time"}, format="%H:%M"),
    )
    high_end = forms.TimeField(
        label=_("High tariff until"),
        required=False,
        widget=forms.TimeInput(attrs={"type": "time"}, format="%H:%M"),
    )
    high_days = forms.MultipleChoiceField(
        label=_("High-tariff days"),
        choices=WEEKDAYS,
        required=False,
        initial=["1", "2", "3", "4", "5"],
        widget=forms.CheckboxSelectMultiple,
    )
    laundry_cycle_price = _amount_field(
        _("Laundry, per cycle"), help_text=_("For example 2.50."), placeholder="2.50"
    )
    laundry_rate = _amount_field(
        _("Laundry, per kWh (optional)"), help_text=_("Added to the price per cycle.")
    )
    monthly_fee = _amount_field(
        _("Monthly fee (optional)"), help_text=_("Per resident, on every monthly invoice.")
    )
    monthly_fee_label = forms.CharField(
        label=_("Monthly fee label"),
        max_length=80,
        required=False,
        widget=forms.TextInput(attrs={"placeholder": _("For example: Service charge")}),
    )
    extra_badge_price = _amount_field(
        _("Extra badge"), help_text=_("What a resident pays for a badge beyond the first.")
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("auto_id", "id_tariff_%s")
        super().__init__(*args, **kwargs)

    def clean_vat_rate(self) -> int:
        return self.typed_amount("vat_rate", PERCENT_SCALE) or 0

    def clean_charging_rate(self) -> int:
        return self.typed_amount("charging_rate", RATE_SCALE) or 0

    def clean_charging_low_rate(self) -> int | None:
        return self.typed_amount("charging_low_rate", RATE_SCALE, optional_none=True)

    def clean_laundry_cycle_price(self) -> int:
        return self.typed_amount("laundry_cycle_price", 100) or 0

    def clean_laundry_rate(self) -> int:
        return self.typed_amount("laundry_rate", RATE_SCALE) or 0

    def clean_monthly_fee(self) -> int:
        return self.typed_amount("monthly_fee", 100) or 0

    def clean_extra_badge_price(self) -> int:
        return self.typed_amount("extra_badge_price", 100) or 0

    def spec(self, laundry_prices: list[services.LaundryPriceSpec]) -> services.TariffSpec:
        data = self.cleaned_data
        days = "".join(data.get("high_days") or [])
        if not days and data.get("high_start") is None and data.get("high_end") is None:
            days = "12345"  # no hours: the days do not matter
        return services.TariffSpec(
            valid_from=data["valid_from"],
            valid_until=data.get("valid_until"),
            vat_rate=data["vat_rate"],
            charging_rate=data["charging_rate"],
            charging_low_rate=data["charging_low_rate"],
            high_days=days,
            high_start=data.get("high_start"),
            high_end=data.get("high_end"),
            laundry_cycle_price=data["laundry_cycle_price"],
            laundry_rate=data["laundry_rate"],
            monthly_fee=data["monthly_fee"],
            monthly_fee_label=data.get("monthly_fee_label") or "",
            extra_badge_price=data["extra_badge_price"],
            laundry_prices=laundry_prices,
        )


class LaundryPriceForm(_Amounts, forms.Form):
    """One price of its own: for a machine, a program, or a program on a
    machine. A row left empty is no price."""

    machine = forms.TypedChoiceField(
        label=_("Machine"), required=False, coerce=int, empty_value=None, choices=()
    )
    program = forms.CharField(
        label=_("Program"),
        max_length=40,
        required=False,
        widget=forms.TextInput(attrs={"placeholder": _("For example: eco 40")}),
    )
    cycle_price = _amount_field(_("Per cycle"), placeholder="2.50")
    rate = _amount_field(_("Per kWh"), placeholder="0")

    def set_machines(self, machines: Iterable[tuple[int, str]]) -> None:
        field = self.fields["machine"]
        assert isinstance(field, forms.ChoiceField)
        field.choices = [("", _("Any machine")), *machines]

    def clean_cycle_price(self) -> int:
        return self.typed_amount("cycle_price", 100) or 0

    def clean_rate(self) -> int:
        return self.typed_amount("rate", RATE_SCALE) or 0

    def spec(self) -> services.LaundryPriceSpec | None:
        data = getattr(self, "cleaned_data", None) or {}
        if not any(self.data.get(self.add_prefix(n), "").strip() for n in self.fields):
            return None  # an empty row
        return services.LaundryPriceSpec(
            machine_id=data.get("machine"),
            program=data.get("program") or "",
            cycle_price=data.get("cycle_price") or 0,
            rate=data.get("rate") or 0,
        )


LaundryPriceFormSet = forms.formset_factory(
    LaundryPriceForm, extra=LAUNDRY_PRICE_ROWS, max_num=50, absolute_max=50, validate_max=True
)


def laundry_prices_formset(data: Any = None, *, machines: Iterable[tuple[int, str]] = ()) -> Any:
    formset = LaundryPriceFormSet(data, prefix="laundry")
    choices = list(machines)
    for form in formset.forms:
        form.set_machines(choices)
    return formset


class DeleteTariffForm(forms.Form):
    confirm = forms.BooleanField(
        label=_("Yes, remove this tariff. The tariff before it runs on."),
        error_messages={"required": _("Tick the box to confirm that the tariff is to be removed.")},
    )


# --- who invoices -------------------------------------------------------------------------


class SiteBillingForm(ServiceErrorsMixin, forms.Form):
    FIELD_FOR_CODE = {"bad_payment_days": "payment_days", "bad_currency": "issuer"}

    issuer = forms.TypedChoiceField(label=_("Who invoices"), coerce=int, choices=())
    payment_days = forms.IntegerField(
        label=_("Days to pay"),
        initial=30,
        min_value=-(2**31),
        max_value=2**31,
        help_text=_("From the day an invoice is issued; 1 to 120."),
    )

    def __init__(self, *args: Any, issuers: Iterable[Issuer] = (), **kwargs: Any) -> None:
        kwargs.setdefault("auto_id", "id_billing_%s")
        super().__init__(*args, **kwargs)
        field = self.fields["issuer"]
        assert isinstance(field, forms.ChoiceField)
        field.choices = [
            ("", _("Choose who invoices")),
            *((i.pk, issuer_label(i)) for i in issuers),
        ]


def issuer_label(issuer: Issuer) -> str:
    whose = _("the platform") if issuer.organization_id is None else _("your organization")
    return f"{issuer.name}, {issuer.city} ({whose}) · {issuer.currency} · {issuer.account}"


class IssuerForm(ServiceErrorsMixin, forms.Form):
    FIELD_FOR_CODE = {"bad_iban": "account", "bad_currency": "currency"}

    name = forms.CharField(label=_("Name"), max_length=70)
    street = forms.CharField(label=_("Street"), max_length=70, required=False)
    house_number = forms.CharField(label=_("House number"), max_length=16, required=False)
    postcode = forms.CharField(label=_("Postcode"), max_length=16)
    city = forms.CharField(label=_("City"), max_length=35)
    country = forms.CharField(
        label=_("Country"), max_length=2, initial="CH", help_text=_("Two letters: CH, LI, DE…")
    )
    account = forms.CharField(
        label=_("IBAN or QR-IBAN"),
        max_length=42,
        widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false"}),
        help_text=_(
            "Where residents pay. A QR-IBAN takes QR references; another IBAN creditor "
            "references (RF)."
        ),
    )
    currency = forms.ChoiceField(label=_("Currency"), choices=[("CHF", "CHF"), ("EUR", "EUR")])
    vat_number = forms.CharField(label=_("VAT number (optional)"), max_length=30, required=False)
    email = forms.EmailField(label=_("Email address (optional)"), required=False)
    number_prefix = forms.CharField(
        label=_("Invoice number prefix (optional)"),
        max_length=12,
        required=False,
        help_text=_("For example RE-: invoices are then RE-000001, RE-000002…"),
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("auto_id", "id_issuer_%s")
        super().__init__(*args, **kwargs)

    def spec(self) -> services.IssuerSpec:
        d = self.cleaned_data
        return services.IssuerSpec(
            name=d["name"],
            postcode=d["postcode"],
            city=d["city"],
            account=d["account"],
            currency=d["currency"],
            street=d.get("street") or "",
            house_number=d.get("house_number") or "",
            country=d.get("country") or "CH",
            vat_number=d.get("vat_number") or "",
            email=d.get("email") or "",
            number_prefix=d.get("number_prefix") or "",
        )


# --- billing runs and invoices ------------------------------------------------------------


def last_month(today: date) -> date:
    return (today.replace(day=1) - timedelta(days=1)).replace(day=1)


class DraftForm(ServiceErrorsMixin, forms.Form):
    FIELD_FOR_CODE = {"bad_month": "month", "month_not_over": "month"}

    month = forms.DateField(
        label=_("Month"),
        input_formats=["%Y-%m"],
        widget=forms.DateInput(attrs={"type": "month"}, format="%Y-%m"),
        error_messages={"invalid": _("Enter a month as YYYY-MM, for example 2026-01.")},
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("auto_id", "id_draft_%s")
        super().__init__(*args, **kwargs)


class FinalizeForm(forms.Form):
    confirm = forms.BooleanField(
        label=_(
            "Yes, finalize: the invoices are numbered and sent to the residents, and never "
            "change after. A correction is a credit note."
        ),
        error_messages={"required": _("Tick the box to confirm that the run is to be finalized.")},
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("auto_id", "id_finalize_%s")
        super().__init__(*args, **kwargs)


class CreditForm(_Amounts, ServiceErrorsMixin, forms.Form):
    FIELD_FOR_CODE = {"bad_amount": "amount", "missing_reason": "reason"}

    amount = _amount_field(
        _("Amount (optional)"),
        help_text=_("Empty: everything not credited yet."),
        placeholder="",
    )
    reason = forms.CharField(
        label=_("Reason"),
        max_length=300,
        help_text=_("Printed on the credit note."),
        error_messages={"required": _("Say why the invoice is credited.")},
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("auto_id", "id_credit_%s")
        super().__init__(*args, **kwargs)

    def clean_amount(self) -> int | None:
        return self.typed_amount("amount", 100, optional_none=True)


class InvoiceFilterForm(forms.Form):
    status = forms.ChoiceField(
        label=_("Status"),
        required=False,
        choices=[
            ("", _("Every status")),
            *((status, STATUS_LABELS[status]) for status in STATUSES),
        ],
    )
    month = forms.DateField(
        label=_("Month billed"),
        required=False,
        input_formats=["%Y-%m"],
        widget=forms.DateInput(attrs={"type": "month"}, format="%Y-%m"),
        error_messages={"invalid": _("Enter a month as YYYY-MM, for example 2026-01.")},
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("auto_id", "id_filter_%s")
        super().__init__(*args, **kwargs)
