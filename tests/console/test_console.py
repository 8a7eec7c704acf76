"""The web console at /console, in a real headless Chromium (Debian's package) driven by Playwright,
against a real `memserver serve` process. A screenshot of each page lands in .artifacts/console/."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.async_api import Browser, ConsoleMessage, Page, Request, async_playwright, expect

from harness import ROOT
from harness.server import served
from tests.fakes.openai_server import FakeOpenAI, running

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = ROOT / ".artifacts" / "console"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"]


@pytest.fixture(scope="module")
def live_server(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A server whose (scripted) LLM is down, so an infer=true add ends as a FAILED event with a reason."""
    log = tmp_path_factory.mktemp("console") / "memserver.log"
    with (
        running(FakeOpenAI(fail_next=10**9)) as fake,
        served(database_url, log, MEMSERVER_LLM__BASE_URL=fake.url, MEMSERVER_LLM__MAX_RETRIES="0") as server,
    ):
        yield server.url


@pytest.fixture(scope="module")
def chromium() -> Path:
    # Fail, not skip: a CI run without the browser must not pass silently.
    assert CHROMIUM.exists(), "Debian's chromium is required (make test installs it: apt-get install chromium)"
    return CHROMIUM


@pytest.fixture(scope="module")
async def browser(chromium: Path) -> AsyncIterator[Browser]:
    async with async_playwright() as pw:
        b = await pw.chromium.launch(executable_path=str(chromium), args=CHROMIUM_ARGS, headless=True)
        try:
            yield b
        finally:
            await b.close()


class Watched:
    """A page whose requests and console errors are recorded (the console must work offline, CSP-clean)."""

    def __init__(self, page: Page, base_url: str):
        self.page = page
        self.base_url = base_url
        self.foreign: list[str] = []
        self.errors: list[str] = []
        page.on("request", self._request)
        page.on("console", self._console)
        page.on("pageerror", lambda exc: self.errors.append(f"pageerror: {exc}"))

    def _request(self, request: Request) -> None:
        if not request.url.startswith(self.base_url) and not request.url.startswith("data:"):
            self.foreign.append(request.url)

    def _console(self, msg: ConsoleMessage) -> None:
        # A 4xx the page asked for (a wrong key, a bad search) is logged by Chromium; it is not a page error.
        if msg.type == "error" and "Failed to load resource" not in msg.text:
            self.errors.append(msg.text)

    async def shot(self, name: str) -> None:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        await self.page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


@pytest.fixture
async def watched(browser: Browser, live_server: str) -> AsyncIterator[Watched]:
    context = await browser.new_context(viewport={"width": 1280, "height": 860})
    page = await context.new_page()
    page.set_default_timeout(15_000)
    w = Watched(page, live_server)
    try:
        yield w
    finally:
        await context.close()
    assert w.foreign == [], "the console must load nothing from other origins"
    assert w.errors == []


async def seed(live_server: str, key: str) -> dict[str, Any]:
    """Alice with 12 memories (one of them updated), an agent, and an infer=true add that fails (LLM down)."""
    async with httpx.AsyncClient(base_url=live_server, headers={"Authorization": f"Token {key}"}, timeout=30) as c:

        async def add(text: str, **ids: str) -> str:
            r = await c.post(
                "/v3/memories/add/", json={"messages": [{"role": "user", "content": text}], "infer": False, **ids}
            )
            assert r.status_code == 200, r.text
            return str(r.json()["results"][0]["id"])

        for i in range(1, 10):
            await add(f"Alice note number {i} about errands.", user_id="alice")
        home = await add("Alice lives in Lisbon.", user_id="alice")
        await add("Alice's favourite food is ramen.", user_id="alice")
        cello = await add("Alice plays the cello on Sundays.", user_id="alice")
        await add("The helper agent answers in French.", agent_id="helper")
        r = await c.put(f"/v1/memories/{home}/", json={"text": "Alice lives in Porto."})
        assert r.status_code == 200, r.text
        r = await c.post(
            "/v3/memories/add/",
            json={"messages": [{"role": "user", "content": "I like jazz"}], "user_id": "alice", "infer": True},
        )
        failed = r.json()["event_id"]
        deadline = time.monotonic() + 60
        while (await c.get(f"/v1/event/{failed}/")).json()["status"] in ("PENDING", "RUNNING"):
            assert time.monotonic() < deadline, "the infer=true event never finished"
            await asyncio.sleep(0.2)
    return {"home": home, "cello": cello, "failed_event": failed}


