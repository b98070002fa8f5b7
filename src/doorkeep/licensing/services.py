"""Licensing verbs: the free period at first registration, prepaid codes,
account upgrades and reminders."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from doorkeep import policy
from doorkeep.accounts.models import Membership, Organization, Role, User
from doorkeep.core import when
from doorkeep.core.errors import DomainError, InvalidInput, NotFound, RateLimited
from doorkeep.events.models import EventKind
from doorkeep.events.services import record
from doorkeep.licensing import codes, guesses
from doorkeep.licensing.models import (
    CodeBatch,
    KeyAllotment,
    Period,
    PeriodKind,
    PrepaidCode,
    Product,
    ProductKind,
    Reminder,
)
from doorkeep.licensing.state import ACTIVE, add_months, add_years, licence_of
from doorkeep.locks.models import Lock

REMINDER_DAYS = (28, 7, 1)


def on_registered(lock: Lock, now: datetime) -> None:
    """Called by register_lock in its transaction. The first registration of a
    physical lock starts its free period and brings its included keys; a later
    one changes nothing, so every end date stays where it was (R4, R8)."""
    first_time = not (
        Period.objects.filter(lock=lock, kind=PeriodKind.FREE).exists()
        or KeyAllotment.objects.filter(lock=lock, included=True).exists()
    )
    if not first_time:
        return
    if settings.DOORKEEP["FREE_MONTHS"] > 0:  # 0: no free period at all
        Period.objects.create(
            lock=lock,
            kind=PeriodKind.FREE,
            starts_at=now,
            # The same local time of day, on the property's clock (R4).
            ends_at=add_months(now, settings.DOORKEEP["FREE_MONTHS"], lock),
        )
    # Always recorded, even as 0 keys: it marks that the first registration happened.
    KeyAllotment.objects.create(lock=lock, keys=settings.DOORKEEP["INCLUDED_KEYS"], included=True)


# --- prepaid codes ---------------------------------------------------------------


def generate_batch(
    actor: User | None,
    product_sku: str,
    count: int,
    *,
    expires_at: datetime | None = None,
    note: str = "",
) -> tuple[CodeBatch, list[str]]:
    """Make ``count`` new codes for a product. Returns the batch and the codes,
    which exist nowhere else: only their digests are stored. ``actor`` is a
    platform operator, or None for the command line (run by the operator)."""
    if actor is not None:
        policy.require_platform_operator(actor)
    product = Product.objects.filter(sku=product_sku.strip().upper(), active=True).first()
    if product is None:
        known = ", ".join(Product.objects.filter(active=True).values_list("sku", flat=True))
        raise NotFound(
            _("No product %(sku)s. Known products: %(known)s.")
            % {"sku": product_sku, "known": known},
            code="unknown_product",
        )
    if not 1 <= count <= 10_000:
        raise InvalidInput(_("A batch has 1 to 10,000 codes."), code="invalid_count")
    if expires_at is not None and expires_at <= timezone.now():
        raise InvalidInput(_("The expiry date must be in the future."), code="invalid_expiry")
    plain = [codes.generate() for _ in range(count)]
    with transaction.atomic():
        batch = CodeBatch.objects.create(
            product=product, size=count, expires_at=expires_at, note=note[:200], created_by=actor
        )
        PrepaidCode.objects.bulk_create(
            PrepaidCode(batch=batch, digest=codes.digest(codes.normalize(c))) for c in plain
        )
    return batch, plain


class CodeRefused(DomainError):
    status = 400
    code = "code_refused"


@dataclass(frozen=True)
class Redemption:
    product: Product
    summary: str
    ends_at: datetime | None = None


def _refuse(message: str, code: str, status: int = 400) -> CodeRefused:
    error = CodeRefused(message, code=code)
    error.status = status  # type: ignore[misc]
    return error


def _check_code(text: str, *, for_lock: bool, now: datetime) -> PrepaidCode:
    try:
        canonical = codes.normalize(text)
    except codes.CodeTypoError:
        raise _refuse(
            _(
                "This code has a typo: one of its characters is wrong or two are swapped. "
                "Check it against the card."
            ),
            "code_typo",
        ) from None
    except codes.CodeFormatError:
        raise _refuse(
            _(
                "That is not a prepaid code. A code has 20 letters and digits, like "
                "7KQ2-M9XW-4TNB-8HRC-J5DF."
            ),
            "not_a_code",
        ) from None
    code = (
        PrepaidCode.objects.select_related("batch__product")
        .filter(digest=codes.digest(canonical))
        .first()
    )
    if code is None:
        raise _refuse(_("This code is not known. Check it against the card."), "unknown_code", 404)
    if code.redeemed_at is not None:
        raise _refuse(_("This code has already been used."), "code_used", 409)
    if code.batch.expires_at is not None and code.batch.expires_at <= now:
        raise _refuse(
            _("This code expired on %(date)s.") % {"date": f"{code.batch.expires_at:%Y-%m-%d}"},
            "code_expired",
        )
    product = code.batch.product
    if product.for_lock != for_lock:
        if for_lock:
            message = _(
                "This code is an account upgrade (%(product)s), not a code for a lock. "
                "Enter it under Account upgrades."
            )
        else:
            message = _(
                "This code is for a lock (%(product)s). Enter it on the lock's licence panel."
            )
        raise _refuse(message % {"product": product.name}, "wrong_product")
    return code


def _consume(
    code: PrepaidCode, actor: User, *, lock: Lock | None, org_id: int, now: datetime
) -> None:
    """Mark the code used, once: the conditional UPDATE lets only one of two
    racing redemptions through."""
    updated = PrepaidCode.objects.filter(pk=code.pk, redeemed_at__isnull=True).update(
        redeemed_at=now, redeemed_by=actor, lock=lock, organization_id=org_id
    )
    if updated != 1:
        raise _refuse(_("This code has already been used."), "code_used", 409)


def _apply_to_lock(code: PrepaidCode, lock: Lock, now: datetime) -> Redemption:
    product = code.batch.product
    state = licence_of(lock.pk, now)
    if product.kind == ProductKind.MANAGEMENT:
        current_end = state.full_until or now
        ends = add_years(max(now, current_end), product.years, lock)
        Period.objects.create(
            lock=lock, kind=PeriodKind.MANAGEMENT, starts_at=now, ends_at=ends, code=code
        )
        return Redemption(
            product,
            _("Full management until %(date)s") % {"date": when.show(ends, lock, "Y-m-d")},
            ends,
        )
    if product.kind == ProductKind.ORGANIZATIONS_OPTION:
        if state.mode != ACTIVE:
            reason = (
                _("it is still in its free period")
                if state.mode == "free"
                else _("its management has ended")
            )
            raise _refuse(
                _(
                    "The option to issue keys to organizations needs 5-year management of this "
                    "lock, and %(reason)s. Enter a management code first; this code was not "
                    "used."
                )
                % {"reason": reason},
                "option_needs_management",
            )
        current = (
            state.option_ends_at if state.option_ends_at and state.option_ends_at > now else now
        )
        ends = add_years(current, product.years, lock)
        Period.objects.create(
            lock=lock, kind=PeriodKind.ORGANIZATIONS_OPTION, starts_at=now, ends_at=ends, code=code
        )
        return Redemption(
            product,
            _("Keys to organizations until %(date)s") % {"date": when.show(ends, lock, "Y-m-d")},
            ends,
        )
    KeyAllotment.objects.create(lock=lock, keys=product.keys, code=code)
    return Redemption(product, _("%(n)d more keys") % {"n": product.keys})


def redeem_for_lock(actor: User, lock_id: int, text: str, *, client_ip: str = "") -> Redemption:
    """Enter a prepaid code for a lock: management years, the organizations
    option, or a key pack. Possible in every licence state (R5, R6)."""
    lock = Lock.objects.filter(pk=lock_id, organization__isnull=False).first()
    if lock is None:
        raise NotFound(_("Lock not found."))
    policy.require(actor, policy.Action.BUY_LICENCES, lock.organization_id, what=_("Lock"))
    org_id = lock.organization_id
    assert org_id is not None
    try:
        attempt = guesses.begin(actor, client_ip)
    except RateLimited as exc:  # refused too: the owner sees the attempts in the log
        record(
            EventKind.CODE_REFUSED,
            organization_id=org_id,
            lock=lock,
            actor=actor,
            reason=exc.code,
            summary=exc.message,
        )
        raise
    now = timezone.now()
    try:
        with transaction.atomic():
            Lock.objects.select_for_update().filter(pk=lock.pk).first()
            code = _check_code(text, for_lock=True, now=now)
            _consume(code, actor, lock=lock, org_id=org_id, now=now)
            result = _apply_to_lock(code, lock, now)
            record(
                EventKind.CODE_REDEEMED,
                organization_id=org_id,
                lock=lock,
                actor=actor,
                property_id=lock.entry.property_id if lock.entry else None,
                summary=f"{result.product.name}: {result.summary}",
                data={"product": result.product.sku, "code_id": code.pk},
            )
    except CodeRefused as exc:
        attempt.settle(exc.code)
        record(
            EventKind.CODE_REFUSED,
            organization_id=org_id,
            lock=lock,
            actor=actor,
            property_id=lock.entry.property_id if lock.entry else None,
            reason=exc.code,
            summary=exc.message,
        )
        raise
    attempt.settle(None)
    return result


def redeem_for_organization(
    actor: User, organization_id: int, text: str, *, client_ip: str = ""
) -> Redemption:
    """Enter an account-upgrade code: organization management (R13)."""
    policy.require(actor, policy.Action.BUY_LICENCES, organization_id, what=_("Organization"))
    try:
        attempt = guesses.begin(actor, client_ip)
    except RateLimited as exc:
        record(
            EventKind.CODE_REFUSED,
            organization_id=organization_id,
            actor=actor,
            reason=exc.code,
            summary=exc.message,
        )
        raise
    now = timezone.now()
    try:
        with transaction.atomic():
            org = Organization.objects.select_for_update().get(pk=organization_id)
            code = _check_code(text, for_lock=False, now=now)
            if org.organization_management_since is not None:
                raise _refuse(
                    _(
                        "This organization already has organization management; the code "
                        "was not used."
                    ),
                    "already_upgraded",
                    409,
                )
            _consume(code, actor, lock=None, org_id=org.pk, now=now)
            org.organization_management_since = now
            org.save(update_fields=["organization_management_since"])
            product = code.batch.product
            record(
                EventKind.CODE_REDEEMED,
                organization_id=org.pk,
                actor=actor,
                summary=_("Organization management activated"),
                data={"product": product.sku, "code_id": code.pk},
            )
    except CodeRefused as exc:
        attempt.settle(exc.code)
        record(
            EventKind.CODE_REFUSED,
            organization_id=organization_id,
            actor=actor,
            reason=exc.code,
            summary=exc.message,
        )
        raise
    attempt.settle(None)
    return Redemption(product, _("Organization management activated"))


def activate_building_management(actor: User, organization_id: int) -> Organization:
    """The lock owner's upgrade to building management: no code needed (R12)."""
    policy.require(actor, policy.Action.BUY_LICENCES, organization_id, what=_("Organization"))
    with transaction.atomic():
        org = Organization.objects.select_for_update().get(pk=organization_id)
        if org.building_management_since is None:
            org.building_management_since = timezone.now()
            org.save(update_fields=["building_management_since"])
            record(
                EventKind.ACCOUNT_UPGRADED,
                organization_id=org.pk,
                actor=actor,
                summary=_("Building management activated"),
            )
    return org


