"""Badges: requests worked by the platform operator, existing badges
registered by owners, lost badges switched off everywhere at once.

An active badge is one credential (``keys.Credential``, kind tag) of its
person: it is added to every live key that person holds, so it opens the
same doors as their other credentials; equipment access is read from the
badge and the residency (``badges.access``). Reporting it lost switches that
credential off, drops it from every lock's list (each lock's version raised
in the same transaction, the gateway pushes the change) and makes the access
decision answer "badge reported lost"."""

from __future__ import annotations

from dataclasses import dataclass

from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _

from doorkeep import policy
from doorkeep.accounts.models import User
from doorkeep.badges import hooks
from doorkeep.badges.models import (
    HOLDS_UID,
    Badge,
    BadgeRequest,
    BadgeSource,
    BadgeStatus,
    Delivery,
    RequestStatus,
)
from doorkeep.core.errors import (
    Conflict,
    DomainError,
    InvalidInput,
    NotFound,
    PermissionDenied,
    Unprocessable,
)
from doorkeep.events.models import DenyReason, EventKind
from doorkeep.events.services import record
from doorkeep.keys.cards import CardReading, CardVerdict, judge_card
from doorkeep.keys.credentials import normalize_tag
from doorkeep.keys.models import Credential, CredentialKind, Key, KeyCredential, Person
from doorkeep.keys.services import add_credential_to_key, bump_version
from doorkeep.properties.models import BillingMode, Property
from doorkeep.properties.services import get_property
from doorkeep.residents.models import ParkingSpace, Residency
from doorkeep.residents.services import (
    MAX_IMPORT_LINES,
    csv_rows,
    describe_errors,
    site_today,
)


def _uid(value: str) -> str:
    try:
        return normalize_tag(value)
    except InvalidInput as exc:
        raise Unprocessable(exc.message, code="invalid_uid", field="uid") from None


def _uid_free(organization_id: int, uid: str, *, person: Person) -> None:
    holder = (
        Badge.objects.filter(organization_id=organization_id, uid=uid, status__in=HOLDS_UID)
        .select_related("person")
        .first()
    )
    if holder is None:
        # A card someone else holds as a plain tag on a key is theirs too.
        if (
            Credential.objects.filter(
                kind=CredentialKind.TAG,
                lookup=uid,
                deactivated_at__isnull=True,
                person__organization_id=organization_id,
            )
            .exclude(person=person)
            .exists()
        ):
            raise Conflict(
                _("This badge already belongs to someone else; two people never share a badge."),
                code="badge_taken",
            )
        return
    if holder.person_id == person.pk:
        raise Conflict(
            _("%(name)s already has this badge.") % {"name": person.name}, code="badge_exists"
        )
    raise Conflict(
        _("This badge already belongs to someone else; two people never share a badge."),
        code="badge_taken",
    )


def _switch_on(badge: Badge) -> int:
    """Make the badge its person's active tag credential, on every live key
    they hold. Returns the number of locks whose list changed."""
    credential = badge.credential
    if credential is None:
        # The card may already open doors as a plain tag of the same person:
        # it becomes the badge's credential, so that losing it switches it off.
        credential = Credential.objects.filter(
            person=badge.person,
            kind=CredentialKind.TAG,
            lookup=badge.uid,
            deactivated_at__isnull=True,
            badge__isnull=True,
        ).first() or Credential.objects.create(
            person=badge.person, kind=CredentialKind.TAG, lookup=badge.uid, display=badge.uid
        )
        badge.credential = credential
    else:
        credential.deactivated_at, credential.deactivated_reason = None, ""
        credential.save(update_fields=["deactivated_at", "deactivated_reason"])
    now = timezone.now()
    badge.status = BadgeStatus.ACTIVE
    badge.activated_at = badge.activated_at or now
    badge.lost_at, badge.lost_reported_by = None, None
    badge.save(
        update_fields=["credential", "status", "activated_at", "lost_at", "lost_reported_by"]
    )
    live = Key.objects.filter(person=badge.person, revoked_at__isnull=True).filter(
        Q(valid_until__isnull=True) | Q(valid_until__gt=now)
    )
    changed = 0
    for key in live.select_related("lock"):
        if key.lock.organization_id != key.lock_owner_id:
            continue  # the lock changed hands: the key is history
        if add_credential_to_key(key, credential):
            bump_version(key.lock_id, [key.pk])
            changed += 1
    _stations_learn(badge)
    return changed


