"""Guest policy and invitations: the verbs (R20-R23, R28, E5).

A resident is someone with a live key of their own (not a guest key) on a
lock at an entry of the property. Residents invite by email to the entries
they can open themselves, as far as the property's guest policy allows.
Accepting writes phone keys for the guest on those entries' locks (through
keys.services.create_key, so the locks learn it like any other key); revoking
takes them back at once."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.core import signing
from django.core.exceptions import ValidationError
from django.core.mail import EmailMultiAlternatives
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.db.models import F, Q, QuerySet
from django.template.loader import render_to_string
from django.utils import timezone
from django.utils.translation import gettext as _

from doorkeep import policy
from doorkeep.accounts.models import User
from doorkeep.core.errors import Conflict, DomainError, InvalidInput, NotFound, PermissionDenied
from doorkeep.events.models import EventKind
from doorkeep.events.services import record
from doorkeep.guests import hooks
from doorkeep.guests.models import GuestKey, GuestPolicy, Invitation, InvitationStatus
from doorkeep.keys import services as key_services
from doorkeep.keys.credentials import presented
from doorkeep.keys.models import CredentialKind, Key, Person
from doorkeep.licensing.state import ManagementEnded, NoKeysAvailable, require_full_management
from doorkeep.licensing.upgrades import require_building_management
from doorkeep.locks.models import Lock
from doorkeep.properties.models import Entry, Property

_TOKEN_SALT = "doorkeep.guests.invitation"  # noqa: S105 (a namespace, not a secret)


class LinkUnusable(DomainError):
    """An invitation link that no longer works (HTTP 410 Gone), with the reason."""

    status = 410
    code = "invitation_unusable"


# --- who is a resident -----------------------------------------------------


def _own_keys(user: User) -> QuerySet[Key]:
    """The user's live keys that are not guest keys, on registered locks."""
    return Key.objects.filter(
        person__user=user,
        revoked_at__isnull=True,
        lock__organization__isnull=False,
        lock_owner_id=F("lock__organization_id"),
        guest_links__isnull=True,
    ).filter(Q(valid_until__isnull=True) | Q(valid_until__gt=timezone.now()))


def resident_entry_ids(user: User, property_id: int) -> set[int]:
    """Entries of the property the user can open with a key of their own."""
    return set(
        _own_keys(user)
        .filter(lock__entry__property_id=property_id)
        .values_list("lock__entry_id", flat=True)
    )


def resident_properties(user: User) -> list[Property]:
    """Properties where the user is a resident."""
    ids = _own_keys(user).values_list("lock__entry__property_id", flat=True)
    return list(Property.objects.filter(pk__in=ids).order_by("name", "id"))


def is_guest_at(user: User, property_id: int) -> bool:
    return Invitation.objects.filter(
        guest=user, property_id=property_id, status=InvitationStatus.ACCEPTED
    ).exists()


def _property_for_resident(actor: User, property_id: int) -> tuple[Property, set[int]]:
    prop = Property.objects.filter(pk=property_id).first()
    entries = resident_entry_ids(actor, property_id) if prop else set()
    if prop is not None and not entries and is_guest_at(actor, prop.pk):
        raise PermissionDenied(_("Guests cannot invite others."), code="not_a_resident")
    if prop is None or (
        not entries and not policy.can(actor, policy.Action.VIEW, prop.organization_id, prop.pk)
    ):
        raise NotFound(_("Property not found."))
    if not entries:
        raise PermissionDenied(
            _("Only residents, people with a key of their own here, can invite guests."),
            code="not_a_resident",
        )
    return prop, entries


# --- the policy ------------------------------------------------------------


def policy_of(property_id: int) -> GuestPolicy:
    """The property's policy; an unsaved default (sharing off) when none was set."""
    found = GuestPolicy.objects.filter(property_id=property_id).first()
    return found or GuestPolicy(property_id=property_id)


def shareable_entry_ids(rules: GuestPolicy) -> set[int]:
    if rules.pk is None or not rules.sharing_enabled:
        return set()
    return set(rules.shareable_entries.values_list("pk", flat=True))


@dataclass
class PolicySpec:
    sharing_enabled: bool
    shareable_entry_ids: list[int]
    max_guests_per_resident: int = 5
    require_presence: bool = False
    reverify_after_days: int | None = None
    require_tag: bool = False  # presence only with an NTAG 424 DNA tag, no typed codes


