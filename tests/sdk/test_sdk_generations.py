"""Drive the real official Mem0 SDKs (one scenario per client generation) against a running memserver.

Each test builds (or reuses) the SDK environment under ``<repo>/.cache/sdk/`` and runs the generation's
scenario script in a subprocess with the SDK's own interpreter (``tests/sdk/scenarios/``). The scenario
prints its progress and exits non-zero at the first failed check; the test shows that output.

Fixtures (``tests/conftest.py``): ``live_server`` -> base URL of a running memserver;
``new_api_key()`` -> plaintext key of a fresh, empty project.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.server import served
from tests.fakes.openai_server import FakeOpenAI, running
from tests.fakes.rerank_server import FakeReranker
from tests.fakes.rerank_server import running as running_reranker
from tests.sdk import envs

pytestmark = pytest.mark.sdk

SCENARIO_TIMEOUT = 300  # seconds; a full scenario takes a few seconds against a local server
GENERATIONS = list(envs.GENERATIONS)


def _run_scenario(
    generation: str,
    mode: str,
    base_url: str,
    api_key: str,
    tmp_path: Path,
    scenarios: dict[str, tuple[str, str]] | None = None,
) -> None:
    try:
        cmd, cwd = envs.scenario_command(generation, tmp_path / "work", mode, scenarios)
    except envs.SDKEnvError as exc:
        pytest.fail(f"could not build the {generation} SDK environment:\n{exc}", pytrace=False)
    env = envs.scenario_env(base_url, api_key, tmp_path / "mem0-home")
    try:
        proc = subprocess.run(
            cmd,
            cwd=cwd,
            env=env,
            capture_output=True,
            text=True,
            timeout=SCENARIO_TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        pytest.fail(
            f"{generation} {mode} scenario timed out after {SCENARIO_TIMEOUT}s\n"
            f"--- stdout ---\n{_text(exc.stdout)}\n--- stderr ---\n{_text(exc.stderr)}",
            pytrace=False,
        )
    if proc.returncode != 0:
        pytest.fail(
            f"{generation} {mode} scenario exited with {proc.returncode}: {' '.join(cmd)}\n"
            f"--- stdout ---\n{proc.stdout}\n--- stderr ---\n{proc.stderr}",
            pytrace=False,
        )
    assert "OK [" in proc.stdout, proc.stdout


def _text(data: bytes | str | None) -> str:
    if data is None:
        return ""
    return data.decode(errors="replace") if isinstance(data, bytes) else data


@pytest.mark.parametrize("generation", GENERATIONS)
def test_sdk_scenario(generation: str, live_server: str, new_api_key, tmp_path: Path) -> None:
    """The generation's full scenario: add/get/get_all/search/update/history/delete/users/batch."""
    _run_scenario(generation, "full", live_server, new_api_key(), tmp_path)


@pytest.fixture(scope="module")
def llm_server(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A memserver whose LLM is the scripted OpenAI-compatible server (echo: each user message is a fact)."""
    log = tmp_path_factory.mktemp("sdk-llm") / "memserver.log"
    with running(FakeOpenAI(echo=True)) as fake, served(database_url, log, MEMSERVER_LLM__BASE_URL=fake.url) as server:
        yield server.url


@pytest.mark.parametrize("generation", GENERATIONS)
def test_sdk_infer_true(generation: str, llm_server: str, new_api_key, tmp_path: Path) -> None:
    """infer=true, every client's default: queued as an event that the client polls to SUCCEEDED (v1 clients
    also with async_mode=False, answered with the memory events), then listed and searched."""
    _run_scenario(generation, "infer", llm_server, new_api_key(), tmp_path)


def _rerank_script(query: str, documents: list[str]) -> list[float] | int:
    """The reranker of the rerank scenarios: espresso first; a query that says "outage" gets a 503."""
    return 503 if "outage" in query else [0.95 if "espresso" in d else 0.2 for d in documents]


@pytest.fixture(scope="module")
def rerank_server(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A memserver whose reranker is the fake /rerank server (Cohere's shape), scripted by `_rerank_script`."""
    log = tmp_path_factory.mktemp("sdk-rerank") / "memserver.log"
    with (
        running_reranker(FakeReranker(script=_rerank_script)) as fake,
        served(
            database_url,
            log,
            MEMSERVER_RERANK__PROVIDER="http",
            MEMSERVER_RERANK__URL=fake.url + "/v1/rerank",
            MEMSERVER_RERANK__BREAKER_FAILURES="100",
        ) as server,
    ):
        yield server.url


@pytest.mark.parametrize("generation", ["py-current", "ts-v3"])
def test_sdk_rerank(generation: str, rerank_server: str, new_api_key, tmp_path: Path) -> None:
    """search(..., rerank=True) on the newest clients: the reranker's order, its fields on each hit (camelCased by
    TS), and a failing reranker answered in hybrid order with the reason."""
    _run_scenario(generation, "rerank", rerank_server, new_api_key(), tmp_path)


@pytest.mark.parametrize("generation", GENERATIONS)
def test_sdk_wrong_key(generation: str, live_server: str, new_api_key, tmp_path: Path) -> None:
    """A wrong key fails the way that generation reports it (Python: ValueError at construction and
    AuthenticationError on calls; TS: AuthenticationError from ping() and the first call)."""
    _run_scenario(generation, "wrong-key", live_server, new_api_key(), tmp_path)


@pytest.mark.parametrize("generation", list(envs.PLATFORM))
def test_sdk_platform(generation: str, llm_live, make_org, tmp_path: Path) -> None:
    """Everything around the memories each generation calls: projects and their settings, members, feedback,
    exports, summaries and (current Python, TS 3.3) profiles; with an org OWNER's org-scoped key, against a
    memserver whose LLM is scripted (tests/fakes/platform_llm.py)."""
    server, _ = llm_live
    _run_scenario(generation, "full", server.url, make_org()[2], tmp_path, envs.PLATFORM)
