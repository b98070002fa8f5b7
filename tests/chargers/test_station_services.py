"""Stations as their site's owner and managers keep them, sessions as they
read them, commands, and a resident's start and stop from the portal.

Alice owns the Canal House (Rosa lives in A-12, with parking space P7);
Mona manages every site of Alice's; Rita is a read-only collaborator of the
Canal House; Sam manages only Alice's other site, the Depot; Bob is a plain
member; Charlie runs another organization. Commands here go to stations
that are offline (the gateway tests are in test_station_api.py)."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from charger_values import PASSWORD, UID

from doorkeep.accounts.models import Membership, Role, User
from doorkeep.accounts.services import create_user
from doorkeep.badges import services as badges
from doorkeep.chargers import reports, services
from doorkeep.chargers.models import ChargingSession, Review, Station
from doorkeep.chargers.reports import Reading, StationRefused
from doorkeep.chargers.selectors import CSV_COLUMNS
from doorkeep.core.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from doorkeep.events.models import Event, EventKind
from doorkeep.gateway.routing import StationOffline
from doorkeep.properties.services import create_property
from doorkeep.residents.services import ResidentSpec, add_parking_space, add_resident

JAN = datetime(2026, 1, 15, 10, 0, tzinfo=UTC)  # 11:00 in Amsterdam


@dataclass
class People:
    mona: User  # building manager, every site
    rita: User  # read only, the Canal House only
    sam: User  # building manager of the Depot only
    depot: Any


@pytest.fixture
def people(site: Any) -> People:
    world = site.world
    depot = create_property(world.alice, world.org.pk, name="Depot")
    mona = create_user("mona@example.com", "x" * 12, name="Mona Manager")
    rita = create_user("rita@example.com", "x" * 12, name="Rita Reader")
    sam = create_user("sam@example.com", "x" * 12, name="Sam Scoped")
    Membership.objects.create(user=mona, organization=world.org, role=Role.BUILDING_MANAGER)
    Membership.objects.create(
        user=rita, organization=world.org, role=Role.READ_ONLY, property=world.prop
    )
    Membership.objects.create(
        user=sam, organization=world.org, role=Role.BUILDING_MANAGER, property=depot
    )
    return People(mona, rita, sam, depot)


def register(site: Any, user: User | None = None, **spec: Any) -> tuple[Station, str]:
    spec.setdefault("charge_point_id", "CP-NEW-1")
    return services.register_station(
        user or site.world.alice, site.world.prop.pk, services.StationSpec(**spec)
    )


def charge(station: Station, *, at: datetime = JAN, uid: str = UID, stop_after: int | None = 60):
    """A session of ``uid`` at the station, as the station reports it: 7 kWh
    in an hour (still running, at 3.2 kW, without ``stop_after``)."""
    started = reports.start(station.pk, connector=1, id_tag=uid, meter_start_wh=10_000, at=at)
    reports.meter_values(
        station.pk,
        [Reading(at + timedelta(minutes=30), 13_500, 3200)],
        transaction_id=started.transaction_id,
    )
    if stop_after is not None:
        reports.stop(
            station.pk,
            started.transaction_id,
            meter_stop_wh=17_000,
            at=at + timedelta(minutes=stop_after),
            reason="Local",
        )
    return ChargingSession.objects.get(station=station, transaction_id=started.transaction_id)


# --- registering ------------------------------------------------------------------------------


def test_the_owner_registers_a_station_and_sees_its_password_once_stored_only_as_a_digest(site):
    station, password = register(site, name=" Garage  left ", parking_space="P7")

    assert len(password) == 24
    assert password.replace("-", "").replace("_", "").isalnum()
    station.refresh_from_db()
    assert station.password_digest == Station.digest_of(password)
    assert password not in station.password_digest
    assert (station.name, station.parking_space, station.private) == (
        "Garage left",
        site.space,
        True,
    )
    assert station.list_version == 1
    assert reports.authenticate("CP-NEW-1", password).station_id == station.pk
    event = Event.objects.get(kind=EventKind.STATION_REGISTERED, station_id=station.pk)
    assert event.actor == site.world.alice
    assert "private to A-12" in event.summary
    assert password not in str(event.data)


def test_two_stations_get_different_passwords(site):
    _first, one = register(site, charge_point_id="CP-A")
    _second, two = register(site, charge_point_id="CP-B")

    assert one != two


def test_a_building_manager_registers_a_station_too(site, people):
    station, _password = register(site, people.mona, parking_space_id=site.space.pk)

    assert station.parking_space == site.space


def test_a_read_only_collaborator_may_not_register_a_station(site, people):
    with pytest.raises(PermissionDenied) as refused:
        register(site, people.rita)

    assert "manage charging stations" in refused.value.message
    assert not Station.objects.filter(charge_point_id="CP-NEW-1").exists()


@pytest.mark.parametrize("who", ["bob", "charlie"])
def test_a_member_is_refused_and_an_outsider_does_not_find_the_site(site, who):
    expected = PermissionDenied if who == "bob" else NotFound
    with pytest.raises(expected):
        register(site, getattr(site.world, who))


def test_a_manager_of_another_site_does_not_find_this_one(site, people):
    with pytest.raises(NotFound):
        register(site, people.sam)

    station, _ = services.register_station(
        people.sam, people.depot.pk, services.StationSpec("CP-DEPOT-1")
    )
    assert station.property == people.depot


@pytest.mark.parametrize("cp_id", ["", "CP 1", "-CP1", "CP/1", "CP-\n1", "x" * 49, "Süd-1", "CP:1"])
def test_a_charge_point_id_that_is_not_url_safe_is_refused_with_what_it_may_hold(site, cp_id):
    with pytest.raises(InvalidInput) as refused:
        register(site, charge_point_id=cp_id)

    assert refused.value.code == "invalid_charge_point_id"
    assert "48 letters, digits, dots, dashes and underscores" in refused.value.message
    assert refused.value.details["field"] == "charge_point_id"


def test_a_charge_point_id_of_48_characters_with_dots_and_underscores_is_fine(site):
    cp_id = "Site_1.garage-" + "x" * 34

    station, _ = register(site, charge_point_id=cp_id)

    assert station.charge_point_id == cp_id


def test_a_charge_point_id_registered_already_is_a_conflict(site, stations):
    with pytest.raises(Conflict) as refused:
        register(site, charge_point_id="CP-SHARED-1")

    assert refused.value.code == "station_exists"
    assert "CP-SHARED-1" in refused.value.message


def test_another_organizations_station_id_is_a_conflict_without_naming_it(site, stations):
    world = site.world
    with pytest.raises(Conflict) as refused:
        services.register_station(
            world.charlie, world.charlie_prop.pk, services.StationSpec("CP-SHARED-1")
        )

    assert "Canal House" not in refused.value.message


@pytest.mark.parametrize("spec", [{"parking_space": "P99"}, {"parking_space_id": 987654}])
def test_a_parking_space_that_is_not_the_sites_is_not_found(site, spec):
    with pytest.raises(NotFound) as refused:
        register(site, **spec)

    assert refused.value.code == "parking_space_not_found"
    assert not Station.objects.exists()


def test_another_sites_parking_space_is_not_found(site, people):
    depot_space = add_parking_space(site.world.alice, people.depot.pk, "D1")

    with pytest.raises(NotFound):
        register(site, parking_space_id=depot_space.pk)


def test_a_name_longer_than_100_characters_is_refused(site):
    with pytest.raises(InvalidInput) as refused:
        register(site, name="n" * 101)

    assert refused.value.code == "name_too_long"


# --- reading ----------------------------------------------------------------------------------


def test_owner_manager_and_read_only_collaborator_see_the_sites_stations(site, stations, people):
    for user in (site.world.alice, people.mona, people.rita):
        listed = services.stations_of_site(user, site.world.prop.pk)
        assert [s.charge_point_id for s in listed] == ["CP-PRIVATE-7", "CP-SHARED-1"]
        assert services.get_station(user, stations.shared.pk) == stations.shared


def test_a_plain_member_is_refused_the_stations_with_a_reason(site, stations):
    with pytest.raises(PermissionDenied) as refused:
        services.get_station(site.world.bob, stations.shared.pk)

    assert "read-only collaborators can see the charging stations" in refused.value.message
    with pytest.raises(PermissionDenied):
        services.stations_of_site(site.world.bob, site.world.prop.pk)


@pytest.mark.parametrize("who", ["charlie", "sam"])
def test_an_outsider_and_a_collaborator_of_another_site_do_not_find_the_station(
    site, stations, people, who
):
    user = people.sam if who == "sam" else site.world.charlie

    with pytest.raises(NotFound) as missing:
        services.get_station(user, stations.shared.pk)

    assert missing.value.code == "station_not_found"
    with pytest.raises(NotFound):
        services.stations_of_site(user, site.world.prop.pk)
    with pytest.raises(NotFound):
        services.sessions(user, station_id=stations.shared.pk)
    with pytest.raises(NotFound):
        services.send_command(user, stations.shared.pk, "reset")


def test_a_station_that_does_not_exist_answers_like_anothers(site, stations):
    with pytest.raises(NotFound) as missing:
        services.get_station(site.world.charlie, 987654)

    assert missing.value.code == "station_not_found"


def test_the_status_shows_connectors_the_running_session_and_the_list_state(site, stations):
    shared = stations.shared
    reports.booted(shared.pk, vendor="Wallbe", model="Pro", serial="S1", firmware="2.1")
    reports.connector_status(shared.pk, 1, "Charging")
    reports.connector_status(shared.pk, 2, "Faulted", "GroundFailure")
    charge(shared, at=datetime.now(UTC) - timedelta(minutes=40), stop_after=None)

    status = services.station_status(Station.objects.get(pk=shared.pk))

    assert (status["vendor"], status["model"], status["firmware"]) == ("Wallbe", "Pro", "2.1")
    assert status["online"] is False
    one, two = status["connectors"]
    assert (one["number"], one["status"]) == (1, "Charging")
    assert one["session"]["person"] == "Rosa Resident"
    assert one["session"]["unit"] == "A-12"
    assert one["session"]["energy_wh"] == 3500
    assert one["session"]["power_w"] == 3200
    assert (two["status"], two["error_code"], two["session"]) == ("Faulted", "GroundFailure", None)
    assert status["local_list"] == {
        "state": "pending",
        "list_version": 1,
        "acked_version": 0,
        "last_push_at": None,
        "last_error": "",
    }


def test_a_session_on_a_connector_the_station_never_reported_is_shown_too(site, stations):
    charge(stations.shared, at=datetime.now(UTC) - timedelta(minutes=5), stop_after=None)

    (connector,) = services.station_status(stations.shared)["connectors"]

    assert connector["number"] == 1
    assert connector["status"] == ""
    assert connector["session"]["transaction_id"]


def test_the_list_state_is_synced_once_acknowledged_and_failed_after_an_error(site, stations):
    from doorkeep.chargers import lists

    lists.push_failed(stations.shared.pk, "the station refused the list update: Failed")
    shared = Station.objects.get(pk=stations.shared.pk)
    assert services.station_status(shared)["local_list"]["state"] == "failed"

    lists.acknowledged(stations.shared.pk, 1, {})
    shared = Station.objects.get(pk=stations.shared.pk)
    assert services.station_status(shared)["local_list"]["state"] == "synced"


# --- changing ---------------------------------------------------------------------------------


def test_moving_a_station_to_a_private_space_changes_its_list(site, stations):
    before = stations.shared.list_version

    station = services.change_station(
        site.world.alice, stations.shared.pk, parking_space="P7", name="By the gate"
    )

    assert station.private and station.name == "By the gate"
    assert Station.objects.get(pk=station.pk).list_version == before + 1
    event = Event.objects.get(kind=EventKind.STATION_CHANGED, station_id=station.pk)
    assert "private to A-12" in event.summary and "By the gate" in event.summary


def test_moving_a_station_off_its_space_makes_it_shared(site, stations):
    station = services.change_station(site.world.alice, stations.private.pk, parking_space="")

    assert station.parking_space is None
    assert not station.private
    assert Station.objects.get(pk=station.pk).list_version == 2


def test_renaming_a_station_leaves_its_list_alone(site, stations, people):
    services.change_station(people.mona, stations.private.pk, name="Rosa's")

    station = Station.objects.get(pk=stations.private.pk)
    assert (station.name, station.parking_space, station.list_version) == ("Rosa's", site.space, 1)


def test_a_change_that_changes_nothing_is_not_an_event(site, stations):
    services.change_station(site.world.alice, stations.private.pk, parking_space="P7")

    assert not Event.objects.filter(kind=EventKind.STATION_CHANGED).exists()


def test_a_read_only_collaborator_may_not_change_a_station(site, stations, people):
    with pytest.raises(PermissionDenied):
        services.change_station(people.rita, stations.shared.pk, name="Mine")

    assert Station.objects.get(pk=stations.shared.pk).name == ""


# --- passwords --------------------------------------------------------------------------------


def test_a_new_password_works_and_the_old_one_is_refused(site, stations):
    assert reports.authenticate("CP-SHARED-1", PASSWORD)

    password = services.rotate_password(site.world.alice, stations.shared.pk)

    assert len(password) == 24 and password != PASSWORD
    with pytest.raises(StationRefused):
        reports.authenticate("CP-SHARED-1", PASSWORD)
    assert reports.authenticate("CP-SHARED-1", password).station_id == stations.shared.pk
    event = Event.objects.get(kind=EventKind.STATION_PASSWORD_ROTATED)
    assert event.station_id == stations.shared.pk and event.actor == site.world.alice
    assert password not in event.summary + str(event.data)


def test_a_read_only_collaborator_may_not_issue_a_password(site, stations, people):
    with pytest.raises(PermissionDenied):
        services.rotate_password(people.rita, stations.shared.pk)

    assert reports.authenticate("CP-SHARED-1", PASSWORD)


# --- removing ---------------------------------------------------------------------------------


def test_a_removed_station_is_not_listed_refuses_connections_and_keeps_its_sessions(site, stations):
    session = charge(stations.shared)

    services.remove_station(site.world.alice, stations.shared.pk)

    assert [
        s.charge_point_id for s in services.stations_of_site(site.world.alice, site.world.prop.pk)
    ] == ["CP-PRIVATE-7"]
    with pytest.raises(StationRefused):
        reports.authenticate("CP-SHARED-1", PASSWORD)
    with pytest.raises(NotFound):
        services.get_station(site.world.alice, stations.shared.pk)
    assert list(services.sessions(site.world.alice, station_id=stations.shared.pk)) == [session]
    assert list(services.sessions(site.world.alice, property_id=site.world.prop.pk)) == [session]
    assert Event.objects.filter(
        kind=EventKind.STATION_REMOVED, station_id=session.station_id
    ).exists()
    with pytest.raises(NotFound):
        services.remove_station(site.world.alice, stations.shared.pk)


def test_a_removed_station_registered_again_comes_back_with_a_new_password_and_its_sessions(
    site, stations
):
    session = charge(stations.shared)
    services.remove_station(site.world.alice, stations.shared.pk)

    station, password = register(site, charge_point_id="CP-SHARED-1", parking_space="P7")

    assert station.pk == stations.shared.pk
    assert station.removed_at is None and station.private
    assert reports.authenticate("CP-SHARED-1", password).station_id == station.pk
    assert station.acked_version == 0 and station.list_version == 2
    assert list(services.sessions(site.world.alice, station_id=station.pk)) == [session]


def test_another_organization_cannot_take_a_removed_stations_id(site, stations):
    services.remove_station(site.world.alice, stations.shared.pk)
    world = site.world

    with pytest.raises(Conflict):
        services.register_station(
            world.charlie, world.charlie_prop.pk, services.StationSpec("CP-SHARED-1")
        )


# --- sessions ---------------------------------------------------------------------------------


@pytest.fixture
def neighbour(site: Any, stations: Any) -> Any:
    """Nina, Rosa's neighbour in B-3, with a badge of her own (an account too)."""
    create_user("nina@example.com", "x" * 12, name="Nina Neighbour")
    add_resident(
        site.world.alice,
        site.world.prop.pk,
        ResidentSpec(
            "Nina Neighbour", "nina@example.com", date(2024, 1, 1), unit_id=site.other_unit.pk
        ),
    )
    nina = User.objects.get(email="nina@example.com")
    request = badges.request_badge(nina, badges.RequestSpec(property_id=site.world.prop.pk))
    badges.approve_request(site.operator, request.pk)
    badges.assign_badge(site.operator, request.pk, "04112233445566")
    badges.deliver_badge(site.operator, request.pk, "handed_over")
    return nina


