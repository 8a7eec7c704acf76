"""An export is written to a temporary file before it is sent, so a client that reads it slowly holds no
database connection: more slow readers than the pool has connections do not stop another tenant's requests."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from urllib.parse import urlsplit

import httpx
import orjson
import pytest

from harness.server import LiveServer, served
from tests.api.helpers import token_client, verbatim_add_body

POOL = 2  # the server's whole pool: MEMSERVER_DB__POOL_SIZE=2, no overflow
READERS = POOL + 2
MEMORIES = 160
TEXT_CHARS = 40_000  # ~13 MB of export: far more than a socket's buffers hold, so a slow reader stalls the sender


@pytest.fixture(scope="module")
def small_pool_server(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """A server whose pool has POOL connections; its temporary files go to `<log dir>/tmp`."""
    run = tmp_path_factory.mktemp("small-pool")
    (run / "tmp").mkdir()
    with served(
        database_url,
        run / "memserver.log",
        MEMSERVER_DB__POOL_SIZE=str(POOL),
        MEMSERVER_DB__MAX_OVERFLOW="0",
        TMPDIR=str(run / "tmp"),
    ) as server:
        yield server


class SlowReader(threading.Thread):
    """A real HTTP/1.1 client with a 4 kB receive buffer that reads the export 1 kB a second."""

    def __init__(self, url: str, key: str):
        super().__init__(daemon=True)
        parts = urlsplit(url)
        self.address = (parts.hostname or "127.0.0.1", parts.port or 80)
        self.request = (
            f"GET /v1/memserver/export HTTP/1.1\r\nHost: {parts.netloc}\r\nAuthorization: Token {key}\r\n\r\n"
        ).encode()
        self.received = bytearray()
        self.started = threading.Event()  # the status line and the first body bytes arrived
        self.fast = threading.Event()  # read the rest at full speed
        self.done = threading.Event()

    def run(self) -> None:
        with socket.socket() as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            s.connect(self.address)
            s.sendall(self.request)
            while True:
                chunk = s.recv(65536 if self.fast.is_set() else 1024)
                if not chunk:
                    break
                self.received += chunk
                if not self.started.is_set() and self.received.find(b"\r\n\r\n") not in (-1, len(self.received) - 4):
                    self.started.set()
                if self.fast.is_set() and self.received.endswith(b"\r\n0\r\n\r\n"):
                    break  # the last chunk of a chunked body
                if not self.fast.is_set():
                    self.fast.wait(1.0)
        self.done.set()

    def body_lines(self) -> list[dict[str, object]]:
        head, _, body = bytes(self.received).partition(b"\r\n\r\n")
        assert b" 200 " in head.split(b"\r\n", 1)[0], head[:200]
        if b"transfer-encoding: chunked" in head.lower():
            parts, at = [], 0
            while True:
                eol = body.index(b"\r\n", at)
                n = int(body[at:eol], 16)
                if n == 0:
                    break
                parts.append(body[eol + 2 : eol + 2 + n])
                at = eol + 2 + n + 2
            body = b"".join(parts)
        return [orjson.loads(line) for line in body.splitlines() if line.strip()]


def test_slow_export_readers_do_not_starve_other_tenants(
    small_pool_server: LiveServer, make_tenant: Callable[[], tuple[str, str]]
) -> None:
    url = small_pool_server.url
    _, key = make_tenant()
    with token_client(url, key) as api:
        api.timeout = httpx.Timeout(120)
        for start in range(0, MEMORIES, 80):
            texts = [f"Memory {i}: " + f"lorem ipsum {i} " * (TEXT_CHARS // 16) for i in range(start, start + 80)]
            r = api.post("/v3/memories/add/", json=verbatim_add_body(*texts))
            assert r.status_code == 200, r.text[:300]
    tmp = small_pool_server.log.parent / "tmp"
    files_before = set(tmp.iterdir())
    readers = [SlowReader(url, key) for _ in range(READERS)]
    for reader in readers:
        reader.start()
    deadline = time.monotonic() + 60
    for reader in readers:  # (with the export read from the database while it is sent, the readers past the
        reader.started.wait(max(0.0, deadline - time.monotonic()))  # pool size wait for a connection instead)
    time.sleep(2)  # every reader is now stalled on a full socket

    # another tenant, a key never seen before (resolving it needs the database), lists its memories
    _, other = make_tenant()
    with token_client(url, other) as client:
        client.timeout = httpx.Timeout(15)  # the pool's own wait is 30 s: a starved request fails here
        started = time.monotonic()
        assert client.get("/v1/ping/").status_code == 200
        assert client.post("/v3/memories/", json={"filters": {"user_id": "alice"}}).status_code == 200
        assert time.monotonic() - started < 15
    assert all(r.started.is_set() and not r.done.is_set() for r in readers)  # ... while every reader was reading

    for reader in readers:
        reader.fast.set()
    for reader in readers:
        assert reader.done.wait(120)
        lines = reader.body_lines()
        assert lines[0]["record"] == "header"
        assert sum(1 for line in lines if line["record"] == "memory") == MEMORIES
    assert set(tmp.iterdir()) == files_before  # the spooled exports left nothing behind
