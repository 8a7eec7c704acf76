"""Helpers for the job tests: a database of their own (so the sweeps of other tests' servers never take
their jobs), tenants in it, a Redis on a free port, and Celery workers as real processes."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import text

from harness.server import free_port, server_env
from memserver.domain.jobs import JobKind
from memserver.embedded_postgres import EmbeddedPostgres
from memserver.services import admin
from memserver.storage import migrate
from memserver.storage.db import Database
from memserver.storage.repositories.jobs import JobRepository


def fresh_database(pg: EmbeddedPostgres, name: str) -> str:
    """A new, migrated database in the test Postgres; returns its URL."""
    db = f"{name}_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    res = pg._psql(f'CREATE DATABASE "{db}"')
    assert res.returncode == 0, res.stderr
    url = pg.url(db)
    # alembic runs its own event loop: from a thread, so async tests can call this too
    with ThreadPoolExecutor(1) as pool:
        pool.submit(migrate.upgrade, url, 384).result()
    return url


def make_tenant(url: str) -> tuple[str, str]:
    async def run() -> tuple[str, str]:
        db = Database(url)
        try:
            pid, key = await admin.create_tenant_with_key(db, "jobs-org", f"p-{uuid.uuid4().hex[:10]}")
            return str(pid), key
        finally:
            await db.dispose()

    return asyncio.run(run()) if not _loop_running() else _threaded(run)


def _loop_running() -> bool:
    try:
        asyncio.get_running_loop()
        return True
    except RuntimeError:
        return False


def _threaded(fn: Any) -> Any:
    from tests.conftest import _in_thread

    return _in_thread(fn)


async def insert_job(
    db: Database, project_id: str | uuid.UUID, payload: dict[str, Any], *, dispatched: bool
) -> uuid.UUID:
    """An accepted ADD job, as `jobs.submit` writes it (dispatched=False: left to the sweep)."""
    job_id = uuid.uuid4()
    async with db.connect() as conn:
        await JobRepository(conn).insert_pending(
            uuid.UUID(str(project_id)), job_id, JobKind.ADD, payload, dispatched=dispatched
        )
    return job_id


async def event_row(db: Database, job_id: uuid.UUID | str) -> Any:
    async with db.connect() as conn:
        return (await conn.execute(text("SELECT * FROM events WHERE id = :id"), {"id": str(job_id)})).one()


async def memory_count(db: Database, project_id: str, *, event_id: uuid.UUID | str | None = None) -> int:
    sql = "SELECT count(*) FROM memories WHERE project_id = :p"
    params: dict[str, Any] = {"p": project_id}
    if event_id is not None:
        sql += " AND event_id = :e"
        params["e"] = str(event_id)
    async with db.connect() as conn:
        return int((await conn.execute(text(sql), params)).scalar_one())


def verbatim_payload(user_id: str, *texts: str) -> dict[str, Any]:
    return orjson.loads(
        orjson.dumps({"messages": [{"role": "user", "content": t} for t in texts], "user_id": user_id, "infer": False})
    )


# ----------------------------------------------------------------------------------------------
# processes
# ----------------------------------------------------------------------------------------------
class Redis:
    def __init__(self, workdir: Path):
        self.exe = shutil.which("redis-server")
        assert self.exe, "redis-server is required (make test installs it)"
        self.port = free_port()
        self.workdir = workdir
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        assert self.exe
        self.proc = subprocess.Popen(
            [
                self.exe,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.workdir),
            ],
            stdout=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            r = subprocess.run(["redis-cli", "-p", str(self.port), "ping"], capture_output=True, text=True)
            if r.stdout.strip() == "PONG":
                return
            time.sleep(0.05)
        raise RuntimeError("redis did not start")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(10)
            self.proc = None


def start_worker(
    database_url: str, redis_url: str, log: Path, *, concurrency: int = 1, **extra: str
) -> subprocess.Popen[bytes]:
    """`memserver worker` (Celery, prefork, `concurrency` children) in its own process group (SIGKILL takes all
    of it)."""
    env = server_env(database_url, 0, MEMSERVER_WORKER__RUNNER="celery", MEMSERVER_REDIS__URL=redis_url, **extra)
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "memserver.cli", "worker", "--concurrency", str(concurrency)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def kill_group(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(10)


def stop_worker(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(20)
    except subprocess.TimeoutExpired:
        kill_group(proc)
    except ProcessLookupError:
        pass


async def insert_many(url: str, project: str, payloads: list[dict[str, Any]]) -> list[uuid.UUID]:
    """Accepted ADD jobs left to the runners' sweeps (as after a failed hand-off)."""
    db = Database(url)
    try:
        return [await insert_job(db, project, p, dispatched=False) for p in payloads]
    finally:
        await db.dispose()


def run_async_harness(fn: Any) -> Any:
    return asyncio.run(fn())
