"""`DELETE /v1/memories/` with `filters`: what every Python generation sends for `delete_all(filters={...})` (the
dict's `str()`, through httpx), JSON from curl (query or body), merged with the query's ids; the TypeScript
client's `[object Object]`; bound keys still confined. And `metadata`/`filters` sent the same way to
`GET /v1/memories/` (0.1.x `get_all(metadata=..., filters=...)`)."""

from __future__ import annotations

import json
import uuid
from typing import Any

import httpx
import pytest

from memserver.api.kit.values import decode_object_param
from memserver.errors import BadRequest
from memserver.services import admin
from memserver.storage.db import Database
from tests.api.helpers import add_verbatim, assert_error, token_client

DELETED = "Memories deleted successfully!"


@pytest.fixture
def population(api: httpx.Client) -> dict[str, str]:
    """Memories in several scopes; name -> id."""
    return {
        "alice": add_verbatim(api, "alice only", user_id="alice")[0],
        "alice_meta": add_verbatim(api, "alice with metadata", user_id="alice", metadata={"kind": "pref"})[0],
        "alice_bot": add_verbatim(api, "alice and bot", user_id="alice", agent_id="bot")[0],
        "obrien": add_verbatim(api, "o'brien only", user_id="o'brien")[0],
        "bob": add_verbatim(api, "bob only", user_id="bob", metadata={"kind": "pref"})[0],
        "bot": add_verbatim(api, "bot only", agent_id="bot")[0],
        "run": add_verbatim(api, "run only", run_id="r1")[0],
        "bob_run": add_verbatim(api, "bob in run", user_id="bob", run_id="r1")[0],
    }


def surviving(api: httpx.Client, ids: dict[str, str]) -> set[str]:
    return {name for name, mid in ids.items() if api.get(f"/v1/memories/{mid}/").status_code == 200}


@pytest.mark.parametrize(
    ("params", "deleted"),
    [
        ({"filters": str({"user_id": "alice"})}, {"alice", "alice_meta", "alice_bot"}),
        ({"filters": json.dumps({"user_id": "alice"})}, {"alice", "alice_meta", "alice_bot"}),
        ({"filters": str({"user_id": "o'brien"})}, {"obrien"}),  # repr switches to double quotes
        ({"filters": str({"userId": "alice", "agentId": "bot"})}, {"alice_bot"}),
        ({"filters": str({"user_id": "bob", "session_id": "r1"})}, {"bob_run"}),
        ({"filters": str({"user_id": "alice"}), "user_id": "alice"}, {"alice", "alice_meta", "alice_bot"}),
        ({"filters": str({"agent_id": "bot"}), "user_id": "alice"}, {"alice_bot"}),  # merged: ANDed
        ({"filters": str({"user_id": "alice", "metadata": {"kind": "pref"}})}, {"alice_meta"}),
        ({"filters": str({"metadata": {"kind": "pref"}})}, {"alice_meta", "bob"}),  # metadata alone, as today
        ({"filters": str({"user_id": "*", "agent_id": "*"})}, {"alice", "alice_meta", "alice_bot", "obrien", "bob",
                                                              "bot", "bob_run"}),  # several '*': a union
        ({"filters": str({"AND": [{"user_id": "bob"}, {"run_id": "*"}]})}, {"bob_run"}),
        ({"filters": str({"OR": [{"user_id": "bob"}, {"agent_id": "bot"}]})}, {"bob", "bob_run", "alice_bot", "bot"}),
        ({"filters": str({"user_id": {"in": ["alice", "bob"]}, "agent_id": None})},
         {"alice", "alice_meta", "bob", "bob_run"}),
        ({"filters": str({"OR": [{"run_id": "r1"}, {"metadata": {"kind": "pref"}}]})},
         {"run", "bob_run", "alice_meta", "bob"}),
        ({"filters": str({"user_id": "nobody"})}, set()),
    ],
)  # fmt: skip
def test_filters_delete_exactly_the_matching_memories(
    api: httpx.Client, population: dict[str, str], params: dict[str, str], deleted: set[str]
) -> None:
    r = api.delete("/v1/memories/", params=params)
    assert r.status_code == 200, r.text
    assert r.json() == {"message": DELETED, "deleted_count": len(deleted)}
    assert surviving(api, population) == set(population) - deleted


