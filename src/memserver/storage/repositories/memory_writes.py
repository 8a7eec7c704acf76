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

import functools
import typing
import uuid
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import orjson
from pgvector import Vector
from sqlalchemy import (
    ColumnElement,
    Insert,
    Integer,
    Select,
    Text,
    and_,
    bindparam,
    case,
    cast,
    column,
    delete,
    func,
    literal,
    literal_column,
    null,
    select,
    true,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID, aggregate_order_by, insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.sql.expression import CTE
from sqlalchemy.types import UserDefinedType

from memserver.domain.changes import UNSET, AddDefaults, ChangeSet, MemoryEdit, MemoryRemoval, NewMemory, Op, Outcome
from memserver.domain.filters import Node
from memserver.domain.jobs import JobKind, JobStatus
from memserver.domain.rows.memories import EditedMemoryRow
from memserver.domain.scope import ENTITY_FIELDS, ENTITY_TYPES
from memserver.errors import Conflict
from memserver.storage.db import VECTOR_ARRAY_PARAM, VECTOR_PARAM
from memserver.storage.models import Entity, Event, GraphRelation, Memory, MemoryHistory, table_of
from memserver.storage.repositories.base import Repository
from memserver.storage.repositories.graph_writes import PostgresGraphStore
from memserver.storage.repositories.memories import READ_COLUMNS, by_entity, by_ids, where_of
from memserver.storage.repositories.webhooks import categorize_outbox_insert, outbox_insert

M = table_of(Memory)
H = table_of(MemoryHistory)
E = table_of(Entity)
EV = table_of(Event)
GR = table_of(GraphRelation)

# Columns of a memory row that a change returns (the history row copies its scope from them).
_CHANGED = (
    M.c.id,
    M.c.project_id,
    M.c.memory,
    M.c.hash,
    *(M.c[c] for c in ENTITY_FIELDS),
    M.c.categories,
    M.c.metadata,
)
_RETURNED = (*READ_COLUMNS, M.c.project_id)


class _RegClass(UserDefinedType[Any]):
    cache_ok = True

    def get_col_spec(self, **kw: Any) -> str:
        return "regclass"


def _json(value: Any) -> str | None:
    return None if value is None else orjson.dumps(value).decode()


def history_insert(
    changed: CTE, event: Op, *, old: ColumnElement[Any], new: ColumnElement[Any], event_id: ColumnElement[Any]
) -> Insert:
    """The history row of each memory in `changed` (a CTE of RETURNING rows): the one place history is written."""
    cols = ["id", "project_id", "memory_id", "event", "old_memory", "new_memory", "event_id"]
    cols += [*ENTITY_FIELDS, "categories", "metadata", "created_at", "updated_at"]
    return insert(H).from_select(
        cols,
        select(
            func.gen_random_uuid(),
            changed.c.project_id,
            changed.c.id,
            literal(event.value),
            old,
            new,
            event_id,
            *(changed.c[c] for c in ENTITY_FIELDS),
            changed.c.categories,
            changed.c.metadata,
            func.now(),
            func.now(),
        ),
    )


# ----------------------------------------------------------------------------------------------
# adds: one statement
# ----------------------------------------------------------------------------------------------
_ITEM_COLUMNS: tuple[tuple[str, Any], ...] = (
    ("id", UUID(as_uuid=True)),
    ("pos", Integer),
    ("ord", Integer),
    ("memory", Text),
    ("hash", Text),
    *((c, Text) for c in ENTITY_FIELDS),
    ("categories", ARRAY(Text)),
    ("role", Text),
    ("actor_id", Text),
    ("source", Text),
    ("provenance", JSONB),
)


def _scope_match(a: Any, b: Any) -> ColumnElement[bool]:
    return and_(true(), *(a.c[c].is_not_distinct_from(b.c[c]) for c in ENTITY_FIELDS))


@functools.cache
def _add_statement(record_event: bool) -> Select[Any]:
    """Built once per variant: inserting memories runs on every add.

    Exact duplicates in the same scope (same text hash) hit the unique index and are reported as
    NOOP with the id of the memory that already holds the text. The no-op DO UPDATE makes
    RETURNING yield that row even when a concurrent request committed it after this statement's
    snapshot (a DO NOTHING plus a lookup would miss it and answer a NOOP without an id).
    """
    items = (
        func.jsonb_to_recordset(cast(bindparam("items", type_=Text), JSONB))
        .table_valued(*(column(n, t) for n, t in _ITEM_COLUMNS))
        .render_derived(name="i", with_types=True)
    )
    vectors = (
        func.unnest(cast(bindparam("vectors"), VECTOR_ARRAY_PARAM))
        .table_valued("embedding", with_ordinality="pos")
        .render_derived(name="v")
    )
    inp = select(items, vectors.c.embedding).select_from(items.join(vectors, vectors.c.pos == items.c.pos)).cte("input")
    # Rows are inserted in hash order (below), so two adds of the same texts in opposite orders take
    # the unique-index entries in the same order and queue behind each other instead of deadlocking.
    # The conversational order search relies on (`seq`, `created_at`) is still the message order:
    # sequence numbers are drawn here in message order (Postgres evaluates volatile output columns
    # after ORDER BY) and given explicitly.
    seqs = (
        select(
            inp.c.pos,
            func.nextval(cast(func.pg_get_serial_sequence("memories", "seq"), _RegClass())).label("seq"),
        )
        .order_by(inp.c.pos)
        .cte("seqs")
    )
    project_id = cast(bindparam("project_id"), UUID(as_uuid=True))
    event_id = cast(bindparam("event_id"), UUID(as_uuid=True))
    base_ts = func.coalesce(cast(bindparam("created_at"), M.c.created_at.type), func.now())
    # the memories of one request keep their order: one microsecond apart
    ts = base_ts + inp.c.ord * literal_column("interval '1 microsecond'")
    values = {
        "id": inp.c.id,
        "project_id": project_id,
        **{c: inp.c[c] for c in ENTITY_FIELDS},
        "memory": inp.c.memory,
        "hash": inp.c.hash,
        "metadata": cast(bindparam("metadata", type_=Text), JSONB),
        "categories": inp.c.categories,
        "embedding": inp.c.embedding,
        "immutable": bindparam("immutable"),
        "expiration_date": bindparam("expiration_date", type_=M.c.expiration_date.type),
        "role": inp.c.role,
        "actor_id": inp.c.actor_id,
        "source": inp.c.source,
        "provenance": inp.c.provenance,
        "event_id": event_id,
        "created_at": ts,
        "updated_at": ts,
        "seq": seqs.c.seq,
    }
    ins = (
        insert(M)
        .from_select(
            list(values),
            select(*values.values())
            .select_from(inp.join(seqs, seqs.c.pos == inp.c.pos))
            .order_by(inp.c.hash, inp.c.pos),
        )
        .on_conflict_do_update(
            index_elements=[M.c.project_id, *(M.c[c] for c in ENTITY_FIELDS), M.c.hash],
            set_={"hash": insert(M).excluded.hash},
        )
        .returning(*_CHANGED)
        .cte("ins")
    )
    outcome = (
        select(
            inp.c.ord,
            ins.c.id,
            inp.c.memory,
            case((ins.c.id == inp.c.id, literal(Op.ADD.value)), else_=literal(Op.NOOP.value)).label("event"),
        )
        .select_from(inp.join(ins, and_(ins.c.hash == inp.c.hash, _scope_match(ins, inp))))
        .cte("outcome")
    )
    added = select(ins).where(ins.c.id.in_(select(inp.c.id))).cte("added")
    hist = history_insert(added, Op.ADD, old=null(), new=added.c.memory, event_id=event_id).cte("hist")
    entities = (
        func.unnest(cast(bindparam("entity_types"), ARRAY(Text)), cast(bindparam("entity_names"), ARRAY(Text)))
        .table_valued("type", "name")
        .render_derived(name="e")
    )
    ent = (
        insert(E)
        .from_select(["project_id", "type", "name"], select(project_id, entities.c.type, entities.c.name))
        .on_conflict_do_nothing()
        .cte("ent")
    )
    stmt = select(outcome.c.ord, outcome.c.id, outcome.c.memory, outcome.c.event).order_by(outcome.c.ord)
    stmt = stmt.add_cte(hist).add_cte(ent).add_cte(outbox_insert(added, Op.ADD, added.c.memory).cte("outbox"))
    if record_event:
        item = func.jsonb_build_object(
            "id", outcome.c.id, "event", outcome.c.event, "data", func.jsonb_build_object("memory", outcome.c.memory)
        )
        results = select(
            func.coalesce(func.jsonb_agg(aggregate_order_by(item, outcome.c.ord)), cast(literal("[]"), JSONB))
        ).scalar_subquery()
        ev = (
            insert(EV)
            .from_select(
                [
                    "id",
                    "project_id",
                    "event_type",
                    "status",
                    "payload",
                    "results",
                    "created_at",
                    "updated_at",
                    "started_at",
                    "completed_at",
                    "latency_ms",
                ],
                select(
                    event_id,
                    project_id,
                    literal(JobKind.ADD.value),
                    literal(JobStatus.SUCCEEDED.value),
                    cast(bindparam("payload", type_=Text), JSONB),
                    results,
                    func.now(),
                    func.now(),
                    func.now(),
                    func.clock_timestamp(),
                    1000 * func.extract("epoch", func.clock_timestamp() - func.now()),
                ),
            )
            .cte("ev")
        )
        stmt = stmt.add_cte(ev)
    return stmt


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
    ) -> list[Outcome]:
        """Insert memories (duplicates in their scope become NOOP) in one statement.

        With `event_payload`, the same statement records the add's SUCCEEDED event (verbatim adds);
        without, the event is the caller's (an inferred add finishes its job in the same transaction).
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
        }
        result = await self.conn.execute(_add_statement(event_payload is not None), params)
        return [Outcome(index=r.ord, id=r.id, text=r.memory, event=Op(r.event)) for r in result]

    async def edit(
        self, project_id: uuid.UUID, edit: MemoryEdit, *, event_id: uuid.UUID | None = None
    ) -> tuple[EditedMemoryRow, str]:
        """Apply one edit and write its UPDATE history row; returns (the updated row, its previous text)."""
        where = and_(M.c.project_id == project_id, M.c.id == edit.memory_id)
        old = select(M.c.memory).where(where).cte("old")
        upd = update(M).where(where).values(_edit_values(edit)).returning(*_RETURNED).cte("upd")
        previous = select(old.c.memory).scalar_subquery()
        hist = history_insert(upd, Op.UPDATE, old=previous, new=upd.c.memory, event_id=_event(event_id)).cte("hist")
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
        self, project_id: uuid.UUID, where: ColumnElement[bool], *, event_id: uuid.UUID | None = None
    ) -> int:
        """Delete matching memories and write a DELETE history row for each; returns the count.

        The graph relations the memories gave go with them, in the same statement; then the entities
        those relations leave without any relation (graph and memories never disagree).
        """
        deleted = delete(M).where(M.c.project_id == project_id, where).returning(*_CHANGED).cte("deleted")
        hist = history_insert(deleted, Op.DELETE, old=deleted.c.memory, new=null(), event_id=_event(event_id))
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

    async def retire(self, project_id: uuid.UUID, removal: MemoryRemoval, *, event_id: uuid.UUID | None = None) -> int:
        """Mark a memory superseded by another one (kept, hidden by `latest_only`), with a DELETE history row."""
        upd = (
            update(M)
            .where(M.c.project_id == project_id, M.c.id == removal.memory_id)
            .values(replaced_by=removal.replaced_by, updated_at=func.now())
            .returning(*_CHANGED)
            .cte("retired")
        )
        hist = history_insert(upd, Op.DELETE, old=upd.c.memory, new=null(), event_id=_event(event_id))
        stmt = select(func.count()).select_from(upd).add_cte(hist.cte("hist"))
        stmt = stmt.add_cte(outbox_insert(upd, Op.DELETE, upd.c.memory).cte("outbox"))
        return int((await self.conn.execute(stmt)).scalar_one())

    async def apply(
        self, project_id: uuid.UUID, changes: ChangeSet, defaults: AddDefaults, *, event_id: uuid.UUID
    ) -> list[Outcome]:
        """Apply an add's decisions; the caller's transaction makes them all or nothing."""
        outcomes = await self.insert_new(project_id, changes.adds, defaults, event_id=event_id) if changes.adds else []
        for edit in changes.edits:
            row, previous = await self.edit(project_id, edit, event_id=event_id)
            outcomes.append(Outcome(index=-1, id=row.id, text=row.memory, event=Op.UPDATE, previous_text=previous))
        added = {o.index: o.id for o in outcomes}
        for removal in changes.removals:
            if removal.replaced_by_index is not None:
                removal = replace(removal, replaced_by=added.get(removal.replaced_by_index))
            text = await self._text(project_id, removal.memory_id)
            if removal.replaced_by is None:
                n = await self.delete_where(project_id, M.c.id == removal.memory_id, event_id=event_id)
            else:
                n = await self.retire(project_id, removal, event_id=event_id)
            if n:
                outcomes.append(Outcome(index=-1, id=removal.memory_id, text=text or "", event=Op.DELETE))
        outcomes += [Outcome(index=n.index, id=n.memory_id, text=n.text, event=Op.NOOP) for n in changes.noops]
        return outcomes

    async def _text(self, project_id: uuid.UUID, memory_id: uuid.UUID) -> str | None:
        stmt = select(M.c.memory).where(M.c.project_id == project_id, M.c.id == memory_id)
        return (await self.conn.execute(stmt)).scalar_one_or_none()


def _event(event_id: uuid.UUID | None) -> ColumnElement[Any]:
    return cast(bindparam("history_event_id", event_id), UUID(as_uuid=True))
