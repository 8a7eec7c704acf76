"""One memory over raw HTTP: get, update, delete, history, delete-all (contract §2.4, §3)."""

from __future__ import annotations

import hashlib
import json
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from memserver.storage.db import Database
from tests.api.helpers import add_verbatim as add
from tests.api.helpers import assert_error

MEMORY_KEYS = {
    "id",
    "memory",
    "user_id",
    "agent_id",
    "app_id",
    "run_id",
    "session_id",
    "hash",
    "metadata",
    "categories",
    "immutable",
    "expiration_date",
    "created_at",
    "updated_at",
    "structured_attributes",
}
HISTORY_KEYS = {
    "id",
    "memory_id",
    "input",
    "old_memory",
    "new_memory",
    "user_id",
    "agent_id",
    "app_id",
    "session_id",
    "categories",
    "event",
    "metadata",
    "created_at",
    "updated_at",
}
NOT_A_UUID = "not-a-uuid"


def get(api: httpx.Client, memory_id: str) -> dict[str, Any]:
    r = api.get(f"/v1/memories/{memory_id}/")
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def md5(s: str) -> str:
    return hashlib.md5(s.encode()).hexdigest()


def aware(value: str) -> datetime:
    ts = datetime.fromisoformat(value)
    assert ts.tzinfo is not None, f"{value!r} has no UTC offset"
    return ts


# ----------------------------------------------------------------------------------------------
# GET /v1/memories/{id}/
# ----------------------------------------------------------------------------------------------
def test_get_returns_every_field_of_the_memory_object(api: httpx.Client) -> None:
    (mid,) = add(
        api,
        "I moved to Austin last month.",
        user_id="alice",
        agent_id="helper",
        app_id="web",
        run_id="run-1",
        metadata={"source": "onboarding", "nested": {"camelCase": 1}},
        categories=["travel"],
        expiration_date="2099-12-31",
    )
    m = get(api, mid)
    assert set(m) >= MEMORY_KEYS
    assert m["id"] == mid
    assert m["memory"] == "I moved to Austin last month."
    assert (m["user_id"], m["agent_id"], m["app_id"]) == ("alice", "helper", "web")
    assert m["run_id"] == m["session_id"] == "run-1"
    assert m["hash"] == md5("I moved to Austin last month.")
    assert m["metadata"] == {"source": "onboarding", "nested": {"camelCase": 1}}
    assert m["categories"] == ["travel"]
    assert m["immutable"] is False
    assert m["expiration_date"] == "2099-12-31"
    created, updated = aware(m["created_at"]), aware(m["updated_at"])
    assert abs((datetime.now(UTC) - created).total_seconds()) < 120
    assert updated >= created
    sa = m["structured_attributes"]
    assert sa["year"] == created.astimezone(UTC).year
    assert set(sa) >= {
        "day",
        "hour",
        "month",
        "minute",
        "quarter",
        "is_weekend",
        "day_of_week",
        "day_of_year",
    }


def test_get_of_a_user_only_memory_has_null_other_ids_and_empty_defaults(api: httpx.Client) -> None:
    (mid,) = add(api, "Plain fact.", user_id="bob")
    m = get(api, mid)
    assert m["user_id"] == "bob"
    assert m["agent_id"] is None
    assert m["app_id"] is None
    assert m["run_id"] is None
    assert m["session_id"] is None
    assert m["metadata"] is None
    assert m["categories"] == []
    assert m["expiration_date"] is None


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
def test_non_uuid_memory_id_is_400(api: httpx.Client, method: str) -> None:
    r = api.request(method, f"/v1/memories/{NOT_A_UUID}/", json={"text": "x"} if method == "PUT" else None)
    assert_error(r, 400, error="memory_id should be a valid UUID")


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
def test_unknown_uuid_is_404(api: httpx.Client, method: str) -> None:
    r = api.request(method, f"/v1/memories/{uuid.uuid4()}/", json={"text": "x"} if method == "PUT" else None)
    assert_error(r, 404, error="Memory not found!")


