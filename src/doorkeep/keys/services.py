"""Issuing and taking back keys: the verbs that change who may open a lock.

Every change a lock must learn bumps the lock's credential-list version in the
same transaction, and writes an event."""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from doorkeep import policy
from doorkeep.accounts.models import User
from doorkeep.core.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from doorkeep.events.models import DenyReason, EventKind
from doorkeep.events.services import record
from doorkeep.keys import schedule as schedules
from doorkeep.keys.credentials import Presented, device_lookup, presented
from doorkeep.keys.models import Credential, CredentialKind, Key, KeyCredential, Person
from doorkeep.licensing.state import (
    LicenceState,
    require_full_management,
    require_key_available,
)
from doorkeep.locks.models import Lock

if TYPE_CHECKING:
    from doorkeep.gateway.routing import Change


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


# Raise the version and return it, in one statement (SQLite >= 3.35, PostgreSQL).
_BUMP_SQL = (
    "UPDATE locks_lock SET credential_version = credential_version + 1 "
    "WHERE id = %s RETURNING credential_version"
)
MAX_NOTICE_KEYS = 100  # a change of more keys is announced as "anything may have changed"


def bump_version(lock_id: int, key_ids: Iterable[int] | None = None) -> None:
    """The lock must learn a change: raise its list version in this transaction,
    and, once committed, tell the gateway holding the lock to push it.

    ``key_ids`` names every key whose entries the change touches (a key taken
    back and the keys under it, a key issued or changed); the notice carries
    them with the version this change produced, so that the gateway may read
    only those keys' rows. None: anything may have changed (the whole list).

    A transaction that changes many locks (a lost badge) sends one notice to
    each gateway, naming all its locks (``_announce``)."""
    from doorkeep.gateway.routing import Change

    keys = None if key_ids is None else sorted({int(k) for k in key_ids})
    if keys is not None and len(keys) > MAX_NOTICE_KEYS:
        keys = None
    if keys is None:
        Lock.objects.filter(pk=lock_id).update(credential_version=F("credential_version") + 1)
        _announce(Change(lock_id))
        return
    # The version this change produced: the lock row stays locked until the
    # commit, so no other change can have the same number.
    with connection.cursor() as cursor:
        cursor.execute(
            _BUMP_SQL,
            [lock_id],
        )
        found = cursor.fetchone()
    if found is None:
        return
    _announce(Change(lock_id, tuple(keys), int(found[0])))


class _Notices:
    """The changes of one transaction, announced together after its commit
    (``routing.notify_changed_many``: one notice to each gateway)."""

    def __init__(self) -> None:
        self.changes: list[Change] = []
        self.sent = False
        self.last: _Send | None = None  # the callback that sends them

    def send(self) -> None:
        from doorkeep.gateway.routing import notify_changed_many

        self.sent = True
        if self.changes:
            notify_changed_many(self.changes)


class _Send:
    """The on_commit callback that sends a transaction's notices, after
    every change's own. A later change puts a new one after its own: the one
    it leaves behind does nothing."""

    def __init__(self, notices: _Notices) -> None:
        self.notices = notices
        notices.last = self

    def __call__(self) -> None:
        if self.notices.last is self:
            self.notices.send()


def _announce(change: Change) -> None:
    """Have ``change`` announced after the commit, with
    every other change of the transaction, in one call.

    Each change is noted by an on_commit callback of its own, which Django
    drops if a savepoint it was made under is rolled back: a version that
    was never committed is never announced. The call that sends them all is
    one more callback, kept after the changes' and dropped only with the
    transaction: Django keeps the pending callbacks as (savepoint ids,
    callback, robust), in order (as its captureOnCommitCallbacks reads
    them), and drops a savepoint's when it is rolled back. Outside a
    transaction: announced at once."""
    conn = transaction.get_connection()
    notices = None
    if conn.in_atomic_block:
        for _sids, pending, _robust in reversed(conn.run_on_commit):
            if isinstance(pending, _Send):  # the latest of this transaction
                if pending.notices.last is pending and not pending.notices.sent:
                    notices = pending.notices  # (sent: by captureOnCommitCallbacks, in a test)
                break
    if notices is None:
        notices = _Notices()
    if not conn.in_atomic_block:
        notices.changes.append(change)
        transaction.on_commit(notices.send)
        return
    transaction.on_commit(functools.partial(notices.changes.append, change))
    conn.run_on_commit.append((set(), _Send(notices), False))


