"""The two JobQueue implementations: in-process asyncio tasks (embedded default) and Celery."""

from __future__ import annotations

import asyncio
import logging
import uuid

from memserver.config import Settings
from memserver.providers.registry import Providers
from memserver.services import dispatch, jobs
from memserver.storage.db import Database

log = logging.getLogger(__name__)


class InProcessQueue:
    """Runs events on the API's own event loop, a few at a time."""

    def __init__(self, db: Database, providers: Providers, concurrency: int = 4):
        self._db = db
        self._providers = providers
        self._sem = asyncio.Semaphore(concurrency)
        self._tasks: set[asyncio.Task[None]] = set()

    def submit(self, event_id: uuid.UUID) -> None:
        task = asyncio.get_running_loop().create_task(self._run(event_id))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(self, event_id: uuid.UUID) -> None:
        async with self._sem:
            try:
                await dispatch.run_job(self._db, self._providers, event_id)
            except Exception:  # the row stays PENDING/RUNNING and is recovered on the next start
                log.exception("in-process job %s crashed", event_id)

    async def start(self) -> None:
        for event_id in await jobs.recover(self._db, stale_after_s=0):
            self.submit(event_id)

    async def aclose(self) -> None:
        for task in list(self._tasks):
            task.cancel()


class CeleryQueue:
    """Sends event ids to Celery workers over Redis (task `memserver.run_event`)."""

    def __init__(self, settings: Settings):
        from memserver.worker.app import make_celery

        self._app = make_celery(settings)

    def submit(self, event_id: uuid.UUID) -> None:
        self._app.send_task("memserver.run_event", args=[str(event_id)])

    async def start(self) -> None:
        pass

    async def aclose(self) -> None:
        pass


def build_queue(settings: Settings, db: Database, providers: Providers) -> InProcessQueue | CeleryQueue:
    if settings.worker.runner == "celery":
        return CeleryQueue(settings)
    return InProcessQueue(db, providers)
