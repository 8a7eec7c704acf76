"""The resolver port: host name -> addresses. The guard asks it once per request and connects to its answer.

Tests inject their own (a name that resolves to a private address, a rebinding name, a name server that
never answers); production uses the system resolver (`getaddrinfo`) in threads of its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import socket
import threading
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from memserver.providers.net.addresses import IPAddress

AddrInfo = tuple[socket.AddressFamily, socket.SocketKind, int, str, tuple[Any, ...]]
BlockingLookup = Callable[[str, int], Sequence[AddrInfo]]

# Lookups running at once per process. A normal one takes milliseconds, so 8 serve hundreds a second;
# names whose name server never answers hold one each until the C library gives up.
MAX_LOOKUPS = 8


class Resolver(Protocol):
    async def resolve(self, host: str, port: int) -> list[IPAddress]:
        """Every address `host` resolves to for a TCP connection, in the order to try; OSError if none."""
        ...


class ResolverBusy(OSError):
    """Every lookup slot is held (by names whose name server does not answer): refused, not queued."""


def getaddrinfo(host: str, port: int) -> Sequence[AddrInfo]:
    """The C library's lookup for a TCP connection (blocking)."""
    return socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)


class SystemResolver:
    """The operating system's resolver (`/etc/hosts`, DNS, ...); `lookup` is its blocking call.

    `getaddrinfo` cannot be cancelled: a name whose name server never answers holds its thread until the C
    library gives up (timeout x attempts x name servers of resolv.conf: 10 s and more), whatever deadline
    the request had. Run in the event loop's default executor (6 threads on 2 cores), eight such document
    URLs stalled everything else that needs it for 11 s: the LLM client's own DNS (httpx via
    `loop.getaddrinfo`), `asyncio.to_thread` in search and export spooling. Here each lookup runs on a
    daemon thread of its own, at most `max_lookups` at once, counted until the lookup itself returns (a
    lookup whose request has timed out still holds its slot); one more is refused at once (`ResolverBusy`)
    instead of queueing behind the hanging ones. Daemon threads: a hanging lookup never delays the exit.
    """

    def __init__(self, lookup: BlockingLookup = getaddrinfo, max_lookups: int = MAX_LOOKUPS):
        self._lookup = lookup
        self.max_lookups = max(1, max_lookups)
        self._running = 0
        self._lock = threading.Lock()

    async def resolve(self, host: str, port: int) -> list[IPAddress]:
        infos = await self._in_own_thread(host, port)
        out: list[IPAddress] = []
        for family, *_, sockaddr in infos:
            ip = ipaddress.ip_address(str(sockaddr[0]))
            if family == socket.AF_INET6 and len(sockaddr) >= 4 and sockaddr[3]:
                ip = ipaddress.IPv6Address(f"{ip}%{sockaddr[3]}")  # keep the scope id: the policy refuses it
            if ip not in out:
                out.append(ip)
        return out

    async def _in_own_thread(self, host: str, port: int) -> Sequence[AddrInfo]:
        with self._lock:
            if self._running >= self.max_lookups:
                raise ResolverBusy(f"{self.max_lookups} host name lookups are already running")
            self._running += 1
        loop = asyncio.get_running_loop()
        done: asyncio.Future[Sequence[AddrInfo]] = loop.create_future()

        def settle(result: Sequence[AddrInfo] | None, error: BaseException | None) -> None:
            if done.done():  # the request gave up (its deadline) before the lookup returned
                return
            if error is not None:
                done.set_exception(error)
            else:
                done.set_result(result or [])

        def run() -> None:
            result: Sequence[AddrInfo] | None = None
            error: BaseException | None = None
            try:
                result = self._lookup(host, port)
            except Exception as exc:
                error = exc
            finally:
                with self._lock:  # the slot is free before the caller resumes (it may look up again at once)
                    self._running -= 1
            with contextlib.suppress(RuntimeError):  # the loop has closed meanwhile: nobody waits for this answer
                loop.call_soon_threadsafe(settle, result, error)

        threading.Thread(target=run, name="memserver-dns", daemon=True).start()
        return await done
