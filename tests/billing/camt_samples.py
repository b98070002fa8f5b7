"""The sample bank files of tests/billing/camt/ and the invoices they pay.

- camt054_chf_qr.xml: a Swiss camt.054.001.08 of 3 February 2026, account
  CH93 0076 2011 6238 5295 7: one entry batching three QR-bill payments
  (120.50 paying QR_MATCHED's 120.50, 50.00 of QR_PARTIAL's 80.00, 131.15
  for QR_OVERPAID's 100.00), 35.00 with a reference no invoice has, the
  bank's fees (a debit), 64.30 for QR_SPACED (its reference printed in
  groups, its transaction without a reference of the bank) and a pending
  credit.
- camt054_chf_rest.xml: the 30.00 still open on QR_PARTIAL, a week later.
- camt054_chf_overlap.xml: the 35.00 again, and 70.00 for QR_OVERLAP.
- camt053_eur_rf.xml: a camt.053.001.08 statement in EUR: 250.00 with the
  creditor reference RF_MATCHED, a debit, 80.00 without any reference.
- camt054_v04_chf.xml: a camt.054.001.04 (the Swiss format before 2022):
  45.00 for QR_V04, the amount in AmtDtls.
- pain001.xml: a payment order, which is not a bank file."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from doorkeep.accounts.models import Organization, Role, User
from doorkeep.accounts.services import create_user
from doorkeep.billing.models import Invoice, InvoiceKind, InvoiceStatus, Issuer
from doorkeep.keys.models import Person
from doorkeep.properties.models import Property

SAMPLES = Path(__file__).parent / "camt"

ACCOUNT = "CH9300762011623852957"
EUR_ACCOUNT = "CH5604835012345678009"
QR_MATCHED = "210000000003139471430009017"  # 120.50
QR_PARTIAL = "210000000003139471430009025"  # 50.00, then 30.00
QR_OVERPAID = "210000000003139471430009030"  # 131.15
QR_SPACED = "210000000003139471430009041"  # 64.30
QR_PENDING = QR_V04 = "210000000003139471430009056"  # 99.00 pending; 45.00 in the v04 file
QR_OVERLAP = "210000000003139471430009064"  # 70.00
QR_UNKNOWN = "000000000000000000000999995"  # 35.00
RF_MATCHED = "RF18539007547034"  # EUR 250.00


def sample(name: str) -> bytes:
    return (SAMPLES / name).read_bytes()


def issuer(org: Organization | None = None, *, currency: str = "CHF", account: str = "") -> Issuer:
    return Issuer.objects.create(
        organization=org,
        name="Doorkeep Billing AG" if org is None else org.name,
        street="Bahnhofstrasse",
        house_number="1",
        postcode="8001",
        city="Zurich",
        account=account or ("CH4431999123000889012" if currency == "CHF" else EUR_ACCOUNT),
        currency=currency,
    )


_numbers = iter(range(1, 10_000))


def invoice(
    prop: Property,
    *,
    reference: str,
    total: int,
    currency: str = "CHF",
    status: str = InvoiceStatus.OPEN,
    kind: str = InvoiceKind.INVOICE,
    by: Issuer | None = None,
    person: str = "Rosa Resident",
    paid: int = 0,
    credited: int = 0,
) -> Invoice:
    """An invoice of ``prop`` as a finalized billing run leaves it."""
    owner = Person.objects.get_or_create(
        organization_id=prop.organization_id, name=person, defaults={"email": ""}
    )[0]
    seq = next(_numbers)
    return Invoice.objects.create(
        organization_id=prop.organization_id,
        property=prop,
        issuer=by or issuer(currency=currency),
        person=owner,
        kind=kind,
        status=status,
        seq=None if status == InvoiceStatus.DRAFT else seq,
        number="" if status == InvoiceStatus.DRAFT else f"2026-{seq:04d}",
        month=date(2026, 1, 1),
        currency=currency,
        total=total,
        reference=reference,
        issued_on=date(2026, 2, 1),
        due_on=date(2026, 3, 3),
        paid=paid,
        credited=credited,
    )


def make_operator() -> User:
    """The platform's operator: a member of the platform's organization."""
    operator = create_user("otto@example.com", "correct horse battery staple", name="Otto Operator")
    platform = Organization.objects.create(name="Doorkeep platform", is_platform=True)
    platform.memberships.create(user=operator, role=Role.PLATFORM_OPERATOR)
    return operator
