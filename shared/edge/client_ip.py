"""The caller's IP, as Google's front end and the proxies we trust report it.

Google's front end appends the address it received the connection from to whatever
X-Forwarded-For the client sent, so only entries counted from the right are trustworthy:
the last one when the function is called directly (one further left per proxy of your own
in front that appends its peer: CLIENT_IP_HOPS). Behind Firebase Hosting's rewrite (the
console's ``/api``) that last entry is an edge of Fastly, Hosting's CDN, which many users
share; Fastly appended the client's address just before it. So the walk goes on leftward
while the entry is a trusted proxy's address (TRUSTED_PROXIES: Fastly's published ranges by
default), and the first entry that is not is the client. A direct caller cannot pose as the
CDN: the front end's own entry, its real address, is never a Fastly one. ``Fastly-Client-IP``
is not read: a client can set it (Fastly keeps one it finds). Without the header (local runs),
the socket's peer address.
"""

from __future__ import annotations

import ipaddress
from functools import lru_cache

from shared.settings import get_settings

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

# Fastly's published ranges, https://api.fastly.com/public-ip-list (as of 2026-10; they
# change rarely: if they do before a release here, add the new CIDRs to TRUSTED_PROXIES).
FASTLY = (
    "23.235.32.0/20 43.249.72.0/22 103.244.50.0/24 103.245.222.0/23 103.245.224.0/24 "
    "104.156.80.0/20 140.248.64.0/18 140.248.128.0/17 146.75.0.0/17 151.101.0.0/16 "
    "157.52.64.0/18 167.82.0.0/17 167.82.128.0/20 167.82.160.0/20 167.82.224.0/20 "
    "172.111.64.0/18 185.31.16.0/22 199.27.72.0/21 199.232.0.0/16 2a04:4e40::/32 2a04:4e42::/32"
).split()


@lru_cache(maxsize=4)
def trusted_networks(spec: str) -> tuple[Network, ...]:
    """``spec``: comma-separated CIDRs, ``fastly`` for Fastly's ranges; '' trusts none.
    Settings validate it at start (shared/settings.py), so a bad entry never gets here."""
    nets: list[Network] = []
    for item in (s.strip() for s in spec.split(",")):
        if item == "fastly":
            nets += [ipaddress.ip_network(c) for c in FASTLY]
        elif item:
            nets.append(ipaddress.ip_network(item, strict=False))
    return tuple(nets)


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text.strip())
    except ValueError:
        return None


def client_ip(forwarded_for: str | None, remote_addr: str | None) -> str | None:
    s = get_settings()
    if not forwarded_for:
        addr = _address(remote_addr or "")
        return str(addr) if addr is not None else None
    entries = forwarded_for.split(",")
    i = max(len(entries) - s.client_ip_hops, 0)
    nets = trusted_networks(s.trusted_proxies)
    addr = _address(entries[i])
    while addr is not None and i > 0 and any(addr in n for n in nets):
        i -= 1  # a trusted proxy's address: the one it appended is to its left
        addr = _address(entries[i])
    return str(addr) if addr is not None else None