def _stations_learn(badge: Badge) -> None:
    """The charging stations and laundry machines where the badge's holder
    lives or lived keep it in their local lists: their versions rise in this
    transaction too."""
    from doorkeep.chargers.lists import changed
    from doorkeep.laundry import lists as laundry_lists

    changed(person_ids=[badge.person_id])
    laundry_lists.changed(person_ids=[badge.person_id])


def _switch_off(badge: Badge, reason: str) -> int:
    """Take the card off every lock, in this transaction: the badge's
    credential, and any tag with its UID that still opens a door of the
    organization (the same card, written on a key by hand). Returns the
    number of locks whose list changed."""
    cards = Credential.objects.filter(
        kind=CredentialKind.TAG, lookup=badge.uid, person__organization_id=badge.organization_id
    ).filter(Q(pk=badge.credential_id) | Q(deactivated_at__isnull=True))
    ids = list(cards.values_list("pk", flat=True))
    affected: dict[int, list[int]] = {}
    for lock_id, key_id in KeyCredential.objects.filter(
        credential_id__in=ids, active=True
    ).values_list("lock_id", "key_id"):
        affected.setdefault(lock_id, []).append(key_id)
    KeyCredential.objects.filter(credential_id__in=ids, active=True).update(active=False)
    Credential.objects.filter(pk__in=ids).update(
        deactivated_at=timezone.now(), deactivated_reason=reason
    )
    for lock_id, key_ids in sorted(affected.items()):
        bump_version(lock_id, key_ids)
    _stations_learn(badge)
    return len(affected)


# --- reading one badge or request, with the right to act on it ----------------------------


def get_badge(actor: User, badge_id: int, property_id: int | None = None) -> Badge:
    """A badge its holder, the owner's managers or the operator may see.
    ``property_id`` names the site the badge is reached from (its page), for
    collaborators scoped to that site: the holder must live or have lived there."""
    badge = Badge.objects.select_related("person").filter(pk=badge_id).first()
    if badge is None or not (
        _is_holder(actor, badge.person)
        or policy.can(actor, policy.Action.VIEW, badge.organization_id, _site(badge, property_id))
        or policy.is_platform_operator(actor)
    ):
        raise NotFound(_("Badge not found."), code="badge_not_found")
    return badge


def _site(badge: Badge, property_id: int | None) -> int | None:
    """``property_id`` if the badge's holder lives or lived there, else None."""
    if property_id is None:
        return None
    lived = Residency.objects.filter(person_id=badge.person_id, unit__property_id=property_id)
    return property_id if lived.exists() else None


def _is_holder(actor: User, person: Person) -> bool:
    return actor.is_authenticated and person.user_id == actor.pk


# --- a resident asks ---------------------------------------------------------------------


@dataclass
class RequestSpec:
    property_id: int
    accept_price_minor: int | None = None  # the extra badge's price, as shown and confirmed
    parking_space: str = ""  # for a private charging station: the space's number
    station_serial: str = ""  # or the station's serial number
    note: str = ""


def resident_person(actor: User, prop: Property) -> Person:
    """The person the account is at this site, if they live there today;
    otherwise the site does not exist for them."""
    day = site_today(prop)
    residency = (
        Residency.objects.on(day)
        .filter(unit__property=prop, person__user=actor)
        .select_related("person")
        .first()
    )
    if residency is None:
        raise NotFound(_("Site not found."), code="site_not_found")
    return residency.person


