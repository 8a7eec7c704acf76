"""Events: the record of adds/deletes and the job rows of asynchronous work."""

from __future__ import annotations

import uuid
from typing import Any, cast

import orjson
from sqlalchemy import text

from memserver.domain.rows.events import EventPageRow, EventRow
from memserver.storage.repositories.base import Repository

# Webhook deliveries are job rows too, but belong to their webhook (`/api/v1/webhooks/{id}/deliveries/`).
_VISIBLE = "event_type <> 'WEBHOOK'"
_COLS = (
    "id, event_type, status, payload, results, error, metadata, latency_ms, created_at, updated_at, "
    "started_at, completed_at"
)


class EventRepository(Repository):
    async def insert_finished(
        self,
        project_id: uuid.UUID,
        event_id: uuid.UUID,
        event_type: str,
        status: str,
        *,
        payload: Any = None,
        results: Any = None,
        error: str | None = None,
        metadata: dict[str, Any] | None = None,
        completed: bool = False,
    ) -> None:
        await self.conn.execute(
            text(
                f"""
                INSERT INTO events (id, project_id, event_type, status, payload, results, error, metadata,
                    started_at, completed_at, latency_ms)
                VALUES (:id, :p, :t, :s, CAST(:payload AS jsonb), CAST(:results AS jsonb), :error,
                    CAST(:metadata AS jsonb),
                    {"now()" if completed else "NULL"}, {"clock_timestamp()" if completed else "NULL"},
                    {"1000 * extract(epoch FROM clock_timestamp() - now())" if completed else "NULL"})
                """
            ),
            {
                "id": event_id,
                "p": project_id,
                "t": event_type,
                "s": status,
                "payload": None if payload is None else orjson.dumps(payload).decode(),
                "results": None if results is None else orjson.dumps(results).decode(),
                "error": error,
                "metadata": None if metadata is None else orjson.dumps(metadata).decode(),
            },
        )

    async def get(self, project_id: uuid.UUID, event_id: uuid.UUID) -> EventRow | None:
        row = (
            await self.conn.execute(
                text(f"SELECT {_COLS} FROM events WHERE project_id = :p AND id = :id AND {_VISIBLE}"),
                {"p": project_id, "id": event_id},
            )
        ).first()
        return cast(EventRow | None, row)

    async def list(self, project_id: uuid.UUID, *, limit: int, offset: int) -> tuple[list[EventPageRow], int]:
        rows = list(
            (
                await self.conn.execute(
                    text(
                        f"SELECT {_COLS}, count(*) OVER () AS total FROM events WHERE project_id = :p "
                        f"AND {_VISIBLE} ORDER BY created_at DESC, id DESC LIMIT :l OFFSET :o"
                    ),
                    {"p": project_id, "l": limit, "o": offset},
                )
            ).all()
        )
        if rows:
            return cast(list[EventPageRow], rows), int(rows[0].total)
        total = (
            await self.conn.execute(
                text(f"SELECT count(*) FROM events WHERE project_id = :p AND {_VISIBLE}"), {"p": project_id}
            )
        ).scalar_one()
        return [], int(total)