def test_expired_memory_is_still_returned_by_get(api: httpx.Client) -> None:
    (mid,) = add(api, "An old coupon code.", expiration_date="2020-01-01")
    listed = api.post("/v3/memories/", json={"filters": {"user_id": "alice"}}).json()
    assert listed["count"] == 0  # it really is expired: lists hide it
    m = get(api, mid)
    assert m["memory"] == "An old coupon code."
    assert m["expiration_date"] == "2020-01-01"


def test_get_ignores_slashes_and_extra_params_and_never_redirects(api: httpx.Client) -> None:
    (mid,) = add(api, "Slashes do not matter.")
    r = api.get(f"/v1/memories/{mid}")
    assert r.status_code == 200
    assert r.json()["id"] == mid
    # old clients add their org_id/project_id (they name the key's own project), the CLI adds source
    ping = api.get("/v1/ping/").json()
    extra = {"org_id": ping["org_id"], "project_id": ping["project_id"], "source": "CLI"}
    assert api.get(f"/v1/memories/{mid}/", params=extra).json()["id"] == mid
    r = api.put(f"/v1/memories/{mid}/", params=extra, json={"text": "Still fine.", "org_id": ping["org_id"]})
    assert r.status_code == 200, r.text
    assert get(api, mid)["memory"] == "Still fine."


# ----------------------------------------------------------------------------------------------
# PUT /v1/memories/{id}/
# ----------------------------------------------------------------------------------------------
def test_update_text_changes_memory_hash_and_search(api: httpx.Client) -> None:
    mid, other = add(api, "I like tea.", "My sister lives in Berlin.")
    before = get(api, mid)
    r = api.put(f"/v1/memories/{mid}/", json={"text": "I prefer strong black coffee in the morning."})
    assert r.status_code == 200, r.text
    out = r.json()
    assert set(out) >= MEMORY_KEYS
    assert out["memory"] == "I prefer strong black coffee in the morning."
    assert out["hash"] == md5("I prefer strong black coffee in the morning.")
    now = get(api, mid)  # visible immediately
    assert now["memory"] == out["memory"]
    assert now["hash"] == out["hash"]
    assert aware(now["updated_at"]) > aware(before["updated_at"])
    assert now["created_at"] == before["created_at"]
    hits = api.post(
        "/v3/memories/search/",
        json={"query": "coffee in the morning", "filters": {"user_id": "alice"}, "threshold": 0},
    ).json()["results"]
    assert hits[0]["id"] == mid
    assert hits[0]["memory"] == "I prefer strong black coffee in the morning."
    assert "I like tea." not in [h["memory"] for h in hits]
    assert get(api, other)["memory"] == "My sister lives in Berlin."


def test_update_metadata_alone_keeps_text(api: httpx.Client) -> None:
    (mid,) = add(api, "Keep this text.", metadata={"a": 1})
    r = api.put(f"/v1/memories/{mid}/", json={"metadata": {"b": 2, "nested": {"x": [1, 2]}}})
    assert r.status_code == 200, r.text
    m = get(api, mid)
    assert m["memory"] == "Keep this text."
    assert m["hash"] == md5("Keep this text.")
    assert m["metadata"] == {"b": 2, "nested": {"x": [1, 2]}}


def test_update_expiration_date_sets_and_null_clears(api: httpx.Client) -> None:
    (mid,) = add(api, "A coupon.")
    r = api.put(f"/v1/memories/{mid}/", json={"expiration_date": "2031-05-06"})
    assert r.status_code == 200, r.text
    assert get(api, mid)["expiration_date"] == "2031-05-06"
    r = api.put(f"/v1/memories/{mid}/", json={"expiration_date": None})
    assert r.status_code == 200, r.text
    m = get(api, mid)
    assert m["expiration_date"] is None
    assert m["memory"] == "A coupon."


