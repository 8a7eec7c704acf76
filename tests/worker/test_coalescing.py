"""Coalesced adds: queued infer=true adds of one scope run as one extraction call, each keeping its own event,
results, provenance and place in the scope's order; a failure of the shared call runs each add again alone.

A live memserver (in-process runner, one slot) on a database of its own; the model is the scripted
OpenAI-compatible server (echo extractor: one fact per user message) behind a gate the test opens, so the adds
queue up behind the first one exactly as they would behind a slow model.
"""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import Callable, Iterator
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

SCOPE = "coalesced-user"


class GatedModel:
    """The echo extractor, holding every request until `gate` opens; `refuse` picks prompts it answers with
    something that states nothing (a reply no repair can use)."""

    def __init__(self) -> None:
        self.gate = threading.Event()
        self.arrived = threading.Event()
        self.refuse: Callable[[str], bool] = lambda prompt: False

    def __call__(self, body: dict[str, Any]) -> str:
        self.arrived.set()
        self.gate.wait(60)
        prompt = "\n".join(str(m.get("content")) for m in body.get("messages") or [])
        return "I cannot help with that." if self.refuse(prompt) else echo_extractor(body)


@pytest.fixture
def model() -> GatedModel:
    return GatedModel()


@pytest.fixture
def extra_env() -> dict[str, str]:
    return {}


@pytest.fixture
def stack(
    pg: EmbeddedPostgres, tmp_path: Path, model: GatedModel, extra_env: dict[str, str]
) -> Iterator[tuple[LiveServer, str, FakeOpenAI]]:
    url = h.fresh_database(pg, "coalesce")
    with (
        running(FakeOpenAI(chat_script=model)) as fake,
        served(
            url,
            tmp_path / "api.log",
            MEMSERVER_LLM__BASE_URL=fake.url,
            MEMSERVER_LLM__API_KEY="sk-test",
            MEMSERVER_LLM__TIMEOUT_S="60",
            MEMSERVER_EMBEDDER__PROVIDER="openai",
            MEMSERVER_EMBEDDER__BASE_URL=fake.url,
            MEMSERVER_EMBEDDER__API_KEY="sk-test",
            MEMSERVER_WORKER__INPROCESS_CONCURRENCY="1",
            MEMSERVER_WORKER__RETRY_BACKOFF_S="0.2",
            MEMSERVER_WORKER__POLL_INTERVAL_S="0.5",
            **extra_env,
        ) as server,
    ):
        yield server, url, fake


def queue_eight(server: LiveServer, key: str, model: GatedModel) -> list[uuid.UUID]:
    """The first add runs (held at the model); seven more of its scope queue behind it; then the gate opens."""
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Token {key}"}, timeout=30) as api:

        def add(i: int) -> uuid.UUID:
            r = api.post(
                "/v3/memories/add/",
                json={"messages": [{"role": "user", "content": f"I keep fact number {i}"}], "user_id": SCOPE},
            )
            assert r.status_code == 200, r.text
            return uuid.UUID(r.json()["event_id"])

        ids = [add(0)]
        assert model.arrived.wait(30), server.log.read_text()[-3000:]
        ids += [add(i) for i in range(1, 8)]
    model.gate.set()
    return ids


def rows(url: str, ids: list[uuid.UUID], timeout: float = 60) -> list[Any]:
    async def fetch() -> list[Any]:
        db = Database(url)
        try:
            return [await h.event_row(db, i) for i in ids]
        finally:
            await db.dispose()

    deadline = time.monotonic() + timeout
    while True:
        got = asyncio.run(fetch())
        if all(r.status in ("SUCCEEDED", "FAILED") for r in got) or time.monotonic() > deadline:
            return got
        time.sleep(0.2)


def memories(url: str, project: str) -> list[Any]:
    """The project's memories in insertion order, with the event and message numbers of their provenance."""

    async def fetch() -> list[Any]:
        db = Database(url)
        try:
            async with db.connect() as conn:
                q = "SELECT id, memory, event_id, provenance FROM memories WHERE project_id = :p ORDER BY seq"
                return list((await conn.execute(text(q), {"p": project})).all())
        finally:
            await db.dispose()

    return asyncio.run(fetch())


