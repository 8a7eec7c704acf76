"""Entities as their list, get and create routes answer them."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import Field

from memserver.api.kit.wire import Message, Out, Page
from memserver.domain.rows.entities import EntityCountRow


class Entity(Out):
    id: str = Field(description="Numeric, as a string.")
    name: str = Field(description="The user, agent, app or run id.")
    type: Literal["user", "agent", "app", "run"]
    created_at: datetime
    updated_at: datetime
    owner: str
    organization: str
    metadata: dict[str, Any] | None
    total_memories: int


class EntityPage(Page[Entity]):
    total_users: int
    total_agents: int
    total_apps: int
    total_runs: int


class CreatedEntity(Out):
    id: int
    metadata: dict[str, Any] | None
    created_at: datetime
    updated_at: datetime
    graph_entities: None
    is_deleted: bool
    project: str


class CreatedUser(CreatedEntity):
    user_id: str


class CreatedAgent(CreatedEntity):
    agent_id: str
    name: str


class CreatedApp(CreatedEntity):
    app_id: str
    name: str


class CreatedRun(CreatedEntity):
    run_id: str
    name: str


class EntityDeleted(Message):
    deleted_memories: int


def entity_out(row: EntityCountRow, *, owner: str, organization: str) -> dict[str, Any]:
    return {
        "id": str(row.id),
        "name": row.name,
        "type": row.type,
        "created_at": row.created_at,
        "updated_at": row.updated_at,
        "owner": owner,
        "organization": organization,
        "metadata": row.metadata,
        "total_memories": int(row.total_memories),
    }
