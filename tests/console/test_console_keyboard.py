"""The console from the keyboard alone: the settings tabs (arrows, Home, End), dialogs (Escape closes them and
focus returns to the button that opened them), and the graph's and charts' tables reached with Tab."""

from __future__ import annotations

from playwright.async_api import Page, expect

from harness.server import LiveServer
from tests.console.scripted_console import (
    browser,
    chromium,
    console_llm,
    llm_console_server,
    scripted,
    watched_llm,
)
from tests.console.test_console import Watched, sign_in
from tests.console.test_console_contrast import seed
from tests.fakes.openai_server import FakeOpenAI

__all__ = ["browser", "chromium", "console_llm", "llm_console_server", "scripted", "watched_llm"]


async def active(page: Page) -> str:
    return str(await page.evaluate("document.activeElement.id || document.activeElement.textContent.trim()"))


async def visit(page: Page, url: str, view: str) -> None:
    """Open a page and wait until it is drawn (the page focuses its <h1> then, which would move our focus)."""
    await page.evaluate("document.body.dataset.ready = ''")
    await page.goto(url)
    await expect(page.locator("body")).to_have_attribute("data-ready", view)


async def tab_until(page: Page, predicate: str, limit: int = 40) -> None:
    """Press Tab until the focused element satisfies `predicate` (a JS function of the element)."""
    for _ in range(limit):
        await page.keyboard.press("Tab")
        if await page.evaluate(f"({predicate})(document.activeElement)"):
            return
    raise AssertionError(f"never reached with Tab: {predicate}")


async def test_tabs_dialogs_and_tables_work_from_the_keyboard(
    watched_llm: Watched, llm_console_server: LiveServer, scripted: FakeOpenAI, tenant: tuple[str, str]
) -> None:
    memory_id = await seed(llm_console_server.url, tenant[1], scripted)
    page = watched_llm.page
    base = llm_console_server.url
    await sign_in(watched_llm, tenant[1])

    # settings tabs: arrows move and select, Home/End jump, the URL follows
    await visit(page, f"{base}/console#/settings/project", "settings")
    await page.locator("#tab-project").focus()
    for key, tab in [("ArrowRight", "webhooks"), ("End", "backup"), ("ArrowRight", "project"), ("ArrowLeft", "backup"),
                     ("Home", "project"), ("ArrowRight", "webhooks")]:  # fmt: skip
        await page.keyboard.press(key)
        await expect(page.locator(f"#tab-{tab}")).to_have_attribute("aria-selected", "true")
        assert await active(page) == f"tab-{tab}", key
        await expect(page).to_have_url(f"{base}/console#/settings/{tab}")
    assert await page.locator("[role='tab'][tabindex='0']").count() == 1  # roving tabindex

    # dialogs: Enter opens, focus inside, Escape closes, focus back on the opener
    await visit(page, f"{base}/console#/memory/{memory_id}", "memory")
    for name, dialog in [("Edit “Alice note zero, edited”", "dialog#edit-dialog"),
                         ("Delete “Alice note zero, edited”", "dialog#confirm-dialog")]:  # fmt: skip
        opener = page.get_by_role("button", name=name)
        await opener.focus()
        await page.keyboard.press("Enter")
        await expect(page.locator(dialog)).to_be_visible()
        assert await page.evaluate(f"document.querySelector('{dialog}').contains(document.activeElement)")
        await page.keyboard.press("Escape")
        await expect(page.locator(dialog)).to_be_hidden()
        assert await page.evaluate("document.activeElement.textContent") == name.split(" ")[0], name
    await expect(page.locator("#memory-text")).to_have_text("Alice note zero, edited")  # nothing was changed

    # the graph: from the time control, Tab reaches the relations table's Open buttons; Enter opens one
    await visit(page, f"{base}/console#/graph?etype=user_id&eid=alice", "graph")
    await expect(page.locator("#graph-relations-table")).to_be_visible()
    await page.get_by_label("Time: the relations that held at").focus()
    await tab_until(page, "(e) => e.textContent === 'Open'")
    await page.keyboard.press("Enter")
    await expect(page.locator("#graph-detail")).to_be_visible()
    assert await active(page) == "graph-detail-title"

    # the usage charts: Tab reaches each "Show table" toggle; Enter shows the table
    await visit(page, f"{base}/console#/usage?days=7", "usage")
    await expect(page.locator("#chart-memories")).to_be_visible()
    await page.locator("#usage-title").focus()
    await tab_until(page, "(e) => e.textContent === 'Show table'")
    await page.keyboard.press("Enter")
    await expect(page.locator("#chart-memories-table")).to_be_visible()
    await expect(page.locator("#chart-memories button[aria-pressed='true']")).to_have_count(1)
    await watched_llm.shot("60-keyboard-usage-table")
