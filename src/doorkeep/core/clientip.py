"""The address a request comes from, for rate limits: one function for the
API, the web pages and allauth (docs/operations.md, "Behind a proxy").

The peer's address (REMOTE_ADDR) is the client unless the peer is one of
DOORKEEP_TRUSTED_PROXIES. Then X-Forwarded-For is read from the right: each
proxy appends the address it was connected from, so the right-most entry
that is not a trusted proxy is the client. Entries further left were written
by the client itself and can say anything, so they are never read."""

from __future__ import annotations

import ipaddress

from django.conf import settings
from django.http import HttpRequest

Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def _parse(text: str) -> Address | None:
    text = text.strip()
    if text.startswith("[") and "]" in text:  # [2001:db8::1]:443
        text = text[1 : text.index("]")]
    elif text.count(":") == 1:  # 192.0.2.1:443
        text = text.split(":", 1)[0]
    try:
        address = ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _trusted(address: Address) -> bool:
    return any(address in network for network in settings.DOORKEEP_TRUSTED_PROXIES)


def from_trusted_proxy(remote_addr: str) -> bool:
    """Whether the peer at ``remote_addr`` is one of DOORKEEP_TRUSTED_PROXIES
    (whose headers, such as X-Request-ID, may be believed)."""
    peer = _parse(remote_addr)
    return peer is not None and _trusted(peer)


def client_address(request: HttpRequest) -> str:
    """The client's address as text ("" when the peer's is unknown)."""
    return client_from(
        str(request.META.get("REMOTE_ADDR") or ""),
        str(request.META.get("HTTP_X_FORWARDED_FOR") or ""),
    )


def client_from(remote_addr: str, forwarded: str) -> str:
    """The client's address, given the peer's (``remote_addr``) and the
    X-Forwarded-For header (read only when the peer is a trusted proxy);
    "" when the peer's address is unknown. The gateway uses it too."""
    peer = _parse(remote_addr)
    if peer is None:
        return ""
    client = peer
    if _trusted(peer):
        for entry in reversed([e for e in forwarded.split(",") if e.strip()]):
            hop = _parse(entry)
            if hop is None:  # garbage: the proxy we trust last is as far as we know
                break
            client = hop
            if not _trusted(hop):
                break
    return str(client)


def limit_key(address: str) -> str:
    """What an address is counted as: an IPv6 address as its /64 network
    (one home or office is given a /64 and can use any address in it), an
    IPv4 address as itself."""
    parsed = _parse(address)
    if isinstance(parsed, ipaddress.IPv6Address):
        return str(ipaddress.IPv6Network(f"{parsed}/64", strict=False))
    return address
