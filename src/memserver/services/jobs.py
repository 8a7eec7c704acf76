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
import logging
import os
import socket
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from pydantic import ValidationError

from memserver.domain.jobs import JobKind, JobStatus
from memserver.errors import MemserverError, TooManyRequests
from memserver.providers.errors import ProviderError, public_message
from memserver.providers.registry import Providers
from memserver.storage.db import Database
from memserver.storage.repositories.job_claims import ClaimRepository
from memserver.storage.repositories.jobs import ORDERED_KINDS, ClaimedJob, DueJob, JobRepository

log = logging.getLogger(__name__)


class JobQueue(Protocol):
    """Carries job ids to whoever runs them (in-process tasks, or Celery workers).

    `submit` never blocks and never raises: a hand-off that fails is left to the recovery sweep. `kind`
    lets a runner keep webhook deliveries apart from other jobs (None: run with the other jobs).
    `max_pending` bounds a project's open adds (back-pressure; None = unbounded).
    """

    max_pending: int | None
    retry_after_s: float

    def submit(self, job_id: uuid.UUID, kind: JobKind | None = None) -> None: ...


class JobFailed(Exception):
    """A job failed for a reason its event should show (the message is the reason); not retried."""


class JobRetry(Exception):
    """This attempt failed and the job should be retried with backoff; `record` is kept on the event."""

    def __init__(self, message: str, record: dict[str, Any] | None = None):
        super().__init__(message)
        self.record = record


Handler = Callable[[Database, Providers, ClaimedJob], Awaitable[None]]


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 5
    backoff_s: float = 2.0  # first retry after this, doubling each time
    backoff_max_s: float = 300.0

    def delay(self, attempt: int) -> float:
        return float(min(self.backoff_max_s, self.backoff_s * 2 ** max(0, attempt - 1)))


@dataclass(frozen=True)
class Lane:
    """The kinds of jobs a runner slot takes, and how much of the lane one project may hold at once.

    `cap`: jobs of one project running at once (None: no cap); `hard=False` applies it only while another
    project has a job ready (an idle system still gives one project every slot), `hard=True` always."""

    name: str
    kinds: frozenset[JobKind]
    cap: int | None = None
    hard: bool = False


JOBS = "jobs"  # adds and every other kind: the slots adds need
WEBHOOKS = "webhooks"  # deliveries: they wait on receivers other people run, on slots of their own


def default_lanes() -> dict[str, Lane]:
    return {
        JOBS: Lane(JOBS, frozenset(k for k in JobKind if k is not JobKind.WEBHOOK)),
        WEBHOOKS: Lane(WEBHOOKS, frozenset({JobKind.WEBHOOK})),
    }


def lane_name(kind: JobKind | None) -> str:
    """The lane a job of this kind runs in (None: the jobs lane)."""
    return WEBHOOKS if kind is JobKind.WEBHOOK else JOBS


@dataclass(frozen=True)
class JobContext:
    """What a runner needs to run jobs: one per process (or per worker process)."""

    db: Database
    providers: Providers
    handlers: Mapping[JobKind, Handler]
    lease_s: float = 30.0
    heartbeat_s: float = 10.0
    policy: RetryPolicy = RetryPolicy()
    policies: Mapping[JobKind, RetryPolicy] = field(default_factory=dict)  # per-kind overrides
    owner: str = field(default_factory=lambda: new_owner())
    lanes: Mapping[str, Lane] = field(default_factory=default_lanes)

    def lane(self, kind: JobKind | None) -> Lane:
        return self.lanes[lane_name(kind)]

    def policy_for(self, kind: JobKind) -> RetryPolicy:
        return self.policies.get(kind, self.policy)

    def max_attempts(self) -> dict[str, int]:
        """Attempts allowed per kind (a claim does not know the kind before it takes the row)."""
        return {k.value: self.policy_for(k).max_attempts for k in JobKind}


