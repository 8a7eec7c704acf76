"""GET /v1/memserver/usage (memserver extension): a project's usage per day in a time zone, every day present.

The history and events rows of past days are written here in SQL as fixture data (the API writes them only
now); searches are counted by a real server that flushes its counts every 0.2 s."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import orjson
import pytest
from sqlalchemy import text

from harness.server import LiveServer, served
from memserver.services.usage import UsageMeter
from memserver.storage.db import Database
from tests.api.helpers import add_verbatim, token_client
from tests.fakes.openai_server import FakeOpenAI, running
from tests.fakes.platform_llm import platform_script

USAGE = "/v1/memserver/usage/"


@pytest.fixture(scope="module")
def fake_llm() -> Iterator[FakeOpenAI]:
    with running(FakeOpenAI(chat_script=platform_script)) as fake:
        yield fake


@pytest.fixture(scope="module")
def usage_server(
    database_url: str, fake_llm: FakeOpenAI, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    with served(
        database_url,
        tmp_path_factory.mktemp("usage") / "api.log",
        MEMSERVER_USAGE__FLUSH_INTERVAL_S="0.2",
        MEMSERVER_LLM__BASE_URL=fake_llm.url,
        MEMSERVER_LLM__API_KEY="sk-test",
        MEMSERVER_LLM__MODEL="fake-model",
    ) as server:
        yield server


@pytest.fixture
def project(usage_server: LiveServer, make_tenant: Any) -> Iterator[tuple[str, httpx.Client]]:
    project_id, key = make_tenant()
    with token_client(usage_server.url, key) as client:
        yield project_id, client


async def history(db: Database, project_id: str, *rows: tuple[str, datetime]) -> None:
    async with db.transaction() as conn:
        for event, at in rows:
            await conn.execute(
                text(
                    "INSERT INTO memory_history (id, project_id, memory_id, event, new_memory, created_at) "
                    "VALUES (gen_random_uuid(), :p, gen_random_uuid(), :e, 'x', :at)"
                ),
                {"p": project_id, "e": event, "at": at},
            )


async def events(db: Database, project_id: str, *rows: tuple[str, str, dict[str, Any] | None, datetime]) -> None:
    async with db.transaction() as conn:
        for kind, status, metadata, at in rows:
            await conn.execute(
                text(
                    "INSERT INTO events (id, project_id, event_type, status, metadata, created_at) "
                    "VALUES (gen_random_uuid(), :p, :t, :s, CAST(:m AS jsonb), :at)"
                ),
                {
                    "p": project_id,
                    "t": kind,
                    "s": status,
                    "m": None if metadata is None else orjson.dumps(metadata).decode(),
                    "at": at,
                },
            )


def usage(client: httpx.Client, **params: str) -> dict[str, Any]:
    r = client.get(USAGE, params=params)
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


async def test_every_day_of_the_range_with_history_events_and_llm_use(
    project: tuple[str, httpx.Client], db: Database
) -> None:
    project_id, client = project
    d1 = datetime(2026, 3, 1, 12, tzinfo=UTC)
    await history(db, project_id, ("ADD", d1), ("ADD", d1), ("UPDATE", d1), ("ADD", d1 + timedelta(days=2)))
    await history(db, project_id, ("DELETE", d1 + timedelta(days=2)), ("ADD", d1 + timedelta(days=9)))
    llm = {"llm_calls": 2, "prompt_tokens": 900, "completion_tokens": 120, "notes": []}
    await events(
        db,
        project_id,
        ("ADD", "SUCCEEDED", llm, d1),
        ("ADD", "FAILED", {"llm_calls": 1, "prompt_tokens": 400, "completion_tokens": 0}, d1),
        ("ADD", "SUCCEEDED", None, d1),  # infer=false: no LLM
        ("EXPORT", "FAILED", {"llm_calls": 1, "prompt_tokens": 50, "completion_tokens": 5}, d1 + timedelta(days=2)),
        ("WEBHOOK", "FAILED", None, d1 + timedelta(days=2)),
        ("ADD", "SUCCEEDED", {"llm_calls": "lots", "prompt_tokens": [1]}, d1),  # an imported event's junk
    )
    got = usage(client, **{"from": "2026-03-01", "to": "2026-03-04"})
    assert (got["from"], got["to"], got["tz"]) == ("2026-03-01", "2026-03-04", "UTC")
    assert got["days"] == ["2026-03-01", "2026-03-02", "2026-03-03", "2026-03-04"]
    s = got["series"]
    assert s["memories_added"] == [2, 0, 1, 0]
    assert s["memories_updated"] == [1, 0, 0, 0]
    assert s["memories_deleted"] == [0, 0, 1, 0]
    assert s["llm_calls"] == [3, 0, 1, 0]
    assert s["prompt_tokens"] == [1300, 0, 50, 0]
    assert s["completion_tokens"] == [120, 0, 5, 0]
    assert (s["failed_adds"], s["failed_jobs"], s["failed_deliveries"]) == ([1, 0, 0, 0], [0, 0, 1, 0], [0, 0, 1, 0])
    assert s["searches"] == [None] * 4  # before the server counted searches
    assert got["totals"]["memories_added"] == 3
    assert got["totals"]["prompt_tokens"] == 1350
    assert got["totals"]["searches"] == 0


async def test_a_day_is_the_days_of_the_time_zone_asked_for(project: tuple[str, httpx.Client], db: Database) -> None:
    project_id, client = project
    late = datetime(2026, 3, 1, 16, 30, tzinfo=UTC)  # 01:30 on 2 March in Tokyo
    await history(db, project_id, ("ADD", late))
    await events(db, project_id, ("ADD", "FAILED", None, late))
    span = {"from": "2026-03-01", "to": "2026-03-02"}
    assert usage(client, **span)["series"]["memories_added"] == [1, 0]
    tokyo = usage(client, **span, tz="Asia/Tokyo")
    assert (tokyo["tz"], tokyo["series"]["memories_added"], tokyo["series"]["failed_adds"]) == (
        "Asia/Tokyo",
        [0, 1],
        [0, 1],
    )
    # a range's edges are the zone's midnights: 2 March alone in Tokyo still holds it, 1 March alone does not
    assert usage(client, **{"from": "2026-03-02", "to": "2026-03-02", "tz": "Asia/Tokyo"})["series"][
        "memories_added"
    ] == [1]
    assert usage(client, **{"from": "2026-03-01", "to": "2026-03-01", "tz": "Asia/Tokyo"})["series"][
        "memories_added"
    ] == [0]


def test_searches_are_counted_per_project_and_the_default_is_the_last_30_days(
    project: tuple[str, httpx.Client], usage_server: LiveServer, make_tenant: Any
) -> None:
    _, client = project
    add_verbatim(client, "Alice drinks green tea.")
    _, other_key = make_tenant()
    with token_client(usage_server.url, other_key) as other:
        for path, body in (
            ("/v1/memories/search/", {"query": "tea", "user_id": "alice"}),
            ("/v2/memories/search/", {"query": "tea", "filters": {"user_id": "alice"}}),
            ("/v3/memories/search/", {"query": "tea", "filters": {"user_id": "alice"}}),
        ):
            for _ in range(2):
                assert client.post(path, json=body).status_code == 200
            assert other.post(path, json=body).status_code == 200
        assert client.post("/v3/memories/search/", json={"query": "tea", "filters": {"user_id": "alice"}}).is_success
        deadline = time.monotonic() + 10
        while usage(client)["totals"]["searches"] < 7 and time.monotonic() < deadline:
            time.sleep(0.1)
        got = usage(client)
        today = datetime.now(UTC).date()
        assert got["to"] == today.isoformat()
        assert got["from"] == (today - timedelta(days=29)).isoformat()
        assert len(got["days"]) == 30
        assert got["series"]["searches"][-1] == 7  # 2 per generation and one more; the other project's are not here
        assert usage(other)["series"]["searches"][-1] == 3
        assert got["series"]["memories_added"][-1] == 1
        since = datetime.fromisoformat(got["searches_counted_since"])
        first = (since.date() - date.fromisoformat(got["from"])).days
        assert all(v is None for v in got["series"]["searches"][: max(first, 0)])


async def test_two_processes_counting_the_same_hour_add_up(tenant: tuple[str, str], db: Database) -> None:
    project_id = uuid.UUID(tenant[0])
    a, b = UsageMeter(), UsageMeter()
    for _ in range(3):
        a.count(project_id, "searches")
    b.count(project_id, "searches", 4)
    await a.flush(db)
    await b.flush(db)
    await a.flush(db)  # nothing left: adds nothing
    async with db.connect() as conn:
        value = (
            await conn.execute(
                text("SELECT sum(value) FROM usage_counters WHERE project_id = :p AND metric = 'searches'"),
                {"p": project_id},
            )
        ).scalar()
    assert value == 7


@pytest.mark.parametrize(
    ("params", "field", "message"),
    [
        ({"from": "2025-01-01", "to": "2026-01-02"}, "from", "from: at most 366 days can be asked for at once"),
        ({"from": "2026-03-02", "to": "2026-03-01"}, "from", "from: must not be after to"),
        ({"from": "March"}, "from", "from: not a date (YYYY-MM-DD): 'March'"),
        ({"to": "2026-13-01"}, "to", "to: not a date (YYYY-MM-DD): '2026-13-01'"),
        ({"tz": "Mars/Olympus"}, "tz", "tz: unknown time zone"),
        ({"tz": "../../etc/passwd"}, "tz", "tz: unknown time zone"),
    ],
)
def test_bad_ranges_and_zones_are_400s_naming_the_parameter(
    api: httpx.Client, params: dict[str, str], field: str, message: str
) -> None:
    r = api.get(USAGE, params=params)
    assert r.status_code == 400, r.text
    assert (r.json()["error"], r.json()["errors"]) == (message, {field: [message]})


def test_366_days_is_the_most(api: httpx.Client) -> None:
    got = usage(api, **{"from": "2025-01-01", "to": "2026-01-01"})
    assert len(got["days"]) == 366
    assert all(len(v) == 366 for v in got["series"].values())


def test_llm_calls_of_summaries_and_failed_adds_count_today(
    project: tuple[str, httpx.Client], fake_llm: FakeOpenAI
) -> None:
    _, client = project
    add_verbatim(client, "Alice drinks green tea.")
    before = fake_llm.stats_snapshot()
    assert client.post("/v1/summary/", json={"filters": {"user_id": "alice"}}).status_code == 200
    fake_llm.chat_replies.extend(["nope", "{still not"])
    r = client.post("/v3/memories/add/", json={"messages": [{"role": "user", "content": "I ski."}], "user_id": "a"})
    event_id = r.json()["event_id"]
    deadline = time.monotonic() + 20
    while client.get(f"/v1/event/{event_id}/").json()["status"] != "FAILED" and time.monotonic() < deadline:
        time.sleep(0.1)
    spent = fake_llm.stats_snapshot()["prompt_tokens"] - before["prompt_tokens"]
    while usage(client)["totals"]["llm_calls"] < 3 and time.monotonic() < deadline:  # the summary's, once flushed
        time.sleep(0.1)
    today = usage(client)["series"]
    assert (today["llm_calls"][-1], today["failed_adds"][-1]) == (3, 1)
    assert today["prompt_tokens"][-1] == spent > 0
