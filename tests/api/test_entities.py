"""Entities over raw HTTP: list, get, create, delete with their memories (contract §2.4, §2.5)."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import httpx
import pytest

from tests.api.helpers import add_verbatim as add
from tests.api.helpers import assert_error


def exists(api: httpx.Client, memory_id: str) -> bool:
    status = api.get(f"/v1/memories/{memory_id}/").status_code
    assert status in (200, 404)
    return status == 200


def entities(api: httpx.Client) -> dict[tuple[str, str], dict[str, Any]]:
    r = api.get("/v1/entities/")
    assert r.status_code == 200, r.text
    return {(e["type"], e["name"]): e for e in r.json()["results"]}


def enc(name: str) -> str:
    """How the Python 2.x and TS 3.x SDKs encode a path segment."""
    return quote(name, safe="")


@pytest.fixture
def population(api: httpx.Client) -> dict[str, str]:
    ids: dict[str, str] = {}
    ids["alice"] = add(api, "alice only", user_id="alice")[0]
    ids["alice_bot"] = add(api, "alice with bot", user_id="alice", agent_id="bot")[0]
    ids["bob"] = add(api, "bob only", user_id="bob")[0]
    ids["bot"] = add(api, "bot only", agent_id="bot")[0]
    ids["app"] = add(api, "app only", app_id="shop")[0]
    ids["run"] = add(api, "run only", run_id="r1", user_id="bob")[0]
    return ids


# ----------------------------------------------------------------------------------------------
# GET /v1/entities/
# ----------------------------------------------------------------------------------------------
def test_empty_project_lists_no_entities(api: httpx.Client) -> None:
    r = api.get("/v1/entities/")
    assert r.status_code == 200
    assert r.json() == {
        "count": 0,
        "next": None,
        "previous": None,
        "results": [],
        "total_users": 0,
        "total_agents": 0,
        "total_apps": 0,
        "total_runs": 0,
    }


def test_adds_create_entities_implicitly(api: httpx.Client, population: dict[str, str]) -> None:
    r = api.get("/v1/entities")
    assert r.status_code == 200
    body = r.json()
    assert {k: body[k] for k in ("count", "next", "previous")} == {"count": 5, "next": None, "previous": None}
    assert (body["total_users"], body["total_agents"], body["total_apps"], body["total_runs"]) == (2, 1, 1, 1)
    found = {(e["type"], e["name"]) for e in body["results"]}
    assert found == {("user", "alice"), ("user", "bob"), ("agent", "bot"), ("app", "shop"), ("run", "r1")}
    for e in body["results"]:
        assert isinstance(e["id"], str)
        assert e["id"].isdigit()
        assert {"created_at", "updated_at", "metadata", "owner"} <= set(e)
    counts = {(e["type"], e["name"]): e["total_memories"] for e in body["results"]}
    assert counts[("user", "alice")] == 2
    assert counts[("agent", "bot")] == 2
    assert counts[("run", "r1")] == 1


def test_entities_are_paginated(api: httpx.Client) -> None:
    for i in range(5):
        add(api, f"fact of user {i}", user_id=f"user-{i}")
    seen: list[str] = []
    r = api.get("/v1/entities/", params={"page": 1, "page_size": 2})
    assert r.status_code == 200
    first = r.json()
    assert first["count"] == 5
    assert len(first["results"]) == 2
    assert first["previous"] is None
    assert first["next"] is not None
    seen += [e["name"] for e in first["results"]]
    second = api.get("/v1/entities/?page=2&page_size=2").json()
    assert second["previous"] is not None
    assert second["next"] is not None
    seen += [e["name"] for e in second["results"]]
    third = api.get("/v1/entities/?page=3&page_size=2").json()
    assert len(third["results"]) == 1
    assert third["next"] is None
    seen += [e["name"] for e in third["results"]]
    assert sorted(seen) == [f"user-{i}" for i in range(5)]
    following = api.get(first["next"])
    assert following.status_code == 200
    assert following.json()["results"] == second["results"]
    past = api.get("/v1/entities/?page=4&page_size=2")
    assert past.status_code == 404
    assert past.json()["detail"] == "Invalid page."


@pytest.mark.parametrize(
    ("query", "status"), [("page=0", 404), ("page_size=0", 400), ("page=abc", 400), ("page_size=100000", 400)]
)
def test_bad_entity_pagination_is_a_json_error(api: httpx.Client, query: str, status: int) -> None:
    assert_error(api.get(f"/v1/entities/?{query}"), status)


# ----------------------------------------------------------------------------------------------
# DELETE /v2/entities/{type}/{name}/
# ----------------------------------------------------------------------------------------------
def test_delete_entity_removes_it_and_its_memories(api: httpx.Client, population: dict[str, str]) -> None:
    r = api.delete("/v2/entities/user/alice/")
    assert r.status_code == 200, r.text
    assert isinstance(r.json()["message"], str)
    assert not exists(api, population["alice"])
    assert not exists(api, population["alice_bot"])
    assert all(exists(api, population[k]) for k in ("bob", "bot", "app", "run"))
    listed = entities(api)
    assert ("user", "alice") not in listed
    assert ("agent", "bot") in listed  # it still has its own memory
    history = api.get(f"/v1/memories/{population['alice_bot']}/history/").json()
    assert [h["event"] for h in history] == ["ADD", "DELETE"]


@pytest.mark.parametrize(
    ("etype", "name", "gone"),
    [("agent", "bot", {"alice_bot", "bot"}), ("app", "shop", {"app"}), ("run", "r1", {"run"})],
)
def test_delete_entity_of_each_type(
    api: httpx.Client, population: dict[str, str], etype: str, name: str, gone: set[str]
) -> None:
    assert api.delete(f"/v2/entities/{etype}/{name}").status_code == 200
    assert {k for k, mid in population.items() if not exists(api, mid)} == gone
    assert (etype, name) not in entities(api)


def test_delete_entity_is_idempotent(api: httpx.Client, population: dict[str, str]) -> None:
    assert api.delete("/v2/entities/user/bob/").status_code == 200
    again = api.delete("/v2/entities/user/bob/")
    assert again.status_code == 200
    assert isinstance(again.json()["message"], str)
    unknown = api.delete("/v2/entities/user/never-existed/")
    assert unknown.status_code == 200
    assert exists(api, population["alice"])


def test_delete_entity_with_an_invalid_type_is_400(api: httpx.Client, population: dict[str, str]) -> None:
    r = api.delete("/v2/entities/robot/alice/")
    assert r.status_code == 400
    assert r.json()["message"] == "Invalid entity type"
    assert r.json()["detail"]
    assert all(exists(api, mid) for mid in population.values())


def test_a_literal_star_name_is_not_a_wildcard(api: httpx.Client, population: dict[str, str]) -> None:
    for path in ("/v2/entities/user/*/", "/v2/entities/user/%2A/", "/v2/entities/agent/%2A"):
        assert api.delete(path).status_code == 200
    assert all(exists(api, mid) for mid in population.values())
    assert len(entities(api)) == 5


@pytest.mark.parametrize(
    "name",
    ["org/team?active#frag", "with space", "naïve 東京", "50%+1", "a/../b", "history"],
)
def test_names_with_reserved_characters_work_percent_encoded(api: httpx.Client, name: str) -> None:
    (mid,) = add(api, f"memory of {name}", user_id=name)
    (sibling,) = add(api, "a sibling", user_id=name.split("/")[0] + "-x")
    assert ("user", name) in entities(api)
    r = api.get(f"/v2/entities/user/{enc(name)}/")
    assert r.status_code == 200, r.text
    assert [(e["type"], e["name"]) for e in r.json()] == [("user", name)]
    r = api.get(f"/v1/memories/user/{enc(name)}/")
    assert r.status_code == 200, r.text
    assert [m["id"] for m in r.json()["results"]] == [mid]
    r = api.delete(f"/v2/entities/user/{enc(name)}/")
    assert r.status_code == 200, r.text
    assert not exists(api, mid)
    assert exists(api, sibling)
    assert ("user", name) not in entities(api)


# ----------------------------------------------------------------------------------------------
# DELETE /v1/entities/{type}/{numeric id}/ (deprecated)
# ----------------------------------------------------------------------------------------------
def test_delete_entity_by_numeric_id(api: httpx.Client, population: dict[str, str]) -> None:
    listed = entities(api)
    bob_id = listed[("user", "bob")]["id"]
    r = api.delete(f"/v1/entities/user/{bob_id}/")
    assert r.status_code == 200, r.text
    assert isinstance(r.json()["message"], str)
    assert not exists(api, population["bob"])
    assert not exists(api, population["run"])
    assert exists(api, population["alice"])
    assert ("user", "bob") not in entities(api)


def test_delete_entity_by_id_with_mismatched_type_or_unknown_id_deletes_nothing(
    api: httpx.Client, population: dict[str, str]
) -> None:
    bob_id = entities(api)[("user", "bob")]["id"]
    assert api.delete(f"/v1/entities/agent/{bob_id}/").status_code == 404
    assert api.delete("/v1/entities/user/999999999/").status_code == 404
    assert all(exists(api, mid) for mid in population.values())
    assert ("user", "bob") in entities(api)


@pytest.mark.parametrize("bad", ["bob", "1.5", "abc"])
def test_delete_entity_by_non_integer_id_is_400(api: httpx.Client, population: dict[str, str], bad: str) -> None:
    r = api.delete(f"/v1/entities/user/{bad}/")
    assert r.status_code == 400
    assert r.json()["error"] == "Invalid entity ID. Must be an integer."
    assert exists(api, population["bob"])


def test_delete_entity_v1_with_an_invalid_type_is_400(api: httpx.Client) -> None:
    r = api.delete("/v1/entities/robot/1/")
    assert_error(r, 400)


# ----------------------------------------------------------------------------------------------
# GET /v2/entities/{type}/{name}/ and POST /v1/users|agents|apps|runs/
# ----------------------------------------------------------------------------------------------
def test_get_entity_v2(api: httpx.Client, population: dict[str, str]) -> None:
    r = api.get("/v2/entities/agent/bot/")
    assert r.status_code == 200
    (e,) = r.json()
    assert (e["type"], e["name"]) == ("agent", "bot")
    assert e["id"] == entities(api)[("agent", "bot")]["id"]
    assert {"created_at", "updated_at", "owner", "metadata"} <= set(e)
    assert api.get("/v2/entities/agent/nobody/").json() == []
    r = api.get("/v2/entities/robot/bot/")
    assert r.status_code == 400
    assert r.json()["message"] == "Invalid entity type"


@pytest.mark.parametrize(
    ("path", "body", "etype", "name"),
    [
        ("/v1/users/", {"user_id": "u-1", "metadata": {"plan": "pro"}}, "user", "u-1"),
        (
            "/v1/agents/",
            {"agent_id": "a-1", "name": "Agent One", "metadata": {"plan": "pro"}},
            "agent",
            "a-1",
        ),
        ("/v1/apps/", {"app_id": "p-1", "name": "App One", "metadata": {"plan": "pro"}}, "app", "p-1"),
        ("/v1/runs", {"run_id": "r-1", "name": "Run One", "metadata": {"plan": "pro"}}, "run", "r-1"),
    ],
)
def test_create_entity_is_201_and_listed(
    api: httpx.Client, path: str, body: dict[str, Any], etype: str, name: str
) -> None:
    r = api.post(path, json=body)
    assert r.status_code == 201, r.text
    out = r.json()
    assert out[f"{etype}_id"] == name
    assert out["metadata"] == {"plan": "pro"}
    assert str(out["id"]).isdigit()
    if etype != "user":
        assert out["name"] == body["name"]
    listed = entities(api)
    assert listed[(etype, name)]["metadata"] == {"plan": "pro"}
    assert listed[(etype, name)]["id"] == str(out["id"])
    assert listed[(etype, name)]["total_memories"] == 0


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/users/", {}),
        ("/v1/users/", {"user_id": "  "}),
        ("/v1/agents/", {"agent_id": "a"}),
        ("/v1/runs/", {"name": "no id"}),
        ("/v1/apps/", {"app_id": "x", "name": "n", "metadata": [1]}),
    ],
)
def test_create_entity_with_missing_fields_is_400(api: httpx.Client, path: str, body: dict[str, Any]) -> None:
    r = api.post(path, json=body)
    assert_error(r, 400)
    assert entities(api) == {}


# ----------------------------------------------------------------------------------------------
# GET /v1/memories/{entity_type}/{entity_id}/
# ----------------------------------------------------------------------------------------------
def test_memories_of_an_entity(api: httpx.Client, population: dict[str, str]) -> None:
    r = api.get("/v1/memories/agent/bot/")
    assert r.status_code == 200
    body = r.json()
    assert body["count"] == 2
    assert body["next"] is None
    assert body["previous"] is None
    assert {m["id"] for m in body["results"]} == {population["alice_bot"], population["bot"]}
    for m in body["results"]:
        assert {
            "id",
            "memory",
            "metadata",
            "categories",
            "created_at",
            "updated_at",
            "input",
            "is_updated",
        } <= set(m)
    assert api.get("/v1/memories/user/nobody/").json()["count"] == 0
    r = api.get("/v1/memories/robot/bot/")
    assert r.status_code == 400
    assert r.json()["error"] == "Invalid entity type"


def test_memories_of_an_entity_are_paginated_by_100(api: httpx.Client) -> None:
    add(api, *[f"bulk fact {i}" for i in range(101)], user_id="bulk")
    first = api.get("/v1/memories/user/bulk/").json()
    assert first["count"] == 101
    assert len(first["results"]) == 100
    assert first["next"]
    second = api.get("/v1/memories/user/bulk/?page=2").json()
    assert len(second["results"]) == 1
    assert second["next"] is None
    assert second["previous"]
    ids = {m["id"] for m in first["results"]} | {m["id"] for m in second["results"]}
    assert len(ids) == 101
    assert api.get("/v1/memories/user/bulk/?page=3").status_code == 404
