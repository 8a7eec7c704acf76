"""Entity use cases: list, get, create, and delete an entity with its memories."""

from __future__ import annotations

from typing import Any

from memserver.domain import limits
from memserver.domain.principal import Principal
from memserver.domain.rows.entities import EntityCountRow, EntityRow
from memserver.services import permissions
from memserver.storage.db import Database
from memserver.storage.repositories.entities import EntityRepository
from memserver.storage.repositories.memory_writes import MemoryWriter


async def list_entities(
    db: Database, principal: Principal, *, page: int, page_size: int
) -> tuple[list[EntityCountRow], dict[str, int]]:
    async with db.connect() as conn:
        return await EntityRepository(conn).list(principal.project_id, limit=page_size, offset=(page - 1) * page_size)


async def get_entity(db: Database, principal: Principal, etype: str, name: str) -> EntityCountRow | None:
    async with db.connect() as conn:
        return await EntityRepository(conn).get(principal.project_id, etype, name)


async def create_entity(
    db: Database, principal: Principal, etype: str, name: str, metadata: dict[str, Any] | None
) -> EntityRow:
    permissions.require_owner(principal, "creating entities")
    async with db.connect() as conn:
        return await EntityRepository(conn).upsert(principal.project_id, etype, name, metadata)


async def delete_entity(db: Database, principal: Principal, etype: str, name: str) -> int:
    """Delete the entity and every memory scoped to it (with DELETE history); idempotent."""
    permissions.require_owner(principal, "deleting entities")
    async with db.transaction() as conn:
        deleted = await MemoryWriter(conn).delete_entity(principal.project_id, etype, name)
        await EntityRepository(conn).delete(principal.project_id, etype, name)
    return deleted


async def entity_name_by_id(db: Database, principal: Principal, etype: str, entity_id: int) -> str | None:
    if not limits.is_row_id(entity_id):
        return None
    async with db.connect() as conn:
        row = await EntityRepository(conn).get_by_id(principal.project_id, etype, entity_id)
    return None if row is None else str(row.name)