def test_clearing_expiry_makes_an_expired_memory_listable_again(api: httpx.Client) -> None:
    (mid,) = add(api, "Expired already.", expiration_date="2020-01-01")
    assert api.post("/v3/memories/", json={"filters": {"user_id": "alice"}}).json()["count"] == 0
    assert (
        api.put(f"/v1/memories/{mid}/", json={"text": "Expired already.", "expiration_date": None}).status_code == 200
    )
    listed = api.post("/v3/memories/", json={"filters": {"user_id": "alice"}}).json()
    assert [m["id"] for m in listed["results"]] == [mid]


@pytest.mark.parametrize(
    ("timestamp", "expected"),
    [
        (1700000000, datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC)),
        (1700000000.5, datetime(2023, 11, 14, 22, 13, 20, 500000, tzinfo=UTC)),
        ("2024-07-26T10:29:36-07:00", datetime(2024, 7, 26, 17, 29, 36, tzinfo=UTC)),
        ("2024-07-26T17:29:36Z", datetime(2024, 7, 26, 17, 29, 36, tzinfo=UTC)),
    ],
)
def test_update_timestamp_sets_created_at(api: httpx.Client, timestamp: Any, expected: datetime) -> None:
    (mid,) = add(api, "When did this happen?")
    r = api.put(f"/v1/memories/{mid}/", json={"timestamp": timestamp})
    assert r.status_code == 200, r.text
    assert aware(r.json()["created_at"]) == expected
    m = get(api, mid)
    assert aware(m["created_at"]) == expected
    assert m["memory"] == "When did this happen?"
    assert m["structured_attributes"]["year"] == expected.year


def test_update_with_invalid_timestamp_is_400_and_changes_nothing(api: httpx.Client) -> None:
    (mid,) = add(api, "Stable.")
    before = get(api, mid)
    assert_error(api.put(f"/v1/memories/{mid}/", json={"timestamp": "yesterday-ish"}), 400)
    assert get(api, mid) == before


@pytest.mark.parametrize("key", ["data", "message"])
def test_update_accepts_legacy_text_keys(api: httpx.Client, key: str) -> None:
    (mid,) = add(api, "Old wording.")
    r = api.put(f"/v1/memories/{mid}/", json={key: "New wording."})
    assert r.status_code == 200, r.text
    assert get(api, mid)["memory"] == "New wording."


@pytest.mark.parametrize("body", [{}, {"text": None}, {"text": "   "}, {"org_id": "ORG", "project_id": "PROJECT"}])
def test_update_with_nothing_to_change_is_400(api: httpx.Client, body: dict[str, Any]) -> None:
    (mid,) = add(api, "Untouched.")
    before = get(api, mid)
    ping = api.get("/v1/ping/").json()  # naming the key's own project changes nothing
    body = {k: ping["org_id"] if v == "ORG" else ping["project_id"] if v == "PROJECT" else v for k, v in body.items()}
    assert_error(api.put(f"/v1/memories/{mid}/", json=body), 400)
    assert get(api, mid) == before


def test_update_without_a_body_is_400(api: httpx.Client) -> None:
    (mid,) = add(api, "Untouched.")
    assert_error(api.put(f"/v1/memories/{mid}/"), 400)
    assert_error(
        api.put(f"/v1/memories/{mid}/", content=b"{not json", headers={"Content-Type": "application/json"}),
        400,
    )
    assert get(api, mid)["memory"] == "Untouched."


def test_immutable_memory_refuses_update_and_stays_unchanged(api: httpx.Client) -> None:
    (mid,) = add(api, "Carved in stone.", immutable=True, metadata={"k": "v"})
    before = get(api, mid)
    assert before["immutable"] is True
    for body in ({"text": "Changed"}, {"metadata": {"k": "other"}}, {"expiration_date": "2030-01-01"}):
        r = api.put(f"/v1/memories/{mid}/", json=body)
        assert_error(r, 400, detail="immutable")
    assert get(api, mid) == before
    history = api.get(f"/v1/memories/{mid}/history/").json()
    assert [h["event"] for h in history] == ["ADD"]


