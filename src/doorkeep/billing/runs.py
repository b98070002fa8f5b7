"""Billing runs (issue 14, item 4): a site's month billed in a
billing-and-payments site, one invoice per resident.

A run is a draft first: its invoices can be read (and the run drafted again
as often as wanted: a draft holds its uses, and gives them back when it is
drafted again). Finalizing numbers the invoices without gaps per issuer
(the issuer's row is locked for it, so a failed or concurrent finalization
leaves no hole), sets their reference and due date, renders each PDF once
(the document never changes after) and sends it. A use is billed at most
once: ``Use.invoice_line`` is taken by a conditional update, and a run
bills every use of the site not billed yet that started before the end of
its month (a cycle uploaded late is billed in the next run).

A correction is a credit note: numbered like invoices, it takes an amount
off what the invoice asks for."""

from __future__ import annotations

import logging
import re
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING

from django.conf import settings
from django.db import IntegrityError, models, transaction
from django.db.models import Case, Q, QuerySet, Value, When
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from doorkeep import policy
from doorkeep.billing import paper, pricing, references, usage
from doorkeep.billing.models import (
    BillingRun,
    Invoice,
    InvoiceKind,
    InvoiceLine,
    InvoiceStatus,
    Issuer,
    LineKind,
    RunStatus,
    SiteBilling,
    Tariff,
    Use,
    UseKind,
)
from doorkeep.billing.services import require_finalizer, site_for, today_at
from doorkeep.core.errors import Conflict, InvalidInput, NotFound
from doorkeep.events.models import EventKind
from doorkeep.events.services import record
from doorkeep.notify.models import Channel, OutboxMessage, WebhookEvent
from doorkeep.notify.services import absolute_url, emit_webhook
from doorkeep.properties.models import BillingMode, Property, zone_of
from doorkeep.residents.models import Residency

if TYPE_CHECKING:
    from doorkeep.accounts.models import User

log = logging.getLogger(__name__)

CLAIM_CHUNK = 2000  # uses claimed per UPDATE (each id is twice in it; SQLite allows 32,766)


MONTH = re.compile(r"^([0-9]{4})-([0-9]{2})$", re.ASCII)
FIRST_YEAR, LAST_YEAR = 2000, 2100


def month_of(value: str | date) -> date:
    """``"2026-11"`` (or a date) -> the first day of that month; a clear error
    for anything else, or a year outside 2000-2100."""
    if isinstance(value, date):
        return value.replace(day=1)
    found = MONTH.match(str(value).strip())
    year, month = (int(found[1]), int(found[2])) if found else (0, 0)
    if not found or not 1 <= month <= 12 or not FIRST_YEAR <= year <= LAST_YEAR:
        raise InvalidInput(
            _("%(value)s is not a month: write it as YYYY-MM, e.g. 2026-11.") % {"value": value},
            code="bad_month",
        )
    return date(year, month, 1)


def _billing_site(actor: User | None, property_id: int) -> tuple[Property, SiteBilling]:
    if actor is not None:
        prop = site_for(actor, property_id, policy.Action.VIEW_BILLING)
        if not policy.is_platform_operator(actor):
            site_for(actor, property_id, policy.Action.MANAGE_TARIFFS)
    else:
        prop = Property.objects.get(pk=property_id)
    if prop.billing_mode != BillingMode.BILLING_AND_PAYMENTS:
        raise Conflict(
            _(
                "%(site)s uses individual statements: the owner collects payment, so there are "
                "no invoices; its monthly statements are on the Statements page."
            )
            % {"site": prop.name},
            code="not_a_billing_site",
        )
    billing = SiteBilling.objects.select_related("issuer").filter(property=prop).first()
    if billing is None:
        raise InvalidInput(
            _("Choose who invoices for %(site)s (its issuer) before billing it.")
            % {"site": prop.name},
            code="no_issuer",
        )
    if billing.issuer.currency != prop.currency:
        raise InvalidInput(
            _(
                "The issuer bills in %(theirs)s and the site's currency is %(ours)s: "
                "choose an issuer in %(ours)s."
            )
            % {"theirs": billing.issuer.currency, "ours": prop.currency},
            code="bad_currency",
        )
    return prop, billing


