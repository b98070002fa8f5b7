"""Portal logins for residents (R40): asked for at any time from the notice
in the building, with no one at a desk in between.

1. The owner prints the site's notice: its code (and a link with it).
2. Anyone with the code asks for a login: name, email, unit. Without a
   valid code nothing about any site is revealed.
3. The address is confirmed by a link sent to it.
4. The request is approved at once when the address is that of a resident
   of that unit today; otherwise the site's manager approves (the person
   becomes a resident of the unit from that day) or refuses with a reason.
5. The approved person signs in, or creates their account, with that
   address: their portal shows their site, badges and requests.

An owner can also invite every resident of the list in one step."""

from __future__ import annotations

import hashlib
import logging
import secrets
from datetime import timedelta

from django.conf import settings
from django.core.mail import send_mail
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from doorkeep import policy
from doorkeep.accounts.models import User
from doorkeep.core import ratelimit
from doorkeep.core.clientip import limit_key
from doorkeep.core.errors import Conflict, InvalidInput, NotFound, RateLimited
from doorkeep.events.models import EventKind
from doorkeep.events.services import record
from doorkeep.keys.models import Person
from doorkeep.properties.models import Property
from doorkeep.properties.services import get_property
from doorkeep.residents.models import LoginRequest, LoginRequestStatus, Residency, Unit
from doorkeep.residents.services import ResidentSpec, add_resident, site_today

log = logging.getLogger(__name__)

CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I
LINK_DAYS = 7
ASKS_PER_HOUR = 10  # wrong codes per client address
MAILS_PER_HOUR = 3  # confirmation links per email address
S = LoginRequestStatus


def _digest(token: str) -> str:
    return hashlib.sha256(("doorkeep.portal:" + token).encode()).hexdigest()


def normalize_code(code: str) -> str:
    return "".join(ch for ch in code.upper() if ch.isalnum())[:8]


def shown_code(code: str) -> str:
    return f"{code[:4]}-{code[4:]}"


def portal_code(actor: User, property_id: int) -> str:
    """The site's code for the notice (made on first use, then kept)."""
    prop = get_property(actor, property_id, policy.Action.MANAGE_RESIDENTS)
    while not prop.portal_code:
        code = "".join(secrets.choice(CODE_ALPHABET) for _ in range(8))
        try:
            with transaction.atomic():
                Property.objects.filter(pk=prop.pk, portal_code__isnull=True).update(
                    portal_code=code
                )
        except IntegrityError:  # pragma: no cover - 32^8 codes; try another
            continue
        prop.refresh_from_db(fields=["portal_code"])
    return shown_code(prop.portal_code)


def join_url(code: str) -> str:
    return f"{settings.SITE_URL}/portal/join/{normalize_code(code)}/"


def site_for_code(code: str) -> Property | None:
    clean = normalize_code(code)
    if len(clean) != 8:
        return None
    return Property.objects.filter(portal_code=clean).first()


def site_for_join(code: str, *, client: str) -> Property:
    """The site whose code is on the notice, for the public page that asks
    for a login there. A wrong code counts against the client's asks, as in
    ask_for_login (so that codes cannot be guessed here either), and says only
    that it is not known."""
    key = f"portal-ask:{limit_key(client)}"
    ratelimit.take(  # given back when the code is right (docs/decisions/0021)
        key,
        limit=ASKS_PER_HOUR,
        window=timedelta(hours=1),
        message=_("Too many requests from here; please try again later."),
    )
    prop = site_for_code(code)
    if prop is not None:
        ratelimit.give_back(key, window=timedelta(hours=1))
    else:
        raise InvalidInput(
            _("This code is not known. Check the code on the notice in your building."),
            code="unknown_site_code",
            field="code",
        )
    return prop


