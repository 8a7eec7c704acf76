"""Test harness: one embedded Postgres (pgvector) per run, migrated once; a live memserver over HTTP;
a fresh project + API key per test, so tests are isolated by tenancy."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from memserver.config import Settings
from memserver.storage import migrate
from memserver.storage.db import Database
from memserver.storage.embedded import EmbeddedPostgres

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / ".cache"
MODEL_CACHE = CACHE / "models"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def pg(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedPostgres]:
    # A data dir outside /root and pytest's 0700 temp tree, so the unprivileged postgres user can enter it.
    base = Path(os.environ.get("MEMSERVER_TEST_PGDIR", "/tmp")) / f"memserver-test-{os.getpid()}"
    server = EmbeddedPostgres(base, fast=True)
    server.start()
    try:
        yield server
    finally:
        server.stop()
        subprocess.run(["rm", "-rf", str(base)], check=False)


@pytest.fixture(scope="session")
def database_url(pg: EmbeddedPostgres) -> str:
    url = pg.url()
    migrate.upgrade(url, 384)
    return url


@pytest.fixture(scope="session")
def settings(database_url: str) -> Settings:
    return Settings(
        env="test",
        database_url=SecretStr(database_url),
        bootstrap=False,
        embedder={"cache_dir": MODEL_CACHE},  # type: ignore[arg-type]
    )


def server_env(database_url: str, port: int, **extra: str) -> dict[str, str]:
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


class LiveServer:
    def __init__(self, url: str, proc: subprocess.Popen[bytes], log: Path):
        self.url = url
        self.proc = proc
        self.log = log


def start_server(database_url: str, log: Path, **extra_env: str) -> LiveServer:
    port = free_port()
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "memserver.cli", "serve"],
            env=server_env(database_url, port, **extra_env),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
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
    server.proc.terminate()
    try:
        server.proc.wait(15)
    except subprocess.TimeoutExpired:
        server.proc.kill()


@pytest.fixture(scope="session")
def live(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    server = start_server(database_url, tmp_path_factory.mktemp("server") / "memserver.log")
    try:
        yield server
    finally:
        stop_server(server)


@pytest.fixture(scope="session")
def llm_live(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveServer, Any]]:
    """A memserver whose LLM is the scripted fake of tests/fakes/platform_llm.py; yields (server, fake)."""
    from tests.fakes.openai_server import FakeOpenAI, running
    from tests.fakes.platform_llm import platform_script

    with running(FakeOpenAI(chat_script=platform_script)) as fake:
        server = start_server(
            database_url,
            tmp_path_factory.mktemp("llm-server") / "memserver.log",
            MEMSERVER_LLM__BASE_URL=fake.url,
            MEMSERVER_LLM__API_KEY="sk-test",
            MEMSERVER_LLM__MODEL="fake-model",
        )
        try:
            yield server, fake
        finally:
            stop_server(server)


@pytest.fixture(scope="session")
def live_server(live: LiveServer) -> str:
    """Base URL of a running memserver (a real `memserver serve` process)."""
    return live.url


def _in_thread(coro_fn: Callable[[], Any]) -> Any:
    """Run a coroutine to completion from sync or async test code alike."""
    result: dict[str, Any] = {}

    def target() -> None:
        try:
            result["value"] = asyncio.run(coro_fn())
        except BaseException as exc:
            result["error"] = exc

    t = threading.Thread(target=target)
    t.start()
    t.join()
    if "error" in result:
        raise result["error"]
    return result["value"]


@pytest.fixture(scope="session")
def make_tenant(database_url: str) -> Callable[[], tuple[str, str]]:
    """Create a fresh org + project + key; returns (project_id, plaintext key)."""
    from memserver.services import tenants

    counter = iter(range(1_000_000))

    def make() -> tuple[str, str]:
        n = next(counter)

        async def run() -> tuple[str, str]:
            db = Database(database_url)
            try:
                pid, key = await tenants.create_tenant_with_key(
                    db, "test-org", f"project-{os.getpid()}-{n}-{time.time_ns()}"
                )
                return str(pid), key
            finally:
                await db.dispose()

        return _in_thread(run)  # type: ignore[no-any-return]

    return make


@pytest.fixture(scope="session")
def make_org(database_url: str) -> Callable[..., tuple[str, str, str]]:
    """Create a fresh org with one project and an org-scoped key of its OWNER; returns
    (org_id, project_id, plaintext key). The key may create projects and manage members."""
    from memserver.services import tenants
    from memserver.storage.repositories.tenants import TenantRepository

    def make(email: str = "owner@example.com") -> tuple[str, str, str]:
        async def run() -> tuple[str, str, str]:
            db = Database(database_url)
            try:
                org = f"org-{os.getpid()}-{time.time_ns()}"
                pid, key = await tenants.create_tenant_with_key(db, org, "main", email=email, scope="org")
                async with db.connect() as conn:
                    org_id = await TenantRepository(conn).get_org_id(org)
                return str(org_id), str(pid), key
            finally:
                await db.dispose()

        return _in_thread(run)  # type: ignore[no-any-return]

    return make


@pytest.fixture
def new_api_key(make_tenant: Callable[[], tuple[str, str]]) -> Callable[[], str]:
    """A callable returning the plaintext key of a fresh, empty project."""
    return lambda: make_tenant()[1]


@pytest.fixture
def tenant(make_tenant: Callable[[], tuple[str, str]]) -> tuple[str, str]:
    return make_tenant()


@pytest.fixture
def api(live_server: str, tenant: tuple[str, str]) -> Iterator[httpx.Client]:
    """A raw HTTP client (curl-equivalent) authenticated for a fresh project."""
    with httpx.Client(
        base_url=live_server,
        headers={"Authorization": f"Token {tenant[1]}"},
        timeout=30,
        follow_redirects=False,
    ) as client:
        yield client


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    """Direct database access, to check what a request did (or did not) write."""
    database = Database(database_url)
    try:
        yield database
    finally:
        await database.dispose()