def test_sessions_of_a_site_newest_first_for_its_readers(site, stations, people, neighbour):
    older = charge(stations.shared, at=JAN)
    newer = charge(stations.shared, at=JAN + timedelta(days=1), uid="04112233445566")

    for user in (site.world.alice, people.mona, people.rita):
        assert list(services.sessions(user, property_id=site.world.prop.pk)) == [newer, older]
    assert list(
        services.sessions(site.world.alice, property_id=site.world.prop.pk, person=older.person)
    ) == [older]
    assert list(
        services.sessions(
            site.world.alice,
            station_id=stations.shared.pk,
            since=JAN + timedelta(hours=1),
            until=JAN + timedelta(days=2),
        )
    ) == [newer]
    assert newer.person.name == "Nina Neighbour" and newer.unit.label == "B-3"


def test_a_plain_member_and_outsiders_get_no_sessions(site, stations, people):
    charge(stations.shared)

    with pytest.raises(PermissionDenied):
        services.sessions(site.world.bob, property_id=site.world.prop.pk)
    for user in (site.world.charlie, people.sam):
        with pytest.raises(NotFound):
            services.sessions(user, property_id=site.world.prop.pk)


def test_a_period_that_ends_before_it_starts_is_refused(site, stations):
    with pytest.raises(InvalidInput) as refused:
        services.sessions(site.world.alice, property_id=site.world.prop.pk, since=JAN, until=JAN)

    assert refused.value.code == "invalid_period"


