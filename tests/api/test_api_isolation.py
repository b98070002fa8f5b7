"""Tenant isolation and roles, endpoint by endpoint.

An outsider (Charlie) gets 404 for every one of Alice's objects on every
endpoint of the schema: never a 403 that confirms they exist, never data.
A plain member (Bob) may look but gets 403, with a reason, for every change
and for the event log.

Alice's organization also holds a key to Dora's lock (shared management): the
endpoints about shared keys are walked with that key. Her Canal House has a
unit where Dana and Alice live, a parking space, an existing badge of Dana's
and a badge request of Alice's; only the platform operator works the badge
queue, so to everyone else those endpoints answer 404. A shared charging
station there has a session of Dana's running. Alice invited an agent
to collaborate, read only, on the Canal House; collaborators are her business
alone (a lock owner's), so Bob is refused them with a reason."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import pytest
from apihelp import error_of, push_keys
from django.utils import timezone

from doorkeep.accounts.models import ApiToken, Membership, Organization
from doorkeep.accounts.services import create_organization, create_token, create_user
from doorkeep.api import api
from doorkeep.badges.models import Badge, BadgeRequest
from doorkeep.badges.services import RequestSpec, register_existing_badge, request_badge
from doorkeep.billing import runs as billing_runs
from doorkeep.billing import services as billing
from doorkeep.billing.camt import demo_bank_file
from doorkeep.billing.models import BillingRun, Invoice, Issuer, SiteBilling, Tariff
from doorkeep.billing.payments import import_bank_file
from doorkeep.chargers import reports as charger_reports
from doorkeep.chargers.models import ChargingSession, Station
from doorkeep.chargers.services import StationSpec, register_station
from doorkeep.collaborators import services as collaborators
from doorkeep.collaborators.models import CollaboratorInvitation
from doorkeep.events.models import Event
from doorkeep.gateway.models import Device
from doorkeep.guests.models import GuestPolicy, Invitation, Panel
from doorkeep.guests.presence import add_panel
from doorkeep.guests.services import PolicySpec, invite, set_policy
from doorkeep.installations.models import Installation
from doorkeep.installations.services import request_installation
from doorkeep.keys.models import Key, Person
from doorkeep.keys.services import CredentialSpec, HolderSpec, KeySpec, issue_key
from doorkeep.keys.sharing import issue_key_to_organization
from doorkeep.laundry.models import Cycle, Machine
from doorkeep.laundry.services import MachineSpec, register_machine
from doorkeep.licensing.models import KeyAllotment, Period, PrepaidCode
from doorkeep.licensing.services import generate_batch, redeem_for_lock
from doorkeep.locks.models import Lock
from doorkeep.locks.services import add_manufactured_lock, register_lock
from doorkeep.notify.models import Notification, OutboxMessage, PushSubscription, WebhookEndpoint
from doorkeep.notify.services import create_endpoint, notify_users, subscribe_push
from doorkeep.properties.models import Entry, Property
from doorkeep.properties.services import add_entry, create_property
from doorkeep.residents.models import LoginRequest, ParkingSpace, Residency, Unit
from doorkeep.residents.portal import ask_for_login, portal_code
from doorkeep.residents.services import (
    ResidentSpec,
    add_parking_space,
    add_resident,
    add_unit,
    set_billing_mode,
)

SECRET = "ABCD-EFGH-JKLM-NPQR"
ALICE_SECRETS = (
    "Canal House",
    "Keizersgracht",
    "Front door",
    "Garage",
    "DK-TEST-0001",
    "Dana Holder",
    "dana@example.com",
    "Alice",
    "DK-DORA-0001",
    "Depot",
    "hooks.alice.example",
    "Gina opened",
    "push.alice.example",
    "Attic 7",
    "04C0FFEE",
    "EVB-CANAL-01",
    "agent@example.com",
    "CP-CANAL-1",
    "WM-CANAL-01",
    "Harbour Lofts",
)
ALICE_PUSH = "https://push.alice.example/send/alice-phone"


@dataclass
class Ids:
    lock_id: int
    property_id: int
    key_id: int
    token_id: int
    organization_id: int
    shared_key_id: int  # the key Alice's organization holds to Dora's lock
    lock_code: str  # unused prepaid codes, bought by Alice
    upgrade_code: str
    entry_id: int  # the entry of Alice's lock, where Alice holds a phone key
    invitation_id: int  # Alice, a resident too, invited a guest to that entry
    panel_id: int  # a panel at that entry
    notification_id: int  # one of Alice's notifications
    webhook_id: int  # a webhook endpoint of Alice's organization
    unit_id: int  # a unit of the Canal House, where Dana and Alice live
    residency_id: int  # Dana's residency there
    person_id: int  # Dana, a resident
    badge_id: int  # Dana's existing badge, active
    request_id: int  # Alice's request for a badge, waiting for the operator
    installation_id: int  # Alice's request for a charging station at P10, her space
    login_request_id: int  # Eve's confirmed request for a portal login, for Attic 7
    portal_code: str  # the code on the notice in Alice's Canal House
    membership_id: int  # Bob's membership of Alice's organization (a collaborator)
    collaborator_invitation_id: int  # Alice invited an agent, read only, to the Canal House
    station_id: int  # a shared charging station at the Canal House
    session_id: int  # Dana's session running there
    month: str = "2025-07"  # a month, for the consumption paths
    machine_id: int = 0  # a washer at the Canal House, with a cycle of Dana's
    # Alice's Harbour Lofts bills through the platform (billing.api): a tariff
    # that has not started, last month's finalized run, Dana's invoice in it
    tariff_id: int = 0
    run_id: int = 0
    invoice_id: int = 0
    bank_file_id: int = 0  # Alice's upload that paid Dana's invoice


def _code(sku: str) -> str:
    _batch, (code,) = generate_batch(None, sku, 1)
    return code


@pytest.fixture
def alices(world) -> Ids:
    key = issue_key(
        world.alice,
        world.lock.pk,
        KeySpec(
            holder=HolderSpec(name="Dana Holder", email="dana@example.com"),
            credentials=[CredentialSpec("pin", "73950264")],
        ),
    )
    # Alice's own phone key to the entry of her lock (remote unlock).
    issue_key(
        world.alice,
        world.lock.pk,
        KeySpec(HolderSpec(name="Alice", email="alice@example.com"), [CredentialSpec("phone")]),
    )
    token, _ = create_token(world.alice, "alice's token")
    add_manufactured_lock("DK-FREE-0001", claim_secret=SECRET)

    # Dora gives Alice's organization a key to her lock; Alice issues one under it.
    dora = create_user("dora@example.com", "correct horse battery staple")
    dora_org = create_organization(dora, "Dora Facilities")
    dora_entry = add_entry(dora, create_property(dora, dora_org.pk, name="Depot").pk, name="Gate")
    add_manufactured_lock("DK-DORA-0001", claim_secret=SECRET)
    dora_lock = register_lock(
        dora, serial="DK-DORA-0001", claim_secret=SECRET, entry_id=dora_entry.pk
    )
    redeem_for_lock(dora, dora_lock.pk, _code("MGMT-5Y"))
    redeem_for_lock(dora, dora_lock.pk, _code("ORGS-5Y"))
    Organization.objects.filter(pk=world.org.pk).update(
        organization_management_since=timezone.now()
    )
    shared = issue_key_to_organization(dora, dora_lock.pk, world.org.pk)
    (notification,) = notify_users(
        [world.alice.pk], kind="guest_unlock", title="Gina opened Front door", body="At 9:00"
    )
    subscribe_push(world.alice, endpoint=ALICE_PUSH, **push_keys())
    hook = create_endpoint(world.alice, world.org.pk, url="https://hooks.alice.example/doorkeep")
    issue_key(
        world.alice,
        dora_lock.pk,
        KeySpec(
            holder=HolderSpec(name="Dana Holder", email="dana@example.com"),
            credentials=[CredentialSpec("pin", "73950264")],
        ),
        parent_key_id=shared.pk,
    )
    set_policy(
        world.alice,
        world.prop.pk,
        PolicySpec(sharing_enabled=True, shareable_entry_ids=[world.entry.pk]),
    )
    invitation = invite(world.alice, world.prop.pk, "gina@example.com", [world.entry.pk])
    panel, _secret = add_panel(world.alice, world.entry.pk, "Lobby")
    unit = add_unit(world.alice, world.prop.pk, "Attic 7")
    add_parking_space(
        world.alice, world.prop.pk, "P9", unit_id=unit.pk, station_serial="EVB-CANAL-01"
    )
    dana_home = add_resident(
        world.alice,
        world.prop.pk,
        ResidentSpec("Dana Holder", "dana@example.com", date(2024, 1, 1), unit_id=unit.pk),
    )
    add_resident(
        world.alice,
        world.prop.pk,
        ResidentSpec("Alice", "alice@example.com", date(2024, 1, 1), unit_id=unit.pk),
    )
    badge = register_existing_badge(
        world.alice, world.prop.pk, dana_home.person_id, uid="04C0FFEE", atqa="0004", sak="08"
    )
    badge_request = request_badge(world.alice, RequestSpec(property_id=world.prop.pk))
    add_parking_space(world.alice, world.prop.pk, "P10", unit_id=unit.pk)
    installation = request_installation(
        world.alice, world.prop.pk, parking_space="P10", wished_power_kw=11
    )
    code = portal_code(world.alice, world.prop.pk)
    login = ask_for_login(code, name="Eve", email="eve@example.com", unit="Attic 7", client="")
    LoginRequest.objects.filter(pk=login.pk).update(status="pending")
    agent = collaborators.invite(
        world.alice,
        world.org.pk,
        email="agent@example.com",
        role="read_only",
        property_id=world.prop.pk,
    )
    station, _password = register_station(
        world.alice, world.prop.pk, StationSpec("CP-CANAL-1", name="Courtyard")
    )
    started = charger_reports.start(
        station.pk,
        connector=1,
        id_tag="04C0FFEE",
        meter_start_wh=1000,
        at=timezone.now() - timedelta(minutes=30),
    )
    return Ids(
        world.lock.pk,
        world.prop.pk,
        key.pk,
        token.pk,
        world.org.pk,
        shared.pk,
        _code("MGMT-5Y"),
        _code("ORG-MGMT"),
        world.entry.pk,
        invitation.invitation.pk,
        panel.pk,
        notification.pk,
        hook.pk,
        unit.pk,
        dana_home.pk,
        dana_home.person_id,
        badge.pk,
        badge_request.pk,
        installation.pk,
        login.pk,
        code,
        Membership.objects.get(user=world.bob, organization=world.org).pk,
        agent.invitation.pk,
        station.pk,
        ChargingSession.objects.get(station=station, transaction_id=started.transaction_id).pk,
        machine_id=_washer(world, dana_home.person_id),
        **_billing(world),
    )


def _billing(world: Any) -> dict[str, int]:
    """Alice's Harbour Lofts, in billing-and-payments mode with her own issuer:
    Dana lives there and pays a monthly fee; last month's run is finalized."""
    lofts = create_property(world.alice, world.org.pk, name="Harbour Lofts")
    set_billing_mode(world.alice, lofts.pk, "billing_and_payments", confirm=True)
    loft = add_unit(world.alice, lofts.pk, "Loft 1")
    add_resident(
        world.alice,
        lofts.pk,
        ResidentSpec("Dana Holder", "dana@example.com", date(2024, 1, 1), unit_id=loft.pk),
    )
    fee = billing.TariffSpec(valid_from=date(2024, 1, 1), vat_rate=2100, monthly_fee=1500)
    billing.create_tariff(None, lofts.pk, fee, allow_past=True)
    future = billing.create_tariff(
        world.alice,
        lofts.pk,
        billing.TariffSpec(valid_from=billing.today_at(lofts) + timedelta(days=400)),
    )
    issuer = billing.create_issuer(
        world.alice,
        billing.IssuerSpec(
            "Alice Locks BV", "1017 AB", "Amsterdam", "NL91ABNA0417164300", "EUR", country="NL"
        ),
        organization_id=world.org.pk,
    )
    billing.set_site_billing(world.alice, lofts.pk, issuer.pk)
    last_month = (billing.today_at(lofts).replace(day=1) - timedelta(days=1)).replace(day=1)
    run = billing_runs.draft_run(world.alice, lofts.pk, last_month)
    billing_runs.finalize_run(world.alice, run.pk)
    invoice = Invoice.objects.get(run=run)
    bank_file = import_bank_file(
        world.alice, demo_bank_file([invoice]), "camt054.xml", organization_id=world.org.pk
    )
    return {
        "tariff_id": future.pk,
        "run_id": run.pk,
        "invoice_id": invoice.pk,
        "bank_file_id": bank_file.pk,
    }


