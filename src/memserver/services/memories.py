"""Memory use cases: add (verbatim), read, update, delete, history, batch operations."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import ColumnElement
from sqlalchemy.exc import IntegrityError

from memserver.errors import BadRequest, Conflict, NotFound
from memserver.pipeline import messages as msgs
from memserver.providers.registry import Providers
from memserver.storage.db import Database
from memserver.storage.filters import Node, compile_filter
from memserver.storage.models import Memory
from memserver.storage.repositories.memories import AddOutcome, MemoryRepository, NewMemory, Scope
from memserver.types import Principal

MAX_BATCH = 1000


class _Unset:
    pass


UNSET: Any = _Unset()


@dataclass
class AddInput:
    messages: list[dict[str, Any]]
    scope: Scope
    metadata: dict[str, Any] | None = None
    categories: list[str] | None = None
    immutable: bool = False
    expiration_date: date | None = None
    created_at: datetime | None = None
    payload: dict[str, Any] = field(default_factory=dict)


@dataclass
class AddResult:
    event_id: uuid.UUID
    status: str  # SUCCEEDED | FAILED
    results: list[AddOutcome]
    message: str


async def add_verbatim(db: Database, providers: Providers, principal: Principal, req: AddInput) -> AddResult:
    """Store each non-system message verbatim; exact duplicates in the scope become NOOPs.

    Embeddings are computed first (no transaction open), then everything is written by one
    statement, so a failing embedder or database leaves nothing half-written.
    """
    texts = msgs.verbatim_texts(req.messages)
    first_by_hash: dict[str, int] = {}
    items: list[NewMemory] = []
    duplicates: list[tuple[int, str, str]] = []  # (message index, text, hash of first occurrence)
    for t in texts:
        h = msgs.text_hash(t.text)
        if h in first_by_hash:
            duplicates.append((t.index, t.text, h))
            continue
        first_by_hash[h] = t.index
        items.append(NewMemory(text=t.text, hash=h, role=t.role, actor_id=t.name, index=t.index))
    vectors = await providers.embedder.embed([it.text for it in items])
    event_id = uuid.uuid4()
    history_input = [{"role": m.get("role"), "content": m.get("content")} for m in req.messages]
    async with db.connect() as conn:
        outcomes = await MemoryRepository(conn).add_verbatim(
            principal.project_id,
            req.scope,
            items,
            vectors,
            metadata=req.metadata,
            categories=req.categories,
            immutable=req.immutable,
            expiration_date=req.expiration_date,
            created_at=req.created_at,
            event_id=event_id,
            event_payload=req.payload,
            history_input=history_input,
        )
    by_index = {o.index: o for o in outcomes}
    for index, text, h in duplicates:
        first = by_index[first_by_hash[h]]
        outcomes.append(AddOutcome(index=index, id=first.id, text=text, event="NOOP"))
    outcomes.sort(key=lambda o: o.index)
    return AddResult(event_id=event_id, status="SUCCEEDED", results=outcomes, message="Memories stored successfully")


async def get(db: Database, principal: Principal, memory_id: uuid.UUID) -> Any:
    async with db.connect() as conn:
        row = await MemoryRepository(conn).get(principal.project_id, memory_id)
    if row is None:
        raise NotFound("Memory not found!")
    return row


async def list_memories(
    db: Database, principal: Principal, node: Node | None, *, page: int, page_size: int, show_expired: bool
) -> tuple[list[Any], int]:
    where = compile_filter(node) if node is not None else None
    async with db.connect() as conn:
        return await MemoryRepository(conn).list(
            principal.project_id,
            where,
            limit=page_size,
            offset=(page - 1) * page_size,
            show_expired=show_expired,
        )


@dataclass
class UpdateInput:
    text: str | None = None
    metadata: Any = UNSET  # dict | None
    expiration_date: Any = UNSET  # date | None
    created_at: datetime | None = None


async def update(
    db: Database, providers: Providers, principal: Principal, memory_id: uuid.UUID, change: UpdateInput
) -> Any:
    """Change a memory's text/metadata/expiry/timestamp and record an UPDATE history entry."""
    vector = (await providers.embedder.embed([change.text]))[0] if change.text is not None else None
    async with db.transaction() as conn:
        repo = MemoryRepository(conn)
        rows = await repo.get_for_update(principal.project_id, [memory_id])
        if not rows:
            raise NotFound("Memory not found!")
        return await _apply_update(repo, principal, rows[0], change, vector)