def set_policy(actor: User, property_id: int, spec: PolicySpec) -> GuestPolicy:
    """The building manager's guest policy for a property (R27, R28)."""
    prop = Property.objects.filter(pk=property_id).first()
    if prop is None:
        raise NotFound(_("Property not found."))
    policy.require(
        actor,
        policy.Action.MANAGE_PROPERTIES,
        prop.organization_id,
        what=_("Property"),
        property_id=prop.pk,
    )
    if not 1 <= spec.max_guests_per_resident <= 100:
        raise InvalidInput(
            _("The most guests per resident must be between 1 and 100."), code="invalid_policy"
        )
    if spec.reverify_after_days is not None and not 1 <= spec.reverify_after_days <= 365:
        raise InvalidInput(
            _("Verification after inactivity must be between 1 and 365 days, or never."),
            code="invalid_policy",
        )
    if spec.sharing_enabled:  # switching sharing off needs no upgrade
        require_building_management(
            prop.organization_id, _("Letting residents share entries with guests")
        )
    wanted = set(spec.shareable_entry_ids)
    known = set(Entry.objects.filter(property=prop, pk__in=wanted).values_list("pk", flat=True))
    if wanted - known:
        raise InvalidInput(
            _("Entry %(id)s is not an entry of this property.") % {"id": min(wanted - known)},
            code="unknown_entry",
        )
    with transaction.atomic():
        rules, _created = GuestPolicy.objects.select_for_update().get_or_create(property=prop)
        rules.sharing_enabled = spec.sharing_enabled
        rules.max_guests_per_resident = spec.max_guests_per_resident
        rules.require_presence = spec.require_presence
        rules.reverify_after_days = spec.reverify_after_days
        rules.require_tag = spec.require_tag
        rules.updated_at, rules.updated_by = timezone.now(), actor
        rules.save()
        rules.shareable_entries.set(known)
        record(
            EventKind.GUEST_POLICY_CHANGED,
            organization_id=prop.organization_id,
            property_id=prop.pk,
            actor=actor,
            summary=_("Guest policy: sharing %(state)s, %(n)d entries, presence %(presence)s")
            % {
                "state": _("on") if spec.sharing_enabled else _("off"),
                "n": len(known),
                "presence": _("required") if spec.require_presence else _("not required"),
            },
            data={
                "sharing_enabled": spec.sharing_enabled,
                "entries": sorted(known),
                "max_guests_per_resident": spec.max_guests_per_resident,
                "require_presence": spec.require_presence,
                "reverify_after_days": spec.reverify_after_days,
                "require_tag": spec.require_tag,
            },
        )
    return rules


# --- invitations -------------------------------------------------------------


def make_token(invitation: Invitation) -> str:
    return signing.dumps([invitation.pk, invitation.nonce], salt=_TOKEN_SALT, compress=False)


def accept_url(invitation: Invitation) -> str:
    return f"{settings.SITE_URL}/invitations/{make_token(invitation)}/"


def _link_days() -> int:
    return int(settings.DOORKEEP["INVITATION_LINK_DAYS"])


def _inviter_name(invitation: Invitation) -> str:
    return invitation.inviter.name or invitation.inviter.email


def _send_invitation(invitation: Invitation) -> bool:
    """Email the invitation (R21). False when the mail server refused it; the
    invitation stands and can be resent."""
    context = {
        "invitation": invitation,
        "inviter": _inviter_name(invitation),
        "entries": list(invitation.entries.all()),
        "accept_url": accept_url(invitation),
        "site_url": settings.SITE_URL,
    }
    subject = _("%(name)s added you as an auto-verified guest") % {"name": context["inviter"]}
    message = EmailMultiAlternatives(
        subject=subject,
        body=render_to_string("guests/email/invitation.txt", context),
        to=[invitation.email],
    )
    message.attach_alternative(
        render_to_string("guests/email/invitation.html", context), "text/html"
    )
    try:
        message.send()
    except (OSError, ValueError) as exc:  # smtplib errors are OSErrors
        import logging

        logging.getLogger(__name__).warning("invitation %s not sent: %s", invitation.pk, exc)
        return False
    return True