def test_update_to_text_of_another_memory_in_the_same_scope_is_409(api: httpx.Client) -> None:
    first, second = add(api, "Fact one.", "Fact two.")
    r = api.put(f"/v1/memories/{second}/", json={"text": "Fact one."})
    assert_error(r, 409)
    assert get(api, second)["memory"] == "Fact two."
    assert get(api, first)["memory"] == "Fact one."
    assert [h["event"] for h in api.get(f"/v1/memories/{second}/history/").json()] == ["ADD"]


def test_same_text_in_another_scope_is_allowed(api: httpx.Client) -> None:
    (a,) = add(api, "Shared wording.", user_id="alice")
    (b,) = add(api, "Other wording.", user_id="bob")
    r = api.put(f"/v1/memories/{b}/", json={"text": "Shared wording."})
    assert r.status_code == 200, r.text
    assert get(api, a)["memory"] == get(api, b)["memory"] == "Shared wording."


def test_update_with_its_own_current_text_is_fine(api: httpx.Client) -> None:
    (mid,) = add(api, "Same again.")
    r = api.put(f"/v1/memories/{mid}/", json={"text": "Same again.", "metadata": {"touched": True}})
    assert r.status_code == 200, r.text
    assert get(api, mid)["metadata"] == {"touched": True}


# ----------------------------------------------------------------------------------------------
# DELETE /v1/memories/{id}/
# ----------------------------------------------------------------------------------------------
def test_delete_then_get_is_404(api: httpx.Client) -> None:
    mid, keep = add(api, "Delete me.", "Keep me.")
    r = api.delete(f"/v1/memories/{mid}/")
    assert r.status_code == 200
    assert isinstance(r.json()["message"], str)
    assert "cascade_count" not in r.json()
    assert_error(api.get(f"/v1/memories/{mid}/"), 404)
    assert_error(api.delete(f"/v1/memories/{mid}/"), 404)
    assert get(api, keep)["memory"] == "Keep me."


async def test_delete_linked_cascades_to_superseded_memories(
    api: httpx.Client, aapi: httpx.AsyncClient, db: Database
) -> None:
    new, old, older, unrelated = add(api, "Lives in Austin.", "Lives in Denver.", "Lives in Boston.", "Likes jazz.")
    async with db.transaction() as conn:  # the chain an inferred UPDATE would leave: older -> old -> new
        await conn.execute(text("UPDATE memories SET replaced_by = :n WHERE id = :o"), {"n": new, "o": old})
        await conn.execute(text("UPDATE memories SET replaced_by = :n WHERE id = :o"), {"n": old, "o": older})
    r = await aapi.delete(f"/v1/memories/{new}/", params={"delete_linked": "true"})
    assert r.status_code == 200, r.text
    assert r.json()["cascade_count"] == 2
    for mid in (new, old, older):
        assert (await aapi.get(f"/v1/memories/{mid}/")).status_code == 404
    assert (await aapi.get(f"/v1/memories/{unrelated}/")).json()["memory"] == "Likes jazz."


async def test_delete_linked_of_a_deleted_memory_is_404_and_deletes_nothing(
    api: httpx.Client, aapi: httpx.AsyncClient, db: Database
) -> None:
    new, old = add(api, "Works at Acme.", "Works at Initech.")
    async with db.transaction() as conn:
        await conn.execute(text("UPDATE memories SET replaced_by = :n WHERE id = :o"), {"n": new, "o": old})
    assert (await aapi.delete(f"/v1/memories/{new}/")).status_code == 200
    assert_error(await aapi.delete(f"/v1/memories/{new}/?delete_linked=true"), 404)
    assert (await aapi.get(f"/v1/memories/{old}/")).json()["memory"] == "Works at Initech."


