from __future__ import annotations

from django.http import HttpRequest

from doorkeep.accounts.models import User
from doorkeep.core.errors import NotFound


def actor(request: HttpRequest) -> User:
    user = request.user
    if not isinstance(user, User):  # auth already ran; this is for the type checker
        raise NotFound("Not found.")
    return user
