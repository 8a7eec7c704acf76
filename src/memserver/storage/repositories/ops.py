"""Operational reads: the job queue's depth and age (for metrics)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection


@dataclass(frozen=True)
class QueueStats:
    pending: int
    running: int
    oldest_pending_age_s: float


async def queue_stats(conn: AsyncConnection) -> QueueStats:
    row = (
        await conn.execute(
            text(
                "SELECT count(*) FILTER (WHERE status = 'PENDING') AS pending, "
                "count(*) FILTER (WHERE status = 'RUNNING') AS running, "
                "coalesce(extract(epoch FROM now() - min(created_at) FILTER (WHERE status = 'PENDING')), 0) AS age "
                "FROM events WHERE status IN ('PENDING', 'RUNNING')"
            )
        )
    ).one()
    return QueueStats(pending=int(row.pending), running=int(row.running), oldest_pending_age_s=float(row.age))
