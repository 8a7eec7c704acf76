"""Entity use cases: list, get, create, and delete an entity with its memories."""

from __future__ import annotations

from typing import Any

from memserver.errors import BadRequest
from memserver.storage.db import Database
from memserver.storage.models import Memory
from memserver.storage.repositories.entities import EntityRepository, entity_column
from memserver.storage.repositories.memories import MemoryRepository
from memserver.types import Principal

TYPE_ALIASES = {
    "user": "user",
    "users": "user",
    "agent": "agent",
    "agents": "agent",
    "app": "app",
    "apps": "app",
    "run": "run",
    "runs": "run",
    "session": "run",
    "sessions": "run",
}


def entity_type(value: str, *, key: str = "error") -> str:
    try:
        return TYPE_ALIASES[value.lower()]
    except KeyError:
        raise BadRequest("Invalid entity type", key=key) from None


async def list_entities(
    db: Database, principal: Principal, *, page: int, page_size: int
) -> tuple[list[Any], dict[str, int]]:
    async with db.connect() as conn:
        return await EntityRepository(conn).list(principal.project_id, limit=page_size, offset=(page - 1) * page_size)


async def get_entity(db: Database, principal: Principal, etype: str, name: str) -> Any | None:
    async with db.connect() as conn:
        return await EntityRepository(conn).get(principal.project_id, etype, name)


async def create_entity(
    db: Database, principal: Principal, etype: str, name: str, metadata: dict[str, Any] | None
) -> Any:
    async with db.connect() as conn:
        return await EntityRepository(conn).upsert(principal.project_id, etype, name, metadata)


async def delete_entity(db: Database, principal: Principal, etype: str, name: str) -> int:
    """Delete the entity and every memory scoped to it (with DELETE history); idempotent."""
    col = Memory.__table__.c[entity_column(etype)]
    async with db.transaction() as conn:
        deleted = await MemoryRepository(conn).delete_where(principal.project_id, col == name)
        await EntityRepository(conn).delete(principal.project_id, etype, name)
    return deleted


async def entity_name_by_id(db: Database, principal: Principal, etype: str, entity_id: int) -> str | None:
    async with db.connect() as conn:
        row = await EntityRepository(conn).get_by_id(principal.project_id, etype, entity_id)
    return None if row is None else str(row.name)
