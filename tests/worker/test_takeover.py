"""The real inference job (infer=true: extraction by the scripted model, embeddings, reconciliation, one
apply transaction) when the process running it dies or stops, across two real API processes with the
in-process runner on a database of their own.

- SIGKILL mid model call: nothing is cleaned up; the other process takes the job over once the lease has
  expired, and the add's memories, its SUCCEEDED event and its webhook deliveries each happen exactly once.
- SIGTERM: a stopping process gives its running and queued jobs back at once; with a 120 s lease (and
  re-dispatch after 120 s) the other process runs them within seconds, so lease expiry cannot be what
  rescued them.

The model is the fake OpenAI-compatible server (echo extractor: one fact per user message), slow on its
first extraction so the signal lands while the job waits on the model.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from harness.server import LiveServer, served
from memserver.embedded_postgres import EmbeddedPostgres
from memserver.storage.db import Database
from tests.fakes.openai_server import FakeOpenAI, echo_extractor, running
from tests.worker import jobs_harness as h
from tests.worker.test_webhooks import Receiver


class SlowModel:
    """The echo extractor, taking `slow_s` over its first `slow_calls` answers (a model that takes a while)."""

    def __init__(self, slow_s: float, slow_calls: int = 1):
        self.slow_s = slow_s
        self.slow_calls = slow_calls
        self.calls = 0
        self.called = threading.Event()  # the first request has arrived: the job waits on the model
        self._lock = threading.Lock()

    def __call__(self, body: dict[str, Any]) -> str:
        with self._lock:
            self.calls += 1
            slow = self.calls <= self.slow_calls
        self.called.set()
        if slow:
            time.sleep(self.slow_s)
        return echo_extractor(body)


@pytest.fixture
def model() -> SlowModel:
    return SlowModel(slow_s=8.0)


@pytest.fixture
def fake(model: SlowModel) -> Iterator[FakeOpenAI]:
    with running(FakeOpenAI(chat_script=model)) as f:
        yield f


def stack_env(fake: FakeOpenAI, **extra: str) -> dict[str, str]:
    return {
        "MEMSERVER_LLM__BASE_URL": fake.url,
        "MEMSERVER_LLM__API_KEY": "sk-test",
        "MEMSERVER_LLM__TIMEOUT_S": "30",
        "MEMSERVER_EMBEDDER__PROVIDER": "openai",
        "MEMSERVER_EMBEDDER__BASE_URL": fake.url,
        "MEMSERVER_EMBEDDER__API_KEY": "sk-test",
        "MEMSERVER_EMBEDDER__CACHE_SIZE": "0",
        "MEMSERVER_WEBHOOKS__ALLOW_PRIVATE_URLS": "true",
        "MEMSERVER_WEBHOOKS__RETRY_BACKOFF_S": "0.3",
        "MEMSERVER_WORKER__HEARTBEAT_S": "0.5",
        **extra,
    }


def rows(url: str, ids: list[uuid.UUID]) -> list[Any]:
    async def fetch() -> list[Any]:
        db = Database(url)
        try:
            return [await h.event_row(db, i) for i in ids]
        finally:
            await db.dispose()

    return asyncio.run(fetch())


def wait_for(url: str, ids: list[uuid.UUID], ok: Any, timeout: float) -> list[Any]:
    deadline = time.monotonic() + timeout
    while True:
        got = rows(url, ids)
        if ok(got) or time.monotonic() > deadline:
            return got
        time.sleep(0.1)


def done(got: list[Any]) -> bool:
    return all(r.status in ("SUCCEEDED", "FAILED") for r in got)


def writes(url: str, project: str, event_id: uuid.UUID) -> dict[str, Any]:
    """What the job wrote: its memories, their ADD history rows, and the webhook deliveries queued."""

    async def go() -> dict[str, Any]:
        db = Database(url)
        try:
            async with db.connect() as conn:

                async def scalar(sql: str, **params: Any) -> Any:
                    return (await conn.execute(text(sql), params)).scalar_one()

                memories = await h.memory_count(db, project, event_id=event_id)
                history = await scalar(
                    "SELECT count(*) FROM memory_history WHERE event_id = :e AND event = 'ADD'", e=event_id
                )
                deliveries = (
                    await conn.execute(
                        text("SELECT status, attempts FROM events WHERE project_id = :p AND event_type = 'WEBHOOK'"),
                        {"p": project},
                    )
                ).all()
                return {"memories": memories, "history": int(history), "deliveries": [tuple(d) for d in deliveries]}
        finally:
            await db.dispose()

    return asyncio.run(go())


def add(api: httpx.Client, user: str, *texts: str) -> uuid.UUID:
    r = api.post(
        "/v3/memories/add/", json={"messages": [{"role": "user", "content": t} for t in texts], "user_id": user}
    )
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "PENDING", r.json()
    return uuid.UUID(r.json()["event_id"])


def owned_by(server: LiveServer, row: Any) -> bool:
    """A claim's owner is `host:pid:random` (services.jobs.new_owner)."""
    return row.lease_owner is not None and row.lease_owner.split(":")[1] == str(server.proc.pid)


