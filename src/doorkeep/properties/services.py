"""Properties and their entries."""

from __future__ import annotations

from django.db import IntegrityError, transaction
from django.utils.translation import gettext as _

from doorkeep import policy
from doorkeep.accounts.models import User
from doorkeep.core.errors import Conflict, InvalidInput, NotFound
from doorkeep.licensing.upgrades import require_building_management
from doorkeep.properties.models import Entry, Property, validate_timezone


def _clean_name(name: str, what: str) -> str:
    name = name.strip()
    if not name:
        raise InvalidInput(_("%(what)s needs a name.") % {"what": what}, code="name_required")
    if len(name) > 150:
        raise InvalidInput(_("A name is at most 150 characters."), code="name_too_long")
    return name


def create_property(
    actor: User, organization_id: int, *, name: str, address: str = "", tz: str = "Europe/Amsterdam"
) -> Property:
    policy.require(actor, policy.Action.MANAGE_PROPERTIES, organization_id, what=_("Organization"))
    try:
        validate_timezone(tz)
    except Exception:
        raise InvalidInput(
            _("%(tz)s is not a known time zone (for example Europe/Paris).") % {"tz": tz},
            code="invalid_timezone",
        ) from None
    return Property.objects.create(
        organization_id=organization_id,
        name=_clean_name(name, _("A property")),
        address=address.strip()[:300],
        timezone=tz,
    )


def get_property(
    actor: User, property_id: int, action: policy.Action = policy.Action.VIEW
) -> Property:
    prop = Property.objects.filter(pk=property_id).first()
    if prop is None:
        raise NotFound(_("Property not found."))
    policy.require(actor, action, prop.organization_id, what=_("Property"), property_id=prop.pk)
    return prop


def add_entry(actor: User, property_id: int, *, name: str) -> Entry:
    """Add an entry (a door, gate or barrier) to a property. A property's
    first entry is for everyone; more need building management."""
    prop = get_property(actor, property_id, policy.Action.MANAGE_PROPERTIES)
    clean = _clean_name(name, _("An entry"))
    try:
        with transaction.atomic():
            # The property's row is locked so that two first entries at once
            # cannot both pass the gate.
            Property.objects.select_for_update().filter(pk=prop.pk).first()
            if Entry.objects.filter(property=prop).exists():
                require_building_management(
                    prop.organization_id, _("More than one entry per property")
                )
            return Entry.objects.create(property=prop, name=clean)
    except IntegrityError:
        raise Conflict(
            _("%(property)s already has an entry called %(name)s.")
            % {"property": prop.name, "name": clean},
            code="entry_exists",
        ) from None


def get_entry(actor: User, entry_id: int, action: policy.Action = policy.Action.VIEW) -> Entry:
    entry = Entry.objects.select_related("property").filter(pk=entry_id).first()
    if entry is None:
        raise NotFound(_("Entry not found."))
    policy.require(
        actor,
        action,
        entry.property.organization_id,
        what=_("Entry"),
        property_id=entry.property_id,
    )
    return entry
