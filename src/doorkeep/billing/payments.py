"""Payments of invoices: matched from the bank's ISO 20022 files (camt.054,
camt.053) by reference, or marked as paid by hand with a note.

A bank file is read whole first (``billing.camt``): a file that cannot be
read is refused and nothing of it is applied. Then, in one transaction,
each credit becomes a ``Payment`` whose ``key`` is the transaction's
identity at the bank; a key already stored means the credit was applied
before (the same file again, or a camt.053 that repeats the day's
camt.054), and nothing changes. A credit is matched to an open or paid
invoice by its reference (spaces and case aside); one without such an
invoice is kept as an unknown payment for someone to look at, and matched
by a later upload once its invoice is there.

Who uploads decides which invoices a file may pay: the platform's operator
(``organization_id`` None) every organization's; a lock owner only those of
their organization's sites where they may finalize billing. An invoice
paid in full is ``paid``, with an event in its organization's log and the
``invoice.paid`` webhook (docs/billing-payments.md)."""

from __future__ import annotations

import hashlib
from collections import Counter, defaultdict
from dataclasses import dataclass
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Q, QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _

from doorkeep import policy
from doorkeep.accounts.models import Organization, User
from doorkeep.billing import camt
from doorkeep.billing.camt import BankEntry, BankFileError, BankStatement, parse
from doorkeep.billing.models import (
    BankFile,
    Invoice,
    InvoiceKind,
    InvoiceStatus,
    Payment,
    PaymentOutcome,
)
from doorkeep.billing.pricing import money
from doorkeep.billing.references import normalize
from doorkeep.core.errors import Conflict, DomainError, InvalidInput, NotFound, PermissionDenied
from doorkeep.events.models import EventKind
from doorkeep.events.services import record
from doorkeep.notify import services as notify
from doorkeep.notify.models import WebhookEvent

__all__ = [
    "ALREADY_APPLIED",
    "BankFileError",
    "apply_payment",
    "bank_files",
    "can_mark_paid",
    "can_upload",
    "demo_bank_file",
    "get_bank_file",
    "import_bank_file",
    "invoice_paid_payload",
    "invoice_to_mark",
    "mark_paid",
    "outcome_for",
    "payments_of",
    "require_uploader",
    "upload_organizations",
]

FINALIZE = policy.Action.FINALIZE_BILLING
ALREADY_APPLIED = "already_applied"  # a report row's outcome: the credit was applied before
NOTE_MAX = 300
KEYS_PER_QUERY = 500
demo_bank_file = camt.demo_bank_file


# --- who may do what -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Scope:
    """The invoices an upload may pay."""

    organization_id: int | None  # None: every organization (the platform's operator)
    property_ids: frozenset[int] | None  # None: every site of the organization

    def invoices(self) -> QuerySet[Invoice]:
        rows = Invoice.objects.all()
        if self.organization_id is not None:
            rows = rows.filter(organization_id=self.organization_id)
        if self.property_ids is not None:
            rows = rows.filter(property_id__in=self.property_ids)
        return rows

    def covers(self, invoice: Invoice) -> bool:
        return (
            self.organization_id is None or invoice.organization_id == self.organization_id
        ) and (self.property_ids is None or invoice.property_id in self.property_ids)


def _sites_of(user: User, organization_id: int, action: policy.Action) -> frozenset[int] | None:
    """None when ``user`` may do ``action`` on every site of the organization;
    else the sites of their scoped memberships that allow it (maybe none)."""
    if policy.can(user, action, organization_id):
        return None
    return frozenset(
        site for org, site in policy.scoped_sites(user, action) if org == organization_id
    )


def _member_anywhere(user: User, organization_id: int) -> bool:
    return policy.role_in(user, organization_id) is not None or any(
        org == organization_id for org, _site in policy.scoped_sites(user)
    )


