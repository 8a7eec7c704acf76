"""Outbound URLs: the one guard every request memserver sends goes through (document parts, webhook deliveries).

The policy, in one place:

- **Schemes**: `http` and `https` only (`file://`, `ftp://`, ... refused); a host is required; the port is the
  URL's, else 80 for http and 443 for https.
- **Addresses** (`addresses.py`): loopback, private, shared (CGNAT), link-local (with the metadata service
  169.254.169.254), multicast, unspecified, reserved and documentation blocks, IPv6 scope ids, NAT64
  (`64:ff9b::/96`, `64:ff9b:1::/48`) and IPv4-mapped, -compatible, 6to4 or Teredo forms of those are refused,
  in any spelling (`127.1`, `2130706433`, `[::ffff:127.0.0.1]`), as are `localhost` names. The operator may
  open every class (`allow_private`, e.g. `MEMSERVER_WEBHOOKS__ALLOW_PRIVATE_URLS`) or some networks
  (`allowed_networks`, e.g. an internal receiver's `10.0.5.0/24`).
- **Resolve, check, connect to the same address**: a host name is resolved once through the `Resolver` port,
  every answer must pass, and the connection goes to those addresses (`transport.PinnedTransport`) while the
  Host header, TLS SNI and certificate check use the name: a rebinding name cannot swap the address between
  the check and the connection.
- **Nothing from the environment**: no proxy, no `.netrc` (`trust_env=False`).
- **Budgets**: one deadline for the whole request (not per read), a byte budget on the body, read raw
  (`Accept-Encoding: identity`, never decompressed).
- **Redirects**: followed only where the caller allows them (documents: a few; webhooks: none), each hop
  checked and pinned as above.
- **Errors** say which rule refused or what failed, never an address.
"""

from memserver.providers.net.addresses import IPAddress, IPNetwork, parse_networks, refused_class
from memserver.providers.net.guard import (
    AddressRefused,
    Fetched,
    OutboundError,
    OutboundGuard,
    OutboundPolicy,
    TimedOut,
    TooLarge,
    Unreachable,
    URLRefused,
)
from memserver.providers.net.resolver import Resolver, SystemResolver

__all__ = [
    "AddressRefused",
    "Fetched",
    "IPAddress",
    "IPNetwork",
    "OutboundError",
    "OutboundGuard",
    "OutboundPolicy",
    "Resolver",
    "SystemResolver",
    "TimedOut",
    "TooLarge",
    "URLRefused",
    "Unreachable",
    "parse_networks",
    "refused_class",
]
