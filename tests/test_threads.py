"""A thread's database connection is closed after the thread ends (at the
next request or connection), not when a garbage collection finds it later."""

from __future__ import annotations

import gc
import threading

import pytest
from django.core.signals import request_started
from django.db import connection, connections

from doorkeep.core.threads import close_orphans


def _is_closed(raw) -> bool:
    if connection.vendor == "sqlite":
        try:
            raw.execute("SELECT 1")
        except Exception as exc:  # sqlite3.ProgrammingError: closed database
            return "closed" in str(exc)
        return False
    return bool(raw.closed)


def _open_in_a_thread(end: threading.Event | None = None) -> tuple[object, threading.Thread]:
    opened: dict[str, object] = {}
    ready = threading.Event()

    def work() -> None:
        connection.ensure_connection()
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        opened["raw"] = connection.connection
        ready.set()
        if end is not None:
            end.wait(10)

    thread = threading.Thread(target=work)
    thread.start()
    assert ready.wait(10)
    return opened["raw"], thread


@pytest.mark.django_db(transaction=True)
def test_the_connection_of_a_thread_that_ended_is_closed_at_the_next_request():
    gc.disable()  # what the fix replaces: only a full collection used to close it
    try:
        end = threading.Event()
        raw, thread = _open_in_a_thread(end)
        assert not _is_closed(raw)  # open while its thread lives
        end.set()
        thread.join(10)
        assert not thread.is_alive()
        request_started.send(sender=None)  # the next request closes it
        assert _is_closed(raw)
    finally:
        gc.enable()


@pytest.mark.django_db(transaction=True)
def test_this_threads_connection_stays_open_while_other_threads_end():
    connection.ensure_connection()
    mine = connection.connection
    raw, thread = _open_in_a_thread()
    thread.join(10)
    _other, second = _open_in_a_thread()  # a connection opened closes it too
    second.join(10)
    assert _is_closed(raw)
    assert not _is_closed(mine)
    with connections["default"].cursor() as cursor:
        cursor.execute("SELECT 1")
        assert cursor.fetchone() == (1,)


@pytest.mark.django_db(transaction=True)
def test_a_forked_child_does_not_close_its_parents_connections():
    """A fork frees the other threads' storage in the child: what those threads
    opened is the parent's, still in use there."""
    import os

    end = threading.Event()
    raw, thread = _open_in_a_thread(end)
    pid = os.fork()
    if pid == 0:  # the child: what its next request or connection would do
        try:
            close_orphans()
        finally:
            os._exit(0)
    os.waitpid(pid, 0)
    cursor = raw.cursor()  # the parent's connection still answers
    cursor.execute("SELECT 1")
    assert cursor.fetchone() == (1,)
    cursor.close()
    end.set()
    thread.join(10)
