"""Batch update and delete over raw HTTP: PUT/DELETE /v1/batch/, all or nothing (contract §2.4)."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from tests.api.helpers import add_verbatim as add
from tests.api.helpers import assert_error

MAX_UPDATE = "Maximum of 1000 memories can be updated in a single request"
MAX_DELETE = "Maximum of 1000 memories can be deleted in a single request"


def snapshot(api: httpx.Client, ids: list[str]) -> dict[str, Any]:
    """Every memory's full state (None when gone), to prove a failed batch changed nothing."""
    out: dict[str, Any] = {}
    for mid in ids:
        r = api.get(f"/v1/memories/{mid}/")
        out[mid] = r.json() if r.status_code == 200 else None
    return out


@pytest.fixture
def three(api: httpx.Client) -> list[str]:
    return add(api, "First fact.", "Second fact.", "Third fact.")


# ----------------------------------------------------------------------------------------------
# PUT /v1/batch/
# ----------------------------------------------------------------------------------------------
def test_batch_update_changes_text_and_metadata(api: httpx.Client, three: list[str]) -> None:
    a, b, c = three
    r = api.put(
        "/v1/batch/",
        json={
            "memories": [
                {"memory_id": a, "text": "First fact, revised."},
                {"memory_id": b, "metadata": {"reviewed": True}},
                {"memory_id": c, "text": "Third fact, revised.", "metadata": {"n": 3}},
            ]
        },
    )
    assert r.status_code == 200, r.text
    assert r.json()["message"] == "Successfully updated 3 memories"
    now = snapshot(api, three)
    assert now[a]["memory"] == "First fact, revised."
    assert (now[b]["memory"], now[b]["metadata"]) == ("Second fact.", {"reviewed": True})
    assert (now[c]["memory"], now[c]["metadata"]) == ("Third fact, revised.", {"n": 3})
    history = api.get(f"/v1/memories/{a}/history/").json()
    assert [(h["event"], h["old_memory"], h["new_memory"]) for h in history][-1] == (
        "UPDATE",
        "First fact.",
        "First fact, revised.",
    )
    hits = api.post(
        "/v3/memories/search/", json={"query": "Third fact, revised.", "filters": {"user_id": "alice"}}
    ).json()["results"]
    assert hits[0]["id"] == c


def test_batch_update_legacy_path_and_no_trailing_slash(api: httpx.Client, three: list[str]) -> None:
    a, b, _ = three
    r = api.put("/v1/memories/batch/", json={"memories": [{"memory_id": a, "text": "Legacy path."}]})
    assert r.status_code == 200, r.text
    r = api.put("/v1/batch", json={"memories": [{"memory_id": b, "text": "No slash."}]})
    assert r.status_code == 200, r.text
    now = snapshot(api, [a, b])
    assert (now[a]["memory"], now[b]["memory"]) == ("Legacy path.", "No slash.")


def test_batch_update_with_an_unknown_id_changes_nothing(api: httpx.Client, three: list[str]) -> None:
    before = snapshot(api, three)
    items = [{"memory_id": m, "text": f"changed {i}"} for i, m in enumerate(three)]
    items.insert(1, {"memory_id": str(uuid.uuid4()), "text": "ghost"})
    body = assert_error(api.put("/v1/batch/", json={"memories": items}), 404)
    assert "error" in body
    assert snapshot(api, three) == before


def test_batch_update_with_a_non_uuid_id_changes_nothing(api: httpx.Client, three: list[str]) -> None:
    before = snapshot(api, three)
    items = [{"memory_id": m, "text": f"changed {i}"} for i, m in enumerate(three)] + [
        {"memory_id": "nope", "text": "bad"}
    ]
    assert_error(api.put("/v1/batch/", json={"memories": items}), 400)
    assert snapshot(api, three) == before


def test_batch_update_with_an_immutable_memory_changes_nothing(api: httpx.Client, three: list[str]) -> None:
    (frozen,) = add(api, "Frozen fact.", immutable=True)
    ids = [*three, frozen]
    before = snapshot(api, ids)
    items = [{"memory_id": m, "text": f"changed {i}"} for i, m in enumerate(ids)]
    body = assert_error(api.put("/v1/batch/", json={"memories": items}), 400)
    assert "immutable" in body["detail"].lower()
    assert snapshot(api, ids) == before
    assert [h["event"] for h in api.get(f"/v1/memories/{three[0]}/history/").json()] == ["ADD"]


def test_batch_update_creating_a_duplicate_text_changes_nothing(api: httpx.Client, three: list[str]) -> None:
    a, _b, c = three
    before = snapshot(api, three)
    items = [{"memory_id": a, "text": "Brand new."}, {"memory_id": c, "text": "Second fact."}]
    assert_error(api.put("/v1/batch/", json={"memories": items}), 409)
    assert snapshot(api, three) == before


@pytest.mark.parametrize(
    "item",
    [
        {"text": "no id"},
        {"memory_id": None, "text": "null id"},
        "not-an-object",
        {"memory_id": "__ID__"},  # nothing to change
        {"memory_id": "__ID__", "metadata": "not an object"},
        {"memory_id": "__ID__", "text": 42},
        {"memory_id": "__ID__", "text": "   "},
    ],
)
def test_batch_update_with_a_malformed_item_is_400_and_changes_nothing(
    api: httpx.Client, three: list[str], item: Any
) -> None:
    if isinstance(item, dict) and item.get("memory_id") == "__ID__":
        item = {**item, "memory_id": three[2]}
    before = snapshot(api, three)
    items = [{"memory_id": three[0], "text": "changed"}, item]
    assert_error(api.put("/v1/batch/", json={"memories": items}), 400)
    assert snapshot(api, three) == before


