"""Collaborators (R41): extra logins an owner gives to other people, for
example the staff of a property agency.

- Only a lock owner of the organization invites, lists, revokes and ends
  access (policy action MANAGE_COLLABORATORS).
- An invitation is for one email address, one site or every site, a role
  (read only, or manager) and an optional end. Its link works for 7 days and
  accepts once, by the account with exactly that (confirmed) address.
- Accepting makes the person's membership of the organization, scoped to
  the site if the invitation was; the policy does the rest
  (docs/decisions/0012-collaborators-scoped-to-a-site.md).
- Ending access deletes the membership and ends the person's sessions.

Every step is an event in the organization's log."""

from __future__ import annotations

import logging
import secrets
import zoneinfo
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from django.conf import settings
from django.core.mail import send_mail
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from doorkeep import policy
from doorkeep.accounts.models import ApiToken, Membership, Organization, Role, User
from doorkeep.collaborators.models import (
    LINK_DAYS,
    CollaboratorInvitation,
    CollaboratorRole,
    InvitationStatus,
)
from doorkeep.core.errors import (
    Conflict,
    DomainError,
    InvalidInput,
    NotFound,
    PermissionDenied,
)
from doorkeep.events.models import EventKind
from doorkeep.events.services import record
from doorkeep.licensing.upgrades import require_building_management
from doorkeep.properties.models import Property, zone_of

log = logging.getLogger(__name__)

S = InvitationStatus
# Roles whose access is not ended from the collaborators' page.
_NOT_COLLABORATORS = (Role.LOCK_OWNER, Role.PLATFORM_OPERATOR)


class LinkUnusable(DomainError):
    """An invitation link that no longer works (HTTP 410 Gone), with the reason."""

    status = 410
    code = "invitation_unusable"


# --- reading -----------------------------------------------------------------------


def _require_owner(actor: User, organization_id: int) -> Organization:
    policy.require(
        actor, policy.Action.MANAGE_COLLABORATORS, organization_id, what=_("Organization")
    )
    return Organization.objects.get(pk=organization_id)


def zone_for(organization_id: int, prop: Property | None = None) -> zoneinfo.ZoneInfo:
    """The time zone an access's end is read and shown in: the site's, or for
    every site the organization's first property's (UTC without one)."""
    if prop is None:
        prop = Property.objects.filter(organization_id=organization_id).order_by("pk").first()
    return zone_of(prop)


def end_of_day(day: date, tz: zoneinfo.ZoneInfo) -> datetime:
    """The moment an access whose last day is ``day`` (in ``tz``) ends."""
    return datetime.combine(day + timedelta(days=1), time.min, tzinfo=tz)


def role_label(role: str) -> str:
    try:
        return str(CollaboratorRole(role).label)
    except ValueError:
        return str(Role(role).label) if role in Role.values else role


def site_label(prop: Property | None) -> str:
    return prop.name if prop is not None else _("every site")


def collaborators(actor: User, organization_id: int) -> list[Membership]:
    """The people with access to the organization other than its lock owners:
    its collaborators (invited or added), with their role, site and end."""
    _require_owner(actor, organization_id)
    return list(
        Membership.objects.filter(organization_id=organization_id)
        .exclude(role__in=_NOT_COLLABORATORS)
        .select_related("user", "property", "invited_by")
        .order_by("user__email", "pk")
    )


def invitations(
    actor: User, organization_id: int, *, limit: int = 200
) -> list[CollaboratorInvitation]:
    """The organization's invitations, newest first."""
    _require_owner(actor, organization_id)
    return list(
        CollaboratorInvitation.objects.filter(organization_id=organization_id).select_related(
            "property", "invited_by", "accepted_by"
        )[:limit]
    )


# --- inviting ----------------------------------------------------------------------


@dataclass
class Sent:
    invitation: CollaboratorInvitation
    sent: bool  # False when the mail server refused the message
    url: str  # the link; never stored, only in the message


def accept_url(token: str) -> str:
    return f"{settings.SITE_URL}/collaborators/accept/{token}/"


def _clean_email(email: str) -> str:
    address = email.strip().lower()
    try:
        validate_email(address)
    except Exception:
        raise InvalidInput(
            _("%(email)s is not an email address.") % {"email": email.strip() or '""'},
            code="invalid_email",
            field="email",
        ) from None
    return address


