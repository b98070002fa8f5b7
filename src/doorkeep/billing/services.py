"""Tariffs and billing settings of a site (issue 14, item 2).

A tariff runs from its first day to its last (both in the site's time zone;
no last day: until the next tariff). Tariffs of a site never overlap, and
none starts in the past: a use is priced when it is recorded, by the tariff
of the day it started, and keeps that price (decision 15)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from doorkeep import policy
from doorkeep.billing.models import (
    RATE_SCALE,
    Issuer,
    LaundryPrice,
    SiteBilling,
    Tariff,
)
from doorkeep.core.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from doorkeep.events.models import EventKind
from doorkeep.events.services import record
from doorkeep.properties.models import Property, zone_of
from doorkeep.properties.services import get_property

if TYPE_CHECKING:
    from doorkeep.accounts.models import User

MAX_VAT = 5_000  # 50 %: anything above is a typing error
MAX_PRICE = 100_000_00  # 100,000.00 in minor units
MAX_RATE = 100 * RATE_SCALE  # 100 per kWh


def site_for(actor: User, property_id: int, action: policy.Action) -> Property:
    """The site, if ``actor`` may do ``action`` there. The platform's operator
    may see every site's billing and finalize it (in billing-and-payments
    sites the platform bills)."""
    if action in (policy.Action.VIEW_BILLING, policy.Action.FINALIZE_BILLING) and (
        policy.is_platform_operator(actor)
    ):
        prop = Property.objects.filter(pk=property_id).first()
        if prop is None:
            raise NotFound(_("Property not found."))
        return prop
    return get_property(actor, property_id, action)


def today_at(prop: Property) -> date:
    return timezone.now().astimezone(zone_of(prop)).date()


# --- amounts people type ------------------------------------------------------------------


def parse_amount(value: str | int | Decimal, what: str, *, scale: int = 100) -> int:
    """``"12.50"`` -> 1250 (``scale`` 100, minor units) or ``"0.2735"`` -> 2735
    (``scale`` 10,000, a rate). Refused: not a number, negative, finer than
    the scale allows."""
    try:
        number = Decimal(str(value).strip().replace("'", "").replace(" ", ""))
    except (InvalidOperation, ValueError):
        raise InvalidInput(
            _("%(what)s: %(value)s is not an amount.") % {"what": what, "value": value},
            code="bad_amount",
        ) from None
    if not number.is_finite():
        raise InvalidInput(_("%(what)s is not an amount.") % {"what": what}, code="bad_amount")
    if number < 0:
        raise InvalidInput(
            _("%(what)s cannot be negative.") % {"what": what}, code="negative_price"
        )
    scaled = number * scale
    if scaled != scaled.to_integral_value():
        raise InvalidInput(
            _("%(what)s has too many decimals (at most %(n)d).")
            % {"what": what, "n": len(str(scale)) - 1},
            code="bad_amount",
        )
    return int(scaled)


@dataclass
class LaundryPriceSpec:
    machine_id: int | None = None
    program: str = ""
    cycle_price: int = 0
    rate: int = 0


@dataclass
class TariffSpec:
    """Amounts in minor units; rates per kWh in ten-thousandths; VAT in basis
    points (see billing.models)."""

    valid_from: date
    valid_until: date | None = None
    vat_rate: int = 0
    charging_rate: int = 0
    charging_low_rate: int | None = None
    high_days: str = "12345"
    high_start: time | None = None
    high_end: time | None = None
    laundry_cycle_price: int = 0
    laundry_rate: int = 0
    monthly_fee: int = 0
    monthly_fee_label: str = ""
    extra_badge_price: int = 0
    laundry_prices: list[LaundryPriceSpec] = field(default_factory=list)


def _check(spec: TariffSpec, prop: Property) -> None:
    def price(value: int | None, what: str, top: int) -> None:
        if value is None:
            return
        if value < 0:
            raise InvalidInput(
                _("%(what)s cannot be negative.") % {"what": what}, code="negative_price"
            )
        if value > top:
            raise InvalidInput(
                _("%(what)s is too high to be a price.") % {"what": what}, code="bad_amount"
            )

    price(spec.charging_rate, _("The charging price per kWh"), MAX_RATE)
    price(spec.charging_low_rate, _("The low-tariff charging price per kWh"), MAX_RATE)
    price(spec.laundry_cycle_price, _("The price per laundry cycle"), MAX_PRICE)
    price(spec.laundry_rate, _("The laundry price per kWh"), MAX_RATE)
    price(spec.monthly_fee, _("The monthly fee"), MAX_PRICE)
    price(spec.extra_badge_price, _("The price of an extra badge"), MAX_PRICE)
    for item in spec.laundry_prices:
        price(item.cycle_price, _("A machine's or program's price per cycle"), MAX_PRICE)
        price(item.rate, _("A machine's or program's price per kWh"), MAX_RATE)
        if item.machine_id is None and not item.program.strip():
            raise InvalidInput(
                _("A laundry price of its own names a machine, a program, or both."),
                code="bad_laundry_price",
            )
    if not 0 <= spec.vat_rate <= MAX_VAT:
        raise InvalidInput(_("The VAT rate must be between 0 and 50 %."), code="bad_vat_rate")
    if spec.valid_until is not None and spec.valid_until < spec.valid_from:
        raise InvalidInput(
            _("A tariff cannot end (%(until)s) before it starts (%(start)s).")
            % {"until": spec.valid_until, "start": spec.valid_from},
            code="bad_dates",
        )
    if spec.charging_low_rate is not None and (spec.high_start is None or spec.high_end is None):
        raise InvalidInput(
            _("A low-tariff price needs the high-tariff hours (from and until)."),
            code="bad_hours",
        )
    if spec.high_start is not None and spec.high_start == spec.high_end:
        raise InvalidInput(
            _("High-tariff hours must not start and end at the same time."), code="bad_hours"
        )
    days = spec.high_days.strip()
    if not days or any(ch not in "1234567" for ch in days) or len(set(days)) != len(days):
        raise InvalidInput(
            _("High-tariff days are weekday numbers 1 (Monday) to 7 (Sunday), each once."),
            code="bad_hours",
        )
    spec.high_days = "".join(sorted(days))
    machines = {item.machine_id for item in spec.laundry_prices if item.machine_id is not None}
    if machines:
        from doorkeep.laundry.models import Machine

        found = set(
            Machine.objects.filter(pk__in=machines, property=prop).values_list("pk", flat=True)
        )
        if machines - found:
            raise NotFound(_("Laundry machine not found."))


def _overlap(prop: Property, spec: TariffSpec, exclude: int | None = None) -> Tariff | None:
    """The tariff ``spec`` would overlap, if any (``exclude``: the one it
    shortens)."""
    end = spec.valid_until or date.max
    others = Tariff.objects.filter(property=prop)
    if exclude is not None:
        others = others.exclude(pk=exclude)
    for other in others.order_by("valid_from"):
        other_end = other.valid_until or date.max
        if other.valid_from <= end and spec.valid_from <= other_end:
            return other
    return None


def _runs_until_next(tariff: Tariff, later: Tariff | None) -> bool:
    """A tariff without a last day of its own: open-ended, or ending the day
    before the next one starts (as a new tariff left it)."""
    if tariff.valid_until is None:
        return True
    return later is not None and tariff.valid_until == later.valid_from - timedelta(days=1)


def create_tariff(
    actor: User | None, property_id: int, spec: TariffSpec, *, allow_past: bool = False
) -> Tariff:
    """A new tariff for a site. The open-ended tariff in force before it ends
    the day before it starts. ``allow_past`` is for loading history (demo
    data, imports), never for people: past use keeps its price."""
    if actor is not None:
        prop = get_property(actor, property_id, policy.Action.MANAGE_TARIFFS)
    else:
        prop = Property.objects.get(pk=property_id)
    _check(spec, prop)
    if not allow_past and spec.valid_from <= today_at(prop):
        raise InvalidInput(
            _(
                "A tariff starts tomorrow (%(day)s) at the earliest: use that has happened, "
                "today's included, keeps the price it had."
            )
            % {"day": today_at(prop) + timedelta(days=1)},
            code="tariff_in_past",
        )
    with transaction.atomic():
        Property.objects.select_for_update().filter(pk=prop.pk).first()  # one change at a time
        later = (
            Tariff.objects.filter(property=prop, valid_from__gt=spec.valid_from)
            .order_by("valid_from")
            .first()
        )
        if spec.valid_until is None and later is not None:
            spec.valid_until = later.valid_from - timedelta(days=1)
        before = (
            Tariff.objects.filter(property=prop, valid_from__lt=spec.valid_from)
            .order_by("-valid_from")
            .first()
        )
        shortened = before if before is not None and _runs_until_next(before, later) else None
        other = _overlap(prop, spec, exclude=shortened.pk if shortened else None)
        if other is not None:
            raise Conflict(
                _("These dates overlap the tariff from %(start)s to %(end)s.")
                % {
                    "start": other.valid_from,
                    "end": other.valid_until or _("no end date"),
                },
                code="tariff_overlap",
            )
        if shortened is not None:  # it runs until this one starts
            shortened.valid_until = spec.valid_from - timedelta(days=1)
            shortened.save(update_fields=["valid_until"])
        try:
            with transaction.atomic():
                tariff = Tariff.objects.create(
                    property=prop,
                    valid_from=spec.valid_from,
                    valid_until=spec.valid_until,
                    currency=prop.currency,
                    vat_rate=spec.vat_rate,
                    charging_rate=spec.charging_rate,
                    charging_low_rate=spec.charging_low_rate,
                    high_days=spec.high_days,
                    high_start=spec.high_start,
                    high_end=spec.high_end,
                    laundry_cycle_price=spec.laundry_cycle_price,
                    laundry_rate=spec.laundry_rate,
                    monthly_fee=spec.monthly_fee,
                    monthly_fee_label=spec.monthly_fee_label.strip()[:80],
                    extra_badge_price=spec.extra_badge_price,
                    created_by=actor,
                )
                LaundryPrice.objects.bulk_create(
                    LaundryPrice(
                        tariff=tariff,
                        machine_id=item.machine_id,
                        program=item.program.strip()[:40],
                        cycle_price=item.cycle_price,
                        rate=item.rate,
                    )
                    for item in spec.laundry_prices
                )
        except IntegrityError:
            raise Conflict(
                _("A tariff of this site already starts on %(day)s, or names a price twice.")
                % {"day": spec.valid_from},
                code="tariff_overlap",
            ) from None
        if tariff.covers(today_at(prop)) and prop.extra_badge_price_minor != spec.extra_badge_price:
            # What a resident is asked to confirm for an extra badge from now on (R44).
            Property.objects.filter(pk=prop.pk).update(
                extra_badge_price_minor=spec.extra_badge_price
            )
        record(
            EventKind.TARIFF_CHANGED,
            organization_id=prop.organization_id,
            property_id=prop.pk,
            actor=actor,
            summary=_("Tariff from %(start)s added") % {"start": spec.valid_from},
            data={"tariff_id": tariff.pk, "valid_from": str(spec.valid_from)},
        )
    return tariff


def sync_badge_prices() -> int:
    """The price of an extra badge that residents confirm (``Property.
    extra_badge_price_minor``) follows the tariff in force today: a tariff
    that starts later takes over on its first day (``doorkeep serve`` calls
    this every hour). How many sites changed."""
    changed = 0
    for prop in Property.objects.filter(tariffs__isnull=False).distinct():
        today = today_at(prop)
        tariff = (
            Tariff.objects.filter(property=prop, valid_from__lte=today)
            .order_by("-valid_from")
            .first()
        )
        if tariff is None or not tariff.covers(today):
            continue
        if prop.extra_badge_price_minor != tariff.extra_badge_price:
            Property.objects.filter(pk=prop.pk).update(
                extra_badge_price_minor=tariff.extra_badge_price
            )
            changed += 1
    return changed


def get_tariff(actor: User, tariff_id: int, action: policy.Action) -> Tariff:
    tariff = Tariff.objects.select_related("property").filter(pk=tariff_id).first()
    if tariff is None:
        raise NotFound(_("Tariff not found."))
    site_for(actor, tariff.property_id, action)
    return tariff


def delete_tariff(actor: User, tariff_id: int) -> None:
    """Only a tariff that has not started may go (one that has priced use is
    history). The tariff before it then runs on, as if it had never been."""
    tariff = get_tariff(actor, tariff_id, policy.Action.MANAGE_TARIFFS)
    prop = tariff.property
    if tariff.valid_from <= today_at(prop) or tariff.uses.exists():
        raise Conflict(
            _("This tariff has started: it stays, as the price of the use it covered."),
            code="tariff_started",
        )
    with transaction.atomic():
        before = Tariff.objects.filter(
            property=prop, valid_until=tariff.valid_from - timedelta(days=1)
        ).first()
        tariff.delete()
        if before is not None:
            later = (
                Tariff.objects.filter(property=prop, valid_from__gt=before.valid_from)
                .order_by("valid_from")
                .first()
            )
            before.valid_until = later.valid_from - timedelta(days=1) if later else None
            before.save(update_fields=["valid_until"])
        record(
            EventKind.TARIFF_CHANGED,
            organization_id=prop.organization_id,
            property_id=prop.pk,
            actor=actor,
            summary=_("Tariff from %(start)s removed") % {"start": tariff.valid_from},
        )


def tariffs(actor: User, property_id: int) -> list[Tariff]:
    prop = site_for(actor, property_id, policy.Action.VIEW_BILLING)
    return list(
        Tariff.objects.filter(property=prop)
        .prefetch_related("laundry_prices")
        .order_by("-valid_from")
    )


# --- who invoices ---------------------------------------------------------------------------


@dataclass
class IssuerSpec:
    name: str
    postcode: str
    city: str
    account: str
    currency: str
    street: str = ""
    house_number: str = ""
    country: str = "CH"
    vat_number: str = ""
    email: str = ""
    number_prefix: str = ""


def clean_account(account: str) -> str:
    from stdnum import iban

    compact = iban.compact(account or "")
    if not iban.is_valid(compact):
        raise InvalidInput(
            _("%(account)s is not a valid IBAN.") % {"account": account}, code="bad_iban"
        )
    return compact


def create_issuer(actor: User | None, spec: IssuerSpec, *, organization_id: int | None) -> Issuer:
    """An issuer: the platform's (``organization_id`` None, created by its
    operator) or an owner's own."""
    if actor is not None:
        if organization_id is None:
            policy.require_platform_operator(actor)
        else:
            policy.require(
                actor, policy.Action.FINALIZE_BILLING, organization_id, what=_("Organization")
            )
    if spec.currency not in ("CHF", "EUR"):
        raise InvalidInput(_("The currency is CHF or EUR."), code="bad_currency")
    for value, what in (
        (spec.name, _("name")),
        (spec.postcode, _("postcode")),
        (spec.city, _("city")),
    ):
        if not value.strip():
            raise InvalidInput(_("The issuer needs a %(what)s.") % {"what": what}, code="missing")
    account = clean_account(spec.account)
    others = Issuer.objects.filter(account=account)
    others = (
        others.exclude(organization_id=organization_id)
        if organization_id is not None
        else others.exclude(organization__isnull=True)
    )
    if others.exists():
        raise Conflict(
            _("This account is already registered by another issuer."), code="account_taken"
        )
    _check_qr_bill(spec, account)
    if spec.email.strip():
        try:
            validate_email(spec.email.strip())
        except ValidationError:
            raise InvalidInput(
                _("%(email)s is not an email address.") % {"email": spec.email}, code="bad_email"
            ) from None
    return Issuer.objects.create(
        organization_id=organization_id,
        name=spec.name.strip()[:70],
        street=spec.street.strip()[:70],
        house_number=spec.house_number.strip()[:16],
        postcode=spec.postcode.strip()[:16],
        city=spec.city.strip()[:35],
        country=(spec.country.strip() or "CH")[:2].upper(),
        account=account,
        currency=spec.currency,
        vat_number=spec.vat_number.strip()[:30],
        email=spec.email.strip(),
        number_prefix=spec.number_prefix.strip()[:12],
    )