def _space(prop: Property, number: str, serial: str) -> ParkingSpace | None:
    number, serial = number.strip(), serial.strip().upper()
    if not number and not serial:
        return None
    spaces = ParkingSpace.objects.filter(property=prop)
    space = spaces.filter(number=number).first() if number else None
    if number and space is None:
        raise InvalidInput(
            _("Parking space %(number)s is not a space of this site.") % {"number": number},
            code="parking_space_not_found",
            field="parking_space",
        )
    if serial:
        by_serial = spaces.filter(station_serial=serial).first()
        if by_serial is None:
            raise InvalidInput(
                _("No charging station with serial %(serial)s is known at this site.")
                % {"serial": serial},
                code="station_not_found",
                field="station_serial",
            )
        if space is not None and by_serial.pk != space.pk:
            raise InvalidInput(
                _("Station %(serial)s is not at parking space %(number)s.")
                % {"serial": serial, "number": number},
                code="station_not_at_space",
                field="station_serial",
            )
        space = by_serial
    return space


def _price_of(prop: Property, extra: bool, accept: int | None) -> int:
    if not extra or prop.extra_badge_price_minor == 0:
        return 0
    price = prop.extra_badge_price_minor
    if accept != price:
        raise Conflict(
            _("An extra badge costs %(price)s here, billed to you; confirm the price to ask.")
            % {"price": money(price, prop.currency)},
            code="price_not_confirmed",
            price_minor=price,
            currency=prop.currency,
        )
    return price


def money(minor: int, currency: str) -> str:
    return f"{currency} {minor // 100:,}.{minor % 100:02d}"


def request_badge(actor: User, spec: RequestSpec, *, replaces: Badge | None = None) -> BadgeRequest:
    """A resident asks for a badge (R43). The first one is included; an
    extra one costs the site's price, which the request must confirm (R44)."""
    prop = Property.objects.filter(pk=spec.property_id).first()
    if prop is None:
        raise NotFound(_("Site not found."), code="site_not_found")
    with transaction.atomic():
        person = resident_person(actor, prop)
        Person.objects.select_for_update().filter(pk=person.pk).first()  # one request at a time
        if (
            BadgeRequest.objects.filter(person=person, property=prop)
            .exclude(status__in=(RequestStatus.ACTIVE, RequestStatus.REFUSED))
            .exists()
        ):
            raise Conflict(
                _("You already have a badge request open at this site; follow it in your portal."),
                code="request_open",
            )
        space = _space(prop, spec.parking_space, spec.station_serial)
        extra = replaces is not None or Badge.objects.filter(person=person).exists()
        price = _price_of(prop, extra, spec.accept_price_minor)
        return _create_request(actor, prop, person, extra, price, space, spec, replaces)


def _create_request(
    actor: User,
    prop: Property,
    person: Person,
    extra: bool,
    price: int,
    space: ParkingSpace | None,
    spec: RequestSpec,
    replaces: Badge | None,
) -> BadgeRequest:
    request = BadgeRequest.objects.create(
        organization_id=prop.organization_id,
        property=prop,
        person=person,
        requested_by=actor,
        extra=extra,
        price_minor=price,
        currency=prop.currency,
        parking_space=space,
        station_serial=space.station_serial if space else "",
        note=spec.note.strip()[:300],
        replaces=replaces,
    )
    record(
        EventKind.BADGE_REQUESTED,
        organization_id=prop.organization_id,
        property_id=prop.pk,
        person=person,
        actor=actor,
        summary=_("%(name)s asked for a badge") % {"name": person.name}
        + (f" ({money(price, prop.currency)})" if price else ""),
        data={"request_id": request.pk, "extra": extra, "price_minor": price},
    )
    hooks.requested(request)
    return request


# --- the operator's queue ----------------------------------------------------------------


def _queued(actor: User, request_id: int) -> BadgeRequest:
    policy.require_platform_operator(actor)
    found = (
        BadgeRequest.objects.select_for_update(of=("self",))
        .select_related("person", "property")
        .filter(pk=request_id)
        .first()
    )
    if found is None:
        raise NotFound(_("Badge request not found."), code="badge_request_not_found")
    return found


