"""The recovery sweep both runners (in-process, Celery) run.

Every `poll_interval_s` (`jobs.take_due`), and at once when Postgres notifies new undispatched jobs: jobs
whose hand-off failed, whose queue message was lost, whose runner died (lease expired), and webhook
deliveries written as an outbox; on the poll's rounds, a job whose runners died on its last attempt ends
FAILED and a scope's next job still blocked behind nothing is unblocked (`jobs.repair`). The sweep marks
what it hands out, so any number of processes can sweep at once; it never resets a job another process
holds (a live lease cannot be claimed). A process with an LLM also runs the Dream synthesis scheduler from
here (`services.dream.tick`: at most one tick per interval across all processes), and hands off the runs it
queues with the round's other jobs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from memserver.config import Settings
from memserver.domain.jobs import JobKind
from memserver.services import dispatch, dream, jobs
from memserver.storage.db import Database
from memserver.storage.repositories.job_sweep import DueJob
from memserver.storage.repositories.jobs import listening

log = logging.getLogger(__name__)


async def sweep_forever(
    db: Database,
    settings: Settings,
    hand_off: Callable[[list[DueJob]], Awaitable[None]],
    busy: asyncio.Lock | None = None,
) -> None:
    """Hand due jobs to `hand_off` every `poll_interval_s`, and at once when Postgres notifies new ones.

    The notification (LISTEN on a connection of its own) only wakes the sweep early; if that
    connection is lost, polling goes on and the listener is re-opened on a later round. Each round
    holds `busy`: whoever stops the sweep takes it first, so no stop lands between marking jobs
    dispatched and handing them off (they would wait `redispatch_after_s` for another sweep).
    """
    busy = busy or asyncio.Lock()
    interval, redispatch = settings.worker.poll_interval_s, settings.worker.redispatch_after_s
    attempts = dispatch.max_attempts(settings)
    wake = asyncio.Event()
    url = db.engine.url.render_as_string(hide_password=False)
    timed = True  # this round follows the poll interval, not a notification: it also repairs (jobs.repair)
    dream_next = 0.0  # when this process next tries the Dream scheduler's tick (monotonic)
    async with contextlib.AsyncExitStack() as stack:
        listener: Any = None
        while True:
            if listener is None or listener.is_closed():
                await stack.aclose()
                try:
                    listener = await stack.enter_async_context(listening(url, wake.set))
                except Exception as exc:  # polling still works
                    log.warning("cannot LISTEN for new jobs (%s); polling every %.1fs", exc, interval)
                    listener = None
            wake.clear()
            async with busy:
                try:
                    due = await jobs.take_due(db, redispatch_after_s=redispatch)
                    if timed and await jobs.repair(db, max_attempts=attempts):  # unblocked jobs are due now
                        due += await jobs.take_due(db, redispatch_after_s=redispatch)
                    if due:
                        await hand_off(due)
                        log.info("recovery sweep handed off %d job(s)", len(due))
                    if settings.llm.configured and time.monotonic() >= dream_next:
                        # tried often (a claim is one row update); the database allows one tick per interval
                        dream_next = time.monotonic() + min(settings.dream.tick_s, 30.0)
                        if queued := await _dream_tick(db, settings):
                            await hand_off(queued)
                except Exception:  # database away: try again next time
                    log.warning("recovery sweep failed", exc_info=True)
            try:
                await asyncio.wait_for(wake.wait(), interval)
                timed = False
            except TimeoutError:
                timed = True


async def _dream_tick(db: Database, settings: Settings) -> list[DueJob]:
    try:
        return await dream.tick(db, settings.dream)
    except Exception:  # the recovery sweep goes on; the next tick tries again
        log.warning("dream scheduler tick failed", exc_info=True)
        return []


class Sweeper:
    """Runs `sweep_forever` as a task of the current event loop, submitting to a queue."""

    def __init__(self, db: Database, settings: Settings, submit: Callable[[uuid.UUID, JobKind | None], None]):
        self._db = db
        self._settings = settings
        self._submit = submit
        self._busy = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None

    async def _hand_off(self, due: list[DueJob]) -> None:
        for job in due:
            self._submit(job.id, job.kind)

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._task = loop.create_task(sweep_forever(self._db, self._settings, self._hand_off, self._busy))

    async def stop(self) -> None:
        """Stop between two rounds: what a round marked dispatched has been submitted."""
        if self._task is not None:
            async with self._busy:
                self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