def _locked_lock(actor: User, lock_id: int, action: policy.Action) -> Lock:
    lock = (
        Lock.objects.select_for_update(of=("self",))  # entry is an outer join: not lockable
        .select_related("entry")
        .filter(pk=lock_id, organization__isnull=False)
        .first()
    )
    if lock is None:
        raise NotFound(_("Lock not found."))
    site = lock.entry.property_id if lock.entry is not None else None
    policy.require(actor, action, lock.organization_id, what=_("Lock"), property_id=site)
    return lock


def person_for(org_id: int, spec: HolderSpec, *, site: int | None = None) -> Person:
    """The organization's person ``spec`` names: by id, or by email address
    (added, and linked to the account with that address, when new). With
    ``site`` (for a collaborator scoped to that property) a person named by
    id must be one of the site's: holding a key there, or living there."""
    if spec.person_id is not None:
        person = Person.objects.filter(pk=spec.person_id, organization_id=org_id).first()
        if person is None or (site is not None and not person_of_site(person.pk, site)):
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


def person_of_site(person_id: int, property_id: int) -> bool:
    """Whether the person holds (or held) a key on a lock of the property, or
    lives (or lived) there: the people a collaborator of that site may see."""
    from doorkeep.residents.models import Residency

    return (
        Key.objects.filter(person_id=person_id, lock__entry__property_id=property_id).exists()
        or Residency.objects.filter(person_id=person_id, unit__property_id=property_id).exists()
    )


def validate_window(valid_from: datetime | None, valid_until: datetime | None) -> None:
    for moment in (valid_from, valid_until):
        if moment is not None and timezone.is_naive(moment):
            raise InvalidInput(_("Dates must include a time zone."), code="invalid_window")
    far = timezone.now() + timedelta(days=36500)
    if any(moment is not None and moment > far for moment in (valid_from, valid_until)):
        raise InvalidInput(
            _("Dates must be within a hundred years; leave the end empty for no end."),
            code="invalid_window",
        )
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


@dataclass
class IssueGrant:
    """Who may issue on this lock, and under what: the result of authorizing."""

    lock: Lock
    licence: LicenceState
    organization_id: int  # the organization that manages the new key
    parent: Key | None


def authorize_issue(actor: User, lock_id: int, parent_key_id: int | None) -> IssueGrant:
    """Check that ``actor`` may issue (or change) keys on the lock, directly as
    the lock's owner or manager, or under an organization's key (R11). Locks
    the lock row. Raises NotFound, PermissionDenied or a licence error."""
    if parent_key_id is None:
        lock = _locked_lock(actor, lock_id, policy.Action.MANAGE_KEYS)
        licence = require_full_management(lock.pk)
        return IssueGrant(lock, licence, lock.organization_id or 0, None)
    from doorkeep.keys.sharing import authorize_under

    return authorize_under(actor, lock_id, parent_key_id)


def issue_key(actor: User, lock_id: int, spec: KeySpec, *, parent_key_id: int | None = None) -> Key:
    """Give a person a key on a lock, with one or more credentials. With
    ``parent_key_id``, an organization's manager issues the key under the key
    the lock owner gave that organization."""
    if not spec.credentials:
        raise InvalidInput(_("A key needs at least one credential."), code="credential_required")
    validate_window(spec.valid_from, spec.valid_until)
    rules = schedules.normalize(spec.schedule)
    kinds = [c.kind for c in spec.credentials]
    if len(set(kinds)) != len(kinds):
        raise InvalidInput(
            _("Give each kind of credential at most once."), code="duplicate_credential_kind"
        )
    parsed = [presented(c.kind, c.value) for c in spec.credentials]

    try:
        with transaction.atomic():
            grant = authorize_issue(actor, lock_id, parent_key_id)
            lock = grant.lock
            valid_from, valid_until = spec.valid_from, spec.valid_until
            if grant.parent is not None:
                from doorkeep.keys.sharing import within_parent

                valid_from, valid_until = within_parent(grant.parent, valid_from, valid_until)
            site = None
            if grant.parent is None and not policy.can(
                actor, policy.Action.MANAGE_KEYS, lock.organization_id
            ):  # a collaborator of the lock's site only: the people of that site
                site = lock.entry.property_id if lock.entry is not None else None
            person = person_for(grant.organization_id, spec.holder, site=site)
            raw = {c.kind: c.value for c in spec.credentials}
            key = create_key(
                actor,
                lock,
                person,
                licence=grant.licence,
                organization_id=grant.organization_id,
                parent=grant.parent,
                valid_from=valid_from,
                valid_until=valid_until,
                schedule=rules,
                note=spec.note,
                credentials=[(item, raw[item.kind]) for item in parsed],
            )
    except IntegrityError:
        # Two requests raced past the checks above; the database constraints
        # caught it. Nothing was written.
        raise Conflict(
            _("Someone changed this lock's keys at the same moment; please try again."),
            code="concurrent_change",
        ) from None
    return key


