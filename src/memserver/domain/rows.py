"""The rows the repositories return, described for the type checker.

Repositories hand back SQLAlchemy `Row` objects as they come off the wire (no copy into dataclasses:
list and search pages stay as fast as the driver makes them). These protocols name the columns each
kind of row carries, so serializers and services read them typed; a repository `cast`s its result to
one of them, which costs nothing at run time. They live here, not in `storage/`, because the HTTP edge
reads rows too and may not import storage.
"""

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
    created_at: datetime
    updated_at: datetime


class HistoryPageRow(HistoryRow, Protocol):
    total: int


class EntityRefRow(Protocol):
    """An entity's identity: its numeric id, type (user, agent, app, run) and name."""

    id: int
    type: str
    name: str


class EntityRow(EntityRefRow, Protocol):
    """An entity as written (create returns it)."""

    metadata: dict[str, Any] | None
    created_at: datetime
    updated_at: datetime


class EntityCountRow(EntityRow, Protocol):
    """An entity as listed: with the number of memories scoped to it."""

    total_memories: int


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


class OrgRow(Protocol):
    id: uuid.UUID
    name: str
    created_at: datetime
    updated_at: datetime


class MemberRoleRow(Protocol):
    """A member as a project lists it: its email and its role there."""

    email: str
    role: str


class MemberRow(MemberRoleRow, Protocol):
    """A member of an organisation."""

    id: uuid.UUID
    created_at: datetime


class MemberRefRow(MemberRoleRow, Protocol):
    id: uuid.UUID


class ProjectRow(Protocol):
    """A project with its settings document."""

    id: uuid.UUID
    org_id: uuid.UUID
    name: str
    description: str | None
    custom_instructions: str | None
    custom_categories: Any
    settings: dict[str, Any] | None
    created_at: datetime
    updated_at: datetime


class MemberProjectRow(ProjectRow, Protocol):
    """A project a member reaches, with the member's role in it."""

    role: str


class FeedbackRow(Protocol):
    id: uuid.UUID
    memory_id: uuid.UUID
    member_email: str
    feedback: str
    feedback_reason: str | None
    created_at: datetime
    updated_at: datetime


class WebhookRow(Protocol):
    id: uuid.UUID
    project_id: uuid.UUID
    name: str
    url: str
    event_types: list[str]
    is_active: bool
    secret: str
    owner: str | None
    created_at: datetime
    updated_at: datetime


class DeliveryRow(EventRow, Protocol):
    """A webhook delivery: an `events` row of kind WEBHOOK, with its attempts and retry time."""

    attempts: int
    not_before: datetime | None
