"""Memory use cases: read, update, delete, history, batch operations. Adds are `services.ingest`."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, TypeVar

import numpy as np
from numpy.typing import NDArray

from memserver.domain import binding
from memserver.domain.changes import UNSET, MemoryEdit, Unset
from memserver.domain.dates import Period
from memserver.domain.filters import Node
from memserver.domain.principal import Principal
from memserver.domain.rows.memories import HistoryPageRow, HistoryRow, MemoryPageRow, MemoryRow
from memserver.errors import BadRequest, NotFound
from memserver.pipeline import messages as msgs
from memserver.pipeline import time_expressions
from memserver.providers.registry import Providers
from memserver.services import permissions
from memserver.storage.db import Database
from memserver.storage.repositories.graph_writes import PostgresGraphStore
from memserver.storage.repositories.memories import MemoryRepository
from memserver.storage.repositories.memory_states import MemoryStates
from memserver.storage.repositories.memory_writes import MemoryWriter

MAX_BATCH = 1000
R = TypeVar("R")


def _reachable(principal: Principal, rows: Sequence[R]) -> list[R]:
    """The rows the key may reach: a bound key's view has only its entity's memories (`domain.binding`); it
    is told of another's exactly what it is told of a memory that does not exist."""
    return [r for r in rows if not principal.binding or binding.allows(principal.binding, r)]


def in_the_past(as_of: datetime | None) -> bool:
    """Whether `as_of` names a past moment: at or after now, memory as it stands is today's (today's path)."""
    return as_of is not None and as_of < datetime.now(UTC)


async def get(db: Database, principal: Principal, memory_id: uuid.UUID, *, as_of: datetime | None = None) -> MemoryRow:
    """One memory; with a past `as_of`, as it stood then (not found if it did not exist then)."""
    async with db.connect() as conn:
        if as_of is not None and in_the_past(as_of):
            row = await MemoryStates(conn).get(principal.project_id, memory_id, as_of)
        else:
            row = await MemoryRepository(conn).get(principal.project_id, memory_id)
    if row is None or not _reachable(principal, [row]):
        raise NotFound("Memory not found!")
    return row


async def list_memories(
    db: Database,
    principal: Principal,
    node: Node | None,
    *,
    page: int,
    page_size: int,
    show_expired: bool,
    as_of: datetime | None = None,
) -> tuple[list[MemoryPageRow], int]:
    """One page, newest first, and the total; with a past `as_of`, of the memories as they stood then."""
    offset = (page - 1) * page_size
    async with db.connect() as conn:
        if as_of is not None and in_the_past(as_of):
            return await MemoryStates(conn).list(
                principal.project_id, node, as_of, limit=page_size, offset=offset, show_expired=show_expired
            )
        return await MemoryRepository(conn).list(
            principal.project_id,
            node,
            limit=page_size,
            offset=offset,
            show_expired=show_expired,
        )


@dataclass
class UpdateInput:
    text: str | None = None
    metadata: dict[str, Any] | Unset | None = UNSET
    expiration_date: date | Unset | None = UNSET
    created_at: datetime | None = None
    event_period: Period | Unset | None = UNSET  # UNSET: kept, unless new text names a time


async def update(
    db: Database, providers: Providers, principal: Principal, memory_id: uuid.UUID, change: UpdateInput
) -> MemoryRow:
    """Change a memory's text/metadata/expiry/timestamp and record an UPDATE history entry."""
    permissions.require_owner(principal, "changing memories")
    vector = (await providers.embedder.embed([change.text]))[0] if change.text is not None else None
    async with db.transaction() as conn:
        repo = MemoryRepository(conn)
        rows = _reachable(principal, await repo.get_for_update(principal.project_id, [memory_id]))
        if not rows:
            raise NotFound("Memory not found!")
        return await _apply_update(MemoryWriter(conn), principal, rows[0], change, vector)


async def _apply_update(
    writer: MemoryWriter,
    principal: Principal,
    row: MemoryRow,
    change: UpdateInput,
    vector: NDArray[np.float32] | None,
) -> MemoryRow:
    if row.immutable:
        raise BadRequest(f"Memory {row.id} is immutable and cannot be updated. Delete it and add a new one.")
    text_changed = change.text is not None and change.text != row.memory
    period = change.event_period
    if period is UNSET and text_changed and change.text is not None:
        # new text that names a time is about that time (read against when the memory was recorded)
        found = time_expressions.event_period(change.text, change.created_at or row.created_at)
        period = Period(*found) if found else UNSET
    edit = MemoryEdit(
        memory_id=row.id,
        text=change.text if text_changed else None,
        hash=msgs.text_hash(change.text) if text_changed and change.text is not None else None,
        embedding=vector if text_changed else None,
        metadata=change.metadata,
        expiration_date=change.expiration_date,
        created_at=change.created_at,
        event_period=period,
    )
    updated, _previous = await writer.edit(principal.project_id, edit)
    if text_changed:  # the old text's graph relations are no longer stated by this memory
        await PostgresGraphStore(writer.conn).expire_memory_relations(principal.project_id, row.id)
    return updated


