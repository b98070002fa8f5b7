"""Badges through their services: requests worked by the operator, existing
badges registered by the owner, a lost badge off everywhere at once."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from doorkeep.accounts.models import Membership, Role
from doorkeep.accounts.services import create_user
from doorkeep.badges import services
from doorkeep.badges.access import decide_equipment
from doorkeep.badges.models import Badge, BadgeStatus, RequestStatus
from doorkeep.core.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from doorkeep.events.models import DenyReason, Event, EventKind
from doorkeep.keys.access import decide
from doorkeep.keys.models import Credential, KeyCredential
from doorkeep.keys.services import (
    CredentialSpec,
    HolderSpec,
    KeySpec,
    add_credential_to_key,
    issue_key,
)
from doorkeep.locks.models import Lock
from doorkeep.locks.services import add_manufactured_lock, register_lock
from doorkeep.notify.models import Notification
from doorkeep.properties.models import BillingMode, Property
from doorkeep.residents.services import change_residency, site_today

UID = "04A1B2C3D4E5F6"
CLASSIC_1K = ("04:a1:b2:c3", "0004", "08")
DESFIRE = ("04A1B2C3D4E5F7", "0344", "20")


def version(lock_id: int) -> int:
    return Lock.objects.get(pk=lock_id).credential_version


def give_badge(site, uid: str = UID) -> Badge:
    """Rosa asks, the operator approves, assigns and hands it over."""
    req = services.request_badge(site.rosa, services.RequestSpec(property_id=site.world.prop.pk))
    services.approve_request(site.operator, req.pk)
    services.assign_badge(site.operator, req.pk, uid)
    services.deliver_badge(site.operator, req.pk, "handed_over")
    req.refresh_from_db()
    assert req.status == RequestStatus.ACTIVE
    assert req.badge is not None
    return req.badge


def individual_statements(world) -> None:
    Property.objects.filter(pk=world.prop.pk).update(billing_mode=BillingMode.INDIVIDUAL_STATEMENTS)


def billing_and_payments(world) -> None:
    Property.objects.filter(pk=world.prop.pk).update(billing_mode=BillingMode.BILLING_AND_PAYMENTS)


def test_a_badge_handed_over_opens_the_door_the_resident_holds_a_key_for(site):
    world = site.world
    before = version(world.lock.pk)

    badge = give_badge(site)

    assert badge.status == BadgeStatus.ACTIVE
    assert version(world.lock.pk) == before + 1
    assert decide(world.lock, "tag", UID).granted
    steps = list(
        Event.objects.filter(person=site.rosa_person, kind__startswith="badge.").values_list(
            "kind", flat=True
        )
    )
    assert set(steps) == {"badge.requested", "badge.approved", "badge.assigned", "badge.activated"}


def test_the_resident_follows_each_step_in_notifications(site):
    give_badge(site)

    titles = list(Notification.objects.filter(user=site.rosa).values_list("title", flat=True))
    assert "Your badge request was approved" in titles
    assert "A badge was assigned to you" in titles
    assert "Your badge is active" in titles
    assert Notification.objects.filter(user=site.operator, kind="badge").exists()


def test_a_sent_badge_is_active_once_the_resident_says_it_arrived(site):
    req = services.request_badge(site.rosa, services.RequestSpec(property_id=site.world.prop.pk))
    services.assign_badge(site.operator, req.pk, UID)
    services.deliver_badge(site.operator, req.pk, "sent")
    assert not decide(site.world.lock, "tag", UID).granted

    with pytest.raises(NotFound):
        services.confirm_received(site.world.charlie, req.pk)
    services.confirm_received(site.rosa, req.pk)

    req.refresh_from_db()
    assert req.status == RequestStatus.ACTIVE
    assert decide(site.world.lock, "tag", UID).granted


def test_a_lost_badge_is_refused_everywhere_at_once_with_its_reason(site):
    world = site.world
    badge = give_badge(site)
    before = version(world.lock.pk)

    report = services.report_lost(site.rosa, badge.pk)

    assert report.changed and report.locks == 1
    assert version(world.lock.pk) == before + 1
    assert not KeyCredential.objects.filter(credential__badge=badge, active=True).exists()
    decision = decide(world.lock, "tag", UID)
    assert not decision.granted
    assert decision.reason == DenyReason.BADGE_LOST
    assert decision.event.person_id == site.rosa_person.pk
    assert decide(world.lock, "pin", "24681357").granted  # her other credentials still work


def test_reporting_a_badge_lost_twice_changes_nothing_the_second_time(site):
    badge = give_badge(site)
    services.report_lost(site.world.alice, badge.pk)
    before = (version(site.world.lock.pk), Event.objects.count())

    again = services.report_lost(site.rosa, badge.pk)

    assert not again.changed
    assert (version(site.world.lock.pk), Event.objects.count()) == before


def test_a_lost_badge_can_ask_for_a_replacement_in_the_same_step(site):
    Property.objects.filter(pk=site.world.prop.pk).update(
        extra_badge_price_minor=2500, currency="CHF"
    )
    badge = give_badge(site)

    report = services.report_lost(site.rosa, badge.pk, replacement=True, accept_price_minor=2500)

    assert report.replacement is not None
    assert report.replacement.replaces_id == badge.pk
    assert report.replacement.price_minor == 2500


def test_a_loss_stands_when_its_replacement_cannot_be_asked_for(site):
    Property.objects.filter(pk=site.world.prop.pk).update(
        extra_badge_price_minor=2500, currency="CHF"
    )
    badge = give_badge(site)

    report = services.report_lost(site.rosa, badge.pk, replacement=True)  # price not confirmed

    assert report.changed and report.replacement is None
    assert "CHF 25.00" in report.replacement_error
    assert Badge.objects.get(pk=badge.pk).status == BadgeStatus.LOST
    assert decide(site.world.lock, "tag", UID).reason == DenyReason.BADGE_LOST


def test_a_replacement_is_not_asked_twice_while_a_request_is_open(site):
    badge = give_badge(site)
    services.request_badge(
        site.rosa, services.RequestSpec(property_id=site.world.prop.pk, accept_price_minor=0)
    )

    report = services.report_lost(site.world.alice, badge.pk, replacement=True)

    assert report.replacement is None and "already open" in report.replacement_error


def test_a_card_written_on_a_key_by_hand_is_switched_off_with_the_badge(site):
    world = site.world
    individual_statements(world)
    # Rosa's card was typed on her key by hand before it became her badge.
    tag = Credential.objects.create(
        person=site.rosa_person, kind="tag", lookup="04A1B2C3", display="04A1B2C3"
    )
    add_credential_to_key(site.key, tag)
    assert decide(world.lock, "tag", "04A1B2C3").granted
    badge = services.register_existing_badge(
        world.alice, world.prop.pk, site.rosa_person.pk, uid="04A1B2C3", atqa="0004", sak="08"
    )

    report = services.report_lost(world.alice, badge.pk)

    assert report.locks == 1
    assert decide(world.lock, "tag", "04A1B2C3").reason == DenyReason.BADGE_LOST


def test_a_card_someone_else_holds_as_a_tag_is_not_assigned_to_another(site):
    world = site.world
    issue_key(
        world.alice,
        world.lock.pk,
        KeySpec(HolderSpec(name="Dana", email="dana@example.com"), [CredentialSpec("tag", UID)]),
    )
    req = services.request_badge(site.rosa, services.RequestSpec(property_id=world.prop.pk))

    with pytest.raises(Conflict) as taken:
        services.assign_badge(site.operator, req.pk, UID)

    assert taken.value.code == "badge_taken"


def test_someone_elses_badge_cannot_go_on_a_key_as_a_tag(site):
    world = site.world
    give_badge(site)
    add_manufactured_lock("DK-TEST-0002", claim_secret="ABCD-EFGH-JKLM-NPQR")
    garage = register_lock(
        world.alice,
        serial="DK-TEST-0002",
        claim_secret="ABCD-EFGH-JKLM-NPQR",
        entry_id=world.entry2.pk,
    )
    dana = HolderSpec(name="Dana", email="dana@example.com")

    with pytest.raises(Conflict) as taken:
        issue_key(world.alice, garage.pk, KeySpec(dana, [CredentialSpec("tag", UID)]))

    assert taken.value.code == "badge_taken"


def test_a_badge_lost_before_it_was_ever_active_is_not_switched_on(site):
    req = services.request_badge(site.rosa, services.RequestSpec(property_id=site.world.prop.pk))
    services.assign_badge(site.operator, req.pk, UID)
    req.refresh_from_db()
    assert req.badge is not None
    services.report_lost(site.rosa, req.badge.pk)

    with pytest.raises(Conflict) as refused:
        services.reactivate(site.world.alice, req.badge.pk)

    assert refused.value.code == "never_active"


def test_a_replacement_asked_by_the_owner_costs_the_resident_nothing(site):
    Property.objects.filter(pk=site.world.prop.pk).update(extra_badge_price_minor=2500)
    badge = give_badge(site)

    report = services.report_lost(site.world.alice, badge.pk, replacement=True)

    assert report.replacement is not None
    assert report.replacement.price_minor == 0


def test_only_the_owner_or_the_operator_switch_a_found_badge_on_again(site):
    world = site.world
    badge = give_badge(site)
    services.report_lost(site.rosa, badge.pk)
    manager = create_user("maria@example.com", "x", name="Maria Manager")
    Membership.objects.create(user=manager, organization=world.org, role=Role.BUILDING_MANAGER)

    for refused in (site.rosa, world.bob, manager):
        with pytest.raises(PermissionDenied):
            services.reactivate(refused, badge.pk)
    with pytest.raises(NotFound):
        services.reactivate(world.charlie, badge.pk)

    services.reactivate(world.alice, badge.pk)

    assert decide(world.lock, "tag", UID).granted
    event = Event.objects.filter(kind=EventKind.BADGE_REACTIVATED).get()
    assert event.actor == world.alice
    services.report_lost(site.rosa, badge.pk)
    services.reactivate(site.operator, badge.pk)
    assert decide(world.lock, "tag", UID).granted


def test_a_key_issued_later_carries_the_persons_badge(site):
    world = site.world
    give_badge(site)
    add_manufactured_lock("DK-TEST-0002", claim_secret="ABCD-EFGH-JKLM-NPQR")
    garage = register_lock(
        world.alice,
        serial="DK-TEST-0002",
        claim_secret="ABCD-EFGH-JKLM-NPQR",
        entry_id=world.entry2.pk,
    )
    assert not decide(garage, "tag", UID).granted

    issue_key(
        world.alice,
        garage.pk,
        KeySpec(HolderSpec(person_id=site.rosa_person.pk), [CredentialSpec("pin", "11223344")]),
    )

    assert decide(garage, "tag", UID).granted


def test_a_lost_badge_cannot_come_back_as_a_plain_tag(site):
    world = site.world
    badge = give_badge(site)
    services.report_lost(site.rosa, badge.pk)

    with pytest.raises(Conflict) as refused:
        issue_key(
            world.alice,
            world.lock.pk,
            KeySpec(
                HolderSpec(name="Finder", email="finder@example.com"), [CredentialSpec("tag", UID)]
            ),
        )

    assert refused.value.code == "badge_lost"


def test_the_first_badge_is_included_and_an_extra_one_needs_its_price_confirmed(site):
    Property.objects.filter(pk=site.world.prop.pk).update(
        extra_badge_price_minor=1500, currency="CHF"
    )
    first = services.request_badge(site.rosa, services.RequestSpec(property_id=site.world.prop.pk))
    assert (first.extra, first.price_minor) == (False, 0)
    services.assign_badge(site.operator, first.pk, UID)
    services.deliver_badge(site.operator, first.pk, "handed_over")

    with pytest.raises(Conflict) as refused:
        services.request_badge(site.rosa, services.RequestSpec(property_id=site.world.prop.pk))
    assert refused.value.code == "price_not_confirmed"
    assert refused.value.details["price_minor"] == 1500

    extra = services.request_badge(
        site.rosa, services.RequestSpec(property_id=site.world.prop.pk, accept_price_minor=1500)
    )
    assert (extra.extra, extra.price_minor, extra.currency) == (True, 1500, "CHF")


def test_a_resident_has_one_request_open_at_a_time(site):
    services.request_badge(site.rosa, services.RequestSpec(property_id=site.world.prop.pk))

    with pytest.raises(Conflict) as refused:
        services.request_badge(site.rosa, services.RequestSpec(property_id=site.world.prop.pk))
    assert refused.value.code == "request_open"


def test_only_residents_of_the_site_today_can_ask(site):
    world = site.world
    for outsider in (world.charlie, world.bob):
        with pytest.raises(NotFound):
            services.request_badge(outsider, services.RequestSpec(property_id=world.prop.pk))
    change_residency(
        world.alice, site.residency.pk, move_out=site_today(world.prop) - timedelta(days=2)
    )
    with pytest.raises(NotFound):
        services.request_badge(site.rosa, services.RequestSpec(property_id=world.prop.pk))


def test_a_private_station_request_names_a_space_or_serial_of_this_site(site):
    world = site.world
    spec = services.RequestSpec(property_id=world.prop.pk, parking_space="P99")
    with pytest.raises(InvalidInput) as wrong_space:
        services.request_badge(site.rosa, spec)
    assert wrong_space.value.code == "parking_space_not_found"
    spec = services.RequestSpec(property_id=world.prop.pk, station_serial="EVB-ELSEWHERE")
    with pytest.raises(InvalidInput) as wrong_station:
        services.request_badge(site.rosa, spec)
    assert wrong_station.value.code == "station_not_found"

    req = services.request_badge(
        site.rosa, services.RequestSpec(property_id=world.prop.pk, station_serial="evb-p7-0001")
    )

    assert req.parking_space == site.space
    assert req.station_serial == "EVB-P7-0001"


def test_the_operator_refuses_with_a_reason_the_resident_reads(site):
    req = services.request_badge(site.rosa, services.RequestSpec(property_id=site.world.prop.pk))
    with pytest.raises(InvalidInput):
        services.refuse_request(site.operator, req.pk, "  ")

    services.refuse_request(site.operator, req.pk, "You already have two badges.")

    req.refresh_from_db()
    assert req.status == RequestStatus.REFUSED
    assert req.refusal_reason == "You already have two badges."
    with pytest.raises(Conflict):
        services.assign_badge(site.operator, req.pk, UID)


def test_only_the_operator_works_the_queue(site):
    req = services.request_badge(site.rosa, services.RequestSpec(property_id=site.world.prop.pk))
    for person in (site.world.alice, site.rosa, site.world.charlie):
        with pytest.raises(NotFound):
            services.approve_request(person, req.pk)


def test_two_people_never_share_a_badge(site):
    world = site.world
    individual_statements(world)
    give_badge(site)
    dana = create_user("dana@example.com", "x", name="Dana")
    from doorkeep.residents.services import ResidentSpec, add_resident

    add_resident(
        world.alice,
        world.prop.pk,
        ResidentSpec("Dana", "dana@example.com", date(2024, 1, 1), unit_id=site.other_unit.pk),
    )
    req = services.request_badge(dana, services.RequestSpec(property_id=world.prop.pk))

    with pytest.raises(Conflict) as taken:
        services.assign_badge(site.operator, req.pk, UID.lower())
    assert taken.value.code == "badge_taken"


def test_a_malformed_uid_names_the_field(site):
    req = services.request_badge(site.rosa, services.RequestSpec(property_id=site.world.prop.pk))

    with pytest.raises(InvalidInput) as bad:
        services.assign_badge(site.operator, req.pk, "04-ZZ")

    assert bad.value.code == "invalid_uid"
    assert bad.value.details["field"] == "uid"


# --- existing badges ---------------------------------------------------------------------------


def test_the_owner_registers_an_existing_mifare_classic_badge(site):
    world = site.world
    individual_statements(world)

    badge = services.register_existing_badge(
        world.alice, world.prop.pk, site.rosa_person.pk, uid=CLASSIC_1K[0], atqa="0004", sak="08"
    )

    assert (badge.uid, badge.status, badge.source) == ("04A1B2C3", "active", "third_party")
    assert badge.card_type == "mifare_classic_1k"
    assert decide(world.lock, "tag", "04A1B2C3").granted


def test_a_desfire_card_is_refused_naming_what_it_is(site):
    individual_statements(site.world)

    with pytest.raises(InvalidInput) as refused:
        services.register_existing_badge(
            site.world.alice,
            site.world.prop.pk,
            site.rosa_person.pk,
            uid=DESFIRE[0],
            atqa=DESFIRE[1],
            sak=DESFIRE[2],
        )

    assert refused.value.code == "incompatible_card"
    assert "DESFire" in refused.value.message
    assert not Badge.objects.exists()


def test_a_billing_and_payments_site_takes_only_the_platforms_badges(site):
    billing_and_payments(site.world)

    with pytest.raises(Conflict) as refused:
        services.register_existing_badge(
            site.world.alice,
            site.world.prop.pk,
            site.rosa_person.pk,
            uid=CLASSIC_1K[0],
            atqa="0004",
            sak="08",
        )

    assert refused.value.code == "billing_mode_refuses_third_party"
    assert "Billing and payments" in refused.value.message


def test_registering_needs_a_managing_role_and_a_resident_of_the_site(site):
    world = site.world
    individual_statements(world)
    with pytest.raises(PermissionDenied):
        services.register_existing_badge(
            world.bob, world.prop.pk, site.rosa_person.pk, uid="04A1B2C3", atqa="0004", sak="08"
        )
    with pytest.raises(NotFound):
        services.register_existing_badge(
            world.charlie,
            world.prop.pk,
            site.rosa_person.pk,
            uid="04A1B2C3",
            atqa="0004",
            sak="08",
        )
    with pytest.raises(NotFound):
        services.register_existing_badge(
            world.alice, world.prop.pk, 987654, uid="04A1B2C3", atqa="0004", sak="08"
        )


# --- the equipment rule ------------------------------------------------------------------------


def test_equipment_runs_for_an_active_badge_of_a_resident_today(site):
    world = site.world
    billing_and_payments(world)
    badge = give_badge(site)
    prop = Property.objects.get(pk=world.prop.pk)

    assert decide_equipment(prop, UID).allowed
    assert decide_equipment(prop, UID, space=site.space).allowed
    assert decide_equipment(prop, "04FFFFFF").reason == DenyReason.UNKNOWN_CREDENTIAL
    assert decide_equipment(prop, "nonsense").reason == DenyReason.MALFORMED_CREDENTIAL

    services.report_lost(site.rosa, badge.pk)
    assert decide_equipment(prop, UID).reason == DenyReason.BADGE_LOST


def test_equipment_refuses_former_residents_other_units_spaces_and_foreign_badges(site):
    world = site.world
    individual_statements(world)
    services.register_existing_badge(
        world.alice, world.prop.pk, site.rosa_person.pk, uid="04A1B2C3", atqa="0004", sak="08"
    )
    prop = Property.objects.get(pk=world.prop.pk)
    assert decide_equipment(prop, "04A1B2C3").allowed

    billing_and_payments(world)
    prop.refresh_from_db()
    assert decide_equipment(prop, "04A1B2C3").reason == DenyReason.PLATFORM_BADGES_ONLY

    individual_statements(world)
    prop.refresh_from_db()
    site.space.unit = site.other_unit
    site.space.save()
    assert decide_equipment(prop, "04A1B2C3", space=site.space).reason == (
        DenyReason.NOT_THEIR_SPACE
    )

    change_residency(
        world.alice, site.residency.pk, move_out=site_today(world.prop) - timedelta(days=2)
    )
    assert decide_equipment(prop, "04A1B2C3").reason == DenyReason.MOVED_OUT


def test_a_badge_lost_on_its_way_never_becomes_active(site):
    req = services.request_badge(site.rosa, services.RequestSpec(property_id=site.world.prop.pk))
    services.assign_badge(site.operator, req.pk, UID)
    services.deliver_badge(site.operator, req.pk, "sent")
    req.refresh_from_db()
    assert req.badge is not None
    services.report_lost(site.rosa, req.badge.pk)

    with pytest.raises(Conflict) as refused:
        services.confirm_received(site.rosa, req.pk)

    assert refused.value.code == "badge_lost"
    assert not decide(site.world.lock, "tag", UID).granted


def test_a_badge_handed_back_is_off_everywhere_and_its_card_can_go_to_someone_else(site):
    world = site.world
    badge = give_badge(site)
    with pytest.raises(PermissionDenied):
        services.return_badge(site.rosa, badge.pk)

    services.return_badge(world.alice, badge.pk)
    again = services.return_badge(world.alice, badge.pk)

    assert again.status == BadgeStatus.DEACTIVATED
    assert decide(world.lock, "tag", UID).reason == DenyReason.CREDENTIAL_DEACTIVATED
    assert Event.objects.filter(kind=EventKind.BADGE_RETURNED).count() == 1
    dana = create_user("dana@example.com", "x", name="Dana")
    from doorkeep.residents.services import ResidentSpec, add_resident

    add_resident(
        world.alice,
        world.prop.pk,
        ResidentSpec("Dana", "dana@example.com", date(2024, 1, 1), unit_id=site.other_unit.pk),
    )
    req = services.request_badge(dana, services.RequestSpec(property_id=world.prop.pk))
    services.assign_badge(site.operator, req.pk, UID)
    services.deliver_badge(site.operator, req.pk, "handed_over")
    assert decide_equipment(Property.objects.get(pk=world.prop.pk), UID).badge.person.name == "Dana"
