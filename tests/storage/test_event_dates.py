"""Event dates travel through the single write path: stored on add, kept, replaced or cleared by an edit,
copied into every history row, and refused by the database when the period is empty or half-given."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime

import numpy as np
import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from memserver.domain.changes import AddDefaults, ChangeSet, MemoryEdit, MemoryRemoval, NewMemory
from memserver.domain.dates import Period
from memserver.domain.scope import Scope
from memserver.pipeline.messages import text_hash
from memserver.services import event_dates
from memserver.storage.db import Database
from memserver.storage.repositories.memories import MemoryRepository
from memserver.storage.repositories.memory_writes import MemoryWriter

RNG = np.random.default_rng(21)
WEEK = Period(datetime(2025, 3, 10, tzinfo=UTC), datetime(2025, 3, 17, tzinfo=UTC))
DAY = Period(datetime(2025, 3, 20, tzinfo=UTC), datetime(2025, 3, 21, tzinfo=UTC))


def vec() -> np.ndarray:
    v = RNG.standard_normal(384).astype(np.float32)
    return v / np.linalg.norm(v)


def new(text_: str, scope: Scope, period: Period | None = None, index: int = 0) -> NewMemory:
    start, end = period if period else (None, None)
    return NewMemory(
        text=text_, hash=text_hash(text_), scope=scope, embedding=vec(), index=index, event_start=start, event_end=end
    )


async def history(db: Database, pid: uuid.UUID, memory_id: uuid.UUID) -> list[tuple[str, Period | None]]:
    async with db.connect() as conn:
        rows = await conn.execute(
            text(
                "SELECT event, event_start, event_end FROM memory_history WHERE project_id = :p AND memory_id = :m "
                "ORDER BY created_at, id"
            ),
            {"p": pid, "m": memory_id},
        )
        return [(r.event, Period(r.event_start, r.event_end) if r.event_start else None) for r in rows]


async def period_of(db: Database, pid: uuid.UUID, memory_id: uuid.UUID) -> Period | None:
    async with db.connect() as conn:
        row = await MemoryRepository(conn).get(pid, memory_id)
    assert row is not None
    return Period(row.event_start, row.event_end) if row.event_start and row.event_end else None


async def test_event_periods_round_trip_through_adds_edits_and_history(
    make_tenant: Callable[[], tuple[str, str]], database_url: str
) -> None:
    db = Database(database_url)
    pid, scope = uuid.UUID(make_tenant()[0]), Scope(user_id="maya")
    try:
        async with db.transaction() as conn:
            out = await MemoryWriter(conn).insert_new(
                pid,
                [new("Dinner with Maya in Tokyo", scope, WEEK), new("Likes sushi", scope, None, 1)],
                AddDefaults(),
                event_id=uuid.uuid4(),
            )
        tokyo, sushi = (o.id for o in out)
        assert tokyo
        assert sushi
        assert await period_of(db, pid, tokyo) == WEEK
        assert await period_of(db, pid, sushi) is None

        async def edit(e: MemoryEdit) -> None:
            async with db.transaction() as conn:
                await MemoryWriter(conn).edit(pid, e)

        await edit(MemoryEdit(memory_id=tokyo, metadata={"k": 1}))  # UNSET keeps the period
        assert await period_of(db, pid, tokyo) == WEEK
        await edit(MemoryEdit(memory_id=tokyo, event_period=DAY))
        assert await period_of(db, pid, tokyo) == DAY
        await edit(MemoryEdit(memory_id=sushi, event_period=WEEK))
        await edit(MemoryEdit(memory_id=sushi, event_period=None))  # None clears it
        assert await period_of(db, pid, sushi) is None

        async with db.transaction() as conn:
            changes = ChangeSet(removals=[MemoryRemoval(memory_id=tokyo)])
            assert [o.event for o in await MemoryWriter(conn).apply(pid, changes, AddDefaults(), event_id=uuid.uuid4())]
        # every history row records the state it wrote; the DELETE keeps the period the memory had
        assert await history(db, pid, tokyo) == [("ADD", WEEK), ("UPDATE", WEEK), ("UPDATE", DAY), ("DELETE", DAY)]
        assert await history(db, pid, sushi) == [("ADD", None), ("UPDATE", WEEK), ("UPDATE", None)]
    finally:
        await db.dispose()


@pytest.mark.parametrize(
    ("start", "end"),
    [
        (DAY.end, DAY.start),  # reversed
        (DAY.start, DAY.start),  # empty
        (DAY.start, None),  # half-given
    ],
)
async def test_the_database_refuses_an_empty_or_half_given_period(
    make_tenant: Callable[[], tuple[str, str]], database_url: str, start: datetime, end: datetime | None
) -> None:
    db = Database(database_url)
    pid = uuid.UUID(make_tenant()[0])
    try:
        item = NewMemory(
            text="x", hash=text_hash("x"), scope=Scope(user_id="u"), embedding=vec(), event_start=start, event_end=end
        )
        with pytest.raises(IntegrityError, match="ck_memories_event_period"):
            async with db.transaction() as conn:
                await MemoryWriter(conn).insert_new(pid, [item], AddDefaults(), event_id=uuid.uuid4())
    finally:
        await db.dispose()


async def test_an_overlap_query_uses_the_period_index(database_url: str) -> None:
    """The GiST index answers "overlaps this range" for one project (the large-scope candidate branch)."""
    db = Database(database_url)
    try:
        async with db.connect() as conn:
            await conn.execute(text("SET LOCAL enable_seqscan = off"))
            plan = "\n".join(
                r[0]
                for r in await conn.execute(
                    text(
                        "EXPLAIN SELECT id FROM memories WHERE project_id = :p AND event_start IS NOT NULL "
                        "AND tstzrange(event_start, event_end, '[)') && tstzrange(:a, :b, '[)')"
                    ),
                    {"p": uuid.uuid4(), "a": WEEK.start, "b": WEEK.end},
                )
            )
        assert "ix_memories_event_period" in plan
    finally:
        await db.dispose()


async def test_the_backfill_dates_memories_stored_before_event_dates_from_their_text(
    make_tenant: Callable[[], tuple[str, str]], database_url: str
) -> None:
    db = Database(database_url)
    pid, scope = uuid.UUID(make_tenant()[0]), Scope(user_id="old")
    try:
        recorded = AddDefaults(created_at=datetime(2025, 3, 21, 12, tzinfo=UTC))
        async with db.transaction() as conn:  # as a version before event dates stored them: no period
            out = await MemoryWriter(conn).insert_new(
                pid,
                [new("Flew to Rome yesterday", scope), new("Likes tea", scope, None, 1)],
                recorded,
                event_id=uuid.uuid4(),
            )
        rome, tea = (o.id for o in out)
        assert rome
        assert tea
        assert await period_of(db, pid, rome) is None
        read, dated = await event_dates.backfill(db, batch=2)  # pages of two: the keyset walk is exercised
        assert read >= 2
        assert dated >= 1
        assert await period_of(db, pid, rome) == DAY  # "yesterday" of 2025-03-21
        assert await period_of(db, pid, tea) is None
        assert (await event_dates.backfill(db))[1] == 0  # run again: nothing left to date
        assert [e for e, _ in await history(db, pid, rome)] == ["ADD"]  # the text did not change: no history
    finally:
        await db.dispose()
