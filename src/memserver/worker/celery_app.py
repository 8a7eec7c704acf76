"""The Celery app and its one task. Tasks are thin sync shims running the async service on the worker
process's event loop (`worker.loop`).

A task's message carries a job id, but only wakes a worker: the worker then runs the fairest ready jobs of
that job's lane, one after the other (`jobs.drain`: across projects, then scopes), so a quiet project's add
runs next even behind another project's 10,000 queued messages. Tasks are idempotent (a claim under a lease
decides who runs a job), with `acks_late`: a worker killed mid-task leaves its message for another worker,
and if the message is gone too, the job's lease expires and the recovery sweep (a timer thread in every
worker's main process) hands it out again.

Webhook deliveries travel on a queue of their own (`memserver.webhooks`): `memserver worker` consumes both
queues by default, and `--queues jobs` / `--queues webhooks` split them between workers so that receivers
that are slow to answer never hold a process an add needs.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from memserver.config import Settings
from memserver.domain.jobs import JobKind
from memserver.services import jobs
from memserver.worker.loop import worker_loop

JOBS_QUEUE = "celery"  # Celery's default queue, where every job went before deliveries had their own
WEBHOOKS_QUEUE = "memserver.webhooks"
QUEUES = {jobs.JOBS: JOBS_QUEUE, jobs.WEBHOOKS: WEBHOOKS_QUEUE}
# Jobs one task runs before it gives its process back to the queue (and wakes a worker again for the rest):
# a worker that also consumes the other queue takes that queue's messages between two drains.
DRAIN_MAX_JOBS = 20


def queue_for(kind: JobKind | None) -> str:
    """The Celery queue a job of this kind is published to."""
    return QUEUES[jobs.lane_name(kind)]


def _task(app: Any, name: str, **options: Any) -> Callable[[Callable[..., Any]], Any]:
    """`app.task(name=..., **options)`, typed: Celery ships no type information (the task object stays `Any`)."""
    decorator: Callable[[Callable[..., Any]], Any] = app.task(name=name, **options)
    return decorator


def make_celery(settings: Settings) -> Any:
    # Deferred: celery is an optional package (the `celery` extra); the in-process runner never needs it.
    from celery import Celery

    timeout = settings.worker.handoff_timeout_s
    app = Celery("memserver", broker=settings.redis.url, include=["memserver.worker.celery_app"])
    app.conf.update(
        task_acks_late=True,  # a worker killed mid-task leaves the message for another worker
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_ignore_result=True,
        broker_connection_retry_on_startup=True,
        broker_connection_timeout=timeout,
        broker_transport_options={"socket_connect_timeout": timeout, "socket_timeout": timeout},
        worker_hijack_root_logger=False,
    )

    @_task(app, "memserver.run_event", acks_late=True)
    def run_event(event_id: str) -> None:
        loop = worker_loop()
        drained = loop.run(jobs.drain(loop.ctx, uuid.UUID(event_id), max_jobs=DRAIN_MAX_JOBS))
        for job_id, kind, delay in drained.retries:  # wake a worker when the backoff ends
            run_event.apply_async(args=[str(job_id)], countdown=delay, queue=queue_for(kind))
        if drained.more:  # stopped at its bound: the lane may still have ready jobs
            run_event.apply_async(args=[event_id], queue=QUEUES[drained.lane])

    return app