def ask_for_login(code: str, *, name: str, email: str, unit: str, client: str) -> LoginRequest:
    """Anyone with the site's code asks for a login. Wrong codes are limited
    per client address, so that codes cannot be guessed (a wrong code says
    only that); confirmation emails are limited per address."""
    prop = site_for_join(code, client=client)
    clean_name = " ".join(name.split())[:150]
    address = email.strip().lower()
    if not clean_name:
        raise InvalidInput(_("Give your name."), code="name_required", field="name")
    try:
        validate_email(address)
    except Exception:
        raise InvalidInput(
            _("%(email)s is not an email address.") % {"email": address or "''"},
            code="invalid_email",
            field="email",
        ) from None
    home = Unit.objects.filter(property=prop, label=" ".join(unit.split())).first()
    if home is None:
        raise InvalidInput(
            _("%(unit)s is not a unit of this site; write it as on your door or letterbox.")
            % {"unit": unit.strip() or "''"},
            code="unit_not_found",
            field="unit",
        )
    mails = f"portal-mail:{address}"
    try:
        ratelimit.take(
            mails,
            limit=MAILS_PER_HOUR,
            window=timedelta(hours=1),
            message=_("A link was sent to this address a moment ago; check your email."),
        )
    except RateLimited as exc:
        raise RateLimited(exc.message, field="email", **exc.details) from None
    token = secrets.token_urlsafe(24)
    request = LoginRequest.objects.create(
        property=prop, unit=home, name=clean_name, email=address, token_digest=_digest(token)
    )
    _mail(
        address,
        _("Confirm your email address for the %(site)s portal") % {"site": prop.name},
        _(
            "You asked for a login to the residents' portal of %(site)s (unit %(unit)s).\n\n"
            "Confirm that this address is yours with the link below (it works for %(days)d "
            "days). If you did not ask, ignore this message."
        )
        % {"site": prop.name, "unit": home.label, "days": LINK_DAYS},
        f"{settings.SITE_URL}/portal/confirm/{token}/",
    )
    return request


def confirm_login_request(token: str) -> LoginRequest:
    """The address is confirmed: approved at once for a resident of the unit,
    else waiting for the site's manager. Confirming twice changes nothing."""
    with transaction.atomic():
        request = (
            LoginRequest.objects.select_for_update(of=("self",))
            .select_related("property", "unit")
            .filter(token_digest=_digest(token.strip()))
            .first()
        )
        if request is None or (
            request.status == S.UNCONFIRMED
            and request.created_at + timedelta(days=LINK_DAYS) < timezone.now()
        ):
            raise NotFound(
                _("This link is not valid any more. Ask for a login again."),
                code="link_not_valid",
            )
        if request.status != S.UNCONFIRMED:
            return request
        request.status, request.confirmed_at = S.PENDING, timezone.now()
        lives = Residency.objects.on(site_today(request.property)).filter(
            unit=request.unit, person__email=request.email
        )
        summary = _("%(name)s (%(email)s) asked for a portal login for unit %(unit)s") % {
            "name": request.name,
            "email": request.email,
            "unit": request.unit.label,
        }
        record(
            EventKind.LOGIN_REQUESTED,
            organization_id=request.property.organization_id,
            property_id=request.property_id,
            summary=summary,
            data={"login_request_id": request.pk},
        )
        if lives.exists():
            request.approved_as_resident = True
            _approve(None, request)
        else:
            request.save(update_fields=["status", "confirmed_at"])
            _tell_managers(request)
    return request


def _approve(actor: User | None, request: LoginRequest) -> None:
    request.status, request.decided_at, request.decided_by = S.APPROVED, timezone.now(), actor
    request.save(
        update_fields=["status", "confirmed_at", "decided_at", "decided_by", "approved_as_resident"]
    )
    record(
        EventKind.LOGIN_APPROVED,
        organization_id=request.property.organization_id,
        property_id=request.property_id,
        actor=actor,
        summary=_("Portal login of %(email)s approved") % {"email": request.email}
        + ("" if actor else " " + _("(a resident of the unit)")),
        data={"login_request_id": request.pk},
    )
    has_account = User.objects.filter(email=request.email).exists()
    _mail_after_commit(
        request.email,
        _("Your %(site)s portal is ready") % {"site": request.property.name},
        (
            _("Sign in with %(email)s to follow your badges, and soon your consumption.")
            if has_account
            else _(
                "Create your account with %(email)s (that exact address) to follow your "
                "badges, and soon your consumption."
            )
        )
        % {"email": request.email},
        f"{settings.SITE_URL}/portal/",
    )


def _tell_managers(request: LoginRequest) -> None:
    from doorkeep.notify import services as notify
    from doorkeep.notify.models import NotificationKind

    managers = policy.members(
        request.property.organization_id, policy.Action.MANAGE_RESIDENTS, request.property_id
    ).values_list("user_id", flat=True)
    notify.notify_users(
        list(managers),
        kind=NotificationKind.PORTAL,
        title=_("%(name)s asks for a portal login (unit %(unit)s)")
        % {"name": request.name, "unit": request.unit.label},
        body=request.property.name,
        url=f"/properties/{request.property_id}/residents/",
        data={"login_request_id": request.pk},
        where=request.property,
    )


