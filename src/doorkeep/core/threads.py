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
import os
import threading
from typing import Any

from django.db.backends.base.base import BaseDatabaseWrapper

_local = threading.local()
_orphans: list[Any] = []  # raw connections of threads that ended


class _Closer:
    """Lives in one thread's storage; hands its connections over when freed.

    It holds the raw connections themselves (by wrapper): by the time it is
    freed, Django's wrapper may already be unreachable, and a collection that
    freed it first would close the connection during the teardown."""

    def __init__(self) -> None:
        self.pid = os.getpid()
        self.raws: dict[int, Any] = {}

    def __del__(self) -> None:
        if os.getpid() != self.pid:
            return  # a forked child clearing its parent's threads: not ours to close
        _orphans.extend(self.raws.values())  # no more than this: the thread is going away


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
    """``connection_created`` receiver: runs in the thread that opened it.
    (A wrapper shared with another thread by hand, ``inc_thread_sharing``,
    would be closed when the thread that opened it ends; nothing here does.)"""
    close_orphans()
    closer = getattr(_local, "closer", None)
    if closer is None:
        closer = _local.closer = _Closer()
    closer.raws[id(connection)] = connection.connection  # a reconnect replaces the old one


# A forked child must not close what its parent's threads still use.
os.register_at_fork(after_in_child=_orphans.clear)
