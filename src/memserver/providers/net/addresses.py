"""Which addresses an outbound request may connect to: the address classes of the URL policy.

Our own tables rather than `ipaddress.is_global`, whose answers changed between Python releases (IPv4-mapped
and NAT64 addresses count as global on some). Refused: every IPv4 special-purpose block of RFC 6890 that is
not globally reachable (this network, private, shared CGNAT, loopback, link-local with the cloud metadata
service 169.254.169.254, IETF protocol assignments, documentation, benchmarking, multicast, reserved,
broadcast); for IPv6 everything outside global unicast 2000::/3 (loopback, unspecified, IPv4-compatible,
NAT64 64:ff9b::/96 and 64:ff9b:1::/48, discard, unique-local, link-local, site-local, multicast), inside it
the IETF protocol block with Teredo, ORCHID and documentation, and any address with a scope id. IPv4-mapped
(::ffff:a.b.c.d) and 6to4 (2002:aabb:ccdd::) addresses are judged by the IPv4 address they embed: the
kernel connects a mapped address to that IPv4 host, and 6to4 relays route to it.
"""

from __future__ import annotations

import ipaddress
import socket

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

_V4_REFUSED: tuple[tuple[str, str], ...] = (
    ("0.0.0.0/8", "unspecified"),
    ("10.0.0.0/8", "private"),
    ("100.64.0.0/10", "private"),  # shared address space (carrier-grade NAT)
    ("127.0.0.0/8", "loopback"),
    ("169.254.0.0/16", "link-local"),  # the cloud metadata service lives here
    ("172.16.0.0/12", "private"),
    ("192.0.0.0/24", "reserved"),  # IETF protocol assignments
    ("192.0.2.0/24", "reserved"),
    ("192.88.99.0/24", "reserved"),  # 6to4 relay anycast
    ("192.168.0.0/16", "private"),
    ("198.18.0.0/15", "reserved"),
    ("198.51.100.0/24", "reserved"),
    ("203.0.113.0/24", "reserved"),
    ("224.0.0.0/4", "multicast"),
    ("240.0.0.0/4", "reserved"),  # with 255.255.255.255
)
_V6_GLOBAL_UNICAST = ipaddress.IPv6Network("2000::/3")
_V6_REFUSED_IN_GLOBAL: tuple[tuple[str, str], ...] = (
    ("2001::/23", "reserved"),  # IETF protocol assignments: Teredo 2001::/32, ORCHID, benchmarking
    ("2001:db8::/32", "reserved"),  # documentation
)
_V6_NAMED: tuple[tuple[str, str], ...] = (
    ("::/128", "unspecified"),
    ("::1/128", "loopback"),
    ("64:ff9b::/96", "nat64"),
    ("64:ff9b:1::/48", "nat64"),
    ("fc00::/7", "private"),
    ("fe80::/10", "link-local"),
    ("fec0::/10", "private"),  # site-local (deprecated)
    ("ff00::/8", "multicast"),
)
_V4 = tuple((ipaddress.IPv4Network(n), c) for n, c in _V4_REFUSED)
_V6_IN_GLOBAL = tuple((ipaddress.IPv6Network(n), c) for n, c in _V6_REFUSED_IN_GLOBAL)
_V6 = tuple((ipaddress.IPv6Network(n), c) for n, c in _V6_NAMED)
_6TO4 = ipaddress.IPv6Network("2002::/16")

# Names that are loopback by definition (RFC 6761): refused without asking DNS.
_LOOPBACK_NAMES = ("localhost", "localhost.localdomain")


def refused_class(ip: IPAddress) -> str | None:
    """The class that makes `ip` unreachable under the policy (loopback, private, ...), or None if public."""
    if isinstance(ip, ipaddress.IPv4Address):
        return next((c for net, c in _V4 if ip in net), None)
    if ip.scope_id:
        return "scoped"
    if ip.ipv4_mapped is not None:
        return refused_class(ip.ipv4_mapped)
    if ip.sixtofour is not None:
        return refused_class(ip.sixtofour)
    named = next((c for net, c in _V6 if ip in net), None)
    if named is not None:
        return named
    if ip not in _V6_GLOBAL_UNICAST:
        return "reserved"  # IPv4-compatible ::a.b.c.d, discard 100::/64, and unassigned space
    return next((c for net, c in _V6_IN_GLOBAL if ip in net), None)


def literal_address(host: str) -> IPAddress | None:
    """The address a URL host spells, in any form a resolver would accept, or None for a name.

    Besides the standard forms this covers what `inet_aton` reads (`127.1`, `2130706433`, `0x7f.0.0.1`,
    `0177.0.0.1`) and a trailing dot, so a literal is judged at once instead of after a lookup.
    """
    bare = host.strip("[]").rstrip(".").replace("%25", "%", 1)  # a scope id is percent-encoded in URLs
    try:
        return ipaddress.ip_address(bare)
    except ValueError:
        pass
    if bare and all(ch in "0123456789abcdefx." for ch in bare.lower()):
        try:
            return ipaddress.IPv4Address(socket.inet_aton(bare))
        except OSError:
            return None
    return None


def is_loopback_name(host: str) -> bool:
    """`localhost` and its subdomains, which resolve to loopback by definition (no lookup needed)."""
    name = host.rstrip(".").lower()
    return name in _LOOPBACK_NAMES or name.endswith(".localhost")


def parse_networks(values: tuple[str, ...] | list[str]) -> tuple[IPNetwork, ...]:
    """CIDR strings (`10.0.5.0/24`, `fd00::/8`, a bare address) as networks; ValueError names a bad one."""
    out: list[IPNetwork] = []
    for value in values:
        try:
            out.append(ipaddress.ip_network(value.strip(), strict=False))
        except ValueError:
            raise ValueError(f"not an IP network: {value!r}") from None
    return tuple(out)
