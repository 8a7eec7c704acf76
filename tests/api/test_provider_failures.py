"""A failing embedder or LLM never leaves half-written memories, and the client gets a JSON 5xx whose
`detail` is memserver's own words: what failed, never the provider's error text, its URL or the key."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from sqlalchemy import text

from harness.server import LiveServer, free_port
from memserver.storage.db import Database
from tests.api.helpers import assert_error, async_token_client
from tests.fakes.openai_server import FakeOpenAI, fake_embedder_server, running

KEY = "sk-provider-secret-1234"  # never in an answer
# What the fake answers to a failed request (and to a refused json_schema): never in an answer either.
PROVIDER_TEXT = ("scripted failure", "server_error", "SECRET-PROVIDER-TEXT")


@pytest.fixture(scope="module")
def llm_fake() -> Iterator[FakeOpenAI]:
    with running(FakeOpenAI(hang_s=3, echo=True)) as f:
        yield f


@pytest.fixture(scope="module")
def stack(
    database_url: str, llm_fake: FakeOpenAI, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[LiveServer, FakeOpenAI]]:
    """A memserver with short provider deadlines, its fake embedder (hanging 3 s) and `llm_fake` as its LLM."""
    with fake_embedder_server(
        database_url,
        tmp_path_factory.mktemp("openai-server") / "api.log",
        hang_s=3,
        api_key=KEY,
        MEMSERVER_EMBEDDER__TIMEOUT_S="0.5",
        MEMSERVER_LLM__BASE_URL=llm_fake.url,
        MEMSERVER_LLM__API_KEY=KEY,
        MEMSERVER_LLM__TIMEOUT_S="1",
        MEMSERVER_LLM__MAX_RETRIES="1",
    ) as pair:
        yield pair


@pytest.fixture(scope="module")
def openai_server(stack: tuple[LiveServer, FakeOpenAI]) -> LiveServer:
    return stack[0]


@pytest.fixture(scope="module")
def fake(stack: tuple[LiveServer, FakeOpenAI]) -> FakeOpenAI:
    return stack[1]


@pytest.fixture(scope="module")
def unreachable_server(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """The LLM on a closed port of 127.0.0.1 (nothing listens there); the embedder answers."""
    closed = f"http://127.0.0.1:{free_port()}/v1"
    with fake_embedder_server(
        database_url,
        tmp_path_factory.mktemp("unreachable-server") / "api.log",
        api_key=KEY,
        MEMSERVER_LLM__BASE_URL=closed,
        MEMSERVER_LLM__API_KEY=KEY,
        MEMSERVER_LLM__MAX_RETRIES="0",
    ) as (server, _):
        yield server


def assert_in_our_words(r: httpx.Response, status: int, detail: str, *urls: str) -> None:
    """A JSON error of `status` whose detail carries `detail` (memserver's words) and nothing of the provider."""
    body = assert_error(r, status, detail=detail)
    assert body["detail"].endswith("The server log has the details under this request_id."), body
    assert body["request_id"] in r.headers.get("x-request-id", body["request_id"])
    for leaked in (*PROVIDER_TEXT, KEY, *urls, "127.0.0.1"):
        assert leaked not in r.text, (leaked, r.text)


async def failed_events(db: Database, project_id: str) -> list[str]:
    """The errors of the project's FAILED add events (what GET /v1/events/ shows), oldest first."""
    sql = "SELECT error FROM events WHERE project_id = :p AND status = 'FAILED' ORDER BY created_at"
    async with db.connect() as conn:
        return list((await conn.execute(text(sql), {"p": project_id})).scalars())


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


@pytest.mark.parametrize(
    ("fault", "status", "detail"),
    [
        ("fail_next", 502, "The embedding or LLM provider returned an error."),
        ("hang_next", 504, "The embedding or LLM provider did not answer in time."),
    ],
)
async def test_embedder_failure_is_a_json_5xx_and_writes_nothing(
    openai_server: LiveServer,
    fake: FakeOpenAI,
    tenant: tuple[str, str],
    db: Database,
    fault: str,
    status: int,
    detail: str,
) -> None:
    before = await counts(db, tenant[0])
    setattr(fake, fault, 3)  # more than the SDK's retries
    async with async_token_client(openai_server.url, tenant[1]) as c:
        r = await c.post("/v3/memories/add/", json={**ADD, "messages": [{"role": "user", "content": f"fault {fault}"}]})
        assert_in_our_words(r, status, detail, fake.url)
        assert await counts(db, tenant[0]) == before
        setattr(fake, fault, 0)
        # and the server recovers as soon as the embedder does
        r = await c.post("/v3/memories/add/", json={**ADD, "messages": [{"role": "user", "content": f"after {fault}"}]})
        assert r.status_code == 200, r.text


@pytest.mark.parametrize(
    ("fault", "status", "detail"),
    [
        ("fail_next", 503, "the LLM endpoint failed (HTTP 500, after 1 retries)"),
        ("hang_next", 504, "the LLM endpoint timed out after 1 s"),
    ],
)
async def test_llm_failure_is_a_json_503_or_504_in_our_words_and_writes_nothing(
    openai_server: LiveServer,
    llm_fake: FakeOpenAI,
    tenant: tuple[str, str],
    db: Database,
    fault: str,
    status: int,
    detail: str,
) -> None:
    before = await counts(db, tenant[0])
    setattr(llm_fake, fault, 4)  # more than the SDK's retries
    body = {"messages": [{"role": "user", "content": f"I like tea ({fault})"}], "user_id": "u", "async_mode": False}
    async with async_token_client(openai_server.url, tenant[1]) as c:
        r = await c.post("/v1/memories/", json=body)
        assert_in_our_words(r, status, detail, llm_fake.url)
        # no memory, history or entity; the add's event is recorded FAILED, with the same words
        assert await counts(db, tenant[0]) == {**before, "events": before["events"] + 1}
        assert await failed_events(db, tenant[0]) == [detail]
        setattr(llm_fake, fault, 0)
        r = await c.post("/v1/memories/", json=body)
        assert r.status_code == 200, r.text


async def test_an_unreachable_llm_is_a_json_503_in_our_words(
    unreachable_server: LiveServer, tenant: tuple[str, str], db: Database
) -> None:
    before = await counts(db, tenant[0])
    body = {"messages": [{"role": "user", "content": "I like tea."}], "user_id": "u", "async_mode": False}
    async with async_token_client(unreachable_server.url, tenant[1]) as c:
        r = await c.post("/v1/memories/", json=body)
        assert_in_our_words(r, 503, "the LLM endpoint could not be reached")
    assert await counts(db, tenant[0]) == {**before, "events": before["events"] + 1}
    assert await failed_events(db, tenant[0]) == ["the LLM endpoint could not be reached"]
