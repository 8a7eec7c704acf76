"""The single write path applies a mixed list of ADD/UPDATE/DELETE/NOOP decisions all or nothing.

Faults are injected with real database triggers (not mocks): a trigger makes the write of one chosen
decision fail, and the memories and history of the project must then be exactly as before.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from memserver.domain.changes import AddDefaults, ChangeSet, MemoryEdit, MemoryRemoval, NewMemory, Noop, Op
from memserver.domain.scope import Scope
from memserver.pipeline.messages import text_hash
from memserver.storage.db import Database
from memserver.storage.repositories.memory_writes import MemoryWriter

MARK = {"INSERT": "FAIL-ON-INSERT", "UPDATE": "FAIL-ON-UPDATE", "DELETE": "FAIL-ON-DELETE"}
RNG = np.random.default_rng(7)


def vec() -> np.ndarray:
    v = RNG.standard_normal(384).astype(np.float32)
    return v / np.linalg.norm(v)


def new(text_: str, scope: Scope, index: int = 0) -> NewMemory:
    return NewMemory(text=text_, hash=text_hash(text_), scope=scope, embedding=vec(), index=index)


@pytest.fixture(scope="module")
def triggers(database_url: str) -> Any:
    """Triggers that fail any memories write whose text carries the matching marker (dropped afterwards)."""

    async def run(sql: list[str]) -> None:
        db = Database(database_url)
        try:
            async with db.transaction() as conn:
                for s in sql:
                    await conn.execute(text(s))
        finally:
            await db.dispose()

    create = []
    for when, marker in MARK.items():
        row = "OLD" if when == "DELETE" else "NEW"
        create += [
            f"""CREATE OR REPLACE FUNCTION write_path_fail_{when.lower()}() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                IF {row}.memory LIKE '%{marker}%' THEN RAISE EXCEPTION 'injected failure on {when}'; END IF;
                RETURN {row};
            END $$""",
            f"CREATE TRIGGER write_path_fail_{when.lower()} BEFORE {when} ON memories "
            f"FOR EACH ROW EXECUTE FUNCTION write_path_fail_{when.lower()}()",
        ]
    asyncio.run(run(create))
    yield
    drop = []
    for when in MARK:
        drop += [
            f"DROP TRIGGER IF EXISTS write_path_fail_{when.lower()} ON memories",
            f"DROP FUNCTION IF EXISTS write_path_fail_{when.lower()}()",
        ]
    asyncio.run(run(drop))


async def snapshot(db: Database, project_id: uuid.UUID) -> tuple[list[Any], list[Any]]:
    async with db.connect() as conn:
        mems = (
            await conn.execute(
                text(
                    "SELECT id, memory, hash, replaced_by, embedding::text, updated_at FROM memories "
                    "WHERE project_id = :p ORDER BY id"
                ),
                {"p": project_id},
            )
        ).all()
        hist = (
            await conn.execute(
                text(
                    "SELECT memory_id, event, old_memory, new_memory FROM memory_history WHERE project_id = :p "
                    "ORDER BY created_at, id"
                ),
                {"p": project_id},
            )
        ).all()
    return [tuple(r) for r in mems], [tuple(r) for r in hist]


async def seed(db: Database, project_id: uuid.UUID, scope: Scope, texts: list[str]) -> list[uuid.UUID]:
    async with db.transaction() as conn:
        out = await MemoryWriter(conn).insert_new(
            project_id, [new(t, scope, i) for i, t in enumerate(texts)], AddDefaults(), event_id=uuid.uuid4()
        )
    assert [o.event for o in out] == [Op.ADD] * len(texts)
    return [o.id for o in out if o.id is not None]


async def apply(db: Database, project_id: uuid.UUID, changes: ChangeSet) -> list[Any]:
    async with db.transaction() as conn:
        return await MemoryWriter(conn).apply(project_id, changes, AddDefaults(), event_id=uuid.uuid4())


def project(make_tenant: Callable[[], tuple[str, str]]) -> uuid.UUID:
    return uuid.UUID(make_tenant()[0])


async def test_mixed_decisions_apply_with_history(
    make_tenant: Callable[[], tuple[str, str]], database_url: str
) -> None:
    db = Database(database_url)
    pid, scope = project(make_tenant), Scope(user_id="alice", agent_id="bot")
    try:
        a, b, c, d = await seed(db, pid, scope, ["Lives in Berlin", "Has a cat", "Likes jazz", "Drinks tea"])
        e = vec()
        changes = ChangeSet(
            adds=[new("Works as a nurse", scope, 0)],
            edits=[MemoryEdit(memory_id=a, text="Lives in Munich", hash=text_hash("Lives in Munich"), embedding=e)],
            removals=[MemoryRemoval(memory_id=b), MemoryRemoval(memory_id=c, replaced_by=d)],
            noops=[Noop(memory_id=d, text="Drinks tea")],
        )
        outcomes = await apply(db, pid, changes)
        assert sorted((o.event.value, o.text) for o in outcomes) == [
            ("ADD", "Works as a nurse"),
            ("DELETE", "Has a cat"),
            ("DELETE", "Likes jazz"),
            ("NOOP", "Drinks tea"),
            ("UPDATE", "Lives in Munich"),
        ]
        update = next(o for o in outcomes if o.event is Op.UPDATE)
        assert update.id == a
        assert update.previous_text == "Lives in Berlin"
        mems, hist = await snapshot(db, pid)
        by_id = {m[0]: m for m in mems}
        assert by_id[a][1] == "Lives in Munich"
        assert b not in by_id  # deleted; its history stays
        assert by_id[c][3] == d  # retired: kept, superseded by d
        assert ("UPDATE", "Lives in Berlin", "Lives in Munich") in [(h[1], h[2], h[3]) for h in hist if h[0] == a]
        assert [(h[1], h[2], h[3]) for h in hist if h[0] == b] == [
            ("ADD", None, "Has a cat"),
            ("DELETE", "Has a cat", None),
        ]
        assert [h[1] for h in hist if h[0] == c] == ["ADD", "DELETE"]
    finally:
        await db.dispose()


@pytest.mark.usefixtures("triggers")
async def test_a_failure_on_the_last_decision_leaves_memories_and_history_unchanged(
    make_tenant: Callable[[], tuple[str, str]], database_url: str
) -> None:
    db = Database(database_url)
    pid, scope = project(make_tenant), Scope(user_id="bob")
    try:
        a, b, _ = await seed(db, pid, scope, ["Plays chess", "Owns a bike", f"Old address {MARK['DELETE']}"])
        before = await snapshot(db, pid)
        changes = ChangeSet(
            adds=[new("Speaks Italian", scope)],
            edits=[
                MemoryEdit(
                    memory_id=a, text="Plays chess weekly", hash=text_hash("Plays chess weekly"), embedding=vec()
                )
            ],
            removals=[MemoryRemoval(memory_id=b), MemoryRemoval(memory_id=_)],  # the last one fails
            noops=[],
        )
        with pytest.raises(Exception, match="injected failure on DELETE"):
            await apply(db, pid, changes)
        assert await snapshot(db, pid) == before
    finally:
        await db.dispose()


# ----------------------------------------------------------------------------------------------
# property: any decision list, with a failure injected at any decision, applies all or nothing
# ----------------------------------------------------------------------------------------------
decision = st.sampled_from(["add", "edit", "delete", "retire", "noop"])


@pytest.mark.usefixtures("triggers")
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(kinds=st.lists(decision, min_size=1, max_size=8), fail_at=st.integers(min_value=-1, max_value=7))
def test_any_decision_list_applies_all_or_nothing(
    make_tenant: Callable[[], tuple[str, str]], database_url: str, kinds: list[str], fail_at: int
) -> None:
    """fail_at = -1: no failure, every decision applies; otherwise the chosen decision fails and nothing does."""
    fail_at = fail_at if fail_at < len(kinds) else -1
    asyncio.run(_property_example(project(make_tenant), database_url, kinds, fail_at))


async def _property_example(pid: uuid.UUID, database_url: str, kinds: list[str], fail_at: int) -> None:
    db = Database(database_url)
    scope = Scope(user_id=f"u-{uuid.uuid4().hex[:6]}")
    try:
        fails = [i == fail_at for i in range(len(kinds))]
        # a removal fails on its seed's text: DELETE for a deletion, UPDATE for a retirement
        marks = {"delete": MARK["DELETE"], "retire": MARK["UPDATE"]}
        seeds = [f"seed {i} {marks.get(k, '') if f else ''}" for i, (k, f) in enumerate(zip(kinds, fails, strict=True))]
        ids = await seed(db, pid, scope, seeds)
        keeper = (await seed(db, pid, scope, ["keeper"]))[0]
        before = await snapshot(db, pid)
        changes = ChangeSet()
        for i, (kind, fail) in enumerate(zip(kinds, fails, strict=True)):
            if kind == "add":
                changes.adds.append(new(f"new {i} {MARK['INSERT'] if fail else ''}", scope, i))
            elif kind == "edit":
                t = f"edited {i} {MARK['UPDATE'] if fail else ''}"
                changes.edits.append(MemoryEdit(memory_id=ids[i], text=t, hash=text_hash(t), embedding=vec()))
            elif kind in ("delete", "retire"):
                changes.removals.append(
                    MemoryRemoval(memory_id=ids[i], replaced_by=keeper if kind == "retire" else None)
                )
            else:
                changes.noops.append(Noop(memory_id=ids[i], text=seeds[i], index=i))
        should_fail = fail_at >= 0 and kinds[fail_at] != "noop"
        if should_fail:
            with pytest.raises(Exception, match="injected failure"):
                await apply(db, pid, changes)
            assert await snapshot(db, pid) == before
        else:
            outcomes = await apply(db, pid, changes)
            expected = {"add": Op.ADD, "edit": Op.UPDATE, "delete": Op.DELETE, "retire": Op.DELETE, "noop": Op.NOOP}
            assert sorted(o.event.value for o in outcomes) == sorted(expected[k].value for k in kinds)
            _mems, hist = await snapshot(db, pid)
            assert len(hist) == len(before[1]) + sum(k != "noop" for k in kinds)
    finally:
        await db.dispose()