def _upload_scope(user: User, organization_id: int | None) -> Scope:
    operator = policy.is_platform_operator(user)
    if organization_id is None:
        if not operator:
            raise NotFound(_("Not found."))
        return Scope(None, None)
    if operator:
        if not Organization.objects.filter(pk=organization_id).exists():
            raise NotFound(_("Organization not found."), code="organization_not_found")
        return Scope(organization_id, None)
    sites = _sites_of(user, organization_id, FINALIZE)
    if sites is not None and not sites:
        if not _member_anywhere(user, organization_id):
            raise NotFound(_("Organization not found."), code="organization_not_found")
        raise PermissionDenied(policy.denial(FINALIZE))
    return Scope(organization_id, sites)


def require_uploader(user: User, organization_id: int | None) -> None:
    """Raise unless ``user`` may upload bank files for the organization (None:
    for the platform, as its operator): NotFound outside it, PermissionDenied
    with the reason for a member whose role does not allow it."""
    _upload_scope(user, organization_id)


def can_upload(user: User, organization_id: int | None) -> bool:
    """Whether ``user`` may upload bank files for the organization (None:
    for the platform, as its operator)."""
    try:
        _upload_scope(user, organization_id)
    except DomainError:
        return False
    return True


def upload_organizations(user: User) -> list[Organization]:
    """The organizations whose bank files ``user`` may upload and read (the
    operator's own uploads are not among them: see ``bank_files``)."""
    ids = set(policy.organizations(user, FINALIZE).values_list("pk", flat=True))
    ids |= {org for org, _site in policy.scoped_sites(user, FINALIZE)}
    return list(Organization.objects.filter(pk__in=ids, is_platform=False).order_by("name", "pk"))


def _invoice_for(user: User, invoice_id: int, action: policy.Action, *, lock: bool) -> Invoice:
    rows = Invoice.objects.select_related("property", "person", "issuer")
    if lock:
        rows = rows.select_for_update(of=("self",))
    invoice = rows.filter(pk=invoice_id).first()
    if invoice is None:
        raise NotFound(_("Invoice not found."), code="invoice_not_found")
    if not policy.is_platform_operator(user):
        policy.require(
            user,
            action,
            invoice.organization_id,
            what=_("Invoice"),
            property_id=invoice.property_id,
        )
    return invoice


def invoice_to_mark(user: User, invoice_id: int) -> Invoice:
    """The invoice, if ``user`` may record its payments (the platform's
    operator, or a lock owner of its site); NotFound or PermissionDenied
    otherwise."""
    return _invoice_for(user, invoice_id, FINALIZE, lock=False)


def can_mark_paid(user: User, invoice: Invoice) -> bool:
    """Whether ``user`` may mark this invoice as paid now (for showing the form)."""
    if invoice.kind != InvoiceKind.INVOICE or invoice.status != InvoiceStatus.OPEN:
        return False
    if policy.is_platform_operator(user):
        return True
    return policy.can(user, FINALIZE, invoice.organization_id, invoice.property_id)


# --- applying a payment ---------------------------------------------------------------------


def outcome_for(invoice: Invoice, amount: int) -> str:
    """What a payment of ``amount`` does to the invoice: pays exactly what is
    open (matched), less (partial) or more (overpaid, also for a payment of
    an invoice already paid)."""
    open_amount = invoice.open_amount
    if amount == open_amount:
        return PaymentOutcome.MATCHED
    return PaymentOutcome.PARTIAL if amount < open_amount else PaymentOutcome.OVERPAID


def apply_payment(invoice: Invoice, payment: Payment, *, actor: User | None) -> bool:
    """Add ``payment`` to ``invoice`` (locked by the caller, in its
    transaction); an open invoice with nothing left to pay becomes paid,
    with its event and webhook. Returns whether it became paid. The one way
    both bank files and manual marking pay an invoice."""
    invoice.paid += payment.amount
    fields = ["paid"]
    became_paid = invoice.status == InvoiceStatus.OPEN and invoice.open_amount <= 0
    if became_paid:
        invoice.status = InvoiceStatus.PAID
        invoice.paid_at = timezone.now()
        fields += ["status", "paid_at"]
    invoice.save(update_fields=fields)
    if became_paid:
        _tell_paid(invoice, payment, actor)
    return became_paid


