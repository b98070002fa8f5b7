"""A thread's database connections are closed after the thread ends.

Django keeps one connection per thread and closes it only when asked. The
web server's threads come and go (granian ends a blocking thread after it has
been idle for a while), and so may a script's: the connection of a thread
that ended stayed open, unreachable, until the next full garbage collection
found it (Django's connection objects are reference cycles), holding one of
PostgreSQL's ``max_connections`` meanwhile.

A marker in the thread's own storage is freed as the thread ends and hands
the thread's connections over; they are closed at the next request or the
next connection opened, in a thread that is alive. (Closing them while the
thread is being torn down made granian's worker exit: a thread of its own
has no Python code to run then.)"""

from __future__ import annotations

import contextlib
import threading
import weakref
from typing import Any

from django.db.backends.base.base import BaseDatabaseWrapper

_local = threading.local()
_orphans: list[Any] = []  # raw connections of threads that ended


class _Closer:
    """Lives in one thread's storage; hands its connections over when freed."""

    def __init__(self) -> None:
        self.wrappers: weakref.WeakSet[BaseDatabaseWrapper] = weakref.WeakSet()

    def __del__(self) -> None:
        for wrapper in list(self.wrappers):
            raw = wrapper.connection
            if raw is not None:
                _orphans.append(raw)  # no more than this: the thread is going away


def close_orphans(**kwargs: Any) -> None:
    """Close the connections of threads that ended (a ``request_started``
    receiver, and called when a connection opens)."""
    while _orphans:
        try:
            raw = _orphans.pop()
        except IndexError:  # another thread took the last one
            return
        with contextlib.suppress(Exception):  # best effort: nobody uses it any more
            raw.close()


def close_at_thread_end(sender: Any, connection: BaseDatabaseWrapper, **kwargs: Any) -> None:
    """``connection_created`` receiver: runs in the thread that opened it."""
    close_orphans()
    closer = getattr(_local, "closer", None)
    if closer is None:
        closer = _local.closer = _Closer()
    closer.wrappers.add(connection)
