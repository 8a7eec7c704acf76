"""Two ways to make one request cost unbounded LLM work: queueing memory exports without end (each is an LLM
job), and sending custom categories by the thousand (each goes into every extraction prompt). Exports are
back-pressured per project (429 with Retry-After); categories are bounded in number and size (400 naming the
limit)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import httpx
import pytest

from harness.server import LiveServer, served
from tests.api.helpers import assert_error, token_client, verbatim_add_body
from tests.fakes.openai_server import FakeOpenAI, running

SCHEMA = {"type": "object", "properties": {"drinks": {"type": "string", "description": "What they drink"}}}


@pytest.fixture(scope="module")
def slow_llm_server(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """An LLM that takes 30 s to answer (so exports stay open) and a cap of 2 open exports per project."""
    with (
        running(FakeOpenAI(delay_s=30)) as fake,
        served(
            database_url,
            tmp_path_factory.mktemp("slow-llm") / "memserver.log",
            MEMSERVER_LLM__BASE_URL=fake.url,
            MEMSERVER_LLM__API_KEY="sk-test",
            MEMSERVER_LLM__MODEL="fake-model",
            MEMSERVER_WORKER__MAX_PENDING_EXPORTS_PER_PROJECT="2",
        ) as server,
    ):
        yield server


def test_exports_are_back_pressured_per_project(
    slow_llm_server: LiveServer, make_tenant: Callable[[], tuple[str, str]]
) -> None:
    _, key = make_tenant()
    _, other = make_tenant()
    body = {"schema": SCHEMA, "user_id": "alice"}
    with token_client(slow_llm_server.url, key) as api:
        for _ in range(2):
            assert api.post("/v1/exports/", json=body).status_code == 201
        refused = api.post("/v1/exports/", json=body)
        assert_error(refused, 429, detail="2 export jobs")
        assert int(refused.headers["Retry-After"]) > 0
    with token_client(slow_llm_server.url, other) as api:  # another project is not held back
        assert api.post("/v1/exports/", json=body).status_code == 201


def _project_url(api: httpx.Client) -> str:
    ping = api.get("/v1/ping/").json()
    return f"/api/v1/orgs/organizations/{ping['org_id']}/projects/{ping['project_id']}/"


def test_custom_categories_are_bounded(api: httpx.Client) -> None:
    project = _project_url(api)
    many = [{f"category {i}": "something"} for i in range(51)]
    long = [{"food": "x" * 600}]
    assert_error(api.patch(project, json={"custom_categories": many}), 400, detail="MEMSERVER_LIMITS__MAX_CATEGORIES")
    assert_error(
        api.patch(project, json={"custom_categories": long}), 400, detail="MEMSERVER_LIMITS__MAX_CATEGORY_CHARS"
    )
    one_object_many_names = [{f"c{i}": "d" for i in range(51)}]  # counted per name, not per object
    assert_error(
        api.patch(project, json={"custom_categories": one_object_many_names}),
        400,
        detail="MEMSERVER_LIMITS__MAX_CATEGORIES",
    )
    for categories, limit in ((many, "MAX_CATEGORIES"), (long, "MAX_CATEGORY_CHARS")):
        r = api.post("/v3/memories/add/", json=verbatim_add_body("Alice likes tea.", custom_categories=categories))
        assert r.status_code == 400, r.text
        assert f"MEMSERVER_LIMITS__{limit}" in r.text
    # at the limits: accepted
    fifty = [{f"category {i}": "d" * 400} for i in range(50)]
    assert api.patch(project, json={"custom_categories": fifty}).status_code == 200
    ok = api.post("/v3/memories/add/", json=verbatim_add_body("Alice likes tea.", custom_categories=fifty))
    assert ok.status_code == 200, ok.text
    assert api.get(project).json()["custom_categories"] == fifty