def decide_login_request(
    actor: User, request_id: int, *, approve: bool, reason: str = ""
) -> LoginRequest:
    """The site's manager approves (the person lives in the unit from today)
    or refuses with a reason, which is emailed to them."""
    reason = " ".join(reason.split())[:300]
    if not approve and not reason:
        raise InvalidInput(_("Say why the login is refused."), code="reason_required")
    with transaction.atomic():
        found = LoginRequest.objects.select_related("property").filter(pk=request_id).first()
        if found is None:
            raise NotFound(_("Login request not found."), code="login_request_not_found")
        policy.require(
            actor,
            policy.Action.MANAGE_RESIDENTS,
            found.property.organization_id,
            what=_("Login request"),
            property_id=found.property_id,
        )
        request = (
            LoginRequest.objects.select_for_update(of=("self",))
            .select_related("property", "unit")
            .get(pk=found.pk)
        )
        if request.status != S.PENDING:
            raise Conflict(
                _("Its status is “%(status)s”; only a confirmed request waits for a decision.")
                % {"status": S(request.status).label},
                code="wrong_step",
            )
        if not approve:
            request.status, request.decided_at, request.decided_by = (
                S.REFUSED,
                timezone.now(),
                actor,
            )
            request.refusal_reason = reason
            request.save(update_fields=["status", "decided_at", "decided_by", "refusal_reason"])
            record(
                EventKind.LOGIN_REFUSED,
                organization_id=request.property.organization_id,
                property_id=request.property_id,
                actor=actor,
                summary=_("Portal login of %(email)s refused: %(reason)s")
                % {"email": request.email, "reason": reason},
                data={"login_request_id": request.pk},
            )
            _mail_after_commit(
                request.email,
                _("Your request for a %(site)s portal login") % {"site": request.property.name},
                _("The site's manager did not approve it: %(reason)s") % {"reason": reason},
                "",
            )
            return request
        today = site_today(request.property)
        lives = Residency.objects.on(today).filter(unit=request.unit, person__email=request.email)
        if not lives.exists():
            add_resident(
                actor,
                request.property_id,
                ResidentSpec(
                    name=request.name, email=request.email, move_in=today, unit_id=request.unit_id
                ),
            )
        _approve(actor, request)
    return request


def invite_residents(actor: User, property_id: int) -> int:
    """Email every resident of today who has no login yet an invitation to
    create one with their address. Returns how many were invited."""
    prop = get_property(actor, property_id, policy.Action.MANAGE_RESIDENTS)
    today = site_today(prop)
    people = (
        Person.objects.filter(
            residencies__in=Residency.objects.on(today).filter(unit__property=prop)
        )
        .filter(user__isnull=True)
        .exclude(email="")
        .distinct()
    )
    known = set(
        User.objects.filter(email__in=[p.email for p in people]).values_list("email", flat=True)
    )
    invited = 0
    for person in people:
        if person.email in known:
            continue  # an account exists: it is linked once its address is confirmed
        sent = _mail(
            person.email,
            _("Your login to the %(site)s residents' portal") % {"site": prop.name},
            _(
                "%(owner)s invites you to the residents' portal of %(site)s: your badges, your "
                "requests and soon your consumption and invoices. Create your account with "
                "%(email)s (that exact address)."
            )
            % {"owner": actor.name or actor.email, "site": prop.name, "email": person.email},
            f"{settings.SITE_URL}/accounts/signup/",
        )
        invited += int(sent)
    record(
        EventKind.RESIDENTS_INVITED,
        organization_id=prop.organization_id,
        property_id=prop.pk,
        actor=actor,
        summary=_("%(n)d residents invited to the portal") % {"n": invited},
        data={"invited": invited},
    )
    return invited


def _mail_after_commit(to: str, subject: str, body: str, url: str) -> None:
    """Send once the change is committed: nothing for a change rolled back,
    and no row stays locked while the mail server answers."""
    transaction.on_commit(lambda: _mail(to, subject, body, url))


def _mail(to: str, subject: str, body: str, url: str) -> bool:
    text = body + (f"\n\n{url}" if url else "") + "\n\n--\nDoorkeep"
    try:
        send_mail(settings.ACCOUNT_EMAIL_SUBJECT_PREFIX + subject, text, None, [to])
    except (OSError, ValueError) as exc:  # smtplib errors are OSErrors
        log.warning("portal mail to a resident not sent: %s", exc)
        return False
    return True
