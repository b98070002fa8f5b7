"""A thread's database connections are closed when the thread ends.

Django keeps one connection per thread and closes it only when asked. The
web server's threads come and go (granian ends a blocking thread after it has
been idle for a while), and so may a script's: the connection of a thread
that ended stayed open, unreachable, until the next full garbage collection
found it (Django's connection objects are reference cycles), holding one of
PostgreSQL's ``max_connections`` meanwhile. A marker in the thread's own
storage, freed as the thread ends, closes what the thread opened."""

from __future__ import annotations

import contextlib
import threading
import weakref
from typing import Any

from django.db.backends.base.base import BaseDatabaseWrapper

_local = threading.local()


class _Closer:
    """Lives in one thread's storage; closes its connections when freed."""

    def __init__(self) -> None:
        self.wrappers: weakref.WeakSet[BaseDatabaseWrapper] = weakref.WeakSet()

    def __del__(self) -> None:
        for wrapper in list(self.wrappers):
            raw = wrapper.connection
            if raw is not None:
                with contextlib.suppress(Exception):  # best effort: the thread is gone
                    raw.close()


def close_at_thread_end(sender: Any, connection: BaseDatabaseWrapper, **kwargs: Any) -> None:
    """``connection_created`` receiver: runs in the thread that opened it."""
    closer = getattr(_local, "closer", None)
    if closer is None:
        closer = _local.closer = _Closer()
    closer.wrappers.add(connection)
