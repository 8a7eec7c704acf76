"""Asynchronous work: a job is an `events` row (the source of truth); a JobQueue only carries its id.

An accepted job is committed PENDING before it is queued, so a lost queue message, a failed
hand-off or a crashed runner never loses it: every runner sweeps for due jobs on a schedule
(`take_due`). A runner claims a job under a lease that a heartbeat renews while the handler
works; a handler records the outcome with `complete()` inside the transaction that applies it, so
a job's effects and its SUCCEEDED status commit together, and only while the claim still holds
the job: a runner that lost its lease (it stalled, another runner took over) rolls back.
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
    """A job failed for a reason its event should show (the message is the reason); not retried. `record`, like
    a retry's, is kept on the event (a delivery's one attempt)."""

    def __init__(self, message: str, record: dict[str, Any] | None = None):
        super().__init__(message)
        self.record = record


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
    """What a runner does after one run: re-submit after `retry_in_s`, hand on to `next_id`."""

    status: JobStatus | None  # None: not claimed (held elsewhere, done, not due, or waiting its turn)
    retry_in_s: float | None = None
    next_id: uuid.UUID | None = None  # of the same kind
    kind: JobKind | None = None  # of the job run (None when it was not claimed)


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
    """Claim and run one job under a lease; idempotent (a second delivery finds it claimed or done)."""
    async with ctx.db.connect() as conn:
        job = await JobRepository(conn).claim(
            job_id, owner=ctx.owner, lease_s=ctx.lease_s, max_attempts=ctx.max_attempts()
        )
    if job is None:
        return RunOutcome(None)
    policy = ctx.policy_for(job.kind)
    status, retry_in = await _run_claimed(ctx, job, policy)
    next_id = None
    if status is not None and job.kind in ORDERED_KINDS:
        async with ctx.db.connect() as conn:
            next_id = await JobRepository(conn).next_in_scope(job.id)
    return RunOutcome(status, retry_in, next_id, job.kind)


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
        record = exc.record if isinstance(exc, JobRetry | JobFailed) else None
        if _final(exc):
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


async def take_due(db: Database, *, redispatch_after_s: float, page: int = 500) -> list[DueJob]:
    """Every job that needs a hand-off now (failed hand-offs, lost messages, expired leases, outbox rows).

    Pages through all of them; each is marked dispatched, so concurrent sweepers split the work.
    """
    out: list[DueJob] = []
    while True:
        async with db.connect() as conn:
            batch = await JobRepository(conn).take_due(redispatch_after_s=redispatch_after_s, limit=page)
        out += batch
        if len(batch) < page:
            return out


async def hand_back(db: Database, owner: str, queued: list[uuid.UUID]) -> None:
    """A stopping runner gives its jobs back at once, not after their lease: every job it holds a claim
    on (its running jobs), and the jobs handed to it that it has not started (`queued`). The next sweep
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
