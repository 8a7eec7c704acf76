"""Celery app. Tasks are thin sync shims running the async service on one event loop per process."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable
from typing import Any

from memserver.config import Settings, get_settings

log = logging.getLogger(__name__)


class _Runtime:
    """Per worker process: one asyncio.Runner, one engine, one set of providers."""

    def __init__(self, settings: Settings):
        from memserver.providers.registry import build_providers
        from memserver.storage.db import Database

        url = settings.async_database_url()
        if url is None:
            raise RuntimeError("the Celery worker needs MEMSERVER_DATABASE_URL")
        self.runner = asyncio.Runner()
        self.db = Database(url, settings.db, application_name="memserver-worker")
        self.providers = build_providers(settings)

    def run(self, coro: Any) -> Any:
        return self.runner.run(coro)


_runtime: _Runtime | None = None
_settings: Settings | None = None  # set by `memserver worker` (it may have started the embedded database)


def runtime() -> _Runtime:
    global _runtime
    if _runtime is None:
        _runtime = _Runtime(_settings or get_settings())
    return _runtime


def _task(app: Any, name: str) -> Callable[[Callable[..., Any]], Any]:
    """`app.task(name=...)`, typed: Celery ships no type information (the task object stays `Any`)."""
    decorator: Callable[[Callable[..., Any]], Any] = app.task(name=name)
    return decorator


def make_celery(settings: Settings) -> Any:
    from celery import Celery

    app = Celery("memserver", broker=settings.redis.url, include=["memserver.worker.app"])
    app.conf.update(
        task_acks_late=True,  # a worker killed mid-task leaves the message for another worker
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_ignore_result=True,
        broker_connection_retry_on_startup=True,
        worker_hijack_root_logger=False,
    )

    @_task(app, "memserver.run_event")
    def run_event(event_id: str) -> None:
        from memserver.services import dispatch

        rt = runtime()
        rt.run(dispatch.run_job(rt.db, rt.providers, uuid.UUID(event_id)))

    @_task(app, "memserver.recover")
    def recover() -> int:
        from memserver.services import jobs

        rt = runtime()
        ids = rt.run(jobs.recover(rt.db))
        for event_id in ids:
            run_event.delay(str(event_id))
        return len(ids)

    return app


def run_worker(settings: Settings, concurrency: int) -> None:
    """`memserver worker`: re-queue what earlier workers left behind, then consume."""
    global _settings
    _settings = settings
    app = make_celery(settings)
    app.send_task("memserver.recover")
    app.worker_main(
        [
            "worker",
            "--loglevel",
            settings.log_level.upper(),
            "--concurrency",
            str(concurrency),
            "--pool",
            "prefork",
            "-n",
            "memserver@%h",
        ]
    )
