"""The fair claim: a free runner slot takes the job that is fairest to run next, across projects and scopes.

Runners pull: a queue message or an in-process submit only wakes a runner, and the runner asks here for the next
job of its lane (the kinds it runs). One short transaction per job start, serialised per lane by an advisory
lock, so the choice is exact across every process and both runners.

Which job: only the head of each scope is eligible (the oldest open job of the scope: adds apply in acceptance
order), plus every open job of an unordered kind (webhook deliveries, exports). Among the ready ones, a free
slot goes to the project running the fewest jobs, then to the one served least recently, then to the job that
has been ready longest (a scope's next job is ready from the moment its predecessor finished, `not_before`;
see `JobRepository.finish`), so one project's backlog takes turns with a quiet project's single add and a
busy scope takes turns with the other scopes of its project. A cap (`cap`) bounds the jobs one project runs
at once: while another project has a job ready (`hard=False`: an idle system still gives one project every
slot), or always (`hard=True`: webhook deliveries wait on receivers other people run).
"""

from __future__ import annotations

import uuid
import zlib
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import TextClause, text

from memserver.domain.jobs import JobKind, JobStatus
from memserver.storage.repositories.base import Repository
from memserver.storage.repositories.jobs import ClaimedJob

_PENDING, _RUNNING = JobStatus.PENDING.value, JobStatus.RUNNING.value
_OPEN = f"('{_PENDING}', '{_RUNNING}')"
_LOCK_CLASS = 0x6D656D31  # pg_advisory_xact_lock(class, lane): the claims of one lane, one at a time
_NO_CAP = 2**31 - 1
_KINDS = frozenset(k.value for k in JobKind)

# `e` is the oldest open job of its scope, the one that may run (jobs of one scope run in acceptance order).
# (A scalar subquery in the order of ix_events_open_scope: an EXISTS, or another order, can be planned as a
# walk over thousands of rows when one scope holds most of them.)
_HEAD = f"""e.id = (SELECT o.id FROM events o
                   WHERE o.project_id = e.project_id AND o.scope_key = e.scope_key AND o.status IN {_OPEN}
                   ORDER BY o.project_id, o.scope_key, o.created_at, o.id LIMIT 1)"""

# Each project's next ready job (one walk of ix_events_pending_ready per project with pending jobs in the
# lane: a scope's waiting jobs are blocked, `not_before` = 'infinity', until their turn), and the running jobs
# whose lease expired (taken over); then the fair order across projects. The cost follows the projects with
# work, not their backlogs.


