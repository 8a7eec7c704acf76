"""Operational reads: the job queue's depth and age (for metrics)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from memserver.domain.jobs import JobStatus

_PENDING, _RUNNING = JobStatus.PENDING.value, JobStatus.RUNNING.value


@dataclass(frozen=True)
class QueueStats:
    pending: int
    running: int
    oldest_pending_age_s: float


async def queue_stats(conn: AsyncConnection) -> QueueStats:
    row = (
        await conn.execute(
            text(
                f"SELECT count(*) FILTER (WHERE status = '{_PENDING}') AS pending, "
                f"count(*) FILTER (WHERE status = '{_RUNNING}') AS running, "
                f"coalesce(extract(epoch FROM now() - min(created_at) FILTER (WHERE status = '{_PENDING}')), 0) AS age "
                f"FROM events WHERE status IN ('{_PENDING}', '{_RUNNING}')"
            )
        )
    ).one()
    return QueueStats(pending=int(row.pending), running=int(row.running), oldest_pending_age_s=float(row.age))
