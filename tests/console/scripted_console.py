"""Fixtures for console tests that need what the LLM decided (graph, events, usage): a memserver whose LLM is the
scripted fake (tests/api/scripted_llm.py), a Watched page on it, and the async helpers those tests share.
A test module imports the fixtures it uses by name (as tests/api does with scripted_llm)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import httpx
import pytest
from playwright.async_api import Browser

from harness.server import LiveServer, served
from tests.api.scripted_llm import llm_env, prompt_of
from tests.console.test_console import Watched, browser, chromium
from tests.fakes.openai_server import FakeOpenAI, running

__all__ = ["browser", "chromium", "console_llm", "llm_console_server", "scripted", "watched_llm"]


@pytest.fixture(scope="module")
def console_llm() -> Iterator[FakeOpenAI]:
    with running(FakeOpenAI()) as f:
        yield f


@pytest.fixture(scope="module")
def llm_console_server(
    database_url: str, console_llm: FakeOpenAI, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    log = tmp_path_factory.mktemp("console-llm") / "memserver.log"
    env = llm_env(console_llm, MEMSERVER_LLM__MAX_RETRIES="0", MEMSERVER_USAGE__FLUSH_INTERVAL_S="0.2")
    with served(database_url, log, **env) as server:
        yield server


@pytest.fixture
def scripted(console_llm: FakeOpenAI) -> Iterator[FakeOpenAI]:
    """The scripted model, reset for each test."""
    console_llm.chat_replies.clear()
    console_llm.chat_script = None
    console_llm.fail_next = 0
    yield console_llm
    console_llm.chat_script = None


@pytest.fixture
async def watched_llm(browser: Browser, llm_console_server: LiveServer) -> AsyncIterator[Watched]:
    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    page = await context.new_page()
    page.set_default_timeout(15_000)
    w = Watched(page, llm_console_server.url)
    try:
        yield w
    finally:
        await context.close()
    assert w.foreign == [], "the console must load nothing from other origins"
    assert w.errors == []


def say(llm: FakeOpenAI, decide: Callable[[str], list[dict[str, Any]]]) -> None:
    """The model answers every extraction with `decide(prompt)`: a list of facts."""
    llm.chat_script = lambda body: json.dumps({"facts": decide(prompt_of(body))})


async def wait_event(c: httpx.AsyncClient, event_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 30
    while True:
        event: dict[str, Any] = (await c.get(f"/v1/event/{event_id}/")).json()
        if event["status"] not in ("PENDING", "RUNNING"):
            return event
        assert time.monotonic() < deadline, f"event {event_id} never finished"
        await asyncio.sleep(0.2)
