"""Asynchronous work: a job is an `events` row (the source of truth); a JobQueue only carries its id.

An accepted job is committed PENDING before it is queued, so a lost queue message or a crashed
runner never loses it: `recover()` re-queues what was left behind. A handler runs a claimed job and
records its outcome with `complete()` inside the transaction that applies it, so a job's effects
and its SUCCEEDED status commit together.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Protocol

from memserver.domain.jobs import JobKind, JobStatus
from memserver.providers.errors import ProviderError, public_message
from memserver.providers.registry import Providers
from memserver.storage.db import Database
from memserver.storage.repositories.jobs import ClaimedJob, JobRepository

log = logging.getLogger(__name__)


class JobQueue(Protocol):
    """Carries job ids to whoever runs them (in-process tasks, or Celery workers)."""

    def submit(self, job_id: uuid.UUID) -> None: ...


class JobFailed(Exception):
    """A job failed for a reason its event should show (the message is the reason)."""


Handler = Callable[[Database, Providers, ClaimedJob], Awaitable[None]]


async def create(db: Database, project_id: uuid.UUID, kind: JobKind, payload: Any) -> uuid.UUID:
    """A committed PENDING job (not yet handed to a runner)."""
    job_id = uuid.uuid4()
    async with db.connect() as conn:
        await JobRepository(conn).insert(project_id, job_id, kind, payload)
    return job_id


async def submit(db: Database, queue: JobQueue, project_id: uuid.UUID, kind: JobKind, payload: Any) -> uuid.UUID:
    job_id = await create(db, project_id, kind, payload)
    queue.submit(job_id)  # after the commit: the runner must find the row
    return job_id


async def claim(db: Database, job_id: uuid.UUID) -> ClaimedJob | None:
    async with db.connect() as conn:
        return await JobRepository(conn).claim(job_id)


async def complete(
    repo: JobRepository, job: ClaimedJob, results: list[dict[str, Any]], *, metadata: dict[str, Any] | None = None
) -> None:
    """Mark a job SUCCEEDED from inside the transaction that applied it; raises if the claim was lost."""
    if not await repo.finish(job.id, JobStatus.SUCCEEDED, results=results, metadata=metadata):
        raise JobFailed(f"job {job.id} is no longer held by this runner")


async def fail(db: Database, job: ClaimedJob, exc: BaseException) -> None:
    """Record why a job failed: clients read it, so a provider's own text goes to the log, not the event."""
    if isinstance(exc, ProviderError):
        log.warning("job %s: provider failure: %s", job.id, exc)
        error = public_message(exc)
    elif isinstance(exc, JobFailed) or getattr(exc, "status_code", None):
        error = str(exc)
    else:
        error = f"{type(exc).__name__}: {exc}"
    async with db.connect() as conn:
        await JobRepository(conn).finish(job.id, JobStatus.FAILED, error=error)


async def run(
    db: Database, providers: Providers, job_id: uuid.UUID, handlers: Mapping[JobKind, Handler]
) -> JobStatus | None:
    """Claim and run one job; idempotent (a second delivery finds it no longer PENDING)."""
    job = await claim(db, job_id)
    if job is None:
        return None
    try:
        await handlers[job.kind](db, providers, job)
        return JobStatus.SUCCEEDED
    except Exception as exc:  # recorded with its reason; never silently dropped
        if not isinstance(exc, JobFailed) and not getattr(exc, "status_code", None):
            log.exception("job %s failed", job_id)
        await fail(db, job, exc)
    return JobStatus.FAILED


async def recover(db: Database, *, stale_after_s: float = 600) -> list[uuid.UUID]:
    """Jobs a dead runner left behind: RUNNING past the lease goes back to PENDING; returns all PENDING."""
    async with db.connect() as conn:
        return await JobRepository(conn).recover(stale_after_s=stale_after_s)
