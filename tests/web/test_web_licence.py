"""The licence panel of a lock, take-back-only mode on the lock page, the
dashboard's licence column and "ending soon" list, and account upgrades."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone
from webhelp import code, new_lock, text, typo_of

from doorkeep.accounts.models import Membership, Organization, Role
from doorkeep.accounts.services import create_user
from doorkeep.keys.models import Key
from doorkeep.keys.services import CredentialSpec, HolderSpec, KeySpec, issue_key
from doorkeep.licensing.models import Period, PeriodKind, PrepaidCode
from doorkeep.licensing.state import licence_of
from doorkeep.locks.models import Lock
from doorkeep.locks.selectors import locks_for
from doorkeep.locks.services import register_lock
from doorkeep.web import queries


def licence_url(world):
    return f"/locks/{world.lock.pk}/licence/"


def lock_url(world):
    return f"/locks/{world.lock.pk}/"


def _key(world, name="Dana", pin="482913"):
    return issue_key(
        world.alice,
        world.lock.pk,
        KeySpec(holder=HolderSpec(name=name), credentials=[CredentialSpec("pin", pin)]),
    )


def _free_end(world):
    return Period.objects.get(lock=world.lock, kind=PeriodKind.FREE).ends_at


def _local_date(moment):
    return moment.astimezone(ZoneInfo("Europe/Amsterdam")).strftime("%Y-%m-%d")


# --- the licence panel ------------------------------------------------------------


def test_the_licence_page_shows_the_free_period_and_the_keys(world, alice):
    response = alice.get(licence_url(world))
    assert response.status_code == 200
    body = text(response)
    assert f"Free period until {_local_date(_free_end(world))}" in body
    assert "Included with the first registration" in body
    assert "Keys bought" in body and "25" in body
    assert "Not bought" in body  # 5-year management and the option
    assert 'name="code"' in body and "Apply code" in body
    # The lock page links to it prominently and shows the summary.
    page = text(alice.get(lock_url(world)))
    assert f'href="{licence_url(world)}"' in page
    assert f"Free period until {_local_date(_free_end(world))}" in page
    assert "25 bought · 0 issued · <strong>25 available</strong>" in page


def test_an_outsider_gets_404_and_sees_nothing(world, charlie):
    response = charlie.get(licence_url(world))
    assert response.status_code == 404
    body = text(response)
    assert "Front door lock" not in body and "DK-TEST-0001" not in body
    plain = code("MGMT-5Y")
    response = charlie.post(licence_url(world), {"code": plain})
    assert response.status_code == 404
    assert not PrepaidCode.objects.filter(redeemed_at__isnull=False).exists()


def test_a_member_sees_no_licence_details_and_cannot_enter_codes(world, bob):
    response = bob.get(licence_url(world))
    assert response.status_code == 403
    body = text(response)
    assert "Only lock owners and building managers can see the licence of a lock." in body
    assert "Included with the first registration" not in body and "Free period" not in body
    response = bob.post(licence_url(world), {"code": code("MGMT-5Y")})
    assert response.status_code == 403
    assert not PrepaidCode.objects.filter(redeemed_at__isnull=False).exists()
    assert licence_of(world.lock.pk).mode == "free"
    # Nor on the lock page or the dashboard.
    for url in (lock_url(world), "/"):
        body = text(bob.get(url))
        assert "Free period until" not in body and "available" not in body, url


def test_a_building_manager_sees_the_licence_but_cannot_enter_codes(world):
    manager = create_user("mia@example.com", "long enough password")
    Membership.objects.create(user=manager, organization=world.org, role=Role.BUILDING_MANAGER)
    client = world.client(manager)
    body = text(client.get(licence_url(world)))
    assert "Free period until" in body
    assert 'name="code"' not in body
    assert "Only lock owners can enter prepaid codes." in body
    response = client.post(licence_url(world), {"code": code("MGMT-5Y")})
    assert response.status_code == 403
    assert licence_of(world.lock.pk).mode == "free"


def test_entering_a_management_code_says_what_was_applied(world, alice):
    plain = code("MGMT-5Y")
    response = alice.post(licence_url(world), {"code": plain.lower().replace("-", " ")})
    assert response.status_code == 302
    assert response["Location"] == licence_url(world)
    state = licence_of(world.lock.pk)
    assert state.mode == "active"
    body = text(alice.get(licence_url(world)))
    assert "Code accepted: Full management, 5 years. Full management until" in body
    assert f"Full management until {_local_date(state.full_until)}" in body
    assert "Full management, 5 years" in body  # the history names the product


def test_a_key_pack_code_adds_keys(world, alice):
    alice.post(licence_url(world), {"code": code("KEYS-25")})
    body = text(alice.get(licence_url(world)))
    assert "Code accepted: Key pack: 25 keys. 25 more keys." in body
    assert "Key pack: 25 keys" in body
    assert licence_of(world.lock.pk).keys_purchased == 50
    assert "50 bought · 0 issued · <strong>50 available</strong>" in text(
        alice.get(lock_url(world))
    )


def test_a_typo_in_a_code_shows_the_typo_message(world, alice):
    plain = code("MGMT-5Y")
    response = alice.post(licence_url(world), {"code": typo_of(plain)})
    assert response.status_code == 400
    body = text(response)
    assert "This code has a typo" in body
    assert typo_of(plain) in body  # what was typed stays in the field
    assert licence_of(world.lock.pk).mode == "free"


@pytest.mark.parametrize(
    ("typed", "status", "message"),
    [
        ("hello", 400, "That is not a prepaid code."),
        ("", 400, "This field is required."),
    ],
)
def test_other_refusals_show_on_the_form(world, alice, typed, status, message):
    response = alice.post(licence_url(world), {"code": typed})
    assert response.status_code == status
    assert message in text(response)


def test_a_used_or_unknown_code_is_refused_with_its_status(world, alice):
    plain = code("MGMT-5Y")
    assert alice.post(licence_url(world), {"code": plain}).status_code == 302
    response = alice.post(licence_url(world), {"code": plain})
    assert response.status_code == 409
    assert "This code has already been used." in text(response)
    from doorkeep.licensing import codes

    unknown = codes.generate()
    response = alice.post(licence_url(world), {"code": unknown})
    assert response.status_code == 404
    assert "This code is not known." in text(response)


def test_an_account_upgrade_code_is_refused_on_a_lock(world, alice):
    response = alice.post(licence_url(world), {"code": code("ORG-MGMT")})
    assert response.status_code == 400
    assert "Enter it under Account upgrades." in text(response)


def test_the_option_needs_paid_management(world, alice):
    body = text(alice.get(lock_url(world)))
    assert "not in the free period" in body
    response = alice.post(licence_url(world), {"code": code("ORGS-5Y")})
    assert response.status_code == 400
    assert "it is still in its free period" in text(response)


def test_too_many_wrong_codes_are_refused_without_a_500(world, alice, settings):
    settings.DOORKEEP = {**settings.DOORKEEP, "CODE_ATTEMPTS_PER_HOUR": 2}
    for _ in range(2):
        assert alice.post(licence_url(world), {"code": "hello"}).status_code == 400
    response = alice.post(licence_url(world), {"code": code("MGMT-5Y")})
    assert response.status_code == 429
    assert "Too many wrong codes." in text(response)


# --- take-back-only ------------------------------------------------------------------


def test_take_back_only_mode_on_the_lock_page_and_a_code_restores_it(world, time_machine):
    key = _key(world)
    time_machine.move_to(_free_end(world) + timedelta(days=1), tick=False)
    alice = world.client(world.alice)  # signed in again: the old session expired
    response = alice.get(lock_url(world))
    assert response.status_code == 200
    body = text(response)
    assert "Management of this lock ended on" in body
    assert "You can still take keys back." in body
    assert f'href="{licence_url(world)}#code"' in body
    assert f'action="/locks/{world.lock.pk}/keys/#issue"' not in body  # no issue form
    assert "Issuing keys is paused" in body
    assert "Take back" in body
    assert f"/keys/{key.pk}/edit/" not in body  # no Edit either
    assert "Take back keys only since" in body

    # Issuing and changing are refused, with the message.
    response = alice.post(f"/locks/{world.lock.pk}/keys/", {"name": "Eve", "pin": "5555"})
    assert response.status_code == 403
    assert "Management of this lock ended on" in text(response)
    response = alice.post(f"/locks/{world.lock.pk}/keys/{key.pk}/edit/", {"note": "x"})
    assert response.status_code == 403
    assert "Management of this lock ended on" in text(response)
    key.refresh_from_db()
    assert key.note == ""

    # The licence page says so too, and takes a code.
    body = text(alice.get(licence_url(world)))
    assert "Take back keys only" in body and 'name="code"' in body

    # Taking back still works.
    response = alice.post(f"/locks/{world.lock.pk}/keys/{key.pk}/take-back/")
    assert response.status_code == 302
    key.refresh_from_db()
    assert key.revoked_at is not None

    # A code restores full management: the issue form is back.
    response = alice.post(licence_url(world), {"code": code("MGMT-5Y")})
    assert response.status_code == 302
    body = text(alice.get(lock_url(world)))
    assert "Management of this lock ended on" not in body
    assert f'action="/locks/{world.lock.pk}/keys/#issue"' in body
    assert "Full management until" in body
    response = alice.post(f"/locks/{world.lock.pk}/keys/", {"name": "Eve", "pin": "5555"})
    assert response.status_code == 302


# --- the dashboard ------------------------------------------------------------------


def test_each_lock_row_shows_its_licence_mode(world, alice):
    body = text(alice.get("/"))
    row = body[body.index(f'href="/locks/{world.lock.pk}/"') :]
    row = row[: row.index("</tr>")]
    assert f"Free period until {_local_date(_free_end(world))}" in row
    assert f'href="{licence_url(world)}"' in row


def test_the_dashboard_lists_locks_whose_management_ends_within_30_days(world, time_machine):
    start = timezone.now()
    alice = world.client(world.alice)
    assert "Management ending within 30 days" not in text(alice.get("/"))
    end = _free_end(world)
    # Days are counted by the property's calendar: noon, ten local days before.
    local_end = end.astimezone(ZoneInfo("Europe/Amsterdam"))
    time_machine.move_to(
        datetime.combine(local_end.date() - timedelta(days=10), time(12), local_end.tzinfo),
        tick=False,
    )
    alice = world.client(world.alice)
    body = text(alice.get("/"))
    assert "Management ending within 30 days" in body
    section = body[body.index('id="ending-soon"') :]
    section = section[: section.index("</section>")]
    assert "Front door lock" in section and "Canal House" in section
    assert _local_date(end) in section
    assert '<td data-label="Days left" class="num">10</td>' in section
    assert f'href="{licence_url(world)}#code"' in section
    # A management code moves the end 5 years on: the list is gone.
    alice.post(licence_url(world), {"code": code("MGMT-5Y")})
    assert "Management ending within 30 days" not in text(alice.get("/"))
    assert start < timezone.now()


def test_a_member_does_not_see_the_ending_soon_list(world, time_machine):
    time_machine.move_to(_free_end(world) - timedelta(days=3), tick=False)
    body = text(world.client(world.bob).get("/"))
    assert "Management ending within" not in body


# --- one set of rules for one lock and for many --------------------------------------


def test_the_dashboard_helper_computes_the_same_state_as_licence_of(world, time_machine):
    second = new_lock("DK-TEST-0002")
    register_lock(
        world.alice,
        serial=second.serial,
        claim_secret="ABCD-EFGH-JKLM-NPQR",
        entry_id=world.entry2.pk,
    )
    _key(world)
    from doorkeep.licensing.services import redeem_for_lock

    redeem_for_lock(world.alice, world.lock.pk, code("MGMT-5Y"))
    redeem_for_lock(world.alice, world.lock.pk, code("ORGS-5Y"))
    redeem_for_lock(world.alice, second.pk, code("KEYS-25"))
    start = timezone.now()
    for days in (0, 30, 100, 365 * 5, 365 * 6):
        at = start + timedelta(days=days)
        locks = list(locks_for(world.alice))
        many = queries.licences_for(world.alice, locks, at)
        for lock in Lock.objects.filter(organization=world.org):
            assert many[lock.pk] == licence_of(lock.pk, at), (days, lock.serial)


# --- account upgrades ------------------------------------------------------------------


def test_the_upgrades_page_activates_building_management(world, charlie):
    body = text(charlie.get("/settings/upgrades/"))
    assert 'href="/settings/upgrades/"' in body  # in the nav
    assert "Charlie Locks" in body
    assert "Building management" in body and "Organization management" in body
    assert "Receive keys from lock owners and manage them for your members" in body
    assert "Alice Locks" not in body
    response = charlie.post(f"/settings/upgrades/{world.charlie_org.pk}/building-management/")
    assert response.status_code == 302
    world.charlie_org.refresh_from_db()
    assert world.charlie_org.building_management_since is not None
    body = text(charlie.get("/settings/upgrades/"))
    assert "Building management is active for Charlie Locks." in body
    assert "Activate building management" not in body


def test_the_upgrades_page_takes_an_organization_management_code(world, alice):
    response = alice.post(
        f"/settings/upgrades/{world.org.pk}/organization-management/", {"code": code("MGMT-5Y")}
    )
    assert response.status_code == 400
    assert "This code is for a lock" in text(response)
    plain = code("ORG-MGMT")
    response = alice.post(
        f"/settings/upgrades/{world.org.pk}/organization-management/", {"code": typo_of(plain)}
    )
    assert response.status_code == 400
    assert "This code has a typo" in text(response)
    response = alice.post(
        f"/settings/upgrades/{world.org.pk}/organization-management/", {"code": plain}
    )
    assert response.status_code == 302
    world.org.refresh_from_db()
    assert world.org.organization_management_since is not None
    body = text(alice.get("/settings/upgrades/"))
    assert "Organization management is active." in body
    assert f'id="id_org{world.org.pk}_code"' not in body


def test_a_member_and_an_outsider_cannot_upgrade(world, bob, charlie):
    Organization.objects.filter(pk=world.org.pk).update(building_management_since=None)
    body = text(bob.get("/settings/upgrades/"))
    assert "Alice Locks" not in body
    assert "Only lock owners can upgrade" in body
    response = bob.post(f"/settings/upgrades/{world.org.pk}/building-management/")
    assert response.status_code == 403
    response = charlie.post(f"/settings/upgrades/{world.org.pk}/building-management/")
    assert response.status_code == 404
    assert "Alice Locks" not in text(response)
    response = charlie.post(
        f"/settings/upgrades/{world.org.pk}/organization-management/", {"code": code("ORG-MGMT")}
    )
    assert response.status_code == 404
    org = Organization.objects.get(pk=world.org.pk)
    assert org.building_management_since is None and org.organization_management_since is None
    assert not Key.objects.exists()