def invite(
    actor: User,
    organization_id: int,
    *,
    email: str,
    role: str,
    property_id: int | None = None,
    ends_at: datetime | None = None,
) -> Sent:
    """Invite ``email`` to the organization as ``role`` (read_only or
    building_manager), for the site ``property_id`` (None: every site), until
    ``ends_at`` (None: no end). The link goes only in the email."""
    org = _require_owner(actor, organization_id)
    address = _clean_email(email)
    if role not in CollaboratorRole.values:
        raise InvalidInput(
            _("The role must be read_only or building_manager."), code="invalid_role", field="role"
        )
    if role == CollaboratorRole.BUILDING_MANAGER:
        require_building_management(org.pk, _("Inviting building managers"))
    prop = None
    if property_id is not None:
        prop = Property.objects.filter(pk=property_id, organization_id=org.pk).first()
        if prop is None:
            raise NotFound(_("Property not found."), code="property_not_found")
    now = timezone.now()
    if ends_at is not None:
        if timezone.is_naive(ends_at):
            raise InvalidInput(_("Dates must include a time zone."), code="invalid_end")
        if ends_at <= now:
            raise InvalidInput(
                _("The end of the access must be in the future."),
                code="invalid_end",
                field="ends_at",
            )
    if Membership.objects.filter(organization=org, user__email__iexact=address).exists():
        raise Conflict(
            _(
                "%(email)s already has access to %(organization)s. An account has one membership "
                "per organization: end that access first to invite them again."
            )
            % {"email": address, "organization": org.name},
            code="already_member",
        )
    token = secrets.token_urlsafe(32)
    with transaction.atomic():
        waiting = CollaboratorInvitation.objects.filter(
            organization=org, email=address, status=S.SENT, expires_at__gt=now
        )
        if waiting.exists():
            raise Conflict(
                _(
                    "%(email)s already has an invitation waiting for an answer. Revoke it to send "
                    "a new one."
                )
                % {"email": address},
                code="already_invited",
            )
        invitation = CollaboratorInvitation.objects.create(
            organization=org,
            email=address,
            role=role,
            property=prop,
            ends_at=ends_at,
            token_digest=CollaboratorInvitation.digest_of(token),
            invited_by=actor,
            created_at=now,
            expires_at=now + timedelta(days=LINK_DAYS),
        )
        record(
            EventKind.COLLABORATOR_INVITED,
            organization_id=org.pk,
            property_id=prop.pk if prop else None,
            actor=actor,
            summary=_("%(email)s invited (%(role)s) for %(site)s")
            % {"email": address, "role": role_label(role), "site": site_label(prop)},
            data={
                "invitation_id": invitation.pk,
                "email": address,
                "role": role,
                "ends_at": ends_at.isoformat() if ends_at else None,
            },
        )
    url = accept_url(token)
    return Sent(invitation, _send(invitation, url), url)


def _send(invitation: CollaboratorInvitation, url: str) -> bool:
    inviter = invitation.invited_by
    name = (inviter.name or inviter.email) if inviter else invitation.organization.name
    lines = [
        _(
            "%(name)s invites you to work with %(organization)s on Doorkeep, for %(site)s, "
            "with the role “%(role)s”."
        )
        % {
            "name": name,
            "organization": invitation.organization.name,
            "site": site_label(invitation.property),
            "role": role_label(invitation.role),
        }
    ]
    if invitation.ends_at is not None:
        tz = zone_for(invitation.organization_id, invitation.property)
        last_day = (timezone.localtime(invitation.ends_at, tz) - timedelta(microseconds=1)).date()
        lines.append(
            _("Your access ends after %(day)s (%(zone)s).")
            % {"day": last_day.isoformat(), "zone": tz.key}
        )
    lines.append(
        _(
            "To accept, open the link below (it works for %(days)d days) and sign in, or create "
            "your account, with this address: %(email)s. The login is yours alone: do not "
            "forward this message."
        )
        % {"days": LINK_DAYS, "email": invitation.email}
    )
    subject = _("%(name)s invites you to %(organization)s") % {
        "name": name,
        "organization": invitation.organization.name,
    }
    text = "\n\n".join(lines) + f"\n\n{url}\n\n--\nDoorkeep"
    try:
        send_mail(settings.ACCOUNT_EMAIL_SUBJECT_PREFIX + subject, text, None, [invitation.email])
    except (OSError, ValueError) as exc:  # smtplib errors are OSErrors
        log.warning("collaborator invitation %s not sent: %s", invitation.pk, exc)
        return False
    return True


