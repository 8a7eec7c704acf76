"""Dream synthesis on the job machinery, against a real Postgres (a database of its own, so no other test
server's sweep takes these jobs), the real `openai` SDK talking to the scripted model, and the real runner code
(`services.jobs.run`, what both runners call): the scheduler's tick, the forward boundary, which memories reach
the model, provenance, idempotence, the cadence and minimum, one open run per user, a lease taken over, and
an LLM outage.

Memories are written through the single write path (`MemoryWriter.insert_new`), as adds write them; the
scheduler ticks are `services.dream.tick`, what the sweep of every process calls.
"""

from __future__ import annotations

import asyncio
import json
import threading
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pytest
from pydantic import SecretStr
from sqlalchemy import text

from memserver.config import DreamSettings, EmbedderSettings, LLMSettings, Settings, WorkerSettings
from memserver.domain.changes import AddDefaults, NewMemory
from memserver.domain.jobs import JobKind, JobStatus
from memserver.domain.principal import Principal
from memserver.domain.scope import Scope
from memserver.embedded_postgres import EmbeddedPostgres
from memserver.pipeline.messages import text_hash
from memserver.providers.registry import Providers, build_providers
from memserver.services import auth, dispatch, dream, jobs
from memserver.services.key_cache import KeyCache
from memserver.storage.db import Database
from memserver.storage.repositories.dream import DreamRepository
from memserver.storage.repositories.memory_writes import MemoryWriter
from tests.fakes import dream_llm
from tests.fakes.openai_server import FakeOpenAI, fake_embedding, running
from tests.worker.jobs_harness import event_row, fresh_database, make_tenant


@pytest.fixture(scope="module")
def url(pg: EmbeddedPostgres) -> str:
    return fresh_database(pg, "dream")


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeOpenAI]:
    with running(FakeOpenAI()) as f:
        yield f


@pytest.fixture
def llm(fake: FakeOpenAI) -> Iterator[FakeOpenAI]:
    fake.requests.clear()
    fake.chat_replies.clear()
    fake.fail_next = 0
    fake.fail_status = 500
    fake.chat_script = dream_llm.threads
    yield fake
    fake.chat_script = None
    fake.fail_next = 0


def settings_for(url: str, fake: FakeOpenAI, **dream_overrides: Any) -> Settings:
    return Settings(
        database_url=SecretStr(url),
        llm=LLMSettings(base_url=fake.url, api_key=SecretStr("sk-test"), model="scripted", max_retries=0, timeout_s=5),
        embedder=EmbedderSettings(provider="openai", base_url=fake.url, api_key=SecretStr("sk-test"), cache_size=0),
        worker=WorkerSettings(lease_s=30, heartbeat_s=10),
        dream=DreamSettings(**{"tick_s": 0.001, "retry_backoff_s": 0.05, **dream_overrides}),
    )


@dataclass
class Stack:
    url: str
    db: Database
    providers: Providers
    settings: Settings
    fake: FakeOpenAI

    def with_dream(self, **overrides: Any) -> Stack:
        s = self.settings.model_copy(
            update={"dream": DreamSettings(**{**self.settings.dream.model_dump(), **overrides})}
        )
        return Stack(self.url, self.db, self.providers, s, self.fake)

    async def tick(self) -> list[uuid.UUID]:
        async with self.db.transaction() as conn:  # every tick of these tests may run: the interval has passed
            await conn.execute(text("UPDATE dream_scan SET ticked_at = '-infinity'"))
        return [j.id for j in await dream.tick(self.db, self.settings.dream)]

    async def run(self, job_id: uuid.UUID, **ctx: Any) -> jobs.RunOutcome:
        context = dispatch.job_context(self.settings, self.db, self.providers)
        return await jobs.run(replace(context, **ctx), job_id)

    def chat_calls(self) -> int:
        return len(self.fake.chat_requests())


@pytest.fixture
async def stack(url: str, llm: FakeOpenAI) -> AsyncIterator[Stack]:
    settings = settings_for(url, llm)
    db = Database(url)
    providers = build_providers(settings)
    try:
        yield Stack(url, db, providers, settings, llm)
    finally:
        await providers.aclose()
        await db.dispose()


