"""Who hears of each installation step: the resident, the site's owner and
building managers, and (once the work is handed to the platform) the
operators, in the app and by email; integrators by signed webhook, one event
type per step (docs/notifications.md)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.utils import timezone
from django.utils.translation import gettext as _

from doorkeep import policy
from doorkeep.notify import services as notify
from doorkeep.notify.models import NotificationKind

if TYPE_CHECKING:
    from doorkeep.installations.models import Installation

_PLATFORM_STEPS = ("organizing", "coordinating", "scheduled", "installed", "cancelled")


def data(item: Installation) -> dict[str, Any]:
    return {
        "id": item.pk,
        "status": item.status,
        "property": {"id": item.property_id, "name": item.property.name},
        "parking_space": item.parking_space.number,
        "person": {"id": item.person_id, "name": item.person.name},
        "wished_power_kw": item.wished_power_w / 1000,
        "scheduled_for": item.scheduled_for.isoformat() if item.scheduled_for else None,
        "station_serial": item.station_serial or None,
        "electrician": {
            "name": item.electrician_name,
            "company": item.electrician_company,
            "email": item.electrician_email,
            "phone": item.electrician_phone,
        }
        if item.electrician_name
        else None,
    }


def changed(item: Installation) -> None:
    from doorkeep.badges.selectors import operator_ids

    people = set(
        policy.members(
            item.organization_id, policy.Action.MANAGE_RESIDENTS, item.property_id
        ).values_list("user_id", flat=True)
    )
    if item.person.user_id:
        people.add(item.person.user_id)
    if item.status in _PLATFORM_STEPS and item.handed_at is not None:
        people.update(operator_ids())
    people.discard(item.updated_by_id or 0)  # not the person who made the step
    notify.notify_users(
        sorted(people),
        kind=NotificationKind.INSTALLATION,
        title=_("Charging station at %(number)s: %(status)s")
        % {"number": item.parking_space.number, "status": item.get_status_display()},
        body=item.property.name,
        url=f"/installations/{item.pk}/",
        data={"installation_id": item.pk},
        where=item.property,
    )
    notify.emit_webhook(
        item.organization_id,
        f"installation.{item.status}",
        {"installation": data(item), "occurred_at": timezone.now().isoformat()},
    )