def _step(request: BadgeRequest, allowed: tuple[str, ...], doing: str) -> None:
    if request.status not in allowed:
        raise Conflict(
            _("This request’s status is “%(status)s”; it cannot be %(doing)s now.")
            % {"status": RequestStatus(request.status).label, "doing": doing},
            code="wrong_step",
        )


def _log_step(actor: User | None, request: BadgeRequest, kind: str, summary: str) -> None:
    record(
        kind,
        organization_id=request.organization_id,
        property_id=request.property_id,
        person=request.person,
        actor=actor,
        summary=summary,
        data={"request_id": request.pk},
    )


def approve_request(actor: User, request_id: int) -> BadgeRequest:
    with transaction.atomic():
        request = _queued(actor, request_id)
        _step(request, (RequestStatus.REQUESTED,), _("approved"))
        request.status, request.approved_at, request.handled_by = (
            RequestStatus.APPROVED,
            timezone.now(),
            actor,
        )
        request.save(update_fields=["status", "approved_at", "handled_by"])
        _log_step(
            actor,
            request,
            EventKind.BADGE_REQUEST_APPROVED,
            _("Badge request of %(name)s approved") % {"name": request.person.name},
        )
        hooks.request_changed(request)
    return request


def refuse_request(actor: User, request_id: int, reason: str) -> BadgeRequest:
    reason = " ".join(reason.split())[:300]
    if not reason:
        raise InvalidInput(_("Say why the request is refused."), code="reason_required")
    with transaction.atomic():
        request = _queued(actor, request_id)
        _step(request, (RequestStatus.REQUESTED, RequestStatus.APPROVED), _("refused"))
        request.status, request.refused_at = RequestStatus.REFUSED, timezone.now()
        request.refusal_reason, request.handled_by = reason, actor
        request.save(update_fields=["status", "refused_at", "refusal_reason", "handled_by"])
        _log_step(
            actor,
            request,
            EventKind.BADGE_REQUEST_REFUSED,
            _("Badge request of %(name)s refused: %(reason)s")
            % {"name": request.person.name, "reason": reason},
        )
        hooks.request_changed(request)
    return request


def assign_badge(actor: User, request_id: int, uid: str) -> BadgeRequest:
    """Give an approved (or still requested) request its badge: the UID of a
    platform badge, typed or read by a desktop reader."""
    clean = _uid(uid)
    try:
        with transaction.atomic():
            request = _queued(actor, request_id)
            _step(request, (RequestStatus.REQUESTED, RequestStatus.APPROVED), _("assigned"))
            _uid_free(request.organization_id, clean, person=request.person)
            now = timezone.now()
            badge = Badge.objects.create(
                organization_id=request.organization_id,
                person=request.person,
                uid=clean,
                source=BadgeSource.PLATFORM,
                status=BadgeStatus.PENDING,
                created_by=actor,
            )
            request.badge, request.status = badge, RequestStatus.ASSIGNED
            request.approved_at = request.approved_at or now
            request.assigned_at, request.handled_by = now, actor
            request.save(
                update_fields=["badge", "status", "approved_at", "assigned_at", "handled_by"]
            )
            _log_step(
                actor,
                request,
                EventKind.BADGE_ASSIGNED,
                _("Badge %(uid)s assigned to %(name)s")
                % {"uid": clean, "name": request.person.name},
            )
            hooks.assigned(request)
    except IntegrityError:
        raise Conflict(
            _("This badge already belongs to someone else; two people never share a badge."),
            code="badge_taken",
        ) from None
    return request


def billed_use(request: BadgeRequest) -> None:
    from doorkeep.billing.usage import record_badge_use

    record_badge_use(request)