async def delete(db: Database, principal: Principal, memory_id: uuid.UUID, *, delete_linked: bool) -> int:
    """Delete one memory (and, with delete_linked, the memories it superseded); returns the cascade count."""
    permissions.require_owner(principal, "deleting memories")
    async with db.transaction() as conn:
        repo = MemoryRepository(conn)
        # Locked first: an unknown (or already deleted) id is a 404 that must not cascade to the
        # memories that still point at it.
        if not _reachable(principal, await repo.get_for_update(principal.project_id, [memory_id])):
            raise NotFound("Memory not found!")
        ids = [memory_id]
        if delete_linked:  # a bound key's cascade stays within its entity's memories
            linked = await repo.linked_ids(principal.project_id, memory_id)
            if principal.binding and linked:
                rows = await repo.get_for_update(principal.project_id, linked)
                linked = [r.id for r in _reachable(principal, rows)]
            ids += linked
        count = await MemoryWriter(conn).delete_ids(principal.project_id, ids)
    return count - 1


async def delete_matching(db: Database, principal: Principal, node: Node) -> int:
    """Delete every memory the filter matches (with DELETE history); returns the count."""
    permissions.require_owner(principal, "deleting memories")
    async with db.transaction() as conn:
        return await MemoryWriter(conn).delete_matching(principal.project_id, node)


async def history(db: Database, principal: Principal, memory_id: uuid.UUID) -> list[HistoryRow]:
    async with db.connect() as conn:
        repo = MemoryRepository(conn)
        rows = await repo.history(principal.project_id, memory_id)
        if not rows and await repo.get(principal.project_id, memory_id) is None:
            raise NotFound("Memory not found!")
        if principal.binding:  # a memory's history is of its one scope; the memory may be gone (hard delete)
            memory = await repo.get(principal.project_id, memory_id)
            if not _reachable(principal, [memory] if memory is not None else rows[:1]):
                raise NotFound("Memory not found!")
    return rows


async def history_page(
    db: Database, principal: Principal, *, page: int, limit: int
) -> tuple[list[HistoryPageRow], int]:
    async with db.connect() as conn:
        return await MemoryRepository(conn).history_page(principal.project_id, limit=limit, offset=(page - 1) * limit)


def _check_batch(n: int, verb: str) -> None:
    if n == 0:
        raise BadRequest(f'No memories to {verb}: send {{"memories": [{{"memory_id": ...}}]}}')
    if n > MAX_BATCH:
        raise BadRequest(f"Maximum of {MAX_BATCH} memories can be {verb}d in a single request")


async def batch_update(
    db: Database, providers: Providers, principal: Principal, changes: list[tuple[uuid.UUID, UpdateInput]]
) -> int:
    """All-or-nothing: every memory must exist and be mutable, or nothing changes."""
    permissions.require_owner(principal, "changing memories")
    _check_batch(len(changes), "update")
    ids = [mid for mid, _ in changes]
    if len(set(ids)) != len(ids):
        raise BadRequest("Each memory_id may appear only once in a batch update")
    texts = [c.text for _, c in changes if c.text is not None]
    vectors = iter(await providers.embedder.embed(texts)) if texts else iter(())
    async with db.transaction() as conn:
        repo = MemoryRepository(conn)
        rows = {r.id: r for r in _reachable(principal, await repo.get_for_update(principal.project_id, ids))}
        missing = [str(i) for i in ids if i not in rows]
        if missing:
            raise NotFound(f"Memory not found: {', '.join(missing)}")
        writer = MemoryWriter(conn)
        for mid, change in changes:
            vector = next(vectors) if change.text is not None else None
            await _apply_update(writer, principal, rows[mid], change, vector)
    return len(changes)


async def batch_delete(db: Database, principal: Principal, ids: list[uuid.UUID]) -> int:
    permissions.require_owner(principal, "deleting memories")
    _check_batch(len(ids), "delete")
    unique = list(dict.fromkeys(ids))
    async with db.transaction() as conn:
        repo = MemoryRepository(conn)
        found = {r.id for r in _reachable(principal, await repo.get_for_update(principal.project_id, unique))}
        missing = [str(i) for i in unique if i not in found]
        if missing:
            raise NotFound(f"Memory not found: {', '.join(missing)}")
        return await MemoryWriter(conn).delete_ids(principal.project_id, unique)
