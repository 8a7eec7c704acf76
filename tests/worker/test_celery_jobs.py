"""Jobs across real processes: a real Redis, real Celery workers (`memserver worker`) and real API
processes, on a database of their own. The embedder is the fake OpenAI-compatible server, which can be
made slow, so a job is still running when a worker is killed or an API process restarts.

The same fake plays the LLM (echo extractor: each user message becomes one fact), so an infer=true add
runs the whole pipeline on a worker; the worker killed mid-job is running one. Some jobs here are ADD jobs
whose payload says infer=false (the verbatim add run as a job, inserted as `jobs.submit` writes them).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from harness.server import LiveServer, served
from memserver.embedded_postgres import EmbeddedPostgres
from memserver.storage.db import Database
from tests.fakes.openai_server import FakeOpenAI, running
from tests.worker import jobs_harness as h
from tests.worker.test_webhooks import envs

LEASE = {
    "MEMSERVER_WORKER__LEASE_S": "2",
    "MEMSERVER_WORKER__HEARTBEAT_S": "0.5",
    "MEMSERVER_WORKER__POLL_INTERVAL_S": "0.5",
}


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeOpenAI]:
    with running(FakeOpenAI(hang_s=6.0, echo=True)) as f:
        yield f


@pytest.fixture(scope="module")
def stack_env(fake: FakeOpenAI) -> dict[str, str]:
    return {
        **LEASE,
        "MEMSERVER_EMBEDDER__PROVIDER": "openai",
        "MEMSERVER_EMBEDDER__BASE_URL": fake.url,
        "MEMSERVER_EMBEDDER__API_KEY": "sk-test",
        "MEMSERVER_EMBEDDER__TIMEOUT_S": "60",
        "MEMSERVER_EMBEDDER__CACHE_SIZE": "0",
        "MEMSERVER_LLM__BASE_URL": fake.url,
    }


@pytest.fixture(scope="module")
def cdb_url(pg: EmbeddedPostgres) -> str:
    return h.fresh_database(pg, "celery")


@pytest.fixture(scope="module")
def redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[h.Redis]:
    r = h.Redis(tmp_path_factory.mktemp("redis"))
    r.start()
    yield r
    r.stop()


@pytest.fixture(scope="module")
def celery_api(
    cdb_url: str, redis: h.Redis, stack_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    with served(
        cdb_url,
        tmp_path_factory.mktemp("capi") / "api.log",
        MEMSERVER_WORKER__RUNNER="celery",
        MEMSERVER_REDIS__URL=redis.url,
        MEMSERVER_WORKER__MAX_PENDING_PER_PROJECT="3",
        **stack_env,
    ) as server:
        yield server


def worker(cdb_url: str, redis: h.Redis, stack_env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    return h.start_worker(cdb_url, redis.url, log, **stack_env)


def wait_rows(
    db_url: str, ids: list[uuid.UUID], *, timeout: float = 60, done: tuple[str, ...] = ("SUCCEEDED", "FAILED")
) -> list[Any]:
    async def fetch() -> list[Any]:
        db = Database(db_url)
        try:
            return [await h.event_row(db, i) for i in ids]
        finally:
            await db.dispose()

    deadline = time.monotonic() + timeout
    while True:
        rows = asyncio.run(fetch())
        if all(r.status in done for r in rows) or time.monotonic() > deadline:
            return rows
        time.sleep(0.2)


def run_async(fn: Any) -> Any:
    return asyncio.run(fn())


def insert_jobs(
    db_url: str, project: str, payloads: list[dict[str, Any]], *, dispatched: bool = False
) -> list[uuid.UUID]:
    async def go() -> list[uuid.UUID]:
        db = Database(db_url)
        try:
            return [await h.insert_job(db, project, p, dispatched=dispatched) for p in payloads]
        finally:
            await db.dispose()

    return run_async(go)  # type: ignore[no-any-return]


def history_adds(db_url: str, event_id: uuid.UUID) -> int:
    async def go() -> int:
        db = Database(db_url)
        try:
            async with db.connect() as conn:
                q = "SELECT count(*) FROM memory_history WHERE event_id = :e AND event = 'ADD'"
                return int((await conn.execute(text(q), {"e": event_id})).scalar_one())
        finally:
            await db.dispose()

    return run_async(go)  # type: ignore[no-any-return]


def log_of(path: Path) -> str:
    return path.read_text(errors="replace")[-4000:] if path.exists() else ""


SDK_SCRIPT = """
import json, os, sys
from mem0 import MemoryClient
c = MemoryClient(api_key=os.environ["MEMSERVER_KEY"], host=os.environ["MEMSERVER_URL"])
user, action = sys.argv[1], sys.argv[2]
if action == "add":
    out = c.add([{"role": "user", "content": "I am allergic to peanuts"}], user_id=user)
else:
    out = c.search("peanut allergy", filters={"user_id": user})