def new_owner() -> str:
    """A claim owner id: unique per runner instance (host, pid, random)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


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
    """Claim the fairest ready job of the lane (across projects, then scopes) and run it under a lease."""
    async with ctx.db.transaction() as conn:
        job = await ClaimRepository(conn).claim_next(
            kinds=lane.kinds,
            owner=ctx.owner,
            lease_s=ctx.lease_s,
            max_attempts=ctx.max_attempts(),
            cap=lane.cap,
            hard=lane.hard,
        )
    if job is None:
        return RunOutcome(None)
    status, retry_in = await _run_claimed(ctx, job, ctx.policy_for(job.kind))
    return RunOutcome(status, retry_in, job.kind, job.id)


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


async def run(ctx: JobContext, job_id: uuid.UUID) -> RunOutcome:
    """Claim and run this one job under a lease, if it may run now (tests drive the lease mechanics with it);
    idempotent: a second delivery finds it claimed or done. Runners take the fairest job (`run_next`)."""
    async with ctx.db.connect() as conn:
        job = await JobRepository(conn).claim(
            job_id, owner=ctx.owner, lease_s=ctx.lease_s, max_attempts=ctx.max_attempts()
        )
    if job is None:
        return RunOutcome(None)
    status, retry_in = await _run_claimed(ctx, job, ctx.policy_for(job.kind))
    return RunOutcome(status, retry_in, job.kind, job.id)


async def _run_claimed(ctx: JobContext, job: ClaimedJob, policy: RetryPolicy) -> tuple[JobStatus | None, float | None]:
    lost = asyncio.Event()
    work = asyncio.ensure_future(ctx.handlers[job.kind](ctx.db, ctx.providers, job))
    beat = asyncio.ensure_future(_heartbeat(ctx, job, work, lost))
    try:
        await work
        return JobStatus.SUCCEEDED, None
    except asyncio.CancelledError:
        if lost.is_set():  # another runner took the job over: nothing to record
            log.warning("job %s attempt %d: lease lost, stopped", job.id, job.attempt)
            return None, None
        raise  # the runner is stopping: it gives back every job it holds (`hand_back`)
    except Exception as exc:  # recorded with its reason; never silently dropped
        reason = failure_reason(exc, job.id)
        if _final(exc):
            log.warning("job %s failed for a reason a retry cannot change: %s", job.id, reason)
            return await _record_failure(ctx, job, reason, final=True), None
        record = exc.record if isinstance(exc, JobRetry) else None
        if job.attempt >= policy.max_attempts:
            log.warning("job %s failed on its last attempt (%d): %s", job.id, job.attempt, reason)
            final = f"{reason} (gave up after {job.attempt} attempts)"
            return await _record_failure(ctx, job, final, final=True, record=record), None
        delay = policy.delay(job.attempt)
        log.warning("job %s attempt %d failed, retrying in %.1fs: %s", job.id, job.attempt, delay, reason)
        async with ctx.db.connect() as conn:
            released = await JobRepository(conn).release(job, error=reason, retry_in_s=delay, record=record)
        return (JobStatus.PENDING, delay) if released else (None, None)
    finally:
        beat.cancel()


async def _record_failure(
    ctx: JobContext, job: ClaimedJob, error: str, *, final: bool, record: dict[str, Any] | None = None
) -> JobStatus | None:
    results = [*job.results, record] if record is not None else job.results
    async with ctx.db.connect() as conn:
        done = await JobRepository(conn).finish(job, JobStatus.FAILED, results=results, error=error)
    return JobStatus.FAILED if done else None


def _final(exc: BaseException) -> bool:
    """Failures a retry cannot change: the job says so, its input is invalid, or the provider refused the
    request or answered with something invalid after its repair attempt (retrying would only spend more
    LLM calls). Timeouts, unreachable providers and database trouble are retried."""
    if isinstance(exc, JobFailed | ValidationError):
        return True
    status = getattr(exc, "status_code", None)
    return isinstance(status, int) and status < 503 and not isinstance(exc, JobRetry)


INTERNAL_FAILURE = "an internal error stopped this job; the server log has the details under this event's id"


def failure_reason(exc: BaseException, event_id: uuid.UUID | None = None) -> str:
    """Why a job failed, as its event shows it. Clients read it, so it is memserver's own words: the message of
    a memserver error, a provider failure's public message; anything else (a database or driver error, a
    bug) is INTERNAL_FAILURE, its type and text (SQL, internal names and hosts) going to the log only."""
    if isinstance(exc, ProviderError):
        log.warning("provider failure: %s", exc)
        return public_message(exc)
    if isinstance(exc, JobRetry | JobFailed | MemserverError):
        return str(exc)
    log.error("event %s: internal error", event_id, exc_info=exc)
    return INTERNAL_FAILURE


async def _heartbeat(ctx: JobContext, job: ClaimedJob, work: asyncio.Future[None], lost: asyncio.Event) -> None:
    """Renew the lease while the handler works; stop the handler if the claim was taken over.

    A claim no longer RUNNING may be the handler's own commit (it finished and has work left after it):
    only a later attempt holding the job means another runner took it over."""
    while not work.done():
        await asyncio.sleep(ctx.heartbeat_s)
        try:
            async with ctx.db.connect() as conn:
                repo = JobRepository(conn)
                if await repo.renew(job, lease_s=ctx.lease_s):
                    continue
                taken = await repo.taken_over(job)
        except Exception:  # a database blip: the next beat tries again before the lease runs out
            log.warning("job %s: lease renewal failed", job.id, exc_info=True)
            continue
        if taken:
            lost.set()
            work.cancel()
        return


async def take_due(
    db: Database, *, redispatch_after_s: float, page: int = 500, max_attempts: dict[str, int] | None = None
) -> list[DueJob]:
    """Every job that needs a hand-off now (failed hand-offs, lost messages, expired leases, outbox rows).

    Pages through all of them; each is marked dispatched, so concurrent sweepers split the work. First, with
    `max_attempts`, a job whose runners kept dying on its last attempt ends FAILED (it would block its scope),
    and a scope's next job still blocked although nothing is before it any more is unblocked.
    """
    if max_attempts is not None:
        async with db.connect() as conn:
            repo = JobRepository(conn)
            failed = await repo.fail_abandoned(max_attempts)
            stranded = await repo.unblock_stranded()
        if failed:
            log.warning("%d job(s) failed: their runners stopped on their last attempt", failed)
        if stranded:
            log.info("%d job(s) unblocked: the job before them had finished as they were accepted", stranded)
    out: list[DueJob] = []
    while True:
        async with db.connect() as conn:
            batch = await JobRepository(conn).take_due(redispatch_after_s=redispatch_after_s, limit=page)
        out += batch
        if len(batch) < page:
            return out


async def hand_back(db: Database, owner: str, queued: list[uuid.UUID]) -> None:
    """A stopping runner gives its jobs back at once, not after their lease: every job it holds a claim
    on (its running jobs), and the jobs it was woken for that are still waiting (`queued`). The next sweep
    of any runner takes them."""
    async with db.connect() as conn:
        repo = JobRepository(conn)
        given = await repo.hand_back(owner)
        if queued:
            await repo.undispatch(queued)
    if given or queued:
        log.info("handed back %d running and %d queued job(s)", len(given), len(queued))


async def undispatch(db: Database, job_ids: list[uuid.UUID]) -> None:
    """Leave these jobs to the next sweep (their hand-off failed, or the runner holding them stops)."""
    if job_ids:
        async with db.connect() as conn:
            await JobRepository(conn).undispatch(job_ids)