@dataclass
class Project:
    id: uuid.UUID
    principal: Principal


async def new_project(stack: Stack, *, enabled: bool = True) -> Project:
    pid, key = make_tenant(stack.url)
    principal = await auth.resolve_key(stack.db, KeyCache(0.0), key)
    assert principal is not None
    project = Project(uuid.UUID(pid), principal)
    if enabled:
        await set_dream(stack, project, True)
    return project


async def set_dream(stack: Stack, project: Project, on: bool) -> dict[str, Any]:
    return await dream.update_config(
        stack.db, stack.providers, project.principal, {"reflection_enabled": on}, stack.settings.dream
    )


async def add(
    stack: Stack, project: Project, texts: list[str], *, created_at: datetime | None = None, **scope: str
) -> list[uuid.UUID]:
    """Memories written by the single write path, as a verbatim add writes them."""
    items = [
        NewMemory(
            text=t,
            hash=text_hash(t),
            scope=Scope(**scope),
            embedding=np.asarray(fake_embedding(t, 384), dtype=np.float32),
            index=i,
            categories=["hobbies"] if "run" in t else None,
        )
        for i, t in enumerate(texts)
    ]
    async with stack.db.transaction() as conn:
        outcomes = await MemoryWriter(conn).insert_new(
            project.id, items, AddDefaults(created_at=created_at), event_id=uuid.uuid4()
        )
    return [o.id for o in outcomes if o.id is not None]


def user_texts(user: str, n: int, word: str = "coffee", start: int = 0) -> list[str]:
    return [f"{user} had {word} number {i} at the usual place" for i in range(start, start + n)]


async def rows(stack: Stack, sql: str, **params: Any) -> list[Any]:
    async with stack.db.connect() as conn:
        return list((await conn.execute(text(sql), params)).all())


async def patterns(stack: Stack, project: Project, user: str) -> list[Any]:
    return await rows(
        stack,
        "SELECT id, memory, provenance, user_id, agent_id, run_id, categories FROM memories "
        "WHERE project_id = :p AND user_id = :u AND source = 'synthesized' ORDER BY created_at",
        p=project.id,
        u=user,
    )


async def dream_jobs(stack: Stack, project: Project, *, open_only: bool = False) -> list[Any]:
    sql = "SELECT id, status, payload, attempts, error, results, metadata FROM events WHERE project_id = :p " + (
        "AND event_type = 'DREAM'" + (" AND status IN ('PENDING', 'RUNNING')" if open_only else "")
    )
    return await rows(stack, sql + " ORDER BY created_at", p=project.id)


# ----------------------------------------------------------------------------------------------
# the scheduler: which users, which memories
# ----------------------------------------------------------------------------------------------
async def test_the_tick_queues_users_of_enabled_projects_with_enough_memories_past_the_boundary(stack: Stack) -> None:
    on, off = await new_project(stack, enabled=False), await new_project(stack, enabled=False)
    await add(stack, on, user_texts("alice", 30, start=100), user_id="alice")  # before Synthesis is on
    await set_dream(stack, on, True)
    await add(stack, off, user_texts("bob", 25), user_id="bob")  # a project that never turned it on
    await add(stack, on, user_texts("alice", 19), user_id="alice")
    # memories of alice with another entity never count: 10 more, yet 19 eligible
    await add(stack, on, user_texts("alice", 5, "tea"), user_id="alice", agent_id="helper")
    await add(stack, on, user_texts("alice", 5, "garden"), user_id="alice", run_id="r1")
    await add(stack, on, user_texts("carol", 25), agent_id="helper")  # no user at all
    assert await stack.tick() == []
    # the 20th, backdated to 2020 (`timestamp`): added after turning Synthesis on, so it counts
    await add(
        stack,
        on,
        ["alice had coffee number 19 at the usual place"],
        created_at=datetime(2020, 1, 1, tzinfo=UTC),
        user_id="alice",
    )
    queued = await stack.tick()
    assert len(queued) == 1
    (job,) = await dream_jobs(stack, on)
    assert (job.id, job.status, job.payload) == (queued[0], "PENDING", {"user_id": "alice", "trigger": "schedule"})
    assert await dream_jobs(stack, off) == []
    assert await stack.tick() == []  # one open run per user: the next tick queues nothing more