def _live_guests(inviter: User, property_id: int, now: datetime) -> set[str]:
    rows = Invitation.objects.filter(
        inviter=inviter,
        property_id=property_id,
        status__in=(InvitationStatus.SENT, InvitationStatus.ACCEPTED),
    )
    return {
        inv.email
        for inv in rows
        if inv.state_at(now) in (InvitationStatus.SENT, InvitationStatus.ACCEPTED)
    }


def _sharing_policy(prop: Property) -> GuestPolicy:
    rules = policy_of(prop.pk)
    if not rules.sharing_enabled:
        raise PermissionDenied(
            _("The building manager of %(property)s does not allow sharing entries with guests.")
            % {"property": prop.name},
            code="sharing_disabled",
        )
    return rules


def _check_room(actor: User, prop: Property, address: str, now: datetime) -> None:
    """Sharing still allowed, not invited already, and under the most guests."""
    rules = _sharing_policy(prop)
    guests = _live_guests(actor, prop.pk, now)
    if address in guests:
        raise Conflict(
            _(
                "You already invited %(email)s here. Resend that invitation, or revoke it "
                "and invite again to change it."
            )
            % {"email": address},
            code="already_invited",
        )
    if len(guests) >= rules.max_guests_per_resident:
        raise Conflict(
            _(
                "You already have %(n)d guests at %(property)s, the most the building "
                "manager allows. Revoke an invitation first."
            )
            % {"n": len(guests), "property": prop.name},
            code="too_many_guests",
        )


@dataclass
class Sent:
    invitation: Invitation
    emailed: bool


def invite(
    actor: User,
    property_id: int,
    email: str,
    entry_ids: list[int],
    *,
    ends_at: datetime | None = None,
) -> Sent:
    """Invite ``email`` as an auto-verified guest to entries of a property (R20)."""
    prop, own = _property_for_resident(actor, property_id)
    rules = _sharing_policy(prop)
    address = email.strip().lower()
    try:
        validate_email(address)
    except ValidationError:
        raise InvalidInput(
            _("%(email)s is not an email address.") % {"email": email.strip() or '""'},
            code="invalid_email",
        ) from None
    if address == actor.email.lower():
        raise InvalidInput(_("You cannot invite yourself."), code="invalid_email")
    wanted = set(entry_ids)
    if not wanted:
        raise InvalidInput(_("Choose at least one entry to share."), code="entries_required")
    entries = {e.pk: e for e in Entry.objects.filter(property=prop, pk__in=wanted)}
    if wanted - set(entries):
        raise InvalidInput(
            _("Entry %(id)s is not an entry of %(property)s.")
            % {"id": min(wanted - set(entries)), "property": prop.name},
            code="unknown_entry",
        )
    shareable = shareable_entry_ids(rules)
    for pk in sorted(wanted):
        if pk not in shareable:
            raise PermissionDenied(
                _("%(entry)s cannot be shared: the building manager has not allowed it.")
                % {"entry": entries[pk].name},
                code="entry_not_shareable",
            )
        if pk not in own:
            raise PermissionDenied(
                _("You can only share entries you can open yourself; %(entry)s is not one.")
                % {"entry": entries[pk].name},
                code="no_access_to_entry",
            )
    now = timezone.now()
    if ends_at is not None:
        if timezone.is_naive(ends_at):
            raise InvalidInput(_("Dates must include a time zone."), code="invalid_end")
        if ends_at <= now:
            raise InvalidInput(_("The end date must be in the future."), code="invalid_end")
        if ends_at > now + timedelta(days=36500):
            raise InvalidInput(
                _("The end date must be within a hundred years; leave it empty for no end."),
                code="invalid_end",
            )
    with transaction.atomic():
        # One invitation at a time per resident: hold the resident's row.
        User.objects.select_for_update().filter(pk=actor.pk).first()
        _check_room(actor, prop, address, now)
        invitation = Invitation.objects.create(
            property=prop,
            inviter=actor,
            email=address,
            ends_at=ends_at,
            nonce=secrets.token_hex(16),
            link_expires_at=now + timedelta(days=_link_days()),
            sent_at=now,
        )
        invitation.entries.set(entries.values())
        record(
            EventKind.INVITATION_SENT,
            organization_id=prop.organization_id,
            property_id=prop.pk,
            actor=actor,
            summary=_("%(inviter)s invited %(email)s to %(entries)s")
            % {
                "inviter": _inviter_name(invitation),
                "email": address,
                "entries": ", ".join(sorted(e.name for e in entries.values())),
            },
            data={"invitation_id": invitation.pk},
        )
        hooks.changed(invitation, "invitation.sent")
    return Sent(invitation, _send_invitation(invitation))