def _washer(world: Any, person_id: int) -> int:
    """Alice's washer at the Canal House, with a cycle of Dana's."""
    washer, _secret = register_machine(
        world.alice, world.prop.pk, MachineSpec("WM-CANAL-01", name="Laundry room")
    )
    Cycle.objects.create(
        organization_id=world.org.pk,
        property=world.prop,
        machine=washer,
        seq=1,
        person_id=person_id,
        started_at=timezone.now() - timedelta(hours=2),
        ended_at=timezone.now() - timedelta(hours=1),
        energy_wh=800,
    )
    return washer.pk


def bodies(world: Any, ids: Ids | None = None) -> dict[tuple[str, str], Any]:
    """A plausible body for each operation, aimed at Alice's objects."""
    return {
        ("POST", "/api/v1/properties"): {"organization_id": world.org.pk, "name": "Mine now"},
        ("POST", "/api/v1/properties/{property_id}/entries"): {"name": "Back door"},
        ("POST", "/api/v1/locks"): {
            "serial": "DK-FREE-0001",
            "claim_secret": SECRET,
            "entry_id": world.entry2.pk,
        },
        ("PATCH", "/api/v1/locks/{lock_id}"): {"name": "Mine now"},
        ("POST", "/api/v1/locks/{lock_id}/keys"): {
            "name": "Intruder",
            "credentials": [{"kind": "pin", "value": "24682468"}],
        },
        ("POST", "/api/v1/keys/{key_id}/revoke"): {},
        ("POST", "/api/v1/locks/{lock_id}/access-decisions"): {"kind": "pin", "value": "73950264"},
        ("PATCH", "/api/v1/keys/{key_id}"): {"note": "Mine now", "valid_until": None},
        ("POST", "/api/v1/locks/{lock_id}/licence/codes"): {"code": ids.lock_code if ids else ""},
        ("POST", "/api/v1/locks/{lock_id}/organization-keys"): {
            "organization_id": world.charlie_org.pk
        },
        ("POST", "/api/v1/organizations/{organization_id}/upgrades/building-management"): {},
        ("POST", "/api/v1/organizations/{organization_id}/upgrades/codes"): {
            "code": ids.upgrade_code if ids else ""
        },
        ("POST", "/api/v1/shared-keys/{shared_key_id}/keys"): {
            "name": "Intruder",
            "credentials": [{"kind": "pin", "value": "24682468"}],
        },
        ("POST", "/api/v1/entries/{entry_id}/unlock"): {},
        ("POST", "/api/v1/locks/{lock_id}/device-secret"): {},
        ("PUT", "/api/v1/properties/{property_id}/guest-policy"): {
            "sharing_enabled": True,
            "shareable_entry_ids": [world.entry.pk, world.entry2.pk],
        },
        ("POST", "/api/v1/entries/{entry_id}/panels"): {"name": "Mine now"},
        ("POST", "/api/v1/invitations"): {
            "property_id": world.prop.pk,
            "email": "intruder@example.com",
            "entry_ids": [world.entry.pk],
        },
        ("POST", "/api/v1/invitations/{invitation_id}/resend"): {},
        ("POST", "/api/v1/invitations/{invitation_id}/revoke"): {},
        ("POST", "/api/v1/guest/invitations/{invitation_id}/accept"): {},
        ("POST", "/api/v1/guest/invitations/{invitation_id}/decline"): {},
        ("POST", "/api/v1/guest/invitations/{invitation_id}/leave"): {},
        ("POST", "/api/v1/guest/entries/{entry_id}/verify"): {"code": "123456"},
        ("POST", "/api/v1/notifications/{notification_id}/read"): {},
        ("POST", "/api/v1/notifications/read-all"): {},
        ("POST", "/api/v1/push/subscriptions"): {
            "endpoint": "https://push.example.net/send/charlie-phone",
            "keys": push_keys(),
        },
        ("DELETE", "/api/v1/push/subscriptions"): {"endpoint": ALICE_PUSH},
        ("POST", "/api/v1/organizations/{organization_id}/webhooks"): {
            "url": "https://evil.example/hook"
        },
        ("PATCH", "/api/v1/organizations/{organization_id}/webhooks/{webhook_id}"): {
            "active": False
        },
        ("POST", "/api/v1/organizations/{organization_id}/webhooks/{webhook_id}/test"): {},
        ("POST", "/api/v1/properties/{property_id}/units"): {"label": "Mine now"},
        ("POST", "/api/v1/properties/{property_id}/parking-spaces"): {
            "number": "P66",
            "unit_id": ids.unit_id if ids else None,
        },
        ("POST", "/api/v1/properties/{property_id}/residents"): {
            "name": "Intruder",
            "email": "intruder@example.com",
            "unit": "Attic 7",
            "move_in": "2024-01-01",
        },
        ("PATCH", "/api/v1/residents/{residency_id}"): {"move_out": "2024-12-31"},
        ("POST", "/api/v1/properties/{property_id}/residents/import"): {
            "csv": "Intruder,intruder@example.com,Attic 7,2024-01-01",
            "add_missing_units": True,
        },
        ("PUT", "/api/v1/properties/{property_id}/billing"): {
            "billing_mode": "billing_and_payments",
            "confirm": True,
            "extra_badge_price_minor": 999,
        },
        ("POST", "/api/v1/badge-requests"): {"property_id": world.prop.pk},
        ("POST", "/api/v1/badge-requests/{request_id}/received"): {},
        ("POST", "/api/v1/badges/{badge_id}/lost"): {"replacement": False},
        ("POST", "/api/v1/badges/{badge_id}/reactivate"): {},
        ("POST", "/api/v1/badges/{badge_id}/return"): {},
        ("POST", "/api/v1/properties/{property_id}/badges"): {
            "person_id": ids.person_id if ids else 1,
            "uid": "04BADBAD",
            "atqa": "0004",
            "sak": "08",
        },
        ("POST", "/api/v1/properties/{property_id}/badges/import"): {
            "csv": "04BADBAD,0004,08,dana@example.com"
        },
        ("POST", "/api/v1/operator/badge-requests/{request_id}/approve"): {},
        ("POST", "/api/v1/operator/badge-requests/{request_id}/refuse"): {"reason": "Mine now"},
        ("POST", "/api/v1/operator/badge-requests/{request_id}/assign"): {"uid": "04BADBAD"},
        ("POST", "/api/v1/operator/badge-requests/{request_id}/deliver"): {
            "delivery": "handed_over"
        },
        ("POST", "/api/v1/installations"): {
            "property_id": world.prop.pk,
            "parking_space": "P10",
            "wished_power_kw": 11,
        },
        ("POST", "/api/v1/installations/{installation_id}/decision"): {"approve": True},
        ("POST", "/api/v1/installations/{installation_id}/hand-over"): {},
        ("POST", "/api/v1/installations/{installation_id}/schedule"): {"day": "2030-01-01"},
        ("POST", "/api/v1/installations/{installation_id}/installed"): {
            "station_serial": "EVB-MINE-NOW"
        },
        ("POST", "/api/v1/installations/{installation_id}/cancel"): {},
        ("POST", "/api/v1/portal/login-requests"): {
            "code": ids.portal_code if ids else "",
            "name": "Curious",
            "email": "curious@example.com",
            "unit": "Attic 7",
        },
        ("POST", "/api/v1/portal/login-requests/confirm"): {"token": "not-a-token"},
        ("POST", "/api/v1/login-requests/{login_request_id}/decision"): {"approve": True},
        ("POST", "/api/v1/properties/{property_id}/residents/invite"): {},
        ("POST", "/api/v1/organizations/{organization_id}/collaborator-invitations"): {
            "email": "intruder@example.com",
            "role": "building_manager",
            "property_id": world.prop.pk,
        },
        ("POST", "/api/v1/collaborator-invitations/{collaborator_invitation_id}/revoke"): {},
        ("POST", "/api/v1/collaborator-invitations/accept"): {"token": "not-a-token"},
        ("POST", "/api/v1/properties/{property_id}/stations"): {"charge_point_id": "CP-MINE-NOW"},
        ("PATCH", "/api/v1/stations/{station_id}"): {"name": "Mine now", "parking_space": "P9"},
        ("POST", "/api/v1/stations/{station_id}/password"): {},
        ("POST", "/api/v1/stations/{station_id}/commands"): {"action": "reset", "hard": True},
        ("POST", "/api/v1/me/charging"): {"station_id": ids.station_id if ids else 1},
        ("POST", "/api/v1/me/charging-sessions/{session_id}/stop"): {},
        ("POST", "/api/v1/properties/{property_id}/machines"): {"serial": "WM-MINE-NOW"},
        ("PATCH", "/api/v1/machines/{machine_id}"): {"name": "Mine now"},
        ("POST", "/api/v1/machines/{machine_id}/secret"): {},
        ("POST", "/api/v1/me/laundry"): {"machine_id": ids.machine_id if ids else 1},
        ("POST", "/api/v1/properties/{property_id}/tariffs"): {"valid_from": "2099-01-01"},
        ("POST", "/api/v1/issuers"): {
            "organization_id": world.org.pk,
            "name": "Mine now",
            "postcode": "1200",
            "city": "Genève",
            "account": "CH9300762011623852957",
            "currency": "CHF",
        },
        ("PUT", "/api/v1/properties/{property_id}/invoicing"): {"issuer_id": 1},
        ("POST", "/api/v1/properties/{property_id}/billing-runs"): {"month": "2024-01"},
        ("POST", "/api/v1/billing-runs/{run_id}/finalize"): {},
        ("POST", "/api/v1/invoices/{invoice_id}/credit-notes"): {"reason": "Mine now"},
        ("POST", "/api/v1/invoices/{invoice_id}/mark-paid"): {"note": "Paid in cash"},
        # a multipart upload: the organization named is Alice's (``call`` adds it)
        ("POST", "/api/v1/bank-files"): {},
    }


