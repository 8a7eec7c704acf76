"""Feedback (stored per memory and member, null removes it, listed by GET /v1/feedback/), GET /v1/stats/ and
GET /v1/entities/filters/ - each scoped to the key's project."""

from __future__ import annotations

from collections.abc import Callable

import httpx

from tests.api.helpers import add_verbatim

SOME_ID = "00000000-0000-4000-8000-000000000000"


def test_feedback_is_upserted_listed_and_removed(api: httpx.Client) -> None:
    mid = add_verbatim(api, "Alice likes tea.")[0]
    r = api.post("/v1/feedback/", json={"memory_id": mid, "feedback": "negative", "feedback_reason": "wrong"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["message"] == "Feedback recorded"
    assert (body["memory_id"], body["feedback"], body["feedback_reason"]) == (mid, "NEGATIVE", "wrong")
    again = api.post("/v1/feedback/", json={"memory_id": mid, "feedback": "POSITIVE", "feedback_reason": None})
    assert again.json()["id"] == body["id"]  # one feedback per memory and member
    listed = api.get("/v1/feedback/", params={"memory_id": mid}).json()
    assert [(f["feedback"], f["feedback_reason"]) for f in listed["results"]] == [("POSITIVE", None)]
    removed = api.post("/v1/feedback/", json={"memory_id": mid, "feedback": None, "feedback_reason": None})
    assert removed.json()["message"] == "Feedback removed"
    assert api.get("/v1/feedback/").json() == {"count": 0, "results": []}
    missing_key = api.post("/v1/feedback/", json={"memory_id": mid})  # TS omits undefined keys: missing = null
    assert missing_key.status_code == 200


def test_feedback_errors(api: httpx.Client) -> None:
    mid = add_verbatim(api, "Alice likes tea.")[0]
    assert api.post("/v1/feedback/", json={"memory_id": mid, "feedback": "MEH"}).status_code == 400
    assert api.post("/v1/feedback/", json={"memory_id": "nope", "feedback": "POSITIVE"}).status_code == 400
    r = api.post("/v1/feedback/", json={"memory_id": SOME_ID, "feedback": "POSITIVE"})
    assert r.status_code == 404
    assert r.json()["error"] == "Memory not found!"


def test_stats_and_filters(api: httpx.Client) -> None:
    add_verbatim(api, "a1", "a2", user_id="alice", categories=["food"])
    add_verbatim(api, "b1", user_id="bob", agent_id="bot")
    stats = api.get("/v1/stats/").json()
    assert stats["total_memories"] == 3
    assert stats["total_add_events"] == 2
    assert stats["total_users_with_memories"] == 2
    assert stats["total_agents_with_memories"] == 1
    assert stats["memories_per_user"] == 1
    assert all(isinstance(v, int) for v in stats.values())
    f = api.get("/v1/entities/filters/").json()
    assert f["users"] == ["alice", "bob"]
    assert f["categories"] == ["food"]
    assert "ADD" in f["event_type"]
    params = {p["name"]: p for p in f["parameters"]}
    assert [o["value"] for o in params["agent_id"]["options"]] == ["bot"]


def test_another_project_sees_none_of_it(
    api: httpx.Client, live_server: str, make_tenant: Callable[[], tuple[str, str]]
) -> None:
    mid = add_verbatim(api, "Alice likes tea.", categories=["food"])[0]
    assert api.post("/v1/feedback/", json={"memory_id": mid, "feedback": "POSITIVE"}).is_success
    _, key = make_tenant()
    with httpx.Client(base_url=live_server, headers={"Authorization": f"Token {key}"}) as other:
        r = other.post("/v1/feedback/", json={"memory_id": mid, "feedback": "VERY_NEGATIVE"})
        assert r.status_code == 404
        assert other.get("/v1/feedback/", params={"memory_id": mid}).json()["count"] == 0
        assert other.get("/v1/stats/").json()["total_memories"] == 0
        f = other.get("/v1/entities/filters/").json()
        assert (f["users"], f["categories"]) == ([], [])
    assert api.get("/v1/feedback/").json()["results"][0]["feedback"] == "POSITIVE"
