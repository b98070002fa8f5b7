"""The event log: filters, keyset pagination, CSV export, and append-only rows."""

from __future__ import annotations

import base64
import csv
import io
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

import pytest
from apihelp import error_of
from django.db import transaction

from doorkeep.accounts.services import create_user
from doorkeep.events import selectors
from doorkeep.events.models import Event, EventKind
from doorkeep.events.services import record
from doorkeep.keys.models import Person
from doorkeep.keys.services import CredentialSpec, HolderSpec, KeySpec, issue_key

T0 = datetime(2030, 3, 1, 12, 0, tzinfo=UTC)


def lock_events(client, lock, **params):
    return client.get(f"/api/v1/locks/{lock.pk}/events?{urlencode(params, doseq=True)}")


def property_events(client, prop, **params):
    return client.get(f"/api/v1/properties/{prop.pk}/events?{urlencode(params, doseq=True)}")


def csv_of(response):
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    text = b"".join(response.streaming_content).decode()
    return list(csv.reader(io.StringIO(text)))


@pytest.fixture
def dana(world):
    return Person.objects.create(organization=world.org, name="Dana", email="dana@example.com")


@pytest.fixture
def history(world, dana):
    """Five access events on Alice's lock, a minute apart, the last two Dana's."""
    events = []
    for n, (kind, reason, person) in enumerate(
        [
            (EventKind.ACCESS_DENIED, "unknown_credential", None),
            (EventKind.ACCESS_GRANTED, "", None),
            (EventKind.ACCESS_DENIED, "expired", None),
            (EventKind.ACCESS_GRANTED, "", dana),
            (EventKind.ACCESS_DENIED, "outside_schedule", dana),
        ]
    ):
        events.append(
            record(
                kind,
                organization_id=world.org.pk,
                lock=world.lock,
                reason=reason,
                person=person,
                occurred_at=T0 + timedelta(minutes=n),
                credential_kind="pin",
            )
        )
    return events


def ids(response):
    assert response.status_code == 200, response.content
    return [e["id"] for e in response.json()["items"]]


# --- reading and filtering ----------------------------------------------------------------------


def test_it_lists_a_locks_events_newest_first(world, alice_api, history):
    registered = Event.objects.get(kind=EventKind.LOCK_REGISTERED).pk
    response = lock_events(alice_api, world.lock)

    items = response.json()["items"]
    assert ids(response) == [*(e.pk for e in reversed(history)), registered]
    assert items[-1]["kind"] == "lock.registered"
    assert response.json()["next_cursor"] is None
    latest = items[0]
    assert latest["outcome"] == "denied"
    assert latest["reason"] == "outside_schedule"
    assert latest["person"] == "Dana"
    assert latest["lock_serial"] == "DK-TEST-0001"
    assert latest["property_id"] == world.prop.pk
    assert latest["credential_kind"] == "pin"


def test_it_lists_a_propertys_events(world, alice_api, history, charlie_api):
    record(EventKind.LOCK_UPDATED, organization_id=world.org.pk, property_id=world.prop.pk)

    response = property_events(alice_api, world.prop)

    assert len(ids(response)) == len(history) + 2  # and the lock's registration


def test_it_filters_by_time_range_start_inclusive_end_exclusive(world, alice_api, history):
    response = lock_events(
        alice_api,
        world.lock,
        start=(T0 + timedelta(minutes=1)).isoformat(),
        end=(T0 + timedelta(minutes=3)).isoformat(),
    )

    assert ids(response) == [history[2].pk, history[1].pk]


def test_a_moment_without_a_time_zone_is_read_as_utc(world, alice_api, history):
    response = lock_events(alice_api, world.lock, start="2030-03-01T12:03:00")

    assert ids(response) == [history[4].pk, history[3].pk]


def test_it_refuses_a_range_that_ends_before_it_starts(world, alice_api):
    error_of(
        lock_events(
            alice_api, world.lock, start=T0.isoformat(), end=(T0 - timedelta(days=1)).isoformat()
        ),
        400,
        "invalid_range",
    )


def test_it_filters_by_one_or_more_kinds(world, alice_api, history):
    granted = ids(lock_events(alice_api, world.lock, kind="access.granted"))
    both = ids(lock_events(alice_api, world.lock, kind=["access.granted", "lock.registered"]))

    assert granted == [history[3].pk, history[1].pk]
    assert len(both) == 3


def test_it_refuses_an_unknown_kind(world, alice_api):
    body = error_of(
        lock_events(alice_api, world.lock, kind=["access.granted", "door.exploded"]),
        400,
        "invalid_kind",
    )

    assert "door.exploded" in body["message"]


def test_it_filters_by_person(world, alice_api, history, dana):
    assert ids(lock_events(alice_api, world.lock, person_id=dana.pk)) == [
        history[4].pk,
        history[3].pk,
    ]