def create_key(
    actor: User,
    lock: Lock,
    person: Person,
    *,
    licence: LicenceState,
    organization_id: int,
    credentials: list[tuple[Presented, str]],
    parent: Key | None = None,
    valid_from: datetime | None = None,
    valid_until: datetime | None = None,
    schedule: Any = None,
    note: str = "",
    summary: str = "",
) -> Key:
    """Write a key with its credentials, raise the lock's list version and
    record the event. The caller holds the lock row, has authorized the actor
    and checked that management is active; this checks the lock's capacity,
    the licence's keys and that each credential is free on the lock."""
    if Key.objects.filter(lock=lock, person=person, revoked_at__isnull=True).exists():
        raise Conflict(
            _("%(name)s already has a key on this lock. Take it back first to issue a new one.")
            % {"name": person.name},
            code="key_exists",
        )
    limit = settings.DOORKEEP["MAX_USERS_PER_LOCK"]
    users = Key.objects.filter(lock=lock, revoked_at__isnull=True, person__isnull=False)
    if users.count() >= limit:
        raise Conflict(
            _(
                "This lock already has %(limit)s users, the most it can hold. Take back a "
                "key before issuing a new one."
            )
            % {"limit": f"{limit:,}"},
            code="lock_full",
        )
    require_key_available(licence)
    key = Key.objects.create(
        lock=lock,
        organization_id=organization_id,
        lock_owner_id=lock.organization_id or 0,
        person=person,
        parent=parent,
        valid_from=valid_from,
        valid_until=valid_until,
        schedule=schedule,
        note=note.strip()[:200],
        issued_by=actor,
    )
    for item, raw in credentials:
        lookup = str(person.pk) if item.kind == CredentialKind.PHONE else item.lookup
        if item.kind == CredentialKind.PHONE and not person.email and person.user_id is None:
            raise InvalidInput(
                _("A phone key needs the person's email address, to link their account."),
                code="phone_needs_email",
            )
        if KeyCredential.objects.filter(
            lock=lock, kind=item.kind, lookup=lookup, active=True
        ).exists():
            raise Conflict(str(_IN_USE[item.kind]), code="credential_in_use")
        if (
            item.kind == CredentialKind.TAG
            and Credential.objects.filter(
                kind=CredentialKind.TAG,
                lookup=lookup,
                deactivated_reason=DenyReason.BADGE_LOST,
                person__organization_id=person.organization_id,
            ).exists()
        ):
            raise Conflict(
                _("This tag is a badge reported lost; it can only be switched on again."),
                code="badge_lost",
            )
        if (
            item.kind == CredentialKind.TAG
            and Credential.objects.filter(
                kind=CredentialKind.TAG,
                lookup=lookup,
                deactivated_at__isnull=True,
                badge__isnull=False,
                person__organization_id=person.organization_id,
            )
            .exclude(person=person)
            .exists()
        ):
            raise Conflict(
                _("This tag is someone else's badge; two people never share a badge."),
                code="badge_taken",
            )
        credential = Credential.objects.filter(
            person=person, kind=item.kind, lookup=lookup, deactivated_at__isnull=True
        ).first()
        if credential is None:
            display = person.email if item.kind == CredentialKind.PHONE else item.display
            credential = Credential.objects.create(
                person=person, kind=item.kind, lookup=lookup, display=display
            )
        KeyCredential.objects.create(
            key=key,
            credential=credential,
            lock=lock,
            kind=item.kind,
            lookup=lookup,
            device_lookup=""
            if item.kind == CredentialKind.PHONE
            else device_lookup(item.kind, raw, lock.serial),
        )
    # The person's active badges open every door they hold a key for (R48).
    for badge in Credential.objects.filter(
        person=person, kind=CredentialKind.TAG, deactivated_at__isnull=True, badge__isnull=False
    ):
        add_credential_to_key(key, badge)
    bump_version(lock.pk, [key.pk])
    kinds = sorted(item.kind for item, _raw in credentials)
    via = parent.holder_name if parent else ""
    if not summary:
        summary = _("Key issued to %(name)s (%(kinds)s)") % {
            "name": person.name,
            "kinds": ", ".join(kinds),
        }
        summary += f" · {via}" if via else ""
    record(
        EventKind.KEY_ISSUED,
        organization_id=lock.organization_id or 0,
        lock=lock,
        property_id=lock.entry.property_id if lock.entry else None,
        person=person,
        key=key,
        actor=actor,
        summary=summary,
        data={"credentials": kinds, **({"via": via} if via else {})},
    )
    return key


