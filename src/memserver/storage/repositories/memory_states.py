"""Memories as they stood at a past moment T (`as_of` on list, search and get), rebuilt from their history.

The axis is recorded time: a history row counts at `coalesce(occurred_at, created_at)` (an add's `timestamp`
backdates its ADD), as a running maximum along the memory's rows, so a backdated edit never lands before the
memory it edits. At T:
- a memory with no history row after T is today's row (nothing about it changed since), if recorded by T;
- one that changed after T is its last history row up to T: the new text of an ADD or UPDATE, the old
  text of a retirement (a DELETE row naming `replaced_by`: superseded, still present); absent if that row
  is a hard DELETE or if it has no row up to T (added later);
- `replaced_by` is the last retirement up to T, `created_at` its first row's time, `updated_at` its last's;
- its vector is the one the first vector-changing row after T took away (`old_embedding`), else today's.
  A row written before `0016_history_as_of` kept no vector: such a past version has none (it scores 0 on
  the semantic side) and is still found by its words;
- fields history does not record (`immutable`, `expiration_date`, `role`, `provenance`) are today's; a
  memory deleted since has none of them. Expiry is evaluated on T's date (UTC).

The work is one index range scan for the memories changed since T (`ix_memory_history_occurred`, narrowed by
the filter's entity ids, which history rows carry), their history rows, and today's rows of the others: it
grows with the changes since T, not with the scope's size. Today's path (`as_of` absent or not in the past)
never comes here: its statements are unchanged.
"""

from __future__ import annotations

import functools
import typing
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Date,
    DateTime,
    Select,
    Subquery,
    Text,
    and_,
    bindparam,
    case,
    cast,
    false,
    func,
    literal,
    literal_column,
    null,
    or_,
    select,
    true,
    union_all,
)
from sqlalchemy.dialects.postgresql import ARRAY, TSVECTOR, UUID, distinct_on
from sqlalchemy.sql.elements import Label
from sqlalchemy.sql.schema import Column
from sqlalchemy.sql.visitors import replacement_traverse

from memserver.domain.changes import Op
from memserver.domain.filters import Node, entity_equalities
from memserver.domain.rows.memories import MemoryPageRow, MemoryRow
from memserver.storage.filters import compile_filter
from memserver.storage.models import Memory, MemoryHistory, table_of
from memserver.storage.repositories.base import Repository
from memserver.storage.repositories.memories import READ_COLUMNS

M = table_of(Memory)
H = table_of(MemoryHistory)

# The state's columns, in order: those clients read, and what search scores.
_COLUMNS = (*(c.name for c in READ_COLUMNS), "project_id", "embedding", "tsv", "seq", "past")
_HISTORY_SHOWN = ("user_id", "agent_id", "app_id", "run_id", "metadata", "categories", "event_start", "event_end")
_NO_OPTIONS: dict[str, Any] = {}  # of SQLAlchemy's `replacement_traverse`
_TODAY = ("expiration_date", "role", "provenance")  # history does not record them: today's values


def _occurred(x: Any) -> ColumnElement[Any]:
    """When a history row counts (`ix_memory_history_occurred` is on exactly this expression)."""
    return func.coalesce(x.c.occurred_at, x.c.created_at)


def _tsv(memory: ColumnElement[Any], metadata: ColumnElement[Any]) -> ColumnElement[Any]:
    """`memories.tsv` (migration 0004's generated column) of a past text and metadata."""
    words = func.setweight(func.to_tsvector(literal_column("'english'::regconfig"), memory), literal_column("'A'"))
    meta = func.jsonb_to_tsvector(
        literal_column("'memserver_meta'::regconfig"),
        func.coalesce(metadata, literal_column("'{}'::jsonb")),
        literal_column("'[\"string\"]'::jsonb"),
    )
    return cast(words.op("||")(func.setweight(meta, literal_column("'D'"))), TSVECTOR)


