"""Invoices, credit notes and statements as documents: the rows of the
database turned into billing.documents' dataclasses, and rendered."""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import date

from django.conf import settings
from django.utils import translation
from django.utils.formats import date_format

from doorkeep.billing import documents
from doorkeep.billing.models import Invoice, InvoiceKind, Issuer, Use, UseKind
from doorkeep.properties.models import Property, zone_of

# "Kruisstraat 12, 1017 AB Amsterdam": the postcode and city after the last comma.
_PLACE = re.compile(r"^\s*(?P<postcode>[0-9]{4,5}(?:\s?[A-Z]{2})?)\s+(?P<city>.+?)\s*$")


def issuer_party(issuer: Issuer) -> documents.Party:
    return documents.Party(
        name=issuer.name,
        street=issuer.street,
        house_number=issuer.house_number,
        postcode=issuer.postcode,
        city=issuer.city,
        country=issuer.country,
    )


# The country of a site's address, from its time zone (a site has no country
# field): the QR-bill prints it before the postcode.
_COUNTRY_OF_ZONE = {
    "Europe/Zurich": "CH",
    "Europe/Vaduz": "LI",
    "Europe/Amsterdam": "NL",
    "Europe/Brussels": "BE",
    "Europe/Luxembourg": "LU",
    "Europe/Paris": "FR",
    "Europe/Berlin": "DE",
    "Europe/Vienna": "AT",
    "Europe/Rome": "IT",
}


def resident_party(name: str, prop: Property, unit: str) -> documents.Party:
    """The resident at the site's address: a street line and, when the address
    says them and the site's country is known, a postcode and city (the
    QR-bill needs all three or none)."""
    parts = [part.strip() for part in (prop.address or "").split(",") if part.strip()]
    street, postcode, city = (parts[0] if parts else ""), "", ""
    country = _COUNTRY_OF_ZONE.get(prop.timezone, "")
    if len(parts) >= 2 and country:
        place = _PLACE.match(parts[-1])
        if place:
            postcode, city = place["postcode"], place["city"]
    if unit and street:
        street = f"{street} ({unit})"
    return documents.Party(
        name=name, street=street[:70], postcode=postcode, city=city[:35], country=country or "CH"
    )


def use_rows(uses: Iterable[Use], prop: Property) -> list[documents.UseRow]:
    zone = zone_of(prop)
    rows = []
    for use in uses:
        local = use.started_at.astimezone(zone)
        what = {
            UseKind.CHARGING: "Charging",
            UseKind.LAUNDRY: "Laundry",
            UseKind.BADGE: "Extra badge",
        }.get(UseKind(use.kind), use.kind)
        rows.append(
            documents.UseRow(
                when=local.strftime("%Y-%m-%d %H:%M"),
                what=f"{what}: {use.label}" if use.label else what,
                energy_kwh=f"{use.energy_wh / 1000:.2f}" if use.energy_wh else "",
                amount=use.amount,
            )
        )
    return rows


def period_of(month: date | None, language: str) -> str:
    """``November 2026``, in the document's language."""
    if month is None:
        return ""
    with translation.override(language):
        return date_format(month, "F Y")


def invoice_document(invoice: Invoice) -> documents.InvoiceDocument:
    prop = invoice.property
    unit = invoice.unit.label if invoice.unit_id and invoice.unit else ""
    lines = list(invoice.lines.all())
    uses = (
        Use.objects.filter(invoice_line__invoice=invoice).order_by("started_at", "pk")
        if invoice.kind == InvoiceKind.INVOICE
        else Use.objects.none()
    )
    language = settings.LANGUAGE_CODE.split("-")[0]  # people choose no language yet
    return documents.InvoiceDocument(
        kind="credit_note" if invoice.kind == InvoiceKind.CREDIT_NOTE else "invoice",
        number=invoice.number,
        issued_on=invoice.issued_on or date.today(),  # noqa: DTZ011 - a draft's preview
        due_on=invoice.due_on,
        period=period_of(invoice.month, language),
        creditor=issuer_party(invoice.issuer),
        account=invoice.issuer.account,
        vat_number=invoice.issuer.vat_number,
        debtor=resident_party(invoice.person.name, prop, unit),
        site=prop.name,
        unit=unit,
        currency=invoice.currency,
        lines=[
            documents.DocumentLine(
                description=line.description,
                quantity=line.quantity,
                amount=line.amount,
                vat_rate=line.vat_rate,
            )
            for line in lines
        ],
        total=invoice.total,
        vat=invoice.vat,
        vat_rate=max((line.vat_rate for line in lines), default=0),
        reference=invoice.reference,
        uses=use_rows(uses, prop),
        language=language,
        note=invoice.note,
        credited_number=invoice.credits.number if invoice.credits_id and invoice.credits else "",
    )


def render(invoice: Invoice) -> bytes:
    return documents.render_invoice(invoice_document(invoice))