def _inviters_invitation(actor: User, invitation_id: int, *, for_update: bool) -> Invitation:
    rows = Invitation.objects.select_related("property", "inviter")
    if for_update:
        rows = rows.select_for_update(of=("self",))
    invitation = rows.filter(pk=invitation_id).first()
    if invitation is None:
        raise NotFound(_("Invitation not found."))
    if invitation.inviter_id == actor.pk:
        return invitation
    org, site = invitation.property.organization_id, invitation.property_id
    if policy.can(actor, policy.Action.MANAGE_PROPERTIES, org, site):
        return invitation
    if policy.can(actor, policy.Action.VIEW, org, site):
        raise PermissionDenied(
            _("Only the resident who sent an invitation and building managers can change it.")
        )
    raise NotFound(_("Invitation not found."))


def resend(actor: User, invitation_id: int) -> Sent:
    """Send the invitation again with a new link (the old one stops working)."""
    with transaction.atomic():
        invitation = _inviters_invitation(actor, invitation_id, for_update=True)
        if invitation.inviter_id != actor.pk:
            raise PermissionDenied(_("Only the resident who sent an invitation can resend it."))
        if invitation.status != InvitationStatus.SENT:
            raise Conflict(
                _("This invitation was %(state)s; it cannot be sent again.")
                % {"state": invitation.state_label.lower()},
                code="not_pending",
            )
        now = timezone.now()
        if invitation.state_at(now) == InvitationStatus.EXPIRED:
            # A lapsed invitation stopped counting; sending it again counts it anew.
            _check_room(actor, invitation.property, invitation.email, now)
        invitation.nonce = secrets.token_hex(16)
        invitation.link_expires_at = now + timedelta(days=_link_days())
        invitation.sent_at = now
        invitation.times_sent += 1
        invitation.save(update_fields=["nonce", "link_expires_at", "sent_at", "times_sent"])
    return Sent(invitation, _send_invitation(invitation))


def _release_keys(actor: User | None, invitation: Invitation) -> int:
    """Take back the invitation's guest keys that no other accepted invitation
    still needs; shorten the others to what remains. Returns keys taken back."""
    taken = 0
    now = timezone.now()
    links = GuestKey.objects.filter(invitation=invitation).select_related("key")
    for link in links.order_by("key__lock_id", "key_id"):  # lock rows in one order
        key = link.key
        if key.revoked_at is not None:
            continue
        lock = (
            Lock.objects.select_for_update(of=("self",)).select_related("entry").get(pk=key.lock_id)
        )
        others = [
            inv
            for inv in Invitation.objects.filter(
                guest_keys__key=key, status=InvitationStatus.ACCEPTED
            ).exclude(pk=invitation.pk)
            if inv.state_at(now) == InvitationStatus.ACCEPTED
        ]
        if not others:
            key_services.take_back(
                actor,
                key,
                lock,
                summary=_("Guest key of %(name)s taken back (invitation ended)")
                % {"name": key.holder_name},
            )
            taken += 1
        else:
            _set_end(
                key,
                None
                if any(o.ends_at is None for o in others)
                else max(o.ends_at for o in others if o.ends_at),
            )
    return taken


def _set_end(key: Key, ends_at: datetime | None) -> None:
    if key.valid_until != ends_at:
        Key.objects.filter(pk=key.pk).update(valid_until=ends_at)
        key_services.bump_version(key.lock_id, [key.pk])


