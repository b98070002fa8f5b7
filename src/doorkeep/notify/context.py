"""The unread count for the navigation bar, counted only if a page shows it."""

from __future__ import annotations

from django.http import HttpRequest

from doorkeep.accounts.models import User


class _UnreadCount:
    def __init__(self, user: User) -> None:
        self.user = user
        self.value: int | None = None

    def __call__(self) -> int:  # templates call it: one COUNT, at most once a page
        if self.value is None:
            from doorkeep.notify.selectors import unread_count

            self.value = unread_count(self.user)
        return self.value


def unread_notifications(request: HttpRequest) -> dict[str, object]:
    user = getattr(request, "user", None)
    if isinstance(user, User) and user.is_authenticated:
        return {"unread_notifications": _UnreadCount(user)}
    return {}
