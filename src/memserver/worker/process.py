"""`memserver worker`: the Celery worker's main process, with the recovery sweep on a thread of its own.

Forked pool processes run the tasks (`worker.celery_app`) on their own event loop (`worker.loop`); the main
process sweeps for due jobs and hands them to the broker.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable
from typing import Any

from memserver.config import Settings
from memserver.services import jobs
from memserver.storage.repositories.job_sweep import DueJob
from memserver.worker import loop
from memserver.worker.celery_app import QUEUES, make_celery, queue_for
from memserver.worker.sweep import sweep_forever

log = logging.getLogger(__name__)


class SweepThread(threading.Thread):
    """The recovery sweep of one worker (main process): its own event loop, engine and LISTEN connection."""

    def __init__(self, app: Any, settings: Settings):
        super().__init__(name="memserver-sweep", daemon=True)
        self._app = app
        self._settings = settings

    def run(self) -> None:
        sweep_loop = loop.WorkerLoop(self._settings, pool_size=1)

        async def hand_off(due: list[DueJob]) -> None:
            for i, job in enumerate(due):
                try:
                    self._app.send_task(
                        "memserver.run_event", args=[str(job.id)], queue=queue_for(job.kind), retry=False
                    )
                except Exception:
                    log.warning("recovery sweep: broker unavailable; %d job(s) wait for the next sweep", len(due) - i)
                    await jobs.undispatch(sweep_loop.db, [j.id for j in due[i:]])
                    return

        sweep_loop.run(sweep_forever(sweep_loop.db, self._settings, hand_off))


def run_worker(settings: Settings, concurrency: int, queues: tuple[str, ...] = ("jobs", "webhooks")) -> None:
    """`memserver worker`: consume jobs (of `queues`: jobs, webhooks), and sweep for due ones on a schedule."""
    # Deferred: celery is an optional package (the `celery` extra).
    from celery import signals

    loop.configure(settings)
    app = make_celery(settings)

    on_ready: Callable[[Callable[..., None]], Any] = signals.worker_ready.connect(weak=False)  # Celery is untyped

    @on_ready
    def _start_sweep(**_: Any) -> None:  # in the main process, after the pool has forked
        SweepThread(app, settings).start()

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
