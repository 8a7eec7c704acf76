"""The webhook outbox of the single write path: a delivery row per change and subscribed webhook, written
by the change's own statement (so it commits and rolls back with it), categorize deliveries included."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import numpy as np
import pytest
from sqlalchemy import text

from memserver.domain.changes import AddDefaults, MemoryEdit, NewMemory
from memserver.domain.scope import Scope
from memserver.embedded_postgres import EmbeddedPostgres
from memserver.storage.db import Database
from memserver.storage.repositories.memory_writes import MemoryWriter
from memserver.storage.repositories.webhooks import WebhookRepository
from tests.worker.jobs_harness import fresh_database, make_tenant


@pytest.fixture(scope="module")
def outbox_url(pg: EmbeddedPostgres) -> str:
    return fresh_database(pg, "outbox")


@pytest.fixture
async def odb(outbox_url: str) -> AsyncIterator[Database]:
    db = Database(outbox_url)
    try:
        yield db
    finally:
        await db.dispose()


def _item(text_: str) -> NewMemory:
    v = np.random.default_rng(len(text_)).standard_normal(384).astype(np.float32)
    return NewMemory(text=text_, hash=uuid.uuid4().hex, scope=Scope(user_id="alice"), embedding=v / np.linalg.norm(v))


async def _deliveries(db: Database, project: str) -> list[dict[str, object]]:
    async with db.connect() as conn:
        rows = await conn.execute(
            text(
                "SELECT payload FROM events WHERE project_id = :p AND event_type = 'WEBHOOK' "
                "AND status = 'PENDING' AND dispatched_at IS NULL ORDER BY created_at, payload ->> 'event_type'"
            ),
            {"p": project},
        )
        return [r.payload for r in rows]


async def test_each_change_writes_its_deliveries_in_its_own_statement(odb: Database, outbox_url: str) -> None:
    project = uuid.UUID(make_tenant(outbox_url)[0])
    async with odb.connect() as conn:
        repo = WebhookRepository(conn)
        hook = await repo.create(
            project,
            name="all",
            url="https://example.com/h",
            event_types=["memory_add", "memory_update", "memory_delete", "memory_categorize"],
            secret="s",
            owner="o",
        )
        await repo.create(
            project, name="adds", url="https://example.com/a", event_types=["memory_add"], secret="s", owner="o"
        )
        off = await repo.create(
            project, name="off", url="https://example.com/o", event_types=["memory_add"], secret="s", owner="o"
        )
        await repo.update(project, off.id, {"is_active": False})
        (added,) = await MemoryWriter(conn).insert_new(
            project, [_item("likes tea")], AddDefaults(), event_id=uuid.uuid4()
        )
    rows = await _deliveries(odb, str(project))
    assert len(rows) == 2  # two active webhooks subscribe to memory_add; the inactive one gets nothing
    body = rows[0]["body"]
    assert body["event_details"] == {"id": str(added.id), "data": {"memory": "likes tea"}, "event": "ADD"}
    assert body["user_id"] == "alice"

    async with odb.connect() as conn:
        await MemoryWriter(conn).edit(project, MemoryEdit(memory_id=added.id, categories=["food", "drinks"]))
    rows = [r for r in await _deliveries(odb, str(project)) if r["webhook_id"] == str(hook.id)]
    kinds = sorted(r["event_type"] for r in rows)
    assert kinds == ["memory_add", "memory_categorize", "memory_update"]
    cat = next(r for r in rows if r["event_type"] == "memory_categorize")["body"]["event_details"]
    assert cat == {"event": "CATEGORIZE", "memory_id": str(added.id), "categories": ["food", "drinks"]}

    # A change that rolls back leaves no delivery behind.
    before = len(await _deliveries(odb, str(project)))

    async def delete_then_fail() -> None:
        async with odb.transaction() as conn:
            await MemoryWriter(conn).delete_ids(project, [added.id])
            raise RuntimeError("rolled back")

    with pytest.raises(RuntimeError):
        await delete_then_fail()
    assert len(await _deliveries(odb, str(project))) == before
    async with odb.connect() as conn:
        assert await MemoryWriter(conn).delete_ids(project, [added.id]) == 1
    rows = [r for r in await _deliveries(odb, str(project)) if r["event_type"] == "memory_delete"]
    assert [r["body"]["event_details"]["event"] for r in rows] == ["DELETE"]
