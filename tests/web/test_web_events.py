"""The event log pages and their CSV downloads."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

import pytest
from webhelp import text

from doorkeep.events.models import Event, EventKind
from doorkeep.keys import access
from doorkeep.keys.models import Person
from doorkeep.keys.services import CredentialSpec, HolderSpec, KeySpec, issue_key


@pytest.fixture
def log(world):
    """Dana and Erik, each with a remote; a few decisions on chosen days."""
    for name, remote in (("Dana", "RM-DANA"), ("Erik", "RM-ERIK")):
        issue_key(
            world.alice,
            world.lock.pk,
            KeySpec(holder=HolderSpec(name=name), credentials=[CredentialSpec("remote", remote)]),
        )
    moments = {
        "dana_jan": datetime(2030, 1, 10, 11, 0, tzinfo=UTC),  # 12:00 in Amsterdam
        "erik_jan": datetime(2030, 1, 10, 23, 30, tzinfo=UTC),  # 00:30 on the 11th there
        "stranger_feb": datetime(2030, 2, 3, 8, 0, tzinfo=UTC),
        "dana_mar": datetime(2030, 3, 5, 9, 0, tzinfo=UTC),
    }
    access.decide(world.lock, "remote", "RM-DANA", at=moments["dana_jan"])
    access.decide(world.lock, "remote", "RM-ERIK", at=moments["erik_jan"])
    access.decide(world.lock, "remote", "RM-NOBODY", at=moments["stranger_feb"])
    access.decide(world.lock, "remote", "RM-DANA", at=moments["dana_mar"])
    return moments


def events_url(world, query=""):
    return f"/locks/{world.lock.pk}/events/{query}"


def csv_rows(response):
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert "attachment" in response["Content-Disposition"]
    content = b"".join(response.streaming_content).decode()
    return list(csv.DictReader(io.StringIO(content)))


def test_the_event_log_shows_times_in_the_property_time_zone_newest_first(world, alice, log):
    body = text(alice.get(events_url(world)))
    assert "Times are in Europe/Amsterdam." in body
    assert "2030-01-10 12:00:00" in body and "2030-01-11 00:30:00" in body
    assert body.index("2030-03-05 10:00:00") < body.index("2030-02-03 09:00:00")
    assert body.index("2030-02-03 09:00:00") < body.index("2030-01-11 00:30:00")
    assert "Access denied" in body and "Unknown credential" in body
    assert "Key issued" in body


def test_a_remote_unlock_is_told_apart_from_a_phone_at_the_door(world, alice):
    issue_key(
        world.alice,
        world.lock.pk,
        KeySpec(
            holder=HolderSpec(name="Alice", email="alice@example.com"),
            credentials=[CredentialSpec("phone", "")],
        ),
    )
    access.decide(world.lock, "phone", world.alice, source="remote", actor=world.alice)
    body = text(alice.get(events_url(world)))
    assert "Phone · opened remotely" in body
    access.decide(world.lock, "phone", world.alice, source="lock")
    body = text(alice.get(events_url(world)))
    assert body.count("Phone · opened remotely") == 1
    assert body.count('<br><span class="muted small">Phone</span>') == 1


def test_it_filters_by_outcome_and_kind(world, alice, log):
    body = text(alice.get(events_url(world, "?outcome=denied")))
    assert "2030-02-03 09:00:00" in body
    assert "2030-01-10 12:00:00" not in body
    body = text(alice.get(events_url(world, "?kind=key.issued")))
    assert "Key issued" in body and "2030-01-10" not in body


def test_it_filters_by_person(world, alice, log):
    dana = Person.objects.get(name="Dana")
    body = text(alice.get(events_url(world, f"?person={dana.pk}")))
    assert "Only events of Dana." in body
    assert "2030-01-10 12:00:00" in body and "2030-03-05 10:00:00" in body
    assert "2030-01-11 00:30:00" not in body and "2030-02-03" not in body


def test_a_to_date_includes_that_whole_day_in_the_property_time_zone(world, alice, log):
    body = text(alice.get(events_url(world, "?start=2030-01-11&end=2030-02-03")))
    # Erik came in at 00:30 on the 11th, Amsterdam time (23:30 UTC on the 10th).
    assert "2030-01-11 00:30:00" in body
    assert "2030-02-03 09:00:00" in body
    assert "2030-01-10 12:00:00" not in body and "2030-03-05" not in body


def test_it_filters_by_date_and_time(world, alice, log):
    body = text(alice.get(events_url(world, "?start=2030-01-10T12:01&end=2030-01-11T00:31")))
    assert "2030-01-11 00:30:00" in body
    assert "2030-01-10 12:00:00" not in body


def test_a_start_after_the_end_is_a_message_not_a_500(world, alice, log):
    response = alice.get(events_url(world, "?start=2030-03-01&end=2030-01-01"))
    assert response.status_code == 400
    assert "The start of the time range must be before its end." in text(response)


def test_a_date_that_is_not_a_date_is_a_form_error(world, alice):
    response = alice.get(events_url(world, "?start=yesterday"))
    assert response.status_code == 400
    assert "Enter a date (YYYY-MM-DD) or a date and time" in text(response)


def test_the_older_link_pages_through_the_log(world, alice, log):
    base = datetime(2029, 1, 1, tzinfo=UTC)
    for i in range(60):
        access.decide(world.lock, "remote", "RM-DANA", at=base + timedelta(hours=i))
    first = alice.get(events_url(world, "?outcome=granted"))
    first_page = text(first)
    assert first_page.count("<time ") == 50
    cursor = first.context["next_cursor"]
    assert cursor and f"cursor={cursor}" in first.content.decode()
    second_page = text(alice.get(events_url(world, f"?outcome=granted&cursor={cursor}")))
    # 63 granted in all: 3 from the fixture, 60 above.
    assert second_page.count("<time ") == 13
    assert "Newest" in second_page and "Older" not in second_page.split("</table>")[1]


def test_a_bad_cursor_is_a_message_not_a_500(world, alice):
    response = alice.get(events_url(world, "?cursor=not-a-cursor"))
    assert response.status_code == 400
    assert "The page cursor is not valid" in text(response)


def test_the_csv_download_has_the_filtered_rows(world, alice, log):
    page = alice.get(events_url(world, "?outcome=granted&cursor=abc"))
    assert f"/locks/{world.lock.pk}/events.csv?outcome=granted" in page.content.decode()
    rows = csv_rows(alice.get(f"/locks/{world.lock.pk}/events.csv?outcome=granted"))
    assert [r["occurred_at"] for r in rows] == [
        "2030-03-05T10:00:00+01:00",  # on the property's clock, with the offset
        "2030-01-11T00:30:00+01:00",
        "2030-01-10T12:00:00+01:00",
    ]
    assert {r["outcome"] for r in rows} == {"granted"}
    assert rows[0]["lock_serial"] == "DK-TEST-0001" and rows[0]["person"] == "Dana"


def test_the_property_log_and_its_csv_cover_every_lock_there(world, alice, log):
    body = text(alice.get(f"/properties/{world.prop.pk}/events/?outcome=denied"))
    assert "Front door lock" in body and "2030-02-03 09:00:00" in body
    rows = csv_rows(alice.get(f"/properties/{world.prop.pk}/events.csv"))
    kinds = [r["kind"] for r in rows]
    assert kinds.count(EventKind.ACCESS_GRANTED) == 3
    assert kinds.count(EventKind.ACCESS_DENIED) == 1
    assert EventKind.LOCK_REGISTERED in kinds
    assert len(rows) == Event.objects.filter(property=world.prop).count()


def test_a_csv_with_bad_filters_is_refused_with_a_message(world, alice):
    response = alice.get(f"/locks/{world.lock.pk}/events.csv?start=2030-02-01&end=2030-01-01")
    assert response.status_code == 400
    assert "The start of the time range must be before its end." in text(response)
    response = alice.get(f"/locks/{world.lock.pk}/events.csv?kind=nonsense")
    assert response.status_code == 400


# --- reasons and attempts in words ----------------------------------------------------------------


def test_reasons_are_shown_in_words_in_the_readers_language_and_codes_stay_in_the_csv(world, alice):
    from doorkeep.events.services import record

    for code in ("rate_limited", "code_typo"):
        record(EventKind.CODE_REFUSED, organization_id=world.org.pk, lock=world.lock, reason=code)
    record(
        EventKind.UNLOCK_FAILED,
        organization_id=world.org.pk,
        lock=world.lock,
        reason="lock_offline",
    )

    body = text(alice.get(events_url(world)))
    assert "Too many attempts" in body and "Typing error in the code" in body
    assert "The lock was offline" in body
    for code in ("rate_limited", "code_typo", "lock_offline"):
        assert code not in body, code
    french = text(alice.get(events_url(world), HTTP_ACCEPT_LANGUAGE="fr"))
    assert "rate_limited" not in french and "code_typo" not in french

    rows = csv_rows(alice.get(f"/locks/{world.lock.pk}/events.csv"))
    by_code = {row["reason"]: row for row in rows if row["reason"]}
    assert by_code["code_typo"]["reason_text"] == "Typing error in the code"
    assert by_code["rate_limited"]["reason_text"].startswith("Too many attempts")
    assert by_code["lock_offline"]["lock_outcome"] == "offline"
    assert by_code["lock_offline"]["decision"] == "granted"


def test_every_reason_the_platform_writes_has_words(world):
    from doorkeep.events.reasons import known_codes, reason_text

    for code in known_codes():
        assert reason_text(code) != code, code


def test_a_remote_unlock_the_lock_did_not_carry_out_is_one_line_of_the_person(world, alice):
    key = issue_key(
        world.alice,
        world.lock.pk,
        KeySpec(
            holder=HolderSpec(name="Alice", email=world.alice.email),
            credentials=[CredentialSpec("phone")],
        ),
    )
    alice.post(f"/doors/{world.entry.pk}/open/")  # no gateway has the lock: offline

    page = text(alice.get(events_url(world, f"?person={key.person_id}")))
    table = page[page.index('<table class="table events">') :]

    assert "Remote unlock failed" in table and "The lock was offline" in table
    assert "Access granted" not in table
    rows = csv_rows(alice.get(f"/locks/{world.lock.pk}/events.csv?person={key.person_id}"))
    attempts = [row for row in rows if row["kind"] != "key.issued"]
    assert [(r["kind"], r["person"], r["decision"], r["lock_outcome"]) for r in attempts] == [
        ("unlock.failed", "Alice", "granted", "offline")
    ]
