"""A failing job's reason, as its event shows it, is memserver's own words: never an internal exception's
type and text (SQL, driver messages, internal names), which go to the server log only.

The fault is real: a database trigger makes the memories table refuse the row an inferred add writes, with
a message that stands for anything internal; the model is the scripted fake (tests/api/scripted_llm.py).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
from sqlalchemy import text

from harness.server import LiveServer
from memserver.storage.db import Database
from tests.api.helpers import async_token_client
from tests.api.scripted_llm import fact, facts, fake, llm, llm_server
from tests.fakes.openai_server import FakeOpenAI

__all__ = ["fake", "llm", "llm_server"]  # the scripted model's fixtures

SECRET = "internal-detail-7f3a"


@asynccontextmanager
async def refusing_memories(db: Database, marker: str) -> AsyncIterator[None]:
    """While open, inserting a memory whose text contains `marker` raises with SECRET in the message."""
    name = f"memserver_test_err_{uuid.uuid4().hex[:12]}"
    async with db.transaction() as conn:
        await conn.execute(
            text(
                f"""
                CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$
                BEGIN
                    IF NEW.memory LIKE '%{marker}%' THEN
                        RAISE EXCEPTION 'relation secret_table: {SECRET} at host db-internal.local';
                    END IF;
                    RETURN NEW;
                END $$
                """
            )
        )
        await conn.execute(
            text(f"CREATE TRIGGER {name} BEFORE INSERT ON memories FOR EACH ROW EXECUTE FUNCTION {name}()")
        )
    try:
        yield
    finally:
        async with db.transaction() as conn:
            await conn.execute(text(f"DROP TRIGGER IF EXISTS {name} ON memories"))
            await conn.execute(text(f"DROP FUNCTION IF EXISTS {name}()"))


async def failed_attempt(client: httpx.AsyncClient, event_id: str) -> dict[str, Any]:
    """The event once an attempt has failed (its `error` is set while it waits to retry, or FAILED)."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        event = (await client.get(f"/v1/event/{event_id}/")).json()
        if event.get("error") or event["status"] in ("SUCCEEDED", "FAILED"):
            return dict(event)
        await asyncio.sleep(0.05)
    raise AssertionError(f"event {event_id} did not fail")


async def test_an_internal_errors_text_never_reaches_the_event(
    llm_server: LiveServer, tenant: tuple[str, str], llm: FakeOpenAI, db: Database
) -> None:
    marker = f"mk{uuid.uuid4().hex[:8]}"
    llm.chat_script = lambda body: facts(fact(f"Collects stamps {marker}"))
    async with refusing_memories(db, marker), async_token_client(llm_server.url, tenant[1]) as client:
        r = await client.post(
            "/v3/memories/add/", json={"messages": [{"role": "user", "content": "I collect stamps."}], "user_id": "u"}
        )
        assert r.status_code == 200, r.text
        event = await failed_attempt(client, r.json()["event_id"])
    assert event["status"] in ("PENDING", "FAILED"), event  # the add did not apply
    error = str(event["error"])
    for internal in (SECRET, "secret_table", "db-internal", "INSERT", "asyncpg", "sqlalchemy", "Error:"):
        assert internal not in error, error
    assert "internal error" in error, error  # memserver's own words
    assert SECRET not in str(event), event
