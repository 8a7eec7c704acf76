"""Celery app. Tasks are thin sync shims running the async service on one event loop per process.

Tasks take a job id and are idempotent (a claim under a lease decides who runs a job), with
`acks_late`: a worker killed mid-task leaves its message for another worker, and if the message
is gone too, the job's lease expires and the recovery sweep (a timer thread in every worker's
main process) hands it out again.

Webhook deliveries travel on a queue of their own (`memserver.webhooks`): `memserver worker` consumes both
queues by default, and `--queues jobs` / `--queues webhooks` split them between workers so that receivers
that are slow to answer never hold a process an add needs.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import uuid
from collections.abc import Callable
from typing import Any

from memserver.config import Settings, get_settings
from memserver.domain.jobs import JobKind

log = logging.getLogger(__name__)

JOBS_QUEUE = "celery"  # Celery's default queue, where every job went before deliveries had their own
WEBHOOKS_QUEUE = "memserver.webhooks"
QUEUES = {"jobs": JOBS_QUEUE, "webhooks": WEBHOOKS_QUEUE}


def queue_for(kind: JobKind | None) -> str:
    """The Celery queue a job of this kind is published to."""
    return WEBHOOKS_QUEUE if kind is JobKind.WEBHOOK else JOBS_QUEUE


class _Runtime:
    """Per worker process: one asyncio.Runner, one engine, one set of providers, one job context."""

    def __init__(self, settings: Settings, *, pool_size: int | None = None):
        from memserver.providers.registry import build_providers
        from memserver.services import dispatch
        from memserver.storage.db import Database

        url = settings.async_database_url()
        if url is None:
            raise RuntimeError("the Celery worker needs MEMSERVER_DATABASE_URL")
        db_settings = settings.db if pool_size is None else settings.db.model_copy(update={"pool_size": pool_size})
        self.runner = asyncio.Runner()
        self.db = Database(url, db_settings, application_name="memserver-worker")
        self.providers = build_providers(settings)
        self.ctx = dispatch.job_context(settings, self.db, self.providers)

    def run(self, coro: Any) -> Any:
        return self.runner.run(coro)


_runtime: _Runtime | None = None
_settings: Settings | None = None  # set by `memserver worker` (it may have started the embedded database)


def runtime() -> _Runtime:
    global _runtime
    if _runtime is None:
        _runtime = _Runtime(_settings or get_settings())
    return _runtime


def _task(app: Any, name: str, **options: Any) -> Callable[[Callable[..., Any]], Any]:
    """`app.task(name=..., **options)`, typed: Celery ships no type information (the task object stays `Any`)."""
    decorator: Callable[[Callable[..., Any]], Any] = app.task(name=name, **options)
    return decorator


def make_celery(settings: Settings) -> Any:
    from celery import Celery

    timeout = settings.worker.handoff_timeout_s
    app = Celery("memserver", broker=settings.redis.url, include=["memserver.worker.app"])
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
        from memserver.services import dispatch

        rt = runtime()
        outcome = rt.run(dispatch.run_job(rt.ctx, uuid.UUID(event_id)))
        queue = queue_for(outcome.kind)
        if outcome.retry_in_s is not None:
            run_event.apply_async(args=[event_id], countdown=outcome.retry_in_s, queue=queue)
        if outcome.next_id is not None:
            run_event.apply_async(args=[str(outcome.next_id)], queue=queue)

    return app


class _SweepThread(threading.Thread):
    """The recovery sweep of one worker (main process): its own event loop, engine and LISTEN connection."""

    def __init__(self, app: Any, settings: Settings):
        super().__init__(name="memserver-sweep", daemon=True)
        self._app = app
        self._settings = settings

    def run(self) -> None:
        from memserver.services import jobs
        from memserver.storage.repositories.jobs import DueJob
        from memserver.worker.runners import sweep_forever

        rt = _Runtime(self._settings, pool_size=1)

        async def hand_off(due: list[DueJob]) -> None:
            for i, job in enumerate(due):
                try:
                    self._app.send_task(
                        "memserver.run_event", args=[str(job.id)], queue=queue_for(job.kind), retry=False
                    )
                except Exception:
                    log.warning("recovery sweep: broker unavailable; %d job(s) wait for the next sweep", len(due) - i)
                    await jobs.undispatch(rt.db, [j.id for j in due[i:]])
                    return

        rt.run(sweep_forever(rt.db, self._settings, hand_off))


def run_worker(settings: Settings, concurrency: int, queues: tuple[str, ...] = ("jobs", "webhooks")) -> None:
    """`memserver worker`: consume jobs (of `queues`: jobs, webhooks), and sweep for due ones on a schedule."""
    from celery import signals

    global _settings
    _settings = settings
    app = make_celery(settings)

    on_ready: Callable[[Callable[..., None]], Any] = signals.worker_ready.connect(weak=False)  # Celery is untyped

    @on_ready
    def _start_sweep(**_: Any) -> None:  # in the main process, after the pool has forked
        _SweepThread(app, settings).start()

    app.worker_main(
        [
            "worker",
            "--loglevel",
            settings.log_level.upper(),
            "--concurrency",
            str(concurrency),
            "--pool",
            "prefork",
            "--queues",
            ",".join(QUEUES[q] for q in queues),
            "-n",
            f"memserver-{uuid.uuid4().hex[:6]}@%h",
        ]
    )