def test_a_resident_reads_their_own_sessions_only(site, stations, neighbour):
    mine = charge(stations.shared)
    charge(stations.shared, at=JAN + timedelta(days=1), uid="04112233445566")

    assert list(services.my_sessions(site.rosa)) == [mine]
    assert list(services.my_sessions(site.world.charlie)) == []


def test_the_csv_has_utc_and_site_times_energy_in_kwh_and_the_review_flag(site, stations):
    session = charge(stations.shared)
    flagged = reports.stop(
        stations.private.pk, "777", meter_stop_wh=500, at=JAN + timedelta(hours=2)
    )

    text = services.sessions_csv(
        services.sessions(site.world.alice, property_id=site.world.prop.pk)
    )

    rows = list(csv.DictReader(io.StringIO(text)))
    assert text.splitlines()[0] == ",".join(CSV_COLUMNS)
    by_id = {int(r["id"]): r for r in rows}
    row = by_id[session.pk]
    assert row["station"] == "CP-SHARED-1"
    assert row["connector"] == "1"
    assert row["transaction"] == session.transaction_id
    assert row["badge_uid"] == UID
    assert (row["person"], row["unit"]) == ("Rosa Resident", "A-12")
    assert row["started_utc"] == "2026-01-15T10:00:00Z"
    assert row["started_local"] == "2026-01-15T11:00:00+01:00"
    assert row["stopped_utc"] == "2026-01-15T11:00:00Z"
    assert row["energy_kwh"] == "7.000"
    assert (row["stop_reason"], row["review"]) == ("Local", "")
    assert by_id[flagged.pk]["review"] == Review.STOP_WITHOUT_START
    assert by_id[flagged.pk]["started_utc"] == ""