def deliver_badge(actor: User, request_id: int, delivery: str) -> BadgeRequest:
    """The badge was handed over (active at once) or sent by post (active
    when the resident says it arrived, or the operator does)."""
    if delivery not in Delivery.values:
        raise InvalidInput(
            _("The delivery is handed_over or sent."), code="invalid_delivery", field="delivery"
        )
    with transaction.atomic():
        request = _queued(actor, request_id)
        _step(request, (RequestStatus.ASSIGNED,), _("delivered"))
        request.delivery, request.sent_at = delivery, timezone.now()
        billed_use(request)  # an extra badge is billed once it is on its way (R44)
        if delivery == Delivery.SENT:
            request.status = RequestStatus.SENT
            request.save(update_fields=["delivery", "sent_at", "status"])
            _log_step(
                actor,
                request,
                EventKind.BADGE_SENT,
                _("Badge sent to %(name)s") % {"name": request.person.name},
            )
            hooks.request_changed(request)
            return request
        request.save(update_fields=["delivery", "sent_at"])
        _activate(actor, request)
    return request


def confirm_received(actor: User, request_id: int) -> BadgeRequest:
    """The resident (or the operator) says the sent badge arrived: it is active."""
    with transaction.atomic():
        found = BadgeRequest.objects.select_related("person").filter(pk=request_id).first()
        if found is None:
            raise NotFound(_("Badge request not found."), code="badge_request_not_found")
        if not (_is_holder(actor, found.person) or policy.is_platform_operator(actor)):
            raise NotFound(_("Badge request not found."), code="badge_request_not_found")
        request = (
            BadgeRequest.objects.select_for_update(of=("self",))
            .select_related("person", "property")
            .get(pk=request_id)
        )
        _step(request, (RequestStatus.SENT,), _("confirmed"))
        _activate(actor, request)
    return request


def _activate(actor: User, request: BadgeRequest) -> None:
    assert request.badge_id is not None  # an assigned request has its badge
    badge = Badge.objects.select_for_update().select_related("person").get(pk=request.badge_id)
    if badge.status != BadgeStatus.PENDING:  # reported lost before it arrived
        raise Conflict(
            _("This badge was reported lost before it was active; assign another one."),
            code="badge_lost",
        )
    _switch_on(badge)
    request.status, request.activated_at = RequestStatus.ACTIVE, timezone.now()
    request.save(update_fields=["status", "activated_at"])
    _log_step(
        actor,
        request,
        EventKind.BADGE_ACTIVATED,
        _("Badge %(uid)s of %(name)s is active") % {"uid": badge.uid, "name": badge.person.name},
    )
    hooks.request_changed(request)


# --- existing badges, registered by the owner (R46, R47) ---------------------------------


def register_existing_badge(
    actor: User, property_id: int, person_id: int, *, uid: str, atqa: str, sak: str
) -> Badge:
    """Register a resident's existing badge (individual-statements sites
    only), after checking from the reader's values that it is a MIFARE
    Classic card. Active at once."""
    prop = get_property(actor, property_id, policy.Action.MANAGE_BADGES)
    reading, verdict = judge_card(uid, atqa, sak)
    _takes_existing_badges(prop)
    if not verdict.compatible:
        raise Unprocessable(
            verdict.reason, code="incompatible_card", card_type=verdict.card_type, field="sak"
        )
    day = site_today(prop)
    residency = (
        Residency.objects.on(day)
        .filter(person_id=person_id, unit__property=prop)
        .select_related("person")
        .first()
    )
    if residency is None:
        raise NotFound(_("No resident of this site has that id."), code="resident_not_found")
    person = residency.person
    try:
        with transaction.atomic():
            _uid_free(prop.organization_id, reading.uid, person=person)
            badge = _store_existing(actor, prop, person, reading, verdict)
    except IntegrityError:
        raise Conflict(
            _("This badge already belongs to someone else; two people never share a badge."),
            code="badge_taken",
        ) from None
    return badge