def test_an_inference_job_killed_mid_model_call_is_taken_over_and_applied_once(
    pg: EmbeddedPostgres, tmp_path: Path, fake: FakeOpenAI, model: SlowModel
) -> None:
    url = h.fresh_database(pg, "takeover")
    project, key = h.make_tenant(url)
    env = stack_env(
        fake,
        MEMSERVER_WORKER__LEASE_S="3",
        MEMSERVER_WORKER__POLL_INTERVAL_S="0.3",
    )
    with (
        closing(Receiver()) as receiver,
        served(url, tmp_path / "a.log", **env) as a,
        served(url, tmp_path / "b.log", **env) as b,
    ):
        with httpx.Client(base_url=a.url, headers={"Authorization": f"Token {key}"}, timeout=30) as api:
            hook = {"url": receiver.url, "name": "r", "event_types": ["memory_add", "memory_update", "memory_delete"]}
            r = api.post(f"/api/v1/webhooks/projects/{project}/", json=hook)
            assert r.status_code == 201, r.text
            texts = [f"I keep fact {i} {uuid.uuid4().hex[:6]}" for i in range(3)]
            job = add(api, "killed", *texts)
        assert model.called.wait(30), a.log.read_text()[-3000:]
        (row,) = rows(url, [job])
        assert row.status == "RUNNING", row.status
        assert owned_by(a, row), row.lease_owner
        a.proc.kill()  # SIGKILL inside the model call: no cleanup, the claim stays under A's lease
        a.proc.wait(10)

        (row,) = wait_for(url, [job], done, timeout=60)
        assert row.status == "SUCCEEDED", (row.status, row.error, b.log.read_text()[-3000:])
        assert row.attempts == 2  # A's claim, then B's after the lease expired
        assert model.calls >= 2  # B ran the extraction again: nothing of A's aborted call was kept
        assert [x["event"] for x in row.results] == ["ADD", "ADD", "ADD"]
        assert writes(url, project, job)["memories"] == 3
        assert writes(url, project, job)["history"] == 3
        with httpx.Client(base_url=b.url, headers={"Authorization": f"Token {key}"}, timeout=30) as api:
            ev = api.get(f"/v1/event/{job}/").json()
            assert (ev["status"], ev["error"]) == ("SUCCEEDED", None)
            assert sorted(x["data"]["memory"] for x in ev["results"]) == sorted(texts)
            memory_ids = {x["id"] for x in ev["results"]}
            listed = api.get("/v1/memories/", params={"user_id": "killed"}).json()
            listed = listed["results"] if isinstance(listed, dict) else listed
            assert sorted(m["memory"] for m in listed) == sorted(texts)  # each memory once

        delivered = receiver.wait(3)
        time.sleep(2)  # a second application would queue (and deliver) more
        delivered = list(receiver.requests)
        bodies = [json.loads(d["body"]) for d in delivered]
        assert len(bodies) == 3, bodies
        assert {b["event_details"]["id"] for b in bodies} == memory_ids
        assert {b["event_details"]["event"] for b in bodies} == {"ADD"}
        assert len({d["headers"]["X-Memserver-Delivery"] for d in delivered}) == 3
        assert sorted(writes(url, project, job)["deliveries"]) == [("SUCCEEDED", 1)] * 3


def test_a_stopping_api_process_gives_its_running_and_queued_jobs_back_at_once(
    pg: EmbeddedPostgres, tmp_path: Path, fake: FakeOpenAI, model: SlowModel
) -> None:
    url = h.fresh_database(pg, "handback")
    project, key = h.make_tenant(url)
    # Leases and re-dispatch far longer than the test allows: only a hand-back can explain a quick pickup.
    env = stack_env(
        fake,
        MEMSERVER_WORKER__LEASE_S="120",
        MEMSERVER_WORKER__REDISPATCH_AFTER_S="120",
    )  # and the default sweep interval (2 s)
    with (
        served(url, tmp_path / "a.log", MEMSERVER_WORKER__INPROCESS_CONCURRENCY="1", **env) as a,
        served(url, tmp_path / "b.log", **env) as b,
    ):
        with httpx.Client(base_url=a.url, headers={"Authorization": f"Token {key}"}, timeout=30) as api:
            # three scopes: A runs one job at a time, so one is running and two wait in A's queue
            ids = [add(api, f"user-{i}", f"fact of user {i}", f"second fact of user {i}") for i in range(3)]
        assert model.called.wait(30), a.log.read_text()[-3000:]
        got = rows(url, ids)
        running_ids = [r.id for r in got if r.status == "RUNNING"]
        assert len(running_ids) == 1, got
        assert all(owned_by(a, r) for r in got if r.status == "RUNNING"), got
        assert sorted(r.status for r in got) == ["PENDING", "PENDING", "RUNNING"]
        assert all(r.dispatched_at is not None for r in got)  # handed to A: nobody else's sweep takes them

        stopped_at = time.monotonic()
        a.proc.terminate()  # SIGTERM while the running job waits on the model
        a.proc.wait(15)
        exited_in = time.monotonic() - stopped_at
        got = wait_for(url, ids, done, timeout=30)
        picked_up_in = time.monotonic() - stopped_at

        assert [r.status for r in got] == ["SUCCEEDED"] * 3, ([(r.status, r.error) for r in got], b.log.read_text())
        assert exited_in < 8, exited_in  # A did not sit out its model call (8 s) or its graceful timeout
        assert picked_up_in < 15, picked_up_in  # seconds, against a 120 s lease
        attempts = {r.id: r.attempts for r in got}
        assert attempts == {i: 2 if i in running_ids else 1 for i in ids}  # the queued ones never ran on A
        for r in got:
            assert [x["event"] for x in r.results] == ["ADD", "ADD"]
            assert writes(url, project, r.id)["memories"] == 2