def invoice_paid_payload(invoice: Invoice, payment: Payment | None = None) -> dict[str, Any]:
    """The ``invoice.paid`` webhook's data (docs/billing-payments.md)."""
    return {
        "invoice": {
            "id": invoice.pk,
            "number": invoice.number,
            "status": invoice.status,
            "total": invoice.total,
            "paid": invoice.paid,
            "currency": invoice.currency,
            "reference": invoice.reference,
            "issued_on": invoice.issued_on.isoformat() if invoice.issued_on else None,
            "due_on": invoice.due_on.isoformat() if invoice.due_on else None,
            "paid_at": invoice.paid_at.isoformat() if invoice.paid_at else None,
            "property": {"id": invoice.property_id, "name": invoice.property.name},
            "person": {"id": invoice.person_id, "name": invoice.person.name},
        },
        "payment": None
        if payment is None
        else {
            "id": payment.pk,
            "outcome": payment.outcome,
            "amount": payment.amount,
            "currency": payment.currency,
            "booked_on": payment.booked_on.isoformat() if payment.booked_on else None,
            "bank_file_id": payment.bank_file_id,
        },
        "occurred_at": timezone.now().isoformat(),
    }


def _tell_paid(invoice: Invoice, payment: Payment, actor: User | None) -> None:
    record(
        EventKind.INVOICE_PAID,
        organization_id=invoice.organization_id,
        property_id=invoice.property_id,
        person=invoice.person,
        actor=actor,
        reason=payment.outcome,
        summary=_("Invoice %(number)s paid (%(amount)s)")
        % {"number": invoice.number, "amount": money(invoice.total, invoice.currency)},
        data={
            "invoice_id": invoice.pk,
            "number": invoice.number,
            "total": invoice.total,
            "paid": invoice.paid,
            "currency": invoice.currency,
            "payment_id": payment.pk,
            "outcome": payment.outcome,
        },
    )
    notify.emit_webhook(
        invoice.organization_id, WebhookEvent.INVOICE_PAID, invoice_paid_payload(invoice, payment)
    )


# --- bank files -----------------------------------------------------------------------------


def import_bank_file(
    user: User, data: bytes, filename: str, *, organization_id: int | None
) -> BankFile:
    """Read a camt.054 or camt.053 file and apply its credits to the invoices
    the uploader may see (``organization_id`` None: the platform's operator,
    every organization's). Returns the stored file with its ``report``. A
    file that cannot be read raises ``BankFileError`` (422) and changes
    nothing; a credit applied before (same key) is reported as already
    applied and changes nothing."""
    scope = _upload_scope(user, organization_id)
    statement = parse(data)
    digest = hashlib.sha256(data).hexdigest()
    try:
        with transaction.atomic():
            return _import(user, scope, statement, filename, digest)
    except IntegrityError:
        # Another upload stored one of these credits in the meantime.
        raise Conflict(
            _(
                "This file is being imported by someone else right now; upload it again in a "
                "moment."
            ),
            code="import_in_progress",
        ) from None


def _chunks(values: list[str]) -> list[list[str]]:
    return [values[i : i + KEYS_PER_QUERY] for i in range(0, len(values), KEYS_PER_QUERY)]


def _stored_payments(keys: list[str]) -> dict[str, Payment]:
    found: dict[str, Payment] = {}
    for chunk in _chunks(sorted(set(keys))):
        rows = Payment.objects.select_for_update(of=("self",)).select_related("invoice")
        found.update((p.key or "", p) for p in rows.filter(key__in=chunk))
    return found


