"""`harness.server.served`: the server a block runs against is gone when the block ends, however it ends."""

from __future__ import annotations

import os
from pathlib import Path

import httpx
import pytest

from harness.server import LiveServer, served


def _gone(server: LiveServer) -> None:
    """The process has exited and been reaped, and nothing answers on its port any more."""
    assert server.proc.poll() is not None
    with pytest.raises(ProcessLookupError):
        os.kill(server.proc.pid, 0)
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{server.url}/health", timeout=2)


def _fail_inside(database_url: str, log: Path, seen: list[LiveServer]) -> None:
    """A block that uses a healthy server, then raises (as a failing test or bench does)."""
    with served(database_url, log) as server:
        seen.append(server)
        assert httpx.get(f"{server.url}/health", timeout=5).status_code == 200
        raise RuntimeError("the test failed")


def test_the_server_is_stopped_when_the_block_raises(database_url: str, tmp_path: Path) -> None:
    seen: list[LiveServer] = []
    with pytest.raises(RuntimeError, match="the test failed"):
        _fail_inside(database_url, tmp_path / "memserver.log", seen)
    _gone(seen[0])


def test_the_server_is_stopped_when_the_block_ends(database_url: str, tmp_path: Path) -> None:
    with served(database_url, tmp_path / "memserver.log", MEMSERVER_LOG_LEVEL="info") as server:
        assert httpx.get(f"{server.url}/health", timeout=5).status_code == 200
    _gone(server)
    assert "ready to serve" in server.log.read_text()  # the extra setting reached it (silent at "warning")
