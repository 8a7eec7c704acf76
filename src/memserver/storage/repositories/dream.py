"""Dream synthesis: the scheduler's scan and state (`dream_scan`, `dream_state`), its DREAM job rows, and what a
run reads (the user's eligible memories and patterns).

A memory is eligible when it is scoped to a `user_id` alone (no agent, app or run), is not itself a pattern, is
current (not superseded) and unexpired, and was added after the project turned Synthesis on: its `seq` (the
insertion order, which a backdated `timestamp` does not change) is past the project's boundary.

The scheduler never counts a whole table: each tick reads only the memories added since the tick before last
(`seq` past the watermark, through a BRIN index that keeps to the table's newest pages) and marks their users
touched; it then counts the memories of touched users only, up to the minimum.
"""

from __future__ import annotations

import typing
import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import text

from memserver.domain.changes import SYNTHESIZED
from memserver.domain.jobs import JobKind, JobStatus
from memserver.domain.rows.dream import DreamPatternRow, DreamSourceRow, DreamStateRow, DueUserRow, QueuedRunRow
from memserver.storage.repositories.base import Repository

_DREAM = JobKind.DREAM.value
_OPEN = f"('{JobStatus.PENDING.value}', '{JobStatus.RUNNING.value}')"
_USER_ONLY = "m.user_id IS NOT NULL AND m.agent_id IS NULL AND m.app_id IS NULL AND m.run_id IS NULL"
_CURRENT = "m.replaced_by IS NULL AND (m.expiration_date IS NULL OR m.expiration_date >= CURRENT_DATE)"
_ELIGIBLE = f"{_USER_ONLY} AND m.source <> '{SYNTHESIZED}' AND {_CURRENT}"
_CURRENT_SEQ = "coalesce(pg_sequence_last_value(pg_get_serial_sequence('memories', 'seq')), 0)"
_ENABLED = "(settings #>> '{dream,reflection_enabled}') = 'true'"
_BOUNDARY = "coalesce((settings #>> '{dream,boundary_seq}')::bigint, 0)"
# the enabled projects and their boundaries, joined as a relation `p(id, boundary)`
_PROJECTS = "unnest(CAST(:projects AS uuid[]), CAST(:boundaries AS bigint[])) AS p(id, boundary)"

