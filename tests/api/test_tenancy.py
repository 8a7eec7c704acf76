"""Tenancy: a key of project B can neither see nor change anything of project A (README: every query is
scoped to the key's project). Each probe either 404s or affects nothing, and A is intact afterwards."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from tests.api.helpers import assert_error, token_client

ALL_WILDCARDS = {"user_id": "*", "agent_id": "*", "app_id": "*", "run_id": "*"}
ANY_ENTITY = {"OR": [{"user_id": "*"}, {"agent_id": "*"}, {"app_id": "*"}, {"run_id": "*"}]}


def add(api: httpx.Client, *texts: str, **fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "messages": [{"role": "user", "content": t} for t in texts],
        "infer": False,
        **fields,
    }
    r = api.post("/v3/memories/add/", json=body)
    assert r.status_code == 200, r.text
    out: dict[str, Any] = r.json()
    return out


class ProjectA:
    def __init__(self, api: httpx.Client):
        self.api = api
        first = add(
            api,
            "Alice's bank PIN is 4321.",
            "Alice lives at 1 Main St.",
            user_id="alice",
            agent_id="bot",
            app_id="shop",
            run_id="r1",
            metadata={"secret": True},
        )
        second = add(api, "Bot-only note.", agent_id="bot")
        self.event_ids = [first["event_id"], second["event_id"]]
        self.ids = [x["id"] for x in first["results"] + second["results"]]
        self.entity_ids = {(e["type"], e["name"]): e["id"] for e in api.get("/v1/entities/").json()["results"]}
        self.before = self.state()

    def state(self) -> dict[str, Any]:
        """Everything a user of project A can observe."""
        api = self.api
        return {
            "memories": {mid: api.get(f"/v1/memories/{mid}/").json() for mid in self.ids},
            "history": {mid: api.get(f"/v1/memories/{mid}/history/").json() for mid in self.ids},
            "entities": api.get("/v1/entities/").json(),
            "events": api.get("/v1/events/").json(),
            "list": api.post("/v3/memories/", json={"filters": ANY_ENTITY}).json(),
        }

    def assert_intact(self) -> None:
        assert self.state() == self.before


@pytest.fixture
def project_a(api: httpx.Client) -> ProjectA:
    return ProjectA(api)


@pytest.fixture
def intruder(live_server: str, make_tenant: Callable[[], tuple[str, str]]) -> Iterator[httpx.Client]:
    """A client holding project B's key."""
    _, key = make_tenant()
    with token_client(live_server, key) as client:
        yield client


def ids_of(body: Any) -> set[str]:
    """The memory ids of a list or search answer, whichever envelope the generation uses."""
    items = body["results"] if isinstance(body, dict) else body
    assert isinstance(items, list), body
    return {m["id"] for m in items}


def not_found(r: httpx.Response) -> None:
    assert_error(r, 404)


def test_memories_of_another_project_cannot_be_read(project_a: ProjectA, intruder: httpx.Client) -> None:
    for mid in project_a.ids:
        not_found(intruder.get(f"/v1/memories/{mid}/"))
        not_found(intruder.get(f"/v1/memories/{mid}/history/"))
    project_a.assert_intact()


