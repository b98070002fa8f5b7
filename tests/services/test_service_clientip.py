"""core.clientip: the client's address, with X-Forwarded-For believed only
from trusted proxies (DOORKEEP_TRUSTED_PROXIES)."""

from __future__ import annotations

from ipaddress import ip_network

import pytest
from django.test import RequestFactory

from doorkeep.core.clientip import client_address, limit_key


@pytest.fixture
def behind_proxies(settings):
    settings.DOORKEEP_TRUSTED_PROXIES = (ip_network("10.0.0.0/24"), ip_network("2001:db8:1::1"))


def request_from(peer: str, forwarded: str | None = None):
    extra = {"HTTP_X_FORWARDED_FOR": forwarded} if forwarded is not None else {}
    return RequestFactory().get("/", REMOTE_ADDR=peer, **extra)


def test_without_trusted_proxies_the_peer_is_the_client_whatever_the_header_says(settings):
    settings.DOORKEEP_TRUSTED_PROXIES = ()

    assert client_address(request_from("198.51.100.4", "203.0.113.9")) == "198.51.100.4"


def test_a_header_from_a_peer_that_is_not_a_trusted_proxy_is_ignored(behind_proxies):
    assert client_address(request_from("198.51.100.4", "203.0.113.9")) == "198.51.100.4"


def test_behind_a_trusted_proxy_the_client_is_the_entry_the_proxy_added(behind_proxies):
    assert client_address(request_from("10.0.0.2", "203.0.113.9")) == "203.0.113.9"


def test_entries_a_client_wrote_itself_are_not_believed(behind_proxies):
    forged = "1.2.3.4, 203.0.113.9"  # the client sent "1.2.3.4"; the proxy appended its peer

    assert client_address(request_from("10.0.0.2", forged)) == "203.0.113.9"


def test_a_chain_of_trusted_proxies_is_walked_from_the_right(behind_proxies):
    chain = "1.2.3.4, 203.0.113.9, 10.0.0.7, 2001:db8:1::1"

    assert client_address(request_from("10.0.0.2", chain)) == "203.0.113.9"


def test_garbage_in_the_header_stops_at_the_last_trusted_proxy(behind_proxies):
    assert client_address(request_from("10.0.0.2", "203.0.113.9, not-an-ip")) == "10.0.0.2"
    assert client_address(request_from("10.0.0.2", "")) == "10.0.0.2"


def test_ports_brackets_and_mapped_addresses_are_read_as_the_address(behind_proxies):
    assert client_address(request_from("10.0.0.2", "203.0.113.9:51234")) == "203.0.113.9"
    assert client_address(request_from("10.0.0.2", "[2001:db8::5]:443")) == "2001:db8::5"
    assert client_address(request_from("::ffff:198.51.100.4")) == "198.51.100.4"


def test_a_request_without_a_peer_address_has_none():
    assert client_address(request_from("")) == ""


def test_an_ipv6_address_is_counted_as_its_64_network_and_ipv4_as_itself():
    assert limit_key("2001:db8:aa:bb:1:2:3:4") == "2001:db8:aa:bb::/64"
    assert limit_key("198.51.100.4") == "198.51.100.4"


def test_allauth_counts_its_own_limits_by_the_same_client_address(behind_proxies):
    from allauth.account.adapter import get_adapter

    request = request_from("10.0.0.2", "1.2.3.4, 203.0.113.9")

    assert get_adapter(request).get_client_ip(request) == "203.0.113.9"