@dataclass
class _Bill:
    person_id: int
    lines: list[tuple[InvoiceLine, list[int]]]


def _lines_for(uses: list[Use]) -> list[tuple[InvoiceLine, list[int]]]:
    """One line per kind and VAT rate: charging sessions with their energy,
    laundry cycles, each extra badge."""
    groups: dict[tuple[str, int], list[Use]] = defaultdict(list)
    for use in uses:
        groups[(use.kind, use.vat_rate)].append(use)
    lines: list[tuple[InvoiceLine, list[int]]] = []
    for (kind, vat_rate), items in sorted(groups.items()):
        amount = sum(u.amount for u in items)
        energy = sum(u.energy_wh for u in items)
        if kind == UseKind.CHARGING:
            description = ngettext(
                "Charging: %(n)d session", "Charging: %(n)d sessions", len(items)
            ) % {"n": len(items)}
            quantity = f"{energy / 1000:.2f} kWh"
        elif kind == UseKind.LAUNDRY:
            description = ngettext("Laundry: %(n)d cycle", "Laundry: %(n)d cycles", len(items)) % {
                "n": len(items)
            }
            quantity = f"{energy / 1000:.2f} kWh" if energy else str(len(items))
        else:
            description = ngettext("Extra badge", "Extra badges: %(n)d", len(items)) % {
                "n": len(items)
            }
            quantity = str(len(items))
        line = InvoiceLine(
            kind=LineKind(kind),
            description=description[:200],
            quantity=quantity,
            amount=amount,
            vat_rate=vat_rate,
        )
        lines.append((line, [u.pk for u in items]))
    return lines


def _fee_line(tariff: Tariff | None) -> InvoiceLine | None:
    if tariff is None or tariff.monthly_fee == 0:
        return None
    return InvoiceLine(
        kind=LineKind.FEE,
        description=(tariff.monthly_fee_label or _("Monthly fee"))[:200],
        quantity="1",
        amount=tariff.monthly_fee,
        vat_rate=tariff.vat_rate,
    )


def _vat(lines: list[InvoiceLine]) -> int:
    by_rate: dict[int, int] = defaultdict(int)
    for line in lines:
        by_rate[line.vat_rate] += line.amount
    return sum(pricing.vat_included(amount, rate) for rate, amount in by_rate.items())