def test_a_name_that_looks_like_a_formula_is_defused_in_the_csv(site, stations):
    charge(stations.shared)
    Station.objects.filter(pk=stations.shared.pk).update(name="=HYPERLINK(1)")

    text = services.sessions_csv(
        services.sessions(site.world.alice, property_id=site.world.prop.pk)
    )

    assert "'=HYPERLINK(1)" in text


# --- commands ---------------------------------------------------------------------------------


def test_a_command_to_an_offline_station_says_so_and_is_in_the_log(site, stations, people):
    with pytest.raises(StationOffline) as offline:
        services.send_command(people.mona, stations.shared.pk, "reset", hard=True)

    assert offline.value.status == 503
    assert "offline" in offline.value.message
    event = Event.objects.get(kind=EventKind.STATION_COMMAND, station_id=stations.shared.pk)
    assert event.actor == people.mona
    assert event.reason == "station_offline"
    assert event.data["action"] == "reset" and event.data["args"] == {"hard": True}
    assert "Hard reset" in event.summary and "offline" in event.summary


def test_a_read_only_collaborator_may_not_send_commands(site, stations, people):
    with pytest.raises(PermissionDenied):
        services.send_command(people.rita, stations.shared.pk, "reset")

    assert not Event.objects.filter(kind=EventKind.STATION_COMMAND).exists()


