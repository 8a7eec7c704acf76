"""Fixtures: one embedded Postgres (pgvector) per run, migrated once; a live memserver over HTTP; a fresh
project + API key per test, so tests are isolated by tenancy. The machinery is `harness/`, shared with
the benchmarks; `MEMSERVER_TEST_PGDIR` moves the Postgres run directory (default /tmp)."""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from harness.postgres import PostgresRun
from harness.server import LiveServer, served
from harness.tenants import new_tenant
from memserver.embedded_postgres import EmbeddedPostgres
from memserver.storage.db import Database
from tests.api.helpers import async_token_client, token_client


@pytest.fixture(scope="session")
def pg_run() -> Iterator[PostgresRun]:
    base = os.environ.get("MEMSERVER_TEST_PGDIR")
    with PostgresRun(f"memserver-test-{os.getpid()}-", base=Path(base) if base else None, fast=True) as run:
        yield run


@pytest.fixture(scope="session")
def pg(pg_run: PostgresRun) -> EmbeddedPostgres:
    """The run's Postgres server itself (tests that create databases of their own)."""
    return pg_run.pg


@pytest.fixture(scope="session")
def database_url(pg_run: PostgresRun) -> str:
    return pg_run.migrate()


@pytest.fixture(scope="session")
def live(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with served(database_url, tmp_path_factory.mktemp("server") / "memserver.log") as server:
        yield server


@pytest.fixture(scope="session")
def llm_live(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveServer, Any]]:
    """A memserver whose LLM is the scripted fake of tests/fakes/platform_llm.py; yields (server, fake)."""
    from tests.fakes.openai_server import FakeOpenAI, running
    from tests.fakes.platform_llm import platform_script

    with (
        running(FakeOpenAI(chat_script=platform_script)) as fake,
        served(
            database_url,
            tmp_path_factory.mktemp("llm-server") / "memserver.log",
            MEMSERVER_LLM__BASE_URL=fake.url,
            MEMSERVER_LLM__API_KEY="sk-test",
            MEMSERVER_LLM__MODEL="fake-model",
        ) as server,
    ):
        yield server, fake


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
    return tenant_maker(database_url)


def tenant_maker(database_url: str) -> Callable[[], tuple[str, str]]:
    """`make_tenant` for a given database (a folder whose servers use a database of their own overrides it)."""
    counter = iter(range(1_000_000))

    def make() -> tuple[str, str]:
        n = next(counter)

        async def run() -> tuple[str, str]:
            pid, key = await new_tenant(database_url, "test-org", f"project-{os.getpid()}-{n}-{time.time_ns()}")
            return str(pid), key

        return _in_thread(run)  # type: ignore[no-any-return]

    return make


@pytest.fixture(scope="session")
def make_org(database_url: str) -> Callable[..., tuple[str, str, str]]:
    """Create a fresh org with one project and an org-scoped key of its OWNER; returns
    (org_id, project_id, plaintext key). The key may create projects and manage members."""
    return org_maker(database_url)


def org_maker(database_url: str) -> Callable[..., tuple[str, str, str]]:
    """`make_org` for a given database."""
    from memserver.services import admin
    from memserver.storage.repositories.tenants import TenantRepository

    def make(email: str = "owner@example.com") -> tuple[str, str, str]:
        async def run() -> tuple[str, str, str]:
            db = Database(database_url)
            try:
                org = f"org-{os.getpid()}-{time.time_ns()}"
                pid, key = await admin.create_tenant_with_key(db, org, "main", email=email, scope="org")
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
    with token_client(live_server, tenant[1]) as client:
        yield client


@pytest.fixture
async def aapi(live_server: str, tenant: tuple[str, str]) -> AsyncIterator[httpx.AsyncClient]:
    """The `api` client's async twin (same project), for tests that also await the database."""
    async with async_token_client(live_server, tenant[1]) as client:
        yield client


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    """Direct database access, to check what a request did (or did not) write."""
    database = Database(database_url)
    try:
        yield database
    finally:
        await database.dispose()
