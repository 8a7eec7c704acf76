"""Events: an add (or other job) and its outcome (see `memserver.domain.rows`)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Protocol


class EventRow(Protocol):
    """An add (or other job) and its outcome."""

    id: uuid.UUID
    event_type: str
    status: str
    payload: Any
    results: list[Any] | None
    error: str | None
    metadata: dict[str, Any] | None
    latency_ms: float | None
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None
    completed_at: datetime | None


class EventPageRow(EventRow, Protocol):
    total: int
