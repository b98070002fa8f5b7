"""A notice names many stations; the gateway reads their lists in one call,
once per site and parking space (csms._current_many). Each station must
still get its own list: the shared station and the private one at Rosa's
parking space disagree about a neighbour's badge."""

from __future__ import annotations

from datetime import date

import pytest
from charger_values import UID
from csms_helpers import VERSIONS, Linked
from django.db import transaction
from gateway_helpers import eventually

from doorkeep.badges.models import Badge, BadgeSource, BadgeStatus
from doorkeep.badges.services import _switch_on
from doorkeep.chargers.models import Station
from doorkeep.residents.services import ResidentSpec, add_resident

NEIGHBOUR = "04C0FFEE000001"  # Nina's badge; Nina lives in B-3, the space P7 is A-12's


def _statuses(linked: Linked, since: int) -> list[str]:
    return [u.entries[NEIGHBOUR] for u in linked.cp.updates[since:] if NEIGHBOUR in u.entries]


@pytest.mark.parametrize("version", VERSIONS)
def test_one_notice_gives_the_shared_and_the_private_station_each_its_own_list(
    stations, gateway, version
):
    site = stations.site
    with (
        Linked(gateway, "CP-SHARED-1", version, keeper=True) as shared,
        Linked(gateway, "CP-PRIVATE-7", version, keeper=True) as private,
    ):
        shared.boot()
        private.boot()
        eventually(lambda: Station.objects.filter(acked_version__gt=0).count() == 2)
        nina = add_resident(
            site.world.alice,
            site.world.prop.pk,
            ResidentSpec(
                name="Nina Neighbour",
                email="nina@example.com",
                move_in=date(2024, 1, 1),
                unit_id=site.other_unit.pk,
            ),
        ).person
        eventually(
            lambda: all(row.acked_version == row.list_version for row in Station.objects.all())
        )
        seen = (len(shared.cp.updates), len(private.cp.updates))
        # Her badge switched on: one notice names both stations.
        with transaction.atomic():
            badge = Badge.objects.create(
                organization_id=site.world.prop.organization_id,
                person=nina,
                uid=NEIGHBOUR,
                source=BadgeSource.PLATFORM,
                status=BadgeStatus.PENDING,
            )
            _switch_on(badge)
        eventually(lambda: _statuses(shared, seen[0]) and _statuses(private, seen[1]))
        assert _statuses(shared, seen[0])[-1] == "Accepted"
        assert _statuses(private, seen[1])[-1] == "Invalid"  # not her parking space
        assert all(UID not in u.entries for u in shared.cp.updates[seen[0] :])
        eventually(
            lambda: all(row.acked_version == row.list_version for row in Station.objects.all())
        )