# A tick reads at most this many `seq` values past the last one it saw (about a second's work at the measured
# 3 us per memory): a scheduler far behind (turned off for a long time) catches up over several ticks instead
# of running one statement past the statement timeout, again and again.
MAX_SCAN_SEQS = 250_000
# One tick per interval across every process: the first to lock the row after the interval takes the tick
# (the others skip it, they never wait). It reads from where the tick before last had seen, so a memory whose
# transaction drew its `seq` before a tick but committed after it is read by the next one.
_CLAIM_TICK = text(
    f"""
    WITH prev AS (
        SELECT scanned_seq, seen_seq FROM dream_scan
        WHERE id = 1 AND ticked_at <= now() - make_interval(secs => :tick_s)
        FOR UPDATE SKIP LOCKED)
    UPDATE dream_scan d SET ticked_at = now(), scanned_seq = prev.seen_seq,
        seen_seq = least({_CURRENT_SEQ}, prev.seen_seq + :max_scan)
    FROM prev WHERE d.id = 1
    RETURNING prev.scanned_seq AS from_seq, d.seen_seq AS to_seq
    """
)
_ENABLED_PROJECTS = text(f"SELECT id, {_BOUNDARY} AS boundary FROM projects WHERE {_ENABLED}")
_MARK_TOUCHED = text(
    f"""
    INSERT INTO dream_state (project_id, user_id, touched_seq)
    SELECT m.project_id, m.user_id, max(m.seq)
    FROM memories m JOIN {_PROJECTS} ON p.id = m.project_id
    WHERE m.seq > :from_seq AND m.seq <= :to_seq AND m.seq > p.boundary AND {_ELIGIBLE}
    GROUP BY m.project_id, m.user_id
    ON CONFLICT (project_id, user_id) DO UPDATE
        SET touched_seq = greatest(dream_state.touched_seq, excluded.touched_seq)
    """
)
_OPEN_RUN = (
    f"SELECT 1 FROM events e WHERE e.project_id = s.project_id AND e.event_type = '{_DREAM}' "
    f"AND e.status IN {_OPEN} AND e.payload ->> 'user_id' = s.user_id"
)
# Users with memories newer than their last run and than the last short count, past their cadence, without
# an open run; each with its eligible memories counted up to the minimum (an index range of that user only:
# "+ 0" keeps the BRIN index out, which would read the whole table past the boundary for each user, 0.6 ms
# per user at 100k memories against 0.05 ms).
_DUE = text(
    f"""
    WITH c AS (
        SELECT s.project_id, s.user_id, s.touched_seq, s.last_run_at, p.boundary
        FROM dream_state s JOIN {_PROJECTS} ON p.id = s.project_id
        WHERE s.touched_seq > greatest(s.last_seq, s.checked_seq)
          AND coalesce(s.next_due_at, '-infinity') <= now()
          AND NOT EXISTS ({_OPEN_RUN})
        ORDER BY s.last_run_at NULLS FIRST, s.touched_seq
        LIMIT :limit)
    SELECT c.project_id, c.user_id, c.touched_seq,
        (SELECT count(*) FROM (
            SELECT 1 FROM memories m
            WHERE m.project_id = c.project_id AND m.user_id = c.user_id AND m.seq + 0 > c.boundary AND {_ELIGIBLE}
            LIMIT :minimum) AS x) AS eligible
    FROM c ORDER BY c.last_run_at NULLS FIRST, c.touched_seq
    """
)
_OPEN_PER_PROJECT = text(
    f"SELECT project_id, count(*) AS n FROM events WHERE event_type = '{_DREAM}' AND status IN {_OPEN} "
    "AND project_id = ANY(CAST(:projects AS uuid[])) GROUP BY project_id"
)
# At most one open run per project and user (uq_events_open_dream): a second insert is skipped, not an error.
_QUEUE = text(
    f"""
    INSERT INTO events (id, project_id, event_type, status, payload, dispatched_at)
    SELECT gen_random_uuid(), t.project_id, '{_DREAM}', '{JobStatus.PENDING.value}',
        jsonb_build_object('user_id', t.user_id, 'trigger', CAST(:trigger AS text)), now()
    FROM unnest(CAST(:projects AS uuid[]), CAST(:users AS text[])) AS t(project_id, user_id)
    ON CONFLICT DO NOTHING
    RETURNING id, created_at, project_id, payload ->> 'user_id' AS user_id, status
    """
)
_FIND_OPEN = text(
    f"SELECT id, created_at, project_id, payload ->> 'user_id' AS user_id, status FROM events WHERE project_id = :p "
    f"AND event_type = '{_DREAM}' AND status IN {_OPEN} AND payload ->> 'user_id' = :u"
)
_SOURCES = text(
    f"""
    SELECT m.id, m.memory, m.hash, m.categories, m.created_at, m.seq FROM memories m
    WHERE m.project_id = :p AND m.user_id = :u AND m.seq + 0 > :boundary AND {_ELIGIBLE}
    ORDER BY m.seq DESC LIMIT :limit
    """
)
_PATTERNS = text(
    f"""
    SELECT m.id, m.memory, m.hash, m.provenance FROM memories m
    WHERE m.project_id = :p AND m.user_id = :u AND {_USER_ONLY} AND m.source = '{SYNTHESIZED}'
      AND (m.expiration_date IS NULL OR m.expiration_date >= CURRENT_DATE)
    ORDER BY m.updated_at DESC, m.id LIMIT :limit
    """
)
_HASHES = text("SELECT id, hash FROM memories WHERE project_id = :p AND id = ANY(CAST(:ids AS uuid[]))")
_STATE = text(
    "SELECT touched_seq, checked_seq, last_seq, last_input_hash, last_run_at, next_due_at, runs, patterns "
    "FROM dream_state WHERE project_id = :p AND user_id = :u"
)
_RECORD_RUN = text(
    """
    INSERT INTO dream_state AS s (project_id, user_id, touched_seq, last_seq, last_input_hash, last_run_at,
        next_due_at, runs, patterns)
    VALUES (:p, :u, :seq, :seq, :hash, now(), now() + make_interval(secs => :cadence_s), 1, :patterns)
    ON CONFLICT (project_id, user_id) DO UPDATE SET
        last_seq = greatest(s.last_seq, excluded.last_seq), last_input_hash = excluded.last_input_hash,
        last_run_at = now(), next_due_at = excluded.next_due_at, runs = s.runs + 1, patterns = excluded.patterns
    """
)
# A run that needed no call: nothing new (its memories are read), or too few memories (counted again only
# when the scan sees a newer one).
_RECORD_SKIP = {
    column: text(
        f"""
        INSERT INTO dream_state AS s (project_id, user_id, touched_seq, {column}) VALUES (:p, :u, :seq, :seq)
        ON CONFLICT (project_id, user_id) DO UPDATE SET {column} = greatest(s.{column}, excluded.{column})
        """
    )
    for column in ("last_seq", "checked_seq")
}
_MARK_SHORT = text(
    "UPDATE dream_state s SET checked_seq = t.seq FROM unnest(CAST(:projects AS uuid[]), CAST(:users AS text[]), "
    "CAST(:seqs AS bigint[])) AS t(project_id, user_id, seq) WHERE s.project_id = t.project_id AND s.user_id = t.user_id"
)
_DEFER = text(
    """
    INSERT INTO dream_state AS s (project_id, user_id, next_due_at)
    VALUES (:p, :u, now() + make_interval(secs => :delay_s))
    ON CONFLICT (project_id, user_id) DO UPDATE SET next_due_at = excluded.next_due_at
    """
)
_SET_BOUNDARY = text(
    f"""
    UPDATE projects SET settings = jsonb_set(settings, '{{dream,boundary_seq}}', to_jsonb({_CURRENT_SEQ}))
    WHERE id = :p AND settings ? 'dream'
    """
)