def revoke(actor: User, invitation_id: int) -> CollaboratorInvitation:
    """Withdraw an invitation still waiting for an answer: its link stops working."""
    with transaction.atomic():
        invitation = (
            CollaboratorInvitation.objects.select_for_update(of=("self",))
            .select_related("property")
            .filter(pk=invitation_id)
            .first()
        )
        if invitation is None:
            raise NotFound(_("Invitation not found."))
        policy.require(
            actor,
            policy.Action.MANAGE_COLLABORATORS,
            invitation.organization_id,
            what=_("Invitation"),
        )
        state = invitation.state
        if state != S.SENT:
            raise Conflict(
                _(
                    "Only an invitation waiting for an answer can be revoked; this one is "
                    "“%(status)s”."
                )
                % {"status": S(state).label},
                code="not_pending",
            )
        invitation.status, invitation.revoked_at = S.REVOKED, timezone.now()
        invitation.save(update_fields=["status", "revoked_at"])
        record(
            EventKind.COLLABORATOR_REVOKED,
            organization_id=invitation.organization_id,
            property_id=invitation.property_id,
            actor=actor,
            summary=_("Invitation of %(email)s revoked") % {"email": invitation.email},
            data={"invitation_id": invitation.pk, "email": invitation.email},
        )
    return invitation


# --- the invited person's side -----------------------------------------------------


def _usable(invitation: CollaboratorInvitation) -> None:
    """Raise LinkUnusable when the invitation can no longer be accepted."""
    state = invitation.state
    if state == S.ACCEPTED:
        raise LinkUnusable(
            _("This invitation was already accepted. It can be accepted only once."),
            code="invitation_used",
        )
    if state == S.REVOKED:
        raise LinkUnusable(_("This invitation was withdrawn."), code="invitation_revoked")
    if state == S.EXPIRED:
        raise LinkUnusable(
            _("This invitation has expired. Ask the person who invited you to invite you again."),
            code="invitation_expired",
        )
    if invitation.ends_at is not None and invitation.ends_at <= timezone.now():
        raise LinkUnusable(
            _("The access this invitation gives has already ended."), code="access_ended"
        )


def read_token(token: str) -> CollaboratorInvitation:
    """The invitation a link points at, if it can still be accepted. Raises
    NotFound for a link that was never valid, LinkUnusable (410) with the
    reason for one that was used, withdrawn or has expired."""
    clean = token.strip()
    invitation = (
        CollaboratorInvitation.objects.select_related("organization", "property", "invited_by")
        .filter(token_digest=CollaboratorInvitation.digest_of(clean))
        .first()
        if clean
        else None
    )
    if invitation is None:
        raise NotFound(
            _("This invitation link is not valid. Check that it was copied whole."),
            code="invitation_not_found",
        )
    _usable(invitation)
    return invitation


def _address_confirmed(user: User, email: str) -> bool:
    from allauth.account.models import EmailAddress

    return EmailAddress.objects.filter(user=user, email__iexact=email, verified=True).exists()


def check_account(user: User, invitation: CollaboratorInvitation) -> None:
    """An invitation is personal: only the account whose address is exactly
    the invited one (and confirmed) accepts it."""
    if user.email.lower() != invitation.email or not _address_confirmed(user, invitation.email):
        raise PermissionDenied(
            _(
                "This invitation is for %(invited)s, and you are signed in as %(you)s. Sign in "
                "with %(invited)s, or create an account with that address, to accept it. A login "
                "is personal: ask for an invitation of your own if %(you)s should have access."
            )
            % {"invited": invitation.email, "you": user.email},
            code="wrong_account",
        )