# Operations that name none of Alice's objects: they answer Charlie, with his own data.
NOT_ABOUT_ALICE = {
    ("POST", "/api/v1/auth/tokens"),
    ("GET", "/api/v1/bank-files"),
    ("GET", "/api/v1/auth/tokens"),
    ("GET", "/api/v1/me"),
    ("GET", "/api/v1/properties"),
    ("GET", "/api/v1/locks"),
    ("GET", "/api/v1/licences/ending-soon"),
    ("GET", "/api/v1/organizations"),
    ("GET", "/api/v1/organizations/registered"),
    ("GET", "/api/v1/shared-keys"),
    ("GET", "/api/v1/me/entries"),
    ("GET", "/api/v1/invitations"),
    ("GET", "/api/v1/guest/invitations"),
    ("GET", "/api/v1/guest/locations"),
    ("GET", "/api/v1/notifications"),
    ("POST", "/api/v1/notifications/read-all"),
    ("GET", "/api/v1/push/vapid-public-key"),
    ("POST", "/api/v1/push/subscriptions"),
    ("GET", "/api/v1/webhook-event-types"),
    ("GET", "/api/v1/me/badges"),
    ("GET", "/api/v1/me/badge-requests"),
    ("GET", "/api/v1/installations"),
    ("GET", "/api/v1/me/charging-sessions"),
    ("GET", "/api/v1/me/charging-sessions.csv"),
    ("GET", "/api/v1/me/machines"),
    ("GET", "/api/v1/me/cycles"),
    ("GET", "/api/v1/me/consumption"),
    ("GET", "/api/v1/me/consumption.csv"),
    ("GET", "/api/v1/me/consumption/{month}"),
    ("GET", "/api/v1/me/consumption/{month}.csv"),
    ("GET", "/api/v1/issuers"),  # the platform's and the caller's organizations'
    ("GET", "/api/v1/me/invoices"),
    # public: anyone with the notice's code may ask; the answer names nothing
    ("POST", "/api/v1/portal/login-requests"),
}