def test_delete_linked_without_links_reports_zero(api: httpx.Client) -> None:
    (mid,) = add(api, "Alone.")
    r = api.delete(f"/v1/memories/{mid}/?delete_linked=true")
    assert r.status_code == 200
    assert r.json()["cascade_count"] == 0
    assert api.get(f"/v1/memories/{mid}/").status_code == 404


# ----------------------------------------------------------------------------------------------
# GET /v1/memories/{id}/history/
# ----------------------------------------------------------------------------------------------
def test_history_has_an_add_entry_right_after_add(api: httpx.Client) -> None:
    messages = [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "I am allergic to peanuts."},
    ]
    r = api.post(
        "/v3/memories/add/",
        json={"messages": messages, "user_id": "alice", "agent_id": "bot", "infer": False},
    )
    mid = r.json()["results"][0]["id"]
    history = api.get(f"/v1/memories/{mid}/history/")
    assert history.status_code == 200
    entries = history.json()
    assert isinstance(entries, list)
    assert len(entries) == 1
    (h,) = entries
    assert set(h) >= HISTORY_KEYS
    uuid.UUID(h["id"])
    assert h["memory_id"] == mid
    assert h["event"] == "ADD"
    assert "old_memory" in h
    assert h["old_memory"] is None
    assert h["new_memory"] == "I am allergic to peanuts."
    assert h["input"] == messages
    assert (h["user_id"], h["agent_id"]) == ("alice", "bot")
    aware(h["created_at"])
    aware(h["updated_at"])


def test_history_records_update_and_delete_oldest_first(api: httpx.Client) -> None:
    (mid,) = add(api, "Version one.")
    assert api.put(f"/v1/memories/{mid}/", json={"text": "Version two."}).status_code == 200
    assert api.put(f"/v1/memories/{mid}/", json={"text": "Version three."}).status_code == 200
    assert api.delete(f"/v1/memories/{mid}/").status_code == 200
    r = api.get(f"/v1/memories/{mid}/history/")  # still readable after the memory is gone
    assert r.status_code == 200
    entries = r.json()
    assert [h["event"] for h in entries] == ["ADD", "UPDATE", "UPDATE", "DELETE"]
    assert [(h["old_memory"], h["new_memory"]) for h in entries[:3]] == [
        (None, "Version one."),
        ("Version one.", "Version two."),
        ("Version two.", "Version three."),
    ]
    assert entries[3]["old_memory"] == "Version three."
    assert "new_memory" in entries[3]
    times = [aware(h["created_at"]) for h in entries]
    assert times == sorted(times)
    assert all(h["memory_id"] == mid for h in entries)


def test_history_of_unknown_or_invalid_id(api: httpx.Client) -> None:
    assert_error(api.get(f"/v1/memories/{uuid.uuid4()}/history/"), 404)
    assert_error(api.get(f"/v1/memories/{NOT_A_UUID}/history/"), 400, error="memory_id should be a valid UUID")


# ----------------------------------------------------------------------------------------------
# DELETE /v1/memories/?filters (delete all)
# ----------------------------------------------------------------------------------------------
@pytest.fixture
def population(api: httpx.Client) -> dict[str, str]:
    """Memories in several scopes; name -> id."""
    ids: dict[str, str] = {}
    ids["alice"] = add(api, "alice only", user_id="alice")[0]
    ids["alice_meta"] = add(api, "alice with metadata", user_id="alice", metadata={"kind": "pref"})[0]
    ids["alice_bot"] = add(api, "alice and bot", user_id="alice", agent_id="bot")[0]
    ids["bob"] = add(api, "bob only", user_id="bob")[0]
    ids["bot"] = add(api, "bot only", agent_id="bot")[0]
    ids["app"] = add(api, "app only", app_id="shop")[0]
    ids["run"] = add(api, "run only", run_id="r1")[0]
    ids["bob_run"] = add(api, "bob in run", user_id="bob", run_id="r1")[0]
    return ids