def accept(user: User, token: str) -> Membership:
    """Accept an invitation: the account with the invited address becomes a
    member of the organization with the invitation's role, site and end."""
    with transaction.atomic():
        found = read_token(token)
        check_account(user, found)
        invitation = (
            CollaboratorInvitation.objects.select_for_update(of=("self",))
            .select_related("organization", "property")
            .get(pk=found.pk)
        )
        _usable(invitation)
        org = invitation.organization
        already = Conflict(
            _(
                "You already have access to %(organization)s, and an account has one membership "
                "per organization. Ask its owner to end your current access first if this "
                "invitation should replace it."
            )
            % {"organization": org.name},
            code="already_member",
        )
        if Membership.objects.filter(user=user, organization=org).exists():
            raise already
        try:
            with transaction.atomic():
                membership = Membership.objects.create(
                    user=user,
                    organization=org,
                    role=invitation.role,
                    property=invitation.property,
                    ends_at=invitation.ends_at,
                    invited_by_id=invitation.invited_by_id,
                )
        except IntegrityError:  # accepted at the same moment elsewhere
            raise already from None
        now = timezone.now()
        invitation.status, invitation.accepted_by, invitation.accepted_at = S.ACCEPTED, user, now
        invitation.save(update_fields=["status", "accepted_by", "accepted_at"])
        record(
            EventKind.COLLABORATOR_ACCEPTED,
            organization_id=org.pk,
            property_id=invitation.property_id,
            actor=user,
            summary=_("%(email)s accepted the invitation: %(role)s for %(site)s")
            % {
                "email": invitation.email,
                "role": role_label(invitation.role),
                "site": site_label(invitation.property),
            },
            data={"invitation_id": invitation.pk, "membership_id": membership.pk},
        )
    policy.forget_roles(user)
    return membership


# --- ending access -----------------------------------------------------------------


def end_sessions(user: User) -> int:
    """Sign the person out everywhere: end every session of theirs that
    allauth's user sessions track (with activity tracking on, every signed-in
    request is tracked); each one's session data is deleted too."""
    from allauth.usersessions.adapter import get_adapter
    from allauth.usersessions.models import UserSession

    sessions = list(UserSession.objects.filter(user_id=user.pk))
    get_adapter().end_sessions(sessions)
    return len(sessions)


def end_access(actor: User, organization_id: int, membership_id: int) -> Membership:
    """End a collaborator's access in one step: their membership is deleted
    and their sessions end (they are signed out everywhere)."""
    _require_owner(actor, organization_id)
    with transaction.atomic():
        membership = (
            Membership.objects.select_for_update(of=("self",))
            .select_related("user", "property")
            .filter(pk=membership_id, organization_id=organization_id)
            .first()
        )
        if membership is None:
            raise NotFound(_("Collaborator not found."))
        if membership.role in _NOT_COLLABORATORS:
            raise PermissionDenied(
                _("A lock owner's access is not ended here."), code="owner_membership"
            )
        person = membership.user
        membership.delete()
        sessions = end_sessions(person)
        record(
            EventKind.COLLABORATOR_ENDED,
            organization_id=organization_id,
            property_id=membership.property_id,
            actor=actor,
            summary=_("Access of %(email)s ended (%(role)s for %(site)s)")
            % {
                "email": person.email,
                "role": role_label(membership.role),
                "site": site_label(membership.property),
            },
            data={"user_id": person.pk, "email": person.email, "sessions_ended": sessions},
        )
    policy.forget_roles(person)
    return membership


# --- two-factor authentication ------------------------------------------------------


def require_two_factor(actor: User, organization_id: int, required: bool) -> int:
    """The owner asks (or stops asking) that the organization's managers and
    collaborators sign in with a second factor (accounts/mfa.py). Turned on,
    their sessions end: at their next sign-in they add a factor before
    anything else. Returns how many people were signed out."""
    org = _require_owner(actor, organization_id)
    if org.require_two_factor == required:
        return 0
    with transaction.atomic():
        Organization.objects.filter(pk=org.pk).update(require_two_factor=required)
        ended = tokens = 0
        if required:
            people = (
                Membership.objects.filter(organization_id=org.pk)
                .exclude(role__in=_NOT_COLLABORATORS)
                .select_related("user")
            )
            for membership in people:
                ended += end_sessions(membership.user)
            # A token made by password before: it stood for the password alone.
            tokens = ApiToken.objects.filter(
                user__in=people.values("user"), revoked_at__isnull=True
            ).update(revoked_at=timezone.now())
        record(
            EventKind.TWO_FACTOR_REQUIREMENT,
            organization_id=org.pk,
            actor=actor,
            summary=(
                _("Two-factor authentication required of managers and collaborators")
                if required
                else _("Two-factor authentication no longer required of managers and collaborators")
            ),
            data={
                "require_two_factor": required,
                "sessions_ended": ended,
                "tokens_revoked": tokens,
            },
        )
    return ended
