"""Asynchronous events end to end: a real Redis, a real Celery worker (`memserver worker`), and the
in-process runner, with the scripted OpenAI-compatible model as the LLM (echo extractor: each user
message becomes a fact). An accepted async add is never silently dropped: it runs to SUCCEEDED,
including when its queue message was lost."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text

from harness.server import LiveServer, free_port, served, server_env
from memserver.embedded_postgres import EmbeddedPostgres
from memserver.storage.db import Database
from tests.api.helpers import token_client
from tests.fakes.openai_server import FakeOpenAI, running
from tests.worker.jobs_harness import fresh_database, make_tenant


@pytest.fixture(scope="module")
def llm_env() -> Iterator[dict[str, str]]:
    with running(FakeOpenAI(echo=True)) as fake:
        yield {"MEMSERVER_LLM__BASE_URL": fake.url, "MEMSERVER_LLM__API_KEY": "test"}


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    exe = shutil.which("redis-server")
    assert exe, "redis-server is required (make test installs it)"
    port = free_port()
    workdir = tmp_path_factory.mktemp("redis")
    proc = subprocess.Popen(
        [
            exe,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(workdir),
        ],
        stdout=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if (
            subprocess.run(["redis-cli", "-p", str(port), "ping"], capture_output=True, text=True).stdout.strip()
            == "PONG"
        ):
            break
        time.sleep(0.05)
    yield f"redis://127.0.0.1:{port}/0"
    proc.terminate()
    proc.wait(10)


@pytest.fixture(scope="module")
def celery_db(pg: EmbeddedPostgres) -> str:
    """A database of its own: the in-process runners of the session's other servers (one has no LLM) sweep
    the shared database and would run this module's queued jobs themselves."""
    return fresh_database(pg, "celery_events")


@pytest.fixture(scope="module")
def celery_api(
    celery_db: str, redis_url: str, llm_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    log = tmp_path_factory.mktemp("celery-api") / "api.log"
    with served(celery_db, log, MEMSERVER_WORKER__RUNNER="celery", MEMSERVER_REDIS__URL=redis_url, **llm_env) as server:
        yield server


def start_worker(database_url: str, redis_url: str, log: Path, llm_env: dict[str, str]) -> subprocess.Popen[bytes]:
    env = server_env(database_url, 0, MEMSERVER_WORKER__RUNNER="celery", MEMSERVER_REDIS__URL=redis_url, **llm_env)
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "memserver.cli", "worker", "--concurrency", "1"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def event(client: httpx.Client, event_id: str) -> dict[str, object]:
    r = client.get(f"/v1/event/{event_id}/")
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


def wait_status(client: httpx.Client, event_id: str, timeout: float = 30) -> dict[str, object]:
    deadline = time.monotonic() + timeout
    while True:
        ev = event(client, event_id)
        if ev["status"] not in ("PENDING", "RUNNING") or time.monotonic() > deadline:
            return ev
        time.sleep(0.1)


async def insert_pending(db: Database, project_id: str) -> str:
    """An accepted event whose queue message was lost (e.g. the broker restarted)."""
    event_id = str(uuid.uuid4())
    async with db.connect() as conn:
        await conn.execute(
            text(
                "INSERT INTO events (id, project_id, event_type, status, payload) VALUES "
                "(:id, :p, 'ADD', 'PENDING', CAST(:payload AS jsonb))"
            ),
            {
                "id": event_id,
                "p": project_id,
                "payload": '{"messages": [{"role": "user", "content": "hi"}], "user_id": "u"}',
            },
        )
    return event_id


async def test_celery_worker_runs_accepted_adds_and_recovers_lost_ones(
    celery_api: LiveServer, celery_db: str, redis_url: str, llm_env: dict[str, str], tmp_path: Path
) -> None:
    tenant = make_tenant(celery_db)
    db = Database(celery_db)
    with token_client(celery_api.url, tenant[1]) as client:
        r = client.post(
            "/v3/memories/add/",
            json={"messages": [{"role": "user", "content": "I like tea"}], "user_id": "u"},
        )
        assert r.status_code == 200, r.text
        assert r.json()["status"] == "PENDING"
        queued = r.json()["event_id"]
        lost = await insert_pending(db, tenant[0])
        await asyncio.sleep(1.0)
        # With the Celery runner the API process does not run events itself.
        assert event(client, queued)["status"] == "PENDING"

        worker = start_worker(celery_db, redis_url, tmp_path / "worker.log", llm_env)
        try:
            for event_id in (queued, lost):
                ev = wait_status(client, event_id, timeout=60)
                assert ev["status"] == "SUCCEEDED", (ev, (tmp_path / "worker.log").read_text())
                assert [r["event"] for r in ev["results"]] == ["ADD"]  # type: ignore[union-attr]
                assert ev["completed_at"] is not None
            found = client.post("/v3/memories/search/", json={"query": "tea", "filters": {"user_id": "u"}})
            assert [h["memory"] for h in found.json()["results"]][:1] == ["I like tea"]
        finally:
            worker.terminate()
            worker.wait(20)
        try:
            async with db.connect() as conn:
                attempts = (
                    await conn.execute(text("SELECT attempts FROM events WHERE id = :id"), {"id": queued})
                ).scalar_one()
        finally:
            await db.dispose()
        assert attempts == 1  # run exactly once


async def test_in_process_runner_recovers_events_left_pending(
    pg: EmbeddedPostgres, llm_env: dict[str, str], tmp_path: Path
) -> None:
    # A database of its own: the Celery-mode API above also sweeps, and would hand this job to Redis.
    url = fresh_database(pg, "inproc")
    tenant = make_tenant(url)
    jdb = Database(url)
    try:
        lost = await insert_pending(jdb, tenant[0])
    finally:
        await jdb.dispose()
    with (
        served(url, tmp_path / "api.log", **llm_env) as server,  # the runner's sweep finds it
        token_client(server.url, tenant[1]) as client,
    ):
        ev = wait_status(client, lost)
        assert ev["status"] == "SUCCEEDED", ev
        memories = client.post("/v3/memories/", json={"filters": {"user_id": "u"}}).json()["results"]
        assert [m["memory"] for m in memories] == ["hi"]
