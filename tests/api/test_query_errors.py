"""The exact answer to bad query parameters: pagination, entity ids, metadata, dates, ids in paths.

Each route answers in its Mem0 shape (`message` on v1/v2 list, `error` elsewhere) with `detail`. The order
in which problems are found is pinned too: the key first, then FastAPI's own validation of the parameters,
then the route's checks in the order it makes them.
"""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from memserver.domain.limits import Limits

LIMITS = Limits()  # the server under test runs with the defaults
LONG = "u" * (LIMITS.max_entity_id_chars + 1)
TOO_LONG = f"user_id is longer than {LIMITS.max_entity_id_chars} characters (MEMSERVER_LIMITS__MAX_ENTITY_ID_CHARS)"
NOT_INT = "Input should be a valid integer, unable to parse string as an integer"
INVALID_KEY = "Invalid API key. Create one with `memserver keys create` and send it as `Authorization: Token <key>`."
ENTITY_REQUIRED = "One of the filters: app_id, user_id, agent_id, run_id is required!"
WEBHOOK = str(uuid.UUID(int=7))
MEMORY = str(uuid.UUID(int=8))
PAGE_AND_LIMIT = f"query.page: {NOT_INT}; query.limit: {NOT_INT}"
SIZE_200 = "page_size must be between 1 and 200"
U = {"filters": {"user_id": "u"}}

# (method, path, JSON body or None) -> (status, key of the route's shape, reason)
CASES: list[tuple[str, str, Any, int, str, str]] = [
    # v1 list: `message` shape; page and page_size only count when both are given
    ("GET", "/v1/memories/?page=x&user_id=u", None, 400, "message", f"query.page: {NOT_INT}"),
    ("GET", "/v1/memories/?page=x&limit=y&user_id=u", None, 400, "message", PAGE_AND_LIMIT),
    ("GET", "/v1/memories/?page=0&page_size=10&user_id=u", None, 404, "message", "Invalid page."),
    ("GET", "/v1/memories/?page=2&page_size=10&user_id=u", None, 404, "message", "Invalid page."),
    ("GET", "/v1/memories/?page=1&page_size=500&user_id=u", None, 400, "message", SIZE_200),
    ("GET", "/v1/memories/?page=1&page_size=0&user_id=u", None, 400, "message", SIZE_200),
    ("GET", "/v1/memories/?page=0&user_id=u", None, 200, "", ""),  # page alone is no page
    ("GET", "/v1/memories/?limit=500&user_id=u", None, 400, "message", "limit must be <= 200"),
    ("GET", "/v1/memories/?limit=0&user_id=u", None, 400, "message", "limit must be >= 1"),
    ("GET", "/v1/memories/?metadata=notjson&user_id=u", None, 400, "message", "metadata must be a JSON object or a "
     "Python dict literal: notjson is not a literal (only strings, numbers, True, False, None, dicts and lists) at "
     "character 0"),
    ("GET", "/v1/memories/?metadata=[1]&user_id=u", None, 400, "message", "metadata must be a JSON object"),
    ("GET", f"/v1/memories/?user_id={LONG}", None, 400, "message", TOO_LONG),
    ("GET", "/v1/memories/", None, 400, "message", ENTITY_REQUIRED),
    ("GET", "/v1/memories/?user_id=", None, 400, "message", ENTITY_REQUIRED),  # empty = absent
    ("GET", "/v1/memories/?user_id=u&show_expired=zz", None, 400, "message",
     "query.show_expired: Input should be a valid boolean, unable to interpret input"),
    # FastAPI's validation of the parameters comes before the route's own checks
    ("GET", f"/v1/memories/?user_id={LONG}&page=x", None, 400, "message", f"query.page: {NOT_INT}"),
    ("GET", f"/v1/memories/?user_id={LONG}&metadata=x", None, 400, "message", TOO_LONG),
    # v2 and v3 list: the query's page/page_size win over the body's
    ("POST", "/v2/memories/?page=x", {"filters": {"user_id": "u"}}, 400, "message", f"query.page: {NOT_INT}"),
    ("POST", "/v2/memories/", {**U, "page": 0, "page_size": 5}, 404, "message", "Invalid page."),
    ("POST", "/v2/memories/?page_size=300", {"filters": {"user_id": "u"}, "page": 1, "page_size": 5}, 400, "message",
     "page_size must be between 1 and 200"),
    ("POST", "/v2/memories/?page=1", {"filters": {"user_id": "u"}, "page": 0, "page_size": 5}, 200, "", ""),
    ("POST", "/v3/memories/", {"filters": {"user_id": "u"}, "page": 0}, 404, "error", "Invalid page."),
    ("POST", "/v3/memories/?page=1", {"filters": {"user_id": "u"}, "page": 0}, 200, "", ""),
    ("POST", "/v3/memories/?page=2", {"filters": {"user_id": "u"}}, 404, "error", "Invalid page."),
    ("POST", "/v3/memories/?page=x", {"filters": {"user_id": "u"}, "page": "y"}, 400, "error",
     f"query.page: {NOT_INT}; page: {NOT_INT}"),
    ("POST", "/v3/memories/", {"user_id": "u"}, 400, "error",
     'Entity ids must be given inside `filters` on this endpoint, e.g. {"filters": {"user_id": "alice"}}'),
    # pages of entities, events, history entries and deliveries
    ("GET", "/v1/entities/?page=0", None, 404, "error", "Invalid page."),
    ("GET", "/v1/entities/?page=2", None, 404, "error", "Invalid page."),
    ("GET", "/v1/entities/?page_size=2000", None, 400, "error", "page_size must be between 1 and 1000"),
    ("GET", "/v1/entities/?page=x", None, 400, "error", f"query.page: {NOT_INT}"),
    ("GET", "/v1/events/?page_size=0", None, 400, "error", "page_size must be between 1 and 1000"),
    ("GET", f"/v1/events/?page={10**9 + 1}", None, 404, "error", "Invalid page."),
    ("GET", "/v1/memories/events/?limit=2000", None, 400, "error", "page_size must be between 1 and 1000"),
    ("GET", "/v1/memories/events/?page=0", None, 404, "error", "Invalid page."),
    ("GET", "/v1/memories/events/?page=x&limit=y", None, 400, "error", PAGE_AND_LIMIT),
    ("GET", f"/api/v1/webhooks/{WEBHOOK}/deliveries/?page_size=501", None, 400, "error",
     "page_size must be between 1 and 500"),
    ("GET", f"/api/v1/webhooks/{WEBHOOK}/deliveries/?page=0", None, 404, "error", "Invalid page."),
    ("GET", f"/api/v1/webhooks/{WEBHOOK}/deliveries/", None, 404, "error", "Webhook not found"),
    ("GET", "/v1/memories/user/alice/?page=0", None, 404, "error", "Invalid page."),
    ("GET", f"/v1/memories/{MEMORY}/history/?page=0", None, 404, "error", "Memory not found!"),  # no page here
    # delete-all and the graph timeline take the entity ids as query parameters too
    ("DELETE", "/v1/memories/", None, 400, "error",
     "At least one filter is required: user_id, agent_id, app_id, run_id (use '*' for all) or metadata"),
    ("DELETE", "/v1/memories/?user_id=u&metadata=5", None, 400, "error", "metadata must be a JSON object"),
    ("DELETE", f"/v1/memories/?user_id={LONG}&metadata=5", None, 400, "error", TOO_LONG),
    ("GET", "/v1/graph/entities/alice/relations/", None, 400, "error", ENTITY_REQUIRED),
    ("GET", f"/v1/graph/entities/alice/relations/?user_id={LONG}", None, 400, "error", TOO_LONG),
    ("GET", f"/v1/graph/entities/alice/relations/?user_id={LONG}&at=x", None, 400, "error", TOO_LONG),
    ("GET", "/v1/graph/entities/alice/relations/?user_id=u&at=notadate", None, 400, "error",
     "invalid timestamp 'notadate': use unix seconds or ISO-8601"),
    # ids in paths and parameters
    ("GET", "/v1/memories/not-a-uuid/", None, 400, "error", "memory_id should be a valid UUID"),
    ("GET", "/v1/event/not-a-uuid/", None, 400, "error", "event_id should be a valid UUID"),
    ("GET", "/v1/feedback/?memory_id=zz", None, 400, "error", "memory_id should be a valid UUID"),
]  # fmt: skip


