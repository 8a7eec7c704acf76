"""The one statement that inserts an add's memories: the memories, their ADD history, the entities, the
webhook deliveries (an outbox: `repositories.webhooks`) and, for a verbatim add, the event.

`MemoryWriter.insert_new` runs it, so a verbatim add is all or nothing without a transaction round trip.
`history_insert` is the one place a history row is written, for every change `MemoryWriter` makes.
"""

from __future__ import annotations

import functools
from typing import Any

from sqlalchemy import (
    ColumnElement,
    DateTime,
    Insert,
    Integer,
    Select,
    Text,
    and_,
    bindparam,
    case,
    cast,
    column,
    func,
    literal,
    literal_column,
    null,
    select,
    true,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID, aggregate_order_by, insert
from sqlalchemy.sql.expression import CTE
from sqlalchemy.types import UserDefinedType

from memserver.domain.changes import Op
from memserver.domain.jobs import JobKind, JobStatus
from memserver.domain.scope import ENTITY_FIELDS
from memserver.storage.db import VECTOR_ARRAY_PARAM
from memserver.storage.models import Entity, Event, Memory, MemoryHistory, table_of
from memserver.storage.repositories.webhooks import outbox_insert

M = table_of(Memory)
H = table_of(MemoryHistory)
E = table_of(Entity)
EV = table_of(Event)

# Columns of a memory row that a change returns (the history row copies its scope from them).
CHANGED = (
    M.c.id,
    M.c.project_id,
    M.c.memory,
    M.c.hash,
    *(M.c[c] for c in ENTITY_FIELDS),
    M.c.categories,
    M.c.metadata,
    M.c.event_start,
    M.c.event_end,
    M.c.created_at,  # an ADD counts at it (as_of: an add's `timestamp` backdates its ADD)
)


class _RegClass(UserDefinedType[Any]):
    cache_ok = True

    def get_col_spec(self, **kw: Any) -> str:
        return "regclass"


def history_insert(
    changed: CTE,
    event: Op,
    *,
    old: ColumnElement[Any],
    new: ColumnElement[Any],
    event_id: ColumnElement[Any],
    occurred_at: ColumnElement[Any],
    replaced_by: ColumnElement[Any] | None = None,
    old_embedding: ColumnElement[Any] | None = None,
) -> Insert:
    """The history row of each memory in `changed` (a CTE of RETURNING rows): the one place history is written.

    `occurred_at`: when the change counts for `as_of` (`memory_states`); `replaced_by`: set on the DELETE row
    of a retirement only (the memory stays); `old_embedding`: the vector the change took away, if any.
    """
    cols = ["id", "project_id", "memory_id", "event", "old_memory", "new_memory", "event_id"]
    cols += [*ENTITY_FIELDS, "categories", "metadata", "event_start", "event_end", "created_at", "updated_at"]
    cols += ["occurred_at", "replaced_by", "old_embedding"]
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
            changed.c.event_start,
            changed.c.event_end,
            # the statement's own time, not the transaction's: one transaction may change a memory twice (an
            # inferred add's edit and removal), and its history (as_of included) is ordered by created_at
            func.statement_timestamp(),
            func.statement_timestamp(),
            occurred_at,
            null() if replaced_by is None else replaced_by,
            null() if old_embedding is None else old_embedding,
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
    ("event_start", DateTime(timezone=True)),
    ("event_end", DateTime(timezone=True)),
)


def _scope_match(a: Any, b: Any) -> ColumnElement[bool]:
    return and_(true(), *(a.c[c].is_not_distinct_from(b.c[c]) for c in ENTITY_FIELDS))


@functools.cache
def add_statement(record_event: bool) -> Select[Any]:
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
        "event_start": inp.c.event_start,
        "event_end": inp.c.event_end,
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
        .returning(*CHANGED)
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
    hist = history_insert(
        added, Op.ADD, old=null(), new=added.c.memory, event_id=event_id, occurred_at=added.c.created_at
    ).cte("hist")
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
                    "metadata",
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
                    cast(bindparam("event_metadata", type_=Text), JSONB),
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
