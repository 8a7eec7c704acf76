"""The scripted model for the API tests that need an LLM (test_inference, test_graph, test_graph_search): the
fake OpenAI-compatible server on 127.0.0.1, a memserver process that uses it through the real `openai` SDK,
and the helpers a test scripts the model's answers with.

A test module imports the fixtures it uses (`fake`, `llm_server`, `llm`, `client`) and may set
`LLM_TIMEOUT_S` (a string, default "5") for its server's LLM timeout.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from harness.server import LiveServer, served
from tests.api.helpers import token_client
from tests.fakes.openai_server import FakeOpenAI, running

LLM_KEY = "sk-test-secret-key-1234"  # tests check it never reaches a client


def llm_env(fake: FakeOpenAI, **extra: str) -> dict[str, str]:
    """A memserver's settings for the scripted model, plus `extra`."""
    return {
        "MEMSERVER_LLM__BASE_URL": fake.url,
        "MEMSERVER_LLM__API_KEY": LLM_KEY,
        "MEMSERVER_LLM__MODEL": "scripted",
    } | extra


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeOpenAI]:
    with running(FakeOpenAI()) as f:
        yield f


@pytest.fixture(scope="module")
def llm_server(
    database_url: str, fake: FakeOpenAI, tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[LiveServer]:
    timeout = getattr(request.module, "LLM_TIMEOUT_S", "5")
    log = tmp_path_factory.mktemp(f"{request.module.__name__.rsplit('.', 1)[-1]}-server") / "memserver.log"
    with served(
        database_url, log, **llm_env(fake, MEMSERVER_LLM__TIMEOUT_S=timeout, MEMSERVER_LLM__MAX_RETRIES="1")
    ) as server:
        yield server


@pytest.fixture
def llm(fake: FakeOpenAI) -> Iterator[FakeOpenAI]:
    """The scripted model, reset for each test."""
    fake.chat_replies.clear()
    fake.requests.clear()
    fake.chat_script = None
    fake.echo = False
    fake.fail_next = fake.hang_next = 0
    fake.reject_json_schema = None
    fake.refuse_system_role = None
    fake.refuse_param, fake.refuse_format = {}, {}
    yield fake
    fake.chat_script = None


@pytest.fixture
def client(llm_server: LiveServer, tenant: tuple[str, str]) -> Iterator[httpx.Client]:
    with token_client(llm_server.url, tenant[1]) as c:
        yield c


def facts(*items: dict[str, Any]) -> str:
    return json.dumps({"facts": list(items)})


def fact(text: str, *, action: str = "ADD", ref: int | None = None, **extra: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"text": text, "speaker": "user", "sources": [0], "categories": [], "action": action}
    if ref is not None:
        out["ref"] = ref
    out.update(extra)
    return out


def prompt_of(body: dict[str, Any]) -> str:
    return "\n".join(str(m.get("content")) for m in body["messages"])
