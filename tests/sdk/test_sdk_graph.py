"""Graph memory through the official SDKs that read `relations` (Python 1.0.x and 0.1.x): the v1.1 add's
added_entities, and the top-level `relations` of v2 get_all and search. The scripted LLM echoes each user
message as a fact and, with graph on, "Source relationship words Target." as a relation."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.server import served
from tests.fakes.openai_server import FakeOpenAI, running
from tests.sdk.test_sdk_generations import _run_scenario

pytestmark = pytest.mark.sdk


@pytest.fixture(scope="module")
def graph_server(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    log = tmp_path_factory.mktemp("sdk-graph") / "memserver.log"
    with running(FakeOpenAI(echo=True)) as fake, served(database_url, log, MEMSERVER_LLM__BASE_URL=fake.url) as server:
        yield server.url


@pytest.mark.parametrize("generation", ["py-v1.0", "py-v0.1"])
def test_sdk_reads_relations(generation: str, graph_server: str, new_api_key, tmp_path: Path) -> None:
    _run_scenario(generation, "graph", graph_server, new_api_key(), tmp_path)
