"""NTAG 424 DNA panels through the REST API: installing one returns its tag
keys once, the policy can require the tag, and then a typed code is refused
with ``tag_required``."""

from __future__ import annotations

import json
from typing import Any

from guest_helpers import GuestWorld

from doorkeep.guests import presence
from doorkeep.guests import services as guests
from doorkeep.guests.models import Panel


def send(client: Any, method: str, url: str, body: Any) -> Any:
    return getattr(client, method)(url, json.dumps(body), content_type="application/json")


def test_a_tag_panel_is_installed_and_a_policy_requiring_the_tag_refuses_codes(
    gw: GuestWorld,
) -> None:
    w = gw.w
    alice, gina = w.bearer(w.alice), w.bearer(gw.gina)
    created = send(
        alice, "post", f"/api/v1/entries/{w.entry.pk}/panels", {"name": "Lobby", "tag": "ntag424"}
    )
    assert created.status_code == 201, created.content
    body = created.json()
    assert body["tag"] == "ntag424" and body["secret"] is None
    assert len(body["sdm_meta_read_key"]) == 32 and len(body["sdm_file_read_key"]) == 32
    assert body["url_template"].endswith(
        f"/guest/tag/{body['id']}/?picc_data={'0' * 32}&cmac={'0' * 16}"
    )
    assert Panel.objects.get(pk=body["id"]).sdm_meta_read_key == body["sdm_meta_read_key"]
    listed = alice.get(f"/api/v1/entries/{w.entry.pk}/panels").json()
    assert listed[0]["tag"] == "ntag424" and "sdm_meta_read_key" not in listed[0]
    bad = send(alice, "post", f"/api/v1/entries/{w.entry.pk}/panels", {"tag": "mifare"})
    assert bad.status_code == 422

    policy = {
        "sharing_enabled": True,
        "shareable_entry_ids": [w.entry.pk],
        "require_presence": True,
        "require_tag": True,
    }
    saved = send(alice, "put", f"/api/v1/properties/{w.prop.pk}/guest-policy", policy)
    assert saved.status_code == 200 and saved.json()["require_tag"] is True
    guests.accept(gw.gina, gw.invite(entry_ids=[w.entry.pk]).pk)
    _panel, secret = presence.add_panel(w.alice, w.entry.pk, "Old panel")
    code, _step = presence.code_at(secret)
    refused = send(gina, "post", f"/api/v1/guest/entries/{w.entry.pk}/verify", {"code": code})
    assert refused.status_code == 403 and refused.json()["code"] == "tag_required"
    charlie = w.bearer(w.charlie)
    assert charlie.get(f"/api/v1/entries/{w.entry.pk}/panels").status_code == 404
    assert (
        send(charlie, "post", f"/api/v1/entries/{w.entry.pk}/panels", {"tag": "ntag424"})
    ).status_code == 404


def test_migrating_back_past_the_tag_panels_is_refused_while_one_exists(gw: GuestWorld) -> None:
    """Without migration 0003 a tag panel would be a code panel without a
    secret: going back says so instead."""
    import importlib

    import pytest
    from django.apps import apps

    migration = importlib.import_module(
        "doorkeep.guests.migrations.0003_ntag424_panels_and_encrypted_secrets"
    )
    w = gw.w
    created = send(
        w.bearer(w.alice), "post", f"/api/v1/entries/{w.entry.pk}/panels", {"tag": "ntag424"}
    )
    assert created.status_code == 201
    with pytest.raises(RuntimeError, match="1 NTAG 424 DNA panels exist"):
        migration.decrypt(apps, None)
    Panel.objects.filter(pk=created.json()["id"]).delete()
    migration.decrypt(apps, None)  # none left: the secrets are decrypted, as before
