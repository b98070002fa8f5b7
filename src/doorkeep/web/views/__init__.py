"""The web UI: server-rendered pages over the domain services.

Each view parses a form, calls one service and renders. A service's
DomainError is shown on the page with the error's HTTP status; an object the
user may not see answers the 404 page.

One module per part of the site; the views are re-exported here for urls.py."""

from __future__ import annotations

from doorkeep.web.views.account import doors, open_door, revoke_token, tokens
from doorkeep.web.views.dashboard import create_property, dashboard, register_lock
from doorkeep.web.views.events import (
    lock_events,
    lock_events_csv,
    property_events,
    property_events_csv,
)
from doorkeep.web.views.keys import edit_key, issue_key, revoke_key
from doorkeep.web.views.licence import (
    activate_building_management,
    lock_licence,
    redeem_organization_code,
    upgrades,
)
from doorkeep.web.views.locks import (
    lock_detail,
    open_lock,
    remove_lock,
    rename_lock,
    rotate_device_secret,
)
from doorkeep.web.views.notify import (
    delete_webhook,
    notification_settings,
    notifications,
    open_notification,
    read_all_notifications,
    read_notification,
    remove_push_subscription,
    service_worker,
    test_notification,
    test_webhook,
    toggle_webhook,
    webhooks,
    webhooks_index,
)
from doorkeep.web.views.properties import add_entry, property_detail
from doorkeep.web.views.sharing import (
    edit_shared_key,
    issue_organization_key,
    issue_shared_key,
    revoke_shared_key,
    shared_key,
)

__all__ = [
    "activate_building_management",
    "add_entry",
    "create_property",
    "dashboard",
    "delete_webhook",
    "doors",
    "edit_key",
    "edit_shared_key",
    "issue_key",
    "issue_organization_key",
    "issue_shared_key",
    "lock_detail",
    "lock_events",
    "lock_events_csv",
    "lock_licence",
    "notification_settings",
    "notifications",
    "open_door",
    "open_lock",
    "open_notification",
    "property_detail",
    "property_events",
    "property_events_csv",
    "read_all_notifications",
    "read_notification",
    "redeem_organization_code",
    "register_lock",
    "remove_lock",
    "remove_push_subscription",
    "rename_lock",
    "revoke_key",
    "revoke_shared_key",
    "revoke_token",
    "rotate_device_secret",
    "service_worker",
    "shared_key",
    "test_notification",
    "test_webhook",
    "toggle_webhook",
    "tokens",
    "upgrades",
    "webhooks",
    "webhooks_index",
]
