"""Adding memories over raw HTTP, as curl does (contract §2.2 add, §2.3 v1 add, §5, checklist §9(d))."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from memserver.storage.db import Database

ADD = "/v3/memories/add/"


def msgs(*texts: str, role: str = "user") -> list[dict[str, str]]:
    return [{"role": role, "content": t} for t in texts]


def add(api: httpx.Client, *texts: str, path: str = ADD, **body: Any) -> Any:
    r = api.post(path, json={"messages": msgs(*texts), "infer": False, **body})
    assert r.status_code == 200, r.text
    return r.json()


def get_memory(api: httpx.Client, memory_id: str) -> dict[str, Any]:
    r = api.get(f"/v1/memories/{memory_id}/")
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


def list_v3(api: httpx.Client, filters: dict[str, Any], **body: Any) -> dict[str, Any]:
    r = api.post("/v3/memories/", json={"filters": filters, **body})
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


async def aadd(aapi: httpx.AsyncClient, *texts: str, **body: Any) -> list[dict[str, Any]]:
    r = await aapi.post(ADD, json={"messages": msgs(*texts), "infer": False, **body})
    assert r.status_code == 200, r.text
    return r.json()["results"]  # type: ignore[no-any-return]


async def row_counts(db: Database, project_id: str) -> dict[str, int]:
    out = {}
    async with db.connect() as conn:
        for table in ("memories", "memory_history", "events", "entities"):
            q = text(f"SELECT count(*) FROM {table} WHERE project_id = :p")
            out[table] = int((await conn.execute(q, {"p": uuid.UUID(project_id)})).scalar_one())
    return out


# ----------------------------------------------------------------------------------------------
# v3 add, infer=false
# ----------------------------------------------------------------------------------------------
def test_v3_add_infer_false_answers_succeeded_with_memory_events(api: httpx.Client) -> None:
    body = add(api, "I moved to Austin last month.", "I work as a nurse.", user_id="alice")
    assert set(body) == {"message", "status", "event_id", "results"}
    assert body["status"] == "SUCCEEDED"
    assert isinstance(body["message"], str)
    assert body["message"]
    uuid.UUID(body["event_id"])
    assert [r["data"]["memory"] for r in body["results"]] == [
        "I moved to Austin last month.",
        "I work as a nurse.",
    ]
    for item in body["results"]:
        assert item["event"] == "ADD"
        uuid.UUID(item["id"])
    assert len({r["id"] for r in body["results"]}) == 2


def test_v3_add_is_readable_by_id_with_all_entity_ids(api: httpx.Client) -> None:
    body = add(api, "likes tea", user_id="u1", agent_id="a1", app_id="app1", run_id="r1")
    mem = get_memory(api, body["results"][0]["id"])
    assert mem["memory"] == "likes tea"
    assert (mem["user_id"], mem["agent_id"], mem["app_id"], mem["run_id"]) == ("u1", "a1", "app1", "r1")
    assert mem["session_id"] == "r1"
    assert mem["metadata"] is None
    assert mem["immutable"] is False
    assert mem["expiration_date"] is None


def test_entity_ids_inside_filters_are_used_for_the_add(api: httpx.Client) -> None:
    body = add(api, "likes coffee", filters={"user_id": "bob", "agent_id": "helper"})
    mem = get_memory(api, body["results"][0]["id"])
    assert (mem["user_id"], mem["agent_id"], mem["app_id"], mem["run_id"]) == ("bob", "helper", None, None)


def test_camel_case_ids_inside_filters_are_normalised(api: httpx.Client) -> None:
    body = add(api, "camel", filters={"userId": "carol", "runId": "r2"})
    mem = get_memory(api, body["results"][0]["id"])
    assert (mem["user_id"], mem["run_id"]) == ("carol", "r2")


def test_top_level_entity_id_wins_over_filters(api: httpx.Client) -> None:
    body = add(api, "likes chess", user_id="top", filters={"user_id": "inner", "run_id": "r9"})
    mem = get_memory(api, body["results"][0]["id"])
    assert (mem["user_id"], mem["run_id"]) == ("top", "r9")


def test_numeric_entity_id_is_stored_as_a_string(api: httpx.Client) -> None:
    body = add(api, "numbered", user_id=42)
    assert get_memory(api, body["results"][0]["id"])["user_id"] == "42"


def test_metadata_categories_and_immutable_are_stored(api: httpx.Client) -> None:
    meta = {"source": "onboarding_form", "score": 3, "tags": ["a", "b"], "nested": {"k": True}}
    body = add(api, "allergic to nuts", user_id="u", metadata=meta, categories=["health", "food"], immutable=True)
    mem = get_memory(api, body["results"][0]["id"])
    assert mem["metadata"] == meta
    assert sorted(mem["categories"]) == ["food", "health"]
    assert mem["immutable"] is True


def test_immutable_memory_refuses_updates(api: httpx.Client) -> None:
    mid = add(api, "fixed fact", user_id="u", immutable=True)["results"][0]["id"]
    r = api.put(f"/v1/memories/{mid}/", json={"text": "changed"})
    assert r.status_code == 400
    assert get_memory(api, mid)["memory"] == "fixed fact"


def test_timestamp_backdates_created_at(api: httpx.Client) -> None:
    ts = 1_700_000_000  # 2023-11-14T22:13:20Z
    mid = add(api, "old memory", user_id="u", timestamp=ts)["results"][0]["id"]
    created = datetime.fromisoformat(get_memory(api, mid)["created_at"])
    assert abs(created.timestamp() - ts) < 1
    # and it sorts as old: a memory added now comes first
    add(api, "new memory", user_id="u")
    results = list_v3(api, {"user_id": "u"})["results"]
    assert [m["memory"] for m in results] == ["new memory", "old memory"]


def test_expired_memories_are_hidden_from_list_and_search_but_readable_by_id(api: httpx.Client) -> None:
    yesterday = (datetime.now(UTC).date() - timedelta(days=1)).isoformat()
    today = datetime.now(UTC).date().isoformat()
    expired = add(api, "expired coupon code", user_id="u", expiration_date=yesterday)["results"][0]["id"]
    valid = add(api, "coupon code valid today", user_id="u", expiration_date=today)["results"][0]["id"]

    listed = list_v3(api, {"user_id": "u"})
    assert [m["id"] for m in listed["results"]] == [valid]
    assert listed["count"] == 1
    assert {m["id"] for m in list_v3(api, {"user_id": "u"}, show_expired=True)["results"]} == {expired, valid}

    r = api.post("/v3/memories/search/", json={"query": "coupon code", "filters": {"user_id": "u"}, "threshold": 0})
    assert r.status_code == 200, r.text
    assert [h["id"] for h in r.json()["results"]] == [valid]

    mem = get_memory(api, expired)
    assert mem["expiration_date"] == yesterday


def test_system_messages_are_skipped_and_order_is_kept(api: httpx.Client) -> None:
    messages = [
        {"role": "system", "content": "You are a helpful assistant."},
        {"role": "user", "content": "first"},
        {"role": "assistant", "content": "second"},
        {"role": "user", "content": "third"},
    ]
    r = api.post(ADD, json={"messages": messages, "user_id": "u", "infer": False})
    assert r.status_code == 200, r.text
    results = r.json()["results"]
    assert [x["data"]["memory"] for x in results] == ["first", "second", "third"]
    created = [get_memory(api, x["id"])["created_at"] for x in results]
    assert created == sorted(created)
    assert len(set(created)) == 3
    listed = list_v3(api, {"user_id": "u"})["results"]
    assert [m["memory"] for m in listed] == ["third", "second", "first"]  # newest first


async def test_exact_duplicate_in_same_scope_is_noop_with_existing_id(
    aapi: httpx.AsyncClient, db: Database, tenant: tuple[str, str]
) -> None:
    [first] = await aadd(aapi, "I like sushi", user_id="u", agent_id="a")
    before = await row_counts(db, tenant[0])
    [second] = await aadd(aapi, "I like sushi", user_id="u", agent_id="a")
    assert (second["id"], second["event"], second["data"]) == (
        first["id"],
        "NOOP",
        {"memory": "I like sushi"},
    )
    after = await row_counts(db, tenant[0])
    assert after["memories"] == before["memories"]
    assert after["memory_history"] == before["memory_history"]
    assert after["events"] == before["events"] + 1


async def test_concurrent_duplicates_all_get_the_one_id(
    aapi: httpx.AsyncClient, db: Database, tenant: tuple[str, str]
) -> None:
    # A retrying client may send the same add twice at once: every answer must carry the id.
    body = {"messages": msgs("same text"), "user_id": "u", "infer": False}
    responses = await asyncio.gather(*(aapi.post(ADD, json=body) for _ in range(12)))
    results = [r.json()["results"][0] for r in responses]
    assert sorted(r["event"] for r in results) == ["ADD"] + ["NOOP"] * 11
    ids = {r["id"] for r in results}
    assert len(ids) == 1
    assert None not in ids
    assert await row_counts(db, tenant[0]) == {
        "memories": 1,
        "memory_history": 1,
        "events": 12,
        "entities": 1,
    }


def test_duplicate_inside_one_request_is_noop(api: httpx.Client) -> None:
    results = add(api, "same", "other", "same", user_id="u")["results"]
    assert [r["event"] for r in results] == ["ADD", "ADD", "NOOP"]
    assert results[2]["id"] == results[0]["id"]
    assert list_v3(api, {"user_id": "u"})["count"] == 2


def test_same_text_in_another_scope_is_a_new_memory(api: httpx.Client) -> None:
    a = add(api, "I like sushi", user_id="u1")["results"][0]
    b = add(api, "I like sushi", user_id="u2")["results"][0]
    c = add(api, "I like sushi", user_id="u1", run_id="r1")["results"][0]
    assert a["event"] == b["event"] == c["event"] == "ADD"
    assert len({a["id"], b["id"], c["id"]}) == 3


def test_v3_add_accepts_a_bare_string_and_a_single_message_object(api: httpx.Client) -> None:
    r = api.post(ADD, json={"messages": "plain string", "user_id": "u", "infer": False})
    assert r.status_code == 200, r.text
    assert r.json()["results"][0]["data"]["memory"] == "plain string"
    r = api.post(ADD, json={"messages": {"role": "user", "content": "one object"}, "user_id": "u", "infer": False})
    assert r.status_code == 200, r.text
    assert r.json()["results"][0]["data"]["memory"] == "one object"


def test_add_event_is_retrievable_with_its_results(api: httpx.Client) -> None:
    body = add(api, "event check", user_id="u", metadata={"k": "v"})
    r = api.get(f"/v1/event/{body['event_id']}/")
    assert r.status_code == 200, r.text
    ev = r.json()
    assert ev["status"] == "SUCCEEDED"
    assert ev["event_type"] == "ADD"
    assert ev["payload"]["messages"] == msgs("event check")
    assert ev["payload"]["metadata"] == {"k": "v"}
    assert [(x["id"], x["event"], x["data"]["memory"]) for x in ev["results"]] == [
        (body["results"][0]["id"], "ADD", "event check")
    ]


# ----------------------------------------------------------------------------------------------
# infer=true: accepted as an asynchronous event that ends FAILED (extraction is not available yet)
# ----------------------------------------------------------------------------------------------
async def wait_for_event(aapi: httpx.AsyncClient, event_id: str) -> dict[str, Any]:
    """Poll GET /v1/event/{id}/ like a client would, until the event leaves PENDING/RUNNING."""
    deadline = time.monotonic() + 10
    while True:
        ev = (await aapi.get(f"/v1/event/{event_id}/")).json()
        if ev["status"] not in ("PENDING", "RUNNING") or time.monotonic() > deadline:
            return ev  # type: ignore[no-any-return]
        await asyncio.sleep(0.05)


# ----------------------------------------------------------------------------------------------
# v1 add shapes
# ----------------------------------------------------------------------------------------------
def test_v1_add_default_is_a_bare_array_of_event_items(api: httpx.Client) -> None:
    r = api.post("/v1/memories/", json={"messages": msgs("v1 default"), "user_id": "u", "infer": False})
    assert r.status_code == 200, r.text
    body = r.json()
    assert isinstance(body, list)
    assert len(body) == 1
    assert set(body[0]) == {"message", "status", "event_id"}
    assert body[0]["status"] == "SUCCEEDED"  # infer=false is written before the answer
    uuid.UUID(body[0]["event_id"])
    # the memory was stored
    assert [m["memory"] for m in list_v3(api, {"user_id": "u"})["results"]] == ["v1 default"]


def test_v1_add_output_format_v11_wraps_results_and_relations(api: httpx.Client) -> None:
    r = api.post(
        "/v1/memories/",
        json={
            "messages": msgs("v1.1"),
            "user_id": "u",
            "infer": False,
            "output_format": "v1.1",
            "async_mode": True,
        },
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) == {"results", "relations"}
    assert body["relations"] == []
    assert set(body["results"][0]) == {"message", "status", "event_id"}


def test_v1_add_sync_mode_returns_memory_events(api: httpx.Client) -> None:
    payload = {"messages": msgs("sync one", "sync two"), "user_id": "u", "infer": False, "async_mode": False}
    r = api.post("/v1/memories/", json=payload)
    assert r.status_code == 200, r.text
    body = r.json()
    assert isinstance(body, list)
    for item, expected in zip(body, ["sync one", "sync two"], strict=True):
        assert set(item) >= {"id", "event", "memory", "data"}
        assert item["event"] == "ADD"
        assert item["memory"] == item["data"]["memory"] == expected
        assert get_memory(api, item["id"])["memory"] == expected
    # the same again: NOOP with the same ids
    again = api.post("/v1/memories/", json=payload | {"output_format": "v1.1"}).json()
    assert again["relations"] == []
    assert [(x["id"], x["event"]) for x in again["results"]] == [(x["id"], "NOOP") for x in body]


def test_v3_list_route_with_messages_acts_as_an_add(api: httpx.Client) -> None:
    r = api.post(
        "/v3/memories/",
        json={
            "messages": msgs("pre-release add"),
            "user_id": "u",
            "infer": False,
            "metadata": {"via": "v3-list"},
            "categories": ["misc"],
        },
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "SUCCEEDED"
    mem = get_memory(api, body["results"][0]["id"])
    assert mem["memory"] == "pre-release add"
    assert mem["user_id"] == "u"
    assert mem["metadata"] == {"via": "v3-list"}
    assert mem["categories"] == ["misc"]


async def test_v3_list_route_with_invalid_add_body_is_an_add_400(
    aapi: httpx.AsyncClient, db: Database, tenant: tuple[str, str]
) -> None:
    body = {"messages": msgs("x"), "user_id": "u", "infer": False, "metadata": "no"}
    r = await aapi.post("/v3/memories/", json=body)
    assert r.status_code == 400, r.text
    assert r.json()["error"] == "400 Bad Request"
    assert (await row_counts(db, tenant[0]))["memories"] == 0


# ----------------------------------------------------------------------------------------------
# bad input: 400 in the add shape, nothing written
# ----------------------------------------------------------------------------------------------
BAD_BODIES: dict[str, Any] = {
    "no entity id": {"messages": msgs("x")},
    "blank entity id": {"messages": msgs("x"), "user_id": "  "},
    "wildcard entity id": {"messages": msgs("x"), "user_id": "*"},
    "missing messages": {"user_id": "u"},
    "messages null": {"user_id": "u", "messages": None},
    "messages a number": {"user_id": "u", "messages": 42},
    "message content a number": {"user_id": "u", "messages": [{"role": "user", "content": 42}]},
    "message without content": {"user_id": "u", "messages": [{"role": "user"}]},
    "list of numbers": {"user_id": "u", "messages": [1, 2]},
    "empty messages": {"user_id": "u", "messages": []},
    "empty string": {"user_id": "u", "messages": ""},
    "blank content": {"user_id": "u", "messages": msgs("   ")},
    "invalid expiration_date": {"user_id": "u", "messages": msgs("x"), "expiration_date": "next tuesday"},
    "impossible expiration_date": {"user_id": "u", "messages": msgs("x"), "expiration_date": "2030-02-30"},
    "invalid timestamp": {"user_id": "u", "messages": msgs("x"), "timestamp": "yesterday"},
    "boolean timestamp": {"user_id": "u", "messages": msgs("x"), "timestamp": True},
    "huge timestamp": {"user_id": "u", "messages": msgs("x"), "timestamp": 10**20},
    "NUL in content": {"user_id": "u", "messages": msgs("a\x00b")},
    "NUL in metadata key": {"user_id": "u", "messages": msgs("x"), "metadata": {"k\x00": "v"}},
    "NUL in user_id": {"user_id": "u\x00", "messages": msgs("x")},
    "metadata a string": {"user_id": "u", "messages": msgs("x"), "metadata": "source=email"},
    "metadata a list": {"user_id": "u", "messages": msgs("x"), "metadata": [1]},
    "invalid filters": {"messages": msgs("x"), "filters": {"bogus": 1}},
    "body not an object": ["not", "an", "object"],
}


def assert_add_400(r: httpx.Response) -> None:
    assert r.status_code == 400, r.text
    assert r.headers["content-type"].startswith("application/json")
    body = r.json()
    assert body["error"] == "400 Bad Request"
    assert isinstance(body["details"]["message"], str)
    assert "Invalid input data" in body["details"]["message"]
    assert isinstance(body["detail"], str)
    assert body["detail"]


@pytest.mark.parametrize("path", [ADD, "/v1/memories/"])
@pytest.mark.parametrize("case", list(BAD_BODIES))
async def test_bad_add_input_is_a_400_in_the_add_shape_and_writes_nothing(
    aapi: httpx.AsyncClient, db: Database, tenant: tuple[str, str], path: str, case: str
) -> None:
    payload = BAD_BODIES[case]
    if isinstance(payload, dict):
        payload = {"infer": False, **payload}
    await aadd(aapi, "already there", user_id="u")
    before = await row_counts(db, tenant[0])
    assert_add_400(await aapi.post(path, json=payload))
    assert await row_counts(db, tenant[0]) == before


@pytest.mark.parametrize("path", [ADD, "/v1/memories/"])
@pytest.mark.parametrize("raw", [b'{"user_id": "u", "messages": [', b"", b"not json"])
async def test_invalid_json_is_a_400_in_the_add_shape(
    aapi: httpx.AsyncClient, db: Database, tenant: tuple[str, str], path: str, raw: bytes
) -> None:
    before = await row_counts(db, tenant[0])
    r = await aapi.post(path, content=raw, headers={"Content-Type": "application/json"})
    assert_add_400(r)
    assert await row_counts(db, tenant[0]) == before


async def test_bad_infer_true_add_records_no_event(
    aapi: httpx.AsyncClient, db: Database, tenant: tuple[str, str]
) -> None:
    r = await aapi.post(ADD, json={"messages": msgs("x")})  # infer=true and no entity id
    assert_add_400(r)
    assert await row_counts(db, tenant[0]) == {"memories": 0, "memory_history": 0, "events": 0, "entities": 0}


def test_expiration_date_is_stored_as_a_date(api: httpx.Client) -> None:
    future = (date.today() + timedelta(days=30)).isoformat()
    mid = add(api, "expires later", user_id="u", expiration_date=future)["results"][0]["id"]
    assert get_memory(api, mid)["expiration_date"] == future
