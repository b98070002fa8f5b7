"""core.ratelimit: fixed windows kept in the database."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection

from doorkeep.core import ratelimit
from doorkeep.core.errors import RateLimited
from doorkeep.core.models import RateLimitBucket

HOUR = timedelta(hours=1)
T0 = datetime(2030, 1, 1, 9, 0, tzinfo=UTC)


@pytest.fixture
def clock(time_machine):
    time_machine.move_to(T0, tick=False)
    return time_machine


def check(key="k", limit=3):
    ratelimit.check(key, limit=limit, window=HOUR, message="Slow down.")


def hits(key, n):
    for _ in range(n):
        ratelimit.hit(key, window=HOUR)


def test_it_lets_attempts_through_below_the_limit(db, clock):
    hits("k", 2)

    check()


def test_it_refuses_once_the_limit_is_used_up(db, clock):
    hits("k", 3)

    with pytest.raises(RateLimited) as caught:
        check()

    assert caught.value.message == "Slow down."
    assert caught.value.code == "rate_limited"
    assert caught.value.status == 429


def test_it_says_when_to_try_again(db, clock):
    hits("k", 3)
    clock.shift(timedelta(minutes=10))

    with pytest.raises(RateLimited) as caught:
        check()

    assert caught.value.details["retry_after"] == 50 * 60 + 1


def test_an_unknown_key_is_never_limited(db, clock):
    check("never-seen", limit=1)


def test_the_window_is_fixed_from_the_first_attempt(db, clock):
    hits("k", 2)
    clock.shift(timedelta(minutes=59))
    hits("k", 1)

    with pytest.raises(RateLimited):
        check()
    clock.shift(timedelta(minutes=1))
    check()


def test_the_first_hit_after_the_window_starts_a_new_count(db, clock):
    hits("k", 5)
    clock.shift(HOUR + timedelta(seconds=1))

    hits("k", 1)

    bucket = RateLimitBucket.objects.get(key="k")
    assert bucket.count == 1
    assert bucket.window_start == T0 + HOUR + timedelta(seconds=1)
    check()


def test_keys_are_counted_apart(db, clock):
    hits("a", 3)

    check("b")
    with pytest.raises(RateLimited):
        check("a")


def test_it_counts_every_hit(db, clock):
    hits("k", 7)

    assert RateLimitBucket.objects.get(key="k").count == 7


def test_reset_forgets_a_key(db, clock):
    hits("k", 3)
    hits("other", 3)

    ratelimit.reset("k")

    check("k")
    with pytest.raises(RateLimited):
        check("other")


# --- take: the atomic way -------------------------------------------------------------------------


def take(key="k", limit=3):
    return ratelimit.take(key, limit=limit, window=HOUR, message="Slow down.")


def test_take_counts_each_attempt_until_the_limit_then_refuses(db, clock):
    assert [take() for _ in range(3)] == [1, 2, 3]

    with pytest.raises(RateLimited) as caught:
        take()

    assert caught.value.details["retry_after"] == 60 * 60 + 1
    assert RateLimitBucket.objects.get(key="k").count == 3


def test_take_starts_a_new_window_once_the_old_one_is_over(db, clock):
    for _ in range(3):
        take()
    clock.shift(HOUR)

    assert take() == 1
    assert RateLimitBucket.objects.get(key="k").window_start == T0 + HOUR


def test_a_slot_given_back_can_be_taken_again(db, clock):
    for _ in range(3):
        take()

    ratelimit.give_back("k", window=HOUR)

    assert take() == 3
    with pytest.raises(RateLimited):
        take()


def test_giving_back_after_the_window_ended_does_not_touch_the_new_count(db, clock):
    take()
    clock.shift(HOUR)

    ratelimit.give_back("k", window=HOUR)

    assert ratelimit.count("k", window=HOUR) == 0
    assert RateLimitBucket.objects.get(key="k").count == 1


def _at_once(count, work):
    """Run ``work`` in ``count`` threads released together, each with its own
    database connection; the results, or the exceptions raised."""
    barrier = threading.Barrier(count)
    results: list[object] = [None] * count

    def run(index):
        try:
            barrier.wait(timeout=10)
            results[index] = work()
        except Exception as exc:
            results[index] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return results


@pytest.mark.django_db(transaction=True)
def test_a_burst_of_concurrent_attempts_admits_exactly_the_limit():
    results = _at_once(16, lambda: take("burst", limit=10))

    admitted = [r for r in results if isinstance(r, int)]
    refused = [r for r in results if isinstance(r, RateLimited)]
    assert (sorted(admitted), len(refused)) == (list(range(1, 11)), 6)
    assert RateLimitBucket.objects.get(key="burst").count == 10