@pytest.mark.parametrize(
    ("action", "args", "code"),
    [
        ("explode", {}, "unknown_command"),
        ("reset", {"connector": 1}, "unexpected_argument"),
        ("reset", {"hard": "yes"}, "invalid"),
        ("unlock_connector", {"connector": 0}, "invalid_connector"),
        ("unlock_connector", {"connector": True}, "invalid_connector"),
        ("change_availability", {"connector": 1}, "invalid"),
        ("remote_start", {}, "id_tag_required"),
        ("remote_start", {"id_tag": "not-a-uid"}, "invalid_tag"),
        ("remote_stop", {}, "transaction_required"),
        ("remote_stop", {"transaction_id": "12", "session_id": 1}, "transaction_required"),
        ("remote_stop", {"transaction_id": "abc"}, "invalid_transaction_id"),
    ],
)
def test_a_command_the_station_could_not_take_is_refused_before_it_is_sent(
    site, stations, action, args, code
):
    with pytest.raises(InvalidInput) as refused:
        services.send_command(site.world.alice, stations.shared.pk, action, **args)

    assert refused.value.code == code
    assert refused.value.message
    assert not Event.objects.filter(kind=EventKind.STATION_COMMAND).exists()


def test_a_remote_stop_names_a_running_session_of_that_station(site, stations):
    stopped = charge(stations.shared)
    running = charge(stations.private, at=datetime.now(UTC) - timedelta(minutes=5), stop_after=None)

    with pytest.raises(Conflict) as done:
        services.send_command(
            site.world.alice, stations.shared.pk, "remote_stop", session_id=stopped.pk
        )
    assert done.value.code == "session_not_running"
    with pytest.raises(NotFound):
        services.send_command(
            site.world.alice, stations.shared.pk, "remote_stop", session_id=running.pk
        )
    with pytest.raises(StationOffline):
        services.send_command(
            site.world.alice, stations.private.pk, "remote_stop", session_id=running.pk
        )
    event = Event.objects.get(kind=EventKind.STATION_COMMAND)
    assert event.person.name == "Rosa Resident"
    assert event.data["args"] == {
        "transaction_id": running.transaction_id,
        "session_id": running.pk,
    }


