"""Real HTTP servers on loopback addresses that misbehave on purpose, and resolvers that lie.

A `HostileServer` listens on a real socket (127.0.0.1, or 127.0.0.2 to play a second host) and answers each
request path with a behaviour: a plain answer, a redirect, silence (accepts and never answers), a drip (one
byte at a time, forever) or a flood (more bytes than any client should read). It records every request
(method, path, headers, body) and the bytes it managed to send, so a test sees what the client really did.

The resolvers implement memserver's resolver port (`memserver.providers.net.Resolver`): a fixed map, and a
rebinding one whose later answers differ from its first (DNS rebinding).
"""

from __future__ import annotations

import contextlib
import ipaddress
import socket
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

Address = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    at: float = field(default_factory=time.time)


Behaviour = Callable[[socket.socket, "HostileServer"], None]


def answer(status: int = 200, body: bytes = b"", headers: dict[str, str] | None = None) -> Behaviour:
    def run(conn: socket.socket, server: HostileServer) -> None:
        head = {"Content-Length": str(len(body)), "Connection": "close", **(headers or {})}
        server.send(conn, _head(status, head) + body)

    return run


def redirect(location: str, status: int = 302) -> Behaviour:
    return answer(status, b"", {"Location": location})


def silent() -> Behaviour:
    """Accept, read the request, and never answer (until the server closes)."""

    def run(conn: socket.socket, server: HostileServer) -> None:
        server.stopped.wait()

    return run


def drip(interval_s: float = 0.1, declared: int = 10_000_000) -> Behaviour:
    """A 200 whose body arrives one byte every `interval_s`: each read gets data well within any read timeout."""

    def run(conn: socket.socket, server: HostileServer) -> None:
        if not server.send(conn, _head(200, {"Content-Length": str(declared)})):
            return
        while not server.stopped.wait(interval_s):
            if not server.send(conn, b"x"):
                return

    return run


def flood(total: int, headers: dict[str, str] | None = None, chunk: bytes = b"x" * 65536) -> Behaviour:
    """A 200 announcing and sending `total` bytes as fast as the client takes them."""

    def run(conn: socket.socket, server: HostileServer) -> None:
        if not server.send(conn, _head(200, {"Content-Length": str(total), **(headers or {})})):
            return
        left = total
        while left > 0 and not server.stopped.is_set():
            piece = chunk[: min(left, len(chunk))]
            if not server.send(conn, piece):
                return
            left -= len(piece)

    return run


def _head(status: int, headers: dict[str, str]) -> bytes:
    lines = [f"HTTP/1.1 {status} X"] + [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


class HostileServer:
    """A threaded HTTP/1.1 server on a real socket; `routes` maps a request path to its behaviour."""

    def __init__(self, routes: dict[str, Behaviour] | Behaviour, host: str = "127.0.0.1", port: int = 0):
        self.routes = routes
        self.requests: list[Seen] = []
        self.sent = 0  # response bytes the clients accepted
        self.stopped = threading.Event()
        self._lock = threading.Lock()
        self._sock = socket.create_server((host, port))
        self._sock.settimeout(0.2)
        self.host, self.port = host, int(self._sock.getsockname()[1])
        self._conns: list[socket.socket] = []
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    @property
    def base(self) -> str:
        return f"http://{self.host}:{self.port}"

    def url(self, path: str = "/") -> str:
        return self.base + path

    def send(self, conn: socket.socket, data: bytes) -> bool:
        try:
            conn.sendall(data)
        except OSError:
            return False
        with self._lock:
            self.sent += len(data)
        return True

    def _serve(self) -> None:
        while not self.stopped.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with self._lock:
                self._conns.append(conn)
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn: socket.socket) -> None:
        with contextlib.closing(conn):
            seen = _read_request(conn)
            if seen is None:
                return
            with self._lock:
                self.requests.append(seen)
            routes = self.routes
            behaviour = routes.get(seen.path, answer(404)) if isinstance(routes, dict) else routes
            behaviour(conn, self)

    def close(self) -> None:
        self.stopped.set()
        self._sock.close()
        with self._lock:
            for conn in self._conns:
                with contextlib.suppress(OSError):
                    conn.shutdown(socket.SHUT_RDWR)
        self._thread.join(5)


def _read_request(conn: socket.socket) -> Seen | None:
    conn.settimeout(10)
    data = b""
    try:
        while b"\r\n\r\n" not in data:
            chunk = conn.recv(65536)
            if not chunk:
                return None
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        method, path, _ = lines[0].split(" ", 2)
        headers = {k.strip().lower(): v.strip() for k, v in (x.split(":", 1) for x in lines[1:] if ":" in x)}
        want = int(headers.get("content-length", "0"))
        while len(body) < want:
            chunk = conn.recv(65536)
            if not chunk:
                break
            body += chunk
    except (OSError, ValueError):
        return None
    return Seen(method, path, headers, body)


@contextlib.contextmanager
def serving(
    routes: dict[str, Behaviour] | Behaviour, host: str = "127.0.0.1", port: int = 0
) -> Iterator[HostileServer]:
    server = HostileServer(routes, host, port)
    try:
        yield server
    finally:
        server.close()


class MapResolver:
    """Answers from a fixed map (a name resolving to a private address); records each question."""

    def __init__(self, answers: dict[str, Sequence[str]]):
        self.answers = answers
        self.calls: list[str] = []

    async def resolve(self, host: str, port: int) -> list[Address]:
        self.calls.append(host)
        if host not in self.answers:
            raise OSError(f"no such host {host}")
        return [ipaddress.ip_address(a) for a in self.answers[host]]


class RebindingResolver:
    """DNS rebinding: the first question about a name gets `first`, every later one gets `then`."""

    def __init__(self, first: Sequence[str], then: Sequence[str]):
        self.first, self.then = first, then
        self.calls: list[str] = []

    async def resolve(self, host: str, port: int) -> list[Address]:
        self.calls.append(host)
        answer = self.first if len(self.calls) == 1 else self.then
        return [ipaddress.ip_address(a) for a in answer]
