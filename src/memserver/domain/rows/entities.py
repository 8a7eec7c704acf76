"""Entities (users, agents, apps, runs) as created and listed (see `memserver.domain.rows`)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol


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
