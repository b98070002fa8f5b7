"""Reading badges and badge requests."""

from __future__ import annotations

from django.db.models import QuerySet

from doorkeep.accounts.models import Membership, Role
from doorkeep.badges.models import Badge, BadgeRequest, BadgeSource, BadgeStatus
from doorkeep.properties.models import Property
from doorkeep.residents.services import site_today


def third_party_badges_of_residents(prop: Property) -> QuerySet[Badge]:
    """Active third-party badges of the site's residents today: those that a
    billing-and-payments site does not accept on its equipment."""
    from doorkeep.residents.selectors import residencies_on

    people = residencies_on(prop, site_today(prop)).values("person_id")
    return Badge.objects.filter(
        person_id__in=people, source=BadgeSource.THIRD_PARTY, status=BadgeStatus.ACTIVE
    ).select_related("person")


def badges_of_site(prop: Property) -> QuerySet[Badge]:
    """Every badge of a person who lives or lived at the site."""
    return (
        Badge.objects.filter(person__residencies__unit__property=prop)
        .distinct()
        .select_related("person")
        .order_by("person__name", "-created_at", "-id")
    )


def operator_ids() -> list[int]:
    """The accounts that work the platform's badge queue."""
    return list(
        Membership.objects.filter(
            role=Role.PLATFORM_OPERATOR, organization__is_platform=True, user__is_active=True
        ).values_list("user_id", flat=True)
    )


def requests_of_person_ids(person_ids: list[int]) -> QuerySet[BadgeRequest]:
    return BadgeRequest.objects.filter(person_id__in=person_ids).select_related(
        "property", "badge", "parking_space"
    )
