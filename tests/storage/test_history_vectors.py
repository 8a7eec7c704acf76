"""History records what `as_of` rebuilds memory from (0016_history_as_of): when each change counts
(`occurred_at`; an add's `timestamp` backdates it), which memory replaced a retired one (`replaced_by`, so a
retirement is no longer the same row as a hard delete) and the vector a change took away (`old_embedding`).
The state relation rebuilt from them answers the same through its small-scope and large-scope branches, and
the migration backfills what older rows allow."""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pytest
from alembic import command
from sqlalchemy import select, text

from harness.postgres import PostgresRun
from memserver.domain.changes import AddDefaults, ChangeSet, MemoryEdit, MemoryRemoval, NewMemory
from memserver.domain.filters import parse_filters
from memserver.domain.scope import Scope
from memserver.pipeline.messages import text_hash
from memserver.storage.db import Database
from memserver.storage.filters import compile_filter
from memserver.storage.migrate import alembic_config
from memserver.storage.repositories.memories import MemoryRepository
from memserver.storage.repositories.memory_states import MemoryStates, state_at
from memserver.storage.repositories.memory_writes import MemoryWriter
from memserver.storage.repositories.search import SearchRepository

RNG = np.random.default_rng(16)
SCOPE = Scope(user_id="maya")


def vec() -> np.ndarray:
    v = RNG.standard_normal(384).astype(np.float32)
    return np.asarray(v / np.linalg.norm(v), dtype=np.float32)


def floats(v: Any) -> np.ndarray:
    """A vector as the driver or SQLAlchemy's type returns it (pgvector's `Vector`, a list or an array)."""
    return np.asarray(v.to_list() if hasattr(v, "to_list") else v, dtype=np.float32)


def new(text_: str, index: int = 0, embedding: np.ndarray | None = None) -> NewMemory:
    return NewMemory(
        text=text_, hash=text_hash(text_), scope=SCOPE, embedding=vec() if embedding is None else embedding, index=index
    )


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    database = Database(database_url)
    try:
        yield database
    finally:
        await database.dispose()


@pytest.fixture
def pid(make_tenant: Callable[[], tuple[str, str]]) -> uuid.UUID:
    return uuid.UUID(make_tenant()[0])


async def rows_of(db: Database, pid: uuid.UUID, memory_id: uuid.UUID) -> list[Any]:
    async with db.connect() as conn:
        result = await conn.execute(
            text(
                "SELECT event, old_memory, new_memory, occurred_at, created_at, replaced_by, old_embedding "
                "FROM memory_history WHERE project_id = :p AND memory_id = :m ORDER BY created_at, id"
            ),
            {"p": pid, "m": memory_id},
        )
        return list(result)


async def add(db: Database, pid: uuid.UUID, *items: NewMemory, at: datetime | None = None) -> list[uuid.UUID]:
    async with db.transaction() as conn:
        out = await MemoryWriter(conn).insert_new(pid, items, AddDefaults(created_at=at), event_id=uuid.uuid4())
    return [o.id for o in out if o.id is not None]


async def test_occurred_at_is_the_adds_timestamp_or_the_time_of_the_change(db: Database, pid: uuid.UUID) -> None:
    backdated = datetime(2023, 5, 1, 12, tzinfo=UTC)
    [old] = await add(db, pid, new("Ran a marathon in 2023"), at=backdated)
    [plain, gone, kept] = await add(db, pid, new("Likes tea", 0), new("Owns a bike", 1), new("Plays chess", 2))
    [first] = await rows_of(db, pid, old)
    assert first.occurred_at == backdated  # the ADD counts at the add's timestamp, not when it was written
    assert first.created_at > backdated
    [adds] = await rows_of(db, pid, plain)
    async with db.connect() as conn:
        row = await MemoryRepository(conn).get(pid, plain)
    assert row is not None
    assert adds.occurred_at == row.created_at  # a plain add counts when the memory was recorded

    # the changes of an inferred add with a `timestamp` count at that timestamp
    stamp = datetime(2024, 2, 2, tzinfo=UTC)
    newer = uuid.uuid4()
    async with db.transaction() as conn:
        changes = ChangeSet(
            adds=[new("Is vegetarian", 0)],
            edits=[
                MemoryEdit(memory_id=plain, text="Likes green tea", hash=text_hash("Likes green tea"), embedding=vec())
            ],
            removals=[MemoryRemoval(memory_id=gone), MemoryRemoval(memory_id=kept, replaced_by_index=0)],
        )
        await MemoryWriter(conn).apply(pid, changes, AddDefaults(created_at=stamp), event_id=newer)
    for mid in (plain, gone, kept):
        assert (await rows_of(db, pid, mid))[-1].occurred_at == stamp
    # an API change (no timestamp) counts when it is made
    async with db.transaction() as conn:
        await MemoryWriter(conn).edit(pid, MemoryEdit(memory_id=plain, metadata={"k": 1}))
    last = (await rows_of(db, pid, plain))[-1]
    assert last.occurred_at == last.created_at