@pytest.mark.parametrize(("outcome", "expected"), [("granted", [3, 1]), ("denied", [4, 2, 0])])
def test_it_filters_by_outcome(world, alice_api, history, outcome, expected):
    assert ids(lock_events(alice_api, world.lock, outcome=outcome)) == [
        history[n].pk for n in expected
    ]


def test_it_refuses_an_unknown_outcome(world, alice_api):
    error_of(lock_events(alice_api, world.lock, outcome="maybe"), 400, "invalid_outcome")


def test_filters_combine(world, alice_api, history, dana):
    response = property_events(
        alice_api, world.prop, person_id=dana.pk, outcome="denied", start=T0.isoformat()
    )

    assert ids(response) == [history[4].pk]


def test_a_member_may_not_read_the_event_log(world, bob_api):
    for url in (
        f"/api/v1/locks/{world.lock.pk}/events",
        f"/api/v1/locks/{world.lock.pk}/events.csv",
        f"/api/v1/properties/{world.prop.pk}/events",
        f"/api/v1/properties/{world.prop.pk}/events.csv",
    ):
        body = error_of(bob_api.get(url), 403, "forbidden")
        assert "event log" in body["message"]


def test_the_log_shows_who_did_what(world, alice_api):
    issue_key(
        world.alice,
        world.lock.pk,
        KeySpec(holder=HolderSpec(name="Dana"), credentials=[CredentialSpec("remote", "RM-0001")]),
    )

    [issued] = lock_events(alice_api, world.lock, kind="key.issued").json()["items"]

    assert issued["actor"] == "alice@example.com"
    assert issued["person"] == "Dana"
    assert issued["outcome"] is None
    assert "Dana" in issued["summary"]


# --- pagination ---------------------------------------------------------------------------------