@pytest.mark.parametrize(
    ("path", "make_body"),
    [
        ("/v3/memories/", lambda ids: {"filters": ANY_ENTITY}),
        ("/v3/memories/", lambda ids: {"filters": {"user_id": "alice"}}),
        ("/v3/memories/", lambda ids: {"filters": {"AND": [{"user_id": "*"}, {"memory_ids": ids}]}}),
        ("/v2/memories/", lambda ids: {"filters": {"agent_id": "*"}}),
        ("/v2/memories/", lambda ids: {"user_id": "alice"}),
    ],
)
def test_lists_from_another_project_are_empty(
    project_a: ProjectA, intruder: httpx.Client, path: str, make_body: Callable[[list[str]], dict[str, Any]]
) -> None:
    body = make_body(project_a.ids)
    own = project_a.api.post(path, json=body)
    assert own.status_code == 200, own.text
    seen = ids_of(own.json())
    assert seen, own.text  # A's key sees A's memories with the same request...
    assert seen <= set(project_a.ids)
    r = intruder.post(path, json=body)
    assert r.status_code == 200, r.text
    assert ids_of(r.json()) == set()  # ...B's key sees none
    assert intruder.get("/v1/memories/", params={"user_id": "alice"}).json() == []
    assert intruder.get("/v1/memories/", params={"agent_id": "*", "page": 1, "page_size": 10}).json()["count"] == 0


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v3/memories/search/", {"query": "bank PIN", "filters": ANY_ENTITY, "threshold": 0}),
        ("/v3/memories/search/", {"query": "bank PIN", "filters": {"user_id": "alice"}, "threshold": 0}),
        ("/v2/memories/search/", {"query": "bank PIN", "filters": {"user_id": "*"}, "threshold": 0}),
        ("/v1/memories/search/", {"query": "bank PIN", "user_id": "alice"}),
    ],
)
def test_search_from_another_project_finds_nothing(
    project_a: ProjectA, intruder: httpx.Client, path: str, body: dict[str, Any]
) -> None:
    own = project_a.api.post(path, json=body)
    assert own.status_code == 200, own.text
    # the same search finds A's PIN memory with A's key (v2/v3 answer {"results": [...]}, v1 a list)
    assert project_a.ids[0] in ids_of(own.json()), own.text
    r = intruder.post(path, json=body)
    assert r.status_code == 200, r.text
    assert ids_of(r.json()) == set()


def test_entities_and_events_of_another_project_are_invisible(project_a: ProjectA, intruder: httpx.Client) -> None:
    body = intruder.get("/v1/entities/").json()
    assert body["count"] == 0
    assert body["results"] == []
    assert intruder.get("/v2/entities/user/alice/").json() == []
    assert intruder.get("/v1/memories/user/alice/").json()["count"] == 0
    for eid in project_a.event_ids:
        not_found(intruder.get(f"/v1/event/{eid}/"))
    assert intruder.get("/v1/events/").json()["count"] == 0
    assert intruder.get("/v1/memories/events/").json()["count"] == 0


def test_memories_of_another_project_cannot_be_changed(project_a: ProjectA, intruder: httpx.Client) -> None:
    a0, a1 = project_a.ids[:2]
    not_found(intruder.put(f"/v1/memories/{a0}/", json={"text": "hijacked", "metadata": {"x": 1}}))
    not_found(intruder.put(f"/v1/memories/{a0}/", json={"expiration_date": "2000-01-01"}))
    not_found(intruder.delete(f"/v1/memories/{a1}/"))
    not_found(intruder.delete(f"/v1/memories/{a1}/?delete_linked=true"))
    not_found(
        intruder.put("/v1/batch/", json={"memories": [{"memory_id": m, "text": "hijacked"} for m in project_a.ids]})
    )
    not_found(intruder.request("DELETE", "/v1/batch/", json={"memories": [{"memory_id": m} for m in project_a.ids]}))
    not_found(intruder.request("DELETE", "/v1/memories/batch/", json={"memory_ids": project_a.ids}))
    project_a.assert_intact()


def test_bulk_deletes_from_another_project_affect_nothing(project_a: ProjectA, intruder: httpx.Client) -> None:
    assert intruder.delete("/v1/memories/", params=ALL_WILDCARDS).status_code == 200
    assert intruder.delete("/v1/memories/", params={"user_id": "alice"}).status_code == 200
    assert intruder.delete("/v2/entities/user/alice/").status_code == 200
    assert intruder.delete("/v2/entities/agent/bot/").status_code == 200
    for (etype, _), eid in project_a.entity_ids.items():
        assert intruder.delete(f"/v1/entities/{etype}/{eid}/").status_code == 404
    project_a.assert_intact()


def test_same_names_and_texts_in_another_project_are_independent(project_a: ProjectA, intruder: httpx.Client) -> None:
    mine = add(intruder, "Alice's bank PIN is 4321.", user_id="alice", agent_id="bot", app_id="shop", run_id="r1")
    (item,) = mine["results"]
    assert item["event"] == "ADD"  # not a NOOP pointing at A's memory
    assert item["id"] not in project_a.ids
    assert intruder.post("/v1/users/", json={"user_id": "alice", "metadata": {"owner": "B"}}).status_code == 201
    assert intruder.put(f"/v1/memories/{item['id']}/", json={"text": "Alice lives at 1 Main St."}).status_code == 200
    assert intruder.delete("/v2/entities/user/alice/").status_code == 200
    assert intruder.get(f"/v1/memories/{item['id']}/").status_code == 404
    project_a.assert_intact()