def _takes_existing_badges(prop: Property) -> None:
    if prop.billing_mode == BillingMode.BILLING_AND_PAYMENTS:
        raise Conflict(
            _(
                "%(site)s uses the billing mode “%(mode)s”: only badges issued by the "
                "platform can be used there, so existing badges cannot be registered."
            )
            % {"site": prop.name, "mode": BillingMode.BILLING_AND_PAYMENTS.label},
            code="billing_mode_refuses_third_party",
        )


def _store_existing(
    actor: User, prop: Property, person: Person, reading: CardReading, verdict: CardVerdict
) -> Badge:
    """The checked existing badge, active at once (inside the caller's transaction)."""
    badge = Badge.objects.create(
        organization_id=prop.organization_id,
        person=person,
        uid=reading.uid,
        source=BadgeSource.THIRD_PARTY,
        card_type=verdict.card_type,
        atqa=reading.atqa,
        sak=reading.sak,
        status=BadgeStatus.PENDING,
        created_by=actor,
    )
    _switch_on(badge)
    record(
        EventKind.BADGE_REGISTERED,
        organization_id=prop.organization_id,
        property_id=prop.pk,
        person=person,
        actor=actor,
        summary=_("Existing badge %(uid)s (%(card)s) registered for %(name)s")
        % {"uid": reading.uid, "card": verdict.label, "name": person.name},
        data={"badge_id": badge.pk, "card_type": verdict.card_type},
    )
    return badge


# --- lost and found (R45, R48) -----------------------------------------------------------


def _may_report(actor: User, badge: Badge, site: int | None) -> bool:
    return (
        _is_holder(actor, badge.person)
        or policy.can(actor, policy.Action.MANAGE_BADGES, badge.organization_id, site)
        or policy.is_platform_operator(actor)
    )


@dataclass
class LostReport:
    badge: Badge
    changed: bool  # False when it was already reported lost
    locks: int  # locks whose list dropped it
    replacement: BadgeRequest | None
    replacement_error: str = ""  # why no replacement was asked for, when one was wanted


def report_lost(
    actor: User,
    badge_id: int,
    *,
    replacement: bool = False,
    property_id: int | None = None,
    accept_price_minor: int | None = None,
) -> LostReport:
    """Switch a lost badge off everywhere, at once (R45, R48); with
    ``replacement``, ask for a new one in the same step (at the site
    ``property_id``, where its holder lives). The badge is switched off
    even when the replacement cannot be asked for (the answer says why).
    Reporting it twice changes nothing the second time."""
    with transaction.atomic():
        badge = get_badge(actor, badge_id, property_id)
        if not _may_report(actor, badge, _site(badge, property_id)):
            raise PermissionDenied(
                _("Only its holder, the owner's managers and the operator can report a badge lost.")
            )
        badge = Badge.objects.select_for_update().select_related("person").get(pk=badge.pk)
        if badge.status == BadgeStatus.LOST:
            return LostReport(badge, False, 0, None)
        if badge.status != BadgeStatus.ACTIVE and badge.status != BadgeStatus.PENDING:
            raise Conflict(_("This badge is switched off already."), code="badge_deactivated")
        locks = _switch_off(badge, DenyReason.BADGE_LOST)
        badge.status, badge.lost_at, badge.lost_reported_by = (
            BadgeStatus.LOST,
            timezone.now(),
            actor,
        )
        badge.save(update_fields=["status", "lost_at", "lost_reported_by"])
        record(
            EventKind.BADGE_LOST,
            organization_id=badge.organization_id,
            person=badge.person,
            actor=actor,
            credential_kind=CredentialKind.TAG,
            summary=_("Badge %(uid)s of %(name)s reported lost; switched off on %(n)d locks")
            % {"uid": badge.uid, "name": badge.person.name, "n": locks},
            data={"badge_id": badge.pk, "locks": locks},
        )
        hooks.lost(badge)
        report = LostReport(badge, True, locks, None)
        if replacement:
            try:
                with transaction.atomic():  # a savepoint: its failure keeps the loss
                    report.replacement = _replacement(actor, badge, property_id, accept_price_minor)
            except DomainError as exc:
                report.replacement_error = exc.message
    return report


