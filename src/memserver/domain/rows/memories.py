"""Memories and their history, as lists, searches and edits return them (see `memserver.domain.rows`)."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any, Protocol


class MemoryRow(Protocol):
    """A memory as clients see it (`storage.repositories.memories.READ_COLUMNS`): never the embedding."""

    id: uuid.UUID
    user_id: str | None
    agent_id: str | None
    app_id: str | None
    run_id: str | None
    memory: str
    hash: str
    metadata: dict[str, Any] | None
    categories: list[str] | None
    immutable: bool
    expiration_date: date | None
    replaced_by: uuid.UUID | None
    source: str
    role: str | None
    provenance: dict[str, Any] | None
    event_start: datetime | None  # the period the content is about, half-open; both None or both set
    event_end: datetime | None
    created_at: datetime
    updated_at: datetime


class MemoryPageRow(MemoryRow, Protocol):
    """A memory of a list page, with the size of the whole list (a window count)."""

    total: int


class DenseHitRow(MemoryRow, Protocol):
    """A memory found by dense search, with its cosine distance to the query and the similarity (1 - distance)."""

    distance: float
    similarity: float


class EditedMemoryRow(MemoryRow, Protocol):
    """A memory as an edit returned it, with the text it had before."""

    project_id: uuid.UUID
    previous: str


class HistoryRow(Protocol):
    """One history entry of a memory; `input` is the messages of the add that caused it."""

    id: uuid.UUID
    memory_id: uuid.UUID
    event: str
    old_memory: str | None
    new_memory: str | None
    input: list[Any] | None
    event_id: uuid.UUID | None
    user_id: str | None
    agent_id: str | None
    app_id: str | None
    run_id: str | None
    categories: list[str] | None
    metadata: dict[str, Any] | None
    event_start: datetime | None
    event_end: datetime | None
    created_at: datetime
    updated_at: datetime


class HistoryPageRow(HistoryRow, Protocol):
    total: int