async def test_a_run_shows_only_the_users_own_memories_after_the_boundary_and_links_each_pattern(
    stack: Stack,
) -> None:
    project = await new_project(stack, enabled=False)
    old = await add(stack, project, ["dana had coffee before synthesis was on"], user_id="dana")
    await set_dream(stack, project, True)
    own = await add(stack, project, user_texts("dana", 19), user_id="dana")
    backdated = await add(
        stack,
        project,
        ["dana had coffee on a backdated morning"],
        created_at=datetime(2021, 5, 1, tzinfo=UTC),
        user_id="dana",
    )
    await add(stack, project, ["dana had coffee with the helper agent"], user_id="dana", agent_id="helper")
    await add(stack, project, ["dana had coffee during run r9"], user_id="dana", run_id="r9")
    await add(stack, project, ["dana had coffee for the app"], user_id="dana", app_id="app1")
    (job,) = await stack.tick()
    outcome = await stack.run(job)
    assert outcome.status is JobStatus.SUCCEEDED
    (request,) = stack.fake.chat_requests()
    shown = dream_llm.parse(request["body"])
    # exactly the 20 eligible memories, oldest first (the backdated one by when it was added, last)
    assert list(shown.memories.values()) == [*user_texts("dana", 19), "dana had coffee on a backdated morning"]
    assert "before synthesis was on" not in json.dumps(request["body"])
    (pattern,) = await patterns(stack, project, "dana")
    assert pattern.memory == "User keeps coming back to coffee (20 memories)."
    assert (pattern.user_id, pattern.agent_id, pattern.run_id) == ("dana", None, None)
    sources = pattern.provenance["synthesis"]["sources"]
    assert sorted(sources) == sorted(str(i) for i in [*own, *backdated])  # provenance: the evidence, resolvable
    assert str(old[0]) not in sources
    assert pattern.provenance["synthesis"]["event_id"] == str(job)
    row = await event_row(stack.db, job)
    assert row.event_type == "DREAM"
    assert row.status == "SUCCEEDED"
    assert [(r["event"], r["id"], sorted(r["sources"])) for r in row.results] == [
        ("ADD", str(pattern.id), sorted(sources))
    ]
    assert row.metadata["considered"] == 20
    assert row.metadata["llm_calls"] == 1  # the usage keys every LLM-spending job writes


async def test_the_same_evidence_makes_no_call_and_no_duplicate_and_new_evidence_updates_in_place(
    stack: Stack,
) -> None:
    project = await new_project(stack)
    await add(stack, project, user_texts("erin", 20), user_id="erin")
    (first,) = await stack.tick()
    await stack.run(first)
    (pattern,) = await patterns(stack, project, "erin")
    calls = stack.chat_calls()
    # a run asked for by hand with nothing new: SUCCEEDED, no LLM call, no second pattern
    again = await dream.queue_run(
        stack.db, stack.providers, _NoQueue(), project.principal, {"user_id": "erin"}, stack.settings.dream
    )
    assert (await stack.run(uuid.UUID(again["event_id"]))).status is JobStatus.SUCCEEDED
    assert stack.chat_calls() == calls
    assert (await event_row(stack.db, again["event_id"])).metadata["skipped"] == "no new evidence since the last run"
    assert [p.id for p in await patterns(stack, project, "erin")] == [pattern.id]
    # the model rewords the same pattern over the same evidence (new memories of another thread): NOOP
    await add(stack, project, ["erin watered the garden", "erin weeded the garden"], user_id="erin")
    stack.fake.chat_script = lambda body: dream_llm.reply(
        {"text": "User reliably drinks coffee.", "evidence": dream_llm.parse(body).refs("coffee")}
    )
    third = await dream.queue_run(
        stack.db, stack.providers, _NoQueue(), project.principal, {"user_id": "erin"}, stack.settings.dream
    )
    await stack.run(uuid.UUID(third["event_id"]))
    assert [r["event"] for r in (await event_row(stack.db, third["event_id"])).results] == ["NOOP"]
    assert [(p.id, p.memory) for p in await patterns(stack, project, "erin")] == [(pattern.id, pattern.memory)]
    # new coffee memories: the pattern is rewritten in place, with an UPDATE history row
    stack.fake.chat_script = dream_llm.threads
    await add(stack, project, user_texts("erin", 3, start=50), user_id="erin")
    fourth = await dream.queue_run(
        stack.db, stack.providers, _NoQueue(), project.principal, {"user_id": "erin"}, stack.settings.dream
    )
    await stack.run(uuid.UUID(fourth["event_id"]))
    updated = {p.memory: p for p in await patterns(stack, project, "erin")}
    assert updated["User keeps coming back to coffee (23 memories)."].id == pattern.id
    assert len(updated["User keeps coming back to coffee (23 memories)."].provenance["synthesis"]["sources"]) == 23
    assert "User keeps coming back to garden (2 memories)." in updated  # the new thread is a new pattern
    history = await rows(
        stack,
        "SELECT event, old_memory, new_memory, event_id FROM memory_history WHERE memory_id = :m ORDER BY created_at",
        m=pattern.id,
    )
    assert [(h.event, h.old_memory, h.new_memory) for h in history] == [
        ("ADD", None, "User keeps coming back to coffee (20 memories)."),
        (
            "UPDATE",
            "User keeps coming back to coffee (20 memories).",
            "User keeps coming back to coffee (23 memories).",
        ),
    ]
    assert str(history[1].event_id) == fourth["event_id"]


