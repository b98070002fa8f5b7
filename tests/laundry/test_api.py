"""Laundry machines in the API: registering (the secret in the answer once),
the live state, changes, a new secret, removal, cycles of a site and of a
machine, the resident's machines and start. Another tenant's machine is 404;
a plain member gets 403 with the reason; bad input a 4xx that says why."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from gateway_helpers import eventually
from laundry_values import WASHER

from doorkeep.laundry.models import Cycle, Machine


def error_of(response: Any, status: int, code: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, (response.status_code, response.content[:500])
    body = response.json()
    assert body["message"].strip(), body
    if code is not None:
        assert body["code"] == code, body
    return body


def post(client: Any, url: str, body: Any = None) -> Any:
    return client.post(url, {} if body is None else body, content_type="application/json")


def patch(client: Any, url: str, body: Any) -> Any:
    return client.patch(url, body, content_type="application/json")


def a_cycle(laundry: Any, seq: int = 1, **fields: Any) -> Cycle:
    world = laundry.site.world
    started = datetime(2026, 2, 10, 8, 0, tzinfo=UTC) + timedelta(hours=seq)
    values: dict[str, Any] = {
        "organization_id": world.org.pk,
        "property": world.prop,
        "machine": laundry.washer,
        "seq": seq,
        "program": "Cotton 40",
        "person": laundry.site.rosa_person,
        "unit": laundry.site.unit,
        "badge": laundry.badge,
        "tag": laundry.badge.uid,
        "started_at": started,
        "ended_at": started + timedelta(minutes=50),
        "energy_wh": 820,
        **fields,
    }
    return Cycle.objects.create(**values)


def test_registering_a_machine_answers_its_secret_once(laundry):
    world = laundry.site.world
    alice = world.bearer(world.alice)

    response = post(
        alice,
        f"/api/v1/properties/{world.prop.pk}/machines",
        {"serial": "wm-2025-0101", "kind": "washer", "name": "Washer 3"},
    )

    assert response.status_code == 201, response.content
    body = response.json()
    assert body["serial"] == "WM-2025-0101" and body["label"] == "Washer 3"
    assert len(body["secret"]) == 24
    assert body["status"]["state"] == "offline" and body["status"]["list"]["state"] == "pending"
    machine = Machine.objects.get(pk=body["id"])
    assert machine.secret_digest == Machine.digest_of(body["secret"])
    shown = alice.get(f"/api/v1/machines/{machine.pk}").json()
    assert "secret" not in shown and shown["serial"] == "WM-2025-0101"


def test_bad_input_is_refused_with_what_is_wrong(laundry):
    world = laundry.site.world
    alice = world.bearer(world.alice)
    url = f"/api/v1/properties/{world.prop.pk}/machines"

    error_of(post(alice, url, {"serial": "no"}), 400, "invalid_serial")
    error_of(post(alice, url, {"serial": "WM-9", "kind": "oven"}), 400, "invalid_kind")
    error_of(post(alice, url, {"serial": "WM-NEW-0001", "name": "x" * 101}), 422)
    taken = error_of(post(alice, url, {"serial": WASHER}), 409, "machine_exists")
    assert WASHER in taken["message"]
    error_of(patch(alice, f"/api/v1/machines/{laundry.washer.pk}", {"kind": "oven"}), 400)
    assert Machine.objects.count() == 2


def test_the_site_lists_its_machines_live_and_changes_show(laundry):
    world = laundry.site.world
    alice = world.bearer(world.alice)
    Machine.objects.filter(pk=laundry.washer.pk).update(
        online=True, state="running", programs=["Cotton 40", "Quick 15"]
    )

    listed = alice.get(f"/api/v1/properties/{world.prop.pk}/machines").json()
    assert [(m["label"], m["status"]["state"]) for m in listed] == [
        ("Dryer 1", "offline"),
        ("Washer 1", "running"),
    ]
    assert listed[1]["status"]["programs"] == ["Cotton 40", "Quick 15"]

    changed = patch(alice, f"/api/v1/machines/{laundry.dryer.pk}", {"name": "Big dryer"})
    assert changed.status_code == 200 and changed.json()["name"] == "Big dryer"
    assert changed.json()["kind"] == "dryer"

    rotated = post(alice, f"/api/v1/machines/{laundry.dryer.pk}/secret")
    assert rotated.status_code == 200 and len(rotated.json()["secret"]) == 24
    assert Machine.objects.get(pk=laundry.dryer.pk).secret_digest == Machine.digest_of(
        rotated.json()["secret"]
    )

    assert alice.delete(f"/api/v1/machines/{laundry.dryer.pk}").status_code == 204
    error_of(alice.get(f"/api/v1/machines/{laundry.dryer.pk}"), 404, "machine_not_found")
    assert len(alice.get(f"/api/v1/properties/{world.prop.pk}/machines").json()) == 1


def test_the_cycles_of_a_site_and_of_a_machine_name_their_resident_and_unit(laundry):
    world = laundry.site.world
    alice = world.bearer(world.alice)
    first = a_cycle(laundry, 1)
    a_cycle(laundry, 2, ended_at=None, energy_wh=None)
    flagged = a_cycle(
        laundry,
        3,
        started_at=None,
        person=None,
        unit=None,
        badge=None,
        tag="",
        review="end_without_start",
    )

    rows = alice.get(f"/api/v1/properties/{world.prop.pk}/cycles").json()

    assert [r["seq"] for r in rows] == [3, 2, 1]  # one without a start is placed by its end
    one = next(r for r in rows if r["id"] == first.pk)
    assert (one["person"], one["unit"], one["energy_wh"], one["program"]) == (
        "Rosa Resident",
        "A-12",
        820,
        "Cotton 40",
    )
    assert rows[1]["running"] and not one["running"]
    assert next(r for r in rows if r["id"] == flagged.pk)["review"] == "end_without_start"
    since = alice.get(
        f"/api/v1/machines/{laundry.washer.pk}/cycles?since=2026-02-10T09:30:00Z&until=2026-02-10T10:30:00Z"
    ).json()
    assert [r["seq"] for r in since] == [2]
    error_of(
        alice.get(
            f"/api/v1/properties/{world.prop.pk}/cycles?since=2026-03-01T00:00:00Z"
            "&until=2026-02-01T00:00:00Z"
        ),
        400,
        "invalid_period",
    )


def test_an_outsider_gets_404_and_a_member_403_with_the_reason(laundry):
    world = laundry.site.world
    charlie, bob = world.bearer(world.charlie), world.bearer(world.bob)
    a_cycle(laundry)
    reads = [
        f"/api/v1/properties/{world.prop.pk}/machines",
        f"/api/v1/machines/{laundry.washer.pk}",
        f"/api/v1/machines/{laundry.washer.pk}/cycles",
        f"/api/v1/properties/{world.prop.pk}/cycles",
    ]
    for url in reads:
        body = error_of(charlie.get(url), 404)
        assert "Washer" not in str(body) and "Rosa" not in str(body)
        assert "laundry machines" in error_of(bob.get(url), 403, "forbidden")["message"]
    changes = [
        ("post", f"/api/v1/properties/{world.prop.pk}/machines", {"serial": "WM-MINE-0001"}),
        ("patch", f"/api/v1/machines/{laundry.washer.pk}", {"name": "Mine"}),
        ("post", f"/api/v1/machines/{laundry.washer.pk}/secret", {}),
        ("delete", f"/api/v1/machines/{laundry.washer.pk}", None),
    ]
    for method, url, body in changes:
        call = getattr(charlie, method)
        args = (url, body) if body is not None else (url,)
        kwargs = {"content_type": "application/json"} if body is not None else {}
        error_of(call(*args, **kwargs), 404)
        refused = error_of(getattr(bob, method)(*args, **kwargs), 403)
        assert "manage laundry machines" in refused["message"]
    assert Machine.objects.filter(removed_at__isnull=True).count() == 2
    assert error_of(charlie.get("/api/v1/machines/987654"), 404) == error_of(
        charlie.get(f"/api/v1/machines/{laundry.washer.pk}"), 404
    )


def test_a_resident_lists_their_machines_and_starts_one(laundry, gateway, make):
    rosa = laundry.site.world.bearer(laundry.site.rosa)
    machine = make(cycle_seconds=0.2)
    gateway.run(machine.connect())

    mine = rosa.get("/api/v1/me/machines").json()
    assert [(m["label"], m["state"]) for m in mine] == [
        ("Dryer 1", "offline"),
        ("Washer 1", "free"),
    ]

    started = post(
        rosa, "/api/v1/me/laundry", {"machine_id": laundry.washer.pk, "program": "Quick 15"}
    )

    assert started.status_code == 200, started.content
    assert started.json()["program"] == "Quick 15"
    assert machine.started == [started.json()["request_id"]]
    eventually(lambda: Cycle.objects.filter(ended_at__isnull=False).exists())
    (cycle,) = rosa.get("/api/v1/me/cycles").json()
    assert cycle["remote"] and cycle["person"] == "Rosa Resident" and cycle["energy_wh"] == 190

    error_of(
        post(rosa, "/api/v1/me/laundry", {"machine_id": laundry.dryer.pk}), 503, "machine_offline"
    )
    error_of(
        post(rosa, "/api/v1/me/laundry", {"machine_id": laundry.washer.pk, "program": "Lava"}),
        400,
        "invalid_program",
    )
    outsider = laundry.site.world.bearer(laundry.site.world.charlie)
    error_of(post(outsider, "/api/v1/me/laundry", {"machine_id": laundry.washer.pk}), 404)
    assert outsider.get("/api/v1/me/machines").json() == []
    assert outsider.get("/api/v1/me/cycles").json() == []
