"""Feedback on memories, and the project's numbers (stats, the values filters can take)."""

from __future__ import annotations

import uuid
from typing import Any, cast

from sqlalchemy import text

from memserver.domain.rows.feedback import FeedbackRow
from memserver.storage.repositories.base import Repository

_FEEDBACK_COLS = "id, memory_id, member_email, feedback, feedback_reason, created_at, updated_at"


class FeedbackRepository(Repository):
    async def upsert(
        self, project_id: uuid.UUID, memory_id: uuid.UUID, email: str, feedback: str, reason: str | None
    ) -> FeedbackRow:
        row = (
            await self.conn.execute(
                text(
                    "INSERT INTO memory_feedback (id, project_id, memory_id, member_email, feedback, feedback_reason) "
                    "VALUES (:id, :p, :m, :e, :f, :r) ON CONFLICT (project_id, memory_id, member_email) DO UPDATE "
                    "SET feedback = EXCLUDED.feedback, feedback_reason = EXCLUDED.feedback_reason, updated_at = now() "
                    f"RETURNING {_FEEDBACK_COLS}"
                ),
                {"id": uuid.uuid4(), "p": project_id, "m": memory_id, "e": email, "f": feedback, "r": reason},
            )
        ).one()
        return cast(FeedbackRow, row)

    async def remove(self, project_id: uuid.UUID, memory_id: uuid.UUID, email: str) -> bool:
        res = await self.conn.execute(
            text("DELETE FROM memory_feedback WHERE project_id = :p AND memory_id = :m AND member_email = :e"),
            {"p": project_id, "m": memory_id, "e": email},
        )
        return bool(res.rowcount)

    async def list(self, project_id: uuid.UUID, memory_id: uuid.UUID | None) -> list[FeedbackRow]:
        sql = f"SELECT {_FEEDBACK_COLS} FROM memory_feedback WHERE project_id = :p"
        params: dict[str, Any] = {"p": project_id}
        if memory_id is not None:
            sql += " AND memory_id = :m"
            params["m"] = memory_id
        rows = list((await self.conn.execute(text(sql + " ORDER BY updated_at DESC, id"), params)).all())
        return cast(list[FeedbackRow], rows)


class StatsRepository(Repository):
    async def memory_counts(self, project_id: uuid.UUID) -> Any:
        return (
            await self.conn.execute(
                text(
                    """
                    SELECT count(*) AS memories,
                           count(user_id) AS with_user, count(DISTINCT user_id) AS users,
                           count(agent_id) AS with_agent, count(DISTINCT agent_id) AS agents,
                           count(run_id) AS with_run, count(DISTINCT run_id) AS runs
                    FROM memories WHERE project_id = :p
                    """
                ),
                {"p": project_id},
            )
        ).one()

    async def event_counts(self, project_id: uuid.UUID) -> dict[str, int]:
        rows = await self.conn.execute(
            text("SELECT event_type, count(*) AS n FROM events WHERE project_id = :p GROUP BY event_type"),
            {"p": project_id},
        )
        return {r.event_type: int(r.n) for r in rows}

    async def reads(self, project_id: uuid.UUID) -> int:
        row = (
            await self.conn.execute(
                text("SELECT coalesce(sum(read_count), 0) AS n FROM memory_reads WHERE project_id = :p"),
                {"p": project_id},
            )
        ).one()
        return int(row.n)

    async def categories(self, project_id: uuid.UUID) -> list[str]:
        rows = await self.conn.execute(
            text(
                "SELECT DISTINCT c FROM memories, unnest(categories) AS c WHERE project_id = :p ORDER BY c LIMIT 1000"
            ),
            {"p": project_id},
        )
        return [str(r.c) for r in rows]

    async def entity_names(self, project_id: uuid.UUID) -> dict[str, list[str]]:
        rows = await self.conn.execute(
            text("SELECT type, name FROM entities WHERE project_id = :p ORDER BY type, name LIMIT 10000"),
            {"p": project_id},
        )
        out: dict[str, list[str]] = {"user": [], "agent": [], "app": [], "run": []}
        for r in rows:
            out.setdefault(r.type, []).append(r.name)
        return out
