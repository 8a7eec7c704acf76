"""Job claims under leases, run through the real runner code (`services.jobs.run`) against a real
Postgres. The handlers here are registered by the test (a slow add that writes memories through the
single write path and completes in the same transaction; a handler that always fails), so the lease
mechanics are shown without waiting on the LLM pipeline."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import numpy as np
import pytest
from sqlalchemy import text

from memserver.domain.changes import AddDefaults, NewMemory
from memserver.domain.jobs import JobKind, JobStatus
from memserver.domain.scope import Scope
from memserver.embedded_postgres import EmbeddedPostgres
from memserver.providers.registry import Providers
from memserver.services import jobs
from memserver.storage.db import Database
from memserver.storage.repositories.jobs import ClaimedJob, JobRepository
from memserver.storage.repositories.memory_writes import MemoryWriter
from tests.worker.jobs_harness import event_row, fresh_database, insert_job, make_tenant, memory_count


@pytest.fixture(scope="module")
def jobs_db_url(pg: EmbeddedPostgres) -> Iterator[str]:
    return fresh_database(pg, "leases")


@pytest.fixture
async def jdb(jobs_db_url: str) -> AsyncIterator[Database]:
    db = Database(jobs_db_url)
    try:
        yield db
    finally:
        await db.dispose()


@pytest.fixture
def project(jobs_db_url: str) -> str:
    return make_tenant(jobs_db_url)[0]


def _vec(seed: int) -> Any:
    v = np.random.default_rng(seed).standard_normal(384).astype(np.float32)
    return v / np.linalg.norm(v)


class SlowAdd:
    """An add handler: waits for `gate`, then writes one memory per message and completes, in one transaction."""

    def __init__(self) -> None:
        self.gate = asyncio.Event()
        self.started = asyncio.Event()
        self.applied: list[tuple[uuid.UUID, int]] = []  # (job, attempt) whose transaction committed

    async def __call__(self, db: Database, providers: Providers, job: ClaimedJob) -> None:
        self.started.set()
        await self.gate.wait()
        texts = [m["content"] for m in job.payload["messages"]]
        items = [
            NewMemory(
                text=t, hash=f"{job.id}-{i}", scope=Scope(user_id=job.payload["user_id"]), embedding=_vec(i), index=i
            )
            for i, t in enumerate(texts)
        ]
        async with db.transaction() as conn:
            outcomes = await MemoryWriter(conn).insert_new(job.project_id, items, AddDefaults(), event_id=job.id)
            await jobs.complete(JobRepository(conn), job, [{"id": str(o.id), "event": o.event.value} for o in outcomes])
        self.applied.append((job.id, job.attempt))


def ctx(
    db: Database,
    handler: Any,
    *,
    lease_s: float = 30,
    heartbeat_s: float = 10,
    max_attempts: int = 5,
    backoff_s: float = 0.05,
) -> jobs.JobContext:
    return jobs.JobContext(
        db=db,
        providers=None,  # type: ignore[arg-type]  # the test handlers use none
        handlers={JobKind.ADD: handler},
        lease_s=lease_s,
        heartbeat_s=heartbeat_s,
        policy=jobs.RetryPolicy(max_attempts, backoff_s, 1.0),
    )


PAYLOAD = {"messages": [{"role": "user", "content": "a"}, {"role": "user", "content": "b"}], "user_id": "u1"}


async def test_expired_lease_is_taken_over_and_the_stale_claim_applies_nothing(jdb: Database, project: str) -> None:
    handler = SlowAdd()
    job_id = await insert_job(jdb, project, PAYLOAD, dispatched=True)
    # Runner A claims with a short lease and no heartbeat (a stalled or partitioned runner).
    a = asyncio.create_task(jobs.run(ctx(jdb, handler, lease_s=0.5, heartbeat_s=3600), job_id))
    await handler.started.wait()
    # While A's lease is live, nobody else can claim the job.
    assert (await jobs.run(ctx(jdb, SlowAdd()), job_id)).status is None
    await asyncio.sleep(0.8)
    # Runner B takes it over after the lease expired and completes it.
    b_handler = SlowAdd()
    b_handler.gate.set()
    b = await jobs.run(ctx(jdb, b_handler), job_id)
    assert b.status is JobStatus.SUCCEEDED
    # A wakes up: its completion no longer holds the claim, so its transaction rolls back.
    handler.gate.set()
    a_out = await a
    assert a_out.status is None
    assert handler.applied == []
    assert b_handler.applied == [(job_id, 2)]
    row = await event_row(jdb, job_id)
    assert (row.status, row.attempts, row.lease_owner) == ("SUCCEEDED", 2, None)
    assert await memory_count(jdb, project, event_id=job_id) == 2  # applied once


async def test_only_the_claim_holding_the_job_finishes_it(jdb: Database, project: str) -> None:
    """A stalled runner wakes while the runner that took its job over is still working: it must not finish it."""
    a_handler, b_handler = SlowAdd(), SlowAdd()
    job_id = await insert_job(jdb, project, PAYLOAD, dispatched=True)
    a = asyncio.create_task(jobs.run(ctx(jdb, a_handler, lease_s=0.5, heartbeat_s=3600), job_id))
    await a_handler.started.wait()
    await asyncio.sleep(0.8)
    b = asyncio.create_task(jobs.run(ctx(jdb, b_handler), job_id))
    await b_handler.started.wait()  # B holds the job (attempt 2) and is working
    a_handler.gate.set()
    assert (await a).status is None  # A's completion is refused and its writes roll back
    assert a_handler.applied == []
    row = await event_row(jdb, job_id)
    assert (row.status, row.attempts) == ("RUNNING", 2)
    b_handler.gate.set()
    assert (await b).status is JobStatus.SUCCEEDED
    assert b_handler.applied == [(job_id, 2)]
    assert await memory_count(jdb, project, event_id=job_id) == 2


async def test_heartbeat_keeps_a_long_job_its_lease(jdb: Database, project: str) -> None:
    handler = SlowAdd()
    job_id = await insert_job(jdb, project, PAYLOAD, dispatched=True)
    a = asyncio.create_task(jobs.run(ctx(jdb, handler, lease_s=0.6, heartbeat_s=0.15), job_id))
    await handler.started.wait()
    for _ in range(6):  # 1.5 s: well past the 0.6 s lease
        await asyncio.sleep(0.25)
        assert (await jobs.run(ctx(jdb, SlowAdd()), job_id)).status is None
    handler.gate.set()
    assert (await a).status is JobStatus.SUCCEEDED
    row = await event_row(jdb, job_id)
    assert (row.status, row.attempts) == ("SUCCEEDED", 1)


async def test_a_failing_job_is_retried_with_backoff_then_failed_with_its_reason(jdb: Database, project: str) -> None:
    calls: list[int] = []

    async def boom(db: Database, providers: Providers, job: ClaimedJob) -> None:
        calls.append(job.attempt)
        raise RuntimeError("embedder exploded")

    c = ctx(jdb, boom, max_attempts=3, backoff_s=0.2)
    job_id = await insert_job(jdb, project, PAYLOAD, dispatched=True)
    first = await jobs.run(c, job_id)
    assert first.status is JobStatus.PENDING
    assert first.retry_in_s == pytest.approx(0.2)
    row = await event_row(jdb, job_id)
    assert row.status == "PENDING"
    assert row.error == jobs.INTERNAL_FAILURE  # an internal exception's text goes to the log, not the event
    assert (await jobs.run(c, job_id)).status is None  # not before its backoff has elapsed
    await asyncio.sleep(0.25)
    second = await jobs.run(c, job_id)
    assert second.retry_in_s == pytest.approx(0.4)  # exponential
    await asyncio.sleep(0.45)
    third = await jobs.run(c, job_id)
    assert third.status is JobStatus.FAILED
    assert third.retry_in_s is None
    assert calls == [1, 2, 3]
    row = await event_row(jdb, job_id)
    assert row.status == "FAILED"
    assert row.error == f"{jobs.INTERNAL_FAILURE} (gave up after 3 attempts)"
    assert row.completed_at is not None
    assert row.latency_ms is not None


async def test_a_job_whose_runners_keep_dying_ends_failed(jdb: Database, project: str) -> None:
    job_id = await insert_job(jdb, project, PAYLOAD, dispatched=True)
    maxes = {k.value: 2 for k in JobKind}
    for _ in range(2):  # two runners claim it and die (their leases expire)
        async with jdb.connect() as conn:
            assert await JobRepository(conn).claim(job_id, owner="dead", lease_s=0.05, max_attempts=maxes)
        await asyncio.sleep(0.1)
    async with jdb.connect() as conn:
        assert await JobRepository(conn).claim(job_id, owner="third", lease_s=5, max_attempts=maxes) is None
    row = await event_row(jdb, job_id)
    assert row.status == "FAILED"
    assert "gave up after 2 attempts" in row.error
    assert "lease expired" in row.error


async def test_jobs_of_one_scope_apply_in_acceptance_order(jdb: Database, project: str) -> None:
    handler = SlowAdd()
    handler.gate.set()
    c = ctx(jdb, handler)
    older = await insert_job(jdb, project, {**PAYLOAD, "user_id": "ordered"}, dispatched=True)
    newer = await insert_job(jdb, project, {**PAYLOAD, "user_id": "ordered"}, dispatched=True)
    other = await insert_job(jdb, project, {**PAYLOAD, "user_id": "someone-else"}, dispatched=True)
    # The newer job is delivered first: it waits while the older one of its scope is open.
    assert (await jobs.run(c, newer)).status is None
    assert (await event_row(jdb, newer)).status == "PENDING"
    # Another scope is not held up.
    assert (await jobs.run(c, other)).status is JobStatus.SUCCEEDED
    first = await jobs.run(c, older)
    assert first.status is JobStatus.SUCCEEDED
    assert (await jobs.run(c, newer)).status is JobStatus.SUCCEEDED  # its scope's turn has come
    assert [j for j, _ in handler.applied] == [other, older, newer]


async def test_the_sweep_hands_out_every_due_job_once_and_no_live_claim(jdb: Database, project: str) -> None:
    n = 1203  # more than two pages
    async with jdb.connect() as conn:
        await conn.execute(
            text(
                "INSERT INTO events (id, project_id, event_type, status, payload) "
                "SELECT gen_random_uuid(), :p, 'WEBHOOK', 'PENDING', '{}'::jsonb FROM generate_series(1, :n)"
            ),
            {"p": project, "n": n},
        )
    foreign = uuid.uuid4()  # an open event that is not a job kind (another feature's row)
    async with jdb.connect() as conn:
        await conn.execute(
            text(
                "INSERT INTO events (id, project_id, event_type, status) VALUES (:id, :p, 'NOT_A_JOB_KIND', 'PENDING')"
            ),
            {"id": foreign, "p": project},
        )
    live = await insert_job(jdb, project, {**PAYLOAD, "user_id": "live"}, dispatched=True)
    expired = await insert_job(jdb, project, {**PAYLOAD, "user_id": "expired"}, dispatched=True)
    maxes = {k.value: 5 for k in JobKind}
    async with jdb.connect() as conn:
        repo = JobRepository(conn)
        assert await repo.claim(live, owner="sibling", lease_s=60, max_attempts=maxes)
        assert await repo.claim(expired, owner="dead", lease_s=0.01, max_attempts=maxes)
    await asyncio.sleep(0.05)
    # Two processes sweep at once: between them every due job is handed out exactly once.
    a, b = await asyncio.gather(jobs.take_due(jdb, redispatch_after_s=60), jobs.take_due(jdb, redispatch_after_s=60))
    handed = [j.id for j in a + b]
    assert len(handed) == len(set(handed)) == n + 1
    assert expired in handed
    assert live not in handed
    assert foreign not in handed
    assert await jobs.take_due(jdb, redispatch_after_s=60) == []  # all marked dispatched
    row = await event_row(jdb, live)
    assert (row.status, row.lease_owner) == ("RUNNING", "sibling")  # a sibling's live job is left alone
    async with jdb.connect() as conn:
        await conn.execute(text("DELETE FROM events WHERE project_id = :p"), {"p": project})


async def test_a_stopping_runner_gives_back_every_job_it_holds_and_none_of_a_sibling(
    jdb: Database, project: str
) -> None:
    """`hand_back` goes by owner: a claim whose task was cancelled before it learned of its own claim
    (the claim committed, the task did not see the result) is given back too, at once, with no lease wait."""
    maxes = {k.value: 5 for k in JobKind}
    mine = await insert_job(jdb, project, {**PAYLOAD, "user_id": "mine"}, dispatched=True)
    queued = await insert_job(jdb, project, {**PAYLOAD, "user_id": "queued"}, dispatched=True)
    sibling = await insert_job(jdb, project, {**PAYLOAD, "user_id": "sibling"}, dispatched=True)
    async with jdb.connect() as conn:
        repo = JobRepository(conn)
        assert await repo.claim(mine, owner="stopping", lease_s=120, max_attempts=maxes)
        assert await repo.claim(sibling, owner="live-sibling", lease_s=120, max_attempts=maxes)
    assert await jobs.take_due(jdb, redispatch_after_s=120) == []  # nothing due: leases and hand-offs are fresh
    await jobs.hand_back(jdb, "stopping", [queued])
    row = await event_row(jdb, mine)
    assert (row.status, row.lease_owner, row.error) == ("PENDING", None, "runner stopped")
    assert sorted(j.id for j in await jobs.take_due(jdb, redispatch_after_s=120)) == sorted([mine, queued])
    row = await event_row(jdb, sibling)
    assert (row.status, row.lease_owner) == ("RUNNING", "live-sibling")  # a sibling's claim is left alone
    handler = SlowAdd()
    handler.gate.set()
    assert (await jobs.run(ctx(jdb, handler), mine)).status is JobStatus.SUCCEEDED
    assert (await event_row(jdb, mine)).attempts == 2
    async with jdb.connect() as conn:
        await conn.execute(text("DELETE FROM events WHERE id = :id"), {"id": sibling})


async def test_a_job_busy_after_its_commit_is_not_taken_for_lost(jdb: Database, project: str) -> None:
    """The heartbeat of a job that has committed its outcome but not yet returned (work after the commit)
    finds no RUNNING claim: that is the job's own finish, not a takeover. It must not cancel the handler,
    and the scope's next job runs once it is done."""

    async def commit_then_linger(db: Database, providers: Providers, job: ClaimedJob) -> None:
        async with db.transaction() as conn:
            await jobs.complete(JobRepository(conn), job, [])
        await asyncio.sleep(0.4)  # several heartbeats after the commit

    first = await insert_job(jdb, project, {**PAYLOAD, "user_id": "linger"}, dispatched=True)
    second = await insert_job(jdb, project, {**PAYLOAD, "user_id": "linger"}, dispatched=True)
    c = ctx(jdb, commit_then_linger, heartbeat_s=0.05)
    assert (await jobs.run(c, second)).status is None  # waits for the older job of its scope
    out = await jobs.run(c, first)
    assert out.status is JobStatus.SUCCEEDED
    assert (await jobs.run(c, second)).status is JobStatus.SUCCEEDED


