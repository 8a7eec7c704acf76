"""Usage per day of one project: counters added by the API processes (`usage_counters`, hourly), and what the
history and events tables already record, grouped by local day. Each read is one range scan of the project
(`ix_memory_history_created`, `ix_events_project_created`, the counters' primary key)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

from sqlalchemy import text

from memserver.storage.repositories.base import Repository

# Adds each process's counts to the stored ones: N processes flushing the same hour add up.
_ADD = text(
    """
    INSERT INTO usage_counters (project_id, hour, metric, value)
    SELECT * FROM unnest(CAST(:projects AS uuid[]), CAST(:hours AS timestamptz[]), CAST(:metrics AS text[]),
                         CAST(:values AS bigint[]))
    ON CONFLICT (project_id, hour, metric) DO UPDATE SET value = usage_counters.value + excluded.value
    """
)
_SINCE = text("SELECT at FROM usage_meta WHERE name = 'counting_since'")
_HISTORY = text(
    """
    SELECT (created_at AT TIME ZONE :tz)::date AS day, event, count(*) AS n
    FROM memory_history WHERE project_id = :p AND created_at >= :start AND created_at < :end
    GROUP BY 1, 2
    """
)
_COUNTERS = text(
    """
    SELECT (hour AT TIME ZONE :tz)::date AS day, metric, sum(value) AS n
    FROM usage_counters WHERE project_id = :p AND hour > CAST(:start AS timestamptz) - interval '1 hour' AND hour < :end
    GROUP BY 1, 2
    """
)


def _spent(key: str) -> str:
    """The sum of a usage key of `events.metadata`, where it is a number (imported events may carry anything)."""
    return (
        f"sum(CASE WHEN jsonb_typeof(metadata -> '{key}') = 'number' THEN (metadata ->> '{key}')::numeric END) AS {key}"
    )


# The events: LLM usage the jobs recorded, and failures (adds, other jobs, webhook deliveries).
_EVENTS = text(
    f"""
    SELECT (created_at AT TIME ZONE :tz)::date AS day,
           {_spent("llm_calls")}, {_spent("prompt_tokens")}, {_spent("completion_tokens")},
           count(*) FILTER (WHERE status = 'FAILED' AND event_type = 'ADD') AS failed_adds,
           count(*) FILTER (WHERE status = 'FAILED' AND event_type NOT IN ('ADD', 'WEBHOOK')) AS failed_jobs,
           count(*) FILTER (WHERE status = 'FAILED' AND event_type = 'WEBHOOK') AS failed_deliveries
    FROM events WHERE project_id = :p AND created_at >= :start AND created_at < :end
    GROUP BY 1
    """
)


class UsageRepository(Repository):
    async def add(self, counts: Sequence[tuple[uuid.UUID, datetime, str, int]]) -> None:
        """Add counts (project, hour, metric, n) to the stored ones, in one statement."""
        if not counts:
            return
        projects, hours, metrics, values = (list(c) for c in zip(*counts, strict=True))
        await self.conn.execute(_ADD, {"projects": projects, "hours": hours, "metrics": metrics, "values": values})

    async def counting_since(self) -> datetime | None:
        return (await self.conn.execute(_SINCE)).scalar()

    async def per_day(
        self, project_id: uuid.UUID, tz: str, start: datetime, end: datetime
    ) -> dict[str, dict[date, Any]]:
        """{series: {local day: value}} for the days between `start` and `end` (local midnights)."""
        params = {"p": project_id, "tz": tz, "start": start, "end": end}
        out: dict[str, dict[date, Any]] = {}
        for row in await self.conn.execute(_HISTORY, params):
            out.setdefault(f"history:{row.event}", {})[row.day] = int(row.n)
        for row in await self.conn.execute(_COUNTERS, params):
            out.setdefault(f"counter:{row.metric}", {})[row.day] = int(row.n)
        for values in (await self.conn.execute(_EVENTS, params)).mappings():
            day = values["day"]
            for key, value in values.items():
                if key != "day" and value is not None:
                    out.setdefault(f"events:{key}", {})[day] = int(value)
        return out
