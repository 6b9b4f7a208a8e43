"""Who the client is: the one rule for a request's client address (rate limits, referral click
hashing and request logs all use it).

The socket's peer is the client, unless that peer is a proxy we trust (settings.trusted_proxies):
then `X-Forwarded-For` is read from the right, skipping every trusted hop, and the first address
that is not one of our proxies is the client. A header sent by anyone else is ignored, so a
client cannot pick its own address (and with it a fresh rate-limit bucket) by sending one.
"""

from __future__ import annotations

from collections.abc import Sequence
from ipaddress import IPv4Network, IPv6Network, ip_address

from starlette.types import Scope

Networks = Sequence[IPv4Network | IPv6Network]

UNKNOWN = "unknown"
_STATE_KEY = "client_address"  # memoized in scope["state"] by the first caller of a request


def _trusted(address: str, proxies: Networks) -> bool:
    try:
        parsed = ip_address(address)
    except ValueError:
        return False
    return any(parsed in network for network in proxies)


def _forwarded_for(scope: Scope) -> list[str]:
    hops: list[str] = []
    for name, value in scope.get("headers", ()):
        if name == b"x-forwarded-for":
            hops.extend(part.strip() for part in value.decode("latin-1").split(","))
    return hops


def resolve(scope: Scope, proxies: Networks) -> str:
    """The client address of this request (see the module docstring)."""
    peer = scope.get("client")
    address = str(peer[0]) if peer else UNKNOWN
    if not proxies or not _trusted(address, proxies):
        return address
    for hop in reversed(_forwarded_for(scope)):
        try:
            ip_address(hop)
        except ValueError:
            break  # a malformed entry: trust nothing to its left
        address = hop
        if not _trusted(hop, proxies):
            break
    return address


def client_address(scope: Scope, proxies: Networks) -> str:
    """`resolve`, computed once per request (the middleware, a rate limit and the click code ask)."""
    state = scope.setdefault("state", {})
    cached = state.get(_STATE_KEY)
    if cached is None:
        cached = state[_STATE_KEY] = resolve(scope, proxies)
    return str(cached)
