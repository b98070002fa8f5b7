"""The migration that made building management a real gate keeps what
organizations already used: each one using a gated feature gets the
upgrade, logged; the others are left as they were."""

from __future__ import annotations

import importlib
from datetime import timedelta

from django.apps import apps
from django.utils import timezone

from doorkeep.accounts.models import Membership, Organization, Role
from doorkeep.accounts.services import create_organization, create_user
from doorkeep.collaborators.models import CollaboratorInvitation
from doorkeep.events.models import Event, EventKind
from doorkeep.guests.models import GuestPolicy, Panel
from doorkeep.properties.models import Entry, Property

migration = importlib.import_module(
    "doorkeep.licensing.migrations.0003_building_management_for_existing_use"
)
PASSWORD = "correct horse battery staple"


def _owner(email: str, name: str) -> tuple[Organization, Property]:
    """An organization as it could be before the gate: made with the models."""
    owner = create_user(email, PASSWORD)
    org = create_organization(owner, name)
    prop = Property.objects.create(organization=org, name=f"{name} house")
    Entry.objects.create(property=prop, name="Front door")
    return org, prop


def _since(org: Organization):
    return Organization.objects.get(pk=org.pk).building_management_since


def test_organizations_using_a_gated_feature_get_building_management_and_a_logged_reason(db):
    now = timezone.now()
    doors, doors_prop = _owner("doors@example.com", "Doors")
    Entry.objects.create(property=doors_prop, name="Garage")
    managed, _prop = _owner("managed@example.com", "Managed")
    Membership.objects.create(
        user=create_user("mia@example.com", PASSWORD),
        organization=managed,
        role=Role.BUILDING_MANAGER,
    )
    inviting, _prop = _owner("inviting@example.com", "Inviting")
    CollaboratorInvitation.objects.create(
        organization=inviting,
        email="max@example.com",
        role=Role.BUILDING_MANAGER,
        token_digest="a" * 64,
        expires_at=now + timedelta(days=3),
    )
    sharing, sharing_prop = _owner("sharing@example.com", "Sharing")
    GuestPolicy.objects.create(property=sharing_prop, sharing_enabled=True)
    panels, panels_prop = _owner("panels@example.com", "Panels")
    Panel.objects.create(entry=panels_prop.entries.get(), name="Lobby", secret="A" * 32)

    kept = migration.keep_existing_use(apps, None, now=now)

    assert kept == [doors.pk, managed.pk, inviting.pk, sharing.pk, panels.pk]
    for org in (doors, managed, inviting, sharing, panels):
        assert _since(org) == now
    logged = {e.organization_id: e for e in Event.objects.filter(kind=EventKind.ACCOUNT_UPGRADED)}
    assert set(logged) == set(kept)
    assert logged[doors.pk].data["kept_existing_use"] == ["several_entries"]
    assert logged[doors.pk].summary == (
        "Building management activated: already in use (properties with several entries)"
    )
    assert logged[panels.pk].data["kept_existing_use"] == ["panels"]
    assert "guest sharing" in logged[sharing.pk].summary


def test_organizations_that_use_nothing_of_it_are_left_without_the_upgrade(db):
    now = timezone.now()
    _plain, _prop = _owner("plain@example.com", "Plain")  # one property, one entry
    two, _prop = _owner("two@example.com", "Two houses")  # two properties, one entry each
    Entry.objects.create(
        property=Property.objects.create(organization=two, name="Second house"), name="Door"
    )
    ended, _prop = _owner("ended@example.com", "Ended")
    Membership.objects.create(
        user=create_user("gone@example.com", PASSWORD),
        organization=ended,
        role=Role.BUILDING_MANAGER,
        ends_at=now - timedelta(days=1),
    )
    _off, off_prop = _owner("off@example.com", "Sharing off")
    GuestPolicy.objects.create(property=off_prop, sharing_enabled=False)
    stale, _prop = _owner("stale@example.com", "Stale invitation")
    CollaboratorInvitation.objects.create(
        organization=stale,
        email="late@example.com",
        role=Role.BUILDING_MANAGER,
        token_digest="b" * 64,
        expires_at=now - timedelta(days=1),
    )
    readers, _prop = _owner("readers@example.com", "Readers")
    Membership.objects.create(
        user=create_user("rex@example.com", PASSWORD), organization=readers, role=Role.READ_ONLY
    )

    assert migration.keep_existing_use(apps, None, now=now) == []

    assert not Organization.objects.filter(building_management_since__isnull=False).exists()
    assert not Event.objects.filter(kind=EventKind.ACCOUNT_UPGRADED).exists()


def test_an_organization_that_already_has_the_upgrade_keeps_its_date_and_gets_no_event(db):
    now = timezone.now()
    earlier = now - timedelta(days=400)
    org, prop = _owner("early@example.com", "Early")
    Entry.objects.create(property=prop, name="Garage")
    Organization.objects.filter(pk=org.pk).update(building_management_since=earlier)

    assert migration.keep_existing_use(apps, None, now=now) == []

    assert _since(org) == earlier
    assert not Event.objects.filter(kind=EventKind.ACCOUNT_UPGRADED).exists()