def _candidates(scope: Scope, references: list[str]) -> dict[str, list[Invoice]]:
    by_reference: dict[str, list[Invoice]] = defaultdict(list)
    for chunk in _chunks(sorted(set(references))):
        rows = (
            scope.invoices()
            .filter(
                reference__in=chunk,
                kind=InvoiceKind.INVOICE,
                status__in=(InvoiceStatus.OPEN, InvoiceStatus.PAID),
            )
            .select_related("issuer", "property", "person")
            .select_for_update(of=("self",))
            .order_by("pk")
        )
        for invoice in rows:
            by_reference[normalize(invoice.reference)].append(invoice)
    return by_reference


def _pick(by_reference: dict[str, list[Invoice]], entry: BankEntry) -> tuple[Invoice | None, str]:
    """The invoice a credit pays, or None with why (or "" for no such reference)."""
    found = by_reference.get(entry.reference, []) if entry.reference else []
    if not found:
        return None, ""
    same = [i for i in found if i.currency == entry.currency]
    if not same:
        return None, _("Invoice %(number)s has this reference but is in %(currency)s.") % {
            "number": found[0].number,
            "currency": found[0].currency,
        }
    if len(same) > 1:
        # Two issuers' references may collide: the account credited tells.
        own = [i for i in same if i.issuer.account.replace(" ", "").upper() == entry.account]
        still_open = [i for i in (own or same) if i.status == InvoiceStatus.OPEN]
        if len(own) == 1:
            return own[0], ""
        if len(still_open) == 1:
            return still_open[0], ""
        return None, _("%(n)d invoices have this reference; mark the right one as paid.") % {
            "n": len(same)
        }
    return same[0], ""


def _row(
    entry: BankEntry,
    outcome: str,
    invoice: Invoice | None,
    payment: Payment | None,
    note: str = "",
) -> dict[str, Any]:
    return {
        "reference": entry.reference,
        "amount": entry.amount,
        "currency": entry.currency,
        "booked_on": entry.booked_on.isoformat() if entry.booked_on else None,
        "debtor": entry.debtor,
        "entry": entry.entry,
        "outcome": outcome,
        "invoice_id": invoice.pk if invoice is not None else None,
        "invoice": invoice.number if invoice is not None else None,
        "payment_id": payment.pk if payment is not None else None,
        "note": note,
    }


def _scoped_key(scope: Scope, key: str) -> str:
    """The uploader's name for a bank credit (at most 200 characters: a
    longer one is its digest, the same every time)."""
    scoped = f"{scope.organization_id or 'platform'}:{key}"
    if len(scoped) > 200:
        scoped = "sha256:" + hashlib.sha256(scoped.encode()).hexdigest()
    return scoped