def add_credential_to_key(key: Key, credential: Credential) -> bool:
    """Let ``credential`` (a tag or remote of the key's holder) open the key's
    lock too, unless the key has it already or the lock has it under another
    key. The caller raises the lock's version. Returns whether it was added."""
    if KeyCredential.objects.filter(
        lock_id=key.lock_id, kind=credential.kind, lookup=credential.lookup, active=True
    ).exists():
        return False
    KeyCredential.objects.create(
        key=key,
        credential=credential,
        lock_id=key.lock_id,
        kind=credential.kind,
        lookup=credential.lookup,
        device_lookup=credential.lookup,
    )
    return True


def _managed_key(actor: User, key_id: int) -> tuple[Key, Lock]:
    """The key and its (row-locked) lock, if ``actor`` may manage the key: as a
    lock owner or manager of the lock's owner, or, for a key issued under an
    organization's key, as a manager of that organization."""
    key = (
        Key.objects.select_related("person", "holder_organization", "parent", "lock__entry")
        .filter(pk=key_id)
        .first()
    )
    if key is None:
        raise NotFound(_("Key not found."), code="key_not_found")
    # The site of the key's lock, for the lock owner's collaborators scoped to one.
    site = key.lock.entry.property_id if key.lock.entry is not None else None
    as_owner = policy.can(actor, policy.Action.MANAGE_KEYS, key.lock_owner_id, site)
    as_sharer = key.parent_id is not None and policy.can(
        actor, policy.Action.MANAGE_KEYS, key.organization_id
    )
    if not (as_owner or as_sharer):
        if policy.can(actor, policy.Action.VIEW, key.lock_owner_id, site) or (
            key.parent_id is not None and policy.can(actor, policy.Action.VIEW, key.organization_id)
        ):
            raise PermissionDenied(
                _("Only lock owners and building managers can issue or take back keys.")
            )
        raise NotFound(_("Key not found."), code="key_not_found")
    lock = (
        Lock.objects.select_for_update(of=("self",))
        .select_related("entry")
        .filter(pk=key.lock_id, organization_id=key.lock_owner_id)
        .first()
    )
    if lock is None:  # the lock changed hands: the key is history
        raise NotFound(_("Key not found."), code="key_not_found")
    return key, lock


def revoke_key(actor: User, key_id: int) -> Key:
    """Take a key back: the lock stops accepting its credentials. Taking back an
    organization's key takes back every key issued under it, at once. Always
    possible, whatever the lock's licence (R6)."""
    with transaction.atomic():
        key, lock = _managed_key(actor, key_id)
        key.refresh_from_db(fields=["revoked_at"])
        if key.revoked_at is not None:
            raise Conflict(_("This key was already taken back."), code="already_revoked")
        take_back(actor, key, lock)
    return key