async def test_a_retirement_names_its_replacement_and_a_hard_delete_does_not(db: Database, pid: uuid.UUID) -> None:
    [c, e] = await add(db, pid, new("Loves steak", 0), new("Bank PIN is 4321", 1))
    async with db.transaction() as conn:
        changes = ChangeSet(adds=[new("Is vegetarian")], removals=[MemoryRemoval(memory_id=c, replaced_by_index=0)])
        outcomes = await MemoryWriter(conn).apply(pid, changes, AddDefaults(), event_id=uuid.uuid4())
    d = next(o.id for o in outcomes if o.text == "Is vegetarian")
    async with db.transaction() as conn:
        await MemoryWriter(conn).delete_ids(pid, [e])
    assert [(r.event, r.replaced_by) for r in await rows_of(db, pid, c)] == [("ADD", None), ("DELETE", d)]
    assert [(r.event, r.replaced_by) for r in await rows_of(db, pid, e)] == [("ADD", None), ("DELETE", None)]


async def test_history_keeps_the_vector_a_change_took_away(db: Database, pid: uuid.UUID) -> None:
    v1, v2, ve = vec(), vec(), vec()
    [a, e, c] = await add(db, pid, new("Lives in Berlin", 0, v1), new("PIN 4321", 1, ve), new("Loves steak", 2))
    async with db.transaction() as conn:
        w = MemoryWriter(conn)
        await w.edit(pid, MemoryEdit(memory_id=a, metadata={"k": 1}))  # no new text: no vector taken
        await w.edit(
            pid, MemoryEdit(memory_id=a, text="Lives in Munich", hash=text_hash("Lives in Munich"), embedding=v2)
        )
        await w.delete_ids(pid, [e])
        await w.retire(pid, MemoryRemoval(memory_id=c, replaced_by=a))  # the memory keeps its vector
    rows = await rows_of(db, pid, a)
    assert [r.event for r in rows] == ["ADD", "UPDATE", "UPDATE"]
    assert rows[0].old_embedding is None
    assert rows[1].old_embedding is None
    np.testing.assert_allclose(floats(rows[2].old_embedding), v1, rtol=1e-6)
    [_, deleted] = await rows_of(db, pid, e)
    np.testing.assert_allclose(floats(deleted.old_embedding), ve, rtol=1e-6)
    assert [r.old_embedding for r in await rows_of(db, pid, c)] == [None, None]
    # a memory's history, as the API reads it, never carries the vectors
    async with db.connect() as conn:
        history = await MemoryRepository(conn).history(pid, a)
    assert all("old_embedding" not in r._fields for r in history)  # type: ignore[attr-defined]


async def columns_then(db: Database, pid: uuid.UUID, at: datetime, *names: str) -> dict[uuid.UUID, Any]:
    """Columns of the state relation at `at` (with vectors and words, as search reads it), by memory id."""
    view = state_at(pid, None, at, vectors=True)
    rel = view.relation
    async with db.connect() as conn:
        return {r.id: r for r in await conn.execute(select(rel.c.id, *(rel.c[n] for n in names)), view.params)}


async def stored(db: Database, pid: uuid.UUID, memory_id: uuid.UUID) -> Any:
    async with db.connect() as conn:
        q = text("SELECT tsv::text AS tsv, embedding FROM memories WHERE project_id = :p AND id = :m")
        return (await conn.execute(q, {"p": pid, "m": memory_id})).one()


async def test_a_past_version_has_the_words_and_vector_the_table_had(db: Database, pid: uuid.UUID) -> None:
    """The state's tsvector of a past version (migration 0004's expression) equals the generated column it
    had then, metadata included; its vector is the one the change took away."""
    [m] = await add(db, pid, new("Caroline's 3 dogs ran 12km at 7:30 in Paris"))
    meta = {"topic": "Hiking trips", "ticket": 4512, "dia_id": "D1:3", "url": "https://x.org/a", "tags": ["dogs"]}
    async with db.transaction() as conn:
        await MemoryWriter(conn).edit(pid, MemoryEdit(memory_id=m, metadata=meta))
    then = await stored(db, pid, m)
    assert "'hike':" in then.tsv
    assert "4512" not in then.tsv
    at = datetime.now(UTC)
    async with db.transaction() as conn:
        await MemoryWriter(conn).edit(
            pid, MemoryEdit(memory_id=m, text="Moved to Lyon", hash=text_hash("Moved to Lyon"), embedding=vec())
        )
    past = (await columns_then(db, pid, at, "tsv", "embedding", "past"))[m]
    assert past.past is True
    async with db.connect() as conn:
        same = (await conn.execute(text("SELECT CAST(:a AS tsvector)::text AS t"), {"a": then.tsv})).scalar_one()
    assert str(past.tsv) == same
    np.testing.assert_allclose(floats(past.embedding), floats(then.embedding), rtol=1e-6)
    assert (await stored(db, pid, m)).tsv != then.tsv