print("RESULT " + json.dumps(out))
"""


def sdk(base_url: str, key: str, tmp_path: Path, *args: str) -> Any:
    python = envs.python_sdk(envs.PYTHON_SDK_VERSIONS["current"])
    script = tmp_path / "sdk_jobs.py"
    script.write_text(SDK_SCRIPT)
    proc = subprocess.run(
        [str(python), str(script), *args],
        env=envs.scenario_env(base_url, key, tmp_path / "mem0-home"),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return json.loads(next(x for x in proc.stdout.splitlines() if x.startswith("RESULT "))[7:])


def test_an_sdk_add_runs_on_a_celery_worker_and_an_accepted_add_becomes_searchable(
    celery_api: LiveServer, cdb_url: str, redis: h.Redis, stack_env: dict[str, str], tmp_path: Path
) -> None:
    project, key = h.make_tenant(cdb_url)
    w = worker(cdb_url, redis, stack_env, tmp_path / "worker.log")
    try:
        accepted = sdk(celery_api.url, key, tmp_path, "sdk-user", "add")
        assert accepted["status"] == "PENDING", accepted
        (row,) = wait_rows(cdb_url, [uuid.UUID(accepted["event_id"])])
        assert row.attempts == 1, log_of(tmp_path / "worker.log")
        assert row.status == "SUCCEEDED", (row.error, log_of(tmp_path / "worker.log"))
        extracted = sdk(celery_api.url, key, tmp_path, "sdk-user", "search")
        extracted = extracted["results"] if isinstance(extracted, dict) else extracted
        # the memory extracted on the worker is searchable through the SDK
        assert [x["memory"] for x in extracted][:1] == ["I am allergic to peanuts"]
        # An accepted verbatim add, run by the worker, is SUCCEEDED and searchable through the SDK.
        (job,) = insert_jobs(cdb_url, project, [h.verbatim_payload("sdk-user", "I am allergic to peanuts")])
        (row,) = wait_rows(cdb_url, [job])
        assert row.status == "SUCCEEDED", (row.error, log_of(tmp_path / "worker.log"))
        hits = sdk(celery_api.url, key, tmp_path, "sdk-user", "search")
        hits = hits["results"] if isinstance(hits, dict) else hits
        assert [x["memory"] for x in hits][:1] == ["I am allergic to peanuts"]
    finally:
        h.stop_worker(w)


def test_a_worker_killed_mid_job_leaves_it_to_another_worker(
    celery_api: LiveServer, cdb_url: str, redis: h.Redis, stack_env: dict[str, str], fake: FakeOpenAI, tmp_path: Path
) -> None:
    project, key = h.make_tenant(cdb_url)
    feed = httpx.Client(base_url=celery_api.url, headers={"Authorization": f"Token {key}"}, timeout=30)
    w1 = worker(cdb_url, redis, stack_env, tmp_path / "w1.log")
    try:
        time.sleep(4)  # w1 ready
        fake.hang_next = 1  # the job's first call (to the model) takes 6 s: w1 is mid-job when it dies
        texts = [f"fact {i} {uuid.uuid4().hex[:6]}" for i in range(3)]
        # the real inference job (infer=true, as an SDK sends it): extraction, embeddings, reconciliation
        accepted = feed.post(
            "/v3/memories/add/", json={"messages": [{"role": "user", "content": t} for t in texts], "user_id": "killed"}
        )
        assert accepted.status_code == 200, accepted.text
        job = uuid.UUID(accepted.json()["event_id"])
        (row,) = wait_rows(cdb_url, [job], done=("RUNNING", "SUCCEEDED", "FAILED"), timeout=30)
        assert row.status == "RUNNING", log_of(tmp_path / "w1.log")
        ev = feed.get(f"/v1/event/{job}/").json()  # the events feed shows it running
        assert (ev["status"], ev["completed_at"], ev["error"]) == ("RUNNING", None, None)
        assert ev["started_at"] is not None
        time.sleep(0.5)  # inside the slow model call
        h.kill_group(w1)  # SIGKILL: no cleanup, the claim stays RUNNING under w1's lease
    finally:
        h.kill_group(w1)
    w2 = worker(cdb_url, redis, stack_env, tmp_path / "w2.log")
    try:
        (row,) = wait_rows(cdb_url, [job], timeout=60)
        assert row.status == "SUCCEEDED", (row.error, log_of(tmp_path / "w2.log"))
        assert row.attempts == 2  # w1's claim, then w2's after the lease expired
        assert [r["event"] for r in row.results] == ["ADD", "ADD", "ADD"]
        assert run_async(lambda: _count(cdb_url, project, job)) == 3  # nothing lost, nothing twice
        assert history_adds(cdb_url, job) == 3
        ev = feed.get(f"/v1/event/{job}/").json()
        assert ev["status"] == "SUCCEEDED"
        assert ev["error"] is None
        assert isinstance(ev["latency"], float)
        assert ev["latency"] > 2000  # accepted, run, abandoned, taken over after the lease: all counted
        assert [(r["event"], r["data"]["memory"]) for r in ev["results"]] == [("ADD", t) for t in texts]
        assert ev["id"] in [e["id"] for e in feed.get("/v1/events/").json()["results"]]
    finally:
        h.stop_worker(w2)
        feed.close()


def test_a_worker_stopped_with_sigterm_finishes_the_job_it_runs(
    celery_api: LiveServer, cdb_url: str, redis: h.Redis, stack_env: dict[str, str], fake: FakeOpenAI, tmp_path: Path
) -> None:
    """A Celery worker stops warm (what `docker stop` and Kubernetes send its main process): the job it is
    running completes on it, once, before it exits; nothing is left to a lease expiry."""
    project, key = h.make_tenant(cdb_url)
    w = worker(cdb_url, redis, stack_env, tmp_path / "w.log")
    try:
        time.sleep(4)  # ready
        fake.hang_next = 1  # the model's answer takes 6 s
        with httpx.Client(base_url=celery_api.url, headers={"Authorization": f"Token {key}"}, timeout=30) as api:
            r = api.post("/v3/memories/add/", json={"messages": [{"role": "user", "content": "warm"}], "user_id": "w"})
        assert r.status_code == 200, r.text
        job = uuid.UUID(r.json()["event_id"])
        (row,) = wait_rows(cdb_url, [job], done=("RUNNING", "SUCCEEDED", "FAILED"), timeout=30)
        assert row.status == "RUNNING", log_of(tmp_path / "w.log")
        os.kill(w.pid, signal.SIGTERM)  # the main process only, as an orchestrator does
        w.wait(30)
        (row,) = wait_rows(cdb_url, [job], timeout=0)
        assert (row.status, row.attempts) == ("SUCCEEDED", 1), (row.status, row.error, log_of(tmp_path / "w.log"))
        assert run_async(lambda: _count(cdb_url, project, job)) == 1
    finally:
        h.kill_group(w)


async def _count(db_url: str, project: str, job: uuid.UUID) -> int:
    db = Database(db_url)
    try:
        return await h.memory_count(db, project, event_id=job)
    finally:
        await db.dispose()


def test_adds_accepted_while_redis_is_down_run_when_it_is_back(
    celery_api: LiveServer, cdb_url: str, redis: h.Redis, stack_env: dict[str, str], tmp_path: Path
) -> None:
    _, key = h.make_tenant(cdb_url)
    w = worker(cdb_url, redis, stack_env, tmp_path / "worker.log")
    try:
        time.sleep(4)
        redis.stop()
        ids = []
        with httpx.Client(base_url=celery_api.url, headers={"Authorization": f"Token {key}"}, timeout=30) as api:
            for i in range(3):
                t0 = time.monotonic()
                r = api.post(
                    "/v3/memories/add/",
                    json={"messages": [{"role": "user", "content": f"down {i}"}], "user_id": f"down-{i}"},
                )
                assert r.status_code == 200, r.text  # accepted although the broker is away
                assert time.monotonic() - t0 < 1.5  # and the request does not wait for it
                assert r.json()["status"] == "PENDING"
                ids.append(uuid.UUID(r.json()["event_id"]))
        time.sleep(1.5)
        assert {r.status for r in wait_rows(cdb_url, ids, timeout=0)} == {"PENDING"}
        assert "not handed to Celery" in log_of(celery_api.log)
        redis.start()  # same port
        rows = wait_rows(cdb_url, ids, timeout=90)
        # Each ran exactly once, to the end.
        assert all(r.status == "SUCCEEDED" for r in rows), [(r.status, r.error) for r in rows]
        assert [r.attempts for r in rows] == [1, 1, 1]
    finally:
        h.stop_worker(w)
        if redis.proc is None:
            redis.start()


def test_back_pressure_refuses_adds_past_the_bound_and_drops_nothing(
    celery_api: LiveServer, cdb_url: str, redis: h.Redis, stack_env: dict[str, str], tmp_path: Path
) -> None:
    _, key = h.make_tenant(cdb_url)
    ids = []
    with httpx.Client(base_url=celery_api.url, headers={"Authorization": f"Token {key}"}, timeout=30) as api:

        def add(i: int) -> httpx.Response:
            msgs = [{"role": "user", "content": f"bp {i}"}]
            return api.post("/v3/memories/add/", json={"messages": msgs, "user_id": "bp"})

        for i in range(3):  # no worker runs: they stay PENDING
            r = add(i)
            assert r.status_code == 200, r.text
            ids.append(uuid.UUID(r.json()["event_id"]))
        r = add(3)
        assert r.status_code == 429
        assert r.headers["Retry-After"] == "5"
        assert r.headers["content-type"].startswith("application/json")
        assert "retry later" in r.json()["detail"]
        # infer=false adds are synchronous: not queued, not refused
        ok = api.post(
            "/v3/memories/add/",
            json={"messages": [{"role": "user", "content": "sync"}], "user_id": "bp", "infer": False},
        )
        assert ok.status_code == 200
        w = worker(cdb_url, redis, stack_env, tmp_path / "worker.log")
        try:
            rows = wait_rows(cdb_url, ids, timeout=60)
            assert all(r.status == "SUCCEEDED" and r.attempts == 1 for r in rows)  # every accepted add ran
            assert add(4).status_code == 200  # room again
        finally:
            h.stop_worker(w)
