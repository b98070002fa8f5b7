"""Accounts, organizations, memberships and API tokens."""

from __future__ import annotations

import secrets
from datetime import timedelta

from django.contrib.auth import authenticate
from django.db import connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from doorkeep import policy
from doorkeep.accounts import signin_limits
from doorkeep.accounts.models import ApiToken, Membership, Organization, Role, User
from doorkeep.core.errors import InvalidInput, NotFound, PermissionDenied
from doorkeep.core.rows import aware, partial
from doorkeep.licensing.upgrades import require_building_management


def create_user(email: str, password: str, *, name: str = "", verified: bool = True) -> User:
    """Create an account (CLI, demo data, tests). With ``verified`` the email
    address counts as confirmed, so the person can sign in at once."""
    from allauth.account.models import EmailAddress

    email = email.strip().lower()
    if User.objects.filter(email=email).exists():
        raise InvalidInput(
            _("An account with %(email)s already exists.") % {"email": email}, code="email_taken"
        )
    with transaction.atomic():
        user = User.objects.create_user(email=email, password=password, name=name)
        EmailAddress.objects.create(user=user, email=email, primary=True, verified=verified)
    return user


def create_organization(owner: User, name: str, *, role: str = Role.LOCK_OWNER) -> Organization:
    name = name.strip()
    if not name:
        raise InvalidInput(_("An organization needs a name."), code="name_required")
    with transaction.atomic():
        org = Organization.objects.create(name=name[:150])
        Membership.objects.create(user=owner, organization=org, role=role)
    policy.forget_roles(owner)
    return org


def ensure_personal_organization(user: User) -> Organization:
    """Every account can register locks: a new account gets its own organization."""
    membership = Membership.objects.filter(user=user).select_related("organization").first()
    if membership is not None:
        return membership.organization
    return create_organization(user, user.name or user.email.split("@")[0])


def add_member(actor: User, organization_id: int, email: str, role: str) -> Membership:
    policy.require(actor, policy.Action.REGISTER_LOCKS, organization_id, what=_("Organization"))
    if role not in (Role.LOCK_OWNER, Role.BUILDING_MANAGER, Role.MEMBER):
        raise InvalidInput(
            _("Role must be lock_owner, building_manager or member."), code="invalid_role"
        )
    if role == Role.BUILDING_MANAGER:
        require_building_management(organization_id, _("Making members building managers"))
    user = User.objects.filter(email=email.strip().lower()).first()
    if user is None:
        raise NotFound(_("No account uses %(email)s.") % {"email": email}, code="user_not_found")
    membership, _created = Membership.objects.update_or_create(
        user=user, organization_id=organization_id, defaults={"role": role}
    )
    policy.forget_roles(user)
    return membership


def create_token(user: User, name: str) -> tuple[ApiToken, str]:
    """Create an API token; returns the row and the token, which is never shown again."""
    name = name.strip() or _("API token")
    token = ApiToken.PREFIX + secrets.token_urlsafe(32)
    row = ApiToken.objects.create(
        user=user, name=name[:100], digest=ApiToken.digest_of(token), hint=token[:10]
    )
    return row, token


def create_token_with_password(
    email: str, password: str, name: str, *, client_ip: str
) -> tuple[ApiToken, str]:
    """Wrong passwords count as on the web sign-in (accounts.signin_limits)."""
    attempt = signin_limits.begin(email, client_ip)
    user = authenticate(email=email.strip().lower(), password=password)
    if not isinstance(user, User) or not user.is_active:
        raise InvalidInput(
            _("The email address or the password is not right."), code="bad_credentials"
        )
    attempt.succeeded()
    from allauth.account.models import EmailAddress

    if not EmailAddress.objects.filter(user=user, email__iexact=user.email, verified=True).exists():
        raise InvalidInput(
            _("Confirm your email address first: follow the link we sent you."),
            code="email_unverified",
        )
    from doorkeep.accounts import mfa

    if not mfa.password_alone_suffices(user):
        raise PermissionDenied(
            _(
                "This account signs in with a second factor: create API tokens in the web "
                "interface, under API tokens."
            ),
            code="two_factor_required",
        )
    return create_token(user, name)


def revoke_token(user: User, token_id: int) -> None:
    updated = ApiToken.objects.filter(pk=token_id, user=user, revoked_at__isnull=True).update(
        revoked_at=timezone.now()
    )
    if not updated:
        raise NotFound(_("Token not found."), code="token_not_found")


# Every API call checks its token: one statement, written by hand (the ORM's
# select_related costs more to build than to run). The account comes back
# with the fields API calls use; the password hash and the dates load only
# if something reads them.
_USER_BY_DIGEST_SQL = """
SELECT u.id, u.is_superuser, u.is_staff, u.is_active, u.email, u.name, t.id, t.last_used_at
FROM accounts_apitoken t
JOIN accounts_user u ON u.id = t.user_id
WHERE t.digest = %s AND t.revoked_at IS NULL
"""


def user_for_token(token: str) -> User | None:
    """The active account a live bearer token belongs to, else None. Notes
    when the token was used, at most every 5 minutes."""
    if not token.startswith(ApiToken.PREFIX):
        return None
    with connection.cursor() as cursor:
        cursor.execute(_USER_BY_DIGEST_SQL, [ApiToken.digest_of(token)])
        row = cursor.fetchone()
    if row is None or not row[3]:
        return None
    user_id, superuser, staff, active, email, name, token_id, last_used = row
    user = partial(
        User,
        id=user_id,
        is_superuser=bool(superuser),
        is_staff=bool(staff),
        is_active=bool(active),
        email=email,
        name=name,
    )
    now = timezone.now()
    last_used = aware(last_used)
    if last_used is None or now - last_used > timedelta(minutes=5):
        ApiToken.objects.filter(pk=token_id).update(last_used_at=now)
    return user