def surviving(api: httpx.Client, ids: dict[str, str]) -> set[str]:
    return {name for name, mid in ids.items() if api.get(f"/v1/memories/{mid}/").status_code == 200}


@pytest.mark.parametrize(
    ("query", "deleted"),
    [
        ({"user_id": "alice"}, {"alice", "alice_meta", "alice_bot"}),
        ({"agent_id": "bot"}, {"alice_bot", "bot"}),
        ({"app_id": "shop"}, {"app"}),
        ({"run_id": "r1"}, {"run", "bob_run"}),
        ({"user_id": "alice", "agent_id": "bot"}, {"alice_bot"}),
        ({"user_id": "bob", "run_id": "r1"}, {"bob_run"}),
        ({"user_id": "*"}, {"alice", "alice_meta", "alice_bot", "bob", "bob_run"}),
        ({"agent_id": "*"}, {"alice_bot", "bot"}),
        ({"user_id": "bob", "run_id": "*"}, {"bob_run"}),
        ({"user_id": "alice", "metadata": json.dumps({"kind": "pref"})}, {"alice_meta"}),
        (
            {"user_id": "*", "agent_id": "*", "app_id": "*", "run_id": "*"},
            {"alice", "alice_meta", "alice_bot", "bob", "bot", "app", "run", "bob_run"},
        ),
    ],
)
def test_delete_all_deletes_exactly_the_matching_memories(
    api: httpx.Client, population: dict[str, str], query: dict[str, str], deleted: set[str]
) -> None:
    r = api.delete("/v1/memories/", params=query)
    assert r.status_code == 200, r.text
    assert isinstance(r.json()["message"], str)
    assert surviving(api, population) == set(population) - deleted
    for name in deleted:
        events = [h["event"] for h in api.get(f"/v1/memories/{population[name]}/history/").json()]
        assert events == ["ADD", "DELETE"]


@pytest.mark.parametrize("query", [{}, {"user_id": ""}, {"org_id": "ORG", "project_id": "PROJECT"}, {"metadata": "{}"}])
def test_delete_all_without_a_filter_is_400_and_deletes_nothing(
    api: httpx.Client, population: dict[str, str], query: dict[str, str]
) -> None:
    ping = api.get("/v1/ping/").json()  # naming the key's own project is no filter
    query = {k: ping["org_id"] if v == "ORG" else ping["project_id"] if v == "PROJECT" else v for k, v in query.items()}
    assert_error(api.delete("/v1/memories/", params=query), 400)
    assert surviving(api, population) == set(population)


def test_delete_all_with_malformed_metadata_is_400(api: httpx.Client, population: dict[str, str]) -> None:
    assert_error(api.delete("/v1/memories/", params={"user_id": "alice", "metadata": "{not json"}), 400)
    assert surviving(api, population) == set(population)


def test_delete_all_for_an_unknown_user_is_200(api: httpx.Client, population: dict[str, str]) -> None:
    r = api.delete("/v1/memories", params={"user_id": "nobody"})
    assert r.status_code == 200
    assert isinstance(r.json()["message"], str)
    assert surviving(api, population) == set(population)


# ----------------------------------------------------------------------------------------------
# Error bodies and path spellings across the single-memory, bulk, entity and event routes
# ----------------------------------------------------------------------------------------------
UNKNOWN = "00000000-0000-4000-8000-000000000000"


