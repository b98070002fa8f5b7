"""Monthly statements of an individual-statements site (issue 14, item 5):
the owner collects payment, so the platform sends no invoice; the owner gets
per resident the month's uses with their prices (PDF and CSV) and a summary
of the site. Read from the record of use, as invoices are: the same prices."""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING

from django.conf import settings
from django.utils.translation import gettext as _

from doorkeep import policy
from doorkeep.billing import documents, paper, usage
from doorkeep.billing.models import Use
from doorkeep.billing.runs import month_of
from doorkeep.billing.services import site_for, today_at
from doorkeep.core.errors import Conflict, NotFound
from doorkeep.core.text import csv_cell
from doorkeep.keys.models import Person
from doorkeep.properties.models import BillingMode, Property

if TYPE_CHECKING:
    from doorkeep.accounts.models import User


@dataclass(frozen=True)
class Line:
    person: Person
    unit: str
    uses: int
    energy_wh: int
    amount: int


def _site(actor: User, property_id: int) -> Property:
    prop = site_for(actor, property_id, policy.Action.VIEW_BILLING)
    if prop.billing_mode != BillingMode.INDIVIDUAL_STATEMENTS:
        raise Conflict(
            _("%(site)s is billed by the platform: its residents get invoices, not statements.")
            % {"site": prop.name},
            code="not_a_statements_site",
        )
    usage.record_missing(prop.pk)
    return prop


def _uses(prop: Property, month: date, person_id: int | None = None) -> list[Use]:
    following = date(month.year + month.month // 12, month.month % 12 + 1, 1)
    uses = Use.objects.filter(property=prop, day__gte=month, day__lt=following)
    if person_id is not None:
        uses = uses.filter(person_id=person_id)
    return list(uses.select_related("person", "unit").order_by("started_at", "pk"))


def summary(actor: User, property_id: int, month: str | date) -> tuple[Property, date, list[Line]]:
    """Per resident with use in the month: uses, energy, amount."""
    first = month_of(month)
    prop = _site(actor, property_id)
    by_person: dict[int, list[Use]] = defaultdict(list)
    for use in _uses(prop, first):
        if use.person_id is not None:
            by_person[use.person_id].append(use)
    lines = [
        Line(
            person=items[0].person,  # type: ignore[arg-type]
            unit=next((u.unit.label for u in reversed(items) if u.unit), ""),
            uses=len(items),
            energy_wh=sum(u.energy_wh for u in items),
            amount=sum(u.amount for u in items),
        )
        for items in by_person.values()
    ]
    lines.sort(key=lambda line: (line.unit, line.person.name))
    return prop, first, lines


def _resident(prop: Property, person_id: int, first: date) -> tuple[Person, list[Use]]:
    person = Person.objects.filter(pk=person_id, organization_id=prop.organization_id).first()
    uses = _uses(prop, first, person_id)
    if person is None:
        raise NotFound(_("Resident not found."))
    return person, uses


def _owner(prop: Property) -> documents.Party:
    return documents.Party(name=prop.organization.name, street=prop.address[:70])


def statement_pdf(actor: User, property_id: int, month: str | date, person_id: int) -> bytes:
    first = month_of(month)
    prop = _site(actor, property_id)
    person, uses = _resident(prop, person_id, first)
    unit = next((u.unit.label for u in reversed(uses) if u.unit), "")
    return documents.render_statement(
        documents.StatementDocument(
            owner=_owner(prop),
            resident=paper.resident_party(person.name, prop, unit),
            site=prop.name,
            unit=unit,
            period=paper.period_of(first, settings.LANGUAGE_CODE.split("-")[0]),
            issued_on=today_at(prop),
            currency=prop.currency,
            uses=paper.use_rows(uses, prop),
            total=sum(u.amount for u in uses),
            language=settings.LANGUAGE_CODE.split("-")[0],
        )
    )


def summary_pdf(actor: User, property_id: int, month: str | date) -> bytes:
    prop, first, lines = summary(actor, property_id, month)
    return documents.render_site_summary(
        documents.SiteSummaryDocument(
            owner=_owner(prop),
            site=prop.name,
            period=paper.period_of(first, settings.LANGUAGE_CODE.split("-")[0]),
            issued_on=today_at(prop),
            currency=prop.currency,
            rows=[
                documents.SummaryRow(
                    resident=line.person.name,
                    unit=line.unit,
                    uses=line.uses,
                    energy_wh=line.energy_wh,
                    amount=line.amount,
                )
                for line in lines
            ],
            language=settings.LANGUAGE_CODE.split("-")[0],
        )
    )


def statements_csv(
    actor: User, property_id: int, month: str | date, person_id: int | None = None
) -> str:
    """Every use of the month (of one resident, or of all), one row each,
    with its price: what the owner needs to collect payment."""
    first = month_of(month)
    prop = _site(actor, property_id)
    if person_id is not None:
        _person, uses = _resident(prop, person_id, first)
    else:
        uses = _uses(prop, first)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(
        ["resident", "unit", "kind", "what", "started", "ended", "energy_kwh", "amount", "currency"]
    )
    zone = paper.zone_of(prop)
    for use in uses:
        writer.writerow(
            [
                csv_cell(use.person.name if use.person else ""),
                csv_cell(use.unit.label if use.unit else ""),
                use.kind,
                csv_cell(use.label),
                use.started_at.astimezone(zone).isoformat(timespec="minutes"),
                use.ended_at.astimezone(zone).isoformat(timespec="minutes") if use.ended_at else "",
                f"{use.energy_wh / 1000:.3f}",
                f"{use.amount / 100:.2f}",
                use.currency,
            ]
        )
    return out.getvalue()