def revoke(actor: User, invitation_id: int) -> Invitation:
    """Withdraw an invitation, sent or accepted; its guest keys are taken back
    at once (the locks learn it like any key taken back)."""
    with transaction.atomic():
        invitation = _inviters_invitation(actor, invitation_id, for_update=True)
        if invitation.status not in (InvitationStatus.SENT, InvitationStatus.ACCEPTED):
            raise Conflict(
                _("This invitation was already %(state)s.")
                % {"state": invitation.state_label.lower()},
                code="not_live",
            )
        invitation.status = InvitationStatus.REVOKED
        invitation.revoked_at = timezone.now()
        invitation.nonce = ""
        invitation.save(update_fields=["status", "revoked_at", "nonce"])
        taken = _release_keys(actor, invitation)
        record(
            EventKind.INVITATION_REVOKED,
            organization_id=invitation.property.organization_id,
            property_id=invitation.property_id,
            actor=actor,
            summary=_("Invitation of %(email)s revoked") % {"email": invitation.email},
            data={"invitation_id": invitation.pk, "keys_taken_back": taken},
        )
        hooks.changed(invitation, "invitation.revoked")
    return invitation


# --- the guest's side --------------------------------------------------------


def read_token(token: str) -> Invitation:
    """The invitation a link points at, if the link still works. Raises NotFound
    for a link that was never valid, LinkUnusable (410) with the reason for one
    that was used, withdrawn or has expired."""
    try:
        pk, nonce = signing.loads(token, salt=_TOKEN_SALT, max_age=timedelta(days=_link_days()))
    except signing.SignatureExpired:
        raise LinkUnusable(
            _("This invitation link has expired. Ask the person who invited you to resend it."),
            code="invitation_expired",
        ) from None
    except (signing.BadSignature, ValueError, TypeError):
        raise NotFound(
            _("This invitation link is not valid. Check that it was copied whole.")
        ) from None
    invitation = (
        Invitation.objects.select_related("property", "inviter").filter(pk=pk).first()
        if isinstance(pk, int)
        else None
    )
    if invitation is None:
        raise NotFound(_("This invitation link is not valid. Check that it was copied whole."))
    unusable(invitation, nonce)
    return invitation


def unusable(invitation: Invitation, nonce: str | None) -> None:
    """Raise LinkUnusable when the invitation can no longer be answered."""
    state = invitation.state
    name = _inviter_name(invitation)
    if state == InvitationStatus.ACCEPTED:
        raise LinkUnusable(
            _("This invitation was already accepted. Open Guest Key to use the shared entries."),
            code="invitation_used",
        )
    if state == InvitationStatus.DECLINED:
        raise LinkUnusable(_("This invitation was declined."), code="invitation_used")
    if state == InvitationStatus.REVOKED:
        raise LinkUnusable(
            _("%(name)s withdrew this invitation.") % {"name": name}, code="invitation_revoked"
        )
    if state == InvitationStatus.EXPIRED:
        raise LinkUnusable(
            _("This invitation has expired. Ask %(name)s to resend it.") % {"name": name},
            code="invitation_expired",
        )
    if nonce is not None and not secrets.compare_digest(nonce, invitation.nonce):
        raise LinkUnusable(
            _("This link was replaced by a newer one. Use the latest email from %(name)s.")
            % {"name": name},
            code="invitation_link_replaced",
        )


def address_verified(user: User, email: str) -> bool:
    from allauth.account.models import EmailAddress

    return bool(EmailAddress.objects.filter(user=user, email__iexact=email, verified=True).exists())


def check_account(user: User, invitation: Invitation) -> None:
    """R22: only the account with exactly the invited (verified) address."""
    if user.email.lower() != invitation.email or not address_verified(user, invitation.email):
        raise PermissionDenied(
            _(
                "This invitation is for %(invited)s, and you are signed in as %(you)s. Sign in "
                "with %(invited)s (or create an account with it), or ask %(name)s to invite "
                "%(you)s instead."
            )
            % {"invited": invitation.email, "you": user.email, "name": _inviter_name(invitation)},
            code="wrong_account",
        )


def _answerable(user: User, invitation_id: int, nonce: str | None) -> Invitation:
    invitation = (
        Invitation.objects.select_for_update(of=("self",))
        .select_related("property", "inviter")
        .filter(pk=invitation_id)
        .first()
    )
    if invitation is None or (nonce is None and invitation.email != user.email.lower()):
        raise NotFound(_("Invitation not found."))
    check_account(user, invitation)
    unusable(invitation, nonce)
    return invitation