def _check_qr_bill(spec: IssuerSpec, account: str) -> None:
    """An issuer with a Swiss or Liechtenstein account must make a QR-bill
    (its character set is Latin): found now, by building one as an invoice
    would, rather than when a run is finalized."""
    from doorkeep.billing import documents, references

    if account[:2] not in ("CH", "LI"):
        return  # no QR-bill: the invoice says how to pay by transfer
    creditor = documents.Party(
        name=spec.name.strip(),
        street=spec.street.strip(),
        house_number=spec.house_number.strip(),
        postcode=spec.postcode.strip(),
        city=spec.city.strip(),
        country=(spec.country.strip() or "CH")[:2].upper(),
    )
    trial = documents.InvoiceDocument(
        kind="invoice",
        number="1",
        issued_on=date(2026, 1, 1),
        due_on=None,
        period="",
        creditor=creditor,
        account=account,
        vat_number="",
        debtor=documents.Party(name=""),
        site="",
        unit="",
        currency=spec.currency,
        lines=(),
        total=100,
        vat=0,
        vat_rate=0,
        reference=references.reference_for(account, 1, issuer_id=1),
    )
    try:
        documents.payment_part(trial)
    except ValueError:
        raise InvalidInput(
            _(
                "This name and address cannot be printed on a QR-bill: use Latin letters, "
                "and give a postcode and a city."
            ),
            code="bad_issuer",
        ) from None