# --- reminders -----------------------------------------------------------------


def send_reminders(now: datetime | None = None) -> int:
    """Email lock owners 28, 7 and 1 days before a lock's management ends, once
    each. Safe to run as often as you like; returns the number of emails."""
    now = now or timezone.now()
    horizon = now + timedelta(days=max(REMINDER_DAYS))
    lock_ids = set(
        Period.objects.filter(
            kind__in=(PeriodKind.FREE, PeriodKind.MANAGEMENT),
            ends_at__gt=now,
            ends_at__lte=horizon,
            lock__organization__isnull=False,
        ).values_list("lock_id", flat=True)
    )
    sent = 0
    locks = Lock.objects.filter(pk__in=lock_ids).select_related("organization", "entry__property")
    for lock in locks:
        state = licence_of(lock.pk, now)
        if state.full_until is None or state.full_until > horizon:
            continue
        left = state.full_until - now
        due = [d for d in REMINDER_DAYS if left <= timedelta(days=d)]
        if not due:
            continue
        most_urgent = min(due)
        if Reminder.objects.filter(
            lock=lock, ends_at=state.full_until, days_before=most_urgent
        ).exists():
            continue
        owners = list(
            Membership.objects.filter(
                organization_id=lock.organization_id or 0, role=Role.LOCK_OWNER
            )
            .select_related("user")
            .values_list("user__email", flat=True)
        )
        if not owners:
            continue
        with transaction.atomic():
            for days in due:  # the less urgent ones are no longer worth sending
                Reminder.objects.get_or_create(
                    lock=lock,
                    ends_at=state.full_until,
                    days_before=days,
                    defaults={"sent_to": ", ".join(owners)[:254], "sent_at": now},
                )
            _send_reminder(lock, state.full_until, owners, free=state.mode == "free")
        sent += 1
    return sent


def _send_reminder(lock: Lock, ends_at: datetime, owners: list[str], *, free: bool) -> None:
    link = f"{settings.SITE_URL}/locks/{lock.pk}/licence/"
    # In the time zone of the lock's property, as the web UI shows it.
    kind = _("free period") if free else _("management period")
    subject = _("Management of %(lock)s ends on %(date)s") % {
        "lock": lock.name or lock.serial,
        "date": when.show(ends_at, lock, "Y-m-d"),
    }
    body = _(
        "The %(kind)s of lock %(lock)s (serial %(serial)s) ends on %(date)s.\n\n"
        "After that you can still take keys back, but not issue or change them. Enter a prepaid "
        "management code to keep full management for 5 more years; no key is lost either way:\n"
        "%(link)s\n"
    ) % {
        "kind": kind,
        "lock": lock.name or lock.serial,
        "serial": lock.serial,
        "date": when.show(ends_at, lock, "Y-m-d H:i", named=True),
        "link": link,
    }
    send_mail(subject, body, None, owners)
