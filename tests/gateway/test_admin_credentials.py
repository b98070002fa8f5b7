"""A credential switched off, on again or deleted in the admin leaves (or
rejoins) the lists of the locks it opens: their versions go up and a
connected lock hears of it within a second."""

from __future__ import annotations

import pytest
from gateway_helpers import PROMPTLY, give, version

from doorkeep.accounts.models import Organization, Role
from doorkeep.keys.models import Credential

GATEWAY_POLL_INTERVAL = 60  # only the notice after the commit can be in time


@pytest.fixture
def operator(world):
    user = world.charlie
    platform = Organization.objects.create(name="Doorkeep platform", is_platform=True)
    platform.memberships.create(user=user, role=Role.PLATFORM_OPERATOR)
    user.is_staff = user.is_superuser = True
    user.save()
    return world.client(user)


def change_form(credential: Credential, **fields) -> dict[str, str]:
    form = {
        "person": str(credential.person_id),
        "kind": credential.kind,
        "display": credential.display,
        "created_at_0": credential.created_at.strftime("%Y-%m-%d"),
        "created_at_1": credential.created_at.strftime("%H:%M:%S"),
        "deactivated_at_0": "",
        "deactivated_at_1": "",
    }
    form.update(fields)
    return form


def test_a_tag_switched_off_in_the_admin_leaves_the_lock_at_once(world, gateway, device, operator):
    key = give(world, pin="2580", tag="04A22B1C")
    gateway.run(device.connect())
    tag = Credential.objects.get(person=key.person, kind="tag")
    before = version(world)
    url = f"/admin/keys/credential/{tag.pk}/change/"

    response = operator.post(
        url, change_form(tag, deactivated_at_0="2026-01-01", deactivated_at_1="10:00:00")
    )

    assert response.status_code == 302, response.content[:2000]
    assert version(world) == before + 1
    gateway.run(device.wait_for_version(version(world), timeout=PROMPTLY))
    assert device.decide("tag", "04A22B1C").reason == "unknown_credential"
    assert device.decide("pin", "2580").granted

    operator.post(url, change_form(tag))  # switched on again

    assert version(world) == before + 2
    gateway.run(device.wait_for_version(version(world), timeout=PROMPTLY))
    assert device.decide("tag", "04A22B1C").granted


def test_saving_a_credential_unchanged_leaves_the_version_alone(world, operator):
    key = give(world, tag="04A22B1C")
    tag = Credential.objects.get(person=key.person, kind="tag")
    before = version(world)

    operator.post(f"/admin/keys/credential/{tag.pk}/change/", change_form(tag))

    assert version(world) == before


def test_a_credential_deleted_in_the_admin_leaves_the_lock_at_once(
    world, gateway, device, operator
):
    key = give(world, pin="2580", tag="04A22B1C")
    gateway.run(device.connect())
    tag = Credential.objects.get(person=key.person, kind="tag")
    before = version(world)

    response = operator.post(f"/admin/keys/credential/{tag.pk}/delete/", {"post": "yes"})

    assert response.status_code == 302
    assert version(world) == before + 1
    gateway.run(device.wait_for_version(version(world), timeout=PROMPTLY))
    assert device.decide("tag", "04A22B1C").reason == "unknown_credential"
    assert device.decide("pin", "2580").granted