@pytest.mark.parametrize("body", [{"memories": []}, {}, {"memories": "abc"}])
def test_batch_update_with_no_memories_is_400(api: httpx.Client, body: dict[str, Any]) -> None:
    assert_error(api.put("/v1/batch/", json=body), 400)


def test_batch_update_with_the_same_id_twice_is_400(api: httpx.Client, three: list[str]) -> None:
    before = snapshot(api, three)
    items = [{"memory_id": three[0], "text": "one"}, {"memory_id": three[0], "text": "two"}]
    assert_error(api.put("/v1/batch/", json={"memories": items}), 400)
    assert snapshot(api, three) == before


def test_batch_update_over_1000_is_400_with_the_contract_message(api: httpx.Client, three: list[str]) -> None:
    before = snapshot(api, three)
    items = [{"memory_id": m, "text": "x"} for m in three] + [
        {"memory_id": str(uuid.uuid4()), "text": f"t{i}"} for i in range(998)
    ]
    body = assert_error(api.put("/v1/batch/", json={"memories": items}), 400)
    assert body["error"] == MAX_UPDATE
    assert snapshot(api, three) == before


# ----------------------------------------------------------------------------------------------
# DELETE /v1/batch/ (JSON body)
# ----------------------------------------------------------------------------------------------
def test_batch_delete_removes_exactly_the_listed_memories(api: httpx.Client, three: list[str]) -> None:
    a, b, c = three
    r = api.request("DELETE", "/v1/batch/", json={"memories": [{"memory_id": a}, {"memory_id": c}]})
    assert r.status_code == 200, r.text
    assert r.json()["message"] == "Successfully deleted 2 memories"
    now = snapshot(api, three)
    assert now[a] is None
    assert now[c] is None
    assert now[b]["memory"] == "Second fact."
    assert [h["event"] for h in api.get(f"/v1/memories/{a}/history/").json()] == ["ADD", "DELETE"]


@pytest.mark.parametrize(
    ("path", "make_body"),
    [
        ("/v1/memories/batch/", lambda ids: {"memory_ids": ids}),
        ("/v1/batch", lambda ids: {"memories": [{"memory_id": {"memory_id": i}} for i in ids]}),
        ("/v1/batch/", lambda ids: {"memories": ids}),
    ],
    ids=["legacy-memory_ids", "doubly-wrapped", "bare-ids"],
)
def test_batch_delete_legacy_forms(api: httpx.Client, three: list[str], path: str, make_body: Any) -> None:
    r = api.request("DELETE", path, json=make_body(three[:2]))
    assert r.status_code == 200, r.text
    assert r.json()["message"] == "Successfully deleted 2 memories"
    now = snapshot(api, three)
    assert now[three[0]] is None
    assert now[three[1]] is None
    assert now[three[2]] is not None


def test_batch_delete_with_an_unknown_id_deletes_nothing(api: httpx.Client, three: list[str]) -> None:
    before = snapshot(api, three)
    items = [{"memory_id": m} for m in three] + [{"memory_id": str(uuid.uuid4())}]
    assert_error(api.request("DELETE", "/v1/batch/", json={"memories": items}), 404)
    assert snapshot(api, three) == before


def test_batch_delete_with_a_non_uuid_id_deletes_nothing(api: httpx.Client, three: list[str]) -> None:
    before = snapshot(api, three)
    items = [{"memory_id": m} for m in three] + [{"memory_id": "12345"}]
    assert_error(api.request("DELETE", "/v1/batch/", json={"memories": items}), 400)
    assert snapshot(api, three) == before


def test_batch_delete_of_an_immutable_memory_is_allowed(api: httpx.Client) -> None:
    (frozen,) = add(api, "Frozen but deletable.", immutable=True)
    r = api.request("DELETE", "/v1/batch/", json={"memories": [{"memory_id": frozen}]})
    assert r.status_code == 200, r.text
    assert snapshot(api, [frozen])[frozen] is None


@pytest.mark.parametrize("body", [{"memories": []}, {}, None, {"memories": [{"text": "no id"}]}])
def test_batch_delete_with_no_ids_is_400(api: httpx.Client, three: list[str], body: Any) -> None:
    before = snapshot(api, three)
    assert_error(api.request("DELETE", "/v1/batch/", json=body), 400)
    assert snapshot(api, three) == before


def test_batch_delete_over_1000_is_400_with_the_contract_message(api: httpx.Client, three: list[str]) -> None:
    before = snapshot(api, three)
    items = [{"memory_id": m} for m in three] + [{"memory_id": str(uuid.uuid4())} for _ in range(998)]
    body = assert_error(api.request("DELETE", "/v1/batch/", json={"memories": items}), 400)
    assert body["error"] == MAX_DELETE
    assert snapshot(api, three) == before


def test_batch_of_exactly_1000_is_accepted(api: httpx.Client) -> None:
    r = api.post(
        "/v3/memories/add/",
        json={
            "user_id": "bulk",
            "infer": False,
            "messages": [{"role": "user", "content": f"fact {i}"} for i in range(1000)],
        },
    )
    assert r.status_code == 200, r.text
    ids = [item["id"] for item in r.json()["results"]]
    assert len(ids) == 1000
    r = api.request("DELETE", "/v1/batch/", json={"memories": [{"memory_id": m} for m in ids]})
    assert r.status_code == 200, r.text
    assert r.json()["message"] == "Successfully deleted 1000 memories"
    assert api.post("/v3/memories/", json={"filters": {"user_id": "bulk"}}).json()["count"] == 0
