"""Job rows: asynchronous work is an `events` row (kind = `event_type`), claimed, run and finished here."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import ColumnElement, Text, bindparam, cast, func, select, update
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncConnection

from memserver.domain.jobs import JobKind, JobStatus
from memserver.storage.models import Event

EV = Event.__table__


def _jsonb(value: Any) -> ColumnElement[Any]:
    return cast(bindparam(None, orjson.dumps(value).decode(), type_=Text), JSONB)


@dataclass(frozen=True)
class ClaimedJob:
    id: uuid.UUID
    project_id: uuid.UUID
    kind: JobKind
    payload: dict[str, Any]
    attempt: int


class JobRepository:
    def __init__(self, conn: AsyncConnection):
        self.conn = conn

    async def insert(self, project_id: uuid.UUID, job_id: uuid.UUID, kind: JobKind, payload: Any) -> None:
        """A PENDING job; committed before it is handed to a runner, so it is never lost."""
        await self.conn.execute(
            EV.insert().values(
                id=job_id,
                project_id=project_id,
                event_type=kind.value,
                status=JobStatus.PENDING.value,
                payload=_jsonb(payload),
            )
        )

    async def claim(self, job_id: uuid.UUID) -> ClaimedJob | None:
        """PENDING -> RUNNING; None when another runner has it or it is done (idempotent delivery)."""
        stmt = (
            update(EV)
            .where(EV.c.id == job_id, EV.c.status == JobStatus.PENDING.value)
            .values(
                status=JobStatus.RUNNING.value,
                attempts=EV.c.attempts + 1,
                started_at=func.now(),
                updated_at=func.now(),
            )
            .returning(EV.c.id, EV.c.project_id, EV.c.event_type, EV.c.payload, EV.c.attempts)
        )
        row = (await self.conn.execute(stmt)).first()
        if row is None:
            return None
        return ClaimedJob(
            id=row.id,
            project_id=row.project_id,
            kind=JobKind(row.event_type),
            payload=row.payload or {},
            attempt=row.attempts,
        )

    async def finish(
        self,
        job_id: uuid.UUID,
        status: JobStatus,
        *,
        results: Any = None,
        error: str | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> bool:
        """Record the outcome of a RUNNING job; False when it is no longer running (nothing written)."""
        stmt = (
            update(EV)
            .where(EV.c.id == job_id, EV.c.status == JobStatus.RUNNING.value)
            .values(
                status=status.value,
                results=_jsonb(results or []),
                error=error,
                metadata=_jsonb(metadata) if metadata is not None else EV.c.metadata,
                completed_at=func.now(),
                updated_at=func.now(),
                latency_ms=1000 * func.extract("epoch", func.now() - EV.c.created_at),
            )
            .returning(EV.c.id)
        )
        return (await self.conn.execute(stmt)).first() is not None

    async def recover(self, *, stale_after_s: float, limit: int = 10_000) -> list[uuid.UUID]:
        """Jobs a dead runner left behind go back to PENDING; returns the PENDING ones, oldest first."""
        await self.conn.execute(
            update(EV)
            .where(
                EV.c.status == JobStatus.RUNNING.value,
                EV.c.started_at < func.now() - func.make_interval(0, 0, 0, 0, 0, 0, stale_after_s),
            )
            .values(status=JobStatus.PENDING.value, updated_at=func.now())
        )
        stmt = select(EV.c.id).where(EV.c.status == JobStatus.PENDING.value).order_by(EV.c.created_at).limit(limit)
        return list((await self.conn.execute(stmt)).scalars())