async def test_a_backdated_edit_never_lands_before_the_memory_it_edits(db: Database, pid: uuid.UUID) -> None:
    [m] = await add(db, pid, new("Lives in Berlin"))
    async with db.transaction() as conn:  # an inferred add with a 2020 `timestamp` updates it
        edit = MemoryEdit(memory_id=m, text="Lives in Munich", hash=text_hash("Lives in Munich"), embedding=vec())
        await MemoryWriter(conn).apply(
            pid,
            ChangeSet(edits=[edit]),
            AddDefaults(created_at=datetime(2020, 1, 1, tzinfo=UTC)),
            event_id=uuid.uuid4(),
        )
    async with db.connect() as conn:
        states = MemoryStates(conn)
        assert await states.get(pid, m, datetime(2021, 1, 1, tzinfo=UTC)) is None  # not recorded yet in 2021
        now = await states.get(pid, m, datetime.now(UTC))
    assert now is not None
    assert now.memory == "Lives in Munich"


async def test_a_version_older_than_history_vectors_has_none(db: Database, pid: uuid.UUID) -> None:
    """A change recorded before 0016 kept no vector: that past version scores 0 on the semantic side, and
    the statement still answers (found by its words)."""
    v = vec()
    [m] = await add(db, pid, new("Lives in Berlin", 0, v))
    at = datetime.now(UTC)
    async with db.transaction() as conn:
        edit = MemoryEdit(memory_id=m, text="Lives in Munich", hash=text_hash("Lives in Munich"), embedding=vec())
        await MemoryWriter(conn).edit(pid, edit)
        await conn.execute(text("UPDATE memory_history SET old_embedding = NULL WHERE memory_id = :m"), {"m": m})
    assert (await columns_then(db, pid, at, "embedding"))[m].embedding is None
    node = parse_filters({"user_id": "maya"})
    view = state_at(pid, node, at, vectors=True)
    async with db.connect() as conn:
        repo = SearchRepository(conn)
        ids, ev, _ = await repo.hybrid_evidence(
            pid, compile_filter(node), v, "Berlin", [], exact_limit=100, show_expired=True, state=view
        )
        dense = await repo.dense(pid, compile_filter(node), v, limit=5, exact_limit=100, show_expired=True, state=view)
    assert ids == [m]
    assert ev[3] == [0.0]  # cos
    assert ev[5][0] & 1  # the past text matches the query's word
    assert [(r.memory, r.similarity) for r in dense] == [("Lives in Berlin", 0.0)]


async def test_large_scopes_score_the_same_past_as_small_ones(db: Database, pid: uuid.UUID) -> None:
    """Above the exact-scan limit, today's index candidates (every memory unchanged since) and every past row
    give the evidence the whole-scope scan gives."""
    texts = [f"Maya note {i} about {w}" for i, w in enumerate(["tea", "hiking", "Paris", "cello", "chess", "dogs"])]
    ids = await add(db, pid, *(new(t, i) for i, t in enumerate(texts)))
    at = datetime.now(UTC)
    await asyncio.sleep(0.01)
    async with db.transaction() as conn:
        w = MemoryWriter(conn)
        await w.edit(pid, MemoryEdit(memory_id=ids[0], text="Maya drinks coffee", hash=text_hash("x"), embedding=vec()))
        await w.delete_ids(pid, [ids[1]])
        await w.retire(pid, MemoryRemoval(memory_id=ids[2], replaced_by=ids[3]))
    await add(db, pid, new("Maya note added later"))
    node = parse_filters({"user_id": "maya"})
    q = vec()

    async def evidence(limit: int) -> dict[uuid.UUID, tuple[Any, ...]]:
        view = state_at(pid, node, at, vectors=True)
        async with db.connect() as conn:
            got, ev, _ = await SearchRepository(conn).hybrid_evidence(
                pid, compile_filter(node), q, "Maya note tea", [], exact_limit=limit, show_expired=True, state=view
            )
        return {i: tuple(round(float(c[k]), 5) for c in ev) for k, i in enumerate(got)}

    async def nearest(limit: int) -> list[tuple[str, float]]:
        view = state_at(pid, node, at, vectors=True)
        async with db.connect() as conn:
            rows = await SearchRepository(conn).dense(
                pid, compile_filter(node), q, limit=10, exact_limit=limit, show_expired=True, state=view
            )
        return [(r.memory, round(float(r.similarity), 5)) for r in rows]

    small, large = await evidence(1000), await evidence(1)
    assert set(small) == set(ids)  # as they stood: the edited and deleted ones included, the later one not
    assert large == small
    assert await nearest(1) == await nearest(1000)
    assert sorted(m for m, _ in await nearest(1000)) == sorted(texts)