# The platform operator's badge queue: to everyone else, Alice too, it does not exist.
OPERATOR_ONLY = {
    ("GET", "/api/v1/operator/badge-requests"),
    ("POST", "/api/v1/operator/badge-requests/{request_id}/approve"),
    ("POST", "/api/v1/operator/badge-requests/{request_id}/refuse"),
    ("POST", "/api/v1/operator/badge-requests/{request_id}/assign"),
    ("POST", "/api/v1/operator/badge-requests/{request_id}/deliver"),
}

# The directory of organizations that can receive keys (R11) names them to every
# lock owner, Alice's too once it has organization management: by design, its
# id and name, nothing else.
DIRECTORY = ("GET", "/api/v1/organizations/registered")


def operations() -> list[tuple[str, str]]:
    schema = api.get_openapi_schema()
    return sorted((m.upper(), p) for p, ops in schema["paths"].items() for m in ops)


def snapshot() -> tuple[Any, ...]:
    return (
        list(
            Lock.objects.order_by("pk").values_list(
                "pk", "organization_id", "name", "entry_id", "credential_version"
            )
        ),
        list(Key.objects.order_by("pk").values_list("pk", "revoked_at")),
        list(Person.objects.order_by("pk").values_list("pk", "name")),
        list(
            Property.objects.order_by("pk").values_list(
                "pk", "name", "billing_mode", "currency", "extra_badge_price_minor"
            )
        ),
        list(Entry.objects.order_by("pk").values_list("pk", "name")),
        list(
            ApiToken.objects.filter(user__email="alice@example.com")
            .order_by("pk")
            .values_list("pk", "revoked_at")
        ),
        list(Key.objects.order_by("pk").values_list("pk", "valid_until", "note")),
        list(PrepaidCode.objects.order_by("pk").values_list("pk", "redeemed_at", "lock_id")),
        list(Period.objects.order_by("pk").values_list("pk", "lock_id", "kind", "ends_at")),
        list(KeyAllotment.objects.order_by("pk").values_list("pk", "lock_id", "keys")),
        list(
            Organization.objects.order_by("pk").values_list(
                "pk", "building_management_since", "organization_management_since"
            )
        ),
        list(Device.objects.order_by("pk").values_list("pk", "lock_id", "secret_digest")),
        list(Invitation.objects.order_by("pk").values_list("pk", "status", "nonce", "times_sent")),
        list(Panel.objects.order_by("pk").values_list("pk", "entry_id", "last_step")),
        list(GuestPolicy.objects.order_by("pk").values_list("pk", "sharing_enabled")),
        list(Notification.objects.order_by("pk").values_list("pk", "user_id", "read_at")),
        list(PushSubscription.objects.filter(endpoint=ALICE_PUSH).values_list("pk", "user_id")),
        list(WebhookEndpoint.objects.order_by("pk").values_list("pk", "url", "active")),
        list(Unit.objects.order_by("pk").values_list("pk", "property_id", "label")),
        # an unconfirmed login request is anyone's (the public may ask): it
        # changes nothing of Alice's until its address is confirmed
        list(
            LoginRequest.objects.exclude(status="unconfirmed")
            .order_by("pk")
            .values_list("pk", "status")
        ),
        list(Installation.objects.order_by("pk").values_list("pk", "status", "station_serial")),
        list(
            ParkingSpace.objects.order_by("pk").values_list(
                "pk", "number", "unit_id", "station_serial"
            )
        ),
        list(
            Residency.objects.order_by("pk").values_list(
                "pk", "unit_id", "person_id", "move_in", "move_out"
            )
        ),
        list(Badge.objects.order_by("pk").values_list("pk", "person_id", "uid", "status")),
        list(
            BadgeRequest.objects.order_by("pk").values_list(
                "pk", "status", "badge_id", "refusal_reason"
            )
        ),
        OutboxMessage.objects.count(),
        list(
            Membership.objects.order_by("pk").values_list(
                "pk", "user_id", "organization_id", "role", "property_id", "ends_at"
            )
        ),
        list(CollaboratorInvitation.objects.order_by("pk").values_list("pk", "status")),
        list(
            Station.objects.order_by("pk").values_list(
                "pk", "name", "parking_space_id", "password_digest", "removed_at", "list_version"
            )
        ),
        list(ChargingSession.objects.order_by("pk").values_list("pk", "stopped_at")),
        list(
            Machine.objects.order_by("pk").values_list(
                "pk", "name", "kind", "secret_digest", "removed_at", "list_version"
            )
        ),
        list(Cycle.objects.order_by("pk").values_list("pk", "ended_at")),
        list(Tariff.objects.order_by("pk").values_list("pk", "valid_from", "valid_until")),
        list(Issuer.objects.order_by("pk").values_list("pk", "name", "next_number")),
        list(SiteBilling.objects.order_by("pk").values_list("pk", "issuer_id", "payment_days")),
        list(BillingRun.objects.order_by("pk").values_list("pk", "status")),
        list(Invoice.objects.order_by("pk").values_list("pk", "status", "credited", "paid")),
    )