async def test_a_runner_whose_job_was_taken_over_stops_working_on_it(jdb: Database, project: str) -> None:
    a_handler, b_handler = SlowAdd(), SlowAdd()
    job_id = await insert_job(jdb, project, {**PAYLOAD, "user_id": "taken"}, dispatched=True)
    # A's lease (0.3 s) runs out before its first heartbeat (0.6 s): a stalled runner
    a = asyncio.create_task(jobs.run(ctx(jdb, a_handler, lease_s=0.3, heartbeat_s=0.6), job_id))
    await a_handler.started.wait()
    await asyncio.sleep(0.4)
    b = asyncio.create_task(jobs.run(ctx(jdb, b_handler), job_id))
    await b_handler.started.wait()  # B holds attempt 2
    # A's next heartbeat finds the later attempt and stops A's handler, which never gets to apply anything
    assert (await asyncio.wait_for(a, 5)).status is None
    assert a_handler.applied == []
    b_handler.gate.set()
    assert (await b).status is JobStatus.SUCCEEDED
    assert b_handler.applied == [(job_id, 2)]


async def test_the_sweep_repairs_blocks_an_add_missed_while_the_job_before_it_finished(
    jdb: Database, project: str
) -> None:
    """Two races the sweep puts right: a scope's head left blocked (its predecessor finished as it was accepted:
    it would never run) and a job accepted unblocked behind an open one (every claim would look at it)."""
    scope = {**PAYLOAD, "user_id": "repaired"}
    head, second, third = [await insert_job(jdb, project, scope, dispatched=True) for _ in range(3)]

    async def state(job: uuid.UUID) -> tuple[bool, bool, bool]:  # (blocked, ready now, handed out)
        q = (
            "SELECT not_before = 'infinity' AS blocked, coalesce(not_before <= now(), true) AS ready, "
            "dispatched_at IS NOT NULL AS out FROM events WHERE id = :i"
        )
        async with jdb.connect() as conn:
            r = (await conn.execute(text(q), {"i": job})).one()
        return r.blocked, r.ready, r.out

    assert await state(second) == (True, False, True)  # accepted behind the head: blocked until its turn
    async with jdb.transaction() as conn:  # the state those races leave
        done = "UPDATE events SET status = 'SUCCEEDED', completed_at = now() WHERE id = :i"
        await conn.execute(text(done), {"i": head})
        await conn.execute(text("UPDATE events SET not_before = NULL WHERE id = :i"), {"i": third})
    maxes = {k.value: 3 for k in JobKind}
    assert await jobs.repair(jdb, max_attempts=maxes) == 1
    assert await state(second) == (False, True, False)  # the head: ready, and left for the next hand-off
    assert (await state(third))[0] is True  # behind the head: blocked until its turn
    assert await jobs.repair(jdb, max_attempts=maxes) == 0  # nothing left to put right
