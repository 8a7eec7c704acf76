"""Job rows: asynchronous work is an `events` row (kind = `event_type`), claimed, run and finished here.

A claim is a lease: the row records who holds it (`lease_owner`), which attempt it is (`attempts`)
and until when (`lease_expires_at`, renewed by the runner's heartbeat). Only the claim that holds
the lease can finish or release the job; once the lease has expired any runner may take it over.
Jobs of one project and scope (`scope_key`) are claimed in the order they were accepted; which job a
free runner takes next is `job_claims`'s choice.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import orjson
from sqlalchemy import text

from memserver.domain.jobs import JobKind, JobStatus
from memserver.storage.repositories.base import Repository

# Status values in SQL come from the enum (never typed out as text).
PENDING, RUNNING, FAILED = JobStatus.PENDING.value, JobStatus.RUNNING.value, JobStatus.FAILED.value

# Kinds whose jobs apply in acceptance order within their scope (the add's entity ids).
ORDERED_KINDS = frozenset({JobKind.ADD})
_SCOPE_KEY_SQL = (
    "md5(jsonb_build_array(CAST(:payload AS jsonb) ->> 'user_id', CAST(:payload AS jsonb) ->> 'agent_id', "
    "CAST(:payload AS jsonb) ->> 'app_id', CAST(:payload AS jsonb) ->> 'run_id')::text)"
)
OPEN = f"('{PENDING}', '{RUNNING}')"
# Given `done` (finished jobs: id, project_id, scope_key, created_at), the next job of each one's scope is
# ready from now on (it was blocked behind them): the fair claim serves jobs in the order they became ready.
UNBLOCK_NEXT = f"""
    UPDATE events n SET not_before = now() FROM done
    WHERE n.id = (SELECT o.id FROM events o
                  WHERE o.project_id = done.project_id AND o.scope_key = done.scope_key
                    AND o.status = '{PENDING}' AND (o.created_at, o.id) > (done.created_at, done.id)
                  ORDER BY o.project_id, o.scope_key, o.created_at, o.id LIMIT 1)  -- ix_events_open_scope
      AND (n.not_before IS NULL OR n.not_before = 'infinity')
    RETURNING n.id"""
# Notified (on commit) when jobs nobody has handed off are written, e.g. webhook deliveries of the
# outbox: runners LISTEN and sweep at once instead of at their next poll.
JOBS_CHANNEL = "memserver_jobs"
# Only rows of a known kind are jobs: an open event of another type is never handed out or claimed.
KINDS = [k.value for k in JobKind]
# What a job's LLM use cost, in its event's metadata: the sum over all its attempts (a failed attempt records
# what it spent with `add_spent`; the attempt that finishes adds its own).
SPENT_KEYS = ["llm_calls", "prompt_tokens", "completion_tokens", "cached_prompt_tokens"]
_WITH_SPENT = """
    coalesce(metadata, '{}'::jsonb) || CAST(:metadata AS jsonb) || coalesce((
        SELECT jsonb_object_agg(u.key, u.value::numeric + coalesce((metadata ->> u.key)::numeric, 0))
        FROM jsonb_each_text(CAST(:metadata AS jsonb)) u WHERE u.key = ANY(:spent_keys)), '{}'::jsonb)
