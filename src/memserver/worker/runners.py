"""The two JobQueue implementations: in-process asyncio tasks (embedded default) and Celery.

Both run the recovery sweep (`worker.sweep`) in the API process; `memserver worker` runs it too (`worker.process`).
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

from memserver.config import Settings
from memserver.domain.jobs import JobKind
from memserver.providers.registry import Providers
from memserver.services import dispatch, jobs
from memserver.storage.db import Database
from memserver.worker.celery_app import make_celery, queue_for
from memserver.worker.sweep import Sweeper

log = logging.getLogger(__name__)


class InProcessQueue:
    """Runs jobs on the API's own event loop: a few slots, each pulling the fairest ready job of its lane.

    `submit` only wakes an idle slot of the job's lane; each slot claims the next job across projects and
    scopes (`jobs.run_next`), runs it, and claims again until nothing is ready, then waits to be woken (a
    submit, a retry's backoff ending, the recovery sweep). Webhook deliveries have slots of their own
    (`MEMSERVER_WEBHOOKS__CONCURRENCY`): they wait on receivers other people run, so a slow or silent
    receiver holds a delivery slot, never one an add needs, and one project holds at most
    `MEMSERVER_WEBHOOKS__MAX_RUNNING_PER_PROJECT` of them.
    """

    # Ids submitted here and not yet run here, for the hand-back on stop (beyond this many, the oldest are
    # left to the sweep's re-dispatch: some other process ran them, most likely).
    MAX_REMEMBERED = 100_000

    def __init__(self, db: Database, providers: Providers, settings: Settings):
        self._ctx = dispatch.job_context(settings, db, providers)
        self._slots = {jobs.JOBS: settings.worker.inprocess_concurrency, jobs.WEBHOOKS: settings.webhooks.concurrency}
        self._idle: dict[str, list[asyncio.Event]] = {lane: [] for lane in self._slots}  # slots waiting to be woken
        self._news = dict.fromkeys(self._slots, 0)  # submits per lane so far
        self._tasks: set[asyncio.Task[None]] = set()
        self._woken: dict[uuid.UUID, None] = {}  # submitted here and not run here yet (an ordered set)
        self._retries: dict[uuid.UUID, asyncio.TimerHandle] = {}  # released with backoff: wake when due
        self._db = db
        self._pause_s = settings.worker.poll_interval_s
        self._sweeper = Sweeper(db, settings, self.submit)
        self.max_pending: int | None = settings.worker.max_pending_per_project
        self.retry_after_s: float = settings.worker.retry_after_s

    def submit(self, job_id: uuid.UUID, kind: JobKind | None = None) -> None:
        self._woken[job_id] = None
        if len(self._woken) > self.MAX_REMEMBERED:
            del self._woken[next(iter(self._woken))]
        self._wake(jobs.lane_name(kind))

    def _wake(self, lane: str) -> None:
        """Wake one idle slot of the lane (busy ones claim again when they finish); `_news` tells a slot whose
        claim was under way that something came in meanwhile."""
        self._news[lane] += 1
        if self._idle[lane]:
            self._idle[lane].pop().set()

    async def _slot(self, lane: jobs.Lane) -> None:
        """One runner slot: claim, run, claim again; wait to be woken when nothing is ready."""
        loop = asyncio.get_running_loop()
        wake = asyncio.Event()
        while True:
            news = self._news[lane.name]
            try:
                outcome = await jobs.run_next(self._ctx, lane)
            except Exception:  # the row stays PENDING/RUNNING; the sweep hands it out again
                log.exception("in-process runner: claiming or running a %s job failed", lane.name)
                await asyncio.sleep(self._pause_s)  # the database may be away: do not spin
                continue
            if outcome.job_id is not None:
                self._woken.pop(outcome.job_id, None)
                if outcome.retry_in_s is not None:
                    self._retries[outcome.job_id] = loop.call_later(
                        outcome.retry_in_s, self._retry, outcome.job_id, lane
                    )
                continue
            if news != self._news[lane.name]:  # a job came in while this claim was under way: look again
                continue
            wake.clear()
            self._idle[lane.name].append(wake)
            try:
                await wake.wait()
            finally:
                if wake in self._idle[lane.name]:
                    self._idle[lane.name].remove(wake)

    def _retry(self, job_id: uuid.UUID, lane: jobs.Lane) -> None:
        self._retries.pop(job_id, None)
        self._wake(lane.name)

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        for name, slots in self._slots.items():
            for _ in range(slots):
                task = loop.create_task(self._slot(self._ctx.lanes[name]))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
        self._sweeper.start()

    async def aclose(self) -> None:
        """Stop: running jobs give their claims back, and the ones this process was woken for (or waits to
        retry) go back to the sweep of any process."""
        await self._sweeper.stop()
        for handle in self._retries.values():
            handle.cancel()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        try:
            await jobs.hand_back(self._db, self._ctx.owner, [*self._woken, *self._retries])
        except Exception:  # their leases expire, and queued ones are handed out again after redispatch_after_s
            log.warning("could not hand this runner's jobs back", exc_info=True)


class CeleryQueue:
    """Hands job ids to Celery workers over Redis (task `memserver.run_event`), never blocking the loop.

    Webhook deliveries go to a queue of their own (`queue_for`), which a dedicated worker can consume
    (`memserver worker --queues webhooks`), so slow receivers never hold a process that adds need.

    The PENDING row is committed before `submit`; the publish runs in a thread with a short
    timeout. When Redis is away the job is marked not dispatched (and logged), and the sweep of
    any process hands it off once Redis is back. After a failure, publishing pauses briefly so a
    dead broker costs each request nothing.
    """

    def __init__(self, settings: Settings, db: Database):
        self._app = make_celery(settings)
        self._db = db
        self._timeout = settings.worker.handoff_timeout_s
        self._pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="celery-handoff")
        self._down_until = 0.0
        self._tasks: set[asyncio.Task[None]] = set()
        self._sweeper = Sweeper(db, settings, self.submit)
        self.max_pending: int | None = settings.worker.max_pending_per_project
        self.retry_after_s: float = settings.worker.retry_after_s

    def submit(self, job_id: uuid.UUID, kind: JobKind | None = None) -> None:
        task = asyncio.get_running_loop().create_task(self._handoff(job_id, kind))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _publish(self, job_id: uuid.UUID, kind: JobKind | None) -> None:
        self._app.send_task("memserver.run_event", args=[str(job_id)], queue=queue_for(kind), retry=False)

    async def _handoff(self, job_id: uuid.UUID, kind: JobKind | None) -> None:
        try:
            if time.monotonic() < self._down_until:
                raise ConnectionError("broker unavailable (recent failure)")
            loop = asyncio.get_running_loop()
            await asyncio.wait_for(loop.run_in_executor(self._pool, self._publish, job_id, kind), self._timeout)
        except Exception as exc:
            if time.monotonic() >= self._down_until:
                log.warning(
                    "job %s accepted but not handed to Celery (%s); it runs once the broker is back", job_id, exc
                )
            self._down_until = time.monotonic() + 1.0
            try:
                await jobs.undispatch(self._db, [job_id])
            except Exception:  # the row keeps its old dispatched_at: re-handed after redispatch_after_s
                log.warning("job %s: could not mark it for the recovery sweep", job_id, exc_info=True)

    async def start(self) -> None:
        self._sweeper.start()

    async def aclose(self) -> None:
        await self._sweeper.stop()
        await asyncio.gather(*list(self._tasks), return_exceptions=True)
        self._pool.shutdown(wait=False, cancel_futures=True)


def build_queue(settings: Settings, db: Database, providers: Providers) -> InProcessQueue | CeleryQueue:
    if settings.worker.runner == "celery":
        return CeleryQueue(settings, db)
    return InProcessQueue(db, providers, settings)
