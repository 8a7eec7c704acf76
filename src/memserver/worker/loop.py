"""The Celery worker process's resources: one event loop, one engine, one set of providers, one job context.

Celery has no native async tasks, so each worker process runs the async services on its own
`asyncio.Runner`. `worker_loop()` builds it on first use, in the process that runs tasks (after the fork).
"""

from __future__ import annotations

import asyncio
from typing import Any

from memserver.config import Settings, get_settings
from memserver.providers.registry import build_providers
from memserver.services import dispatch
from memserver.storage.db import Database


class WorkerLoop:
    """Per worker process: one asyncio.Runner, one engine, one set of providers, one job context."""

    def __init__(self, settings: Settings, *, pool_size: int | None = None):
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


_loop: WorkerLoop | None = None
_settings: Settings | None = None  # set by `memserver worker` (it may have started the embedded database)


def configure(settings: Settings) -> None:
    """The settings this process's `worker_loop()` is built from (default: `get_settings()`)."""
    global _settings
    _settings = settings


def worker_loop() -> WorkerLoop:
    global _loop
    if _loop is None:
        _loop = WorkerLoop(_settings or get_settings())
    return _loop
