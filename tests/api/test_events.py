"""Events over raw HTTP: GET /v1/event/{id}/, /v1/events/ and /v1/memories/events/ (contract §2.4, §2.6)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import httpx
import pytest

from tests.api.helpers import assert_error

EVENT_KEYS = {
    "id",
    "event_type",
    "status",
    "payload",
    "metadata",
    "results",
    "created_at",
    "updated_at",
    "started_at",
    "completed_at",
    "latency",
    "graph_status",
    "error",
}


def add(api: httpx.Client, *texts: str, infer: bool = False, **fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"messages": [{"role": "user", "content": t} for t in texts], "infer": infer}
    body.setdefault("user_id", "alice")
    body.update(fields)
    r = api.post("/v3/memories/add/", json=body)
    assert r.status_code == 200, r.text
    out: dict[str, Any] = r.json()
    return out


def test_event_of_a_verbatim_add(api: httpx.Client) -> None:
    added = add(api, "I live in Lisbon.", "I work as a nurse.", metadata={"src": "form"})
    r = api.get(f"/v1/event/{added['event_id']}/")
    assert r.status_code == 200, r.text
    ev = r.json()
    assert set(ev) >= EVENT_KEYS
    assert ev["id"] == added["event_id"]
    assert ev["event_type"] == "ADD"
    assert ev["status"] == "SUCCEEDED"
    assert ev["error"] is None
    assert ev["payload"]["user_id"] == "alice"
    assert ev["payload"]["messages"][0]["content"] == "I live in Lisbon."
    assert [(x["id"], x["event"], x["data"]["memory"]) for x in ev["results"]] == [
        (x["id"], "ADD", x["data"]["memory"]) for x in added["results"]
    ]
    assert [x["data"]["memory"] for x in ev["results"]] == ["I live in Lisbon.", "I work as a nurse."]
    for mid in (x["id"] for x in ev["results"]):
        assert api.get(f"/v1/memories/{mid}/").status_code == 200
    for key in ("created_at", "updated_at", "started_at", "completed_at"):
        assert datetime.fromisoformat(ev[key]).tzinfo is not None
    assert isinstance(ev["latency"], int | float)
    assert ev["latency"] >= 0


def test_event_reports_duplicates_as_noop_with_the_existing_id(api: httpx.Client) -> None:
    first = add(api, "Same fact.")
    second = add(api, "Same fact.", "New fact.")
    ev = api.get(f"/v1/event/{second['event_id']}").json()
    assert [(x["event"], x["data"]["memory"]) for x in ev["results"]] == [
        ("NOOP", "Same fact."),
        ("ADD", "New fact."),
    ]
    assert ev["results"][0]["id"] == first["results"][0]["id"]


def test_unknown_event_is_404(api: httpx.Client) -> None:
    r = api.get(f"/v1/event/{uuid.uuid4()}/")
    assert r.status_code == 404
    assert r.json()["error"] == "Event not found or you don't have permission to access it."
    assert r.json()["detail"]


@pytest.mark.parametrize("bad", ["not-a-uuid", "123", "%20"])
def test_non_uuid_event_id_is_400(api: httpx.Client, bad: str) -> None:
    r = api.get(f"/v1/event/{bad}/")
    assert_error(r, 400)


def test_events_list_is_a_page_newest_first(api: httpx.Client) -> None:
    empty = api.get("/v1/events/").json()
    assert empty == {"count": 0, "next": None, "previous": None, "results": []}
    ids = [add(api, f"fact number {i}")["event_id"] for i in range(3)]
    r = api.get("/v1/events")
    assert r.status_code == 200
    body = r.json()
    assert body["count"] == 3
    assert [e["id"] for e in body["results"]] == ids[::-1]
    assert all(set(e) >= EVENT_KEYS for e in body["results"])
    page1 = api.get("/v1/events/?page=1&page_size=2").json()
    page2 = api.get("/v1/events/?page=2&page_size=2").json()
    assert [e["id"] for e in page1["results"] + page2["results"]] == ids[::-1]
    assert page1["next"]
    assert page1["previous"] is None
    assert page2["next"] is None
    assert page2["previous"]
    assert api.get("/v1/events/?page=3&page_size=2").status_code == 404


def test_memory_events_are_history_entries_paginated(api: httpx.Client) -> None:
    assert api.get("/v1/memories/events/").json()["count"] == 0
    a, b = (x["id"] for x in add(api, "One.", "Two.")["results"])
    assert api.put(f"/v1/memories/{a}/", json={"text": "One, changed."}).status_code == 200
    assert api.delete(f"/v1/memories/{b}/").status_code == 200
    r = api.get("/v1/memories/events/")
    assert r.status_code == 200
    body = r.json()
    assert body["count"] == 4
    assert body["next"] is None
    entries = body["results"]
    assert sorted(h["event"] for h in entries) == ["ADD", "ADD", "DELETE", "UPDATE"]
    assert {h["memory_id"] for h in entries} == {a, b}
    for h in entries:
        assert {"id", "memory_id", "input", "old_memory", "new_memory", "event", "created_at"} <= set(h)
    first = api.get("/v1/memories/events/?page=1&limit=3").json()
    second = api.get("/v1/memories/events", params={"page": 2, "limit": 3}).json()
    assert len(first["results"]) == 3
    assert first["next"]
    assert len(second["results"]) == 1
    assert second["next"] is None
    assert {h["id"] for h in first["results"] + second["results"]} == {h["id"] for h in entries}
    following = httpx.get(first["next"], headers=api.headers)
    assert following.status_code == 200
    assert [h["id"] for h in following.json()["results"]] == [h["id"] for h in second["results"]]
    assert api.get("/v1/memories/events/?page=3&limit=3").status_code == 404