@pytest.fixture
def many(world):
    """120 access events; every third pair shares a moment, to test ties."""
    made = [
        record(
            EventKind.ACCESS_GRANTED if n % 2 else EventKind.ACCESS_DENIED,
            organization_id=world.org.pk,
            lock=world.lock,
            reason="" if n % 2 else "unknown_credential",
            occurred_at=T0 + timedelta(seconds=(n // 3) * 10),
        )
        for n in range(120)
    ]
    return made


def walk(client, url_of, limit=50, **params):
    pages, cursor = [], None
    while True:
        query = {**params, "limit": limit, **({"cursor": cursor} if cursor else {})}
        body = client.get(url_of(query)).json()
        pages.append([e["id"] for e in body["items"]])
        cursor = body["next_cursor"]
        if cursor is None:
            return pages
        assert len(pages) < 100


def test_walking_all_pages_gives_every_event_once_newest_first(world, alice_api, many):
    pages = walk(
        alice_api,
        lambda q: f"/api/v1/locks/{world.lock.pk}/events?{urlencode(q)}",
        kind="access.granted",
    )
    pages_all = walk(alice_api, lambda q: f"/api/v1/locks/{world.lock.pk}/events?{urlencode(q)}")

    assert [len(p) for p in pages] == [50, 10]
    assert [len(p) for p in pages_all] == [50, 50, 21]
    seen = [i for page in pages_all for i in page]
    assert len(seen) == len(set(seen))
    expected = list(
        Event.objects.filter(lock=world.lock)
        .order_by("-occurred_at", "-id")
        .values_list("id", flat=True)
    )
    assert seen == expected
    assert {e.pk for e in many} <= set(seen)
    moments = [Event.objects.get(pk=i).occurred_at for i in seen]
    assert moments == sorted(moments, reverse=True)


def test_a_property_log_pages_the_same_way(world, alice_api, many):
    pages = walk(
        alice_api, lambda q: f"/api/v1/properties/{world.prop.pk}/events?{urlencode(q)}", limit=7
    )

    seen = [i for page in pages for i in page]
    assert len(seen) == len(set(seen)) == 121


def test_a_page_ends_exactly_at_the_last_event_without_a_further_cursor(world, alice_api, many):
    body = lock_events(alice_api, world.lock, limit=121).json()

    assert len(body["items"]) == 121
    assert body["next_cursor"] is None


@pytest.mark.parametrize(
    "cursor",
    [
        "not-a-cursor",
        "%%%",
        base64.urlsafe_b64encode(b"2030-03-01T12:00:00|abc").decode(),
        base64.urlsafe_b64encode(b"2030-03-01T12:00:00|5").decode(),  # no time zone
        base64.urlsafe_b64encode(b"yesterday|5").decode(),
        base64.urlsafe_b64encode(b"\xff\xfe").decode(),
    ],
)
def test_it_refuses_a_bad_cursor(world, alice_api, cursor):
    body = error_of(lock_events(alice_api, world.lock, cursor=cursor), 400, "invalid_cursor")

    assert "first page" in body["message"]


@pytest.mark.parametrize("limit", [0, 501, "many"])
def test_it_refuses_a_page_size_out_of_bounds(world, alice_api, limit):
    error_of(lock_events(alice_api, world.lock, limit=limit), 422, "validation_error")


# --- CSV export -----------------------------------------------------------------------------------


def test_the_csv_export_has_a_header_and_a_row_per_event(world, alice_api, history):
    response = alice_api.get(f"/api/v1/locks/{world.lock.pk}/events.csv")

    rows = csv_of(response)
    assert 'filename="doorkeep-lock-' in response["Content-Disposition"]
    assert rows[0] == selectors.CSV_COLUMNS
    assert len(rows) == 1 + len(history) + 1
    latest = dict(zip(rows[0], rows[1], strict=True))
    assert latest["id"] == str(history[4].pk)
    assert latest["kind"] == "access.denied"
    assert latest["outcome"] == "denied"
    assert latest["reason"] == "outside_schedule"
    assert latest["person"] == "Dana"
    assert latest["lock_serial"] == "DK-TEST-0001"
    assert latest["property"] == "Canal House"


def test_the_csv_export_applies_the_filters(world, alice_api, history):
    rows = csv_of(alice_api.get(f"/api/v1/properties/{world.prop.pk}/events.csv?outcome=granted"))

    assert [r[0] for r in rows[1:]] == [str(history[3].pk), str(history[1].pk)]


def test_the_csv_export_refuses_a_bad_filter_as_json(world, alice_api):
    error_of(
        alice_api.get(f"/api/v1/locks/{world.lock.pk}/events.csv?kind=nope"), 400, "invalid_kind"
    )


def test_the_csv_export_streams_every_event_once_across_batches(world, many):
    rows = list(
        csv.reader(
            io.StringIO(
                "".join(selectors.csv_rows(Event.objects.filter(lock=world.lock), batch=50))
            )
        )
    )

    exported = [int(r[0]) for r in rows[1:]]
    assert len(exported) == len(set(exported)) == 121


@pytest.mark.parametrize("name", ['=HYPERLINK("http://evil")', "+SUM(A1)", "-2+3", "@cmd", "\tTab"])
def test_the_csv_export_neutralises_a_cell_that_would_run_as_a_formula(world, alice_api, name):
    person = Person.objects.create(organization=world.org, name=name)
    record(
        EventKind.ACCESS_GRANTED,
        organization_id=world.org.pk,
        lock=world.lock,
        person=person,
        summary=name,
    )
    world.lock.name = name
    world.lock.save()

    rows = csv_of(alice_api.get(f"/api/v1/locks/{world.lock.pk}/events.csv"))

    latest = dict(zip(rows[0], rows[1], strict=True))
    for column in ("person", "summary", "lock_name"):
        assert latest[column] == "'" + name
    for row in rows[1:]:
        assert all(not cell.startswith(("=", "+", "-", "@", "\t")) for cell in row)


def test_the_csv_export_neutralises_an_actors_email_address(world, alice_api):
    mallory = create_user("=1+2@example.com", "pw-mallory-1234")
    record(EventKind.LOCK_UPDATED, organization_id=world.org.pk, lock=world.lock, actor=mallory)

    rows = csv_of(alice_api.get(f"/api/v1/locks/{world.lock.pk}/events.csv"))

    assert dict(zip(rows[0], rows[1], strict=True))["actor"] == "'=1+2@example.com"


# --- append-only --------------------------------------------------------------------------------


def test_an_event_cannot_be_changed_once_written(world):
    event = Event.objects.first()
    event.summary = "nothing happened"

    with pytest.raises(TypeError, match="append-only"):
        event.save()
    assert Event.objects.get(pk=event.pk).summary != "nothing happened"


def test_an_event_cannot_be_deleted(world):
    event = Event.objects.first()

    with pytest.raises(TypeError, match="append-only"):
        event.delete()
    assert Event.objects.filter(pk=event.pk).exists()


@pytest.mark.parametrize(
    "attempt",
    [
        lambda: Event.objects.update(summary="x"),
        lambda: Event.objects.filter(kind="lock.registered").update(reason="x"),
        lambda: Event.objects.all().delete(),
        lambda: Event.objects.filter(kind="lock.registered").delete(),
        lambda: Event.objects.bulk_update(list(Event.objects.all()), ["summary"]),
    ],
    ids=["update", "filter-update", "delete", "filter-delete", "bulk-update"],
)
def test_the_event_log_refuses_bulk_changes(world, attempt):
    before = list(Event.objects.values_list("id", "summary", "reason"))

    with pytest.raises(TypeError, match="append-only"), transaction.atomic():
        attempt()
    assert list(Event.objects.values_list("id", "summary", "reason")) == before
