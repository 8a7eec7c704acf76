"""What running jobs takes: the queue protocol, handlers, retry policies, lanes and the per-process context, and
how a failure reads on its event. (`services.jobs` runs jobs with them.)"""

from __future__ import annotations

import logging
import os
import socket
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from pydantic import ValidationError

from memserver.domain.jobs import JobKind
from memserver.errors import MemserverError
from memserver.providers.errors import ProviderError, public_message
from memserver.providers.registry import Providers
from memserver.storage.db import Database
from memserver.storage.repositories.jobs import ClaimedJob

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
# Runs several jobs in one go (they complete in its transaction); returns the ones that failed on their own.
BatchHandler = Callable[[Database, Providers, list[ClaimedJob]], Awaitable[list[tuple[ClaimedJob, Exception]]]]


@dataclass(frozen=True)
class Batching:
    """Queued jobs of one scope that join a claimed job of this kind, all run by one handler call.

    `joins(claimed payload, payloads queued behind it, oldest first)` says how many of them may join. Only jobs
    never tried join (`attempts` 0), and only a job on its first attempt takes followers: a batch that failed
    runs again one job at a time, so a job that cannot succeed fails alone."""

    max_jobs: int
    joins: Callable[[dict[str, Any], list[dict[str, Any]]], int]
    handler: BatchHandler


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
    batching: Mapping[JobKind, Batching] = field(default_factory=dict)

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


def is_final(exc: BaseException) -> bool:
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