def _guest_person(organization_id: int, user: User) -> Person:
    """The guest's Person in the lock owner's organization: the one linked to
    their account, else an unlinked one with their address (now linked), else
    a new one. Never someone else's (an address can change hands)."""
    people = Person.objects.filter(organization_id=organization_id)
    person = people.filter(user=user).order_by("pk").first()
    if person is not None:
        return person
    email = user.email.lower()
    person = people.filter(email=email, user__isnull=True).first()
    if person is not None:
        Person.objects.filter(pk=person.pk).update(user=user)
        person.user = user
        return person
    taken = people.filter(email=email).exists()  # linked to another account
    return Person.objects.create(
        organization_id=organization_id,
        name=user.name or user.email,
        email="" if taken else email,
        user=user,
    )


def _unavailable(invitation: Invitation, lock: Lock, exc: DomainError) -> Conflict:
    return Conflict(
        _(
            "%(entry)s cannot take a guest right now (%(reason)s). Nothing was changed; "
            "ask %(name)s to check with the building manager."
        )
        % {
            "entry": lock.entry.name if lock.entry else lock.serial,
            "reason": exc.message.rstrip("."),
            "name": _inviter_name(invitation),
        },
        code="entry_unavailable",
    )


def _grant(invitation: Invitation, user: User, entries: list[Entry]) -> int:
    """Phone keys for the guest on the entries' locks. Returns keys written."""
    written = 0
    phone = presented(CredentialKind.PHONE, "")
    note = _("Guest of %(name)s") % {"name": _inviter_name(invitation)}
    locks = (
        Lock.objects.select_for_update(of=("self",))
        .select_related("entry")
        .filter(entry__in=entries, organization__isnull=False)
        .order_by("pk")
    )
    for lock in locks:
        person = _guest_person(lock.organization_id or 0, user)
        existing = Key.objects.filter(lock=lock, person=person, revoked_at__isnull=True).first()
        if existing is not None:
            if existing.guest_links.exists():  # a guest key of another invitation: share it
                try:
                    require_full_management(lock.pk)
                except ManagementEnded as exc:
                    raise _unavailable(invitation, lock, exc) from None
                GuestKey.objects.create(invitation=invitation, key=existing)
                end = existing.valid_until
                if end is not None:
                    _set_end(
                        existing,
                        None if invitation.ends_at is None else max(end, invitation.ends_at),
                    )
            continue  # a key of their own opens it already
        try:
            licence = require_full_management(lock.pk)
            key = key_services.create_key(
                invitation.inviter,
                lock,
                person,
                licence=licence,
                organization_id=lock.organization_id or 0,
                credentials=[(phone, "")],
                valid_until=invitation.ends_at,
                note=note,
                summary=_("Guest key for %(guest)s, shared by %(name)s")
                % {"guest": person.name, "name": _inviter_name(invitation)},
            )
        except (ManagementEnded, NoKeysAvailable, Conflict) as exc:
            raise _unavailable(invitation, lock, exc) from None
        GuestKey.objects.create(invitation=invitation, key=key)
        written += 1
    return written


def accept(user: User, invitation_id: int, *, nonce: str | None = None) -> Invitation:
    """R22/R23: the invited account accepts; the guest can use the shared
    entries at once. All or nothing."""
    try:
        with transaction.atomic():
            invitation = _answerable(user, invitation_id, nonce)
            rules = policy_of(invitation.property_id)
            if not rules.sharing_enabled:
                raise Conflict(
                    _(
                        "%(property)s no longer allows sharing entries with guests, so this "
                        "invitation cannot be accepted."
                    )
                    % {"property": invitation.property.name},
                    code="sharing_disabled",
                )
            allowed = shareable_entry_ids(rules) & resident_entry_ids(
                invitation.inviter, invitation.property_id
            )
            entries = [e for e in invitation.entries.all() if e.pk in allowed]
            if not entries:
                raise Conflict(
                    _(
                        "None of the entries in this invitation can be shared any more. Ask "
                        "%(name)s for a new invitation."
                    )
                    % {"name": _inviter_name(invitation)},
                    code="nothing_to_share",
                )
            if len(entries) < invitation.entries.count():
                invitation.entries.set(entries)  # what the guest really gets
            written = _grant(invitation, user, entries)
            invitation.status = InvitationStatus.ACCEPTED
            invitation.guest = user
            invitation.answered_at = timezone.now()
            invitation.nonce = ""
            invitation.save(update_fields=["status", "guest", "answered_at", "nonce"])
            record(
                EventKind.INVITATION_ACCEPTED,
                organization_id=invitation.property.organization_id,
                property_id=invitation.property_id,
                actor=user,
                summary=_("%(email)s accepted the invitation of %(name)s")
                % {"email": invitation.email, "name": _inviter_name(invitation)},
                data={"invitation_id": invitation.pk, "keys": written},
            )
            hooks.answered(invitation, accepted=True)
    except IntegrityError:
        raise Conflict(
            _("Someone changed these locks at the same moment; please try again."),
            code="concurrent_change",
        ) from None
    return invitation