def draft_run(actor: User | None, property_id: int, month: str | date) -> BillingRun:
    """Draft (or draft again) the run of ``month``: every use of the site not
    billed yet that started before the month's end, and the month's fees of
    the residents who lived there in it. One transaction: a failure leaves
    the previous draft as it was."""
    first = month_of(month)
    prop, billing = _billing_site(actor, property_id)
    zone = zone_of(prop)
    _start, end = pricing.month_bounds(first, zone)
    if end > timezone.now():
        raise InvalidInput(
            _("%(month)s is not over yet: it can be billed from %(day)s.")
            % {"month": first.strftime("%Y-%m"), "day": end.date()},
            code="month_not_over",
        )
    usage.record_missing(prop.pk)
    last_day = end.date() - timedelta(days=1)
    with transaction.atomic():
        Property.objects.select_for_update().filter(pk=prop.pk).first()  # one run at a time
        run = BillingRun.objects.select_for_update().filter(property=prop, month=first).first()
        if run is not None and run.status == RunStatus.FINALIZED:
            raise Conflict(
                _("The run of %(month)s is finalized; a correction is a credit note.")
                % {"month": first.strftime("%Y-%m")},
                code="run_finalized",
            )
        if run is None:
            run = BillingRun.objects.create(property=prop, month=first, created_by=actor)
        else:
            Use.objects.filter(invoice_line__invoice__run=run).update(invoice_line=None)
            run.invoices.all().delete()
            run.created_at, run.created_by = timezone.now(), actor
            run.save(update_fields=["created_at", "created_by"])
        uses = list(
            Use.objects.filter(
                property=prop,
                invoice_line__isnull=True,
                person__isnull=False,
                started_at__lt=end,
                by_statement=False,
                currency=prop.currency,
            )
            .only("pk", "kind", "vat_rate", "amount", "energy_wh", "person_id")
            .order_by("started_at", "pk")
        )
        by_person: dict[int, list[Use]] = defaultdict(list)
        for use in uses:
            assert use.person_id is not None
            by_person[use.person_id].append(use)
        tariff = pricing.tariff_on(pricing.tariffs_of(prop.pk), last_day)
        residencies = (
            Residency.objects.filter(unit__property=prop, move_in__lte=last_day)
            .filter(Q(move_out__isnull=True) | Q(move_out__gte=first))
            .order_by("move_in")
        )
        unit_of: dict[int, int] = {}
        for residency in residencies:
            unit_of[residency.person_id] = residency.unit_id  # the latest in the month
        fee = _fee_line(tariff)
        people = set(by_person) | (set(unit_of) if fee else set())
        invoices: list[Invoice] = []
        line_sets: list[list[tuple[InvoiceLine, list[int]]]] = []
        for person_id in sorted(people):
            lines = _lines_for(by_person.get(person_id, []))
            if fee is not None and person_id in unit_of:
                lines.append((InvoiceLine(**_copy(fee)), []))
            total = sum(line.amount for line, _ids in lines)
            if total <= 0:
                continue  # nothing to ask for: free uses stay unbilled, as they cost nothing
            invoices.append(
                Invoice(
                    organization_id=prop.organization_id,
                    property=prop,
                    run=run,
                    issuer=billing.issuer,
                    person_id=person_id,
                    unit_id=unit_of.get(person_id),
                    month=first,
                    currency=prop.currency,
                    total=total,
                    vat=_vat([line for line, _ids in lines]),
                )
            )
            line_sets.append(lines)
        Invoice.objects.bulk_create(invoices)
        if invoices and invoices[0].pk is None:  # a database that does not return ids
            saved = {i.person_id: i for i in Invoice.objects.filter(run=run)}
            invoices = [saved[i.person_id] for i in invoices]
        all_lines: list[InvoiceLine] = []
        for invoice, lines in zip(invoices, line_sets, strict=True):
            for position, (line, _ids) in enumerate(lines):
                line.invoice, line.position = invoice, position
                all_lines.append(line)
        InvoiceLine.objects.bulk_create(all_lines)
        if all_lines and all_lines[0].pk is None:
            saved_lines = {
                (line.invoice_id, line.position): line
                for line in InvoiceLine.objects.filter(invoice__run=run)
            }
            for line in all_lines:
                line.pk = saved_lines[(line.invoice_id, line.position)].pk
        _claim([(line, ids) for lines in line_sets for line, ids in lines])
        record(
            EventKind.BILLING_RUN_DRAFTED,
            organization_id=prop.organization_id,
            property_id=prop.pk,
            actor=actor,
            summary=_("Billing run of %(month)s drafted: %(n)d invoices")
            % {"month": first.strftime("%Y-%m"), "n": len(invoices)},
            data={"run_id": run.pk, "invoices": len(invoices)},
        )
    return run


def _copy(line: InvoiceLine) -> dict[str, object]:
    return {
        "kind": line.kind,
        "description": line.description,
        "quantity": line.quantity,
        "amount": line.amount,
        "vat_rate": line.vat_rate,
    }


def _claim(pairs: list[tuple[InvoiceLine, list[int]]]) -> None:
    """Each line takes its uses, if no one took them meanwhile; otherwise the
    whole draft is undone (the caller's transaction) and said so. Several
    lines at once, up to CLAIM_CHUNK uses a statement: ``SET invoice_line =
    CASE WHEN id IN (...) THEN line ... END WHERE id IN (...) AND
    invoice_line IS NULL``."""
    batch: list[tuple[InvoiceLine, list[int]]] = []
    size = 0
    for line, ids in pairs:
        for start in range(0, len(ids), CLAIM_CHUNK):
            chunk = ids[start : start + CLAIM_CHUNK]
            if size + len(chunk) > CLAIM_CHUNK and batch:
                _take(batch)
                batch, size = [], 0
            batch.append((line, chunk))
            size += len(chunk)
    if batch:
        _take(batch)