async def sign_in(w: Watched, key: str) -> None:
    page = w.page
    await page.goto(f"{w.base_url}/console")
    await page.get_by_label("API key").fill(key)
    await page.get_by_label("API key").press("Enter")  # keyboard only
    await expect(page.locator("#whoami")).to_be_visible()


async def test_console_sign_in_browse_search_history_edit_delete(
    watched: Watched, live_server: str, tenant: tuple[str, str]
) -> None:
    ids = await seed(live_server, tenant[1])
    page = watched.page

    # sign in: a wrong key shows the API's message; the right one is kept in sessionStorage only
    await page.goto(f"{live_server}/console")
    await expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    await page.get_by_label("API key").fill("m0-wrong")
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_role("alert")).to_contain_text("Sign-in failed (401): Invalid API key")
    await watched.shot("01-sign-in")
    await page.get_by_label("API key").fill(tenant[1])
    await page.get_by_label("API key").press("Enter")
    await expect(page.locator("#whoami")).to_contain_text("test-org / project-")
    assert await page.evaluate("sessionStorage.getItem('memserver.apiKey')") == tenant[1]
    assert await page.evaluate("localStorage.length") == 0
    assert await page.context.cookies() == []

    # browse entities
    await expect(page.get_by_role("heading", name="Entities")).to_be_visible()
    table = page.locator("#entities-table")
    await expect(table.locator("tr", has_text="alice")).to_contain_text("12")
    await expect(table.locator("tr", has_text="helper")).to_contain_text("agent")
    await expect(page.locator("#entities-totals")).to_contain_text("1 users, 1 agents")
    await watched.shot("02-entities")

    # an entity's memories, paginated and filtered
    await table.get_by_role("link", name="alice").click()
    await expect(page.get_by_role("heading", name="Memories")).to_be_visible()
    memories = page.locator("#view-memories")
    await memories.get_by_label("Per page").select_option("10")
    await memories.get_by_role("button", name="List").click()
    rows = page.locator("#memories-table tbody tr")
    await expect(rows).to_have_count(10)
    await expect(page.locator("#memories-pager")).to_contain_text("Page 1 of 2")
    await watched.shot("03-memories")
    await page.get_by_role("button", name="Next →").click()
    await expect(page.locator("#memories-pager")).to_contain_text("Page 2 of 2")
    await expect(rows).to_have_count(2)
    await memories.get_by_label("Text contains").fill("cello")
    await memories.get_by_role("button", name="List").click()
    await expect(rows).to_have_count(1)
    await expect(rows.first).to_contain_text("Alice plays the cello on Sundays.")

    # search shows each hit's score breakdown
    await page.get_by_role("link", name="Search").click()
    search = page.locator("#view-search")
    await search.get_by_label("Query").fill("where does alice live?")
    await search.get_by_label("Entity id").fill("alice")
    await search.get_by_role("button", name="Search", exact=True).click()
    first = page.locator("#search-hits > li").first
    await expect(first).to_contain_text("Alice lives in Porto.")
    await expect(first.locator("dl.breakdown dt")).to_contain_text(
        ["semantic", "bm25", "entity", "temporal", "context"]
    )
    await expect(first.locator(".score")).to_contain_text("score 0.")
    await watched.shot("04-search")

    # a memory's history as a timeline (old and new text)
    await first.get_by_role("link", name="History").click()
    await expect(page.locator("#memory-text")).to_have_text("Alice lives in Porto.")
    timeline = page.locator("#history-out > li")
    await expect(timeline).to_have_count(2)
    await expect(timeline.nth(0)).to_contain_text("ADD")
    await expect(timeline.nth(1)).to_contain_text("UPDATE")
    await expect(timeline.nth(1).locator("del")).to_have_text("Alice lives in Lisbon.")
    await expect(timeline.nth(1).locator("ins")).to_have_text("Alice lives in Porto.")
    await watched.shot("05-history")

    # edit in a dialog
    await page.get_by_role("button", name="Edit “Alice lives in Porto.”").click()
    await page.get_by_label("Text", exact=True).fill("Alice lives in Braga.")
    await page.get_by_role("button", name="Save").click()
    await expect(page.locator("#memory-text")).to_have_text("Alice lives in Braga.")
    await expect(timeline).to_have_count(3)

    # delete asks first: Escape keeps the memory, confirming deletes it
    delete = page.get_by_role("button", name="Delete “Alice lives in Braga.”")
    await delete.click()
    dialog = page.get_by_role("dialog", name="Delete memory?")
    await expect(dialog).to_be_visible()
    await page.keyboard.press("Escape")
    await expect(dialog).to_be_hidden()
    await expect(page.locator("#memory-text")).to_have_text("Alice lives in Braga.")
    await delete.click()
    await expect(dialog).to_contain_text("“Alice lives in Braga.” will be deleted")
    await watched.shot("06-delete-confirm")
    await dialog.get_by_role("button", name="Delete").click()
    await expect(page.locator("#memory-out")).to_contain_text("has been deleted")
    await expect(timeline.last).to_contain_text("DELETE")
    async with httpx.AsyncClient(base_url=live_server, headers={"Authorization": f"Token {tenant[1]}"}) as api:
        assert (await api.get(f"/v1/memories/{ids['home']}/")).status_code == 404
        assert (await api.get(f"/v1/memories/{ids['cello']}/")).status_code == 200

    # sign out forgets the key
    await page.get_by_role("button", name="Sign out").click()
    await expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    assert await page.evaluate("sessionStorage.getItem('memserver.apiKey')") is None