def test_filters_as_a_json_body(api: httpx.Client, population: dict[str, str]) -> None:
    r = api.request("DELETE", "/v1/memories/", json={"filters": {"user_id": "bob", "run_id": "r1"}})
    assert r.status_code == 200, r.text
    assert r.json()["deleted_count"] == 1
    assert surviving(api, population) == set(population) - {"bob_run"}
    both = api.request("DELETE", "/v1/memories/", params={"filters": "{'user_id': 'bob'}"}, json={"filters": {}})
    assert_error(both, 400, error="filters is given in both the query and the body; send it once")
    assert_error(
        api.request("DELETE", "/v1/memories/", json={"filters": "bob"}), 400, error="filters must be a JSON object"
    )


NO_FILTER = "At least one filter is required: user_id, agent_id, app_id, run_id (use '*' for all) or metadata"
LITERAL = "filters must be a JSON object or a Python dict literal: "


@pytest.mark.parametrize(
    ("params", "error"),
    [
        ({"filters": "{}"}, NO_FILTER),
        ({"filters": "  "}, NO_FILTER),
        ({"filters": str({"user_id": ""})}, NO_FILTER),
        ({"filters": str({"created_at": {"gte": "2020-01-01"}})}, NO_FILTER),  # no entity, no metadata
        ({"filters": str({"categories": ["food"]})}, NO_FILTER),
        ({"filters": str({"NOT": {"user_id": "alice"}})}, NO_FILTER),
        ({"filters": str({"OR": [{"user_id": "alice"}, {"categories": ["x"]}]})}, NO_FILTER),
        ({"filters": str({"user_id": "bob"}), "user_id": "alice"}, "user_id is given twice with different values"),
        ({"filters": str({"run_id": "a", "session_id": "b"})}, "run_id is given twice with different values"),
        ({"filters": str({"user_id": "a", "metadata": {"k": 2}}), "metadata": '{"k": 1}'},
         "metadata.k is given twice with different values"),
        ({"filters": "[object Object]"}, "filters arrived as '[object Object]': the JavaScript client cannot put an "
                                         "object in a query string; pass the ids: deleteAll({ userId: 'alice' })"),
        ({"filters": "{'user_id': datetime.date(2024, 1, 1)}"}, LITERAL + "datetime.date is not a literal: send dates "
                                                                 "as ISO strings, e.g. '2024-01-01' at character 12"),
        ({"filters": "{'user_id': 'alice'"}, LITERAL + "expected ',' or '}', found the end at character 19"),
        ({"filters": "user_id=alice"}, LITERAL + "user_id is not a literal (only strings, numbers, True, False, None, "
                                                 "dicts and lists) at character 0"),
        ({"filters": "{'user_id', 'alice'}"}, LITERAL + "sets are not supported; send a list at character 0"),
        ({"filters": "['alice']"}, "filters must be a JSON object"),
        ({"filters": "{'x': 1}"}, "Top-level key must be a logical operator or an allowed field: "),
        ({"filters": "{'user_id': 'a' * 3}"}, LITERAL + "expected ',' or '}', found '*' at character 16"),
        ({"filters": "{'a': " * 40 + "1" + "}" * 40}, LITERAL + "nested deeper than 32 levels at character 192"),
        ({"filters": str({"user_id": "u" * 256})}, "user_id is longer than 255 characters"),
    ],
)  # fmt: skip
def test_bad_filters_are_400_and_delete_nothing(
    api: httpx.Client, population: dict[str, str], params: dict[str, str], error: str
) -> None:
    body = assert_error(api.delete("/v1/memories/", params=params), 400)
    assert body["error"].startswith(error), body
    assert body["detail"] == body["error"]
    assert surviving(api, population) == set(population)