# ----------------------------------------------------------------------------------------------
# the migration
# ----------------------------------------------------------------------------------------------
def _in_thread(fn: Callable[[], Any]) -> Any:
    """Alembic runs its own event loop: keep it off the test's."""
    out: dict[str, Any] = {}

    def target() -> None:
        try:
            out["v"] = fn()
        except BaseException as exc:
            out["e"] = exc

    t = threading.Thread(target=target)
    t.start()
    t.join()
    if "e" in out:
        raise out["e"]
    return out.get("v")


async def _sql(url: str, *statements: str, **params: Any) -> list[Any]:
    db = Database(url)
    try:
        async with db.connect() as conn:
            rows: list[Any] = []
            for s in statements:
                res = await conn.execute(text(s), params)
                rows = list(res.all()) if res.returns_rows else []
            return rows
    finally:
        await db.dispose()


def test_the_migration_backfills_backdated_adds_and_retirements(pg_run: PostgresRun, database_url: str) -> None:
    name = f"mig_{uuid.uuid4().hex[:8]}"
    asyncio.run(_sql(database_url, f"CREATE DATABASE {name}"))
    url = pg_run.pg.url(name)
    cfg = alembic_config(url, 384)
    try:
        _in_thread(lambda: command.upgrade(cfg, "0015_event_dates"))
        p, old, new_, plain = uuid.uuid4(), uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
        zero = [0.1] * 384
        asyncio.run(
            _sql(
                url,
                "INSERT INTO orgs (id, name) VALUES (:p, 'o')",
                "INSERT INTO projects (id, org_id, name) VALUES (:p, :p, 'p')",
                # a backdated add (created_at 2023, its ADD row written now) that was later retired by `new`
                "INSERT INTO memories (id, project_id, user_id, memory, hash, embedding, created_at, replaced_by) "
                "VALUES (:old, :p, 'u', 'old', 'h1', CAST(:v AS vector), '2023-01-01', :new)",
                "INSERT INTO memories (id, project_id, user_id, memory, hash, embedding) "
                "VALUES (:new, :p, 'u', 'new', 'h2', CAST(:v AS vector)), "
                "(:plain, :p, 'u', 'plain', 'h3', CAST(:v AS vector))",
                "INSERT INTO memory_history (id, project_id, memory_id, event, new_memory, created_at) VALUES "
                "(gen_random_uuid(), :p, :old, 'ADD', 'old', now() - interval '1 hour'), "
                "(gen_random_uuid(), :p, :new, 'ADD', 'new', now()), "
                "(gen_random_uuid(), :p, :plain, 'ADD', 'plain', now())",
                "INSERT INTO memory_history (id, project_id, memory_id, event, old_memory, created_at) VALUES "
                "(gen_random_uuid(), :p, :old, 'DELETE', 'old', now()), "
                "(gen_random_uuid(), :p, :old, 'DELETE', 'old', now() + interval '1 second')",
                p=p,
                old=old,
                new=new_,
                plain=plain,
                v=zero,
            )
        )
        _in_thread(lambda: command.upgrade(cfg, "0016_history_as_of"))
        rows = asyncio.run(
            _sql(
                url,
                "SELECT memory_id, event, occurred_at, replaced_by, old_embedding FROM memory_history "
                "ORDER BY created_at, id",
            )
        )
        by = [(r.memory_id, r.event, r.occurred_at, r.replaced_by, r.old_embedding) for r in rows]
        assert by[0] == (old, "ADD", datetime(2023, 1, 1, tzinfo=UTC), None, None)  # backdated: its created_at
        assert all(r[2] is None for r in by[1:])  # the others count at their created_at, unrewritten
        retirements = [r for r in by if r[1] == "DELETE"]
        assert [r[3] for r in retirements] == [new_, None]  # the first DELETE of a retired memory retired it
        _in_thread(lambda: command.downgrade(cfg, "0015_event_dates"))
        cols = asyncio.run(
            _sql(url, "SELECT column_name FROM information_schema.columns WHERE table_name = 'memory_history'")
        )
        assert not {"occurred_at", "replaced_by", "old_embedding"} & {c.column_name for c in cols}
        _in_thread(lambda: command.upgrade(cfg, "head"))
    finally:
        asyncio.run(_sql(database_url, f"DROP DATABASE {name} WITH (FORCE)"))