"""


@dataclass(frozen=True)
class ClaimedJob:
    id: uuid.UUID
    project_id: uuid.UUID
    kind: JobKind
    payload: dict[str, Any]
    attempt: int
    owner: str = ""
    results: list[Any] = field(default_factory=list)  # what earlier attempts recorded (deliveries)


class JobRepository(Repository):
    async def insert_pending(
        self, project_id: uuid.UUID, job_id: uuid.UUID, kind: JobKind, payload: Any, *, dispatched: bool = True
    ) -> None:
        """A PENDING job; committed before it is handed to a runner, so it is never lost.

        `dispatched=False` leaves the hand-off to the recovery sweep (nobody will submit it now). An ordered
        job accepted while its scope has an open job waits for it: blocked (`not_before` = 'infinity') until
        the job before it finishes (`finish`), so the fair claim never looks at it before its turn.
        """
        if kind in ORDERED_KINDS:
            key = _SCOPE_KEY_SQL
            # (in the order of ix_events_open_scope, so that index answers it whatever the statistics say)
            blocked = (
                f"CASE WHEN (SELECT o.id FROM events o WHERE o.project_id = :p AND o.scope_key = {key} "
                f"AND o.status IN {OPEN} ORDER BY o.project_id, o.scope_key LIMIT 1) IS NOT NULL "
                "THEN 'infinity'::timestamptz END"
            )
        else:
            key, blocked = "NULL", "NULL"
        await self.conn.execute(
            text(
                f"""
                INSERT INTO events (id, project_id, event_type, status, payload, scope_key, dispatched_at, not_before)
                VALUES (:id, :p, :kind, '{PENDING}', CAST(:payload AS jsonb), {key},
                        {"now()" if dispatched else "NULL"}, {blocked})
                """
            ),
            {"id": job_id, "p": project_id, "kind": kind.value, "payload": orjson.dumps(payload).decode()},
        )

    async def count_open(self, project_id: uuid.UUID, kinds: frozenset[JobKind] = ORDERED_KINDS) -> int:
        """PENDING + RUNNING jobs of these kinds in the project (back-pressure)."""
        stmt = text(
            f"SELECT count(*) FROM events WHERE project_id = :p AND status IN {OPEN} "
            "AND scope_key IS NOT NULL AND event_type = ANY(:kinds)"
        )
        return int((await self.conn.execute(stmt, {"p": project_id, "kinds": [k.value for k in kinds]})).scalar_one())

    async def count_open_of_kind(self, project_id: uuid.UUID, kind: JobKind) -> int:
        """PENDING + RUNNING jobs of one kind in the project (back-pressure of unordered kinds: exports)."""
        stmt = text(f"SELECT count(*) FROM events WHERE project_id = :p AND status IN {OPEN} AND event_type = :k")
        return int((await self.conn.execute(stmt, {"p": project_id, "k": kind.value})).scalar_one())

    async def claim(
        self, job_id: uuid.UUID, *, owner: str, lease_s: float, max_attempts: dict[str, int]
    ) -> ClaimedJob | None:
        """This job: PENDING (or RUNNING with an expired lease) -> RUNNING under a new lease held by `owner`.

        None when another claim holds it, it is done, its backoff has not elapsed, or an older job of
        its scope is still open. (Runners take the fairest job instead: `job_claims.ClaimRepository`.)
        """
        row = (
            await self.conn.execute(
                text(
                    f"""
                    UPDATE events e SET status = '{RUNNING}', attempts = e.attempts + 1, lease_owner = :owner,
                        lease_expires_at = now() + make_interval(secs => :lease), started_at = now(),
                        updated_at = now(), not_before = NULL
                    WHERE e.id = :id AND e.event_type = ANY(:kinds)
                      AND ((e.status = '{PENDING}' AND coalesce(e.not_before, '-infinity') <= now())
                           OR (e.status = '{RUNNING}' AND e.lease_expires_at < now()
                               AND e.attempts < (CAST(:max AS jsonb) ->> e.event_type)::int))
                      AND NOT EXISTS (
                          SELECT 1 FROM events o
                          WHERE o.project_id = e.project_id AND o.scope_key = e.scope_key
                            AND o.status IN {OPEN} AND (o.created_at, o.id) < (e.created_at, e.id))
                    RETURNING e.id, e.project_id, e.event_type, e.payload, e.attempts, e.results
                    """
                ),
                {
                    "id": job_id,
                    "owner": owner,
                    "lease": lease_s,
                    "max": orjson.dumps(max_attempts).decode(),
                    "kinds": KINDS,
                },
            )
        ).first()
        if row is None:
            await self._fail_abandoned(job_id, max_attempts)
            return None
        return ClaimedJob(
            id=row.id,
            project_id=row.project_id,
            kind=JobKind(row.event_type),
            payload=row.payload or {},
            attempt=row.attempts,
            owner=owner,
            results=row.results if isinstance(row.results, list) else [],
        )

    async def _fail_abandoned(self, job_id: uuid.UUID | None, max_attempts: dict[str, int]) -> int:
        """A job whose runners kept dying (lease expired on its last attempt) ends FAILED (one job, or every
        such job with `job_id=None`: a step of the recovery sweep)."""
        rows = await self.conn.execute(
            text(
                f"""
                WITH done AS (
                    UPDATE events SET status = '{FAILED}', completed_at = now(), updated_at = now(),
                        lease_owner = NULL, lease_expires_at = NULL,
                        latency_ms = 1000 * extract(epoch FROM now() - created_at),
                        error = 'gave up after ' || attempts || ' attempts: the runner holding it stopped '
                                '(lease expired)' || coalesce('; last error: ' || error, '')
                    WHERE (CAST(:id AS uuid) IS NULL OR id = :id) AND status = '{RUNNING}'
                      AND lease_expires_at < now() AND event_type = ANY(:kinds)
                      AND attempts >= (CAST(:max AS jsonb) ->> event_type)::int
                    RETURNING id, project_id, scope_key, created_at
                ),
                successor AS ({UNBLOCK_NEXT})
                SELECT id FROM done
                """
            ),
            {"id": job_id, "max": orjson.dumps(max_attempts).decode(), "kinds": KINDS},
        )
        return len(rows.all())

    async def fail_abandoned(self, max_attempts: dict[str, int]) -> int:
        """Every job whose runners kept dying ends FAILED (the sweep's step: nobody claims such a job)."""
        return await self._fail_abandoned(None, max_attempts)

    async def renew(self, job: ClaimedJob, *, lease_s: float) -> bool:
        """Extend the lease (heartbeat); False when this claim no longer holds the job."""
        row = (
            await self.conn.execute(
                text(
                    f"""
                    UPDATE events SET lease_expires_at = now() + make_interval(secs => :lease)
                    WHERE id = :id AND status = '{RUNNING}' AND lease_owner = :owner AND attempts = :attempt
                    RETURNING id
                    """
                ),
                {"id": job.id, "owner": job.owner, "attempt": job.attempt, "lease": lease_s},
            )
        ).first()
        return row is not None

    async def renew_all(self, batch: list[ClaimedJob], *, lease_s: float) -> set[uuid.UUID]:
        """Extend the lease of every job of a batch (heartbeat); the ids this owner still holds."""
        rows = await self.conn.execute(
            text(
                f"""
                UPDATE events SET lease_expires_at = now() + make_interval(secs => :lease)
                WHERE id = ANY(CAST(:ids AS uuid[])) AND status = '{RUNNING}' AND lease_owner = :owner
                RETURNING id
                """
            ),
            {"ids": [j.id for j in batch], "owner": batch[0].owner, "lease": lease_s},
        )
        return {r.id for r in rows}

    async def taken_over(self, job: ClaimedJob) -> bool:
        """Another claim (a later attempt) holds or finished the job: not just this claim's own finish."""
        stmt = text("SELECT attempts > :attempt FROM events WHERE id = :id")
        return bool((await self.conn.execute(stmt, {"id": job.id, "attempt": job.attempt})).scalar())

    async def finish(
        self,
        job: ClaimedJob,
        status: JobStatus,
        *,
        results: Any = None,
        error: str | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> bool:
        """Record the outcome of the claim `job`; False when that claim no longer holds it (nothing written).

        The scope's next job is ready from now on (`not_before`): the fair claim serves jobs in the order
        they became ready, so a busy scope's next add queues behind the adds other scopes have waited with."""
        row = (
            await self.conn.execute(
                text(
                    f"""
                    WITH done AS (
                        UPDATE events SET status = :status, results = CAST(:results AS jsonb), error = :error,
                            metadata = CASE WHEN CAST(:metadata AS jsonb) IS NULL THEN metadata ELSE {_WITH_SPENT} END,
                            completed_at = now(), updated_at = now(), lease_owner = NULL, lease_expires_at = NULL,
                            latency_ms = 1000 * extract(epoch FROM now() - created_at)
                        WHERE id = :id AND status = '{RUNNING}' AND lease_owner = :owner AND attempts = :attempt
                        RETURNING id, project_id, scope_key, created_at
                    ),
                    successor AS ({UNBLOCK_NEXT})
                    SELECT id FROM done
                    """
                ),
                {
                    "id": job.id,
                    "owner": job.owner,
                    "attempt": job.attempt,
                    "status": status.value,
                    "results": orjson.dumps(results or []).decode(),
                    "error": error,
                    "metadata": None if metadata is None else orjson.dumps(metadata).decode(),
                    "spent_keys": SPENT_KEYS,
                },
            )
        ).first()
        return row is not None

    async def add_spent(self, job: ClaimedJob, spent: dict[str, int]) -> bool:
        """Add what an attempt's LLM use cost to the event's (while this claim holds the job): a failed
        attempt spent it too. False when the claim no longer holds the job (nothing written)."""
        row = (
            await self.conn.execute(
                text(
                    f"""
                    UPDATE events SET metadata = {_WITH_SPENT}
                    WHERE id = :id AND status = '{RUNNING}' AND lease_owner = :owner AND attempts = :attempt
                    RETURNING id
                    """
                ),
                {
                    "id": job.id,
                    "owner": job.owner,
                    "attempt": job.attempt,
                    "metadata": orjson.dumps(spent).decode(),
                    "spent_keys": SPENT_KEYS,
                },
            )
        ).first()
        return row is not None

    async def release(
        self,
        job: ClaimedJob,
        *,
        error: str | None,
        retry_in_s: float,
        record: dict[str, Any] | None = None,
        blocked: bool = False,
    ) -> bool:
        """Give the job back as PENDING, due in `retry_in_s` (backoff), with its last error and attempt record.

        The releasing runner wakes a runner when the backoff ends. `blocked`: a job that ran behind the head of
        its scope (in its batch) waits for the head again, and runs once the head is done (`finish`).
        """
        row = (
            await self.conn.execute(
                text(
                    f"""
                    UPDATE events SET status = '{PENDING}', error = :error, updated_at = now(),
                        lease_owner = NULL, lease_expires_at = NULL,
                        not_before = CASE WHEN :blocked THEN 'infinity'::timestamptz
                                          ELSE now() + make_interval(secs => :delay) END,
                        dispatched_at = now() + make_interval(secs => :delay),
                        results = CASE WHEN CAST(:record AS jsonb) IS NULL THEN results
                                       ELSE coalesce(results, '[]'::jsonb) || CAST(:record AS jsonb) END
                    WHERE id = :id AND status = '{RUNNING}' AND lease_owner = :owner AND attempts = :attempt
                    RETURNING id
                    """
                ),
                {
                    "id": job.id,
                    "owner": job.owner,
                    "attempt": job.attempt,
                    "error": error,
                    "delay": retry_in_s,
                    "blocked": blocked,
                    "record": None if record is None else orjson.dumps([record]).decode(),
                },
            )
        ).first()
        return row is not None


@contextlib.asynccontextmanager
async def listening(url: str, on_notify: Callable[[], None]) -> AsyncIterator[asyncpg.Connection]:
    """A dedicated connection LISTENing on JOBS_CHANNEL; `on_notify` runs on the event loop per notification."""
    conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://", 1))
    try:
        await conn.add_listener(JOBS_CHANNEL, lambda *_: on_notify())
        yield conn
    finally:
        with contextlib.suppress(Exception):
            await conn.close(timeout=2)
