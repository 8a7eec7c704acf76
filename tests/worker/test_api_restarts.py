"""Two API processes with the in-process runner, restarted while their jobs run, on a database of
their own: no job is reset under a live sibling's claim, none is lost, none is applied twice.

Before leases, every process start reset all RUNNING jobs to PENDING, so a restarting process ran its
siblings' jobs a second time. The jobs are verbatim adds run as jobs (see test_celery_jobs.py); the
embedder is the fake OpenAI-compatible server, slow for the first requests so jobs are mid-run. Leases
are 120 s: every job is done well before any could expire, so each stopping process must have given its
jobs back (the inference job's takeover and hand-back: test_takeover.py)."""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path

from sqlalchemy import text

from harness.server import start_server, stop_server
from memserver.embedded_postgres import EmbeddedPostgres
from memserver.storage.db import Database
from tests.fakes.openai_server import FakeOpenAI, running
from tests.worker import jobs_harness as h


async def _rows(url: str, ids: list[uuid.UUID]) -> list[tuple[str, int, list[str], int, str | None]]:
    """(status, attempts, result events, history rows, pid of the process holding it) per job."""
    db = Database(url)
    try:
        out = []
        async with db.connect() as conn:
            for i in ids:
                row = await h.event_row(db, i)
                q = "SELECT count(*) FROM memory_history WHERE event_id = :e"
                hist = int((await conn.execute(text(q), {"e": i})).scalar_one())
                holder = row.lease_owner.split(":")[1] if row.lease_owner else None  # owner: host:pid:random
                out.append((row.status, row.attempts, [r["event"] for r in row.results or []], hist, holder))
        return out
    finally:
        await db.dispose()


def test_restarting_api_processes_double_nothing(pg: EmbeddedPostgres, tmp_path: Path) -> None:
    url = h.fresh_database(pg, "restarts")
    project, _ = h.make_tenant(url)
    with running(FakeOpenAI(hang_s=1.5)) as fake:
        env = {
            "MEMSERVER_EMBEDDER__PROVIDER": "openai",
            "MEMSERVER_EMBEDDER__BASE_URL": fake.url,
            "MEMSERVER_EMBEDDER__API_KEY": "sk-test",
            "MEMSERVER_EMBEDDER__CACHE_SIZE": "0",
            # Far longer than the test waits: a stopping process must give its jobs back, not let them expire.
            "MEMSERVER_WORKER__LEASE_S": "120",
            "MEMSERVER_WORKER__HEARTBEAT_S": "0.5",
            "MEMSERVER_WORKER__POLL_INTERVAL_S": "0.3",
            "MEMSERVER_WORKER__INPROCESS_CONCURRENCY": "2",
        }
        servers = [start_server(url, tmp_path / f"api{i}.log", **env) for i in range(2)]
        try:
            fake.hang_next = 12  # the first embedding calls take 1.5 s each
            payloads = [h.verbatim_payload(f"user-{i}", f"a {i}", f"b {i}") for i in range(8)]
            ids = h.run_async_harness(lambda: h.insert_many(url, project, payloads))
            for _ in range(3):  # three times, stop the process that is running a job, and start it again
                deadline = time.monotonic() + 30
                while True:
                    rows = asyncio.run(_rows(url, ids))
                    holders = {r[4] for r in rows if r[0] == "RUNNING"}
                    pids = [str(s.proc.pid) for s in servers]
                    if holders & set(pids) or all(r[0] == "SUCCEEDED" for r in rows):
                        break
                    assert time.monotonic() < deadline, rows
                    time.sleep(0.05)
                if all(r[0] == "SUCCEEDED" for r in rows):
                    break
                i = next(n for n, pid in enumerate(pids) if pid in holders)
                stop_server(servers[i])
                servers[i] = start_server(url, tmp_path / f"api{i}.log", **env)
            deadline = time.monotonic() + 60
            while True:
                rows = asyncio.run(_rows(url, ids))
                if all(r[0] in ("SUCCEEDED", "FAILED") for r in rows) or time.monotonic() > deadline:
                    break
                time.sleep(0.3)
        finally:
            for s in servers:
                stop_server(s)
    assert [r[0] for r in rows] == ["SUCCEEDED"] * 8, rows
    # A second application would report NOOP (the texts already stored) and write no ADD history.
    assert all(r[2] == ["ADD", "ADD"] for r in rows), rows
    assert all(r[3] == 2 for r in rows), rows
    assert any(r[1] > 1 for r in rows), rows  # the restarts did catch jobs mid-run
