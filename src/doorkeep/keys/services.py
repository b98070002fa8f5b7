"""Issuing and taking back keys: the verbs that change who may open a lock.

Every change a lock must learn bumps the lock's credential-list version in the
same transaction, and writes an event."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from doorkeep import policy
from doorkeep.accounts.models import User
from doorkeep.core.errors import Conflict, InvalidInput, NotFound
from doorkeep.events.models import EventKind
from doorkeep.events.services import record
from doorkeep.keys import schedule as schedules
from doorkeep.keys.credentials import presented
from doorkeep.keys.models import Credential, CredentialKind, Key, KeyCredential, Person
from doorkeep.locks.models import Lock


@dataclass
class HolderSpec:
    """Who receives the key: an existing person of the organization, or a name
    and an email address (linked to the account with that address, if any)."""

    person_id: int | None = None
    name: str = ""
    email: str = ""


@dataclass
class CredentialSpec:
    kind: str
    value: str = ""


@dataclass
class KeySpec:
    holder: HolderSpec
    credentials: list[CredentialSpec]
    valid_from: datetime | None = None
    valid_until: datetime | None = None
    schedule: Any = None
    note: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


def bump_version(lock_id: int) -> None:
    Lock.objects.filter(pk=lock_id).update(credential_version=F("credential_version") + 1)


def _locked_lock(actor: User, lock_id: int, action: policy.Action) -> Lock:
    lock = (
        Lock.objects.select_for_update(of=("self",))  # entry is an outer join: not lockable
        .select_related("entry")
        .filter(pk=lock_id, organization__isnull=False)
        .first()
    )
    if lock is None:
        raise NotFound(_("Lock not found."))
    policy.require(actor, action, lock.organization_id, what=_("Lock"))
    return lock


def _holder(lock: Lock, spec: HolderSpec) -> Person:
    org_id = lock.organization_id
    assert org_id is not None
    if spec.person_id is not None:
        person = Person.objects.filter(pk=spec.person_id, organization_id=org_id).first()
        if person is None:
            raise NotFound(_("Person not found."), code="person_not_found")
        return person
    name = spec.name.strip()
    email = spec.email.strip().lower()
    if not name and not email:
        raise InvalidInput(
            _("Say who receives the key: a name, an email address, or both."),
            code="holder_required",
        )
    if email:
        if "@" not in email or len(email) > 254:
            raise InvalidInput(
                _("%(email)s is not an email address.") % {"email": email}, code="invalid_email"
            )
        person = Person.objects.filter(organization_id=org_id, email=email).first()
        if person is not None:
            return person
    user = User.objects.filter(email=email).first() if email else None
    return Person.objects.create(organization_id=org_id, name=name or email, email=email, user=user)


def _validate_window(valid_from: datetime | None, valid_until: datetime | None) -> None:
    for moment in (valid_from, valid_until):
        if moment is not None and timezone.is_naive(moment):
            raise InvalidInput(_("Dates must include a time zone."), code="invalid_window")
    if valid_from and valid_until and valid_from >= valid_until:
        raise InvalidInput(
            _("The key's validity must start before it ends."), code="invalid_window"
        )


_IN_USE = {
    CredentialKind.PIN: gettext_lazy(
        "This PIN code is already in use on this lock; choose another one."
    ),
    CredentialKind.TAG: gettext_lazy("This tag is already in use on this lock."),
    CredentialKind.REMOTE: gettext_lazy("This remote is already in use on this lock."),
    CredentialKind.PHONE: gettext_lazy("This person already opens this lock by phone."),
}


def issue_key(actor: User, lock_id: int, spec: KeySpec) -> Key:
    """Give a person a key on a lock, with one or more credentials."""
    if not spec.credentials:
        raise InvalidInput(_("A key needs at least one credential."), code="credential_required")
    _validate_window(spec.valid_from, spec.valid_until)
    rules = schedules.normalize(spec.schedule)
    kinds = [c.kind for c in spec.credentials]
    if len(set(kinds)) != len(kinds):
        raise InvalidInput(
            _("Give each kind of credential at most once."), code="duplicate_credential_kind"
        )
    parsed = [presented(c.kind, c.value) for c in spec.credentials]

    try:
        with transaction.atomic():
            lock = _locked_lock(actor, lock_id, policy.Action.MANAGE_KEYS)
            person = _holder(lock, spec.holder)
            if Key.objects.filter(lock=lock, person=person, revoked_at__isnull=True).exists():
                raise Conflict(
                    _(
                        "%(name)s already has a key on this lock. Take it back first to issue a "
                        "new one."
                    )
                    % {"name": person.name},
                    code="key_exists",
                )
            limit = settings.DOORKEEP["MAX_USERS_PER_LOCK"]
            if Key.objects.filter(lock=lock, revoked_at__isnull=True).count() >= limit:
                raise Conflict(
                    _(
                        "This lock already has %(limit)s users, the most it can hold. Take back a "
                        "key before issuing a new one."
                    )
                    % {"limit": f"{limit:,}"},
                    code="lock_full",
                )
            key = Key.objects.create(
                lock=lock,
                organization_id=lock.organization_id or 0,
                person=person,
                valid_from=spec.valid_from,
                valid_until=spec.valid_until,
                schedule=rules,
                note=spec.note.strip()[:200],
                issued_by=actor,
            )
            for item in parsed:
                lookup = str(person.pk) if item.kind == CredentialKind.PHONE else item.lookup
                if item.kind == CredentialKind.PHONE and not person.email:
                    raise InvalidInput(
                        _("A phone key needs the person's email address, to link their account."),
                        code="phone_needs_email",
                    )
                if KeyCredential.objects.filter(
                    lock=lock, kind=item.kind, lookup=lookup, active=True
                ).exists():
                    raise Conflict(str(_IN_USE[item.kind]), code="credential_in_use")
                credential = Credential.objects.filter(
                    person=person, kind=item.kind, lookup=lookup, deactivated_at__isnull=True
                ).first()
                if credential is None:
                    display = person.email if item.kind == CredentialKind.PHONE else item.display
                    credential = Credential.objects.create(
                        person=person, kind=item.kind, lookup=lookup, display=display
                    )
                KeyCredential.objects.create(
                    key=key, credential=credential, lock=lock, kind=item.kind, lookup=lookup
                )
            bump_version(lock.pk)
            record(
                EventKind.KEY_ISSUED,
                organization_id=lock.organization_id or 0,
                lock=lock,
                property_id=lock.entry.property_id if lock.entry else None,
                person=person,
                key=key,
                actor=actor,
                summary=_("Key issued to %(name)s (%(kinds)s)")
                % {"name": person.name, "kinds": ", ".join(sorted(kinds))},
                data={"credentials": sorted(kinds)},
            )
    except IntegrityError:
        # Two requests raced past the checks above; the database constraints
        # caught it. Nothing was written.
        raise Conflict(
            _("Someone changed this lock's keys at the same moment; please try again."),
            code="concurrent_change",
        ) from None
    return key


def revoke_key(actor: User, key_id: int) -> Key:
    """Take a key back: the lock stops accepting its credentials."""
    with transaction.atomic():
        key = Key.objects.select_related("person").filter(pk=key_id).first()
        if key is None or not policy.can(actor, policy.Action.VIEW, key.organization_id):
            raise NotFound(_("Key not found."), code="key_not_found")
        lock = _locked_lock(actor, key.lock_id, policy.Action.MANAGE_KEYS)
        if key.organization_id != lock.organization_id:
            raise NotFound(_("Key not found."), code="key_not_found")
        key.refresh_from_db(fields=["revoked_at"])
        if key.revoked_at is not None:
            raise Conflict(_("This key was already taken back."), code="already_revoked")
        key.revoked_at = timezone.now()
        key.revoked_by = actor
        key.save(update_fields=["revoked_at", "revoked_by"])
        KeyCredential.objects.filter(key=key, active=True).update(active=False)
        bump_version(lock.pk)
        record(
            EventKind.KEY_REVOKED,
            organization_id=lock.organization_id or 0,
            lock=lock,
            property_id=lock.entry.property_id if lock.entry else None,
            person=key.person,
            key=key,
            actor=actor,
            summary=_("Key of %(name)s taken back") % {"name": key.person.name},
        )
    return key


def revoke_all_on_lock(actor: User | None, lock: Lock, *, reason: str) -> int:
    """Take back every live key of a lock (used when the lock is removed).
    The caller holds the lock row and has checked the policy."""
    now = timezone.now()
    live = Key.objects.filter(lock=lock, revoked_at__isnull=True)
    ids = list(live.values_list("pk", flat=True))
    if not ids:
        return 0
    Key.objects.filter(pk__in=ids).update(revoked_at=now, revoked_by=actor)
    KeyCredential.objects.filter(key_id__in=ids, active=True).update(active=False)
    bump_version(lock.pk)
    return len(ids)


def link_account(user: User) -> int:
    """Link the people with this user's (verified) email address to the account,
    so that keys issued by name and email work with the person's phone."""
    return Person.objects.filter(email=user.email.lower(), user__isnull=True).update(user=user)