def call(client, method, path, ids: Ids, world):
    url = path.format(**vars(ids))
    body = bodies(world, ids).get((method, path))
    if method == "GET":
        return client.get(url)
    if method == "POST" and path == "/api/v1/bank-files":
        url += f"?organization_id={ids.organization_id}"
    if method == "POST" and path == "/api/v1/auth/tokens":
        body = {"email": "charlie@example.com", "password": "correct horse battery staple"}
    return client.generic(
        method, url, "" if body is None else json.dumps(body), content_type="application/json"
    )


def test_every_operation_in_the_schema_is_covered_here(world):
    covered = set(bodies(world)) | NOT_ABOUT_ALICE | OPERATOR_ONLY
    for method, path in operations():
        assert (method, path) in covered or "{" in path, (method, path)
        if method in ("POST", "PATCH", "PUT") and (method, path) not in NOT_ABOUT_ALICE:
            assert (method, path) in bodies(world), f"add a body for {method} {path}"


@pytest.mark.parametrize(("method", "path"), operations())
def test_an_outsider_gets_404_for_alices_objects_on_every_endpoint(
    world, alices, charlie_api, method, path
):
    before = snapshot()
    events_before = Event.objects.filter(organization=world.org).count()

    response = call(charlie_api, method, path, alices, world)

    text = response.content.decode() if not response.streaming else ""
    secrets = ALICE_SECRETS
    if (method, path) in NOT_ABOUT_ALICE:
        assert response.status_code in (200, 201), response.content
    else:
        error_of(response, 404)
        assert "forbidden" not in text
    if (method, path) == DIRECTORY:
        assert all(set(row) == {"id", "name"} for row in response.json())
        assert "Alice Locks" in [row["name"] for row in response.json()]
        secrets = tuple(s for s in ALICE_SECRETS if s not in "Alice Locks")
    for secret in secrets:
        assert secret not in text, (secret, text)
    assert snapshot() == before
    assert Event.objects.filter(organization=world.org).count() == events_before


BEYOND_64_BITS = str(2**64)


@pytest.mark.parametrize(("method", "path"), [op for op in operations() if "{" in op[1]])
def test_an_id_beyond_64_bits_is_a_422_not_a_crash(world, alices, alice_api, method, path):
    url = re.sub(r"\{\w+\}", BEYOND_64_BITS, path)
    body = bodies(world, alices).get((method, path))
    response = alice_api.generic(
        method, url, "" if body is None else json.dumps(body), content_type="application/json"
    )

    assert response.status_code == 422, (response.status_code, response.content[:300])
    assert response.json()["code"] == "validation_error"
    assert any(e["field"].startswith("path.") for e in response.json()["details"]["errors"])


