"""The list of badges a laundry machine's controller keeps to decide alone,
derived from the platform's one equipment rule (badges.access.equipment_list),
and its version.

An entry is a badge the rule accepts at the machine's site now: ``{"id":
badge id, "kind": "tag", "match": UID}``, with ``until`` (the end of the
site's move-out day) when its holder is moving out. A badge the rule
refuses (lost, switched off, moved out, not issued by the platform in a
billing-and-payments site) is not in the list: the controller refuses
what it does not hold.

As for locks and charging stations, the list has one version, raised in the
transaction that changes what it should hold (``changed``: a badge switched
on or off, a resident moving in or out, the site's billing mode) and
announced to the gateway holding the machine after the commit. The gateway
compares the list with the fingerprints the controller acknowledged and
sends the difference. A list that changes with the calendar (a move-in day
begins) is caught by the gateway's recheck, which raises the version itself
(``raise_version``)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from doorkeep.badges.access import equipment_list
from doorkeep.chargers.lists import end_of_day
from doorkeep.laundry.models import Machine
from doorkeep.properties.models import Property

Entry = dict[str, object]


def entries(prop: Property, *, at: datetime | None = None) -> dict[int, Entry]:
    """The entries every machine of ``prop`` should hold now, by badge id."""
    found: dict[int, Entry] = {}
    for uid, decision in equipment_list(prop, at=at).items():
        badge = decision.badge
        if not decision.allowed or badge is None:
            continue
        entry: Entry = {"id": badge.pk, "kind": "tag", "match": uid}
        until = end_of_day(prop, decision.until)
        if until is not None:
            entry["until"] = _iso(until)
        found[badge.pk] = entry
    return found


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def fingerprint(entry: Entry) -> str:
    return f"{entry['match']}|{entry.get('until') or ''}"


def snapshot(listed: dict[int, Entry]) -> dict[str, str]:
    """The fingerprints of a list, by entry id (as text: JSON keys)."""
    return {str(pk): fingerprint(entry) for pk, entry in listed.items()}


def difference(acked: dict[str, str], listed: dict[int, Entry]) -> tuple[list[Entry], list[int]]:
    """Entries to add or replace, and entry ids to remove, to turn the list
    the controller acknowledged (its fingerprints) into ``listed``."""
    changed = [e for pk, e in sorted(listed.items()) if acked.get(str(pk)) != fingerprint(e)]
    removed = sorted(int(pk) for pk in acked if pk.isdecimal() and int(pk) not in listed)
    return changed, removed


# --- the version, and the notice ----------------------------------------------------------


def changed(
    *,
    property_ids: Iterable[int] = (),
    person_ids: Iterable[int] = (),
    machine_ids: Iterable[int] = (),
) -> list[int]:
    """The lists of these machines may have changed: the machines at these
    sites, at the sites where these people live or lived, and these. Raises
    their version in this transaction; the gateways holding them are told
    after the commit. Returns the machines' ids."""
    from doorkeep.residents.models import Residency

    sites = set(property_ids)
    people = list(person_ids)
    if people:
        sites |= set(
            Residency.objects.filter(person_id__in=people).values_list(
                "unit__property_id", flat=True
            )
        )
    named = set(machine_ids)
    if not sites and not named:
        return []
    ids = list(
        Machine.objects.filter(removed_at__isnull=True)
        .filter(Q(property_id__in=sites) | Q(pk__in=named))
        .values_list("pk", flat=True)
    )
    if not ids:
        return []
    Machine.objects.filter(pk__in=ids).update(list_version=F("list_version") + 1)
    transaction.on_commit(lambda: _announce(ids))
    return ids


def _announce(ids: list[int]) -> None:
    from doorkeep.gateway.routing import notify_machines

    notify_machines(ids)


def raise_version(machine_id: int, seen: int) -> int:
    """The list changed without a recorded change (the calendar turned): the
    machine needs a new version for it. Raises it if it is still ``seen``;
    returns the version now."""
    Machine.objects.filter(pk=machine_id, list_version=seen).update(
        list_version=F("list_version") + 1
    )
    return int(Machine.objects.filter(pk=machine_id).values_list("list_version", flat=True)[0])


def acknowledged(
    machine_id: int, version: int, fingerprints: dict[str, str], sent: datetime
) -> None:
    Machine.objects.filter(pk=machine_id).update(
        acked_version=version,
        acked_entries=fingerprints,
        last_push_at=sent,
        last_seen_at=timezone.now(),
        last_error="",
    )


def push_failed(machine_id: int, error: str) -> None:
    Machine.objects.filter(pk=machine_id).update(last_error=error[:200])
