from __future__ import annotations

from datetime import datetime

from django.http import HttpRequest
from ninja import Router, Schema, Status
from pydantic import Field

from doorkeep import policy
from doorkeep.api.util import actor
from doorkeep.properties import services
from doorkeep.properties.models import Entry, Property

router = Router(tags=["properties"])


class EntryOut(Schema):
    id: int
    property_id: int
    name: str


class PropertyOut(Schema):
    id: int
    organization_id: int
    name: str
    address: str
    timezone: str
    created_at: datetime
    entries: list[EntryOut]


class PropertyIn(Schema):
    organization_id: int
    name: str = Field(min_length=1, max_length=150)
    address: str = Field(default="", max_length=300)
    timezone: str = Field(default="Europe/Amsterdam", max_length=64)


class EntryIn(Schema):
    name: str = Field(min_length=1, max_length=150)


def property_out(prop: Property) -> dict[str, object]:
    return {
        "id": prop.pk,
        "organization_id": prop.organization_id,
        "name": prop.name,
        "address": prop.address,
        "timezone": prop.timezone,
        "created_at": prop.created_at,
        "entries": [entry_out(e) for e in prop.entries.all()],
    }


def entry_out(entry: Entry) -> dict[str, object]:
    return {"id": entry.pk, "property_id": entry.property_id, "name": entry.name}


@router.get("properties", response=list[PropertyOut], summary="List properties")
def list_properties(request: HttpRequest) -> list[dict[str, object]]:
    props = policy.properties(actor(request)).prefetch_related("entries")
    return [property_out(p) for p in props]


@router.post("properties", response={201: PropertyOut}, summary="Add a property")
def create_property(request: HttpRequest, body: PropertyIn) -> Status[dict[str, object]]:
    prop = services.create_property(
        actor(request), body.organization_id, name=body.name, address=body.address, tz=body.timezone
    )
    return Status(201, property_out(prop))


@router.get("properties/{property_id}", response=PropertyOut, summary="One property")
def get_property(request: HttpRequest, property_id: int) -> dict[str, object]:
    return property_out(services.get_property(actor(request), property_id))


@router.post("properties/{property_id}/entries", response={201: EntryOut}, summary="Add an entry")
def add_entry(request: HttpRequest, property_id: int, body: EntryIn) -> Status[dict[str, object]]:
    """A property's first entry is for every lock owner; another needs the
    organization's building management. Errors: `needs_building_management`
    (403), `entry_exists` (409)."""
    return Status(201, entry_out(services.add_entry(actor(request), property_id, name=body.name)))