@dataclass(frozen=True)
class StateView:
    """The memories of a project as they stood at `at`, as a relation named `memories` (so SQL written
    against the table, search's evidence included, reads it unchanged), and the filter over it."""

    relation: Subquery
    where: ColumnElement[bool]
    at: datetime
    params: dict[str, Any]  # the values of the relation's parameters: pass them to every statement that reads it

    def over(self, stmt: Select[Any]) -> Select[Any]:
        """`stmt`, written against the memories table, reading the state instead: its columns and its FROM.

        Insertion order (`seq`) becomes recording order, in microseconds: a memory deleted since has no
        `seq`, and a window numbering the rows would sort them whole, vectors included (it tripled the cost
        of a search at 10k memories). A memory without a vector (a version older than history's vectors)
        has similarity 0.
        """
        rel = self.relation
        seq = cast(func.extract("epoch", rel.c.created_at) * 1_000_000, BigInteger).label("seq")

        def swap(element: Any, **kw: Any) -> Any:  # (SQLAlchemy's visitor: a replacement, or None to descend)
            if element is M:
                return rel
            if isinstance(element, Column) and element.table is M:
                return seq if element.name == "seq" else rel.c[element.name]
            if isinstance(element, Label) and element.name == "cos":
                inner: ColumnElement[Any] = element.element
                return func.coalesce(replacement_traverse(inner, _NO_OPTIONS, swap), 0.0).label("cos")
            return None

        return typing.cast(Select[Any], replacement_traverse(stmt, _NO_OPTIONS, swap))

    def nearest(
        self, q: ColumnElement[Any], small: ColumnElement[bool], candidates: Select[Any], limit: Any
    ) -> tuple[Select[Any], Select[Any]]:
        """Dense search at `at`: the nearest of the whole scope when it is small; else among today's nearest
        (an HNSW walk over the memories table, exact for every memory unchanged since) and every past row.
        A version without a vector comes last."""
        rel = self.relation
        distance = func.coalesce(rel.c.embedding.cosine_distance(q), 1.0)
        columns = select(*(rel.c[c.name] for c in READ_COLUMNS), distance.label("distance"))
        scan = columns.where(self.where, small).order_by(distance).limit(limit)
        ann = columns.where(self.where, or_(rel.c.id.in_(candidates), rel.c.past), ~small)
        return scan, ann.order_by(distance).limit(limit)

    def scored(self, columns: Select[Any], small: ColumnElement[bool], candidates: Any) -> Subquery:
        """Search's evidence rows at `at`: the whole scope when it is small; else today's candidates (index
        searches over the memories table: they hold for every memory unchanged since) and every past row."""
        rel, cols = self.relation, self.over(columns)
        return union_all(
            cols.where(self.where, small),
            cols.where(self.where, or_(rel.c.id.in_(candidates), rel.c.past), ~small),
        ).subquery("scored")


_P = bindparam("state_project_id", type_=UUID(as_uuid=True))
_T = bindparam("state_at", type_=DateTime(timezone=True))
_IDS = bindparam("state_ids", type_=ARRAY(UUID(as_uuid=True)))


def state_at(
    project_id: uuid.UUID,
    node: Node | None,
    at: datetime,
    *,
    show_expired: bool = False,
    ids: Sequence[uuid.UUID] | None = None,
    vectors: bool = False,
) -> StateView:
    """The state at `at` of the memories `node` matches (`ids`: only these), with expiry evaluated then.

    vectors: carry each memory's vector and words as they were (search); a list needs neither.
    """
    equal = entity_equalities(node)
    rel = _relation(tuple(sorted(equal)), ids is not None, vectors)
    params: dict[str, Any] = {"state_project_id": project_id, "state_at": at}
    params.update({f"state_{k}": v for k, v in equal.items()})
    if ids is not None:
        params["state_ids"] = list(ids)
    where = compile_filter(node, rel.c) if node is not None else true()
    if not show_expired:  # inclusive of the date, in UTC, as today's
        day = cast(func.timezone("UTC", _T), Date)
        where = and_(where, or_(rel.c.expiration_date.is_(None), rel.c.expiration_date >= day))
    return StateView(relation=rel, where=where, at=at, params=params)


