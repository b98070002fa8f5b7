"""allauth's user sessions, noted at a bounded cost."""

from __future__ import annotations

import time
from collections.abc import Callable

from allauth.usersessions import app_settings
from allauth.usersessions.middleware import UserSessionsMiddleware
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse

NOTE_EVERY = 300  # seconds: how stale a session's "last seen" may get
_SEEN = "_doorkeep_session_seen"


class UserSessions(UserSessionsMiddleware):
    """allauth's middleware (USERSESSIONS_TRACK_ACTIVITY) writes down the
    session of every signed-in request: five statements and a write each
    time. This one does it on a session's first request, then at most every
    NOTE_EVERY seconds (as API tokens note their use): every session is in
    the list a person sees and ends at /accounts/sessions/, and that ending a
    collaborator's access ends, from its first request on."""

    get_response: Callable[[HttpRequest], HttpResponse]

    def __call__(self, request: HttpRequest) -> HttpResponse:
        session = getattr(request, "session", None)
        user = getattr(request, "user", None)
        if (
            app_settings.TRACK_ACTIVITY
            and session is not None
            and session.session_key
            and user is not None
            and user.is_authenticated
        ):
            now = time.time()
            seen = session.get(_SEEN)
            if not isinstance(seen, int | float) or not 0 <= now - seen < NOTE_EVERY:
                from allauth.usersessions.models import UserSession

                try:
                    UserSession.objects.create_from_request(request)
                except PermissionDenied:  # no client address to note: never refuse the request
                    pass
                else:
                    session[_SEEN] = now
        return self.get_response(request)
