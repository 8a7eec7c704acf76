"""Fair scheduling under load: one project's backlog does not starve another project (or another scope), with the
in-process runner and with Celery workers, on a database of their own.

The model is the scripted OpenAI-compatible server taking 250 ms per extraction (a small local model); the
embedder is the same fake (instant). Assertions go by completion RANK, never by time, so they hold on a busy
machine: among the jobs that completed after B's add was accepted (its 200 came back), B's comes within the
jobs already running when it arrived (at most one per runner slot), the jobs that started beside it on the
other slots (the same model time: they finish before or after it by the machine's noise) and its own, however
long A's backlog. First come, first served puts it last (25th of 25). (Not the event's `created_at`:
that is the start of the accepting transaction, and a slot freed before its commit rightly takes A's next job.)
"""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from harness.server import served
from memserver.embedded_postgres import EmbeddedPostgres
from memserver.storage.db import Database
from tests.fakes.openai_server import FakeOpenAI, echo_extractor, running
from tests.worker import jobs_harness as h

SLOTS = 2
MODEL_S = 0.25


class SlowModel:
    """The echo extractor taking MODEL_S per request; `peak` is the most requests it ever held at once (each
    runner slot holds at most one)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.in_flight = 0
        self.peak = 0

    def __call__(self, body: dict[str, Any]) -> str:
        with self.lock:
            self.in_flight += 1
            self.peak = max(self.peak, self.in_flight)
        try:
            time.sleep(MODEL_S)
            return echo_extractor(body)
        finally:
            with self.lock:
                self.in_flight -= 1


@pytest.fixture(scope="module")
def slow_model() -> SlowModel:
    return SlowModel()


@pytest.fixture(scope="module")
def fake(slow_model: SlowModel) -> Iterator[FakeOpenAI]:
    with running(FakeOpenAI(chat_script=slow_model)) as f:
        yield f


@pytest.fixture
def model(slow_model: SlowModel) -> SlowModel:
    """The module's model, its peak counted from this test on."""
    with slow_model.lock:
        slow_model.peak = slow_model.in_flight
    return slow_model


def stack_env(fake: FakeOpenAI, **extra: str) -> dict[str, str]:
    return {
        "MEMSERVER_LLM__BASE_URL": fake.url,
        "MEMSERVER_LLM__API_KEY": "sk-test",
        "MEMSERVER_EMBEDDER__PROVIDER": "openai",
        "MEMSERVER_EMBEDDER__BASE_URL": fake.url,
        "MEMSERVER_EMBEDDER__API_KEY": "sk-test",
        "MEMSERVER_WORKER__POLL_INTERVAL_S": "0.5",
        **extra,
    }


def add(api: httpx.Client, user: str, text_: str) -> uuid.UUID:
    r = api.post("/v3/memories/add/", json={"messages": [{"role": "user", "content": text_}], "user_id": user})
    assert r.status_code == 200, r.text
    return uuid.UUID(r.json()["event_id"])


def finished(url: str, timeout: float = 180) -> list[Any]:
    """Every job of the database once none is open: (id, status, created_at, completed_at)."""

    async def fetch() -> list[Any]:
        db = Database(url)
        try:
            async with db.connect() as conn:
                q = "SELECT id, status, created_at, completed_at FROM events WHERE event_type = 'ADD'"
                return list((await conn.execute(text(q))).all())
        finally:
            await db.dispose()

    deadline = time.monotonic() + timeout
    while True:
        rows = asyncio.run(fetch())
        if all(r.status in ("SUCCEEDED", "FAILED") for r in rows) or time.monotonic() > deadline:
            return rows
        time.sleep(0.3)


def add_accepted(api: httpx.Client, user: str, text_: str) -> tuple[uuid.UUID, datetime]:
    """An add, and when it was accepted (its answer came back: from then on every runner can see it)."""
    job = add(api, user, text_)
    return job, datetime.now(UTC)


def rank_after_acceptance(rows: list[Any], job: uuid.UUID, accepted: datetime) -> tuple[int, int]:
    """(the job's rank among the jobs that completed after it was accepted, how many completed after it)."""
    mine = next(r for r in rows if r.id == job)
    later = sorted(r.completed_at for r in rows if r.completed_at > accepted)
    return 1 + sum(1 for t in later if t < mine.completed_at), len(later)