# Built once per shape, every value a named parameter (`StateView.params`): building it per request cost
# ~4 ms of SQLAlchemy, as much as the statement's own work at a recent T.
@functools.lru_cache(maxsize=64)
def _relation(fields: tuple[str, ...], by_ids: bool, vectors: bool) -> Subquery:
    """The state relation for filters with entity id equalities on `fields` (they narrow the changed memories:
    history rows carry their memory's scope), optionally for the memories `state_ids` only."""
    narrowed = [H.c[f] == bindparam(f"state_{f}", type_=Text) for f in fields]
    if by_ids:
        narrowed.append(H.c.memory_id == func.any(_IDS))
    # Each memory with a row after T, and whether its ADD (always its first row) is one of them: then it did
    # not exist at T, and its history need not be read (at a T long ago, that is most of them).
    changed = (
        select(H.c.memory_id, func.bool_or(H.c.event == Op.ADD.value).label("born_after"))
        .where(H.c.project_id == _P, _occurred(H) > _T, *narrowed)
        .group_by(H.c.memory_id)
        .cte("state_changed")
        .prefix_with("MATERIALIZED")
    )
    return union_all(_unchanged(_P, _T, changed, by_ids, vectors), _past(_P, _T, changed, vectors)).subquery("memories")


def _unchanged(p: Any, t: Any, changed: Any, by_ids: bool, vectors: bool) -> Any:
    cur = M.alias("cur")
    conds = [cur.c.project_id == p, cur.c.id.not_in(select(changed.c.memory_id)), cur.c.created_at <= t]
    if by_ids:
        conds.append(cur.c.id == func.any(_IDS))
    cols: dict[str, Any] = {name: cur.c[name] for name in _COLUMNS if name in cur.c}
    if not vectors:
        cols.update(embedding=null(), tsv=null())
    cols["past"] = false()
    return select(*(cols[n].label(n) for n in _COLUMNS)).where(*conds)


