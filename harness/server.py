"""A real `memserver serve` process on a free port, started and stopped the same way by tests and benchmarks.

`served(...)` is the usual way in: `with served(database_url, log) as server:` starts it, waits until it is
healthy, and stops it however the block ends. `start_server` / `stop_server` stay for code that restarts a
server on purpose (`tests/worker/test_api_restarts.py`, `bench/speed/stack.py`).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from harness import MODEL_CACHE

HEALTH_TIMEOUT_S = 90


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def server_env(database_url: str, port: int, **extra: str) -> dict[str, str]:
    """This process's environment without any MEMSERVER_* setting, plus a test server's settings and `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEMSERVER_")}
    env.update(
        MEMSERVER_DATABASE_URL=database_url,
        MEMSERVER_PORT=str(port),
        MEMSERVER_BOOTSTRAP="false",
        MEMSERVER_ENV="test",
        MEMSERVER_EMBEDDER__CACHE_DIR=str(MODEL_CACHE),
        MEMSERVER_LOG_LEVEL="warning",
    )
    env.update(extra)
    return env


@dataclass
class LiveServer:
    """A running `memserver serve`: its base URL, process and log file."""

    url: str
    proc: subprocess.Popen[bytes]
    log: Path


def start_server(database_url: str, log: Path, **extra_env: str) -> LiveServer:
    """Start `memserver serve` against `database_url` and wait until /health answers 200."""
    port = free_port()
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "memserver.cli", "serve"],
            env=server_env(database_url, port, **extra_env),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + HEALTH_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"memserver exited early:\n{log.read_text()}")
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                return LiveServer(url, proc, log)
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    proc.kill()
    raise RuntimeError(f"memserver did not become healthy:\n{log.read_text()}")


def stop_server(server: LiveServer) -> None:
    """SIGTERM, then SIGKILL if it has not exited within 15 s; returns once the process is reaped."""
    server.proc.terminate()
    try:
        server.proc.wait(15)
    except subprocess.TimeoutExpired:
        server.proc.kill()
        server.proc.wait()


@contextmanager
def served(database_url: str, log: Path, **extra_env: str) -> Iterator[LiveServer]:
    """A healthy `memserver serve` (see `start_server`) for the block; stopped when it ends, raised or not."""
    server = start_server(database_url, log, **extra_env)
    try:
        yield server
    finally:
        stop_server(server)
