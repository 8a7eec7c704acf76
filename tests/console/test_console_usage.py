"""The usage page: per-day charts (SVG) and their tables equal GET /v1/memserver/usage/, bars per day, searches
before counting began drawn as a gap. Past days' history rows are back-dated in SQL as fixture data (the API
writes only "now"); searches, an inferred add and a failed add go through a real server and the scripted LLM."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
from playwright.async_api import expect
from sqlalchemy import text

from harness.server import LiveServer
from memserver.storage.db import Database
from tests.console.scripted_console import (
    browser,
    chromium,
    console_llm,
    llm_console_server,
    say,
    scripted,
    wait_event,
    watched_llm,
)
from tests.console.test_console import Watched, sign_in
from tests.fakes.openai_server import FakeOpenAI

__all__ = ["browser", "chromium", "console_llm", "llm_console_server", "scripted", "watched_llm"]

CHARTS = {
    "chart-memories": ["memories_added", "memories_updated", "memories_deleted"],
    "chart-searches": ["searches"],
    "chart-llm": ["llm_calls"],
    "chart-tokens": ["prompt_tokens", "completion_tokens"],
    "chart-failures": ["failed_adds", "failed_jobs", "failed_deliveries"],
}


async def verbatim(c: httpx.AsyncClient, *texts: str) -> list[str]:
    body = {"messages": [{"role": "user", "content": t} for t in texts], "user_id": "alice", "infer": False}
    r = await c.post("/v3/memories/add/", json=body)
    assert r.status_code == 200, r.text
    return [x["id"] for x in r.json()["results"]]


async def back_date(db: Database, memory_ids: list[str], days: int) -> None:
    async with db.transaction() as conn:
        await conn.execute(
            text(
                "UPDATE memory_history SET created_at = created_at - make_interval(days => :d) "
                "WHERE memory_id = ANY(CAST(:ids AS uuid[]))"
            ),
            {"d": days, "ids": memory_ids},
        )


async def infer_add(c: httpx.AsyncClient, text_: str) -> dict[str, Any]:
    body = {"messages": [{"role": "user", "content": text_}], "user_id": "alice"}
    r = await c.post("/v3/memories/add/", json=body)
    assert r.status_code == 200, r.text
    return await wait_event(c, r.json()["event_id"])


def number(cell: str) -> int | None:
    return None if cell == "not counted" else int(cell.replace(",", "").replace("\u202f", "").replace(".", ""))


async def test_charts_and_tables_match_the_usage_endpoint(
    watched_llm: Watched, llm_console_server: LiveServer, scripted: FakeOpenAI, tenant: tuple[str, str], db: Database
) -> None:
    headers = {"Authorization": f"Token {tenant[1]}"}
    async with httpx.AsyncClient(base_url=llm_console_server.url, headers=headers, timeout=60) as c:
        await verbatim(c, "Alice note one", "Alice note two")
        await back_date(db, await verbatim(c, "Alice went to Rome"), 2)
        await back_date(db, await verbatim(c, "Alice met Bob", "Alice met Carol"), 4)
        for i in range(7):
            r = await c.post("/v2/memories/search/", json={"query": f"alice {i}", "filters": {"user_id": "alice"}})
            assert r.status_code == 200, r.text
        jazz = {"text": "Likes jazz", "speaker": "user", "sources": [0], "categories": [], "action": "ADD"}
        say(scripted, lambda p: [jazz])
        before = scripted.stats_snapshot()
        assert (await infer_add(c, "I like jazz."))["status"] == "SUCCEEDED"
        scripted.chat_replies.extend(["nope", "{still not"])  # malformed twice: the add fails, its calls were paid
        assert (await infer_add(c, "I like blues."))["status"] == "FAILED"
        spent = scripted.stats_snapshot()
        deadline = time.monotonic() + 20
        while (await c.get("/v1/memserver/usage/")).json()["totals"]["searches"] < 7:  # flushed every 0.2 s
            assert time.monotonic() < deadline, "the searches were never counted"
            await asyncio.sleep(0.2)

    page = watched_llm.page
    await sign_in(watched_llm, tenant[1])
    await page.locator("#nav").get_by_role("link", name="Usage").click()
    await expect(page.locator("#usage-out figure")).to_have_count(len(CHARTS))  # the last 30 days by default
    await expect(page.locator("#chart-memories tbody tr")).to_have_count(30)
    await page.get_by_label("Period").select_option("7")
    async with page.expect_response(lambda r: "/v1/memserver/usage/" in r.url) as answered:
        await page.get_by_role("button", name="Show", exact=True).click()
    response = await answered.value
    got: dict[str, Any] = await response.json()
    assert "tz=" in response.url
    assert "from=" in response.url
    s, days = got["series"], got["days"]
    assert len(days) == 7

    # what the API says is what happened (the page shows the same below)
    assert (s["memories_added"][-1], s["memories_added"][-3], s["memories_added"][-5]) == (3, 1, 2)
    assert sum(s["memories_added"]) == 6
    assert s["searches"][-1] == 7
    assert s["searches"][0] is None  # before the server began counting: a gap, not a zero
    assert s["llm_calls"][-1] == 3  # one call for the add, two for the one that failed
    assert s["prompt_tokens"][-1] == spent["prompt_tokens"] - before["prompt_tokens"] > 0
    assert s["failed_adds"][-1] == 1

    # each chart: one bar per day and series (none where a day was not counted), and its table equals the API
    await expect(page.locator("#usage-out figure")).to_have_count(len(CHARTS))
    for chart, keys in CHARTS.items():
        figure = page.locator(f"#{chart}")
        counted = sum(v is not None for k in keys for v in s[k])
        await expect(figure.locator("rect.cbar")).to_have_count(counted)
        gaps = sum(all(s[k][i] is None for k in keys) for i in range(len(days)))
        await expect(figure.locator("rect.gap")).to_have_count(gaps)
        toggle = figure.get_by_role("button", name="Show table")
        await toggle.focus()
        await page.keyboard.press("Enter")
        await expect(toggle).to_have_attribute("aria-pressed", "true")
        table = figure.locator("table")
        await expect(table).to_be_visible()
        await expect(table.locator("tbody tr")).to_have_count(len(days))
        for k in keys:
            cells = await table.locator(f"tbody td[data-series='{k}']").all_inner_texts()
            assert [number(x) for x in cells] == s[k], (chart, k, cells)
    searches = page.locator("#chart-searches-svg desc")
    await expect(searches).to_contain_text("searches: 7 in total, most 7 on")
    await expect(searches).to_contain_text("days not counted yet")
    await expect(page.locator("#usage-totals")).to_contain_text("searches7")
    await watched_llm.shot("40-usage-7-days")