@pytest.mark.parametrize(("method", "path", "body", "status", "key", "why"), CASES, ids=[c[1][:70] for c in CASES])
def test_a_bad_parameter_is_refused_with_its_reason(
    api: httpx.Client, method: str, path: str, body: Any, status: int, key: str, why: str
) -> None:
    r = api.request(method, path, json=body) if body is not None else api.request(method, path)
    assert r.status_code == status, r.text
    if status == 200:
        return
    got = r.json()
    assert got.pop("request_id") == r.headers["x-request-id"]
    assert got == {key: why, "detail": why}


@pytest.mark.parametrize(
    ("method", "path", "key"),
    [
        ("GET", f"/v1/memories/?user_id={LONG}&page=x", "message"),
        ("GET", "/v1/entities/?page=x", "error"),
        ("GET", "/v1/memories/events/?page=0", "error"),
        ("POST", "/v3/memories/?page=x", "error"),
        ("DELETE", f"/v1/memories/?user_id={LONG}", "error"),
    ],
)
def test_the_key_is_checked_before_any_parameter(live_server: str, method: str, path: str, key: str) -> None:
    r = httpx.request(method, f"{live_server}{path}", json={"filters": {"user_id": "u"}}, timeout=30)
    assert r.status_code == 401, r.text
    got = r.json()
    got.pop("request_id")
    assert got == {key: INVALID_KEY, "detail": INVALID_KEY}


def test_pages_link_to_their_neighbours(api: httpx.Client) -> None:
    for i in range(3):
        assert api.post("/v3/memories/add/", json={"messages": f"m{i}", "user_id": "pager", "infer": False}).is_success
    r = api.get("/v1/memories/?user_id=pager&page=2&page_size=1")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["count"] == 3
    assert body["next"].endswith("/v1/memories/?user_id=pager&page=3&page_size=1")
    assert body["previous"].endswith("/v1/memories/?user_id=pager&page=1&page_size=1")
    r = api.get("/v1/memories/events/?limit=1&page=2")  # the size is always named page_size in links
    assert r.status_code == 200, r.text
    assert r.json()["next"].endswith("/v1/memories/events/?limit=1&page=3&page_size=1")
    assert r.json()["previous"].endswith("/v1/memories/events/?limit=1&page=1&page_size=1")
