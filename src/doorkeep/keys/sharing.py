"""Shared management (R10, R11): a lock owner issues a key to an organization
registered on the platform with organization management; that organization's
managers then issue and take back keys for their own people on that lock,
within the window the owner granted, while the lock's option "issue keys to
organizations" is active."""

from __future__ import annotations

from datetime import datetime

from django.db import IntegrityError, transaction
from django.db.models import Count, F, Q, QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _

from doorkeep import policy
from doorkeep.accounts.models import Organization, User
from doorkeep.core.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from doorkeep.events.models import EventKind
from doorkeep.events.services import record
from doorkeep.keys.models import Key, KeyStatus
from doorkeep.keys.services import IssueGrant, _locked_lock, validate_window
from doorkeep.licensing.state import (
    LicenceState,
    require_full_management,
    require_key_available,
)
from doorkeep.locks.models import Lock


class SharingInactive(PermissionDenied):
    code = "shared_management_inactive"


def _require_option(licence: LicenceState) -> None:
    if not licence.option_active:
        raise SharingInactive(
            _(
                "Issuing keys to organizations needs the option for this lock, which works only "
                "during 5-year management. Ask the lock owner to enter the option's prepaid code."
            )
        )


def registered_organizations(q: str = "") -> QuerySet[Organization]:
    """Organizations that may receive keys: those with organization management."""
    orgs = Organization.objects.filter(
        organization_management_since__isnull=False, is_platform=False
    )
    if q.strip():
        orgs = orgs.filter(name__icontains=q.strip())
    return orgs.order_by("name")


def issue_key_to_organization(
    actor: User,
    lock_id: int,
    organization_id: int,
    *,
    valid_from: datetime | None = None,
    valid_until: datetime | None = None,
    note: str = "",
) -> Key:
    validate_window(valid_from, valid_until)
    try:
        with transaction.atomic():
            lock = _locked_lock(actor, lock_id, policy.Action.MANAGE_KEYS)
            licence = require_full_management(lock.pk)
            _require_option(licence)
            org = registered_organizations().filter(pk=organization_id).first()
            if org is None:
                raise NotFound(
                    _("No organization with organization management has that id."),
                    code="organization_not_found",
                )
            if org.pk == lock.organization_id:
                raise InvalidInput(
                    _("This lock is already yours to manage."), code="own_organization"
                )
            if Key.objects.filter(
                lock=lock, holder_organization=org, revoked_at__isnull=True
            ).exists():
                raise Conflict(
                    _("%(org)s already has a key on this lock.") % {"org": org.name},
                    code="key_exists",
                )
            require_key_available(licence)
            key = Key.objects.create(
                lock=lock,
                organization_id=lock.organization_id or 0,
                lock_owner_id=lock.organization_id or 0,
                holder_organization=org,
                valid_from=valid_from,
                valid_until=valid_until,
                note=note.strip()[:200],
                issued_by=actor,
            )
            record(
                EventKind.KEY_ISSUED,
                organization_id=lock.organization_id or 0,
                lock=lock,
                property_id=lock.entry.property_id if lock.entry else None,
                key=key,
                actor=actor,
                summary=_("Key issued to the organization %(org)s for shared management")
                % {"org": org.name},
                data={"holder_organization": org.pk},
            )
    except IntegrityError:
        raise Conflict(
            _("Someone changed this lock's keys at the same moment; please try again."),
            code="concurrent_change",
        ) from None
    return key


def authorize_under(actor: User, lock_id: int, parent_key_id: int) -> IssueGrant:
    """May ``actor`` issue or change keys on ``lock_id`` under the organization
    key ``parent_key_id``?"""
    parent = (
        Key.objects.select_related("holder_organization")
        .filter(pk=parent_key_id, lock_id=lock_id, holder_organization__isnull=False)
        .first()
    )
    if parent is None or not policy.can(actor, policy.Action.VIEW, parent.holder_organization_id):
        raise NotFound(_("Key not found."), code="key_not_found")
    policy.require(actor, policy.Action.MANAGE_KEYS, parent.holder_organization_id, what=_("Key"))
    lock = (
        Lock.objects.select_for_update(of=("self",))
        .select_related("entry")
        .filter(pk=lock_id, organization_id=parent.lock_owner_id)
        .first()
    )
    if lock is None or parent.revoked_at is not None:
        raise Conflict(
            _("The lock owner has taken back your organization's key to this lock."),
            code="shared_key_revoked",
        )
    status = parent.status_at(timezone.now())
    if status != KeyStatus.ACTIVE:
        raise Conflict(
            _("Your organization's key to this lock is not valid now (%(status)s).")
            % {"status": status.label},
            code="shared_key_not_valid",
        )
    assert parent.holder_organization is not None
    if parent.holder_organization.organization_management_since is None:
        raise PermissionDenied(
            _("Your organization needs organization management to manage shared keys."),
            code="needs_organization_management",
        )
    licence = require_full_management(lock.pk)
    _require_option(licence)
    return IssueGrant(lock, licence, parent.holder_organization_id or 0, parent)


def within_parent(
    parent: Key, valid_from: datetime | None, valid_until: datetime | None
) -> tuple[datetime | None, datetime | None]:
    """A key issued under an organization's key lies inside its window: an open
    end takes the parent's; a wider one is refused."""
    start = valid_from or parent.valid_from
    end = valid_until or parent.valid_until
    if parent.valid_from and start and start < parent.valid_from:
        raise InvalidInput(
            _("The key cannot start before %(date)s, when your organization's key starts.")
            % {"date": f"{parent.valid_from:%Y-%m-%d %H:%M}"},
            code="outside_shared_window",
        )
    if parent.valid_until and end and end > parent.valid_until:
        raise InvalidInput(
            _("The key cannot end after %(date)s, when your organization's key ends.")
            % {"date": f"{parent.valid_until:%Y-%m-%d %H:%M}"},
            code="outside_shared_window",
        )
    return start, end


def shared_with(user: User) -> QuerySet[Key]:
    """Live organization keys held by organizations the user belongs to."""
    return (
        Key.objects.filter(
            holder_organization__in=policy.organizations(user),
            revoked_at__isnull=True,
            lock__organization_id=F("lock_owner_id"),
        )
        .select_related(
            "lock", "lock__entry", "lock__entry__property", "holder_organization", "lock_owner"
        )
        .annotate(live_children=Count("children", filter=Q(children__revoked_at__isnull=True)))
        .order_by("lock__name", "id")
    )


def get_shared_key(actor: User, key_id: int) -> Key:
    """An organization key, for a member of the organization that holds it."""
    key = (
        Key.objects.select_related(
            "lock", "lock__entry", "lock__entry__property", "holder_organization", "lock_owner"
        )
        .filter(pk=key_id, holder_organization__isnull=False)
        .first()
    )
    if key is None or not policy.can(actor, policy.Action.VIEW, key.holder_organization_id):
        raise NotFound(_("Key not found."), code="key_not_found")
    return key
