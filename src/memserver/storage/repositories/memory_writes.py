"""The single write path for memory changes: every insert, edit and removal of a memory, with its history row.

`MemoryWriter.insert_new` is ONE statement (memories, their ADD history, the entities, the webhook
deliveries, an outbox: `repositories.webhooks`, and, for a verbatim add, the event), so a verbatim
add is all or nothing without a transaction round trip. Every other change writes its history row
and its webhook deliveries in its own statement too.
`MemoryWriter.apply` applies a `ChangeSet` (the ADD/UPDATE/DELETE/NOOP decisions of an inferred
add) inside the caller's transaction. History rows point at the add's event, which holds the
request's input once, instead of copying the input into every row.
"""

from __future__ import annotations

import typing
import uuid
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

import orjson
from pgvector import Vector
from sqlalchemy import ColumnElement, DateTime, Text, and_, bindparam, cast, delete, func, null, select, update
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.exc import IntegrityError

from memserver.domain.changes import UNSET, AddDefaults, ChangeSet, MemoryEdit, MemoryRemoval, NewMemory, Op, Outcome
from memserver.domain.filters import Node
from memserver.domain.rows.memories import EditedMemoryRow
from memserver.domain.scope import ENTITY_TYPES
from memserver.errors import Conflict
from memserver.storage.db import VECTOR_PARAM
from memserver.storage.models import GraphRelation, Memory, table_of
from memserver.storage.repositories.base import Repository
from memserver.storage.repositories.graph_writes import PostgresGraphStore
from memserver.storage.repositories.memories import READ_COLUMNS, by_entity, by_ids, where_of
from memserver.storage.repositories.memory_insert import CHANGED, add_statement, history_insert
from memserver.storage.repositories.webhooks import categorize_outbox_insert, outbox_insert

M = table_of(Memory)
GR = table_of(GraphRelation)

_RETURNED = (*READ_COLUMNS, M.c.project_id)


def _json(value: Any) -> str | None:
    return None if value is None else orjson.dumps(value).decode()


# ----------------------------------------------------------------------------------------------
# the writer
# ----------------------------------------------------------------------------------------------
def _nullable_json(name: str, value: Any) -> ColumnElement[Any]:
    """A jsonb value that is SQL NULL for None (SQLAlchemy's JSONB type would store JSON 'null')."""
    return cast(bindparam(name, _json(value), type_=Text), JSONB)


def _edit_values(edit: MemoryEdit) -> dict[str, Any]:
    values: dict[str, Any] = {"updated_at": func.now()}
    if edit.text is not None:
        values["memory"] = edit.text
        values["hash"] = edit.hash
        values["embedding"] = cast(bindparam("embedding", Vector(edit.embedding)), VECTOR_PARAM)
    if edit.metadata is not UNSET:
        values["metadata"] = _nullable_json("metadata", edit.metadata)
    if edit.categories is not UNSET:
        values["categories"] = edit.categories
    if edit.expiration_date is not UNSET:
        values["expiration_date"] = edit.expiration_date
    if edit.created_at is not None:
        values["created_at"] = edit.created_at
    if edit.provenance is not UNSET:
        values["provenance"] = _nullable_json("provenance", edit.provenance)
    if edit.event_period is not UNSET:
        values["event_start"] = edit.event_period.start if edit.event_period else None
        values["event_end"] = edit.event_period.end if edit.event_period else None
    return values