def _import(
    user: User, scope: Scope, statement: BankStatement, filename: str, digest: str
) -> BankFile:
    bank_file = BankFile.objects.create(
        organization_id=scope.organization_id,
        uploaded_by=user,
        filename=filename.strip()[:200],
        message_type=statement.message_type,
        message_id=statement.message_id,
        digest=digest,
        report={},
    )
    # A credit's key is the uploader's: what another organization uploaded
    # under the same bank reference (a forged file) never stands for it.
    keyed = {id(e): _scoped_key(scope, e.key) for e in statement.entries}
    stored = _stored_payments(list(keyed.values()))
    by_reference = _candidates(scope, [e.reference for e in statement.entries if e.reference])
    counts: Counter[str] = Counter()
    totals: dict[str, Counter[str]] = defaultdict(Counter)
    rows: list[dict[str, Any]] = []
    for entry in statement.entries:
        key = keyed[id(entry)]
        before = stored.get(key)
        if before is not None and not (
            before.outcome == PaymentOutcome.UNKNOWN and before.invoice_id is None
        ):
            shown = before.invoice if before.invoice and scope.covers(before.invoice) else None
            rows.append(_row(entry, ALREADY_APPLIED, shown, None))
            counts[ALREADY_APPLIED] += 1
            totals[entry.currency][ALREADY_APPLIED] += entry.amount
            continue
        invoice, why = _pick(by_reference, entry)
        if before is not None and invoice is None:
            # Still unknown; its note is shown to whom it was written for.
            own = scope.organization_id in (None, before.organization_id)
            rows.append(_row(entry, ALREADY_APPLIED, None, None, before.note if own else ""))
            counts[ALREADY_APPLIED] += 1
            totals[entry.currency][ALREADY_APPLIED] += entry.amount
            continue
        outcome = outcome_for(invoice, entry.amount) if invoice else PaymentOutcome.UNKNOWN
        if before is not None and invoice is not None:
            # Unknown when it came first; its invoice is there now.
            payment = before
            payment.amount = entry.amount
            payment.invoice = invoice
            payment.organization_id = invoice.organization_id
            payment.bank_file = bank_file
            payment.outcome = outcome
            payment.note = _("Unknown in an earlier file; matched now.")
            payment.save(
                update_fields=["amount", "invoice", "organization", "bank_file", "outcome", "note"]
            )
        else:
            payment = Payment.objects.create(
                organization_id=invoice.organization_id if invoice else scope.organization_id,
                invoice=invoice,
                bank_file=bank_file,
                key=key,
                amount=entry.amount,
                currency=entry.currency,
                reference=entry.reference,
                booked_on=entry.booked_on,
                outcome=outcome,
                debtor=entry.debtor,
                note=why[:NOTE_MAX],
                created_by=user,
            )
            stored[key] = payment  # the same credit twice in the file: applied once
        if invoice is not None:
            apply_payment(invoice, payment, actor=user)
        rows.append(_row(entry, outcome, invoice, payment, payment.note))
        counts[outcome] += 1
        totals[entry.currency][outcome] += entry.amount
    bank_file.report = _report(statement, counts, totals, rows)
    bank_file.save(update_fields=["report"])
    record(
        EventKind.BANK_FILE_IMPORTED,
        organization_id=_event_organization(user, scope),
        actor=user,
        summary=_(
            "Bank file %(name)s: %(matched)d matched, %(partial)d partly paid, "
            "%(overpaid)d overpaid, %(unknown)d unknown, %(again)d already applied"
        )
        % {
            "name": bank_file.filename or bank_file.message_id or bank_file.message_type,
            "matched": counts[PaymentOutcome.MATCHED],
            "partial": counts[PaymentOutcome.PARTIAL],
            "overpaid": counts[PaymentOutcome.OVERPAID],
            "unknown": counts[PaymentOutcome.UNKNOWN],
            "again": counts[ALREADY_APPLIED],
        },
        data={"bank_file_id": bank_file.pk, "counts": bank_file.report["counts"]},
    )
    return bank_file


OUTCOMES = (
    PaymentOutcome.MATCHED,
    PaymentOutcome.PARTIAL,
    PaymentOutcome.OVERPAID,
    PaymentOutcome.UNKNOWN,
    ALREADY_APPLIED,
)


def _report(
    statement: BankStatement,
    counts: Counter[str],
    totals: dict[str, Counter[str]],
    rows: list[dict[str, Any]],
) -> dict[str, Any]:
    return {
        "message_type": statement.message_type,
        "version": statement.version,
        "message_id": statement.message_id,
        "created_at": statement.created_at.isoformat() if statement.created_at else None,
        "accounts": statement.accounts,
        "counts": {
            "credits": len(statement.entries),
            **{str(outcome): counts[outcome] for outcome in OUTCOMES},
            "debits": statement.debits,
            "not_booked": statement.not_booked,
        },
        "totals": {
            currency: {str(outcome): sums[outcome] for outcome in OUTCOMES}
            for currency, sums in sorted(totals.items())
        },
        "rows": rows,
    }


