"""Building management (R12) now gates what it unlocks: several entries per
property, building managers, guest sharing and entry panels
(docs/decisions/0018-what-building-management-unlocks.md). Organizations
that already use any of these get the upgrade, activated now, so that
nothing they have stops working or can no longer be changed; an event in
each one's log says why."""

from collections import defaultdict

from django.db import migrations
from django.db.models import Count, Q
from django.utils import timezone

USE_LABELS = {
    "several_entries": "properties with several entries",
    "building_managers": "building managers",
    "manager_invitations": "invitations to building managers",
    "guest_sharing": "guest sharing",
    "panels": "entry panels",
}


def organizations_using_building_management(apps, now):
    """{organization id: [uses]}: what each organization already uses of
    building management, in the order of USE_LABELS."""
    Property = apps.get_model("properties", "Property")
    Entry = apps.get_model("properties", "Entry")
    Membership = apps.get_model("accounts", "Membership")
    CollaboratorInvitation = apps.get_model("collaborators", "CollaboratorInvitation")
    GuestPolicy = apps.get_model("guests", "GuestPolicy")
    Panel = apps.get_model("guests", "Panel")
    found = {
        "several_entries": Property.objects.filter(
            pk__in=Entry.objects.values("property_id")
            .annotate(n=Count("id"))
            .filter(n__gt=1)
            .values("property_id")
        ).values_list("organization_id", flat=True),
        "building_managers": Membership.objects.filter(role="building_manager")
        .filter(Q(ends_at__isnull=True) | Q(ends_at__gt=now))
        .values_list("organization_id", flat=True),
        "manager_invitations": CollaboratorInvitation.objects.filter(
            role="building_manager", status="sent", expires_at__gt=now
        ).values_list("organization_id", flat=True),
        "guest_sharing": GuestPolicy.objects.filter(sharing_enabled=True).values_list(
            "property__organization_id", flat=True
        ),
        "panels": Panel.objects.values_list("entry__property__organization_id", flat=True),
    }
    uses = defaultdict(list)
    for use, org_ids in found.items():
        for org_id in sorted(set(org_ids)):
            uses[org_id].append(use)
    return dict(uses)


def keep_existing_use(apps, schema_editor=None, now=None):
    """Activate building management for every organization that uses it
    without having it; returns their ids."""
    Organization = apps.get_model("accounts", "Organization")
    Event = apps.get_model("events", "Event")
    now = now or timezone.now()
    uses = organizations_using_building_management(apps, now)
    kept = []
    for org in Organization.objects.filter(
        pk__in=list(uses), building_management_since__isnull=True
    ).order_by("pk"):
        org.building_management_since = now
        org.save(update_fields=["building_management_since"])
        in_use = ", ".join(USE_LABELS[use] for use in uses[org.pk])
        Event.objects.create(
            organization_id=org.pk,
            kind="account.upgraded",
            occurred_at=now,
            received_at=now,
            summary=f"Building management activated: already in use ({in_use})"[:300],
            data={"upgrade": "building_management", "kept_existing_use": uses[org.pk]},
        )
        kept.append(org.pk)
    return kept


class Migration(migrations.Migration):
    dependencies = [
        ("licensing", "0002_catalogue_and_backfill"),
        ("accounts", "0003_membership_scope"),
        ("properties", "0002_site_billing_and_portal_code"),
        ("collaborators", "0001_initial"),
        ("guests", "0002_invitation_expiry_reported_at"),
        ("events", "0007_laundry_and_billing"),
    ]
    operations = [migrations.RunPython(keep_existing_use, migrations.RunPython.noop)]
