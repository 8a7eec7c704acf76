"""An add's event: its status, results and error."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import Field

from memserver.api.kit.wire import JobState, Out, Page
from memserver.domain.rows.events import EventRow


class Event(Out):
    id: str
    event_type: str = Field(description="ADD, ...")
    status: JobState
    payload: Any = Field(description="The request, normalised.")
    metadata: dict[str, Any] | None
    results: list[Any]
    error: str | None
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None
    completed_at: datetime | None
    latency: float | None = Field(description="milliseconds")
    graph_status: str | None


class EventPage(Page[Event]):
    pass


def event_out(row: EventRow) -> dict[str, Any]:
    return {
        "id": str(row.id),
        "event_type": row.event_type,
        "status": row.status,
        "payload": row.payload,
        "metadata": row.metadata,
        "results": row.results or [],
        "error": row.error,
        "created_at": row.created_at,
        "updated_at": row.updated_at,
        "started_at": row.started_at,
        "completed_at": row.completed_at,
        "latency": row.latency_ms,
        # an add with enable_graph wrote its relations with its memories: same status (metadata.graph)
        "graph_status": row.status if isinstance(row.metadata, dict) and "graph" in row.metadata else None,
    }