class _NoQueue:
    """The tests run the jobs themselves (with the real runner code)."""

    max_pending: int | None = None
    retry_after_s: float = 1.0

    def submit(self, job_id: uuid.UUID, kind: JobKind | None = None) -> None:
        pass


async def test_a_scheduler_far_behind_catches_up_in_bounded_steps_and_reads_every_memory_twice(stack: Stack) -> None:
    project = await new_project(stack)
    await add(stack, project, user_texts("lea", 12), user_id="lea")
    async with stack.db.transaction() as conn:  # the watermark 12 memories behind (the scheduler was off)
        now = await DreamRepository(conn).current_seq()
        await conn.execute(text("UPDATE dream_scan SET scanned_seq = :s, seen_seq = :s"), {"s": now - 12})
    ranges = []
    for _ in range(5):
        async with stack.db.transaction() as conn:
            await conn.execute(text("UPDATE dream_scan SET ticked_at = '-infinity'"))
            ranges.append(await DreamRepository(conn).claim_tick(0.001, max_scan=5))
    # each tick reads at most 2 x 5 values, from where the tick before last had seen: every seq twice
    assert [(r[0] - now, r[1] - now) if r else None for r in ranges] == [(-12, -7), (-12, -2), (-7, 0), (-2, 0), (0, 0)]


async def test_the_minimum_and_the_cadence(stack: Stack) -> None:
    weekly = stack.with_dream(min_memories=5, cadence_s=3600)
    project = await new_project(weekly)
    await add(weekly, project, user_texts("finn", 4), user_id="finn")
    assert await weekly.tick() == []  # 4 < 5
    await add(weekly, project, user_texts("finn", 1, start=4), user_id="finn")
    (job,) = await weekly.tick()
    await weekly.run(job)
    await add(weekly, project, user_texts("finn", 3, start=10), user_id="finn")
    assert await weekly.tick() == []  # new memories, but the cadence has not passed
    (state,) = await rows(
        weekly, "SELECT next_due_at - last_run_at AS gap FROM dream_state WHERE project_id = :p", p=project.id
    )
    assert state.gap.total_seconds() == 3600
    async with weekly.db.transaction() as conn:  # an hour later
        await conn.execute(
            text("UPDATE dream_state SET next_due_at = now() - interval '1 second' WHERE project_id = :p"),
            {"p": project.id},
        )
    assert len(await weekly.tick()) == 1


