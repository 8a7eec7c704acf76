"""A failing database write leaves nothing half-written.

A test trigger makes one table refuse rows carrying a per-test marker; the request that writes such a
row must fail with a JSON 5xx and leave no trace (no memory, history, entity or event row), and a
multi-row operation that fails midway must change nothing. The trigger fires only for the marker, and
is dropped afterwards (the database is shared by the whole test session).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
from sqlalchemy import text

from memserver.storage.db import Database
from tests.api.helpers import ADD_V3, assert_error, verbatim_add_body


@asynccontextmanager
async def failing(db: Database, table: str, when: str, column: str, marker: str) -> AsyncIterator[None]:
    """While open, `when` (INSERT/UPDATE/DELETE) on `table` raises for rows whose `column` contains marker."""
    name = f"memserver_test_fail_{uuid.uuid4().hex[:12]}"
    row = "OLD" if when == "DELETE" else "NEW"
    async with db.transaction() as conn:
        await conn.execute(
            text(
                f"""
                CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$
                BEGIN
                    IF {row}.{column}::text LIKE '%{marker}%' THEN
                        RAISE EXCEPTION 'injected test failure ({marker})';
                    END IF;
                    RETURN {row};
                END $$
                """
            )
        )
        await conn.execute(
            text(f"CREATE TRIGGER {name} BEFORE {when} ON {table} FOR EACH ROW EXECUTE FUNCTION {name}()")
        )
    try:
        yield
    finally:
        async with db.transaction() as conn:
            await conn.execute(text(f"DROP TRIGGER IF EXISTS {name} ON {table}"))
            await conn.execute(text(f"DROP FUNCTION IF EXISTS {name}()"))


async def scalar(db: Database, sql: str, **params: Any) -> Any:
    async with db.connect() as conn:
        return (await conn.execute(text(sql), params)).scalar_one()


async def add(api: httpx.AsyncClient, *texts: str, **fields: Any) -> list[str]:
    r = await api.post(ADD_V3, json=verbatim_add_body(*texts, **fields))
    assert r.status_code == 200, r.text
    return [item["id"] for item in r.json()["results"]]


async def once(api: httpx.AsyncClient, method: str, path: str, **kwargs: Any) -> httpx.Response:
    """One request on its own connection: these requests fail on purpose, and a failure must not take
    the shared keep-alive connection down with it (that is tested separately below)."""
    async with httpx.AsyncClient(base_url=api.base_url, headers=api.headers, timeout=30) as own:
        return await own.request(method, path, **kwargs)


async def events_of(api: httpx.AsyncClient, memory_id: str) -> list[str]:
    r = await api.get(f"/v1/memories/{memory_id}/history/")
    assert r.status_code == 200, r.text
    return [h["event"] for h in r.json()]


def assert_server_error(r: httpx.Response) -> None:
    assert_error(r, 500)
    assert "injected" not in r.text  # no database internals leak to the client


async def memory_rows(db: Database, ids: list[str]) -> list[tuple[Any, ...]]:
    """The stored state of these memories, embedding included."""
    async with db.connect() as conn:
        rows = await conn.execute(
            text(
                "SELECT id::text, memory, hash, metadata::text, embedding::text, created_at, updated_at "
                "FROM memories WHERE id = ANY(CAST(:ids AS uuid[])) ORDER BY id"
            ),
            {"ids": ids},
        )
        return [tuple(r) for r in rows]


async def history_count(db: Database, project_id: str) -> int:
    return int(await scalar(db, "SELECT count(*) FROM memory_history WHERE project_id = :p", p=project_id))


# ----------------------------------------------------------------------------------------------
# add
# ----------------------------------------------------------------------------------------------
async def assert_add_left_no_trace(
    aapi: httpx.AsyncClient, db: Database, project_id: str, marker: str, user: str
) -> None:
    p = project_id
    assert await scalar(db, "SELECT count(*) FROM memories WHERE project_id = :p", p=p) == 0
    assert await history_count(db, p) == 0
    assert await scalar(db, "SELECT count(*) FROM entities WHERE project_id = :p", p=p) == 0
    assert await scalar(db, "SELECT count(*) FROM events WHERE project_id = :p", p=p) == 0
    assert await scalar(db, "SELECT count(*) FROM memories WHERE memory LIKE :m", m=f"%{marker}%") == 0
    assert (await aapi.post("/v3/memories/", json={"filters": {"user_id": user}})).json()["count"] == 0
    assert (await aapi.get("/v1/entities/")).json()["count"] == 0
    assert (await aapi.get("/v1/events/")).json()["count"] == 0


async def test_add_failing_on_history_writes_nothing(
    aapi: httpx.AsyncClient, db: Database, tenant: tuple[str, str]
) -> None:
    marker = f"mk{uuid.uuid4().hex}"
    user = f"user-{uuid.uuid4().hex[:8]}"
    messages = [f"A harmless first fact for {user}.", f"The second fact carries {marker}.", "A third fact."]
    async with failing(db, "memory_history", "INSERT", "new_memory", marker):
        r = await once(
            aapi,
            "POST",
            "/v3/memories/add/",
            json={
                "user_id": user,
                "agent_id": "bot",
                "infer": False,
                "messages": [{"role": "user", "content": m} for m in messages],
            },
        )
        assert_server_error(r)
        await assert_add_left_no_trace(aapi, db, tenant[0], marker, user)
    # the server is healthy and the same request succeeds once the failure is gone
    assert len(await add(aapi, *messages, user_id=user)) == 3
    assert await history_count(db, tenant[0]) == 3


async def test_add_failing_on_the_event_writes_nothing(
    aapi: httpx.AsyncClient, db: Database, tenant: tuple[str, str]
) -> None:
    marker = f"mk{uuid.uuid4().hex}"
    user = f"user-{uuid.uuid4().hex[:8]}"
    async with failing(db, "events", "INSERT", "payload", marker):
        r = await once(
            aapi,
            "POST",
            "/v3/memories/add/",
            json={"user_id": user, "infer": False, "messages": f"Note {marker}."},
        )
        assert_server_error(r)
        await assert_add_left_no_trace(aapi, db, tenant[0], marker, user)


async def test_add_failing_on_an_entity_writes_nothing(
    aapi: httpx.AsyncClient, db: Database, tenant: tuple[str, str]
) -> None:
    marker = f"mk{uuid.uuid4().hex}"
    user = f"user-{marker}"
    async with failing(db, "entities", "INSERT", "name", marker):
        r = await once(
            aapi,
            "POST",
            "/v3/memories/add/",
            json={"user_id": user, "app_id": "shop", "infer": False, "messages": "An ordinary fact."},
        )
        assert_server_error(r)
        await assert_add_left_no_trace(aapi, db, tenant[0], marker, user)


async def test_v1_add_failing_writes_nothing(aapi: httpx.AsyncClient, db: Database, tenant: tuple[str, str]) -> None:
    marker = f"mk{uuid.uuid4().hex}"
    user = f"user-{uuid.uuid4().hex[:8]}"
    async with failing(db, "memory_history", "INSERT", "new_memory", marker):
        r = await once(
            aapi,
            "POST",
            "/v1/memories/",
            json={"user_id": user, "infer": False, "async_mode": False, "messages": f"Old aapi {marker}."},
        )
        assert_server_error(r)
        await assert_add_left_no_trace(aapi, db, tenant[0], marker, user)


# ----------------------------------------------------------------------------------------------
# update
# ----------------------------------------------------------------------------------------------
async def test_update_failing_on_history_changes_nothing(
    aapi: httpx.AsyncClient, db: Database, tenant: tuple[str, str]
) -> None:
    (mid,) = await add(aapi, "Before the update.")
    before = await memory_rows(db, [mid])
    marker = f"mk{uuid.uuid4().hex}"
    async with failing(db, "memory_history", "INSERT", "new_memory", marker):
        assert_server_error(
            await once(aapi, "PUT", f"/v1/memories/{mid}/", json={"text": f"After {marker}.", "metadata": {"a": 1}})
        )
    assert await memory_rows(db, [mid]) == before
    assert await events_of(aapi, mid) == ["ADD"]


async def test_batch_update_failing_midway_changes_nothing(
    aapi: httpx.AsyncClient, db: Database, tenant: tuple[str, str]
) -> None:
    ids = await add(aapi, "Fact A.", "Fact B.", "Fact C.")
    before = await memory_rows(db, ids)
    history_before = await history_count(db, tenant[0])
    marker = f"mk{uuid.uuid4().hex}"
    items = [
        {"memory_id": ids[0], "text": "Fact A, revised.", "metadata": {"rev": 1}},
        {"memory_id": ids[1], "text": f"Fact B {marker}."},  # the second write fails
        {"memory_id": ids[2], "text": "Fact C, revised."},
    ]
    async with failing(db, "memory_history", "INSERT", "new_memory", marker):
        assert_server_error(await once(aapi, "PUT", "/v1/batch/", json={"memories": items}))
    assert await memory_rows(db, ids) == before
    assert await history_count(db, tenant[0]) == history_before
    assert [(await aapi.get(f"/v1/memories/{m}/")).json()["memory"] for m in ids] == [
        "Fact A.",
        "Fact B.",
        "Fact C.",
    ]


# ----------------------------------------------------------------------------------------------
# deletes
# ----------------------------------------------------------------------------------------------
async def test_batch_delete_failing_midway_deletes_nothing(
    aapi: httpx.AsyncClient, db: Database, tenant: tuple[str, str]
) -> None:
    marker = f"mk{uuid.uuid4().hex}"
    ids = await add(aapi, "Doomed one.", f"Doomed {marker}.", "Doomed three.")
    history_before = await history_count(db, tenant[0])
    async with failing(db, "memory_history", "INSERT", "old_memory", marker):
        assert_server_error(
            await once(aapi, "DELETE", "/v1/batch/", json={"memories": [{"memory_id": m} for m in ids]})
        )
    assert len(await memory_rows(db, ids)) == 3
    assert await history_count(db, tenant[0]) == history_before


async def test_delete_all_failing_midway_deletes_nothing(
    aapi: httpx.AsyncClient, db: Database, tenant: tuple[str, str]
) -> None:
    marker = f"mk{uuid.uuid4().hex}"
    ids = await add(aapi, "One of many.", f"Poisoned {marker}.", "Last of many.")
    async with failing(db, "memory_history", "INSERT", "old_memory", marker):
        assert_server_error(await once(aapi, "DELETE", "/v1/memories/", params={"user_id": "alice"}))
    assert len(await memory_rows(db, ids)) == 3
    assert (await aapi.post("/v3/memories/", json={"filters": {"user_id": "alice"}})).json()["count"] == 3


async def test_entity_delete_failing_after_its_memories_deletes_nothing(
    aapi: httpx.AsyncClient, db: Database, tenant: tuple[str, str]
) -> None:
    marker = f"mk{uuid.uuid4().hex}"
    user = f"user-{marker}"
    ids = await add(aapi, "Entity fact one.", "Entity fact two.", user_id=user)
    async with failing(db, "entities", "DELETE", "name", marker):
        assert_server_error(await once(aapi, "DELETE", f"/v2/entities/user/{user}/"))
    assert len(await memory_rows(db, ids)) == 2  # the memories were deleted first, then rolled back
    assert [e["name"] for e in (await aapi.get("/v1/entities/")).json()["results"]] == [user]
    assert [await events_of(aapi, m) for m in ids] == [["ADD"], ["ADD"]]


# ----------------------------------------------------------------------------------------------
# the connection after a server error
# ----------------------------------------------------------------------------------------------
async def test_a_server_error_does_not_break_the_clients_next_request(aapi: httpx.AsyncClient, db: Database) -> None:
    marker = f"mk{uuid.uuid4().hex}"
    async with failing(db, "events", "INSERT", "payload", marker):
        for i in range(5):  # the SDKs keep one connection open: a 500 must not poison the next call
            r = await aapi.post("/v3/memories/add/", json={"user_id": "u", "infer": False, "messages": f"{marker} {i}"})
            assert_server_error(r)
            assert (await aapi.get("/v1/events/")).status_code == 200
