"""A provider's error text (which can quote the key) reaches neither API clients nor the events they read;
the operator still finds it in the server log."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import httpx
import pytest
from sqlalchemy import text

from harness.server import LiveServer
from memserver.domain.jobs import JobKind, JobStatus
from memserver.providers.errors import ProviderError
from memserver.services import jobs
from memserver.storage.db import Database
from memserver.storage.repositories.jobs import JobRepository
from tests.fakes.openai_server import FakeOpenAI, fake_embedder_server


@pytest.fixture(scope="module")
def stack(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveServer, FakeOpenAI]]:
    """A memserver whose embedder is a fake, called with a key whose last characters are "abcd"."""
    log = tmp_path_factory.mktemp("abuse-openai") / "api.log"
    with fake_embedder_server(database_url, log, api_key="sk-test-key-abcd") as pair:
        yield pair


def test_provider_error_text_does_not_reach_clients(
    stack: tuple[LiveServer, FakeOpenAI], tenant: tuple[str, str]
) -> None:
    openai_server, fake = stack
    fake.fail_next = 3  # more than the SDK's retries
    with httpx.Client(base_url=openai_server.url, headers={"Authorization": f"Token {tenant[1]}"}, timeout=30) as c:
        r = c.post("/v3/memories/search/", json={"query": "anything", "filters": {"user_id": "u"}})
    fake.fail_next = 0
    assert r.status_code == 502
    assert r.json()["detail"]
    assert "scripted failure" not in r.text
    assert "Error code" not in r.text
    assert "abcd" not in r.text
    assert "scripted failure" in openai_server.log.read_text()  # the operator still sees it


async def test_provider_error_text_does_not_reach_events(db: Database, tenant: tuple[str, str]) -> None:
    """A job that fails on a provider records a fixed reason: GET /v1/event/{id} is client-visible."""
    job_id = uuid.uuid4()
    async with db.connect() as conn:
        await JobRepository(conn).insert_pending(uuid.UUID(tenant[0]), job_id, JobKind.ADD, {"messages": []})

    async def failing(*args: object) -> None:
        raise ProviderError("Error code: 401 - Incorrect API key provided: sk-...abcd")

    ctx = jobs.JobContext(db=db, providers=None, handlers={JobKind.ADD: failing})  # type: ignore[arg-type, dict-item]
    outcome = await jobs.run(ctx, job_id)
    assert outcome.status == JobStatus.FAILED  # a rejected request is not retried
    async with db.connect() as conn:
        error = (await conn.execute(text("SELECT error FROM events WHERE id = :id"), {"id": job_id})).scalar_one()
    assert error
    assert "abcd" not in error
    assert "Incorrect API key" not in error
