"""The web console at /console, in a real headless Chromium (Debian's package) driven by Playwright,
against a real `memserver serve` process. A screenshot of each page lands in .artifacts/console/."""

from __future__ import annotations

from collections.abc import Callable

import httpx
from playwright.async_api import expect

from tests.console.conftest import Watched, browser, chromium, seed, sign_in

# The shared machinery lives in conftest.py; modules that import it from here by name keep working.
__all__ = ["Watched", "browser", "chromium", "seed", "sign_in"]


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