def test_an_outsiders_lists_hold_nothing_of_alices(world, alices, charlie_api):
    assert charlie_api.get("/api/v1/locks").json() == []
    assert [p["name"] for p in charlie_api.get("/api/v1/properties").json()] == ["Charlie's Shed"]
    assert [t["name"] for t in charlie_api.get("/api/v1/auth/tokens").json()] == ["test"]
    memberships = charlie_api.get("/api/v1/me").json()["memberships"]
    assert [m["organization"] for m in memberships] == ["Charlie Locks"]
    assert [o["name"] for o in charlie_api.get("/api/v1/organizations").json()] == ["Charlie Locks"]
    assert charlie_api.get("/api/v1/shared-keys").json() == []
    assert charlie_api.get("/api/v1/licences/ending-soon?days=365").json() == []
    assert charlie_api.get("/api/v1/me/badges").json() == []
    assert charlie_api.get("/api/v1/me/badge-requests").json() == []


def test_an_outsider_gets_the_same_404_for_alices_lock_as_for_a_lock_that_does_not_exist(
    world, alices, charlie_api
):
    alices_lock = charlie_api.get(f"/api/v1/locks/{alices.lock_id}").json()
    no_lock = charlie_api.get("/api/v1/locks/987654").json()

    assert alices_lock == no_lock


def test_an_outsider_cannot_filter_his_locks_by_alices_property(world, alices, charlie_api):
    assert charlie_api.get(f"/api/v1/locks?property_id={alices.property_id}").json() == []


# --- a plain member ----------------------------------------------------------------------------


