"""WCAG AA contrast, measured in Chromium on every page and state of the console (tests/console/contrast.js:
text >= 4.5:1, large text >= 3:1, graphics and focus rings >= 3:1), and a proof that the check fails on a
low-contrast colour."""

from __future__ import annotations

import json
from typing import Any

import httpx
from playwright.async_api import expect

from harness import ROOT
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
from tests.console.test_console_graph import REL_LINE, add_graph, fact, rel
from tests.fakes.openai_server import FakeOpenAI

__all__ = ["browser", "chromium", "console_llm", "llm_console_server", "scripted", "watched_llm"]

CHECK = (ROOT / "tests" / "console" / "contrast.js").read_text()


async def failures(w: Watched) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = await w.page.evaluate(CHECK)
    return found


async def seed(base_url: str, key: str, llm: FakeOpenAI) -> str:
    """Alice's memories (one edited), and a graph where Lisbon was retired by Porto; returns a memory id."""
    async with httpx.AsyncClient(base_url=base_url, headers={"Authorization": f"Token {key}"}, timeout=60) as c:
        body = {"messages": [{"role": "user", "content": f"Alice note {i}"} for i in range(5)], "user_id": "alice"}
        r = await c.post("/v3/memories/add/", json={**body, "infer": False})
        assert r.status_code == 200, r.text
        first = str(r.json()["results"][0]["id"])
        assert (await c.put(f"/v1/memories/{first}/", json={"text": "Alice note zero, edited"})).status_code == 200
        lisbon = rel("alice", "lives_in", "Lisbon", valid_from="2020-01-01")
        say(llm, lambda p: [fact("Lives in Lisbon since 2020", [0], relations=[lisbon])])
        await add_graph(c, "I have lived in Lisbon since 2020.")

        def moved(prompt: str) -> list[dict[str, Any]]:
            ref = {m.group(2): int(m.group(1)) for m in REL_LINE.finditer(prompt)}["alice -[lives_in]-> Lisbon"]
            return [fact("Moved to Porto", [1], relations=[rel("alice", "lives_in", "Porto", replaces=[ref])])]

        say(llm, moved)
        await add_graph(c, "Hello", "I moved to Porto.")
        return first


async def test_every_page_and_state_meets_wcag_aa(
    watched_llm: Watched, llm_console_server: LiveServer, scripted: FakeOpenAI, tenant: tuple[str, str]
) -> None:
    memory_id = await seed(llm_console_server.url, tenant[1], scripted)
    page = watched_llm.page
    base = llm_console_server.url
    found: dict[str, list[dict[str, Any]]] = {}

    async def measure(state: str) -> None:
        found[state] = await failures(watched_llm)

    async def visit(route: str, ready: str) -> None:
        await page.goto(f"{base}/console#{route}")
        await expect(page.locator(ready).first).to_be_visible()
        await measure(route)

    # signed out, with the API's error shown
    await page.goto(f"{base}/console")
    await page.get_by_label("API key").fill("m0-wrong")
    await page.get_by_label("API key").press("Enter")
    await expect(page.get_by_role("alert")).to_contain_text("Invalid API key")
    await measure("sign-in error")
    await sign_in(watched_llm, tenant[1])

    await visit("/entities", "#entities-table")
    await visit("/memories?etype=user_id&eid=alice", "#memories-table")
    await visit("/search?query=alice&etype=user_id&eid=alice", "#search-hits > li")
    await visit(f"/memory/{memory_id}", "#history-out > li")
    await page.get_by_role("button", name="Edit “Alice note zero, edited”").click()
    await expect(page.get_by_role("dialog")).to_be_visible()
    await measure("edit dialog")
    await page.keyboard.press("Escape")
    await page.get_by_role("button", name="Delete “Alice note zero, edited”").click()
    await expect(page.get_by_role("dialog", name="Delete memory?")).to_be_visible()
    await measure("confirm dialog")
    await page.keyboard.press("Escape")
    await visit("/events", "#events-table")
    await page.locator("#events-table a", has_text="Details").first.click()
    await expect(page.locator("#decisions-table")).to_be_visible()
    await page.locator("#decisions-table a[href^='#msg-']").first.click()
    await measure("event with decisions and a marked message")

    await visit("/graph?etype=user_id&eid=alice", "#graph-svg line.edge.retired")
    await page.get_by_role("button", name="Open alice lives_in Porto").click()
    await expect(page.locator("#graph-detail-messages li.marked")).to_be_visible()
    await measure("graph with a selection")
    await visit("/graph?etype=user_id&eid=alice&at=2021-01-01", "#graph-svg line.edge.retired")

    await visit("/usage?days=30", "#chart-memories")
    for toggle in await page.get_by_role("button", name="Show table").all():
        await toggle.click()
    await measure("usage with its tables")

    for tab in ("project", "webhooks", "access", "backup"):
        await visit(f"/settings/{tab}", f"#tab-{tab}[aria-selected='true']")

    # focus rings, reached with the keyboard
    await page.goto(f"{base}/console#/entities")
    await expect(page.locator("#entities-table")).to_be_visible()
    for _ in range(3):
        await page.keyboard.press("Tab")
        await measure(f"focus on {await page.evaluate('document.activeElement.outerHTML.slice(0, 60)')}")
    await watched_llm.shot("50-contrast-focus")

    bad = {state: items for state, items in found.items() if items}
    # the report names each failure: selector, kind, colours as shown, ratio and the ratio needed
    (ROOT / ".artifacts" / "console" / "contrast-failures.json").write_text(json.dumps(bad, indent=1))
    assert bad == {}, bad
    assert len(found) >= 20  # every state above was measured


async def test_the_check_catches_a_low_contrast_colour(
    watched_llm: Watched, llm_console_server: LiveServer, tenant: tuple[str, str]
) -> None:
    page = watched_llm.page
    await sign_in(watched_llm, tenant[1])
    await expect(page.locator("#entities-out")).to_contain_text("No")
    assert await failures(watched_llm) == []
    # #999 on white is 2.85:1: every muted text fails, and the report names it with its colours
    await page.evaluate("document.documentElement.style.setProperty('--muted', '#999')")
    found = await failures(watched_llm)
    muted = [f for f in found if ".muted" in f["selector"] or "whoami" in f["selector"]]
    assert muted, found
    assert all(f["fg"] == "#999999" and f["ratio"] < 4.5 and f["need"] == 4.5 for f in muted), muted
    assert {"bg": "#ffffff", "ratio": 2.85} in [{"bg": f["bg"], "ratio": f["ratio"]} for f in muted], muted
    # a graphic under 3:1 fails too: the retired-edge colour made pale
    await page.evaluate("document.documentElement.style.setProperty('--muted', '#4a4a4a')")
    await page.evaluate(
        """() => { const s = document.createElementNS('http://www.w3.org/2000/svg', 'svg');
                   const l = document.createElementNS('http://www.w3.org/2000/svg', 'line');
                   const attrs = [['x1', 0], ['x2', 50], ['y1', 5], ['y2', 5], ['stroke', '#cccccc']];
                   for (const [k, v] of [...attrs, ['data-contrast', 'graphic']]) l.setAttribute(k, v);
                   s.append(l); document.querySelector('main').append(s); }"""
    )
    found = await failures(watched_llm)
    assert [(f["kind"], f["fg"]) for f in found] == [("graphic", "#cccccc")], found