def set_site_billing(
    actor: User | None, property_id: int, issuer_id: int, *, payment_days: int = 30
) -> SiteBilling:
    """Which issuer invoices a billing-and-payments site, and the days to pay."""
    if actor is not None:
        prop = site_for(actor, property_id, policy.Action.FINALIZE_BILLING)
    else:
        prop = Property.objects.get(pk=property_id)
    issuer = Issuer.objects.filter(pk=issuer_id).first()
    if issuer is None or issuer.organization_id not in (None, prop.organization_id):
        raise NotFound(_("Issuer not found."))
    if issuer.currency != prop.currency:
        raise InvalidInput(
            _("This issuer bills in %(theirs)s; the site's currency is %(ours)s.")
            % {"theirs": issuer.currency, "ours": prop.currency},
            code="bad_currency",
        )
    if not 0 < payment_days <= 120:
        raise InvalidInput(_("Days to pay are between 1 and 120."), code="bad_payment_days")
    billing, _new = SiteBilling.objects.update_or_create(
        property=prop, defaults={"issuer": issuer, "payment_days": payment_days}
    )
    return billing


def require_finalizer(actor: User, prop: Property) -> None:
    if policy.is_platform_operator(actor):
        return
    if not policy.can(actor, policy.Action.FINALIZE_BILLING, prop.organization_id):
        raise PermissionDenied(policy.denial(policy.Action.FINALIZE_BILLING))


def local_midnight(day: date, prop: Property) -> datetime:
    return datetime.combine(day, time.min, tzinfo=zone_of(prop))