def _replacement(
    actor: User, badge: Badge, property_id: int | None, accept: int | None
) -> BadgeRequest:
    day_rows = Residency.objects.filter(person=badge.person).select_related("unit__property")
    sites = [r.unit.property for r in day_rows if r.includes(site_today(r.unit.property))]
    prop = next((s for s in sites if property_id in (None, s.pk)), None)
    if prop is None:
        raise InvalidInput(
            _("A replacement is sent to a site where the badge's holder lives; they live at none."),
            code="not_a_resident",
        )
    Person.objects.select_for_update().filter(pk=badge.person_id).first()
    if (
        BadgeRequest.objects.filter(person=badge.person, property=prop)
        .exclude(status__in=(RequestStatus.ACTIVE, RequestStatus.REFUSED))
        .exists()
    ):
        raise Conflict(
            _("A badge request is already open at this site; it will serve as the replacement."),
            code="request_open",
        )
    holder_asks = _is_holder(actor, badge.person)
    # Only the resident can agree to pay: a replacement asked by the owner, a
    # manager or the operator is recorded at no charge to the resident.
    price = _price_of(prop, True, accept) if holder_asks else 0
    spec = RequestSpec(
        property_id=prop.pk, note=_("Replacement of lost badge %(uid)s") % {"uid": badge.uid}
    )
    return _create_request(actor, prop, badge.person, True, price, None, spec, badge)


def reactivate(actor: User, badge_id: int, property_id: int | None = None) -> Badge:
    """A lost badge was found: only the owner or the operator can switch it
    on again (R45), and that is logged. ``property_id``: the site it is done
    from (see get_badge)."""
    with transaction.atomic():
        badge = get_badge(actor, badge_id, property_id)
        site = _site(badge, property_id)
        if not (
            policy.can(actor, policy.Action.REACTIVATE_BADGES, badge.organization_id, site)
            or policy.is_platform_operator(actor)
        ):
            raise PermissionDenied(
                _("Only the owner or the platform operator can switch a found badge on again.")
            )
        badge = (
            Badge.objects.select_for_update(of=("self",))  # credential: a nullable outer join
            .select_related("person", "credential")
            .get(pk=badge.pk)
        )
        if badge.status != BadgeStatus.LOST:
            raise Conflict(
                _("Only a badge reported lost can be switched on again."), code="not_lost"
            )
        if badge.activated_at is None:
            raise Conflict(
                _("This badge was lost before it was ever active; assign another one."),
                code="never_active",
            )
        locks = _switch_on(badge)
        record(
            EventKind.BADGE_REACTIVATED,
            organization_id=badge.organization_id,
            person=badge.person,
            actor=actor,
            credential_kind=CredentialKind.TAG,
            summary=_("Badge %(uid)s of %(name)s found and switched on again (%(n)d locks)")
            % {"uid": badge.uid, "name": badge.person.name, "n": locks},
            data={"badge_id": badge.pk, "locks": locks},
        )
        hooks.reactivated(badge)
    return badge


def return_badge(actor: User, badge_id: int, property_id: int | None = None) -> Badge:
    """The badge was handed back (its holder moved out, or no longer needs
    it): switched off everywhere, like a lost one, and its UID is free for
    someone else (a platform card can be given out again). By the owner's
    managers or the operator. ``property_id``: the site it is done from."""
    with transaction.atomic():
        badge = get_badge(actor, badge_id, property_id)
        if not (
            policy.can(
                actor, policy.Action.MANAGE_BADGES, badge.organization_id, _site(badge, property_id)
            )
            or policy.is_platform_operator(actor)
        ):
            raise PermissionDenied(
                _("Only the owner's managers and the operator can take a badge back.")
            )
        badge = Badge.objects.select_for_update().select_related("person").get(pk=badge.pk)
        if badge.status == BadgeStatus.DEACTIVATED:
            return badge  # handed back already: nothing changes
        locks = _switch_off(badge, DenyReason.CREDENTIAL_DEACTIVATED)
        badge.status = BadgeStatus.DEACTIVATED
        badge.save(update_fields=["status"])
        record(
            EventKind.BADGE_RETURNED,
            organization_id=badge.organization_id,
            person=badge.person,
            actor=actor,
            credential_kind=CredentialKind.TAG,
            summary=_("Badge %(uid)s of %(name)s handed back; switched off on %(n)d locks")
            % {"uid": badge.uid, "name": badge.person.name, "n": locks},
            data={"badge_id": badge.pk, "locks": locks},
        )
    return badge


