"""The resolver port: host name -> addresses. The guard asks it once per request and connects to its answer.

Tests inject their own (a name that resolves to a private address, a rebinding name); production uses the
system resolver (`getaddrinfo` in a thread, as asyncio does).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from typing import Protocol

from memserver.providers.net.addresses import IPAddress


class Resolver(Protocol):
    async def resolve(self, host: str, port: int) -> list[IPAddress]:
        """Every address `host` resolves to for a TCP connection, in the order to try; OSError if none."""
        ...


class SystemResolver:
    """The operating system's resolver (`/etc/hosts`, DNS, ...)."""

    async def resolve(self, host: str, port: int) -> list[IPAddress]:
        infos = await asyncio.get_running_loop().getaddrinfo(
            host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
        )
        out: list[IPAddress] = []
        for family, *_, sockaddr in infos:
            ip = ipaddress.ip_address(str(sockaddr[0]))
            if family == socket.AF_INET6 and len(sockaddr) >= 4 and sockaddr[3]:
                ip = ipaddress.IPv6Address(f"{ip}%{sockaddr[3]}")  # keep the scope id: the policy refuses it
            if ip not in out:
                out.append(ip)
        return out