def _claim(lane: str) -> TextClause:
    """The fair claim of a lane, one statement: `lane` is the SQL condition on `event_type` that the lane's
    index is built for."""
    return text(
        f"""
        WITH RECURSIVE projects AS (
            (SELECT project_id FROM events
             WHERE status = '{_PENDING}' AND event_type {lane}
             ORDER BY project_id LIMIT 1)
            UNION ALL
            SELECT (SELECT e.project_id FROM events e
                    WHERE e.status = '{_PENDING}' AND e.event_type {lane} AND e.project_id > p.project_id
                    ORDER BY e.project_id LIMIT 1)
            FROM projects p WHERE p.project_id IS NOT NULL
        ),
        pending AS (
            SELECT c.* FROM projects p CROSS JOIN LATERAL (
                SELECT e.id, e.project_id, e.status, coalesce(e.not_before, e.created_at) AS ready_since, e.created_at
                FROM events e
                WHERE e.status = '{_PENDING}' AND e.event_type {lane} AND e.project_id = p.project_id
                  AND coalesce(e.not_before, e.created_at) <= now() AND e.event_type = ANY(:kinds)
                  AND (e.scope_key IS NULL OR {_HEAD})
                ORDER BY coalesce(e.not_before, e.created_at), e.created_at, e.id
                LIMIT 1) c
            WHERE p.project_id IS NOT NULL
        ),
        expired AS (  -- (ordered by the lease: ix_events_running, the running jobs only)
            SELECT e.id, e.project_id, e.status, e.created_at AS ready_since, e.created_at
            FROM events e
            WHERE e.status = '{_RUNNING}' AND e.lease_expires_at < now() AND e.event_type = ANY(:kinds)
              AND e.attempts < (CAST(:max AS jsonb) ->> e.event_type)::int
              AND (e.scope_key IS NULL OR {_HEAD})
            ORDER BY e.lease_expires_at
        ),
        ready AS (SELECT * FROM pending UNION ALL SELECT * FROM expired),
        busy AS (
            SELECT project_id, count(DISTINCT coalesce(batch_id, id)) AS slots, max(started_at) AS last_start
            FROM (SELECT project_id, batch_id, id, started_at FROM events
                  WHERE status = '{_RUNNING}' AND lease_expires_at >= now() AND event_type = ANY(:kinds)
                  ORDER BY lease_expires_at) running
            GROUP BY project_id
        ),
        pick AS (
            SELECT r.id FROM ready r LEFT JOIN busy b USING (project_id)
            WHERE coalesce(b.slots, 0) < :cap
               OR (NOT :hard AND NOT EXISTS (
                       SELECT 1 FROM ready x LEFT JOIN busy y USING (project_id) WHERE coalesce(y.slots, 0) < :cap))
            ORDER BY coalesce(b.slots, 0), b.last_start NULLS FIRST, r.ready_since, r.created_at, r.id
            LIMIT 1
        ),
        -- taking over an expired batch gives the rest of it back: they run again, each in its turn
        reset AS (
            UPDATE events SET status = '{_PENDING}', lease_owner = NULL, lease_expires_at = NULL, batch_id = NULL,
                not_before = 'infinity', updated_at = now()
            WHERE id IN (SELECT id FROM events
                         WHERE batch_id = (SELECT id FROM pick) AND id <> (SELECT id FROM pick)
                           AND status = '{_RUNNING}' AND lease_expires_at < now()
                         ORDER BY lease_expires_at)
        )
        UPDATE events e SET status = '{_RUNNING}', attempts = e.attempts + 1, lease_owner = :owner,
            lease_expires_at = now() + make_interval(secs => :lease), started_at = now(), updated_at = now(),
            not_before = NULL, batch_id = NULL
        FROM pick WHERE e.id = pick.id
        RETURNING e.id, e.project_id, e.event_type, e.payload, e.attempts, e.results
        """
    )


_CLAIM_JOB = _claim("<> 'WEBHOOK'")  # ix_events_pending_ready
_CLAIM_DELIVERY = _claim("= 'WEBHOOK'")  # ix_events_pending_deliveries

# The open jobs queued right behind a claimed one in its scope, oldest first (candidates to join its batch).
_FOLLOWERS = text(
    f"""
    SELECT f.id, f.status, f.attempts, f.payload FROM events h
    JOIN events f ON f.project_id = h.project_id AND f.scope_key = h.scope_key
    WHERE h.id = :id AND f.status IN {_OPEN} AND (f.created_at, f.id) > (h.created_at, h.id)
    ORDER BY f.created_at, f.id
    LIMIT :n
    FOR UPDATE OF f
    """
)

_CLAIM_FOLLOWERS = text(
    f"""
    WITH head AS (UPDATE events SET batch_id = id WHERE id = :head RETURNING id)
    UPDATE events SET status = '{_RUNNING}', attempts = attempts + 1, lease_owner = :owner,
        lease_expires_at = now() + make_interval(secs => :lease), started_at = now(), updated_at = now(),
        not_before = NULL, batch_id = (SELECT id FROM head)
    WHERE id = ANY(CAST(:ids AS uuid[])) AND status = '{_PENDING}'
    RETURNING id, project_id, event_type, payload, attempts, results
    """
)


@dataclass(frozen=True)
class Queued:
    """An open job queued behind a claimed one in its scope."""

    id: uuid.UUID
    status: str
    attempts: int
    payload: dict[str, Any]


