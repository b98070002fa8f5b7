"""Registering, placing and removing locks (R1, R2)."""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from doorkeep import policy
from doorkeep.accounts.models import User
from doorkeep.core import ratelimit
from doorkeep.core.errors import Conflict, InvalidInput, NotFound
from doorkeep.events.models import EventKind
from doorkeep.events.services import record
from doorkeep.gateway.services import new_device_secret
from doorkeep.keys.services import revoke_all_on_lock
from doorkeep.licensing.services import on_registered
from doorkeep.locks.models import Lock
from doorkeep.properties.services import get_entry

_SERIAL = re.compile(r"^[A-Z0-9][A-Z0-9\-]{3,31}$")
CLAIM_SECRET_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"  # noqa: S105 - not a secret


def normalize_serial(serial: str) -> str:
    clean = re.sub(r"\s", "", serial).upper()
    if not _SERIAL.match(clean):
        raise InvalidInput(
            _("A serial number is 4 to 32 letters, digits or dashes, as printed on the lock."),
            code="invalid_serial",
        )
    return clean


def normalize_claim_secret(secret: str) -> str:
    return re.sub(r"[\s\-]", "", secret).upper()


def get_lock(actor: User, lock_id: int, action: policy.Action = policy.Action.VIEW) -> Lock:
    lock = (
        Lock.objects.select_related("entry", "entry__property", "organization")
        .filter(pk=lock_id, organization__isnull=False)
        .first()
    )
    if lock is None:
        raise NotFound(_("Lock not found."))
    policy.require(actor, action, lock.organization_id, what=_("Lock"), property_id=site_of(lock))
    return lock


def site_of(lock: Lock) -> int | None:
    """The property of the lock's entry (what a collaborator scoped to a site
    may reach), None for a lock not placed at an entry."""
    return lock.entry.property_id if lock.entry_id is not None and lock.entry else None


def register_lock(
    actor: User, *, serial: str, claim_secret: str, entry_id: int, name: str = ""
) -> Lock:
    """Register a lock with its serial number and claim secret, and place it at
    an entry of one of the actor's properties. The entry's organization becomes
    the owner of the lock."""
    entry = get_entry(actor, entry_id)
    org_id = entry.property.organization_id
    policy.require(
        actor, policy.Action.REGISTER_LOCKS, org_id, what=_("Entry"), property_id=entry.property_id
    )
    clean_serial = normalize_serial(serial)
    window = timedelta(hours=1)
    limit = settings.DOORKEEP["CLAIM_ATTEMPTS_PER_HOUR"]
    too_many = _("Too many wrong claim secrets. Wait an hour, then try again.")
    user_key = f"claim:user:{actor.pk}"
    serial_key = f"claim:serial:{clean_serial}"
    # A slot of each budget is taken first, so that a burst cannot get past
    # them, and given back unless the claim failed (docs/decisions/0021).
    taken = ratelimit.take_all(
        [(user_key, limit * 4), (serial_key, limit)], window=window, message=too_many
    )

    with transaction.atomic():
        lock = Lock.objects.select_for_update().filter(serial=clean_serial).first()
        if lock is None:
            failure = (
                _(
                    "No lock with serial number %(serial)s is known. Check the number on the "
                    "lock's label."
                )
                % {"serial": clean_serial},
                "unknown_serial",
            )
        elif not lock.check_claim_secret(normalize_claim_secret(claim_secret)):
            failure = (
                _(
                    "The claim secret does not match this lock. Check the card that came with the "
                    "lock."
                ),
                "wrong_claim_secret",
            )
        elif lock.organization_id == org_id:
            failure = (_("You have already registered this lock."), "already_registered")
        elif lock.organization_id is not None:
            failure = (
                _(
                    "This lock is registered to another owner. They must remove it before you can "
                    "register it."
                ),
                "registered_to_other",
            )
        else:
            failure = None
        if failure is None:
            assert lock is not None
            now = timezone.now()
            lock.organization_id = org_id
            lock.entry = entry
            lock.name = name.strip()[:150] or lock.name or clean_serial
            lock.registered_at = now
            if lock.first_registered_at is None:
                lock.first_registered_at = now
            lock.save()
            on_registered(lock, now)
            # A new owner gets a new device secret: the lock's previous one stops working.
            lock.new_device_secret = new_device_secret(lock)  # type: ignore[attr-defined]
            record(
                EventKind.LOCK_REGISTERED,
                organization_id=org_id,
                lock=lock,
                property_id=entry.property_id,
                actor=actor,
                summary=_("Lock %(serial)s registered at %(entry)s")
                % {"serial": lock.serial, "entry": entry.name},
            )
            ratelimit.reset(serial_key)
            ratelimit.give_back(user_key, window=window)
            return lock
    message, code = failure
    if code in ("already_registered", "registered_to_other"):  # not a wrong claim secret
        ratelimit.give_back_all(taken, window=window)
        raise Conflict(message, code=code)
    # A failed claim: its slots stay taken; log it.
    record(
        EventKind.LOCK_CLAIM_FAILED,
        organization_id=org_id,
        actor=actor,
        property_id=entry.property_id,
        reason=code,
        summary=_("Registration of %(serial)s refused") % {"serial": clean_serial},
        data={"serial": clean_serial},
    )
    if code == "unknown_serial":
        raise NotFound(message, code=code)
    raise InvalidInput(message, code=code)