async def test_one_open_run_per_user_under_concurrent_ticks_and_requests(stack: Stack) -> None:
    project = await new_project(stack)
    for user in ("gus", "hana"):
        await add(stack, project, user_texts(user, 20), user_id=user)
    async with stack.db.transaction() as conn:
        await conn.execute(text("UPDATE dream_scan SET ticked_at = '-infinity'"))

    async def ask(user: str) -> str:
        out = await dream.queue_run(
            stack.db, stack.providers, _NoQueue(), project.principal, {"user_id": user}, stack.settings.dream
        )
        return str(out["event_id"])

    others = [Database(stack.url) for _ in range(3)]
    try:
        got = await asyncio.gather(
            *(dream.tick(db, stack.settings.dream) for db in others), ask("gus"), ask("gus"), ask("hana")
        )
    finally:
        for db in others:
            await db.dispose()
    open_runs = await dream_jobs(stack, project, open_only=True)
    assert sorted(r.payload["user_id"] for r in open_runs) == ["gus", "hana"]
    assert {str(r.id) for r in open_runs} >= {got[3], got[4], got[5]}
    assert got[3] == got[4]  # the second request got the first one's run back


async def test_a_run_whose_lease_was_taken_over_writes_nothing(stack: Stack) -> None:
    project = await new_project(stack)
    await add(stack, project, user_texts("ivy", 20), user_id="ivy")
    (job,) = await stack.tick()
    gate, arrived = threading.Event(), threading.Event()

    def slow(body: dict[str, Any]) -> str:
        if not gate.is_set():  # runner A's call: answers only once runner B has finished
            arrived.set()
            gate.wait(20)
        return dream_llm.threads(body)

    stack.fake.chat_script = slow
    a = asyncio.create_task(stack.run(job, lease_s=0.5, heartbeat_s=3600))  # a stalled runner: no heartbeat
    assert await asyncio.to_thread(arrived.wait, 20)
    await asyncio.sleep(0.8)  # A's lease has expired
    gate.set()
    b = await stack.run(job)  # B takes the job over and completes it
    assert b.status is JobStatus.SUCCEEDED
    a_out = await a
    assert a_out.status is None  # A's apply found its claim gone and rolled back
    assert len(await patterns(stack, project, "ivy")) == 1
    row = await event_row(stack.db, job)
    assert (row.status, row.attempts) == ("SUCCEEDED", 2)
    (state,) = await rows(stack, "SELECT runs FROM dream_state WHERE project_id = :p AND user_id = 'ivy'", p=project.id)
    assert state.runs == 1


async def test_an_llm_outage_is_retried_then_failed_in_memservers_words(stack: Stack) -> None:
    flaky = stack.with_dream(max_attempts=2, cadence_s=604_800)
    project = await new_project(flaky)
    await add(flaky, project, user_texts("jack", 20), user_id="jack")
    (job,) = await flaky.tick()
    flaky.fake.fail_next, flaky.fake.fail_status = 10, 503
    first = await flaky.run(job)
    assert (first.status, first.retry_in_s) == (JobStatus.PENDING, pytest.approx(0.05))
    await asyncio.sleep(0.1)
    second = await flaky.run(job)
    assert second.status is JobStatus.FAILED
    row = await event_row(flaky.db, job)
    assert row.status == "FAILED"
    assert row.attempts == 2
    # memserver's words (the fake answers "scripted failure": a provider's own text never reaches the event)
    assert row.error == "the LLM endpoint failed (HTTP 503, after 0 retries) (gave up after 2 attempts)"
    assert await patterns(flaky, project, "jack") == []
    (state,) = await rows(
        flaky, "SELECT next_due_at - now() AS wait FROM dream_state WHERE project_id = :p", p=project.id
    )
    assert 86_000 < state.wait.total_seconds() <= 86_400  # not due again for a day (the cadence is a week)
    flaky.fake.fail_next = 0
    assert await flaky.tick() == []


async def test_turning_synthesis_off_stops_scheduling_and_keeps_the_patterns(stack: Stack) -> None:
    project = await new_project(stack)
    await add(stack, project, user_texts("kim", 20), user_id="kim")
    (job,) = await stack.tick()
    await stack.run(job)
    await set_dream(stack, project, False)
    await add(stack, project, user_texts("kim", 20, start=40), user_id="kim")
    async with stack.db.transaction() as conn:
        await conn.execute(text("UPDATE dream_state SET next_due_at = NULL WHERE project_id = :p"), {"p": project.id})
    assert await stack.tick() == []
    assert len(await patterns(stack, project, "kim")) == 1
    # on again: a new boundary, so what was added while it was off is not evidence either
    await set_dream(stack, project, True)
    assert await stack.tick() == []
