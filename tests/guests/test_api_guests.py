"""The guest flow through the REST API, end to end with a real gateway and a
simulated lock: policy, invitation, acceptance, locations, presence, unlock."""

from __future__ import annotations

import json
from typing import Any

from guest_helpers import GuestWorld

from doorkeep.guests import presence


def post(client: Any, url: str, body: Any = None) -> Any:
    return client.post(url, json.dumps(body or {}), content_type="application/json")


def error(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.content
    body = response.json()
    assert body["code"] == code and body["message"], body
    return body


def test_the_whole_guest_flow_through_the_api(gw: GuestWorld, front_door: Any, smtp: Any) -> None:
    w = gw.w
    alice, rita, gina = w.bearer(w.alice), w.bearer(gw.rita), w.bearer(gw.gina)
    policy = {
        "sharing_enabled": True,
        "shareable_entry_ids": [w.entry.pk],
        "max_guests_per_resident": 3,
        "require_presence": True,
        "reverify_after_days": 14,
    }
    response = alice.put(
        f"/api/v1/properties/{w.prop.pk}/guest-policy",
        json.dumps(policy),
        content_type="application/json",
    )
    assert response.status_code == 200 and response.json()["shareable_entry_ids"] == [w.entry.pk]
    assert rita.get(f"/api/v1/properties/{w.prop.pk}/guest-policy").json()["require_presence"]

    created = post(alice, f"/api/v1/entries/{w.entry.pk}/panels", {"name": "Lobby"})
    assert created.status_code == 201
    secret = created.json()["secret"]
    assert created.json()["otpauth_uri"].startswith("otpauth://totp/")
    assert "secret" not in alice.get(f"/api/v1/entries/{w.entry.pk}/panels").json()[0]

    sent = post(
        rita,
        "/api/v1/invitations",
        {"property_id": w.prop.pk, "email": "gina@example.com", "entry_ids": [w.entry.pk]},
    )
    assert sent.status_code == 201, sent.content
    assert sent.json()["status"] == "sent" and sent.json()["emailed"]
    assert smtp.last_to("gina@example.com")["Subject"].endswith(
        "added you as an auto-verified guest"
    )
    invitation_id = sent.json()["id"]
    error(
        post(
            rita,
            "/api/v1/invitations",
            {"property_id": w.prop.pk, "email": "x@example.com", "entry_ids": [w.entry2.pk]},
        ),
        403,
        "entry_not_shareable",
    )

    waiting = gina.get("/api/v1/guest/invitations").json()
    assert [i["id"] for i in waiting] == [invitation_id]
    assert (
        post(gina, f"/api/v1/guest/invitations/{invitation_id}/accept").json()["status"]
        == "accepted"
    )
    assert rita.get(f"/api/v1/invitations/{invitation_id}").json()["status"] == "accepted"

    (location,) = gina.get("/api/v1/guest/locations").json()
    assert location["property"] == "Canal House" and location["shared_by"] == ["Rita Resident"]
    assert [e["name"] for e in location["entries"]] == ["Front door"]
    assert location["presence_required"] and not location["presence_verified"]

    error(post(gina, f"/api/v1/entries/{w.entry.pk}/unlock"), 403, "presence_required")
    assert front_door.opened == []
    error(
        post(gina, f"/api/v1/guest/entries/{w.entry.pk}/verify", {"code": "12"}),
        400,
        "invalid_code",
    )

    code, _step = presence.code_at(secret)
    verified = post(gina, f"/api/v1/guest/entries/{w.entry.pk}/verify", {"code": code})
    assert verified.status_code == 200, verified.content
    assert verified.json() == {
        "verified": True,
        "entry_id": w.entry.pk,
        "opened": True,
        "unlock_error": None,
    }
    assert len(front_door.opened) == 1
    error(
        post(gina, f"/api/v1/guest/entries/{w.entry.pk}/verify", {"code": code}), 409, "code_used"
    )
    assert post(gina, f"/api/v1/entries/{w.entry.pk}/unlock").status_code == 200
    assert len(front_door.opened) == 2

    events = rita.get(f"/api/v1/invitations/{invitation_id}/events").json()
    assert [e["kind"] for e in events].count("guest.unlocked") == 2
    assert "presence.verified" in [e["kind"] for e in events]
    managers_view = alice.get(f"/api/v1/properties/{w.prop.pk}/events?kind=guest.unlocked").json()
    assert len(managers_view["items"]) == 2

    # the guest cannot invite, see the property's log, or change the policy
    error(
        post(
            gina,
            "/api/v1/invitations",
            {"property_id": w.prop.pk, "email": "y@example.com", "entry_ids": [w.entry.pk]},
        ),
        403,
        "not_a_resident",
    )
    assert gina.get(f"/api/v1/properties/{w.prop.pk}/events").status_code == 404
    assert (
        gina.put(
            f"/api/v1/properties/{w.prop.pk}/guest-policy",
            json.dumps(policy),
            content_type="application/json",
        ).status_code
        == 404
    )

    revoked = post(rita, f"/api/v1/invitations/{invitation_id}/revoke")
    assert revoked.json()["status"] == "revoked"
    error(post(gina, f"/api/v1/entries/{w.entry.pk}/unlock"), 403, "access_denied")
    assert gina.get("/api/v1/guest/locations").json() == []


def test_a_guest_gives_the_access_back(gw: GuestWorld) -> None:
    from doorkeep.guests import services as guests
    from doorkeep.keys.models import Key

    invitation = gw.invite()
    guests.accept(gw.gina, invitation.pk)
    gina = gw.w.bearer(gw.gina)
    left = post(gina, f"/api/v1/guest/invitations/{invitation.pk}/leave")
    assert left.status_code == 200 and left.json()["status"] == "declined"
    assert not Key.objects.filter(person__user=gw.gina, revoked_at__isnull=True).exists()
    error(post(gina, f"/api/v1/guest/invitations/{invitation.pk}/leave"), 404, "not_found")


def test_bad_input_gets_clear_errors(gw: GuestWorld) -> None:
    rita = gw.w.bearer(gw.rita)
    naive = post(
        rita,
        "/api/v1/invitations",
        {
            "property_id": gw.w.prop.pk,
            "email": "g@example.com",
            "entry_ids": [gw.w.entry.pk],
            "ends_at": "2030-01-01T10:00:00",
        },
    )
    error(naive, 400, "invalid_end")
    error(
        post(
            rita,
            "/api/v1/invitations",
            {"property_id": gw.w.prop.pk, "email": "nope", "entry_ids": [gw.w.entry.pk]},
        ),
        400,
        "invalid_email",
    )
    missing = post(rita, "/api/v1/invitations", {"property_id": gw.w.prop.pk})
    assert missing.status_code == 422 and missing.json()["message"]
    error(post(rita, "/api/v1/invitations/999999/revoke"), 404, "not_found")
    bad_policy = gw.w.bearer(gw.w.alice).put(
        f"/api/v1/properties/{gw.w.prop.pk}/guest-policy",
        json.dumps({"sharing_enabled": True, "max_guests_per_resident": 0}),
        content_type="application/json",
    )
    assert bad_policy.status_code == 422