def _take(batch: list[tuple[InvoiceLine, list[int]]]) -> None:
    ids = [pk for _line, chunk in batch for pk in chunk]
    taken = Use.objects.filter(pk__in=ids, invoice_line__isnull=True).update(
        invoice_line=Case(
            *(When(pk__in=chunk, then=Value(line.pk)) for line, chunk in batch),
            output_field=models.BigIntegerField(),
        )
    )
    if taken != len(ids):
        raise Conflict(
            _("Some uses were billed by another run at the same moment; draft again."),
            code="uses_taken",
        )


def get_run(actor: User, run_id: int) -> BillingRun:
    run = BillingRun.objects.select_related("property").filter(pk=run_id).first()
    if run is None:
        raise NotFound(_("Billing run not found."))
    site_for(actor, run.property_id, policy.Action.VIEW_BILLING)
    return run


def discard_run(actor: User, run_id: int) -> None:
    """A draft can go; its uses are free to be billed again."""
    run = get_run(actor, run_id)
    if not policy.is_platform_operator(actor):
        site_for(actor, run.property_id, policy.Action.MANAGE_TARIFFS)
    with transaction.atomic():
        locked = BillingRun.objects.select_for_update().get(pk=run.pk)
        if locked.status == RunStatus.FINALIZED:
            raise Conflict(_("A finalized run stays."), code="run_finalized")
        Use.objects.filter(invoice_line__invoice__run=locked).update(invoice_line=None)
        locked.delete()


# --- finalizing ------------------------------------------------------------------------------


def _number(issuer: Issuer, seq: int) -> str:
    return f"{issuer.number_prefix}{seq:06d}"


def _take_numbers(issuer_id: int, count: int) -> tuple[Issuer, int]:
    """``count`` numbers of the issuer, from the first returned: the row is
    locked until the caller's transaction ends, so the numbers have no gap."""
    issuer = Issuer.objects.select_for_update().get(pk=issuer_id)
    first = issuer.next_number
    issuer.next_number = first + count
    issuer.save(update_fields=["next_number"])
    return issuer, first


def finalize_run(actor: User | None, run_id: int) -> BillingRun:
    """Number and date every invoice of a draft run (one short transaction,
    the issuer's counter locked), then render each PDF and send it
    (``deliver``). The numbers are final at the commit; a failure while
    rendering or sending leaves invoices without their PDF, which
    ``deliver_pending`` (``doorkeep serve``, hourly) completes, each sent
    once."""
    if actor is not None:
        run = get_run(actor, run_id)
        require_finalizer(actor, run.property)
    else:
        run = BillingRun.objects.select_related("property").get(pk=run_id)
    prop = run.property
    billing = SiteBilling.objects.select_related("issuer").filter(property=prop).first()
    if billing is None:
        raise InvalidInput(_("Choose who invoices for this site first."), code="no_issuer")
    today = today_at(prop)
    with transaction.atomic():
        locked = BillingRun.objects.select_for_update().get(pk=run.pk)
        if locked.status == RunStatus.FINALIZED:
            raise Conflict(_("This run is finalized already."), code="run_finalized")
        invoices = list(
            locked.invoices.filter(status=InvoiceStatus.DRAFT).order_by(
                "unit__label", "person__name", "pk"
            )
        )
        issuer, first = _take_numbers(billing.issuer_id, len(invoices))
        for offset, invoice in enumerate(invoices):
            seq = first + offset
            invoice.issuer = issuer
            invoice.seq, invoice.number = seq, _number(issuer, seq)
            invoice.reference = references.reference_for(issuer.account, seq, issuer_id=issuer.pk)
            invoice.issued_on = today
            invoice.due_on = today + timedelta(days=billing.payment_days)
            invoice.status = InvoiceStatus.OPEN
        Invoice.objects.bulk_update(
            invoices,
            ["issuer", "seq", "number", "reference", "issued_on", "due_on", "status"],
            batch_size=500,
        )
        locked.status, locked.finalized_at, locked.finalized_by = (
            RunStatus.FINALIZED,
            timezone.now(),
            actor,
        )
        locked.save(update_fields=["status", "finalized_at", "finalized_by"])
        record(
            EventKind.BILLING_RUN_FINALIZED,
            organization_id=prop.organization_id,
            property_id=prop.pk,
            actor=actor,
            summary=_("Billing run of %(month)s finalized: %(n)d invoices")
            % {"month": run.month.strftime("%Y-%m"), "n": len(invoices)},
            data={"run_id": run.pk, "invoices": len(invoices)},
        )
    deliver(Invoice.objects.filter(run=locked))
    return locked


