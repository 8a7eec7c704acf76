"""A failing embedder never leaves half-written memories, and the client gets a JSON 5xx."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import text

from harness.server import LiveServer, start_server, stop_server
from memserver.storage.db import Database
from tests.api.helpers import assert_error, async_token_client
from tests.fakes.openai_server import FakeOpenAI, running


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeOpenAI]:
    with running(FakeOpenAI(dim=384, hang_s=3)) as f:
        yield f


@pytest.fixture(scope="module")
def openai_server(
    database_url: str, fake: FakeOpenAI, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    server = start_server(
        database_url,
        tmp_path_factory.mktemp("openai-server") / "api.log",
        MEMSERVER_EMBEDDER__PROVIDER="openai",
        MEMSERVER_EMBEDDER__BASE_URL=fake.url,
        MEMSERVER_EMBEDDER__API_KEY="test-key",
        MEMSERVER_EMBEDDER__MODEL="fake-embedding",
        MEMSERVER_EMBEDDER__TIMEOUT_S="0.5",
    )
    yield server
    stop_server(server)


async def counts(db: Database, project_id: str) -> dict[str, int]:
    out = {}
    async with db.connect() as conn:
        for table in ("memories", "memory_history", "events", "entities"):
            out[table] = (
                await conn.execute(text(f"SELECT count(*) FROM {table} WHERE project_id = :p"), {"p": project_id})
            ).scalar_one()
    return out


ADD = {"messages": [{"role": "user", "content": "I moved to Austin."}], "user_id": "u", "infer": False}


async def test_openai_embedder_end_to_end(openai_server: LiveServer, fake: FakeOpenAI, tenant: tuple[str, str]) -> None:
    async with async_token_client(openai_server.url, tenant[1]) as c:
        r = await c.post("/v3/memories/add/", json=ADD)
        assert r.status_code == 200, r.text
        memory_id = r.json()["results"][0]["id"]
        assert any(req["body"]["input"] == ["I moved to Austin."] for req in fake.embedding_requests())
        r = await c.post("/v3/memories/search/", json={"query": "I moved to Austin.", "filters": {"user_id": "u"}})
        assert r.json()["results"][0]["id"] == memory_id


@pytest.mark.parametrize(("fault", "status"), [("fail_next", 502), ("hang_next", 504)])
async def test_embedder_failure_is_a_json_5xx_and_writes_nothing(
    openai_server: LiveServer,
    fake: FakeOpenAI,
    tenant: tuple[str, str],
    db: Database,
    fault: str,
    status: int,
) -> None:
    before = await counts(db, tenant[0])
    setattr(fake, fault, 3)  # more than the SDK's retries
    async with async_token_client(openai_server.url, tenant[1]) as c:
        r = await c.post("/v3/memories/add/", json={**ADD, "messages": [{"role": "user", "content": f"fault {fault}"}]})
        assert_error(r, status)
        assert await counts(db, tenant[0]) == before
        setattr(fake, fault, 0)
        # and the server recovers as soon as the embedder does
        r = await c.post("/v3/memories/add/", json={**ADD, "messages": [{"role": "user", "content": f"after {fault}"}]})
        assert r.status_code == 200, r.text