def test_the_platform_endpoints_of_another_project_are_out_of_reach(
    project_a: ProjectA, intruder: httpx.Client
) -> None:
    """Settings, feedback, stats, filters, profiles and backups of A, probed with B's key: 403/404 or nothing."""
    a = project_a.api.get("/v1/ping/").json()
    a_project = f"/api/v1/orgs/organizations/{a['org_id']}/projects/{a['project_id']}/"
    assert project_a.api.post("/v1/feedback/", json={"memory_id": project_a.ids[0], "feedback": "POSITIVE"}).is_success
    assert project_a.api.patch(a_project, json={"custom_instructions": "A only"}).is_success
    assert intruder.get(a_project).status_code == 403
    assert intruder.patch(a_project, json={"custom_instructions": "B was here"}).status_code == 403
    assert intruder.delete(a_project).status_code == 403
    assert intruder.get(a_project + "members/").status_code == 403
    assert (
        intruder.post("/v1/feedback/", json={"memory_id": project_a.ids[0], "feedback": "NEGATIVE"}).status_code == 404
    )
    assert intruder.get("/v1/feedback/").json()["count"] == 0
    assert intruder.get("/v1/stats/").json()["total_memories"] == 0
    assert intruder.get("/v1/entities/filters/").json()["users"] == []
    assert intruder.get("/v2/entities/user/alice/profile/").status_code == 404
    assert intruder.get("/v1/memserver/export/", params={"project_id": a["project_id"]}).status_code == 403
    assert (
        intruder.post("/v3/memories/", json={"filters": ANY_ENTITY, "project_id": a["project_id"]}).status_code == 403
    )
    assert project_a.api.get(a_project).json()["custom_instructions"] == "A only"
    assert project_a.api.get("/v1/feedback/").json()["results"][0]["feedback"] == "POSITIVE"
    project_a.assert_intact()


# ----------------------------------------------------------------------------------------------
# every route needs a valid key
# ----------------------------------------------------------------------------------------------
SOME_ID = "00000000-0000-4000-8000-000000000000"


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", f"/v1/memories/{SOME_ID}/", None),
        ("PUT", f"/v1/memories/{SOME_ID}/", {"text": "x"}),
        ("DELETE", f"/v1/memories/{SOME_ID}/", None),
        ("GET", f"/v1/memories/{SOME_ID}/history/", None),
        ("DELETE", "/v1/memories/?user_id=*", None),
        ("PUT", "/v1/batch/", {"memories": [{"memory_id": SOME_ID, "text": "x"}]}),
        ("DELETE", "/v1/batch/", {"memories": [{"memory_id": SOME_ID}]}),
        ("GET", "/v1/entities/", None),
        ("GET", "/v2/entities/user/alice/", None),
        ("DELETE", "/v2/entities/user/alice/", None),
        ("DELETE", "/v1/entities/user/1/", None),
        ("POST", "/v1/users/", {"user_id": "alice"}),
        ("GET", "/v1/memories/user/alice/", None),
        ("GET", "/v1/events/", None),
        ("GET", f"/v1/event/{SOME_ID}/", None),
        ("GET", "/v1/memories/events/", None),
    ],
)
def test_every_route_needs_a_valid_key(
    project_a: ProjectA, live_server: str, method: str, path: str, body: Any
) -> None:
    for auth in (
        None,
        "Token m0-not-a-key",
        "Token",
        "m0-bare-key",
        f"Basic {project_a.api.headers['authorization']}",
    ):
        headers = {"Authorization": auth} if auth is not None else {}
        r = httpx.request(method, live_server + path, headers=headers, json=body)
        assert r.status_code == 401, (auth, r.text)
        assert r.headers["content-type"].startswith("application/json")
        assert "Invalid API key" in r.json()["detail"]
    project_a.assert_intact()