def update_lock(
    actor: User, lock_id: int, *, name: str | None = None, entry_id: int | None = None
) -> Lock:
    lock = get_lock(actor, lock_id, policy.Action.REGISTER_LOCKS)
    changes: dict[str, str] = {}
    if entry_id is not None and entry_id != lock.entry_id:
        entry = get_entry(actor, entry_id)
        if entry.property.organization_id != lock.organization_id:
            raise NotFound(_("Entry not found."))
        lock.entry = entry
        changes["entry"] = entry.name
    if name is not None:
        clean = name.strip()
        if not clean or len(clean) > 150:
            raise InvalidInput(_("A lock's name is 1 to 150 characters."), code="invalid_name")
        lock.name = clean
        changes["name"] = clean
    if changes:
        with transaction.atomic():
            lock.save(update_fields=["name", "entry"])
            if "entry" in changes:  # the list carries the property's time zone
                from doorkeep.keys.services import bump_version

                bump_version(lock.pk)
            record(
                EventKind.LOCK_UPDATED,
                organization_id=lock.organization_id,  # type: ignore[arg-type]
                lock=lock,
                actor=actor,
                property_id=lock.entry.property_id if lock.entry else None,
                summary=", ".join(f"{k}: {v}" for k, v in changes.items()),
                data=changes,
            )
    return lock


def remove_lock(actor: User, lock_id: int) -> Lock:
    """Remove a lock from the owner's account. Its keys are taken back (a lock
    that changes hands must not keep the previous owner's keys); its event log
    stays with the previous owner."""
    lock = get_lock(actor, lock_id, policy.Action.REGISTER_LOCKS)
    with transaction.atomic():
        lock = Lock.objects.select_for_update(of=("self",)).select_related("entry").get(pk=lock.pk)
        org_id = lock.organization_id
        assert org_id is not None
        taken_back = revoke_all_on_lock(actor, lock, reason="lock_removed")
        property_id = lock.entry.property_id if lock.entry else None
        record(
            EventKind.LOCK_REMOVED,
            organization_id=org_id,
            lock=lock,
            property_id=property_id,
            actor=actor,
            summary=_("Lock %(serial)s removed; %(n)d keys taken back")
            % {"serial": lock.serial, "n": taken_back},
            data={"keys_taken_back": taken_back},
        )
        lock.organization = None
        lock.entry = None
        lock.name = ""  # the owner's name for it goes with the owner
        lock.registered_at = None
        lock.save(update_fields=["organization", "entry", "name", "registered_at"])
        lock.refresh_from_db()
    return lock


@dataclass(frozen=True)
class MintedLock:
    serial: str
    claim_secret: str


def new_claim_secret() -> str:
    raw = "".join(secrets.choice(CLAIM_SECRET_ALPHABET) for _ in range(16))
    return "-".join(raw[i : i + 4] for i in range(0, 16, 4))


def add_manufactured_lock(
    serial: str, *, claim_secret: str | None = None, model_name: str = ""
) -> MintedLock:
    """Make a lock known to the platform (done by the platform operator when
    locks are produced). Returns the claim secret to print on the lock's card."""
    clean = normalize_serial(serial)
    secret = claim_secret or new_claim_secret()
    if Lock.objects.filter(serial=clean).exists():
        raise Conflict(
            _("A lock with serial number %(serial)s already exists.") % {"serial": clean},
            code="serial_exists",
        )
    lock = Lock(serial=clean, model_name=model_name)
    lock.set_claim_secret(normalize_claim_secret(secret))
    lock.save()
    return MintedLock(clean, secret)