class DreamRepository(Repository):
    # -- the scheduler ---------------------------------------------------------------------------
    async def claim_tick(self, tick_s: float, *, max_scan: int = MAX_SCAN_SEQS) -> tuple[int, int] | None:
        """Take this interval's tick (None: another process has it, or it was taken less than `tick_s` ago) and
        move the watermark on, by at most `max_scan`; returns the range of `seq` (after, up to) this tick reads."""
        row = (await self.conn.execute(_CLAIM_TICK, {"tick_s": tick_s, "max_scan": max_scan})).first()
        return None if row is None else (int(row.from_seq), int(row.to_seq))

    async def enabled_projects(self) -> dict[uuid.UUID, int]:
        """Projects with Synthesis on -> their forward boundary (the `seq` memories must be past)."""
        return {r.id: int(r.boundary) for r in await self.conn.execute(_ENABLED_PROJECTS)}

    async def mark_touched(self, seqs: tuple[int, int], projects: dict[uuid.UUID, int]) -> int:
        """Record the users of these projects with eligible memories in this range of `seq`; returns how many."""
        params = {"from_seq": seqs[0], "to_seq": seqs[1], **_project_params(projects)}
        result = await self.conn.execute(_MARK_TOUCHED, params)
        return int(getattr(result, "rowcount", 0) or 0)

    async def due(self, projects: dict[uuid.UUID, int], *, minimum: int, limit: int) -> list[DueUserRow]:
        """Users with new eligible memories, past their cadence and without an open run (oldest run first),
        each with its eligible memories counted up to `minimum`."""
        params = {**_project_params(projects), "minimum": minimum, "limit": limit}
        return typing.cast(list[DueUserRow], list((await self.conn.execute(_DUE, params)).all()))

    async def mark_short(self, short: Sequence[DueUserRow]) -> None:
        """These users have fewer memories than the minimum: counted again only once a newer one arrives."""
        if short:
            params = {
                "projects": [r.project_id for r in short],
                "users": [r.user_id for r in short],
                "seqs": [r.touched_seq for r in short],
            }
            await self.conn.execute(_MARK_SHORT, params)

    async def open_runs(self, projects: Sequence[uuid.UUID]) -> dict[uuid.UUID, int]:
        """Open DREAM jobs per project (back-pressure)."""
        rows = await self.conn.execute(_OPEN_PER_PROJECT, {"projects": list(projects)})
        return {r.project_id: int(r.n) for r in rows}

    async def queue(self, runs: Sequence[tuple[uuid.UUID, str]], trigger: str) -> list[QueuedRunRow]:
        """Insert PENDING DREAM jobs, marked handed off (the caller hands them off after the commit); a user
        with an open run already is skipped."""
        if not runs:
            return []
        params = {"projects": [p for p, _ in runs], "users": [u for _, u in runs], "trigger": trigger}
        return typing.cast(list[QueuedRunRow], list((await self.conn.execute(_QUEUE, params)).all()))

    async def open_run(self, project_id: uuid.UUID, user_id: str) -> QueuedRunRow | None:
        row = (await self.conn.execute(_FIND_OPEN, {"p": project_id, "u": user_id})).first()
        return typing.cast(QueuedRunRow | None, row)

    async def current_seq(self) -> int:
        """The `seq` of the newest memory stored so far (the forward boundary of a project that turns Dream on)."""
        return int((await self.conn.execute(text(f"SELECT {_CURRENT_SEQ}"))).scalar_one())

    async def set_boundary_now(self, project_id: uuid.UUID) -> None:
        """Move a project's boundary to the newest memory stored (after an import: imported memories are old)."""
        await self.conn.execute(_SET_BOUNDARY, {"p": project_id})

    # -- a run -----------------------------------------------------------------------------------
    async def sources(self, project_id: uuid.UUID, user_id: str, boundary: int, limit: int) -> list[DreamSourceRow]:
        """The user's newest `limit` eligible memories, newest first."""
        params = {"p": project_id, "u": user_id, "boundary": boundary, "limit": limit}
        return typing.cast(list[DreamSourceRow], list((await self.conn.execute(_SOURCES, params)).all()))

    async def patterns(self, project_id: uuid.UUID, user_id: str, limit: int) -> list[DreamPatternRow]:
        """The user's pattern memories, most recently written first."""
        params = {"p": project_id, "u": user_id, "limit": limit}
        return typing.cast(list[DreamPatternRow], list((await self.conn.execute(_PATTERNS, params)).all()))

    async def hashes(self, project_id: uuid.UUID, ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, str]:
        """The content hash of each of these memories that still exists."""
        if not ids:
            return {}
        rows = await self.conn.execute(_HASHES, {"p": project_id, "ids": list(ids)})
        return {r.id: r.hash for r in rows}

    async def state(self, project_id: uuid.UUID, user_id: str) -> DreamStateRow | None:
        row = (await self.conn.execute(_STATE, {"p": project_id, "u": user_id})).first()
        return typing.cast(DreamStateRow | None, row)

    async def record_run(
        self, project_id: uuid.UUID, user_id: str, *, seq: int, input_hash: str, patterns: int, cadence_s: float
    ) -> None:
        params: dict[str, Any] = {
            "p": project_id,
            "u": user_id,
            "seq": seq,
            "hash": input_hash,
            "patterns": patterns,
            "cadence_s": cadence_s,
        }
        await self.conn.execute(_RECORD_RUN, params)

    async def record_skip(self, project_id: uuid.UUID, user_id: str, *, seq: int, short: bool) -> None:
        statement = _RECORD_SKIP["checked_seq" if short else "last_seq"]
        await self.conn.execute(statement, {"p": project_id, "u": user_id, "seq": seq})

    async def defer(self, project_id: uuid.UUID, user_id: str, delay_s: float) -> None:
        """Not due again for `delay_s` (a run failed: no hammering the model)."""
        await self.conn.execute(_DEFER, {"p": project_id, "u": user_id, "delay_s": delay_s})


def _project_params(projects: dict[uuid.UUID, int]) -> dict[str, Any]:
    return {"projects": list(projects), "boundaries": list(projects.values())}
