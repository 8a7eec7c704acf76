"""A whole project's rows, read out and written back as they are (backup, restore, moving projects).

Import writes rows verbatim (ids, timestamps, embeddings, history and events included) instead of going
through `MemoryWriter`: a restore must reproduce the stored state, not record new changes.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

from pgvector.sqlalchemy import Vector
from sqlalchemy import ARRAY, Boolean, Date, DateTime, Float, Integer, Table, Text, bindparam, func, select
from sqlalchemy.dialects.postgresql import JSONB, UUID, insert
from sqlalchemy.exc import DataError, IntegrityError
from sqlalchemy.types import UserDefinedType

from memserver.errors import BadRequest, Conflict
from memserver.storage.models import Entity, Event, Memory, MemoryFeedback, MemoryHistory, MemoryRead
from memserver.storage.repositories.base import Repository

M: Table = Memory.__table__  # type: ignore[assignment]
H: Table = MemoryHistory.__table__  # type: ignore[assignment]
E: Table = Entity.__table__  # type: ignore[assignment]
EV: Table = Event.__table__  # type: ignore[assignment]
F: Table = MemoryFeedback.__table__  # type: ignore[assignment]
R: Table = MemoryRead.__table__  # type: ignore[assignment]

# Columns that are the database's own business: the project (the target decides), the generated
# tsvector, the insertion counter (re-created in export order) and the entities' serial id.
_SKIP = {"project_id", "tsv", "seq"}
KINDS: dict[str, tuple[Table, tuple[Any, ...]]] = {
    "memory": (M, (M.c.seq,)),
    "history": (H, (H.c.created_at, H.c.id)),
    "event": (EV, (EV.c.created_at, EV.c.id)),
    "entity": (E, (E.c.id,)),
    "feedback": (F, (F.c.created_at, F.c.id)),
    "read": (R, (R.c.memory_id,)),  # what `decay` weighs
}


class _RawVector(UserDefinedType[Any]):
    """A vector parameter passed through untouched: the connection's binary codec encodes it."""

    cache_ok = True

    def get_col_spec(self, **kw: Any) -> str:
        return "vector"


def _bind_type(table: Table, column: str) -> Any:
    if isinstance(table.c[column].type, Vector):  # a memory's embedding, the vector a history row took away
        return _RawVector()
    if isinstance(table.c[column].type, JSONB):
        return JSONB(none_as_null=True)  # a missing document stays SQL NULL, not JSON null
    return table.c[column].type


def columns(table: Table) -> list[str]:
    skip = _SKIP | ({"id"} if table is E else set())
    return [c.key for c in table.columns if c.key not in skip]


# What a JSON value of a column must be: the column type's kind (the most specific first: Boolean is no Integer).
_TYPE_KINDS = (
    (UUID, "uuid"),
    (DateTime, "time"),
    (Date, "date"),
    (JSONB, "json"),
    (ARRAY, "texts"),
    (Boolean, "bool"),
    (Integer, "int"),
    (Float, "number"),
    (Text, "text"),
)


def column_kinds(kind: str) -> dict[str, str]:
    """The importable columns of a kind of record and what each holds: 'uuid', 'time', 'date', 'json', 'texts'
    (a list of strings), 'bool', 'int', 'number', 'text' or 'vector'."""
    table = KINDS[kind][0]
    return {
        name: next((k for t, k in _TYPE_KINDS if isinstance(table.c[name].type, t)), "vector")
        for name in columns(table)
    }


class TransferRepository(Repository):
    async def rows(self, kind: str, project_id: uuid.UUID, batch: int = 500) -> AsyncIterator[dict[str, Any]]:
        """Every row of one kind in the project, oldest first, as {column: value}."""
        table, order = KINDS[kind]
        stmt = select(*(table.c[c] for c in columns(table))).where(table.c.project_id == project_id).order_by(*order)
        result = await self.conn.stream(stmt.execution_options(yield_per=batch))
        async for row in result.mappings():
            yield dict(row)

    async def count(self, kind: str, project_id: uuid.UUID) -> int:
        table, _ = KINDS[kind]
        stmt = select(func.count()).select_from(table).where(table.c.project_id == project_id)
        return int((await self.conn.execute(stmt)).scalar_one())

    async def taken_ids(self, kind: str, ids: list[uuid.UUID]) -> bool:
        """True when any of these ids of a kind (memory, history, event, feedback) exists anywhere on this server
        (their ids are unique across projects)."""
        if not ids:
            return False
        table = KINDS[kind][0]
        stmt = select(table.c.id).where(table.c.id.in_(ids)).limit(1)
        return (await self.conn.execute(stmt)).first() is not None

    async def insert(self, kind: str, project_id: uuid.UUID, rows: list[dict[str, Any]]) -> None:
        if not rows:
            return
        table, _ = KINDS[kind]
        groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
        for r in rows:  # rows that leave out columns (their defaults apply) go in their own statement
            groups.setdefault(tuple(r), []).append({**r, "project_id": project_id})
        for names, group in groups.items():
            stmt = insert(table).values({c: bindparam(c, type_=_bind_type(table, c)) for c in (*names, "project_id")})
            if kind == "entity":
                stmt = stmt.on_conflict_do_nothing(index_elements=[E.c.project_id, E.c.type, E.c.name])
            try:
                await self.conn.execute(stmt, group)
            except IntegrityError as exc:  # Postgres' own text (tables, values) is not for clients
                if getattr(exc.orig, "pgcode", None) == "23505":  # unique: written meanwhile by another request
                    raise Conflict(f"a {kind} record's id was taken while importing; import again") from None
                raise BadRequest(
                    f"a {kind} record does not fit: a required value is missing or it refers to a record "
                    "that is not in the import"
                ) from None
            except DataError:
                raise BadRequest(f"a {kind} record has a value of the wrong type") from None
