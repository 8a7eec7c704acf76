"""Reads of memories by search: how often and how recently (the `decay` setting weighs them)."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import text

from memserver.storage.repositories.base import Repository


class MemoryReadRepository(Repository):
    """The `memory_reads` counters: how often and when each memory was last returned by a search."""

    async def stats(self, project_id: uuid.UUID, ids: list[uuid.UUID]) -> dict[uuid.UUID, tuple[int, datetime]]:
        if not ids:
            return {}
        rows = await self.conn.execute(
            text(
                "SELECT memory_id, read_count, last_read_at FROM memory_reads "
                "WHERE project_id = :p AND memory_id = ANY(:ids)"
            ),
            {"p": project_id, "ids": ids},
        )
        return {r.memory_id: (int(r.read_count), r.last_read_at) for r in rows}

    async def record(self, project_id: uuid.UUID, ids: list[uuid.UUID]) -> None:
        """One more read of each memory, now."""
        if not ids:
            return
        await self.conn.execute(
            text(
                "INSERT INTO memory_reads (project_id, memory_id, read_count, last_read_at) "
                "SELECT :p, unnest(CAST(:ids AS uuid[])), 1, now() "
                "ON CONFLICT (project_id, memory_id) DO UPDATE "
                "SET read_count = memory_reads.read_count + 1, last_read_at = now()"
            ),
            {"p": project_id, "ids": ids},
        )
