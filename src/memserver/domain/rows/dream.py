"""Dream synthesis: what a run reads and what the scheduler keeps per user (see `memserver.domain.rows`)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Protocol


class DreamSourceRow(Protocol):
    """An eligible memory a run reads (the user's own, after the forward boundary)."""

    id: uuid.UUID
    memory: str
    hash: str
    categories: list[str] | None
    created_at: datetime
    seq: int


class DreamPatternRow(Protocol):
    """A pattern memory of the user, with its provenance (`synthesis.sources`, `synthesis.evidence_hash`)."""

    id: uuid.UUID
    memory: str
    hash: str
    provenance: dict[str, Any] | None


class DreamStateRow(Protocol):
    """What the scheduler saw of a user and what the last run did."""

    touched_seq: int
    checked_seq: int
    last_seq: int
    last_input_hash: str | None
    last_run_at: datetime | None
    next_due_at: datetime | None
    runs: int
    patterns: int


class DueUserRow(Protocol):
    """A user the scheduler found with new eligible memories, and how many it has (counted up to the minimum)."""

    project_id: uuid.UUID
    user_id: str
    touched_seq: int
    eligible: int


class QueuedRunRow(Protocol):
    """A DREAM job the scheduler (or a request) queued."""

    id: uuid.UUID
    created_at: datetime
    project_id: uuid.UUID
    user_id: str
    status: str