def decline(user: User, invitation_id: int, *, nonce: str | None = None) -> Invitation:
    with transaction.atomic():
        invitation = _answerable(user, invitation_id, nonce)
        invitation.status = InvitationStatus.DECLINED
        invitation.guest = user
        invitation.answered_at = timezone.now()
        invitation.nonce = ""
        invitation.save(update_fields=["status", "guest", "answered_at", "nonce"])
        record(
            EventKind.INVITATION_DECLINED,
            organization_id=invitation.property.organization_id,
            property_id=invitation.property_id,
            actor=user,
            summary=_("%(email)s declined the invitation of %(name)s")
            % {"email": invitation.email, "name": _inviter_name(invitation)},
            data={"invitation_id": invitation.pk},
        )
        hooks.answered(invitation, accepted=False)
    return invitation


def leave(user: User, invitation_id: int) -> Invitation:
    """The guest gives the shared access back (counts as declined afterwards)."""
    with transaction.atomic():
        invitation = (
            Invitation.objects.select_for_update(of=("self",))
            .select_related("property", "inviter")
            .filter(pk=invitation_id, guest=user, status=InvitationStatus.ACCEPTED)
            .first()
        )
        if invitation is None:
            raise NotFound(_("Invitation not found."))
        invitation.status = InvitationStatus.DECLINED
        invitation.save(update_fields=["status"])
        _release_keys(user, invitation)
        record(
            EventKind.INVITATION_DECLINED,
            organization_id=invitation.property.organization_id,
            property_id=invitation.property_id,
            actor=user,
            summary=_("%(email)s gave back the access shared by %(name)s")
            % {"email": invitation.email, "name": _inviter_name(invitation)},
            data={"invitation_id": invitation.pk},
        )
        hooks.answered(invitation, accepted=False)
    return invitation


def report_expired(now: datetime | None = None) -> int:
    """E5: tell residents (and webhooks) once about each invitation that
    expired: a link nobody answered, or an accepted one whose end passed.
    Run by ``doorkeep serve`` with the hourly round."""
    now = now or timezone.now()
    due = Invitation.objects.filter(expiry_reported_at__isnull=True).filter(
        Q(status=InvitationStatus.SENT, link_expires_at__lte=now)
        | Q(status=InvitationStatus.ACCEPTED, ends_at__lte=now)
    )
    reported = 0
    for pk in list(due.values_list("pk", flat=True)[:500]):
        with transaction.atomic():
            invitation = (
                Invitation.objects.select_for_update(of=("self",))
                .select_related("property", "inviter")
                .filter(pk=pk, expiry_reported_at__isnull=True)
                .first()
            )
            if invitation is None or invitation.state_at(now) != InvitationStatus.EXPIRED:
                continue
            invitation.expiry_reported_at = now
            invitation.save(update_fields=["expiry_reported_at"])
            if invitation.status == InvitationStatus.ACCEPTED:
                _release_keys(None, invitation)  # frees the lock's key and user place
            hooks.expired(invitation)
            reported += 1
    return reported


def end_shares_of(sender: object, instance: User, **kwargs: object) -> None:
    """An account being deleted (the admin): the guest keys it shared are
    taken back first, so that none outlives its invitation as an ordinary key."""
    live = Invitation.objects.filter(
        inviter=instance, status__in=(InvitationStatus.SENT, InvitationStatus.ACCEPTED)
    ).select_related("property")
    for invitation in live:
        with transaction.atomic():
            _release_keys(None, invitation)