async def test_console_events_show_statuses_and_failure_reasons(
    watched: Watched, live_server: str, tenant: tuple[str, str]
) -> None:
    ids = await seed(live_server, tenant[1])
    await sign_in(watched, tenant[1])
    page = watched.page
    await page.get_by_role("link", name="Events").click()
    failed = page.locator(f"#events-table tr[data-id='{ids['failed_event']}']")
    await expect(failed.locator(".badge")).to_have_text("FAILED")
    await expect(failed.locator(".event-error")).to_contain_text("Error: ")
    await expect(page.locator("#events-table .badge.SUCCEEDED").first).to_be_visible()
    await watched.shot("07-events")
    events = page.locator("#view-events")
    await events.get_by_label("Status").select_option("FAILED")
    await events.get_by_role("button", name="Apply").click()
    await expect(page.locator("#events-table tbody tr")).to_have_count(1)

    await page.get_by_role("link", name="Settings").click()
    await expect(page.locator("#view-settings").get_by_role("tab", name="Webhooks")).to_be_visible()
    await expect(page.locator("#settings-out")).to_contain_text("test-org")
    await watched.shot("08-settings")


async def test_console_shows_the_api_error_and_labels_every_control(
    watched: Watched, live_server: str, new_api_key: Callable[[], str]
) -> None:
    key = new_api_key()
    await sign_in(watched, key)
    page = watched.page
    await page.get_by_role("link", name="Search").click()
    search = page.locator("#view-search")
    await search.get_by_label("Query").fill("anything")
    await search.get_by_role("button", name="Search", exact=True).click()  # no entity: the API refuses
    await expect(page.get_by_role("alert")).to_contain_text("At least one of the filters")
    await expect(page.get_by_role("alert")).to_contain_text("(400)")

    unlabelled = await page.evaluate(
        """() => [...document.querySelectorAll('input, select, textarea')]
              .filter(e => !e.labels.length && !e.getAttribute('aria-label')).map(e => e.id || e.name)"""
    )
    assert unlabelled == []
    # every control is reachable from the keyboard: the nav links take focus in order
    await page.locator("#nav a").first.focus()
    await page.keyboard.press("Tab")
    assert await page.evaluate("document.activeElement.textContent") == "Memories"

    # a revoked or wrong key in the session signs the user out with the API's message
    await page.evaluate("sessionStorage.setItem('memserver.apiKey', 'm0-revoked')")
    await page.get_by_role("link", name="Events").click()
    await expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    await expect(page.get_by_role("alert")).to_contain_text("Invalid API key")


def test_console_page_is_served_with_a_self_only_csp(live_server: str) -> None:
    page = httpx.get(f"{live_server}/console")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "default-src 'none'" in page.headers["content-security-policy"]
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert httpx.get(f"{live_server}/console/").status_code == 200
    assert httpx.get(f"{live_server}/console/console.js").headers["content-type"].startswith("text/javascript")
    assert httpx.get(f"{live_server}/console/nope.js").status_code == 404


def test_every_console_response_carries_the_consoles_security_headers(live_server: str) -> None:
    """The page under its file name too: /console/index.html must not be framable or run foreign scripts."""
    for path in ("/console", "/console/index.html", "/console/console.js", "/console/console.css"):
        r = httpx.get(f"{live_server}{path}")
        assert r.status_code == 200, (path, r.status_code)
        csp = r.headers.get("content-security-policy", "")
        assert "frame-ancestors 'none'" in csp, (path, r.headers)
        assert "default-src 'none'" in csp, (path, csp)
        assert r.headers.get("x-content-type-options") == "nosniff", (path, r.headers)
        assert r.headers.get("referrer-policy") == "no-referrer", (path, r.headers)
