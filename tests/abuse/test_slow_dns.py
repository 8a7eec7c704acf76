"""A name server that never answers: the outbound guard's deadline ends the request, and the lookup it leaves
running holds only the resolver's own threads, never the event loop's default executor (which the LLM
client's DNS, `asyncio.to_thread` in search and export spooling all share).

The hanging name server is injected through the resolver port's blocking lookup: a lookup of a
`*.blackhole.test` name blocks as `getaddrinfo` does when no name server answers, until the test ends.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator, Sequence

import pytest

from memserver.providers.net import OutboundGuard, OutboundPolicy, SystemResolver, TimedOut, Unreachable
from memserver.providers.net.resolver import AddrInfo, getaddrinfo
from tests.abuse.hostile_http import HostileServer, answer, serving


class HangingNameServer:
    """A blocking lookup: `*.blackhole.test` hangs until `release()`, other names resolve as usual."""

    def __init__(self) -> None:
        self._released = threading.Event()
        self.hanging = 0
        self._lock = threading.Lock()

    def lookup(self, host: str, port: int) -> Sequence[AddrInfo]:
        if host.endswith(".blackhole.test"):
            with self._lock:
                self.hanging += 1
            self._released.wait(60)
            with self._lock:
                self.hanging -= 1
            raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")
        return getaddrinfo(host, port)

    def release(self) -> None:
        self._released.set()


@pytest.fixture
def name_server() -> Iterator[HangingNameServer]:
    ns = HangingNameServer()
    try:
        yield ns
    finally:
        ns.release()


@pytest.fixture
def receiver() -> Iterator[HostileServer]:
    with serving(answer(200, b"ok")) as server:
        yield server


async def _timed(coro: object) -> tuple[float, object]:
    started = time.monotonic()
    try:
        result: object = await coro  # type: ignore[misc]
    except Exception as exc:
        result = exc
    return time.monotonic() - started, result


async def test_hanging_lookups_never_hold_the_default_executor(
    name_server: HangingNameServer, receiver: HostileServer
) -> None:
    resolver = SystemResolver(lookup=name_server.lookup)
    guard = OutboundGuard(OutboundPolicy(subject="document URL", deadline_s=1.0), resolver)
    loop = asyncio.get_running_loop()

    # twelve documents on names no name server answers: each ends at the deadline, or at once when the
    # resolver's threads are all taken
    outcomes = await asyncio.gather(
        *(_timed(guard.fetch(f"http://h{i}.blackhole.test/doc", max_body=100)) for i in range(12))
    )
    assert all(isinstance(r, TimedOut | Unreachable) for _, r in outcomes), outcomes
    assert max(t for t, _ in outcomes) < 2.0
    busy = [(t, r) for t, r in outcomes if isinstance(r, Unreachable)]
    assert busy, "past the resolver's cap, a lookup is refused, not queued behind hanging ones"
    assert all(t < 0.5 for t, _ in busy)
    assert all("too many host name lookups" in str(r) for _, r in busy)
    assert name_server.hanging == 12 - len(busy)  # the lookups still running after their requests ended

    # ...and everything else that needs a thread of the loop's default executor goes on at once
    started = time.monotonic()
    await asyncio.wait_for(asyncio.gather(*(loop.run_in_executor(None, time.sleep, 0.05) for _ in range(8))), 3)
    await asyncio.wait_for(asyncio.to_thread(lambda: None), 3)
    await asyncio.wait_for(loop.getaddrinfo("localhost", receiver.port), 3)  # httpx/anyio's DNS (the LLM SDK)
    assert time.monotonic() - started < 1.0

    # once the name server answers (here: fails) the resolver's threads are free again
    name_server.release()
    for _ in range(50):
        if name_server.hanging == 0:
            break
        await asyncio.sleep(0.05)
    allowed = OutboundGuard(OutboundPolicy(subject="document URL", deadline_s=5.0, allow_private=True), resolver)
    got = await allowed.fetch(f"http://localhost:{receiver.port}/doc", max_body=100)
    assert (got.status, got.body) == (200, b"ok")