class MemoryWriter(Repository):
    """Writes memory changes and their history. Every method takes the project id."""

    async def insert_new(
        self,
        project_id: uuid.UUID,
        items: Sequence[NewMemory],
        defaults: AddDefaults,
        *,
        event_id: uuid.UUID,
        event_payload: dict[str, Any] | None = None,
        event_metadata: dict[str, Any] | None = None,
    ) -> list[Outcome]:
        """Insert memories (duplicates in their scope become NOOP) in one statement.

        With `event_payload`, the same statement records the add's SUCCEEDED event (verbatim adds), with
        `event_metadata` (notes); without, the event is the caller's (an inferred add finishes its job in the same
        transaction).
        """
        entities = sorted({e for it in items for e in it.scope.entities()})
        rows = [
            {
                "id": str(uuid.uuid4()),
                "pos": pos,
                "ord": it.index,
                "memory": it.text,
                "hash": it.hash,
                **it.scope.as_dict(),
                "categories": it.categories,
                "role": it.role,
                "actor_id": it.actor_id,
                "source": it.source,
                "provenance": it.provenance,
                "event_start": it.event_start,  # orjson writes RFC 3339; the recordset reads timestamptz
                "event_end": it.event_end,
            }
            for pos, it in enumerate(items, start=1)
        ]
        params = {
            "items": orjson.dumps(rows).decode(),
            "vectors": [Vector(it.embedding) for it in items],  # binary codec (storage/db.py)
            "project_id": project_id,
            "event_id": event_id,
            "created_at": defaults.created_at,
            "metadata": _json(defaults.metadata),
            "immutable": defaults.immutable,
            "expiration_date": defaults.expiration_date,
            "entity_types": [t for t, _ in entities],
            "entity_names": [n for _, n in entities],
            "payload": _json(event_payload),
            "event_metadata": _json(event_metadata),
        }
        result = await self.conn.execute(add_statement(event_payload is not None), params)
        return [Outcome(index=r.ord, id=r.id, text=r.memory, event=Op(r.event)) for r in result]

    async def edit(
        self,
        project_id: uuid.UUID,
        edit: MemoryEdit,
        *,
        event_id: uuid.UUID | None = None,
        occurred_at: datetime | None = None,
    ) -> tuple[EditedMemoryRow, str]:
        """Apply one edit and write its UPDATE history row; returns (the updated row, its previous text).

        occurred_at: when the change counts for `as_of` (an inferred add's `timestamp`); None: when it is made.
        """
        where = and_(M.c.project_id == project_id, M.c.id == edit.memory_id)
        old = select(M.c.memory, M.c.embedding).where(where).cte("old")
        upd = update(M).where(where).values(_edit_values(edit)).returning(*_RETURNED).cte("upd")
        previous = select(old.c.memory).scalar_subquery()
        # a new text replaces the vector: history keeps the one it took away (as_of search scores it)
        taken = select(old.c.embedding).scalar_subquery() if edit.text is not None else None
        hist = history_insert(
            upd,
            Op.UPDATE,
            old=previous,
            new=upd.c.memory,
            event_id=_event(event_id),
            occurred_at=_occurred(occurred_at),
            old_embedding=taken,
        ).cte("hist")
        stmt = select(upd, previous.label("previous")).add_cte(hist)
        stmt = stmt.add_cte(outbox_insert(upd, Op.UPDATE, upd.c.memory).cte("outbox"))
        if edit.categories is not UNSET:
            stmt = stmt.add_cte(categorize_outbox_insert(upd).cte("outbox_categorize"))
        try:
            row = typing.cast(EditedMemoryRow, (await self.conn.execute(stmt)).one())
        except IntegrityError:
            raise Conflict("Another memory in the same scope already has exactly this text.") from None
        return row, row.previous

    async def delete_where(
        self,
        project_id: uuid.UUID,
        where: ColumnElement[bool],
        *,
        event_id: uuid.UUID | None = None,
        occurred_at: datetime | None = None,
    ) -> int:
        """Delete matching memories and write a DELETE history row for each (with the vector it took away);
        returns the count.

        The graph relations the memories gave go with them, in the same statement; then the entities
        those relations leave without any relation (graph and memories never disagree).
        """
        deleted = delete(M).where(M.c.project_id == project_id, where).returning(*CHANGED, M.c.embedding).cte("deleted")
        hist = history_insert(
            deleted,
            Op.DELETE,
            old=deleted.c.memory,
            new=null(),
            event_id=_event(event_id),
            occurred_at=_occurred(occurred_at),
            old_embedding=deleted.c.embedding,
        )
        graph = (
            delete(GR)
            .where(GR.c.project_id == project_id, GR.c.memory_id.in_(select(deleted.c.id)))
            .returning(GR.c.source_id, GR.c.target_id)
            .cte("graph")
        )
        ends = select(
            func.array_cat(func.array_agg(graph.c.source_id), func.array_agg(graph.c.target_id))
        ).scalar_subquery()
        count = select(func.count()).select_from(deleted).scalar_subquery()
        stmt = select(count.label("n"), ends.label("ends")).add_cte(hist.cte("hist")).add_cte(graph)
        stmt = stmt.add_cte(outbox_insert(deleted, Op.DELETE, deleted.c.memory).cte("outbox"))
        row = (await self.conn.execute(stmt)).one()
        if row.ends:
            await PostgresGraphStore(self.conn).delete_orphans(project_id, sorted(set(row.ends)))
        return int(row.n)

    async def delete_ids(self, project_id: uuid.UUID, ids: Sequence[uuid.UUID]) -> int:
        return await self.delete_where(project_id, by_ids(ids))

    async def delete_entity(self, project_id: uuid.UUID, etype: str, name: str) -> int:
        """Delete an entity's memories, and every graph entity of its scopes (a deleted user leaves no graph)."""
        n = await self.delete_where(project_id, by_entity(etype, name))
        await PostgresGraphStore(self.conn).delete_entity_nodes(project_id, {ENTITY_TYPES[etype]: name})
        return n

    async def delete_matching(self, project_id: uuid.UUID, node: Node) -> int:
        where = where_of(node)
        assert where is not None
        return await self.delete_where(project_id, where)

    async def retire(
        self,
        project_id: uuid.UUID,
        removal: MemoryRemoval,
        *,
        event_id: uuid.UUID | None = None,
        occurred_at: datetime | None = None,
    ) -> int:
        """Mark a memory superseded by another one (kept, hidden by `latest_only`), with a DELETE history row
        that names the memory that replaced it (a hard deletion's names none)."""
        upd = (
            update(M)
            .where(M.c.project_id == project_id, M.c.id == removal.memory_id)
            .values(replaced_by=removal.replaced_by, updated_at=func.now())
            .returning(*CHANGED, M.c.replaced_by)
            .cte("retired")
        )
        hist = history_insert(
            upd,
            Op.DELETE,
            old=upd.c.memory,
            new=null(),
            event_id=_event(event_id),
            occurred_at=_occurred(occurred_at),
            replaced_by=upd.c.replaced_by,
        )
        stmt = select(func.count()).select_from(upd).add_cte(hist.cte("hist"))
        stmt = stmt.add_cte(outbox_insert(upd, Op.DELETE, upd.c.memory).cte("outbox"))
        return int((await self.conn.execute(stmt)).scalar_one())

    async def apply(
        self, project_id: uuid.UUID, changes: ChangeSet, defaults: AddDefaults, *, event_id: uuid.UUID
    ) -> list[Outcome]:
        """Apply an add's decisions; the caller's transaction makes them all or nothing."""
        outcomes = await self.insert_new(project_id, changes.adds, defaults, event_id=event_id) if changes.adds else []
        at = defaults.created_at  # an add with a `timestamp`: its changes count then (as_of), as its adds do
        for edit in changes.edits:
            row, previous = await self.edit(project_id, edit, event_id=event_id, occurred_at=at)
            outcomes.append(Outcome(index=-1, id=row.id, text=row.memory, event=Op.UPDATE, previous_text=previous))
        added = {o.index: o.id for o in outcomes}
        for removal in changes.removals:
            if removal.replaced_by_index is not None:
                removal = replace(removal, replaced_by=added.get(removal.replaced_by_index))
            text = await self._text(project_id, removal.memory_id)
            if removal.replaced_by is None:
                n = await self.delete_where(project_id, M.c.id == removal.memory_id, event_id=event_id, occurred_at=at)
            else:
                n = await self.retire(project_id, removal, event_id=event_id, occurred_at=at)
            if n:
                outcomes.append(Outcome(index=-1, id=removal.memory_id, text=text or "", event=Op.DELETE))
        outcomes += [Outcome(index=n.index, id=n.memory_id, text=n.text, event=Op.NOOP) for n in changes.noops]
        return outcomes

    async def _text(self, project_id: uuid.UUID, memory_id: uuid.UUID) -> str | None:
        stmt = select(M.c.memory).where(M.c.project_id == project_id, M.c.id == memory_id)
        return (await self.conn.execute(stmt)).scalar_one_or_none()


def _event(event_id: uuid.UUID | None) -> ColumnElement[Any]:
    return cast(bindparam("history_event_id", event_id), UUID(as_uuid=True))


def _occurred(at: datetime | None) -> ColumnElement[Any]:
    """When a change counts for `as_of`: the given instant (an add's `timestamp`), else when it is made (its
    history row's `created_at`)."""
    if at is None:
        return func.statement_timestamp()
    return cast(bindparam("history_occurred_at", at), DateTime(timezone=True))