async def _apply_update(
    repo: MemoryRepository, principal: Principal, row: Any, change: UpdateInput, vector: Any
) -> Any:
    if row.immutable:
        raise BadRequest(f"Memory {row.id} is immutable and cannot be updated. Delete it and add a new one.")
    values: dict[str, Any] = {}
    new_text = row.memory
    if change.text is not None and change.text != row.memory:
        new_text = change.text
        values.update(memory=change.text, hash=msgs.text_hash(change.text), embedding=vector)
    if change.metadata is not UNSET:
        values["metadata"] = change.metadata
    if change.expiration_date is not UNSET:
        values["expiration_date"] = change.expiration_date
    if change.created_at is not None:
        values["created_at"] = change.created_at
    try:
        return await repo.update(principal.project_id, row.id, values, old_text=row.memory, new_text=new_text)
    except IntegrityError:
        raise Conflict("Another memory in the same scope already has exactly this text.") from None


async def delete(db: Database, principal: Principal, memory_id: uuid.UUID, *, delete_linked: bool) -> int:
    """Delete one memory (and, with delete_linked, the memories it superseded); returns the cascade count."""
    async with db.transaction() as conn:
        repo = MemoryRepository(conn)
        # Locked first: an unknown (or already deleted) id is a 404 that must not cascade to the
        # memories that still point at it.
        if not await repo.get_for_update(principal.project_id, [memory_id]):
            raise NotFound("Memory not found!")
        ids = [memory_id]
        if delete_linked:
            ids += await repo.linked_ids(principal.project_id, memory_id)
        count = await repo.delete_where(principal.project_id, Memory.__table__.c.id.in_(ids))
    return count - 1


async def delete_where(db: Database, principal: Principal, where: ColumnElement[bool]) -> int:
    async with db.transaction() as conn:
        return await MemoryRepository(conn).delete_where(principal.project_id, where)


async def history(db: Database, principal: Principal, memory_id: uuid.UUID) -> list[Any]:
    async with db.connect() as conn:
        repo = MemoryRepository(conn)
        rows = await repo.history(principal.project_id, memory_id)
        if not rows and await repo.get(principal.project_id, memory_id) is None:
            raise NotFound("Memory not found!")
    return rows


async def history_page(db: Database, principal: Principal, *, page: int, limit: int) -> tuple[list[Any], int]:
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
    _check_batch(len(changes), "update")
    ids = [mid for mid, _ in changes]
    if len(set(ids)) != len(ids):
        raise BadRequest("Each memory_id may appear only once in a batch update")
    texts = [c.text for _, c in changes if c.text is not None]
    vectors = iter(await providers.embedder.embed(texts)) if texts else iter(())
    async with db.transaction() as conn:
        repo = MemoryRepository(conn)
        rows = {r.id: r for r in await repo.get_for_update(principal.project_id, ids)}
        missing = [str(i) for i in ids if i not in rows]
        if missing:
            raise NotFound(f"Memory not found: {', '.join(missing)}")
        for mid, change in changes:
            vector = next(vectors) if change.text is not None else None
            await _apply_update(repo, principal, rows[mid], change, vector)
    return len(changes)


async def batch_delete(db: Database, principal: Principal, ids: list[uuid.UUID]) -> int:
    _check_batch(len(ids), "delete")
    unique = list(dict.fromkeys(ids))
    async with db.transaction() as conn:
        repo = MemoryRepository(conn)
        found = {r.id for r in await repo.get_for_update(principal.project_id, unique)}
        missing = [str(i) for i in unique if i not in found]
        if missing:
            raise NotFound(f"Memory not found: {', '.join(missing)}")
        return await repo.delete_where(principal.project_id, Memory.__table__.c.id.in_(unique))