@pytest.mark.parametrize(
    ("method", "path", "body", "status"),
    [
        ("GET", f"/v1/memories/{NOT_A_UUID}/", None, 400),
        ("GET", f"/v1/memories/{UNKNOWN}/", None, 404),
        ("PUT", f"/v1/memories/{UNKNOWN}/", {"text": "x"}, 404),
        ("PUT", f"/v1/memories/{UNKNOWN}/", {"text": ["not", "a", "string"]}, 400),
        ("PUT", f"/v1/memories/{UNKNOWN}/", {"expiration_date": "tomorrow"}, 400),
        ("PUT", f"/v1/memories/{UNKNOWN}/", {"metadata": "not an object"}, 400),
        ("POST", f"/v1/memories/{UNKNOWN}/", {"text": "x"}, 405),
        ("DELETE", f"/v1/memories/{UNKNOWN}/", None, 404),
        ("DELETE", f"/v1/memories/{UNKNOWN}/?delete_linked=maybe", None, 400),
        ("GET", f"/v1/memories/{UNKNOWN}/history/", None, 404),
        ("GET", f"/v1/memories/{NOT_A_UUID}/history", None, 400),
        ("DELETE", "/v1/memories/", None, 400),
        ("PUT", "/v1/batch/", {}, 400),
        ("PUT", "/v1/batch/", {"memories": [{"memory_id": UNKNOWN, "text": "x"}]}, 404),
        ("DELETE", "/v1/batch/", None, 400),
        ("DELETE", "/v1/batch/", {"memories": [{"memory_id": UNKNOWN}]}, 404),
        ("GET", "/v1/entities/?page=abc", None, 400),
        ("DELETE", "/v2/entities/robot/x/", None, 400),
        ("DELETE", "/v1/entities/user/abc/", None, 400),
        ("DELETE", "/v1/entities/user/123456789/", None, 404),
        ("POST", "/v1/users/", {}, 400),
        ("GET", "/v1/memories/robot/x/", None, 400),
        ("GET", "/v1/event/xyz/", None, 400),
        ("GET", f"/v1/event/{UNKNOWN}/", None, 404),
        ("GET", "/v1/events/?page=2", None, 404),
        ("GET", "/v1/memories/events/?limit=0", None, 400),
        ("GET", "/v1/memories/events/?page=2", None, 404),
    ],
)
def test_errors_are_json_with_detail_and_the_documented_status(
    api: httpx.Client, method: str, path: str, body: Any, status: int
) -> None:
    for spelling in (path, path.replace("/?", "?").rstrip("/")):
        r = api.request(method, spelling, json=body)
        assert_error(r, status)


def test_bad_json_is_a_json_400(api: httpx.Client) -> None:
    (mid,) = add(api, "Safe.")
    headers = {"Content-Type": "application/json"}
    for method, path in (("PUT", f"/v1/memories/{mid}/"), ("PUT", "/v1/batch/"), ("DELETE", "/v1/batch/")):
        assert_error(api.request(method, path, content=b'{"memories": [', headers=headers), 400)
    assert get(api, mid)["memory"] == "Safe."


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v1/memories/{id}"),
        ("GET", "/v1/memories/{id}/history"),
        ("GET", "/v1/memories/user/alice"),
        ("GET", "/v1/memories/events"),
        ("GET", "/v1/entities"),
        ("GET", "/v2/entities/user/alice"),
        ("GET", "/v1/events"),
        ("GET", "/v1/event/{event}"),
        ("DELETE", "/v1/memories?user_id=nobody"),
        ("DELETE", "/v2/entities/user/nobody"),
    ],
)
def test_success_bodies_are_json_for_both_spellings_without_redirects(
    api: httpx.Client, method: str, path: str
) -> None:
    r = api.post("/v3/memories/add/", json={"user_id": "alice", "infer": False, "messages": "A fact."})
    values = {"id": r.json()["results"][0]["id"], "event": r.json()["event_id"]}
    bare = path.format(**values)
    slashed = bare.replace("?", "/?") if "?" in bare else bare + "/"
    # TS sends Content-Type: application/json on bodiless GET/DELETE too
    bodies = []
    for p in (bare, slashed):
        resp = api.request(method, p, headers={"Content-Type": "application/json"})
        assert resp.status_code == 200, (p, resp.text)
        assert resp.headers["content-type"].startswith("application/json")
        bodies.append(resp.json())
    if method == "GET":
        assert bodies[0] == bodies[1]
