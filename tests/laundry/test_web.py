"""Laundry machines in the web UI: the Laundry section of the site's page
with each machine's live state, the site's laundry page and its live part,
adding a machine (its secret shown once with the simulator's command), a
machine's page, its settings, a new secret and removal; the resident
portal's Laundry section with a Start button on a free machine. An outsider
finds nothing; a plain member may look but not change."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from django.utils import timezone
from gateway_helpers import eventually
from laundry_values import UID, WASHER

from doorkeep.events.models import Event, EventKind
from doorkeep.laundry.models import Cycle, Machine


def page(client, url: str, status: int = 200) -> str:
    response = client.get(url)
    assert response.status_code == status, (response.status_code, response.content[:400])
    return response.content.decode()


def test_the_site_page_shows_each_machines_live_state(laundry):
    world = laundry.site.world
    Machine.objects.filter(pk=laundry.washer.pk).update(
        online=True, state="running", connected_at=timezone.now()
    )
    Cycle.objects.create(
        organization_id=world.org.pk,
        property=world.prop,
        machine=laundry.washer,
        seq=1,
        program="Cotton 40",
        person=laundry.site.rosa_person,
        started_at=timezone.now() - timedelta(minutes=10),
    )
    alice = world.client(world.alice)

    html = page(alice, f"/properties/{world.prop.pk}/")

    assert 'id="laundry"' in html
    assert f"/properties/{world.prop.pk}/laundry/live/" in html
    washer = re.search(rf'id="machine-{laundry.washer.pk}".*?</li>', html, re.S)
    dryer = re.search(rf'id="machine-{laundry.dryer.pk}".*?</li>', html, re.S)
    assert washer and 'data-state="running"' in washer.group(0)
    assert "Cotton 40" in washer.group(0) and "Rosa Resident" in washer.group(0)
    assert dryer and 'data-state="offline"' in dryer.group(0)


def test_the_live_part_follows_the_machine_without_a_reload(laundry):
    world = laundry.site.world
    alice = world.client(world.alice)
    url = f"/properties/{world.prop.pk}/laundry/live/"
    assert 'data-state="offline"' in page(alice, url)

    Machine.objects.filter(pk=laundry.washer.pk).update(online=True, state="out_of_order")
    live = alice.get(url)

    assert "no-cache" in live["Cache-Control"]
    assert 'data-state="out_of_order"' in live.content.decode()
    assert "Out of order" in live.content.decode()


def test_a_machine_registered_on_the_laundry_page_shows_its_secret_once_with_the_simulator_line(
    laundry,
):
    world = laundry.site.world
    alice = world.client(world.alice)
    assert 'id="add"' in page(alice, f"/properties/{world.prop.pk}/laundry/")

    response = alice.post(
        f"/properties/{world.prop.pk}/laundry/add/",
        {"serial": "wm-2025-0042", "kind": "dryer", "name": "Dryer 2"},
    )

    assert response.status_code == 200
    html = response.content.decode()
    machine = Machine.objects.get(serial="WM-2025-0042")
    secret = re.search(r'id="shown-once"[^>]*value="([^"]+)"', html).group(1)
    assert len(secret) == 24 and machine.secret_digest == Machine.digest_of(secret)
    assert f"doorkeep simulate machine WM-2025-0042 --secret {secret}" in html
    assert "no-store" in response["Cache-Control"] or "no-cache" in response["Cache-Control"]
    assert machine.kind == "dryer" and machine.name == "Dryer 2"
    assert secret not in page(alice, f"/machines/{machine.pk}/")


def test_bad_input_on_the_add_form_is_said_on_the_form(laundry):
    world = laundry.site.world
    alice = world.client(world.alice)

    taken = alice.post(
        f"/properties/{world.prop.pk}/laundry/add/", {"serial": WASHER, "kind": "washer"}
    )
    bad = alice.post(
        f"/properties/{world.prop.pk}/laundry/add/", {"serial": "??", "kind": "washer"}
    )

    assert taken.status_code == 409 and "is registered already" in taken.content.decode()
    assert bad.status_code == 400 and "4 to 32 letters" in bad.content.decode()
    assert Machine.objects.count() == 2


def test_the_machine_page_shows_its_state_cycles_and_events_and_takes_changes(laundry):
    world = laundry.site.world
    Cycle.objects.create(
        organization_id=world.org.pk,
        property=world.prop,
        machine=laundry.washer,
        seq=4,
        program="Quick 15",
        person=laundry.site.rosa_person,
        unit=laundry.site.unit,
        started_at=datetime(2026, 3, 1, 9, 0, tzinfo=UTC),
        ended_at=datetime(2026, 3, 1, 9, 20, tzinfo=UTC),
        energy_wh=190,
    )
    alice = world.client(world.alice)

    html = page(alice, f"/machines/{laundry.washer.pk}/")
    assert "Quick 15" in html and "A-12" in html and "0.190" in html
    assert f"/machines/{laundry.washer.pk}/live/" in html
    assert 'id="machine-cycles"' in page(alice, f"/machines/{laundry.washer.pk}/live/")

    saved = alice.post(
        f"/machines/{laundry.washer.pk}/change/", {"name": "Washer by the window", "kind": "washer"}
    )
    assert saved.status_code == 302
    assert Machine.objects.get(pk=laundry.washer.pk).name == "Washer by the window"

    rotated = alice.post(f"/machines/{laundry.washer.pk}/secret/")
    assert rotated.status_code == 200 and "New device secret" in rotated.content.decode()

    refused = alice.post(f"/machines/{laundry.washer.pk}/remove/", {})
    assert refused.status_code == 400 and "Tick the box" in refused.content.decode()
    removed = alice.post(f"/machines/{laundry.washer.pk}/remove/", {"confirm": "on"})
    assert removed.status_code == 302
    assert Machine.objects.get(pk=laundry.washer.pk).removed_at is not None
    assert page(alice, f"/machines/{laundry.washer.pk}/", status=404)
    assert Event.objects.filter(
        kind=EventKind.MACHINE_REMOVED, machine_id=laundry.washer.pk
    ).exists()


def test_a_member_may_look_but_not_change_and_an_outsider_finds_nothing(laundry):
    world = laundry.site.world
    bob, charlie = world.client(world.bob), world.client(world.charlie)
    for url in (
        f"/properties/{world.prop.pk}/laundry/",
        f"/properties/{world.prop.pk}/laundry/live/",
        f"/machines/{laundry.washer.pk}/",
        f"/machines/{laundry.washer.pk}/live/",
    ):
        page(charlie, url, status=404)
        assert "Washer 1" not in charlie.get(url).content.decode()
        page(bob, url, status=403)
    assert 'id="laundry"' not in page(bob, f"/properties/{world.prop.pk}/")

    for url, body in (
        (f"/properties/{world.prop.pk}/laundry/add/", {"serial": "WM-BOB-0001", "kind": "washer"}),
        (f"/machines/{laundry.washer.pk}/change/", {"name": "Mine", "kind": "washer"}),
        (f"/machines/{laundry.washer.pk}/secret/", {}),
        (f"/machines/{laundry.washer.pk}/remove/", {"confirm": "on"}),
    ):
        assert charlie.post(url, body).status_code == 404
        assert bob.post(url, body).status_code == 403
    assert Machine.objects.filter(removed_at__isnull=True).count() == 2
    assert not Machine.objects.filter(serial="WM-BOB-0001").exists()


def test_a_read_only_collaborator_sees_the_laundry(laundry):
    from doorkeep.accounts.models import Membership, Role
    from doorkeep.accounts.services import create_user

    world = laundry.site.world
    agent = create_user("agent@example.com", "correct horse battery staple")
    Membership.objects.create(
        user=agent, organization=world.org, role=Role.READ_ONLY, property=world.prop
    )
    client = world.client(agent)

    html = page(client, f"/properties/{world.prop.pk}/laundry/")

    assert "Washer 1" in html and 'id="add"' not in html


def test_the_portal_shows_the_residents_machines_with_start_on_a_free_one(laundry, gateway, make):
    rosa = laundry.site.world.client(laundry.site.rosa)
    machine = make(cycle_seconds=0.2)
    gateway.run(machine.connect())

    html = page(rosa, "/portal/")

    assert 'id="laundry"' in html
    washer = re.search(rf'id="laundry-{laundry.washer.pk}".*?</li>', html, re.S).group(0)
    dryer = re.search(rf'id="laundry-{laundry.dryer.pk}".*?</li>', html, re.S).group(0)
    start = f"/portal/laundry/machines/{laundry.washer.pk}/start/"
    assert start in washer and 'data-state="free"' in washer
    assert "/start/" not in dryer and "offline" in dryer

    response = rosa.post(start)

    assert response.status_code == 302 and response["Location"].endswith("#laundry")
    assert len(machine.started) == 1
    eventually(lambda: Cycle.objects.filter(ended_at__isnull=False).exists())
    assert Cycle.objects.get().person_id == laundry.site.rosa_person.pk
    assert "My laundry cycles" in page(rosa, "/portal/laundry/live/")


def test_a_start_the_portal_refuses_says_why(laundry, gateway, make):
    rosa = laundry.site.world.client(laundry.site.rosa)

    offline = rosa.post(f"/portal/laundry/machines/{laundry.washer.pk}/start/")

    assert offline.status_code == 503
    assert "offline" in offline.content.decode()
    alice = laundry.site.world.client(laundry.site.world.alice)
    assert alice.post(f"/portal/laundry/machines/{laundry.washer.pk}/start/").status_code == 404
    assert not Cycle.objects.exists()


def test_the_portal_shows_no_laundry_to_someone_without_machines(laundry):
    Machine.objects.all().update(removed_at=timezone.now())
    rosa = laundry.site.world.client(laundry.site.rosa)

    assert 'id="laundry"' not in page(rosa, "/portal/")


def test_the_simulated_badge_uid_is_not_on_any_page_to_an_outsider(laundry):
    charlie = laundry.site.world.client(laundry.site.world.charlie)
    assert UID not in page(charlie, "/portal/")


def test_a_real_machines_state_shows_live_on_the_site_page(laundry, gateway, make):
    world = laundry.site.world
    alice = world.client(world.alice)
    url = f"/properties/{world.prop.pk}/laundry/live/"
    machine = make(cycle_seconds=30)
    gateway.run(machine.connect())

    def shown(state: str) -> bool:
        part = re.search(
            rf'id="machine-{laundry.washer.pk}".*?</li>', alice.get(url).content.decode(), re.S
        )
        return part is not None and f'data-state="{state}"' in part.group(0)

    eventually(lambda: shown("free"))
    gateway.run(machine.badge(UID, "Cotton 60"))
    eventually(lambda: shown("running"))
    gateway.run(machine.end_cycle())
    gateway.run(machine.set_state("out_of_order"))
    eventually(lambda: shown("out_of_order"))
    gateway.run(machine.close())
    eventually(lambda: shown("offline"))
