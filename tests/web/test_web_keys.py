"""Issuing and taking back keys on the lock page, and the key list."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from webhelp import SECRET, bulk_keys, code, new_lock, sharing_world, text, warm

from doorkeep.gateway.models import Device
from doorkeep.keys import access
from doorkeep.keys.models import Key, Person
from doorkeep.keys.services import CredentialSpec, HolderSpec, KeySpec, issue_key
from doorkeep.locks.models import Lock


def lock_url(world):
    return f"/locks/{world.lock.pk}/"


def issue(client, world, **data):
    data.setdefault("name", "Dana")
    data.setdefault("email", "dana@example.com")
    return client.post(f"/locks/{world.lock.pk}/keys/", data)


CREDENTIALS = {
    "pin": ({"pin": "482913"}, "pin", "482913", "PIN code"),
    "tag": ({"tag": "04:a2:2b:1c"}, "tag", "04A22B1C", "RFID tag"),
    "remote": ({"remote": "rm-0042"}, "remote", "RM-0042", "Remote"),
    "phone": ({"phone": "on"}, "phone", None, "Phone"),
}


@pytest.mark.parametrize("kind", list(CREDENTIALS))
def test_it_issues_a_key_of_each_credential_kind_then_takes_it_back(world, alice, kind):
    data, access_kind, value, label = CREDENTIALS[kind]
    response = issue(alice, world, **data)
    assert response.status_code == 302, text(response)[:2000]
    assert response["Location"] == f"{lock_url(world)}#top"  # the confirmation in view
    key = Key.objects.get(lock=world.lock, revoked_at__isnull=True)
    assert key.person.name == "Dana" and key.person.email == "dana@example.com"
    world.lock.refresh_from_db()
    assert world.lock.credential_version == 1

    page = text(alice.get(lock_url(world)))
    assert "Key issued to Dana" in page
    assert label in page and "Take back" in page
    if kind == "tag":
        assert "04A22B1C" in page
    if kind == "remote":
        assert "RM-0042" in page
    if kind != "phone":
        assert access.decide(world.lock, access_kind, value).granted

    response = alice.post(f"/locks/{world.lock.pk}/keys/{key.pk}/take-back/")
    assert response.status_code == 302
    key.refresh_from_db()
    assert key.revoked_at is not None and key.revoked_by == world.alice
    page = text(alice.get(lock_url(world)))
    assert "The key of Dana is taken back." in page
    assert "No keys match." in page  # the default list shows keys not taken back
    if kind != "phone":
        assert access.decide(world.lock, access_kind, value).reason == "revoked"


def test_after_issuing_a_pin_it_says_the_pin_will_not_be_shown_again(world, alice):
    response = issue(alice, world, pin="482913")
    page = text(alice.get(response["Location"]))
    assert "will not be shown again" in page
    assert "482913" not in page
    assert "••••" in page  # the PIN shows only as dots


def test_a_bad_pin_gives_a_form_error_not_a_500(world, alice):
    response = issue(alice, world, pin="12ab")
    assert response.status_code == 400
    body = text(response)
    assert "A PIN code is 4 to 8 digits." in body
    assert 'value="Dana"' in body  # the form keeps what was typed
    assert not Key.objects.exists()


def test_a_bad_tag_gives_the_services_message_on_the_form(world, alice):
    response = issue(alice, world, tag="04:A2:2B")
    assert response.status_code == 400
    assert "A tag UID is 4, 7 or 10 bytes" in text(response)


def test_a_key_needs_a_credential(world, alice):
    response = issue(alice, world)
    assert response.status_code == 400
    assert "A key needs at least one credential." in text(response)


def test_a_phone_key_needs_an_email_address(world, alice):
    response = issue(alice, world, email="", phone="on")
    assert response.status_code == 400
    assert "A phone key needs the person's email address" in text(response)
    assert not Key.objects.exists()


def test_a_pin_in_use_on_the_lock_is_refused(world, alice):
    issue(alice, world, pin="482913")
    response = issue(alice, world, name="Eve", email="eve@example.com", pin="482913")
    assert response.status_code == 409
    assert "This PIN code is already in use on this lock; choose another one." in text(response)
    assert Key.objects.count() == 1


def test_a_bad_schedule_gives_a_form_error(world, alice):
    response = issue(alice, world, remote="RM-1", schedule="weekdays 9-5")
    assert response.status_code == 400
    assert "Schedule line 1: write it as 'mon-fri 07:00-19:00'." in text(response)


def test_the_schedule_and_window_are_read_in_the_property_time_zone(world, alice):
    response = issue(
        alice,
        world,
        remote="RM-1",
        schedule="mon-fri 07:00-19:00; sat 09:00-13:00",
        valid_from="2030-01-15T08:30",
        valid_until="2030-06-30",
    )
    assert response.status_code == 302
    key = Key.objects.get()
    assert key.schedule == [
        {"days": ["mon", "tue", "wed", "thu", "fri"], "start": "07:00", "end": "19:00"},
        {"days": ["sat"], "start": "09:00", "end": "13:00"},
    ]
    # Canal House is in Europe/Amsterdam: UTC+1 in January, UTC+2 in summer.
    assert key.valid_from == datetime(2030, 1, 15, 7, 30, tzinfo=UTC)
    assert key.valid_until == datetime(2030, 6, 30, 22, 0, tzinfo=UTC)  # the whole 30th
    page = text(alice.get(lock_url(world) + "?status=all"))
    assert "2030-01-15 08:30" in page and "2030-07-01 00:00" in page
    assert "mon tue wed thu fri 07:00\u201319:00; sat 09:00\u201313:00" in page
    assert "Not yet valid" in page


def test_a_window_that_ends_before_it_starts_is_refused(world, alice):
    response = issue(
        alice, world, remote="RM-1", valid_from="2030-02-01T10:00", valid_until="2030-01-01T10:00"
    )
    assert response.status_code == 400
    assert "The key's validity must start before it ends." in text(response)


def test_it_issues_a_key_to_an_existing_person(world, alice):
    issue(alice, world, remote="RM-1")
    dana = Person.objects.get(email="dana@example.com")
    other = world.client(world.alice)
    from doorkeep.locks.services import add_manufactured_lock, register_lock

    add_manufactured_lock("DK-TEST-0002", claim_secret="ABCD-EFGH-JKLM-NPQR")
    garage = register_lock(
        world.alice,
        serial="DK-TEST-0002",
        claim_secret="ABCD-EFGH-JKLM-NPQR",
        entry_id=world.entry2.pk,
    )
    page = text(other.get(f"/locks/{garage.pk}/"))
    assert f'<option value="{dana.pk}">Dana <dana@example.com></option>' in page
    response = other.post(f"/locks/{garage.pk}/keys/", {"person": dana.pk, "tag": "04A22B1C"})
    assert response.status_code == 302
    assert Key.objects.get(lock=garage).person == dana
    assert Person.objects.count() == 1


def test_choosing_a_person_and_typing_a_name_is_a_form_error(world, alice):
    issue(alice, world, remote="RM-1")
    dana = Person.objects.get()
    response = issue(alice, world, person=dana.pk, name="Someone", remote="RM-2")
    assert response.status_code == 400
    assert "Choose an existing person, or give a name and an email address; not both." in text(
        response
    )


def test_a_second_key_for_the_same_person_is_refused(world, alice):
    issue(alice, world, remote="RM-1")
    response = issue(alice, world, remote="RM-2")
    assert response.status_code == 409
    assert "Dana already has a key on this lock." in text(response)


def test_taking_back_a_key_twice_shows_a_message(world, alice):
    issue(alice, world, remote="RM-1")
    key = Key.objects.get()
    alice.post(f"/locks/{world.lock.pk}/keys/{key.pk}/take-back/")
    response = alice.post(f"/locks/{world.lock.pk}/keys/{key.pk}/take-back/")
    assert response.status_code == 409
    assert "This key was already taken back." in text(response)


def test_taking_back_a_key_that_does_not_exist_answers_404(world, alice):
    response = alice.post(f"/locks/{world.lock.pk}/keys/999999/take-back/")
    assert response.status_code == 404


def test_the_key_list_searches_and_filters_by_status(world, alice):
    for name, remote in (("Dana", "RM-1"), ("Erik", "RM-2"), ("Fay", "RM-3")):
        issue_key(
            world.alice,
            world.lock.pk,
            KeySpec(holder=HolderSpec(name=name), credentials=[CredentialSpec("remote", remote)]),
        )
    erik = Key.objects.get(person__name="Erik")
    alice.post(f"/locks/{world.lock.pk}/keys/{erik.pk}/take-back/")

    def names(query: str) -> set[str]:
        body = text(alice.get(lock_url(world) + query))
        return {n for n in ("Dana", "Erik", "Fay") if f"<strong>{n}</strong>" in body}

    assert names("") == {"Dana", "Fay"}
    assert names("?status=revoked") == {"Erik"}
    assert names("?status=all") == {"Dana", "Erik", "Fay"}
    assert names("?q=fa&status=all") == {"Fay"}
    assert names("?q=rm-1") == {"Dana"}
    assert alice.get(lock_url(world) + "?status=bogus").status_code == 200


def test_the_key_list_shows_100_keys_a_page(world, alice):
    bulk_keys(world.lock, world.org, 150)
    body = text(alice.get(lock_url(world)))
    assert "Page 1 of 2 (150 keys)" in body
    assert body.count("<strong>Holder ") == 100
    body = text(alice.get(lock_url(world) + "?page=2"))
    assert body.count("<strong>Holder ") == 50
    assert "<strong>Holder 00149</strong>" in body


def _queries_for_lock_page(client, url: str) -> int:
    warm(client)
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(url)
        assert response.status_code == 200
    return len(ctx.captured_queries)


def _child_keys(dora, org_key, count, *, start=0):
    for i in range(start, start + count):
        issue_key(
            dora,
            org_key.lock_id,
            KeySpec(HolderSpec(name=f"Agency person {i}"), [CredentialSpec("remote", f"AG-{i}")]),
            parent_key_id=org_key.pk,
        )


def test_the_lock_page_runs_as_many_queries_with_2500_keys_as_with_10(world, alice):
    # An organization's key with keys under it, and the option's form, are on the page;
    # so are the Device panel and (Alice holds a phone key) the entry's Open button.
    dora, _agency, org_key = sharing_world(world)
    _child_keys(dora, org_key, 2)
    issue_key(
        world.alice,
        world.lock.pk,
        KeySpec(HolderSpec(name="Alice", email="alice@example.com"), [CredentialSpec("phone")]),
    )
    Device.objects.filter(lock=world.lock).update(online=True, firmware="2.4.1", battery=80)
    bulk_keys(world.lock, world.org, 9)
    with_10 = _queries_for_lock_page(alice, lock_url(world))
    bulk_keys(world.lock, world.org, 2490, start=9)
    _child_keys(dora, org_key, 0)
    assert Key.objects.filter(lock=world.lock).count() == 2503
    with_2500 = _queries_for_lock_page(alice, lock_url(world))
    assert with_2500 == with_10, (with_10, with_2500)
    assert with_10 <= 15
    # Searching and paging stay bounded too.
    assert _queries_for_lock_page(alice, lock_url(world) + "?q=holder&page=7") == with_2500
    body = text(alice.get(lock_url(world)))
    assert "2503 of at most 2500" in body
    assert "Page 1 of 26 (2503 keys)" in body
    assert 'id="device"' in body and "2.4.1" in body
    assert f'action="/locks/{world.lock.pk}/open/"' in body
    # Without a Device row (a lock registered before devices existed): no more queries.
    Device.objects.filter(lock=world.lock).delete()
    assert _queries_for_lock_page(alice, lock_url(world)) == with_2500


def test_the_shared_key_page_runs_bounded_queries(world):
    dora, _agency, org_key = sharing_world(world)
    client = world.client(dora)
    _child_keys(dora, org_key, 3)
    few = _queries_for_lock_page(client, f"/shared/{org_key.pk}/")
    _child_keys(dora, org_key, 20, start=3)
    assert _queries_for_lock_page(client, f"/shared/{org_key.pk}/") == few
    assert few <= 16


def _more_locks(world, count, *, start):
    """``count`` more registered locks at new entries, whose management ends
    within 30 days: in the free period for even ones, paid for odd ones."""
    from datetime import timedelta

    from django.utils import timezone

    from doorkeep.licensing.models import Period
    from doorkeep.locks.services import register_lock
    from doorkeep.properties.services import add_entry

    for i in range(start, start + count):
        entry = add_entry(world.alice, world.prop.pk, name=f"Door {i}")
        new_lock(f"DK-MORE-{i:04d}")
        lock = register_lock(
            world.alice,
            serial=f"DK-MORE-{i:04d}",
            claim_secret=SECRET,
            entry_id=entry.pk,
            name=f"Lock {i}",
        )
        now = timezone.now()
        free = Period.objects.filter(lock=lock, kind="free")
        if i % 2 == 0:
            free.update(ends_at=now + timedelta(days=10 + i))
        else:
            free.update(starts_at=now - timedelta(days=200), ends_at=now - timedelta(days=100))
            Period.objects.create(
                lock=lock, kind="management", starts_at=now, ends_at=now + timedelta(days=10 + i)
            )


def test_the_dashboard_and_event_log_run_bounded_queries(world, alice):
    dora, _agency, org_key = sharing_world(world)
    _child_keys(dora, org_key, 1)
    bulk_keys(world.lock, world.org, 10)
    _more_locks(world, 2, start=0)
    small = _queries_for_lock_page(alice, "/")
    events_small = _queries_for_lock_page(alice, lock_url(world) + "events/")
    dora_small = _queries_for_lock_page(world.client(dora), "/")
    bulk_keys(world.lock, world.org, 600, start=10)
    _more_locks(world, 8, start=2)
    for person in Person.objects.filter(organization=world.org)[:60]:
        access.decide(world.lock, "tag", person.credentials.get().lookup)
    body = text(alice.get("/"))
    assert body.count("Full management until") == 1 + 5
    assert body.count("Free period until") == 5
    assert body.count('<td data-label="Days left"') == 10  # the 10 locks ending within 30 days
    assert _queries_for_lock_page(alice, "/") == small
    assert _queries_for_lock_page(alice, lock_url(world) + "events/") == events_small
    # The organization's side: more shared locks, same queries.
    for i in (1, 3, 5):  # paid management, so the option can be entered
        from doorkeep.keys.sharing import issue_key_to_organization
        from doorkeep.licensing.services import redeem_for_lock

        lock = Lock.objects.get(serial=f"DK-MORE-{i:04d}")
        redeem_for_lock(world.alice, lock.pk, code("ORGS-5Y"))
        issue_key_to_organization(world.alice, lock.pk, org_key.holder_organization_id)
    assert _queries_for_lock_page(world.client(dora), "/") == dora_small