def test_eight_queued_adds_of_one_scope_share_an_extraction_call_and_keep_their_own_events(
    stack: tuple[LiveServer, str, FakeOpenAI], model: GatedModel
) -> None:
    server, url, fake = stack
    project, key = h.make_tenant(url)
    ids = queue_eight(server, key, model)
    got = rows(url, ids)
    assert [r.status for r in got] == ["SUCCEEDED"] * 8, [(r.status, r.error) for r in got]
    calls = fake.chat_requests()
    assert len(calls) <= 2, len(calls)  # the first add alone, then the seven queued behind it together
    shared = str(calls[-1]["body"]["messages"][-1]["content"])
    assert "Add 1 of 7, observed" in shared
    assert "Add 7 of 7, observed" in shared
    for i, r in enumerate(got):  # each event: its own message's fact, and its own record
        assert [(x["event"], x["data"]["memory"]) for x in r.results] == [("ADD", f"I keep fact number {i}")]
        assert r.attempts == 1
    followers = got[1:]
    batch = followers[0].metadata["batch"]
    assert batch["size"] == 7
    assert batch["event_ids"] == [str(r.id) for r in followers]
    assert batch["llm_calls"] == 1
    # the shared call's cost is split over its adds, summing to what it cost
    assert sum(r.metadata["llm_calls"] for r in followers) == 1
    assert sum(r.metadata["prompt_tokens"] for r in followers) == batch["prompt_tokens"]
    assert all(r.metadata["batch"] == batch for r in followers)
    assert "batch" not in got[0].metadata
    assert len({r.batch_id for r in followers}) == 1
    assert followers[0].batch_id == followers[0].id
    # provenance names each add's own event and its own message; the scope's order is acceptance order
    stored = memories(url, project)
    assert [m.memory for m in stored] == [f"I keep fact number {i}" for i in range(8)]
    for m, r in zip(stored, got, strict=True):
        assert m.event_id == r.id
        assert m.provenance == {"sources": [{"event_id": str(r.id), "message_indices": [0]}]}
        # each event's decisions are its own add's, numbered in its own payload.messages (not the shared prompt's)
        assert [(d["op"], d["text"], d["memory_id"], d["message_indices"]) for d in r.metadata["decisions"]] == [
            ("ADD", m.memory, str(m.id), [0])
        ]


def test_a_failed_shared_call_runs_each_add_again_alone_and_loses_or_doubles_nothing(
    stack: tuple[LiveServer, str, FakeOpenAI], model: GatedModel
) -> None:
    server, url, fake = stack
    project, key = h.make_tenant(url)
    model.refuse = lambda prompt: "Add 1 of 7" in prompt  # the shared call (and its repair) states nothing
    ids = queue_eight(server, key, model)
    got = rows(url, ids)
    assert [r.status for r in got] == ["SUCCEEDED"] * 8, [(r.status, r.error) for r in got]
    assert [r.attempts for r in got] == [1] + [2] * 7  # each of the seven ran again, once, alone
    for i, r in enumerate(got):
        assert [(x["event"], x["data"]["memory"]) for x in r.results] == [("ADD", f"I keep fact number {i}")]
        assert "batch" not in r.metadata
    # the failed shared call and its repair round were spent too: their cost is on the seven adds' events,
    # split between them, with each one's own call of the second attempt
    assert got[0].metadata["llm_calls"] == 1
    assert sum(r.metadata["llm_calls"] for r in got[1:]) == 2 + 7
    assert all(r.metadata["llm_calls"] >= 1 for r in got[1:])
    stored = memories(url, project)
    assert [m.memory for m in stored] == [f"I keep fact number {i}" for i in range(8)]  # once each, in order
    prompts = ["\n".join(str(m["content"]) for m in c["body"]["messages"]) for c in fake.chat_requests()]
    assert sum("Add 1 of 7" in p for p in prompts) == 2  # the shared call and its repair round, then no batch
    assert len(prompts) == 1 + 2 + 7


@pytest.mark.parametrize("extra_env", [{"MEMSERVER_WORKER__COALESCE_MAX_ADDS": "1"}])
def test_coalesce_max_adds_1_runs_every_queued_add_alone(
    stack: tuple[LiveServer, str, FakeOpenAI], model: GatedModel
) -> None:
    server, url, fake = stack
    project, key = h.make_tenant(url)
    ids = queue_eight(server, key, model)
    got = rows(url, ids)
    assert [r.status for r in got] == ["SUCCEEDED"] * 8, [(r.status, r.error) for r in got]
    calls = fake.chat_requests()
    assert len(calls) == 8, len(calls)  # one extraction call per add
    assert not any("Add 1 of" in str(c["body"]["messages"][-1]["content"]) for c in calls)
    for i, r in enumerate(got):
        assert [(x["event"], x["data"]["memory"]) for x in r.results] == [("ADD", f"I keep fact number {i}")]
        assert "batch" not in r.metadata
        assert r.batch_id is None
    assert [m.memory for m in memories(url, project)] == [f"I keep fact number {i}" for i in range(8)]
