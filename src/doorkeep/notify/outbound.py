"""Outbound HTTP for webhooks and Web Push, whose addresses people type in.

Such an address must not reach into the network the platform runs in (its
database, its gateways, a cloud metadata service): a request to a private,
loopback, link-local or otherwise reserved address is refused. The check is
made on the address actually connected to, after the name was resolved, so a
name that resolves to a public address when it is saved and to a private one
when it is used is refused too. DOORKEEP_OUTBOUND_PRIVATE_ADDRESSES allows
them (development, and tests with local receivers); production refuses them.
"""

from __future__ import annotations

import ipaddress
from typing import Any

import requests
from django.conf import settings
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import NewConnectionError


class RefusedAddress(NewConnectionError):
    """The host resolved to an address outbound requests may not reach."""


def private_allowed() -> bool:
    return bool(getattr(settings, "DOORKEEP_OUTBOUND_PRIVATE_ADDRESSES", False))


def is_public(address: str) -> bool:
    """A global unicast address (IPv4-mapped IPv6 judged as its IPv4 address)."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


def literal_address(host: str) -> str | None:
    """The address a URL's host names directly, or None for a name."""
    try:
        return str(ipaddress.ip_address(host.strip("[]")))
    except ValueError:
        return None


class _Guarded:
    host: str

    def _new_conn(self) -> Any:
        sock = super()._new_conn()  # type: ignore[misc]
        peer = sock.getpeername()[0]
        if not private_allowed() and not is_public(peer):
            sock.close()
            raise RefusedAddress(
                self,  # type: ignore[arg-type]
                f"{self.host} is at {peer}, a private or reserved address: not allowed",
            )
        return sock


class _GuardedHTTPConnection(_Guarded, HTTPConnection):
    pass


class _GuardedHTTPSConnection(_Guarded, HTTPSConnection):
    pass


class _HTTPPool(HTTPConnectionPool):
    ConnectionCls = _GuardedHTTPConnection


class _HTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _GuardedHTTPSConnection


class _GuardedAdapter(HTTPAdapter):
    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _HTTPPool, "https": _HTTPSPool}


def session() -> requests.Session:
    """A requests session that follows no redirects, ignores proxy settings
    from the environment (the check must see the real peer) and refuses
    private addresses."""
    guarded = requests.Session()
    guarded.max_redirects = 0
    guarded.trust_env = False
    adapter = _GuardedAdapter()
    guarded.mount("http://", adapter)
    guarded.mount("https://", adapter)
    return guarded


def refused(exc: BaseException) -> bool:
    """Whether a requests exception comes from a refused address."""
    seen: set[int] = set()
    todo: list[Any] = [exc]
    while todo:
        current = todo.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, RefusedAddress):
            return True
        todo.extend(getattr(current, "args", ()))
        todo.append(getattr(current, "reason", None))
        todo.append(getattr(current, "__cause__", None))
        todo.append(getattr(current, "__context__", None))
    return False