async def test_a_bound_key_stays_confined(database_url: str, live_server: str, tenant: tuple[str, str]) -> None:
    org = f"bind-{uuid.uuid4().hex[:8]}"
    db = Database(database_url)
    try:
        await admin.create_org(db, org)
        await admin.create_project(db, org, "p")
        _, owner = await admin.create_key(db, org, "p", "owner", "owner@example.com")
        _, alice = await admin.create_key(db, org, "p", "alice", "owner@example.com", binding={"user_id": "alice"})
    finally:
        await db.dispose()
    with token_client(live_server, owner) as api, token_client(live_server, alice) as bound:
        mine = add_verbatim(api, "alice's", user_id="alice")[0]
        bobs = add_verbatim(api, "bob's", user_id="bob")[0]
        for filters in ({"user_id": "bob"}, {"user_id": "*"}, {"OR": [{"user_id": "alice"}, {"user_id": "bob"}]}):
            r = bound.delete("/v1/memories/", params={"filters": str(filters)})
            assert_error(r, 403, detail="This API key is bound to user_id 'alice'")
        r = bound.delete("/v1/memories/", params={"filters": str({"metadata": {"x": 1}})})  # ANDed with alice
        assert r.json()["deleted_count"] == 0
        assert api.get(f"/v1/memories/{bobs}/").status_code == 200
        r = bound.delete("/v1/memories/", params={"filters": str({"user_id": "alice"})})
        assert r.json() == {"message": DELETED, "deleted_count": 1}
        assert api.get(f"/v1/memories/{mine}/").status_code == 404
        assert api.get(f"/v1/memories/{bobs}/").status_code == 200


@pytest.mark.parametrize(
    "params",
    [
        {"user_id": "alice", "metadata": str({"kind": "pref"})},
        {"user_id": "alice", "metadata": json.dumps({"kind": "pref"})},
        {"filters": str({"user_id": "alice", "metadata": {"kind": "pref"}})},
        {"filters": str({"AND": [{"user_id": "alice"}, {"metadata": {"kind": "pref"}}]})},
        {"user_id": "alice", "filters": str({"metadata": {"kind": {"contains": "pre"}}})},
    ],
)
def test_list_v1_reads_metadata_and_filters_as_python_clients_send_them(
    api: httpx.Client, population: dict[str, str], params: dict[str, Any]
) -> None:
    r = api.get("/v1/memories/", params=params)
    assert r.status_code == 200, r.text
    assert [m["id"] for m in r.json()] == [population["alice_meta"]]


def test_list_v1_filters_still_need_an_entity(api: httpx.Client) -> None:
    body = assert_error(api.get("/v1/memories/", params={"filters": str({"metadata": {"kind": "pref"}})}), 400)
    assert body["message"] == "One of the filters: app_id, user_id, agent_id, run_id is required!"
    body = assert_error(api.get("/v1/memories/", params={"user_id": "a", "metadata": "{'k': set()}"}), 400)
    assert body["message"] == (
        "metadata must be a JSON object or a Python dict literal: sets are not supported; send a list at character 6"
    )


def test_an_object_parameter_is_bounded_before_it_is_read() -> None:
    # Longer than an HTTP client sends in a URL (httpx refuses one over 65536 characters), so asked directly.
    with pytest.raises(BadRequest, match=r"^filters is longer than 65536 characters$"):
        decode_object_param("{'user_id': '" + "a" * 65_530 + "'}", "filters")
    assert decode_object_param("{'user_id': '" + "a" * 65_500 + "'}", "filters") == {"user_id": "a" * 65_500}
    assert decode_object_param(" ", "filters") is None
