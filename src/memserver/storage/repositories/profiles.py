"""Profiles of entities, idempotency keys of profile jobs, and the job rows of exports."""

from __future__ import annotations

import uuid
from typing import Any

import orjson
from sqlalchemy import text

from memserver.storage.repositories.base import Repository

_PROFILE_COLS = "id, entity_type, entity_id, profile, status, error, generation_count, memory_count, updated_at"


class ProfileRepository(Repository):
    async def get(self, project_id: uuid.UUID, entity_type: str, entity_id: str) -> Any | None:
        return (
            await self.conn.execute(
                text(
                    f"SELECT {_PROFILE_COLS} FROM profiles WHERE project_id = :p AND entity_type = :t "
                    "AND entity_id = :e"
                ),
                {"p": project_id, "t": entity_type, "e": entity_id},
            )
        ).first()

    async def mark(self, project_id: uuid.UUID, entity_type: str, entity_id: str, status: str) -> uuid.UUID:
        """Set a profile's status (creating its row); the document and its counters are kept. Returns its id."""
        row = (
            await self.conn.execute(
                text(
                    "INSERT INTO profiles (id, project_id, entity_type, entity_id, status) VALUES (:id, :p, :t, :e, :s) "
                    "ON CONFLICT (project_id, entity_type, entity_id) DO UPDATE SET status = EXCLUDED.status "
                    "RETURNING id"
                ),
                {"id": uuid.uuid4(), "p": project_id, "t": entity_type, "e": entity_id, "s": status},
            )
        ).one()
        return uuid.UUID(str(row.id))

    async def store(
        self,
        project_id: uuid.UUID,
        entity_type: str,
        entity_id: str,
        *,
        status: str,
        profile: dict[str, Any] | None = None,
        memory_count: int = 0,
        error: str | None = None,
    ) -> uuid.UUID:
        """Record a generation's outcome; a new document only when one is given (success)."""
        row = (
            await self.conn.execute(
                text(
                    """
                    INSERT INTO profiles (id, project_id, entity_type, entity_id, status, profile, error,
                        generation_count, memory_count, updated_at)
                    VALUES (:id, :p, :t, :e, :s, coalesce(CAST(:doc AS jsonb), '{}'::jsonb), :err,
                        CASE WHEN :doc IS NULL THEN 0 ELSE 1 END, :n, now())
                    ON CONFLICT (project_id, entity_type, entity_id) DO UPDATE SET
                        status = EXCLUDED.status, error = EXCLUDED.error,
                        profile = coalesce(CAST(:doc AS jsonb), profiles.profile),
                        generation_count = profiles.generation_count + CASE WHEN :doc IS NULL THEN 0 ELSE 1 END,
                        memory_count = CASE WHEN :doc IS NULL THEN profiles.memory_count ELSE :n END,
                        updated_at = CASE WHEN :doc IS NULL THEN profiles.updated_at ELSE now() END
                    RETURNING id
                    """
                ),
                {
                    "id": uuid.uuid4(),
                    "p": project_id,
                    "t": entity_type,
                    "e": entity_id,
                    "s": status,
                    "doc": None if profile is None else orjson.dumps(profile).decode(),
                    "err": error,
                    "n": memory_count,
                },
            )
        ).one()
        return uuid.UUID(str(row.id))

    async def claim_refresh(
        self, project_id: uuid.UUID, entity_type: str, entity_id: str, memory_count: int, every: int
    ) -> bool:
        """Record that a regeneration is queued for this many memories, if one is due; True when this call did.

        Due: no profile yet, one that was never generated (not enabled, or too few memories, back then), or a
        generated one `every` memories behind. One statement: concurrent readers of a due profile all reach
        the row, Postgres serialises them on it, and only the first finds it still due (the others see the
        row it wrote), so one job is queued, not one per reader."""
        row = (
            await self.conn.execute(
                text(
                    """
                    INSERT INTO profiles (id, project_id, entity_type, entity_id, status)
                    VALUES (:id, :p, :t, :e, 'pending')
                    ON CONFLICT (project_id, entity_type, entity_id) DO UPDATE SET
                        -- a generated profile keeps being served while the new one is made
                        status = CASE WHEN profiles.status = 'succeeded' THEN 'succeeded' ELSE 'pending' END,
                        memory_count = CASE WHEN profiles.status = 'succeeded' THEN :n ELSE profiles.memory_count END
                    WHERE profiles.status IN ('not_enabled', 'insufficient_data')
                       OR (profiles.status = 'succeeded' AND :n >= profiles.memory_count + :every)
                    RETURNING id
                    """
                ),
                {"id": uuid.uuid4(), "p": project_id, "t": entity_type, "e": entity_id, "n": memory_count,
                 "every": every},
            )
        ).first()  # fmt: skip
        return row is not None

    async def memory_count(self, project_id: uuid.UUID, entity_type: str, entity_id: str) -> int:
        column = {"user": "user_id", "agent": "agent_id"}[entity_type]
        row = (
            await self.conn.execute(
                text(f"SELECT count(*) AS n FROM memories WHERE project_id = :p AND {column} = :e"),
                {"p": project_id, "e": entity_id},
            )
        ).one()
        return int(row.n)

    async def busiest_entities(self, project_id: uuid.UUID, entity_type: str, limit: int) -> list[str]:
        """Entities of a type with the most memories (what a `sample` job profiles)."""
        column = {"user": "user_id", "agent": "agent_id"}[entity_type]
        rows = await self.conn.execute(
            text(
                f"SELECT {column} AS name, count(*) AS n FROM memories WHERE project_id = :p AND {column} IS NOT NULL "
                f"GROUP BY {column} ORDER BY n DESC, {column} LIMIT :l"
            ),
            {"p": project_id, "l": limit},
        )
        return [str(r.name) for r in rows]

    # -- idempotency keys ---------------------------------------------------------------------------
    async def claim_key(self, project_id: uuid.UUID, key: str, request_hash: str, job_id: uuid.UUID) -> Any:
        """Bind a key to a new job; when the key is already bound, its (request_hash, job_id) row instead."""
        row = (
            await self.conn.execute(
                text(
                    "INSERT INTO idempotency_keys (project_id, key, request_hash, job_id) VALUES (:p, :k, :h, :j) "
                    "ON CONFLICT (project_id, key) DO NOTHING RETURNING request_hash, job_id, true AS new"
                ),
                {"p": project_id, "k": key, "h": request_hash, "j": job_id},
            )
        ).first()
        if row is not None:
            return row
        return (
            await self.conn.execute(
                text(
                    "SELECT request_hash, job_id, false AS new FROM idempotency_keys WHERE project_id = :p AND key = :k"
                ),
                {"p": project_id, "k": key},
            )
        ).one()

    # -- export jobs ----------------------------------------------------------------------------------
    async def latest_job(self, project_id: uuid.UUID, kind: str, match: dict[str, Any]) -> Any | None:
        """The newest job of a kind whose payload's `match` contains these values."""
        return (
            await self.conn.execute(
                text(
                    "SELECT id, status, payload, results, error FROM events WHERE project_id = :p AND event_type = :k "
                    "AND payload -> 'match' @> CAST(:m AS jsonb) ORDER BY created_at DESC, id DESC LIMIT 1"
                ),
                {"p": project_id, "k": kind, "m": orjson.dumps(match).decode()},
            )
        ).first()

    async def job(self, project_id: uuid.UUID, kind: str, job_id: uuid.UUID) -> Any | None:
        return (
            await self.conn.execute(
                text(
                    "SELECT id, status, payload, results, error, created_at FROM events "
                    "WHERE project_id = :p AND event_type = :k AND id = :id"
                ),
                {"p": project_id, "k": kind, "id": job_id},
            )
        ).first()
