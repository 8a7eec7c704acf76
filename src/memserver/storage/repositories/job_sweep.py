"""The recovery sweep's statements over job rows: jobs due to be handed out, stranded scopes repaired, a
stopping runner's jobs given back, and the queue's depth for readiness and metrics."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import text

from memserver.domain.jobs import JobKind
from memserver.storage.repositories.base import Repository
from memserver.storage.repositories.jobs import KINDS, OPEN, PENDING, RUNNING


@dataclass(frozen=True)
class DueJob:
    id: uuid.UUID
    created_at: datetime
    kind: JobKind


@dataclass(frozen=True)
class QueueStats:
    pending: int
    running: int
    oldest_pending_age_s: float


class SweepRepository(Repository):
    async def hand_back(self, owner: str) -> list[uuid.UUID]:
        """Every job `owner` holds goes back to PENDING, due now, for the next sweep of any runner (the
        runner is stopping). By owner, not by claim: a claim whose task was cancelled before it learned
        of its own claim is given back too."""
        rows = await self.conn.execute(
            text(
                f"""
                UPDATE events SET status = '{PENDING}', error = 'runner stopped', updated_at = now(),
                    lease_owner = NULL, lease_expires_at = NULL, dispatched_at = NULL, batch_id = NULL,
                    -- a batch's followers wait for its first job again
                    not_before = CASE WHEN batch_id <> id THEN 'infinity'::timestamptz END
                WHERE status = '{RUNNING}' AND lease_owner = :owner
                RETURNING id
                """
            ),
            {"owner": owner},
        )
        return [r.id for r in rows]

    async def undispatch(self, job_ids: list[uuid.UUID]) -> None:
        """The hand-off failed, or the runner holding these ids stops: the next sweep hands them off again."""
        await self.conn.execute(
            text(f"UPDATE events SET dispatched_at = NULL WHERE id = ANY(:ids) AND status = '{PENDING}'"),
            {"ids": job_ids},
        )

    async def repair_blocks(self) -> tuple[int, int]:
        """Each scope's head unblocked, every other job of the scope blocked: (unblocked, blocked).

        `finish` unblocks the next job of a scope and `insert_pending` blocks a job accepted behind an open one,
        but a job accepted while the one before it finished can miss both (neither statement sees the other):
        still blocked as the head (it would never run), or not blocked behind the head (each claim would look
        at it and pass). The sweep puts both right, and hands an unblocked head out again. The conditions read
        the row as it is when updated (`e`), so a job its predecessor's finish unblocked meanwhile (`not_before`
        = then) is never blocked again."""
        rows = await self.conn.execute(
            text(
                f"""
                WITH open AS (
                    SELECT id, status, not_before,
                           row_number() OVER (PARTITION BY project_id, scope_key ORDER BY created_at, id) AS n
                    FROM events WHERE status IN {OPEN} AND scope_key IS NOT NULL)
                UPDATE events e SET
                    not_before = CASE WHEN o.n = 1 THEN now() ELSE 'infinity'::timestamptz END,
                    dispatched_at = CASE WHEN o.n = 1 THEN NULL ELSE e.dispatched_at END
                FROM open o
                WHERE e.id = o.id AND e.status = '{PENDING}'
                  AND ((o.n = 1 AND e.not_before = 'infinity') OR (o.n > 1 AND e.not_before IS NULL))
                RETURNING o.n = 1 AS head
                """
            )
        )
        heads = [r.head for r in rows]
        return sum(heads), len(heads) - sum(heads)

    async def take_due(self, *, redispatch_after_s: float, limit: int = 500) -> list[DueJob]:
        """Mark up to `limit` jobs that need a hand-off as dispatched now, and return them.

        Due: PENDING past its backoff and never handed off (or not for `redispatch_after_s`: its
        message may be lost), or RUNNING with an expired lease and not handed off since it expired.
        SKIP LOCKED + the dispatched_at update let every process sweep at once without handing
        the same job out twice; callers repeat until a short page (no cap on the total).
        """
        rows = (
            await self.conn.execute(
                text(
                    f"""
                    UPDATE events SET dispatched_at = now()
                    WHERE id IN (
                        SELECT id FROM events
                        WHERE status IN {OPEN} AND event_type = ANY(:kinds) AND (
                            (status = '{PENDING}' AND coalesce(not_before, '-infinity') <= now()
                             AND (dispatched_at IS NULL
                                  OR dispatched_at < now() - make_interval(secs => :redispatch)))
                            OR (status = '{RUNNING}' AND lease_expires_at < now()
                                AND (dispatched_at IS NULL OR dispatched_at < lease_expires_at)))
                        ORDER BY created_at, id
                        LIMIT :limit
                        FOR UPDATE SKIP LOCKED)
                    RETURNING id, created_at, event_type
                    """
                ),
                {"redispatch": redispatch_after_s, "limit": limit, "kinds": KINDS},
            )
        ).all()
        return sorted(
            (DueJob(r.id, r.created_at, JobKind(r.event_type)) for r in rows), key=lambda j: (j.created_at, j.id)
        )

    async def queue_stats(self) -> QueueStats:
        """The job queue's depth and age (for metrics)."""
        row = (
            await self.conn.execute(
                text(
                    f"SELECT count(*) FILTER (WHERE status = '{PENDING}') AS pending, "
                    f"count(*) FILTER (WHERE status = '{RUNNING}') AS running, "
                    f"coalesce(extract(epoch FROM now() - min(created_at) FILTER (WHERE status = '{PENDING}')), 0) AS age "
                    f"FROM events WHERE status IN ('{PENDING}', '{RUNNING}')"
                )
            )
        ).one()
        return QueueStats(pending=int(row.pending), running=int(row.running), oldest_pending_age_s=float(row.age))
