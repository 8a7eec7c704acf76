"""An event's page shows what the LLM decided, one row per fact (ADD/UPDATE/DELETE/NOOP), each with the
messages it came from, and what the calls cost. A real memserver with the scripted LLM; Chromium."""

from __future__ import annotations

import re
from typing import Any

import httpx
from playwright.async_api import expect

from harness.server import LiveServer
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

REF_LINE = re.compile(r"^ref (\d+): (.*?)(?: \(noted [\d-]+\))?$", re.M)


def fact(text: str, sources: list[int], action: str = "ADD", ref: int | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"text": text, "speaker": "user", "sources": sources, "categories": [], "action": action}
    if ref is not None:
        out["ref"] = ref
    return out


async def test_event_page_shows_each_decision_with_its_source_messages(
    watched_llm: Watched, llm_console_server: LiveServer, scripted: FakeOpenAI, tenant: tuple[str, str]
) -> None:
    headers = {"Authorization": f"Token {tenant[1]}"}
    async with httpx.AsyncClient(base_url=llm_console_server.url, headers=headers, timeout=60) as c:
        stored = ["Lives in Berlin", "Owns a bike", "Likes tea"]
        r = await c.post(
            "/v3/memories/add/",
            json={"messages": [{"role": "user", "content": t} for t in stored], "user_id": "alice", "infer": False},
        )
        assert r.status_code == 200, r.text

        def decide(prompt: str) -> list[dict[str, Any]]:
            refs = {m.group(2): int(m.group(1)) for m in REF_LINE.finditer(prompt)}
            return [
                fact("Speaks Italian", [1]),
                fact("Lives in Munich", [2], "UPDATE", refs["Lives in Berlin"]),
                fact("Owns a bike", [0], "DELETE", refs["Owns a bike"]),
                fact("Likes tea", [1], "NOOP", refs["Likes tea"]),
            ]

        say(scripted, decide)
        before = scripted.stats_snapshot()
        messages = ["I sold my bike.", "Ciao! I speak Italian, and still like tea.", "I moved to Munich."]
        body = {"messages": [{"role": "user", "content": t} for t in messages], "user_id": "alice"}
        r = await c.post("/v3/memories/add/", json=body)
        assert r.status_code == 200, r.text
        event = await wait_event(c, r.json()["event_id"])
        after = scripted.stats_snapshot()
        assert event["status"] == "SUCCEEDED", event
        munich = next(d["memory_id"] for d in event["metadata"]["decisions"] if d["op"] == "UPDATE")

    page = watched_llm.page
    await sign_in(watched_llm, tenant[1])
    await page.locator("#nav").get_by_role("link", name="Events").click()
    row = page.locator(f"#events-table tr[data-id='{event['id']}']")
    await row.get_by_role("link", name=re.compile("Details")).click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("Event: ADD")

    # the messages sent, in order
    sent = page.locator("#event-messages > li")
    await expect(sent).to_have_count(3)
    for i, text in enumerate(messages):
        await expect(sent.nth(i)).to_contain_text(text)

    # one row per decision, with its operation as a text badge, the fact, and the messages it came from
    rows = page.locator("#decisions-table tbody tr")
    await expect(rows).to_have_count(4)
    await expect(rows.locator("td:first-child .badge")).to_have_text(["ADD", "UPDATE", "DELETE", "NOOP"])
    await expect(rows.nth(0)).to_contain_text("Speaks Italian")
    await expect(rows.nth(1).locator("del")).to_have_text("Lives in Berlin")
    await expect(rows.nth(1).locator("ins")).to_have_text("Lives in Munich")
    await expect(rows.nth(1)).to_contain_text("from messages 3")
    await expect(rows.nth(2)).to_contain_text("from messages 1")
    await expect(rows.nth(3)).to_contain_text("Likes tea")

    # the tokens are what the model reported
    usage = page.locator("#event-usage")
    await expect(usage).to_contain_text("llm calls1")
    prompt_tokens = int(after["prompt_tokens"] - before["prompt_tokens"])
    await expect(usage).to_contain_text(f"prompt tokens{prompt_tokens:,}")
    await watched_llm.shot("30-event-decisions")

    # "from messages 2" marks message 2 (keyboard: the link is activated with Enter) and moves focus there
    await rows.nth(0).get_by_role("link", name="message 2 (source of fact 1)").focus()
    await page.keyboard.press("Enter")
    await expect(sent.nth(1)).to_have_class(re.compile("marked"))
    await expect(sent.nth(1)).to_contain_text("source")
    await expect(page.locator("#event-messages > li.marked")).to_have_count(1)
    assert await page.evaluate("document.activeElement.id") == "msg-1"
    await watched_llm.shot("31-event-source-marked")

    # the memory link opens the updated memory
    await rows.nth(1).get_by_role("link", name="Memory of fact 2").click()
    await expect(page.locator("#memory-text")).to_have_text("Lives in Munich")
    assert munich in page.url


async def test_a_verbatim_add_says_no_llm_was_used(
    watched_llm: Watched, llm_console_server: LiveServer, tenant: tuple[str, str]
) -> None:
    headers = {"Authorization": f"Token {tenant[1]}"}
    async with httpx.AsyncClient(base_url=llm_console_server.url, headers=headers, timeout=60) as c:
        r = await c.post(
            "/v3/memories/add/",
            json={"messages": [{"role": "user", "content": "Plain note"}], "user_id": "bob", "infer": False},
        )
        assert r.status_code == 200, r.text
        events = (await c.get("/v1/events/")).json()["results"]
    page = watched_llm.page
    await sign_in(watched_llm, tenant[1])
    await page.goto(f"{llm_console_server.url}/console#/event/{events[0]['id']}")
    await expect(page.locator("#view-event")).to_contain_text("Stored verbatim, no LLM")
    await expect(page.locator("#decisions-table")).to_have_count(0)