def deliver(invoices: QuerySet[Invoice]) -> int:
    """Render and store the PDF of each finalized invoice that has none, and
    send it (email with the PDF, webhook) in the same short transaction: each
    invoice is sent once, after its PDF is stored. How many were delivered."""
    done = 0
    waiting = (
        invoices.exclude(status=InvoiceStatus.DRAFT)
        .filter(pdf__isnull=True)
        .select_related("person", "unit", "issuer", "property", "credits", "person__user")
        .prefetch_related("lines")
        .order_by("pk")
    )
    for invoice in waiting:
        try:
            pdf = paper.render(invoice)
        except Exception:  # the others are still delivered; this one waits, logged
            log.exception("could not render invoice %s (%s)", invoice.number, invoice.pk)
            continue
        with transaction.atomic():
            if not Invoice.objects.filter(pk=invoice.pk, pdf__isnull=True).update(pdf=pdf):
                continue  # delivered meanwhile (another worker)
            invoice.pdf = pdf
            _announce(invoice)
        done += 1
    return done


def deliver_pending() -> int:
    """Finalized invoices whose delivery was cut short (a crash, a restart)."""
    return deliver(Invoice.objects.all())


def _announce(invoice: Invoice) -> None:
    """The finalized invoice (or credit note) by email to its person, and to
    the organization's webhooks; in the caller's transaction (the outbox)."""
    person = invoice.person
    if person.email:
        with translation.override(settings.LANGUAGE_CODE):
            _mail_invoice(invoice)
    emit_webhook(invoice.organization_id, WebhookEvent.INVOICE_FINALIZED, webhook_payload(invoice))


def _mail_invoice(invoice: Invoice) -> None:
    """The invoice or credit note by email, its PDF attached when the outbox
    sends it (``payload["invoice_id"]``)."""
    person = invoice.person
    kind = (
        _("Credit note %(number)s")
        if invoice.kind == InvoiceKind.CREDIT_NOTE
        else _("Invoice %(number)s")
    ) % {"number": invoice.number}
    body = _("Hello %(name)s,\n\nattached is %(what)s for %(site)s: %(amount)s.") % {
        "name": person.name,
        "what": kind,
        "site": invoice.property.name,
        "amount": pricing.money(invoice.total, invoice.currency),
    }
    if invoice.kind == InvoiceKind.INVOICE and invoice.due_on:
        body += "\n" + _("Please pay by %(day)s with the QR-bill at its foot.") % {
            "day": invoice.due_on
        }
    _queue_email(invoice, kind, body)
    Invoice.objects.filter(pk=invoice.pk).update(emailed_at=timezone.now())


def _queue_email(invoice: Invoice, subject: str, body: str) -> None:
    from doorkeep.notify import outbox

    person = invoice.person
    OutboxMessage.objects.create(
        channel=Channel.EMAIL,
        user=person.user,
        payload={
            "to": person.email,
            "subject": subject,
            "body": body,
            "url": absolute_url(f"/portal/invoices/{invoice.pk}/"),
            "invoice_id": invoice.pk,
        },
    )
    transaction.on_commit(outbox.kick)