MEMBER_REFUSED = [
    ("POST", "/api/v1/properties", "lock owners and building managers can change properties"),
    (
        "POST",
        "/api/v1/properties/{property_id}/entries",
        "lock owners and building managers can change properties",
    ),
    ("POST", "/api/v1/locks", "Only lock owners can register or remove locks"),
    ("PATCH", "/api/v1/locks/{lock_id}", "Only lock owners can register or remove locks"),
    ("DELETE", "/api/v1/locks/{lock_id}", "Only lock owners can register or remove locks"),
    ("GET", "/api/v1/locks/{lock_id}/keys", "can see the keys of a lock"),
    ("POST", "/api/v1/locks/{lock_id}/keys", "can issue or take back keys"),
    ("GET", "/api/v1/keys/{key_id}", "can see the keys of a lock"),
    ("POST", "/api/v1/keys/{key_id}/revoke", "can issue or take back keys"),
    ("POST", "/api/v1/locks/{lock_id}/access-decisions", "can issue or take back keys"),
    ("GET", "/api/v1/locks/{lock_id}/events", "can read the event log"),
    ("GET", "/api/v1/locks/{lock_id}/events.csv", "can read the event log"),
    ("GET", "/api/v1/properties/{property_id}/events", "can read the event log"),
    ("GET", "/api/v1/properties/{property_id}/events.csv", "can read the event log"),
    ("PATCH", "/api/v1/keys/{key_id}", "can issue or take back keys"),
    ("GET", "/api/v1/locks/{lock_id}/licence", "can see the keys of a lock"),
    ("POST", "/api/v1/locks/{lock_id}/licence/codes", "Only lock owners can enter prepaid codes"),
    (
        "POST",
        "/api/v1/organizations/{organization_id}/upgrades/building-management",
        "Only lock owners can enter prepaid codes and upgrade the account",
    ),
    (
        "POST",
        "/api/v1/organizations/{organization_id}/upgrades/codes",
        "Only lock owners can enter prepaid codes and upgrade the account",
    ),
    ("GET", "/api/v1/organizations/registered", "can issue or take back keys"),
    ("POST", "/api/v1/locks/{lock_id}/organization-keys", "can issue or take back keys"),
    ("GET", "/api/v1/shared-keys/{shared_key_id}/keys", "can see the keys of a lock"),
    ("POST", "/api/v1/shared-keys/{shared_key_id}/keys", "can issue or take back keys"),
    ("GET", "/api/v1/locks/{lock_id}/device", "can see the device status of a lock"),
    ("POST", "/api/v1/locks/{lock_id}/device-secret", "Only lock owners can register or remove"),
    ("POST", "/api/v1/entries/{entry_id}/unlock", "you have no phone key for this entry"),
    (
        "PUT",
        "/api/v1/properties/{property_id}/guest-policy",
        "lock owners and building managers can change properties",
    ),
    ("GET", "/api/v1/entries/{entry_id}/panels", "building managers can change properties"),
    ("POST", "/api/v1/entries/{entry_id}/panels", "building managers can change properties"),
    ("DELETE", "/api/v1/panels/{panel_id}", "building managers can change properties"),
    ("POST", "/api/v1/invitations", "Only residents"),
    ("GET", "/api/v1/invitations/{invitation_id}", "Only the resident who sent an invitation"),
    (
        "POST",
        "/api/v1/invitations/{invitation_id}/resend",
        "Only the resident who sent an invitation",
    ),
    (
        "POST",
        "/api/v1/invitations/{invitation_id}/revoke",
        "Only the resident who sent an invitation",
    ),
    (
        "GET",
        "/api/v1/invitations/{invitation_id}/events",
        "Only the resident who sent an invitation",
    ),
    ("GET", "/api/v1/organizations/{organization_id}/webhooks", "can manage webhooks"),
    ("POST", "/api/v1/organizations/{organization_id}/webhooks", "can manage webhooks"),
    (
        "PATCH",
        "/api/v1/organizations/{organization_id}/webhooks/{webhook_id}",
        "can manage webhooks",
    ),
    (
        "DELETE",
        "/api/v1/organizations/{organization_id}/webhooks/{webhook_id}",
        "can manage webhooks",
    ),
    (
        "POST",
        "/api/v1/organizations/{organization_id}/webhooks/{webhook_id}/test",
        "can manage webhooks",
    ),
    ("GET", "/api/v1/organizations/{organization_id}/webhook-deliveries", "can manage webhooks"),
    *[
        (method, path, "can see the residents and badges of a site")
        for method, path in [
            ("GET", "/api/v1/properties/{property_id}/units"),
            ("GET", "/api/v1/properties/{property_id}/parking-spaces"),
            ("GET", "/api/v1/properties/{property_id}/residents"),
            ("GET", "/api/v1/properties/{property_id}/billing"),
            ("GET", "/api/v1/properties/{property_id}/badges"),
        ]
    ],
    *[
        (method, path, "can change units, residents and billing")
        for method, path in [
            ("POST", "/api/v1/properties/{property_id}/units"),
            ("POST", "/api/v1/properties/{property_id}/parking-spaces"),
            ("POST", "/api/v1/properties/{property_id}/residents"),
            ("PATCH", "/api/v1/residents/{residency_id}"),
            ("POST", "/api/v1/properties/{property_id}/residents/import"),
            ("PUT", "/api/v1/properties/{property_id}/billing"),
            ("GET", "/api/v1/properties/{property_id}/login-requests"),
            ("POST", "/api/v1/login-requests/{login_request_id}/decision"),
            ("GET", "/api/v1/properties/{property_id}/portal-code"),
            ("POST", "/api/v1/properties/{property_id}/residents/invite"),
        ]
    ],
    ("POST", "/api/v1/properties/{property_id}/badges", "can manage badges"),
    ("POST", "/api/v1/properties/{property_id}/badges/import", "can manage badges"),
    ("POST", "/api/v1/badges/{badge_id}/lost", "Only its holder, the owner's managers"),
    ("POST", "/api/v1/badges/{badge_id}/reactivate", "Only the owner or the platform operator"),
    ("POST", "/api/v1/badges/{badge_id}/return", "Only the owner's managers and the operator"),
    *[
        (method, path, "Only lock owners can invite collaborators")
        for method, path in [
            ("GET", "/api/v1/organizations/{organization_id}/collaborators"),
            ("DELETE", "/api/v1/organizations/{organization_id}/collaborators/{membership_id}"),
            ("GET", "/api/v1/organizations/{organization_id}/collaborator-invitations"),
            ("POST", "/api/v1/organizations/{organization_id}/collaborator-invitations"),
            ("POST", "/api/v1/collaborator-invitations/{collaborator_invitation_id}/revoke"),
        ]
    ],
    *[
        (method, path, "can see the charging stations and charging sessions of a site")
        for method, path in [
            ("GET", "/api/v1/properties/{property_id}/stations"),
            ("GET", "/api/v1/stations/{station_id}"),
            ("GET", "/api/v1/stations/{station_id}/sessions"),
            ("GET", "/api/v1/stations/{station_id}/sessions.csv"),
            ("GET", "/api/v1/properties/{property_id}/charging-sessions"),
            ("GET", "/api/v1/properties/{property_id}/charging-sessions.csv"),
        ]
    ],
    *[
        (method, path, "Only lock owners and building managers can manage charging stations")
        for method, path in [
            ("POST", "/api/v1/properties/{property_id}/stations"),
            ("PATCH", "/api/v1/stations/{station_id}"),
            ("DELETE", "/api/v1/stations/{station_id}"),
            ("POST", "/api/v1/stations/{station_id}/password"),
            ("POST", "/api/v1/stations/{station_id}/commands"),
        ]
    ],
    *[
        (method, path, "can see the laundry machines and laundry cycles of a site")
        for method, path in [
            ("GET", "/api/v1/properties/{property_id}/machines"),
            ("GET", "/api/v1/machines/{machine_id}"),
            ("GET", "/api/v1/machines/{machine_id}/cycles"),
            ("GET", "/api/v1/properties/{property_id}/cycles"),
        ]
    ],
    *[
        (method, path, "Only lock owners and building managers can manage laundry machines")
        for method, path in [
            ("POST", "/api/v1/properties/{property_id}/machines"),
            ("PATCH", "/api/v1/machines/{machine_id}"),
            ("DELETE", "/api/v1/machines/{machine_id}"),
            ("POST", "/api/v1/machines/{machine_id}/secret"),
        ]
    ],
    *[
        (method, path, "can see the consumption, invoices and statements of a site")
        for method, path in [
            ("GET", "/api/v1/properties/{property_id}/consumption"),
            ("GET", "/api/v1/properties/{property_id}/consumption.csv"),
            ("GET", "/api/v1/properties/{property_id}/consumption/{month}"),
            ("GET", "/api/v1/properties/{property_id}/consumption/{month}.csv"),
            ("GET", "/api/v1/units/{unit_id}/consumption"),
            ("GET", "/api/v1/units/{unit_id}/consumption.csv"),
            ("GET", "/api/v1/units/{unit_id}/consumption/{month}"),
            ("GET", "/api/v1/units/{unit_id}/consumption/{month}.csv"),
            ("GET", "/api/v1/properties/{property_id}/residents/{person_id}/consumption"),
            ("GET", "/api/v1/properties/{property_id}/residents/{person_id}/consumption.csv"),
            (
                "GET",
                "/api/v1/properties/{property_id}/residents/{person_id}/consumption/{month}",
            ),
            (
                "GET",
                "/api/v1/properties/{property_id}/residents/{person_id}/consumption/{month}.csv",
            ),
        ]
    ],
    *[
        (method, path, "can see the consumption, invoices and statements of a site")
        for method, path in [
            ("GET", "/api/v1/properties/{property_id}/tariffs"),
            ("GET", "/api/v1/properties/{property_id}/invoicing"),
            ("GET", "/api/v1/properties/{property_id}/billing-runs"),
            ("POST", "/api/v1/properties/{property_id}/billing-runs"),
            ("GET", "/api/v1/billing-runs/{run_id}"),
            ("POST", "/api/v1/billing-runs/{run_id}/finalize"),
            ("DELETE", "/api/v1/billing-runs/{run_id}"),
            ("GET", "/api/v1/properties/{property_id}/invoices"),
            ("GET", "/api/v1/invoices/{invoice_id}"),
            ("GET", "/api/v1/invoices/{invoice_id}/pdf"),
            ("POST", "/api/v1/invoices/{invoice_id}/credit-notes"),
            ("GET", "/api/v1/invoices/{invoice_id}/payments"),
            ("GET", "/api/v1/properties/{property_id}/statements/{month}"),
            ("GET", "/api/v1/properties/{property_id}/statements/{month}/summary.pdf"),
            ("GET", "/api/v1/properties/{property_id}/statements/{month}/uses.csv"),
            (
                "GET",
                "/api/v1/properties/{property_id}/statements/{month}/residents/{person_id}.pdf",
            ),
            (
                "GET",
                "/api/v1/properties/{property_id}/statements/{month}/residents/{person_id}.csv",
            ),
        ]
    ],
    *[
        (method, path, "Only lock owners and building managers can change tariffs")
        for method, path in [
            ("POST", "/api/v1/properties/{property_id}/tariffs"),
            ("DELETE", "/api/v1/tariffs/{tariff_id}"),
        ]
    ],
    *[
        (method, path, "Only the owner or the platform operator can finalize invoices")
        for method, path in [
            ("PUT", "/api/v1/properties/{property_id}/invoicing"),
            ("POST", "/api/v1/issuers"),
            ("POST", "/api/v1/invoices/{invoice_id}/mark-paid"),
            ("POST", "/api/v1/bank-files"),
        ]
    ],
]