def _event_organization(user: User, scope: Scope) -> int:
    if scope.organization_id is not None:
        return scope.organization_id
    platform = (
        Organization.objects.filter(is_platform=True, memberships__user=user)
        .values_list("pk", flat=True)
        .first()
    )
    if platform is None:  # is_platform_operator() found one: cannot happen
        raise NotFound(_("Not found."))
    return platform


def bank_files(user: User, *, organization_id: int | None = None) -> QuerySet[BankFile]:
    """The bank files ``user`` may read, newest first: the operator every
    one; a lock owner their organizations' (one scoped to some sites only
    the files they uploaded themselves). ``organization_id`` keeps one
    organization's (for the operator, 0 keeps the platform's own uploads)."""
    rows = BankFile.objects.select_related("uploaded_by", "organization")
    if not policy.is_platform_operator(user):
        scoped = {org for org, _site in policy.scoped_sites(user, FINALIZE)}
        rows = rows.filter(
            Q(organization__in=policy.organizations(user, FINALIZE))
            | Q(organization_id__in=scoped, uploaded_by=user)
        )
    if organization_id == 0:
        rows = rows.filter(organization__isnull=True)
    elif organization_id is not None:
        rows = rows.filter(organization_id=organization_id)
    return rows.order_by("-uploaded_at", "-id")


def get_bank_file(user: User, bank_file_id: int) -> BankFile:
    found = bank_files(user).filter(pk=bank_file_id).first()
    if found is None:
        raise NotFound(_("Bank file not found."), code="bank_file_not_found")
    return found


# --- marking as paid by hand ------------------------------------------------------------------


def mark_paid(user: User, invoice_id: int, *, note: str) -> Invoice:
    """Mark an open invoice as paid, for money that came another way (cash,
    a payment without its reference): a manual payment of what is open,
    with ``note`` (required) and its author. Refused for a draft, a credit
    note, an invoice paid or credited already."""
    clean = " ".join((note or "").split())
    with transaction.atomic():
        invoice = _invoice_for(user, invoice_id, FINALIZE, lock=True)
        if not clean:
            raise InvalidInput(
                _("Say why the invoice is paid: a note is required (for example: paid in cash)."),
                code="note_required",
                field="note",
            )
        if len(clean) > NOTE_MAX:
            raise InvalidInput(
                _("The note is at most %(n)d characters.") % {"n": NOTE_MAX},
                code="note_too_long",
                field="note",
            )
        _check_payable(invoice)
        payment = Payment.objects.create(
            organization_id=invoice.organization_id,
            invoice=invoice,
            amount=max(invoice.open_amount, 0),
            currency=invoice.currency,
            reference=invoice.reference[:40],
            booked_on=timezone.localdate(),
            outcome=PaymentOutcome.MANUAL,
            note=clean,
            created_by=user,
        )
        apply_payment(invoice, payment, actor=user)
    return invoice


def _check_payable(invoice: Invoice) -> None:
    if invoice.kind == InvoiceKind.CREDIT_NOTE:
        raise Conflict(
            _("This is a credit note: it is not paid, it takes an amount off an invoice."),
            code="credit_note",
        )
    if invoice.status == InvoiceStatus.DRAFT:
        raise Conflict(
            _("This invoice is a draft: it can be paid once its billing run is finalized."),
            code="invoice_draft",
        )
    if invoice.status == InvoiceStatus.PAID:
        raise Conflict(_("This invoice is paid already."), code="already_paid")
    if invoice.status == InvoiceStatus.CREDITED:
        raise Conflict(
            _("This invoice was cancelled by a credit note: there is nothing to pay."),
            code="invoice_credited",
        )


def payments_of(user: User, invoice_id: int) -> list[Payment]:
    """The payments of an invoice (bank and manual), oldest first."""
    invoice = _invoice_for(user, invoice_id, policy.Action.VIEW_BILLING, lock=False)
    return list(
        Payment.objects.filter(invoice=invoice)
        .select_related("created_by", "bank_file")
        .order_by("created_at", "id")
    )