def webhook_payload(invoice: Invoice) -> dict[str, object]:
    return {
        "invoice_id": invoice.pk,
        "kind": invoice.kind,
        "number": invoice.number,
        "property_id": invoice.property_id,
        "person_id": invoice.person_id,
        "month": invoice.month.strftime("%Y-%m") if invoice.month else None,
        "currency": invoice.currency,
        "total_minor": invoice.total,
        "vat_minor": invoice.vat,
        "reference": invoice.reference,
        "issued_on": str(invoice.issued_on) if invoice.issued_on else None,
        "due_on": str(invoice.due_on) if invoice.due_on else None,
        "credits": invoice.credits.number if invoice.credits_id and invoice.credits else None,
    }


# --- credit notes ----------------------------------------------------------------------------


def credit_invoice(
    actor: User, invoice_id: int, *, reason: str, amount: int | None = None
) -> Invoice:
    """A credit note for ``amount`` (when None: all that was not credited
    yet) of a finalized invoice, with the reason printed on it. It asks for
    no payment: it takes ``amount`` off what the invoice asks for."""
    invoice = get_invoice(actor, invoice_id)
    require_finalizer(actor, invoice.property)
    reason = reason.strip()
    if not reason:
        raise InvalidInput(_("Say why the invoice is credited."), code="missing_reason")
    with transaction.atomic():
        original = Invoice.objects.select_for_update().get(pk=invoice.pk)
        if original.kind != InvoiceKind.INVOICE or original.status == InvoiceStatus.DRAFT:
            raise Conflict(_("Only a finalized invoice can be credited."), code="not_creditable")
        room = original.total - original.credited
        value = room if amount is None else amount
        if value <= 0 or value > room:
            raise InvalidInput(
                _("A credit note is for more than 0 and at most %(room)s.")
                % {"room": pricing.money(room, original.currency)},
                code="bad_amount",
            )
        issuer, seq = _take_numbers(original.issuer_id, 1)
        vat_rate = max((line.vat_rate for line in original.lines.all()), default=0)
        note = Invoice.objects.create(
            organization_id=original.organization_id,
            property_id=original.property_id,
            issuer=issuer,
            person_id=original.person_id,
            unit_id=original.unit_id,
            kind=InvoiceKind.CREDIT_NOTE,
            credits=original,
            status=InvoiceStatus.OPEN,
            seq=seq,
            number=_number(issuer, seq),
            month=original.month,
            currency=original.currency,
            total=value,
            # the VAT of the credited share of the invoice (its lines may have several rates)
            vat=pricing.divide(original.vat * value, original.total) if original.total else 0,
            issued_on=today_at(original.property),
            note=reason[:300],
        )
        InvoiceLine.objects.create(
            invoice=note,
            kind=LineKind.CREDIT,
            description=(
                _("Credit on invoice %(number)s: %(reason)s")
                % {"number": original.number, "reason": reason}
            )[:200],
            amount=value,
            vat_rate=vat_rate,
        )
        original.credited += value
        if original.credited >= original.total:
            original.status = InvoiceStatus.CREDITED
        elif original.open_amount <= 0:  # paid in part, the rest credited: settled
            original.status, original.paid_at = InvoiceStatus.PAID, timezone.now()
        original.save(update_fields=["credited", "status", "paid_at"])
        record(
            EventKind.INVOICE_CREDITED,
            organization_id=original.organization_id,
            property_id=original.property_id,
            actor=actor,
            person=original.person,
            summary=_("Credit note %(note)s on invoice %(number)s: %(amount)s")
            % {
                "note": note.number,
                "number": original.number,
                "amount": pricing.money(value, original.currency),
            },
            data={"invoice_id": original.pk, "credit_note_id": note.pk},
        )
    deliver(Invoice.objects.filter(pk=note.pk))
    note.refresh_from_db()
    return note


# --- reading ---------------------------------------------------------------------------------


def get_invoice(actor: User, invoice_id: int) -> Invoice:
    """An invoice of a site the actor may see the billing of, or their own."""
    invoice = (
        Invoice.objects.select_related("property", "person", "unit", "issuer", "credits")
        .filter(pk=invoice_id)
        .first()
    )
    if invoice is None:
        raise NotFound(_("Invoice not found."))
    if invoice.person.user_id == actor.pk and invoice.status != InvoiceStatus.DRAFT:
        return invoice
    try:
        site_for(actor, invoice.property_id, policy.Action.VIEW_BILLING)
    except NotFound:  # another organization's: it does not exist for the caller
        raise NotFound(_("Invoice not found.")) from None
    return invoice


