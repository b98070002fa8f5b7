"""Reading guests: what each side may see."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from django.db.models import QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _

from doorkeep import policy
from doorkeep.accounts.models import User
from doorkeep.core.errors import NotFound, PermissionDenied
from doorkeep.events.models import Event, EventKind
from doorkeep.guests import presence, services
from doorkeep.guests.models import GuestPolicy, Invitation, InvitationStatus, Panel, Presence
from doorkeep.properties.models import Entry, Property


def visible_policy(user: User, property_id: int) -> GuestPolicy:
    """Members of the property's organization and its residents see the policy."""
    prop = Property.objects.filter(pk=property_id).first()
    if prop is None or not (
        policy.can(user, policy.Action.VIEW, prop.organization_id, prop.pk)
        or services.resident_entry_ids(user, prop.pk)
    ):
        raise NotFound(_("Property not found."))
    return services.policy_of(prop.pk)


def panels_of(user: User, entry_id: int) -> list[Panel]:
    entry = Entry.objects.select_related("property").filter(pk=entry_id).first()
    if entry is None:
        raise NotFound(_("Entry not found."))
    policy.require(
        user,
        policy.Action.MANAGE_PROPERTIES,
        entry.property.organization_id,
        what=_("Entry"),
        property_id=entry.property_id,
    )
    return list(Panel.objects.filter(entry=entry))


def _with_relations(rows: QuerySet[Invitation]) -> QuerySet[Invitation]:
    return rows.select_related("property", "inviter").prefetch_related("entries")


def invitations_sent(user: User, *, property_id: int | None = None) -> list[Invitation]:
    rows = Invitation.objects.filter(inviter=user)
    if property_id is not None:
        rows = rows.filter(property_id=property_id)
    return list(_with_relations(rows))


def invitations_at(user: User, property_id: int) -> list[Invitation]:
    """Every invitation at the property, for its building managers."""
    prop = Property.objects.filter(pk=property_id).first()
    if prop is None:
        raise NotFound(_("Property not found."))
    policy.require(
        user,
        policy.Action.MANAGE_PROPERTIES,
        prop.organization_id,
        what=_("Property"),
        property_id=prop.pk,
    )
    return list(_with_relations(Invitation.objects.filter(property=prop)))


def invitation_for(user: User, invitation_id: int) -> Invitation:
    """The resident who sent it and the property's building managers see an
    invitation; other members are told why not; everyone else: 404."""
    invitation = _with_relations(Invitation.objects.filter(pk=invitation_id)).first()
    if invitation is None:
        raise NotFound(_("Invitation not found."))
    if invitation.inviter_id == user.pk:
        return invitation
    org, site = invitation.property.organization_id, invitation.property_id
    if policy.can(user, policy.Action.MANAGE_PROPERTIES, org, site):
        return invitation
    if policy.can(user, policy.Action.VIEW, org, site):
        raise PermissionDenied(
            _("Only the resident who sent an invitation and building managers can see it.")
        )
    raise NotFound(_("Invitation not found."))


GUEST_EVENT_KINDS = (
    EventKind.GUEST_UNLOCKED,
    EventKind.ACCESS_DENIED,
    EventKind.UNLOCK_FAILED,
    EventKind.PRESENCE_VERIFIED,
    EventKind.PRESENCE_REFUSED,
)


def guest_events(user: User, invitation_id: int, *, limit: int = 200) -> list[dict[str, Any]]:
    """R26: all of the guest's unlocks (and refused attempts) at the property,
    whoever shared the entry, newest first."""
    invitation = invitation_for(user, invitation_id)
    if invitation.guest_id is None:
        return []
    rows = (
        Event.objects.filter(
            property_id=invitation.property_id,
            actor_id=invitation.guest_id,
            kind__in=GUEST_EVENT_KINDS,
        )
        .select_related("lock__entry")
        .order_by("-occurred_at", "-id")[:limit]
    )
    return [
        {
            "id": e.pk,
            "kind": e.kind,
            "reason": e.reason,
            "occurred_at": e.occurred_at,
            "entry": e.lock.entry.name if e.lock and e.lock.entry else "",
            "summary": e.summary,
        }
        for e in rows
    ]


def pending_for(user: User) -> list[Invitation]:
    """Invitations to the user's verified address that wait for an answer."""
    if not services.address_verified(user, user.email):
        return []
    now = timezone.now()
    rows = _with_relations(
        Invitation.objects.filter(email=user.email.lower(), status=InvitationStatus.SENT)
    )
    return [inv for inv in rows if inv.state_at(now) == InvitationStatus.SENT]


@dataclass
class Location:
    """One shared location on the guest's dashboard (R24)."""

    property_id: int
    property: str
    address: str
    shared_by: list[str] = field(default_factory=list)
    entries: list[dict[str, Any]] = field(default_factory=list)
    presence_required: bool = False
    presence_verified: bool = True
    message: str = ""
    invitation_ids: list[int] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def locations(user: User) -> list[Location]:
    """The guest's shared locations with the entries the policy still allows,
    in a fixed number of queries however many there are."""
    invitations = presence.accepted_invitations(user)
    ids = {inv.property_id for inv in invitations}
    policies = {
        rules.property_id: rules
        for rules in GuestPolicy.objects.filter(property_id__in=ids).prefetch_related(
            "shareable_entries"
        )
    }
    presences = {p.property_id: p for p in Presence.objects.filter(guest=user, property_id__in=ids)}
    found: dict[int, Location] = {}
    for inv in invitations:
        prop = inv.property
        rules = policies.get(prop.pk) or GuestPolicy(property_id=prop.pk)
        allowed = (
            {e.pk for e in rules.shareable_entries.all()}
            if rules.pk and rules.sharing_enabled
            else set()
        )
        loc = found.setdefault(prop.pk, Location(prop.pk, prop.name, prop.address))
        name = inv.inviter.name or inv.inviter.email
        if name not in loc.shared_by:
            loc.shared_by.append(name)
        loc.invitation_ids.append(inv.pk)
        known = {e["id"] for e in loc.entries}
        for entry in inv.entries.all():
            if entry.pk in allowed and entry.pk not in known:
                loc.entries.append({"id": entry.pk, "name": entry.name})
                known.add(entry.pk)
    for loc in found.values():
        loc.entries.sort(key=lambda e: (e["name"], e["id"]))
        rules = policies.get(loc.property_id) or GuestPolicy(property_id=loc.property_id)
        state = presence.standing_of(rules, presences.get(loc.property_id))
        loc.presence_required, loc.presence_verified = state.required, state.verified
        loc.message = state.reason
    return sorted(found.values(), key=lambda loc: (loc.property, loc.property_id))
