"""Wrong passwords on POST /api/v1/auth/tokens behind a proxy and from many
places: limits per account and address, per account and per address, that
stop a guesser without locking anyone else out
(docs/decisions/0021-limits-per-account-and-address.md)."""

from __future__ import annotations

import threading
from ipaddress import ip_network

import pytest
from apihelp import error_of, post_json
from django.db import connection
from django.test import Client

PASSWORD = "correct horse battery staple"
TOKENS = "/api/v1/auth/tokens"
PROXY = "10.0.0.2"


@pytest.fixture
def behind_proxy(settings):
    settings.DOORKEEP_TRUSTED_PROXIES = (ip_network(PROXY),)


@pytest.fixture
def small_limits(settings):
    settings.DOORKEEP = {
        **settings.DOORKEEP,
        "LOGIN_FAILURES_PER_ACCOUNT_ADDRESS": 3,
        "LOGIN_FAILURES_PER_ACCOUNT": 6,
        "LOGIN_FAILURES_PER_ADDRESS": 5,
    }


def ask(email: str, password: str, client_at: str):
    """A token request from ``client_at``, through the TLS proxy."""
    client = Client(REMOTE_ADDR=PROXY, HTTP_X_FORWARDED_FOR=client_at)
    return post_json(client, TOKENS, {"email": email, "password": password})


def test_behind_a_proxy_one_client_guessing_does_not_refuse_everyone_elses_token(
    world, behind_proxy, small_limits
):
    for n in range(5):
        ask(f"someone{n}@example.com", "guess", "203.0.113.9")
    error_of(ask("bob@example.com", PASSWORD, "203.0.113.9"), 429, "rate_limited")

    assert ask("bob@example.com", PASSWORD, "198.51.100.4").status_code == 201
    assert ask("alice@example.com", PASSWORD, "198.51.100.5").status_code == 201


def test_a_stranger_guessing_at_an_account_does_not_lock_its_owner_out(
    world, behind_proxy, small_limits
):
    for _ in range(3):
        error_of(ask("alice@example.com", "guess", "203.0.113.9"), 400, "bad_credentials")

    error_of(ask("alice@example.com", PASSWORD, "203.0.113.9"), 429, "rate_limited")
    assert ask("alice@example.com", PASSWORD, "198.51.100.4").status_code == 201


def test_another_account_signs_in_from_the_address_that_burnt_one_accounts_budget(
    world, behind_proxy, small_limits
):
    for _ in range(3):
        ask("bob@example.com", "guess", "203.0.113.9")

    error_of(ask("bob@example.com", PASSWORD, "203.0.113.9"), 429, "rate_limited")
    assert ask("alice@example.com", PASSWORD, "203.0.113.9").status_code == 201


def test_guesses_spread_over_many_addresses_meet_the_accounts_ceiling(
    world, behind_proxy, small_limits
):
    for n in range(6):
        error_of(ask("alice@example.com", "guess", f"203.0.113.{n}"), 400, "bad_credentials")

    error_of(ask("alice@example.com", PASSWORD, "198.51.100.4"), 429, "rate_limited")
    assert ask("bob@example.com", PASSWORD, "198.51.100.4").status_code == 201


def test_a_forged_forwarded_header_does_not_escape_the_limit(world, behind_proxy, small_limits):
    for n in range(3):  # the client writes a new address each time; the proxy appends the real one
        ask("alice@example.com", "guess", f"1.2.3.{n}, 203.0.113.9")

    error_of(ask("alice@example.com", PASSWORD, "1.2.3.99, 203.0.113.9"), 429, "rate_limited")


def test_without_a_trusted_proxy_the_forwarded_header_is_not_believed(world, small_limits):
    for n in range(3):
        ask("alice@example.com", "guess", f"203.0.113.{n}")

    error_of(ask("alice@example.com", PASSWORD, "198.51.100.4"), 429, "rate_limited")


@pytest.mark.django_db(transaction=True)
def test_a_burst_of_concurrent_wrong_passwords_gets_exactly_the_limit_through(world, settings):
    settings.DOORKEEP = {**settings.DOORKEEP, "LOGIN_FAILURES_PER_ACCOUNT_ADDRESS": 10}
    barrier = threading.Barrier(16)
    statuses: list[int] = []

    def guess() -> None:
        try:
            barrier.wait(timeout=10)
            client = Client(REMOTE_ADDR="203.0.113.9")
            response = post_json(client, TOKENS, {"email": "alice@example.com", "password": "x"})
            statuses.append(response.status_code)
        finally:
            connection.close()

    threads = [threading.Thread(target=guess) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)

    assert sorted(statuses) == [400] * 10 + [429] * 6