# --- existing badges from a file -----------------------------------------------------------

IMPORT_COLUMNS = ("uid", "atqa", "sak", "email")


@dataclass
class _Line:
    number: int
    person: Person
    reading: CardReading
    verdict: CardVerdict


def import_existing_badges(actor: User, property_id: int, text: str) -> list[Badge]:
    """Register residents' existing badges from CSV lines ``uid, atqa, sak,
    email`` (the resident's email address; a header line with those names is
    skipped; comma, semicolon or tab). Each line is checked as
    register_existing_badge checks one badge: a MIFARE Classic card, a
    resident of the site today, a UID nobody else holds. When one line is
    wrong nothing is imported and the error names each wrong line."""
    prop = get_property(actor, property_id, policy.Action.MANAGE_BADGES)
    _takes_existing_badges(prop)
    lines = csv_rows(text.lstrip("\ufeff"), IMPORT_COLUMNS)
    if not lines:
        raise InvalidInput(_("The file has no badges in it."), code="empty_import")
    if len(lines) > MAX_IMPORT_LINES:
        raise InvalidInput(
            _("At most %(n)d lines can be imported at once.") % {"n": MAX_IMPORT_LINES},
            code="import_too_large",
        )
    residents = {
        r.person.email: r.person
        for r in Residency.objects.on(site_today(prop))
        .filter(unit__property=prop)
        .exclude(person__email="")
        .select_related("person")
    }
    errors: list[dict[str, object]] = []
    ready: list[_Line] = []
    seen: set[str] = set()
    for number, cells in lines:
        problem = ""
        if len(cells) < 4:
            problem = _("expected 4 columns (UID, ATQA, SAK, email), found %(n)d") % {
                "n": len(cells)
            }
        else:
            uid, atqa, sak, email = cells[:4]
            try:
                reading, verdict = judge_card(uid, atqa, sak)
            except InvalidInput as exc:
                problem = exc.message
            else:
                person = residents.get(email.lower())
                if not verdict.compatible:
                    problem = verdict.reason
                elif person is None:
                    problem = _("%(email)s is not a resident of this site") % {
                        "email": email or "''"
                    }
                elif reading.uid in seen:
                    problem = _("the badge %(uid)s is listed twice") % {"uid": reading.uid}
                else:
                    seen.add(reading.uid)
                    ready.append(_Line(number, person, reading, verdict))
        if problem:
            errors.append({"line": number, "message": problem})
    holders = dict(
        Badge.objects.filter(
            organization_id=prop.organization_id, uid__in=seen, status__in=HOLDS_UID
        ).values_list("uid", "person_id")
    )
    for line in ready:
        holder = holders.get(line.reading.uid)
        if holder is not None:
            message = (
                _("%(name)s already has this badge.") % {"name": line.person.name}
                if holder == line.person.pk
                else _(
                    "This badge already belongs to someone else; two people never share a badge."
                )
            )
            errors.append({"line": line.number, "message": message})
    if errors:
        errors.sort(key=lambda e: int(str(e["line"])))
        raise InvalidInput(describe_errors(errors), code="import_refused", errors=errors)
    try:
        with transaction.atomic():
            return [
                _store_existing(actor, prop, line.person, line.reading, line.verdict)
                for line in ready
            ]
    except IntegrityError:  # taken meanwhile
        raise Conflict(
            _("This badge already belongs to someone else; two people never share a badge."),
            code="badge_taken",
        ) from None
