"""The graph page: an entity's relations drawn (current solid, retired dashed), replayed in time with `?at=`,
and a relation opened (by a click on the picture, and from the keyboard through the table) with its memory and
the messages it came from. A real memserver with the scripted LLM; Chromium through Playwright."""

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
    watched_llm,
)
from tests.console.test_console import Watched, sign_in
from tests.fakes.openai_server import FakeOpenAI

__all__ = ["browser", "chromium", "console_llm", "llm_console_server", "scripted", "watched_llm"]

REL_LINE = re.compile(r"^rel (\d+): (.*?)(?: \(since [\d-]+\))?$", re.M)


def rel(source: str, relationship: str, target: str, **extra: Any) -> dict[str, Any]:
    return {"source": source, "source_type": "person", "relationship": relationship, "target": target,
            "target_type": "place", **extra}  # fmt: skip


def fact(text: str, sources: list[int], **extra: Any) -> dict[str, Any]:
    return {"text": text, "speaker": "user", "sources": sources, "categories": [], "action": "ADD", **extra}


async def add_graph(c: httpx.AsyncClient, *texts: str) -> None:
    r = await c.post(
        "/v1/memories/",
        json={
            "messages": [{"role": "user", "content": t} for t in texts],
            "user_id": "alice",
            "async_mode": False,
            "enable_graph": True,
        },
    )
    assert r.status_code == 200, r.text


async def edge_states(w: Watched) -> dict[str, tuple[str, str]]:
    """target -> (state class, computed dash) of each drawn edge."""
    pairs = await w.page.evaluate(
        """() => [...document.querySelectorAll('#graph-svg line.edge')].map(l =>
              [l.dataset.edge.split('\\u0000')[1], l.dataset.state, getComputedStyle(l).strokeDasharray])"""
    )
    return {t: (state, dash) for t, state, dash in pairs}


async def test_relations_drawn_replayed_and_opened(
    watched_llm: Watched, llm_console_server: LiveServer, scripted: FakeOpenAI, tenant: tuple[str, str]
) -> None:
    headers = {"Authorization": f"Token {tenant[1]}"}
    async with httpx.AsyncClient(base_url=llm_console_server.url, headers=headers, timeout=60) as c:
        lisbon = rel("alice", "lives_in", "Lisbon", valid_from="2020-01-01")
        say(scripted, lambda p: [fact("Lives in Lisbon since 2020", [0], relations=[lisbon])])
        await add_graph(c, "I have lived in Lisbon since 2020.")

        def moved(prompt: str) -> list[dict[str, Any]]:
            ref = {m.group(2): int(m.group(1)) for m in REL_LINE.finditer(prompt)}["alice -[lives_in]-> Lisbon"]
            porto = rel("alice", "lives_in", "Porto", valid_from="2025-03-01", replaces=[ref])
            return [fact("Moved to Porto in March 2025", [1], relations=[porto])]

        say(scripted, moved)
        await add_graph(c, "Good morning!", "I moved to Porto in March 2025.")

    page = watched_llm.page
    await sign_in(watched_llm, tenant[1])
    await page.locator("#nav").get_by_role("link", name="Graph").click()
    form = page.locator("#graph-form")
    await form.get_by_label("Entity id").fill("alice")
    await form.get_by_label("Entity id").press("Enter")

    # drawn: Porto holds (solid), Lisbon is retired (dashed); the table says the same in words
    svg = page.locator("svg#graph-svg[role='img']")
    await expect(svg.locator("desc")).to_have_text(re.compile(r"alice: 2 relations, 1 current, 1 retired, as of now"))
    states = await edge_states(watched_llm)
    assert states["Porto"] == ("current", "none")
    assert states["Lisbon"][0] == "retired"
    assert states["Lisbon"][1] != "none"  # dashed
    rows = page.locator("#graph-relations-table tbody tr")
    await expect(rows.filter(has_text="Porto")).to_contain_text("current")
    await expect(rows.filter(has_text="Lisbon")).to_contain_text("retired")
    await watched_llm.shot("20-graph-now")

    # the time control replays ?at=: before the move, Lisbon held and Porto did not
    slider = page.get_by_label("Time: the relations that held at")
    async with page.expect_request(lambda r: "/relations/" in r.url and "at=2020-01-01" in r.url) as asked:
        await slider.focus()
        await page.keyboard.press("Home")
    assert (await asked.value).url.count("user_id=alice") == 1
    await expect(svg.locator("desc")).to_contain_text("1 held then, 1 not held then")
    states = await edge_states(watched_llm)
    assert (states["Lisbon"][0], states["Porto"][0]) == ("current", "retired")
    await expect(rows.filter(has_text="Lisbon")).to_contain_text("held then")
    await expect(rows.filter(has_text="Porto")).to_contain_text("not held then")
    await expect(page.get_by_role("heading", level=1)).to_contain_text("as of")
    assert "at=2020-01-01" in page.url
    await watched_llm.shot("21-graph-2020")
    # an exact date: 1 June 2025 is after the move
    async with page.expect_request(lambda r: "/relations/" in r.url and "at=2025-06-01" in r.url):
        await page.get_by_label("or on").fill("2025-06-01")
    await expect(rows.filter(has_text="Porto").locator("td").nth(5)).to_have_text("held then")
    await expect(rows.filter(has_text="Lisbon").locator("td").nth(5)).to_have_text("not held then")
    assert "at=2025-06-01" in page.url
    states = await edge_states(watched_llm)
    assert (states["Lisbon"][0], states["Porto"][0]) == ("retired", "current")
    await slider.focus()
    await page.keyboard.press("End")  # back to now: no request needed, the page knows what holds now
    await expect(svg.locator("desc")).to_contain_text("1 current, 1 retired, as of now")
    assert "at=" not in page.url

    # a click on the Porto edge opens its memory and the message it came from (message 2 of 2)
    await (
        page.locator("#graph-svg g.edge-group", has=page.locator("title", has_text="alice lives_in Porto"))
        .locator("line.edge-hit")
        .click()
    )
    detail = page.locator("#graph-detail")
    await expect(detail.get_by_role("heading", level=2)).to_have_text("alice lives_in Porto")
    await expect(detail.locator("#graph-detail-memory-link")).to_have_text("Moved to Porto in March 2025")
    messages = detail.locator("#graph-detail-messages > li")
    await expect(messages).to_have_count(2)
    await expect(messages.nth(1)).to_have_class(re.compile("marked"))
    await expect(messages.nth(1)).to_contain_text("source")
    await expect(messages.nth(0)).not_to_have_class(re.compile("marked"))
    await expect(page.locator("#graph-svg line.edge.selected")).to_have_count(1)
    await watched_llm.shot("22-graph-selected")

    # keyboard only: the table's Open for Lisbon
    await page.get_by_role("button", name="Open alice lives_in Lisbon").focus()
    await page.keyboard.press("Enter")
    await expect(detail.get_by_role("heading", level=2)).to_have_text("alice lives_in Lisbon")
    await expect(detail.locator("#graph-detail-memory-link")).to_have_text("Lives in Lisbon since 2020")
    marked = detail.locator("#graph-detail-messages > li.marked")
    await expect(marked).to_have_text(re.compile("I have lived in Lisbon"))
    assert await page.evaluate("document.activeElement.id") == "graph-detail-title"
    await page.keyboard.press("Tab")  # the panel's links come next: the memory, then the event
    await page.keyboard.press("Enter")
    await expect(page.locator("#memory-text")).to_have_text("Lives in Lisbon since 2020")