# --- the portal -------------------------------------------------------------------------------


def test_a_resident_may_start_charging_with_their_badge_the_station_being_asked(site, stations):
    with pytest.raises(StationOffline):
        services.start_charging(site.rosa, stations.private.pk)

    event = Event.objects.get(kind=EventKind.STATION_COMMAND)
    assert event.data["action"] == "remote_start"
    assert event.data["args"] == {"id_tag": UID, "connector": 1}
    assert event.data["portal"] is True
    assert (event.actor, event.person) == (site.rosa, site.rosa_person)


def test_a_lost_badge_starts_no_charging_and_the_resident_is_told_why(site, stations):
    badges.report_lost(site.rosa, stations.badge.pk)

    with pytest.raises(PermissionDenied) as refused:
        services.start_charging(site.rosa, stations.shared.pk)

    assert refused.value.code == "charging_refused"
    assert "reported lost" in refused.value.message
    assert refused.value.details["reason"] == "badge_lost"
    event = Event.objects.get(kind=EventKind.CHARGING_REFUSED)
    assert (event.reason, event.station_id) == ("badge_lost", stations.shared.pk)
    assert not Event.objects.filter(kind=EventKind.STATION_COMMAND).exists()


def test_a_neighbour_may_not_start_charging_at_a_private_station(site, stations, neighbour):
    with pytest.raises(PermissionDenied) as refused:
        services.start_charging(neighbour, stations.private.pk)

    assert refused.value.details["reason"] == "not_their_space"
    assert "private to parking space P7" in refused.value.message
    with pytest.raises(StationOffline):  # the shared one would be asked
        services.start_charging(neighbour, stations.shared.pk)