# A member may try to open an entry of his organization: the access decision
# refuses him (and logs the attempt) with its own code.
MEMBER_CODES = {
    ("POST", "/api/v1/entries/{entry_id}/unlock"): "access_denied",
    ("POST", "/api/v1/invitations"): "not_a_resident",
}

# Someone else's invitation and a guest's verification: a member is neither
# the invited person nor a guest there, so these do not exist for him.
MEMBER_NOT_FOUND = {
    # a bank file is listed to those who may upload one: to a member it does not exist
    ("GET", "/api/v1/bank-files/{bank_file_id}"),
    ("POST", "/api/v1/guest/invitations/{invitation_id}/accept"),
    ("POST", "/api/v1/guest/invitations/{invitation_id}/decline"),
    ("POST", "/api/v1/guest/invitations/{invitation_id}/leave"),
    ("POST", "/api/v1/guest/entries/{entry_id}/verify"),
    ("POST", "/api/v1/portal/login-requests/confirm"),
    # an invitation to collaborate is found by its emailed token only
    ("POST", "/api/v1/collaborator-invitations/accept"),
}


# A resident's side of badges: a member who does not live at the site cannot
# ask for a badge there nor say that someone else's badge arrived.
MEMBER_NOT_RESIDENT = {
    ("POST", "/api/v1/badge-requests"),
    ("POST", "/api/v1/badge-requests/{request_id}/received"),
    # nor ask for a charging station there, nor see the installations of
    # a site he does not manage
    ("POST", "/api/v1/installations"),
    ("GET", "/api/v1/installations/{installation_id}"),
    ("POST", "/api/v1/installations/{installation_id}/decision"),
    ("POST", "/api/v1/installations/{installation_id}/hand-over"),
    ("POST", "/api/v1/installations/{installation_id}/schedule"),
    ("POST", "/api/v1/installations/{installation_id}/installed"),
    ("POST", "/api/v1/installations/{installation_id}/cancel"),
    # nor start charging at its stations, nor stop a resident's session
    ("POST", "/api/v1/me/charging"),
    ("POST", "/api/v1/me/charging-sessions/{session_id}/stop"),
    # nor start its laundry machines
    ("POST", "/api/v1/me/laundry"),
}


@pytest.mark.parametrize(("method", "path"), sorted(MEMBER_NOT_FOUND))
def test_a_member_gets_404_for_anothers_invitation(world, alices, bob_api, method, path):
    before = snapshot()
    error_of(call(bob_api, method, path, alices, world), 404)
    assert snapshot() == before


@pytest.mark.parametrize(("method", "path"), sorted(MEMBER_NOT_RESIDENT))
def test_a_member_who_does_not_live_there_gets_404_for_a_residents_badge_requests(
    world, alices, bob_api, method, path
):
    before = snapshot()
    error_of(call(bob_api, method, path, alices, world), 404)
    assert snapshot() == before


@pytest.mark.parametrize(("method", "path"), sorted(OPERATOR_ONLY))
@pytest.mark.parametrize("who", ["alice", "bob"])
def test_the_owner_and_a_member_get_404_for_the_operators_badge_queue(
    world, alices, who, method, path
):
    client = world.bearer(getattr(world, who))
    before = snapshot()

    body = error_of(call(client, method, path, alices, world), 404)

    assert "Alice" not in body["message"]
    assert snapshot() == before


@pytest.mark.parametrize(
    ("method", "path", "reason"), MEMBER_REFUSED, ids=[f"{m} {p}" for m, p, _ in MEMBER_REFUSED]
)
def test_a_member_gets_403_with_a_reason_for_changes_keys_and_the_event_log(
    world, alices, bob_api, method, path, reason
):
    before = snapshot()

    code = MEMBER_CODES.get((method, path), "forbidden")
    body = error_of(call(bob_api, method, path, alices, world), 403, code)

    assert reason in body["message"]
    assert snapshot() == before


def test_every_operation_is_either_allowed_or_refused_to_a_member(world):
    refused = {(m, p) for m, p, _ in MEMBER_REFUSED}
    allowed = (
        {
            ("GET", "/api/v1/properties/{property_id}"),
            ("GET", "/api/v1/locks/{lock_id}"),
            ("DELETE", "/api/v1/auth/tokens/{token_id}"),
            ("GET", "/api/v1/properties/{property_id}/guest-policy"),
            # a person's own notifications and browsers: another person's answer 404
            ("POST", "/api/v1/notifications/{notification_id}/read"),
            ("DELETE", "/api/v1/push/subscriptions"),
        }
        | (NOT_ABOUT_ALICE - refused)
        | MEMBER_NOT_FOUND
        | MEMBER_NOT_RESIDENT
        | OPERATOR_ONLY
    )
    assert set(operations()) == refused | allowed


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/properties/{property_id}",
        "/api/v1/locks/{lock_id}",
        "/api/v1/properties",
        "/api/v1/locks",
    ],
)
def test_a_member_may_look_at_the_organizations_properties_and_locks(world, alices, bob_api, path):
    response = bob_api.get(path.format(**vars(alices)))

    assert response.status_code == 200
    assert "Canal House" in response.content.decode() or "DK-TEST-0001" in response.content.decode()
    assert "Dana Holder" not in response.content.decode()


def test_a_member_cannot_revoke_the_owners_api_token(world, alices, bob_api):
    error_of(bob_api.delete(f"/api/v1/auth/tokens/{alices.token_id}"), 404, "token_not_found")


def test_a_member_sees_the_keys_his_organization_received_but_not_the_keys_under_them(
    world, alices, bob_api
):
    shared = bob_api.get("/api/v1/shared-keys").json()

    assert [(k["id"], k["serial"], k["live_keys"]) for k in shared] == [
        (alices.shared_key_id, "DK-DORA-0001", 1)
    ]
    assert "Dana Holder" not in bob_api.get("/api/v1/shared-keys").content.decode()


def test_a_member_sees_his_organizations_and_his_role(world, alices, bob_api):
    assert [(o["name"], o["role"]) for o in bob_api.get("/api/v1/organizations").json()] == [
        ("Alice Locks", "member")
    ]


def test_a_member_has_no_locks_ending_soon_because_he_cannot_see_licences(world, bob_api):
    assert bob_api.get("/api/v1/licences/ending-soon?days=365").json() == []