def _past(p: Any, t: Any, changed: Any, vectors: bool) -> Any:
    x = H.alias("x")
    along = (x.c.created_at, x.c.id)
    # The changed memories' rows, narrow (what orders them and decides which one holds at T): the window
    # sorts them all, and carrying metadata or vectors through that sort cost several times the rest.
    h = (
        select(
            x.c.id,
            x.c.memory_id,
            x.c.created_at,
            x.c.event,
            x.c.replaced_by,
            x.c.old_memory,
            x.c.new_memory,
            *(x.c[c] for c in _HISTORY_SHOWN),
            # took the memory's vector away (a text change or a hard delete; `old_embedding` holds it since 0016)
            or_(
                and_(x.c.event == Op.UPDATE.value, x.c.old_memory.is_distinct_from(x.c.new_memory)),
                and_(x.c.event == Op.DELETE.value, x.c.replaced_by.is_(None)),
            ).label("took_vector"),
            func.max(_occurred(x))
            .over(partition_by=x.c.memory_id, order_by=along)
            .label("at"),  # a running maximum: monotone along the memory
            func.first_value(_occurred(x)).over(partition_by=x.c.memory_id, order_by=along).label("born"),
        )
        .where(x.c.project_id == p, x.c.memory_id.in_(select(changed.c.memory_id).where(~changed.c.born_after)))
        .cte("state_history")
    )
    latest = (h.c.memory_id, h.c.created_at.desc(), h.c.id.desc())
    then = select(h).ext(distinct_on(h.c.memory_id)).where(h.c.at <= t).order_by(*latest).cte("state_then")
    retired = (
        select(h.c.memory_id, h.c.replaced_by)
        .ext(distinct_on(h.c.memory_id))
        .where(h.c.at <= t, h.c.replaced_by.is_not(None))
        .order_by(*latest)
        .cte("state_retired")
    )
    row, m = then, M.alias("m")  # the row that holds at T; today's memory
    text = case((then.c.event == Op.DELETE.value, row.c.old_memory), else_=row.c.new_memory)
    cols: dict[str, Any] = {
        "id": then.c.memory_id,
        "project_id": p,
        "memory": text,
        "hash": func.md5(text),
        **{c: row.c[c] for c in _HISTORY_SHOWN},
        **{c: m.c[c] for c in _TODAY},
        "immutable": func.coalesce(m.c.immutable, false()),
        "source": func.coalesce(m.c.source, literal("verbatim")),
        "replaced_by": retired.c.replaced_by,
        "created_at": then.c.born,
        "updated_at": then.c.at,
        "embedding": null(),
        "tsv": _tsv(text, row.c.metadata) if vectors else null(),
        "seq": m.c.seq,
        "past": true(),
    }
    joined = then.outerjoin(retired, retired.c.memory_id == then.c.memory_id).outerjoin(
        m, and_(m.c.project_id == p, m.c.id == then.c.memory_id)
    )
    if vectors:
        taken = (
            select(h.c.memory_id, h.c.id)
            .ext(distinct_on(h.c.memory_id))
            .where(h.c.at > t, h.c.took_vector)
            .order_by(h.c.memory_id, h.c.created_at, h.c.id)
            .cte("state_taken")
        )
        y = H.alias("y")
        joined = joined.outerjoin(taken, taken.c.memory_id == then.c.memory_id).outerjoin(y, y.c.id == taken.c.id)
        # the vector the first change after T took away; no such change: today's vector
        cols["embedding"] = case((taken.c.id.is_(None), m.c.embedding), else_=y.c.old_embedding)
    present = or_(then.c.event != Op.DELETE.value, then.c.replaced_by.is_not(None))  # a hard DELETE by T: absent
    return select(*(cols[n].label(n) for n in _COLUMNS)).select_from(joined).where(present)


class MemoryStates(Repository):
    """Reads of memories as they stood at a moment (see the module's doc). Every method takes the project id."""

    async def list(
        self,
        project_id: uuid.UUID,
        node: Node | None,
        at: datetime,
        *,
        limit: int,
        offset: int,
        show_expired: bool = False,
    ) -> tuple[list[MemoryPageRow], int]:
        """One page at `at`, newest first, plus the total count (one round trip)."""
        view = state_at(project_id, node, at, show_expired=show_expired)
        rel = view.relation
        stmt = (
            select(*(rel.c[c.name] for c in READ_COLUMNS), func.count().over().label("total"))
            .where(view.where)
            .order_by(rel.c.created_at.desc(), rel.c.id.desc())
            .limit(limit)
            .offset(offset)
        )
        rows = typing.cast(list[MemoryPageRow], list((await self.conn.execute(stmt, view.params)).all()))
        if rows or offset == 0:
            return rows, rows[0].total if rows else 0
        count = select(func.count()).select_from(rel).where(view.where)
        return rows, int((await self.conn.execute(count, view.params)).scalar_one())

    async def get(self, project_id: uuid.UUID, memory_id: uuid.UUID, at: datetime) -> MemoryRow | None:
        """One memory at `at` (expired or not, as today's get), or None if it did not exist then."""
        rows = await self.rows(project_id, [memory_id], at)
        return rows.get(memory_id)

    async def rows(self, project_id: uuid.UUID, ids: Sequence[uuid.UUID], at: datetime) -> dict[uuid.UUID, MemoryRow]:
        """The memories with these ids as they stood at `at` (search's winners)."""
        if not ids:
            return {}
        view = state_at(project_id, None, at, show_expired=True, ids=ids)
        rel = view.relation
        stmt = select(*(rel.c[c.name] for c in READ_COLUMNS))
        return {r.id: typing.cast(MemoryRow, r) for r in await self.conn.execute(stmt, view.params)}