def take_back(actor: User | None, key: Key, lock: Lock, *, summary: str = "") -> None:
    """Take back a live key and every key issued under it, raise the lock's
    version and record it. The caller holds the lock row and has authorized."""
    now = timezone.now()
    children = list(
        Key.objects.filter(parent=key, revoked_at__isnull=True).values_list("pk", flat=True)
    )
    ids = [key.pk, *children]
    Key.objects.filter(pk__in=ids).update(revoked_at=now, revoked_by=actor)
    KeyCredential.objects.filter(key_id__in=ids, active=True).update(active=False)
    key.revoked_at, key.revoked_by = now, actor
    bump_version(lock.pk, ids)
    if not summary:
        summary = _("Key of %(name)s taken back") % {"name": key.holder_name}
        if children:
            summary += " " + _("(and %(n)d keys issued under it)") % {"n": len(children)}
    record(
        EventKind.KEY_REVOKED,
        organization_id=lock.organization_id or 0,
        lock=lock,
        property_id=lock.entry.property_id if lock.entry else None,
        person=key.person,
        key=key,
        actor=actor,
        summary=summary,
        data={"keys_under_it": len(children)} if children else {},
    )


class _Keep:
    def __repr__(self) -> str:
        return "KEEP"


# For update_key: leave this field as it is. Read under the lock row's lock, so
# two changes of different fields at the same moment both stay.
KEEP: Any = _Keep()


def update_key(
    actor: User,
    key_id: int,
    *,
    valid_from: datetime | None,
    valid_until: datetime | None,
    schedule: Any = None,
    note: str | None = None,
) -> Key:
    """Change a live key's validity window, weekly schedule and note. Needs full
    management of the lock, like issuing (R6). ``KEEP`` for the window's ends
    or the schedule (``None`` for the note) leaves them as they are."""
    with transaction.atomic():
        key, lock = _managed_key(actor, key_id)
        # _managed_key locked the lock row: what another change wrote is read now.
        key.refresh_from_db(fields=["valid_from", "valid_until", "schedule", "note", "revoked_at"])
        valid_from = key.valid_from if valid_from is KEEP else valid_from
        valid_until = key.valid_until if valid_until is KEEP else valid_until
        validate_window(valid_from, valid_until)
        rules = schedules.normalize(key.schedule if schedule is KEEP else schedule)
        if key.revoked_at is not None:
            raise Conflict(_("This key was taken back; issue a new one."), code="already_revoked")
        if key.holder_organization_id is not None and schedule:
            raise InvalidInput(
                _("A key held by an organization has no weekly schedule."), code="invalid_schedule"
            )
        grant = authorize_issue_for_change(actor, key, lock)
        if grant.parent is not None:
            from doorkeep.keys.sharing import within_parent

            valid_from, valid_until = within_parent(grant.parent, valid_from, valid_until)
        key.valid_from, key.valid_until, key.schedule = valid_from, valid_until, rules
        if note is not None:
            key.note = note.strip()[:200]
        key.save(update_fields=["valid_from", "valid_until", "schedule", "note"])
        # The entries of the keys issued under it carry its window too.
        under = Key.objects.filter(parent=key, revoked_at__isnull=True).values_list("pk", flat=True)
        bump_version(lock.pk, [key.pk, *under])
        record(
            EventKind.KEY_UPDATED,
            organization_id=lock.organization_id or 0,
            lock=lock,
            property_id=lock.entry.property_id if lock.entry else None,
            person=key.person,
            key=key,
            actor=actor,
            summary=_("Key of %(name)s changed: %(window)s, %(schedule)s")
            % {
                "name": key.holder_name,
                "window": _window_text(valid_from, valid_until),
                "schedule": schedules.describe(rules),
            },
        )
    return key


def authorize_issue_for_change(actor: User, key: Key, lock: Lock) -> IssueGrant:
    site = lock.entry.property_id if lock.entry is not None else None
    if key.parent_id is not None and not policy.can(
        actor, policy.Action.MANAGE_KEYS, key.lock_owner_id, site
    ):
        from doorkeep.keys.sharing import authorize_under

        return authorize_under(actor, lock.pk, key.parent_id)
    licence = require_full_management(lock.pk)
    return IssueGrant(lock, licence, key.organization_id, key.parent)


def _window_text(valid_from: datetime | None, valid_until: datetime | None) -> str:
    start = f"{valid_from:%Y-%m-%d %H:%M}" if valid_from else "…"
    end = f"{valid_until:%Y-%m-%d %H:%M}" if valid_until else "…"
    return _("always") if not (valid_from or valid_until) else f"{start} – {end}"


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
    bump_version(lock.pk, ids)
    return len(ids)


def link_account(user: User) -> int:
    """Link the people with this user's (verified) email address to the account,
    so that keys issued by name and email work with the person's phone."""
    return Person.objects.filter(email=user.email.lower(), user__isnull=True).update(user=user)