def test_a_resident_without_a_badge_is_told_to_ask_for_one(site, stations):
    create_user("ned@example.com", "x" * 12, name="Ned")
    add_resident(
        site.world.alice,
        site.world.prop.pk,
        ResidentSpec("Ned", "ned@example.com", date(2024, 1, 1), unit_id=site.other_unit.pk),
    )

    with pytest.raises(Conflict) as refused:
        services.start_charging(User.objects.get(email="ned@example.com"), stations.shared.pk)

    assert refused.value.code == "no_badge"


@pytest.mark.parametrize("who", ["alice", "bob", "charlie"])
def test_someone_who_does_not_live_there_does_not_find_the_station(site, stations, who):
    with pytest.raises(NotFound) as missing:
        services.start_charging(getattr(site.world, who), stations.shared.pk)

    assert missing.value.code == "station_not_found"
    assert not Event.objects.filter(station_id=stations.shared.pk).exists()


def test_a_removed_station_cannot_be_started(site, stations):
    services.remove_station(site.world.alice, stations.shared.pk)

    with pytest.raises(NotFound):
        services.start_charging(site.rosa, stations.shared.pk)


def test_a_connector_in_use_is_not_started_again(site, stations):
    charge(stations.shared, at=datetime.now(UTC) - timedelta(minutes=5), stop_after=None)

    with pytest.raises(Conflict) as busy:
        services.start_charging(site.rosa, stations.shared.pk, connector=1)

    assert busy.value.code == "connector_busy"
    with pytest.raises(StationOffline):
        services.start_charging(site.rosa, stations.shared.pk, connector=2)


def test_a_resident_stops_only_their_own_running_session(site, stations, neighbour):
    mine = charge(stations.shared, at=datetime.now(UTC) - timedelta(minutes=5), stop_after=None)
    done = charge(stations.private)

    with pytest.raises(NotFound) as missing:
        services.stop_charging(neighbour, mine.pk)
    assert missing.value.code == "charging_session_not_found"
    with pytest.raises(Conflict):
        services.stop_charging(site.rosa, done.pk)
    with pytest.raises(StationOffline):
        services.stop_charging(site.rosa, mine.pk)
    event = Event.objects.get(kind=EventKind.STATION_COMMAND)
    assert event.data["args"] == {"transaction_id": mine.transaction_id, "session_id": mine.pk}
    assert event.person == site.rosa_person
