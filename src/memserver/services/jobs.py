"""Asynchronous work: a job is an `events` row (the source of truth); a JobQueue only wakes a runner.

An accepted job is committed PENDING before it is queued, so a lost queue message, a failed
hand-off or a crashed runner never loses it: every runner sweeps for due jobs on a schedule
(`take_due`). A woken runner slot pulls the fairest ready job of its lane (`run_next`: across
projects, then scopes; `storage.repositories.job_claims`) and claims it under a lease that a
heartbeat renews while the handler works; a handler records the outcome with `complete()` inside
the transaction that applies it, so a job's effects and its SUCCEEDED status commit together, and
only while the claim still holds the job: a runner that lost its lease (it stalled, another runner
took over) rolls back.
A handler that fails is retried with exponential backoff up to `max_attempts`, then FAILED with
its reason; `JobFailed` is final at once.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import uuid
from dataclasses import dataclass, field
from typing import Any

from memserver.domain.jobs import JobKind, JobStatus
from memserver.errors import TooManyRequests
from memserver.services.job_context import (
    INTERNAL_FAILURE,
    JOBS,
    WEBHOOKS,
    BatchHandler,
    Batching,
    Handler,
    JobContext,
    JobFailed,
    JobQueue,
    JobRetry,
    Lane,
    RetryPolicy,
    default_lanes,
    failure_reason,
    is_final,
    lane_name,
    new_owner,
)
from memserver.storage.db import Database
from memserver.storage.repositories.job_claims import ClaimRepository
from memserver.storage.repositories.job_sweep import DueJob, SweepRepository
from memserver.storage.repositories.jobs import ORDERED_KINDS, ClaimedJob, JobRepository

log = logging.getLogger(__name__)

__all__ = [  # with the job context's names (services.job_context), which callers reach through here
    "INTERNAL_FAILURE",
    "JOBS",
    "WEBHOOKS",
    "BatchHandler",
    "Batching",
    "Drained",
    "Handler",
    "JobContext",
    "JobFailed",
    "JobQueue",
    "JobRetry",
    "Lane",
    "RetryPolicy",
    "RunOutcome",
    "complete",
    "default_lanes",
    "drain",
    "failure_reason",
    "hand_back",
    "is_final",
    "lane_name",
    "new_owner",
    "record_spent",
    "repair",
    "run",
    "run_next",
    "submit",
    "take_due",
    "undispatch",
]


@dataclass(frozen=True)
class RunOutcome:
    """What a runner slot did: the job it ran (None: nothing was ready), its status, and when to wake for its
    retry (`retry_in_s`: released with backoff)."""

    status: JobStatus | None  # None: not claimed (nothing ready, held elsewhere, done, not due, waiting its turn)
    retry_in_s: float | None = None
    kind: JobKind | None = None  # of the job run (None when it was not claimed)
    job_id: uuid.UUID | None = None  # of the job run


async def submit(
    db: Database,
    queue: JobQueue,
    project_id: uuid.UUID,
    kind: JobKind,
    payload: Any,
    *,
    max_open: int | None = None,
) -> uuid.UUID:
    """Accept a job: durable first (PENDING row committed), then handed to the queue.

    A project that already has the queue's `max_pending` open adds (or, for another kind, `max_open`
    open jobs of that kind) is refused with 429 and nothing is written (back-pressure); what was
    accepted before still runs.
    """
    job_id = uuid.uuid4()
    limit = queue.max_pending
    async with db.connect() as conn:
        repo = JobRepository(conn)
        if limit is not None and kind in ORDERED_KINDS and await repo.count_open(project_id) >= limit:
            raise TooManyRequests(
                f"This project already has {limit} asynchronous adds waiting to run; retry later.",
                extra={"retry_after": queue.retry_after_s},
            )
        if (
            max_open is not None
            and kind not in ORDERED_KINDS
            and await repo.count_open_of_kind(project_id, kind) >= max_open
        ):
            raise TooManyRequests(
                f"This project already has {max_open} {kind.value.lower()} jobs waiting to run; retry later.",
                extra={"retry_after": queue.retry_after_s},
            )
        await repo.insert_pending(project_id, job_id, kind, payload)
    queue.submit(job_id, kind)  # after the commit: the runner must find the row
    return job_id


async def complete(
    repo: JobRepository, job: ClaimedJob, results: list[dict[str, Any]], *, metadata: dict[str, Any] | None = None
) -> None:
    """Mark a job SUCCEEDED from inside the transaction that applied it; raises if the claim was lost.

    The raise rolls that transaction back, so a runner whose lease was taken over applies nothing.
    """
    if not await repo.finish(job, JobStatus.SUCCEEDED, results=results, metadata=metadata):
        raise JobFailed(f"job {job.id} is no longer held by this claim (attempt {job.attempt})")


async def run_next(ctx: JobContext, lane: Lane) -> RunOutcome:
    """Claim the fairest ready job of the lane (across projects, then scopes), with the jobs queued behind it
    that may run with it (`Batching`), and run them under one lease."""
    async with ctx.db.transaction() as conn:
        claims = ClaimRepository(conn)
        job = await claims.claim_next(
            kinds=lane.kinds,
            owner=ctx.owner,
            lease_s=ctx.lease_s,
            max_attempts=ctx.max_attempts(),
            cap=lane.cap,
            hard=lane.hard,
        )
        batch = [job, *await _followers(ctx, claims, job)] if job is not None else []
    if job is None:
        return RunOutcome(None)
    status, retry_in = await _run_claimed(ctx, batch)
    return RunOutcome(status, retry_in, job.kind, job.id)


async def _followers(ctx: JobContext, claims: ClaimRepository, head: ClaimedJob) -> list[ClaimedJob]:
    rule = ctx.batching.get(head.kind)
    if rule is None or rule.max_jobs < 2 or head.attempt > 1:
        return []
    queued = await claims.followers(head, rule.max_jobs - 1)
    fresh = list(itertools.takewhile(lambda q: q.status == JobStatus.PENDING.value and q.attempts == 0, queued))
    n = rule.joins(head.payload, [q.payload for q in fresh]) if fresh else 0
    return await claims.claim_followers(head, fresh[:n], owner=ctx.owner, lease_s=ctx.lease_s) if n else []


@dataclass
class Drained:
    """What `drain` ran: how many jobs, the retries to wake for (job, kind, delay), and whether it stopped at
    its bound with jobs possibly still ready (then the caller wakes a runner again)."""

    lane: str
    ran: int = 0
    retries: list[tuple[uuid.UUID, JobKind, float]] = field(default_factory=list)
    more: bool = False


async def drain(ctx: JobContext, woken_by: uuid.UUID, *, max_jobs: int) -> Drained:
    """Run the lane's ready jobs one after the other until none is ready, or `max_jobs` have run.

    A queue message only wakes a runner (`woken_by` names the lane through its job's kind); which job runs is
    the fair claim's choice. Draining is what makes a scope's next add run when its predecessor finishes: the
    message that woke a runner while the predecessor ran found nothing ready and is spent."""
    async with ctx.db.connect() as conn:
        lane = ctx.lane(await ClaimRepository(conn).kind_of(woken_by))
    out = Drained(lane.name)
    while out.ran < max_jobs:
        outcome = await run_next(ctx, lane)
        if outcome.job_id is None or outcome.kind is None:
            return out
        out.ran += 1
        if outcome.retry_in_s is not None:
            out.retries.append((outcome.job_id, outcome.kind, outcome.retry_in_s))
    out.more = True
    return out


async def record_spent(db: Database, job: ClaimedJob, spent: dict[str, int]) -> None:
    """A failing attempt's LLM use, added to its event's before the failure is recorded (`usage.as_metadata`):
    the event and the project's usage show what a job cost, also when it failed."""
    if not spent.get("llm_calls"):
        return
    try:
        async with db.connect() as conn:
            await JobRepository(conn).add_spent(job, spent)
    except Exception:  # the failure being handled matters more than its cost
        log.warning("job %s: its LLM usage could not be recorded", job.id, exc_info=True)


async def run(ctx: JobContext, job_id: uuid.UUID) -> RunOutcome:
    """Claim and run this one job under a lease, if it may run now (tests drive the lease mechanics with it);
    idempotent: a second delivery finds it claimed or done. Runners take the fairest job (`run_next`)."""
    async with ctx.db.connect() as conn:
        job = await JobRepository(conn).claim(
            job_id, owner=ctx.owner, lease_s=ctx.lease_s, max_attempts=ctx.max_attempts()
        )
    if job is None:
        return RunOutcome(None)
    status, retry_in = await _run_claimed(ctx, [job])
    return RunOutcome(status, retry_in, job.kind, job.id)


async def _run_claimed(ctx: JobContext, batch: list[ClaimedJob]) -> tuple[JobStatus | None, float | None]:
    """Run a claimed job (or batch) while a heartbeat renews its lease; record what failed. The outcome of the
    first job: its status, and when it is due again if it was released with backoff."""
    head = batch[0]
    lost = asyncio.Event()
    work = asyncio.ensure_future(_work(ctx, batch))
    beat = asyncio.ensure_future(_heartbeat(ctx, batch, work, lost))
    try:
        alone = await work
    except asyncio.CancelledError:
        if lost.is_set():  # another runner took the job over: nothing to record
            log.warning("job %s attempt %d: lease lost, stopped", head.id, head.attempt)
            return None, None
        raise  # the runner is stopping: it gives back every job it holds (`hand_back`)
    except Exception as exc:  # recorded with its reason; never silently dropped
        if len(batch) == 1:
            return await _failed(ctx, head, exc)
        # Which job the shared failure came from is unknown: each runs again alone, the first after its backoff,
        # the others each once the one before it is done.
        outcomes = [await _again_alone(ctx, job, exc, len(batch), blocked=i > 0) for i, job in enumerate(batch)]
        return outcomes[0]
    finally:
        beat.cancel()
    outcome: tuple[JobStatus | None, float | None] = (JobStatus.SUCCEEDED, None)
    for job, own in alone:  # failed on its own (its input), before the shared work
        failed = await _failed(ctx, job, own)
        if job.id == head.id:
            outcome = failed
    return outcome


async def _work(ctx: JobContext, batch: list[ClaimedJob]) -> list[tuple[ClaimedJob, Exception]]:
    head = batch[0]
    if len(batch) == 1:
        await ctx.handlers[head.kind](ctx.db, ctx.providers, head)
        return []
    return await ctx.batching[head.kind].handler(ctx.db, ctx.providers, batch)


async def _failed(ctx: JobContext, job: ClaimedJob, exc: Exception) -> tuple[JobStatus | None, float | None]:
    """Record a failed attempt: FAILED when a retry cannot help or it was the last, else released with backoff."""
    policy = ctx.policy_for(job.kind)
    reason = failure_reason(exc, job.id)
    record = exc.record if isinstance(exc, JobRetry | JobFailed) else None
    if is_final(exc):
        log.warning("job %s failed for a reason a retry cannot change: %s", job.id, reason)
        return await _record_failure(ctx, job, reason, final=True, record=record), None
    if job.attempt >= policy.max_attempts:
        log.warning("job %s failed on its last attempt (%d): %s", job.id, job.attempt, reason)
        final = f"{reason} (gave up after {job.attempt} attempts)"
        return await _record_failure(ctx, job, final, final=True, record=record), None
    delay = policy.delay(job.attempt)
    log.warning("job %s attempt %d failed, retrying in %.1fs: %s", job.id, job.attempt, delay, reason)
    async with ctx.db.connect() as conn:
        released = await JobRepository(conn).release(job, error=reason, retry_in_s=delay, record=record)
    return (JobStatus.PENDING, delay) if released else (None, None)


async def _again_alone(
    ctx: JobContext, job: ClaimedJob, exc: Exception, size: int, *, blocked: bool
) -> tuple[JobStatus | None, float | None]:
    """A job of a batch whose shared work failed: released to run again alone (unless that was its last
    attempt); `blocked`: after the job before it in its scope."""
    policy = ctx.policy_for(job.kind)
    reason = f"{failure_reason(exc, job.id)} (in a run shared by {size} queued adds; each runs again alone)"
    if job.attempt >= policy.max_attempts:
        return await _record_failure(ctx, job, f"{reason} (gave up after {job.attempt} attempts)", final=True), None
    delay = policy.delay(job.attempt)
    async with ctx.db.connect() as conn:
        released = await JobRepository(conn).release(job, error=reason, retry_in_s=delay, blocked=blocked)
    if not released:
        return None, None
    return JobStatus.PENDING, (None if blocked else delay)


async def _record_failure(
    ctx: JobContext, job: ClaimedJob, error: str, *, final: bool, record: dict[str, Any] | None = None
) -> JobStatus | None:
    results = [*job.results, record] if record is not None else job.results
    async with ctx.db.connect() as conn:
        done = await JobRepository(conn).finish(job, JobStatus.FAILED, results=results, error=error)
    return JobStatus.FAILED if done else None


async def _heartbeat(ctx: JobContext, batch: list[ClaimedJob], work: asyncio.Future[Any], lost: asyncio.Event) -> None:
    """Renew the lease (of every job of a batch) while the handler works; stop the handler if the claim was
    taken over.

    A claim no longer RUNNING may be the handler's own commit (it finished and has work left after it):
    only a later attempt holding the (first) job means another runner took it over."""
    head = batch[0]
    while not work.done():
        await asyncio.sleep(ctx.heartbeat_s)
        try:
            async with ctx.db.connect() as conn:
                repo = JobRepository(conn)
                if len(batch) == 1 and await repo.renew(head, lease_s=ctx.lease_s):
                    continue
                if len(batch) > 1 and head.id in await repo.renew_all(batch, lease_s=ctx.lease_s):
                    continue
                taken = await repo.taken_over(head)
        except Exception:  # a database blip: the next beat tries again before the lease runs out
            log.warning("job %s: lease renewal failed", head.id, exc_info=True)
            continue
        if taken:
            lost.set()
            work.cancel()
        return


async def take_due(db: Database, *, redispatch_after_s: float, page: int = 500) -> list[DueJob]:
    """Every job that needs a hand-off now (failed hand-offs, lost messages, expired leases, outbox rows).

    Pages through all of them; each is marked dispatched, so concurrent sweepers split the work.
    """
    out: list[DueJob] = []
    while True:
        async with db.connect() as conn:
            batch = await SweepRepository(conn).take_due(redispatch_after_s=redispatch_after_s, limit=page)
        out += batch
        if len(batch) < page:
            return out


async def repair(db: Database, *, max_attempts: dict[str, int]) -> int:
    """The sweep's upkeep: a job whose runners kept dying on its last attempt ends FAILED (it would block its
    scope); a scope's head still blocked is unblocked (and left for the next `take_due`), a job waiting behind
    it unblocked is blocked (`SweepRepository.repair_blocks`). Returns how many were unblocked."""
    async with db.connect() as conn:
        failed = await JobRepository(conn).fail_abandoned(max_attempts)
        unblocked, blocked = await SweepRepository(conn).repair_blocks()
    if failed:
        log.warning("%d job(s) failed: their runners stopped on their last attempt", failed)
    if unblocked or blocked:
        log.info("%d job(s) unblocked, %d blocked: accepted while the job before them finished", unblocked, blocked)
    return unblocked


async def hand_back(db: Database, owner: str, queued: list[uuid.UUID]) -> None:
    """A stopping runner gives its jobs back at once, not after their lease: every job it holds a claim
    on (its running jobs), and the jobs it was woken for that are still waiting (`queued`). The next sweep
    of any runner takes them."""
    async with db.connect() as conn:
        repo = SweepRepository(conn)
        given = await repo.hand_back(owner)
        if queued:
            await repo.undispatch(queued)
    if given or queued:
        log.info("handed back %d running and %d queued job(s)", len(given), len(queued))


async def undispatch(db: Database, job_ids: list[uuid.UUID]) -> None:
    """Leave these jobs to the next sweep (their hand-off failed, or the runner holding them stops)."""
    if job_ids:
        async with db.connect() as conn:
            await SweepRepository(conn).undispatch(job_ids)