def my_invoices(actor: User) -> list[Invoice]:
    return list(
        Invoice.objects.filter(person__user=actor)
        .exclude(status=InvoiceStatus.DRAFT)
        .select_related("property")
        .order_by("-issued_on", "-pk")
    )


def display_status(invoice: Invoice, today: date | None = None) -> str:
    """open, paid, overdue, credited or draft for an invoice; issued (or
    draft) for a credit note, which asks for no payment."""
    if invoice.kind == InvoiceKind.CREDIT_NOTE:
        return "draft" if invoice.status == InvoiceStatus.DRAFT else "issued"
    day = today or today_at(invoice.property)
    if invoice.is_overdue(day) and invoice.open_amount > 0:
        return "overdue"
    return str(invoice.status)


# --- reminders and automatic finalizing (doorkeep serve) -------------------------------------


def send_reminders(now: datetime | None = None) -> int:
    """One reminder per invoice whose due date has passed and that is still
    open; how many were sent."""
    moment = now or timezone.now()
    count = 0
    candidates = (
        Invoice.objects.filter(
            kind=InvoiceKind.INVOICE,
            status=InvoiceStatus.OPEN,
            reminded_at__isnull=True,
            due_on__lt=moment.date(),
        )
        .select_related("property", "person")
        .order_by("pk")
    )
    for invoice in candidates:
        if invoice.open_amount <= 0 or not invoice.is_overdue(
            moment.astimezone(zone_of(invoice.property)).date()
        ):
            continue
        with transaction.atomic():
            taken = Invoice.objects.filter(pk=invoice.pk, reminded_at__isnull=True).update(
                reminded_at=moment
            )
            if not taken:
                continue
            person = invoice.person
            if person.email:
                with translation.override(settings.LANGUAGE_CODE):
                    subject = _("Reminder: invoice %(number)s") % {"number": invoice.number}
                    body = _(
                        "Hello %(name)s,\n\ninvoice %(number)s for %(site)s was due on "
                        "%(day)s and %(amount)s is still open. If you have paid it in the "
                        "meantime, thank you, and please ignore this message."
                    ) % {
                        "name": person.name,
                        "number": invoice.number,
                        "site": invoice.property.name,
                        "day": invoice.due_on,
                        "amount": pricing.money(invoice.open_amount, invoice.currency),
                    }
                _queue_email(invoice, subject, body)
            record(
                EventKind.INVOICE_REMINDED,
                organization_id=invoice.organization_id,
                property_id=invoice.property_id,
                person=person,
                summary=_("Reminder sent for invoice %(number)s") % {"number": invoice.number},
                data={"invoice_id": invoice.pk},
            )
            count += 1
    return count


AUTO_FINALIZE_DAY = 5  # drafts are finalized on this day of the next month


def finalize_due(now: datetime | None = None) -> list[int]:
    """From the AUTO_FINALIZE_DAY of a month on, the previous month of every
    billing site with an issuer is drafted (if it has no run) and finalized:
    the runs finalized."""
    moment = now or timezone.now()
    done: list[int] = []
    for billing in SiteBilling.objects.select_related("property").filter(
        property__billing_mode=BillingMode.BILLING_AND_PAYMENTS
    ):
        prop = billing.property
        local = moment.astimezone(zone_of(prop)).date()
        if local.day < AUTO_FINALIZE_DAY:
            continue
        previous = (local.replace(day=1) - timedelta(days=1)).replace(day=1)
        run = BillingRun.objects.filter(property=prop, month=previous).first()
        if run is not None and run.status == RunStatus.FINALIZED:
            continue
        try:
            if run is None:
                run = draft_run(None, prop.pk, previous)
            finalize_run(None, run.pk)
            done.append(run.pk)
        except (Conflict, InvalidInput, IntegrityError) as exc:
            log.warning("could not bill %s for %s: %s", prop.name, previous, exc)
    return done