# The lane's lock, and the plan shape for the rest of the claim's transaction. Every step of the claim is an
# ordered index walk that stops early (the projects with work, each project's next ready job, a scope's head).
# Right after a burst of adds the table's statistics still say almost nothing is pending (autovacuum analyzes
# after 10% of the table changed), and the planner then prefers sorting what it believes are a few rows: with
# 10,000 pending adds that plan checked every row against every other, 15 s per claim (measured). Sorts,
# bitmap and sequential scans are therefore off for this transaction only: the walks are then the only plans.
_LOCK = text(
    """
    SELECT pg_advisory_xact_lock(:c, :k), set_config('enable_sort', 'off', true),
           set_config('enable_incremental_sort', 'off', true), set_config('enable_bitmapscan', 'off', true),
           set_config('enable_seqscan', 'off', true)
    """
)


def lock_key(kinds: Collection[JobKind]) -> int:
    """The advisory lock of a lane: one per set of kinds (claims of other lanes never wait on it)."""
    return zlib.crc32(",".join(sorted(k.value for k in kinds)).encode()) - 2**31


class ClaimRepository(Repository):
    """Runs inside the caller's transaction (the advisory lock is held until it ends)."""

    async def claim_next(
        self,
        *,
        kinds: Collection[JobKind],
        owner: str,
        lease_s: float,
        max_attempts: dict[str, int],
        cap: int | None = None,
        hard: bool = False,
    ) -> ClaimedJob | None:
        """The fairest ready job of these kinds, claimed under a new lease held by `owner`; None when none is
        ready (or every ready one belongs to a project at its hard cap). The kinds are a lane: webhook
        deliveries, or every other kind."""
        if JobKind.WEBHOOK in kinds and len(kinds) > 1:
            raise ValueError("webhook deliveries are a lane of their own")
        await self.conn.execute(_LOCK, {"c": _LOCK_CLASS, "k": lock_key(kinds)})
        params = {
            "kinds": [k.value for k in kinds],
            "max": orjson.dumps(max_attempts).decode(),
            "cap": _NO_CAP if cap is None else cap,
            "hard": hard,
        }
        claim = _CLAIM_DELIVERY if JobKind.WEBHOOK in kinds else _CLAIM_JOB
        row = (await self.conn.execute(claim, {**params, "owner": owner, "lease": lease_s})).first()
        return None if row is None else _claimed(row, owner)

    async def followers(self, head: ClaimedJob, limit: int) -> list[Queued]:
        """The next `limit` open jobs of the claimed job's scope, oldest first, locked until the claim ends."""
        rows = await self.conn.execute(_FOLLOWERS, {"id": head.id, "n": limit})
        return [Queued(r.id, r.status, r.attempts, r.payload or {}) for r in rows]

    async def claim_followers(
        self, head: ClaimedJob, followers: Sequence[Queued], *, owner: str, lease_s: float
    ) -> list[ClaimedJob]:
        """Claim these queued jobs with the head as one batch (`batch_id` = the head's id), under one lease."""
        rows = (
            await self.conn.execute(
                _CLAIM_FOLLOWERS,
                {"ids": [f.id for f in followers], "head": head.id, "owner": owner, "lease": lease_s},
            )
        ).all()
        by_id = {r.id: r for r in rows}
        if any(f.id not in by_id for f in followers):  # the lock and FOR UPDATE rule it out: never skip one
            raise RuntimeError(f"a job queued behind {head.id} changed while it was claimed")
        return [_claimed(by_id[f.id], owner) for f in followers]

    async def kind_of(self, job_id: uuid.UUID) -> JobKind | None:
        """The kind of a job (None: no such job, or not a job kind)."""
        value = (await self.conn.execute(text("SELECT event_type FROM events WHERE id = :id"), {"id": job_id})).scalar()
        return JobKind(value) if value in _KINDS else None


def _claimed(row: Any, owner: str) -> ClaimedJob:
    return ClaimedJob(
        id=row.id,
        project_id=row.project_id,
        kind=JobKind(row.event_type),
        payload=row.payload or {},
        attempt=row.attempts,
        owner=owner,
        results=row.results if isinstance(row.results, list) else [],
    )
