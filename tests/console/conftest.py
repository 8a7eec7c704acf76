"""Shared machinery of the console tests: a real `memserver serve` process, Debian's headless Chromium driven
by Playwright, a page that fails the test on any foreign request or console error, a seeded project, and a
webhook receiver on 127.0.0.1. Screenshots land in .artifacts/console/."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.async_api import Browser, ConsoleMessage, Page, Request, async_playwright, expect

from harness import ROOT
from harness.server import LiveServer, served
from memserver.embedded_postgres import EmbeddedPostgres
from tests.conftest import org_maker, tenant_maker
from tests.fakes.openai_server import FakeOpenAI, running
from tests.worker.jobs_harness import fresh_database
from tests.worker.test_webhooks import Receiver  # the receiver the worker tests use (re-exported here)

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = ROOT / ".artifacts" / "console"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"]

# Every console server: webhook receivers on loopback allowed (the receiver below), revocation seen at once,
# usage flushed often, quick delivery retries.
CONSOLE_ENV = {
    "MEMSERVER_WEBHOOKS__ALLOWED_NETWORKS": '["127.0.0.1/32"]',
    "MEMSERVER_WEBHOOKS__RETRY_BACKOFF_S": "0.3",
    "MEMSERVER_WORKER__POLL_INTERVAL_S": "0.2",
    "MEMSERVER_AUTH__KEY_CACHE_TTL_S": "0",
    "MEMSERVER_USAGE__FLUSH_INTERVAL_S": "0.2",
}


@pytest.fixture(scope="session")
def database_url(pg: EmbeddedPostgres) -> str:
    """The console's own database. Every server of the run takes any project's ready jobs from the database it
    serves (fair claims), under its own settings: on the run's shared database another module's server, which
    refuses loopback receivers, would take the console's webhook deliveries and fail them."""
    return fresh_database(pg, "console")


# The run-wide tenant makers are bound to the run's shared database when first used: the console's own.
@pytest.fixture(scope="session")
def make_tenant(database_url: str) -> Callable[[], tuple[str, str]]:
    return tenant_maker(database_url)


@pytest.fixture(scope="session")
def make_org(database_url: str) -> Callable[..., tuple[str, str, str]]:
    return org_maker(database_url)


@contextmanager
def console_server(database_url: str, log: Path, **extra_env: str) -> Iterator[LiveServer]:
    """A `memserver serve` with the console's test settings (`extra_env` adds or overrides)."""
    with served(database_url, log, **{**CONSOLE_ENV, **extra_env}) as server:
        yield server


@pytest.fixture(scope="module")
def live_server(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A server whose (scripted) LLM is down, so an infer=true add ends as a FAILED event with a reason."""
    log = tmp_path_factory.mktemp("console") / "memserver.log"
    with (
        running(FakeOpenAI(fail_next=10**9)) as fake,
        # the failing add's retries come quickly (the default backoff, 2 s doubling, made each seed wait 30 s)
        console_server(
            database_url,
            log,
            MEMSERVER_LLM__BASE_URL=fake.url,
            MEMSERVER_LLM__MAX_RETRIES="0",
            MEMSERVER_WORKER__RETRY_BACKOFF_S="0.05",
        ) as s,
    ):
        yield s.url


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
def context_options() -> dict[str, Any]:
    """Options of the browser context (a module overrides it, e.g. for clipboard permissions)."""
    return {}


@pytest.fixture
async def watched(browser: Browser, live_server: str, context_options: dict[str, Any]) -> AsyncIterator[Watched]:
    context = await browser.new_context(viewport={"width": 1280, "height": 860}, **context_options)
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


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    try:
        yield r
    finally:
        r.close()


def closed_port_url() -> str:
    """The URL of a port nothing listens on (bound, then closed): a delivery there fails to connect."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/hook"


def token_headers(key: str) -> dict[str, str]:
    return {"Authorization": f"Token {key}"}


__all__ = ["ARTIFACTS", "Receiver", "Watched", "closed_port_url", "console_server", "seed", "sign_in"]