def one_project_floods_another_adds_once(server_url: str, url: str, model: SlowModel) -> None:
    """Project A queues 24 adds (24 scopes), then project B one: B's comes within the running ones, the
    ones beside it and itself. While A is alone it has every slot."""
    _, a_key = h.make_tenant(url)
    _, b_key = h.make_tenant(url)
    with (
        httpx.Client(base_url=server_url, headers={"Authorization": f"Token {a_key}"}, timeout=30) as a,
        httpx.Client(base_url=server_url, headers={"Authorization": f"Token {b_key}"}, timeout=30) as b,
    ):
        a_ids = [add(a, f"a-{i}", f"I collect stamp number {i}") for i in range(24)]
        deadline = time.monotonic() + 30
        while model.peak < SLOTS and time.monotonic() < deadline:
            time.sleep(0.05)
        assert model.peak == SLOTS, f"project A alone ran {model.peak} job(s) at once on {SLOTS} slots"
        b_id, b_accepted = add_accepted(b, "b", "I like green tea")
    rows = finished(url)
    assert {r.status for r in rows} == {"SUCCEEDED"}, rows
    rank, after = rank_after_acceptance(rows, b_id, b_accepted)
    assert after >= 10, after  # A's backlog was still there when B's add came (else nothing is shown)
    assert rank <= 2 * SLOTS, f"B's add completed {rank}th of the {after} jobs completed after it was accepted"
    assert len(a_ids) == 24


def test_in_process_runner_serves_a_quiet_project_within_the_running_jobs(
    pg: EmbeddedPostgres, tmp_path: Path, fake: FakeOpenAI, model: SlowModel
) -> None:
    url = h.fresh_database(pg, "fair_inproc")
    env = stack_env(fake, MEMSERVER_WORKER__INPROCESS_CONCURRENCY=str(SLOTS))
    with served(url, tmp_path / "api.log", **env) as server:
        one_project_floods_another_adds_once(server.url, url, model)


def test_an_idle_system_gives_one_project_every_slot_even_under_a_per_project_cap(
    pg: EmbeddedPostgres, tmp_path: Path, fake: FakeOpenAI, model: SlowModel
) -> None:
    """MAX_RUNNING_PER_PROJECT=1 bounds a project only while another one waits: alone, A runs on both slots;
    once B's add arrives, it is served within the running jobs plus itself."""
    url = h.fresh_database(pg, "fair_cap")
    env = stack_env(
        fake, MEMSERVER_WORKER__INPROCESS_CONCURRENCY=str(SLOTS), MEMSERVER_WORKER__MAX_RUNNING_PER_PROJECT="1"
    )
    with served(url, tmp_path / "api.log", **env) as server:
        one_project_floods_another_adds_once(server.url, url, model)


def test_celery_workers_serve_a_quiet_project_within_the_running_jobs(
    pg: EmbeddedPostgres, tmp_path: Path, fake: FakeOpenAI, model: SlowModel
) -> None:
    url = h.fresh_database(pg, "fair_celery")
    redis = h.Redis(tmp_path)
    redis.start()
    env = stack_env(fake)
    worker = h.start_worker(url, redis.url, tmp_path / "worker.log", concurrency=SLOTS, **env)
    try:
        with served(
            url, tmp_path / "api.log", MEMSERVER_WORKER__RUNNER="celery", MEMSERVER_REDIS__URL=redis.url, **env
        ) as server:
            one_project_floods_another_adds_once(server.url, url, model)
    finally:
        h.stop_worker(worker)
        redis.stop()


def test_scopes_of_one_project_take_turns_and_each_keeps_its_order(
    pg: EmbeddedPostgres, tmp_path: Path, fake: FakeOpenAI
) -> None:
    """Two busy scopes of project A (10 adds each, one at a time: coalescing off), then one add of a third scope
    of A and one of project B: both come within the running jobs, the ones beside them and each other, and
    each scope's adds complete in acceptance order."""
    url = h.fresh_database(pg, "fair_scopes")
    env = stack_env(fake, MEMSERVER_WORKER__INPROCESS_CONCURRENCY=str(SLOTS), MEMSERVER_WORKER__COALESCE_MAX_ADDS="1")
    _, a_key = h.make_tenant(url)
    _, b_key = h.make_tenant(url)
    with (
        served(url, tmp_path / "api.log", **env) as server,
        httpx.Client(base_url=server.url, headers={"Authorization": f"Token {a_key}"}, timeout=30) as a,
        httpx.Client(base_url=server.url, headers={"Authorization": f"Token {b_key}"}, timeout=30) as b,
    ):
        busy: dict[str, list[uuid.UUID]] = {"x": [], "z": []}
        for i in range(10):
            for scope, ids in busy.items():
                ids.append(add(a, scope, f"{scope} fact number {i}"))
        quiet = add_accepted(a, "y", "I play the cello")
        other = add_accepted(b, "b", "I like green tea")
        rows = finished(url)
    assert {r.status for r in rows} == {"SUCCEEDED"}, rows
    for job, accepted in (quiet, other):
        rank, after = rank_after_acceptance(rows, job, accepted)
        assert after >= 8, after
        assert rank <= 2 * SLOTS + 1, f"{rank}th of {after}"  # running, beside it, the other quiet add, itself
    by_id = {r.id: r for r in rows}
    for ids in busy.values():
        done = [by_id[i].completed_at for i in ids]
        assert done == sorted(done), "a scope's adds completed out of acceptance order"
