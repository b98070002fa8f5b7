"""The demo's logins, for the sign-in page in demo mode (README.md has the
same table, with more to try)."""

from __future__ import annotations

from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from doorkeep import demo

LOGINS: tuple[tuple[str, Promise], ...] = (
    (demo.OWNER, _("lock owner: buildings, locks, keys, the event log")),
    (demo.MANAGER, _("building manager: issues and takes back keys")),
    (demo.RESIDENT, _("resident: her keys, her guests, her home")),
    (demo.GUEST, _("guest: Guest Key")),
    (demo.FACILITY, _("an organization with shared management")),
    (demo.OPERATOR, _("platform operator: badge requests, the admin site")),
)
PASSWORD = demo.PASSWORD
