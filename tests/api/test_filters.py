"""The filter language (contract §4), end to end through v3 list and v3 search over raw HTTP.

The tests only read, so one seeded project serves the whole module.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from tests.api.helpers import assert_error, token_client

# label -> (text, entity ids, categories, metadata, created_at UTC)
SEED: dict[str, tuple[str, dict[str, str], list[str] | None, dict[str, Any] | None, str]] = {
    "A1": (
        "alice likes green tea",
        {"user_id": "alice"},
        ["food"],
        {"source": "email", "type": "semantic", "tags": ["x", "y"]},
        "2024-07-01T10:00:00",
    ),
    "A2": (
        "alice wrote a run note",
        {"user_id": "alice", "run_id": "r1"},
        ["spam"],
        {"source": "chat", "type": "episodic"},
        "2024-07-31T23:00:00",
    ),
    "A3": (
        "Alice paid the Invoice",
        {"user_id": "alice", "agent_id": "travel"},
        ["finance", "personal_information"],
        {"source": "email", "priority": 2},
        "2024-08-01T00:00:00",
    ),
    "B1": ("bob plays chess", {"user_id": "bob"}, ["test"], None, "2024-06-15T08:00:00"),
    "G1": (
        "support agent fact",
        {"agent_id": "support", "app_id": "portal"},
        None,
        None,
        "2024-07-15T12:00:00",
    ),
    "C1": (
        "carol uses the portal",
        {"user_id": "carol", "app_id": "portal"},
        None,
        None,
        "2024-07-20T12:00:00",
    ),
}
ALL_USERS = {"A1", "A2", "A3", "B1", "C1"}


class Seeded:
    def __init__(self, client: httpx.Client, ids: dict[str, str]):
        self.client = client
        self.ids = ids
        self.labels = {v: k for k, v in ids.items()}

    def list(self, filters: Any) -> httpx.Response:
        return self.client.post("/v3/memories/", json={"filters": filters, "page_size": 200})

    def search(self, filters: Any) -> httpx.Response:
        body = {"query": "what do you know?", "filters": filters, "top_k": 100, "threshold": 0}
        return self.client.post("/v3/memories/search/", json=body)

    def matches(self, endpoint: str, filters: Any) -> set[str]:
        r = getattr(self, endpoint)(filters)
        assert r.status_code == 200, r.text
        return {self.labels[m["id"]] for m in r.json()["results"]}


@pytest.fixture(scope="module")
def seeded(live_server: str, make_tenant: Callable[[], tuple[str, str]]) -> Iterator[Seeded]:
    _, key = make_tenant()
    with token_client(live_server, key) as client:
        ids = {}
        for label, (text, entity, categories, metadata, created) in SEED.items():
            ts = int(datetime.fromisoformat(created).replace(tzinfo=UTC).timestamp())
            body: dict[str, Any] = {
                "messages": [{"role": "user", "content": text}],
                "infer": False,
                "timestamp": ts,
            }
            body |= entity
            if categories is not None:
                body["categories"] = categories
            if metadata is not None:
                body["metadata"] = metadata
            r = client.post("/v3/memories/add/", json=body)
            assert r.status_code == 200, r.text
            ids[label] = r.json()["results"][0]["id"]
        yield Seeded(client, ids)


ENDPOINTS = ["list", "search"]

CASES: list[tuple[str, dict[str, Any], set[str]]] = [
    # entity ids
    ("bare eq", {"user_id": "alice"}, {"A1", "A2", "A3"}),
    ("explicit eq", {"user_id": {"eq": "alice"}}, {"A1", "A2", "A3"}),
    ("camelCase key", {"userId": "alice"}, {"A1", "A2", "A3"}),
    ("camelCase agentId", {"agentId": "support"}, {"G1"}),
    ("in", {"user_id": {"in": ["alice", "bob"]}}, {"A1", "A2", "A3", "B1"}),
    ("wildcard excludes nulls", {"user_id": "*"}, ALL_USERS),
    ("wildcard run", {"AND": [{"user_id": "alice"}, {"run_id": "*"}]}, {"A2"}),
    ("ne with wildcard", {"AND": [{"user_id": "*"}, {"user_id": {"ne": "alice"}}]}, {"B1", "C1"}),
    ("ne matches nulls", {"AND": [{"app_id": "portal"}, {"user_id": {"ne": "carol"}}]}, {"G1"}),
    (
        "ne on agent matches nulls",
        {"AND": [{"user_id": "alice"}, {"agent_id": {"ne": "travel"}}]},
        {"A1", "A2"},
    ),
    ("eq and ne on one field", {"user_id": {"in": ["alice", "bob"], "ne": "bob"}}, {"A1", "A2", "A3"}),
    # logic
    ("implicit AND of siblings", {"user_id": "alice", "categories": {"in": ["food"]}}, {"A1"}),
    ("implicit AND of ids", {"user_id": "alice", "run_id": "r1"}, {"A2"}),
    ("explicit AND", {"AND": [{"user_id": "alice"}, {"agent_id": "travel"}]}, {"A3"}),
    ("OR", {"OR": [{"user_id": "bob"}, {"agent_id": "support"}]}, {"B1", "G1"}),
    (
        "AND of OR",
        {"AND": [{"app_id": "portal"}, {"OR": [{"user_id": "*"}, {"agent_id": "*"}]}]},
        {"G1", "C1"},
    ),
    (
        "AND with a sibling OR: both apply",
        {
            "AND": [{"user_id": "alice"}],
            "OR": [{"categories": {"in": ["food"]}}, {"categories": {"in": ["spam"]}}],
        },
        {"A1", "A2"},
    ),
    ("NOT", {"AND": [{"user_id": "alice"}, {"NOT": {"categories": {"in": ["spam"]}}}]}, {"A1", "A3"}),
    (
        "NOT keeps memories without categories",
        {"AND": [{"user_id": "*"}, {"NOT": {"categories": {"in": ["spam"]}}}]},
        {"A1", "A3", "B1", "C1"},
    ),
    (
        "NOT OR",
        {
            "AND": [
                {"user_id": "*"},
                {"NOT": {"OR": [{"categories": {"in": ["spam"]}}, {"categories": {"in": ["test"]}}]}},
            ]
        },
        {"A1", "A3", "C1"},
    ),
    ("NOT on an entity id", {"AND": [{"user_id": "*"}, {"NOT": {"user_id": "alice"}}]}, {"B1", "C1"}),
    ("NOT keeps null entity ids", {"AND": [{"app_id": "portal"}, {"NOT": {"user_id": "carol"}}]}, {"G1"}),
    # dates
    (
        "date range, date-only lte includes that day",
        {"AND": [{"user_id": "alice"}, {"created_at": {"gte": "2024-07-01", "lte": "2024-07-31"}}]},
        {"A1", "A2"},
    ),
    ("ISO gte", {"user_id": "alice", "created_at": {"gte": "2024-07-31T23:00:00Z"}}, {"A2", "A3"}),
    ("ISO gt", {"user_id": "alice", "created_at": {"gt": "2024-07-31T23:00:00Z"}}, {"A3"}),
    ("ISO lt with offset", {"user_id": "alice", "created_at": {"lt": "2024-08-01T01:00:00+02:00"}}, {"A1"}),
    ("ISO lte", {"user_id": "alice", "created_at": {"lte": "2024-07-31T23:00:00"}}, {"A1", "A2"}),
    ("date-only gt excludes that day", {"user_id": "alice", "created_at": {"gt": "2024-07-31"}}, {"A3"}),
    ("date-only lt", {"user_id": "*", "created_at": {"lt": "2024-07-01"}}, {"B1"}),
    ("bare date is that day", {"user_id": "*", "created_at": "2024-07-01"}, {"A1"}),
    ("date ne", {"user_id": "*", "created_at": {"ne": "2024-07-01"}}, {"A2", "A3", "B1", "C1"}),
    ("date in", {"user_id": "*", "created_at": {"in": ["2024-07-01", "2024-06-15"]}}, {"A1", "B1"}),
    ("open-ended upper bound", {"user_id": "*", "created_at": {"lte": "9999-12-31"}}, ALL_USERS),
    ("unix seconds", {"user_id": "alice", "created_at": {"gte": 1722470400}}, {"A3"}),
    ("timestamp is created_at", {"user_id": "alice", "timestamp": {"gte": "2024-08-01"}}, {"A3"}),
    ("camelCase createdAt", {"userId": "alice", "createdAt": {"gte": "2024-08-01"}}, {"A3"}),
    ("updated_at", {"user_id": "alice", "updated_at": {"gte": "2024-08-01"}}, {"A3"}),
    # categories
    ("categories in is any-of", {"user_id": "*", "categories": {"in": ["food", "test"]}}, {"A1", "B1"}),
    ("categories contains is case-insensitive", {"user_id": "*", "categories": {"contains": "FIN"}}, {"A3"}),
    ("categories contains substring", {"user_id": "*", "categories": {"contains": "info"}}, {"A3"}),
    ("categories bare list", {"user_id": "*", "categories": ["spam"]}, {"A2"}),
    # metadata
    ("metadata eq", {"user_id": "*", "metadata": {"source": "email"}}, {"A1", "A3"}),
    ("metadata explicit eq", {"user_id": "*", "metadata": {"source": {"eq": "email"}}}, {"A1", "A3"}),
    ("metadata number", {"user_id": "*", "metadata": {"priority": 2}}, {"A3"}),
    ("metadata two keys", {"user_id": "*", "metadata": {"source": "email", "type": "semantic"}}, {"A1"}),
    (
        "metadata ne matches missing",
        {"user_id": "*", "metadata": {"source": {"ne": "email"}}},
        {"A2", "B1", "C1"},
    ),
    ("metadata contains", {"user_id": "*", "metadata": {"source": {"contains": "mai"}}}, {"A1", "A3"}),
    ("metadata contains in a list", {"user_id": "*", "metadata": {"tags": {"contains": "x"}}}, {"A1"}),
    (
        "OR of metadata equalities",
        {
            "AND": [
                {"user_id": "*"},
                {"OR": [{"metadata": {"type": "semantic"}}, {"metadata": {"type": "episodic"}}]},
            ]
        },
        {"A1", "A2"},
    ),
    ("NOT metadata", {"AND": [{"user_id": "alice"}, {"NOT": {"metadata": {"source": "email"}}}]}, {"A2"}),
    # keywords
    ("keywords contains is case-sensitive", {"user_id": "*", "keywords": {"contains": "Invoice"}}, {"A3"}),
    ("keywords contains misses other case", {"user_id": "*", "keywords": {"contains": "invoice"}}, set()),
    ("keywords icontains", {"user_id": "*", "keywords": {"icontains": "INVOICE"}}, {"A3"}),
    ("keywords wildcard characters are literal", {"user_id": "*", "keywords": {"icontains": "%"}}, set()),
]


@pytest.mark.parametrize("endpoint", ENDPOINTS)
@pytest.mark.parametrize(("name", "filters", "expected"), CASES, ids=[c[0] for c in CASES])
def test_filter_selects_exactly(
    seeded: Seeded, endpoint: str, name: str, filters: dict[str, Any], expected: set[str]
) -> None:
    assert seeded.matches(endpoint, filters) == expected


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_memory_ids(seeded: Seeded, endpoint: str) -> None:
    ids = seeded.ids
    assert seeded.matches(endpoint, {"user_id": "*", "memory_ids": [ids["A1"], ids["B1"]]}) == {"A1", "B1"}
    assert seeded.matches(endpoint, {"user_id": "alice", "memory_ids": {"in": [ids["A1"], ids["B1"]]}}) == {"A1"}
    assert seeded.matches(endpoint, {"AND": [{"user_id": "*"}, {"NOT": {"memory_ids": [ids["A1"]]}}]}) == (
        ALL_USERS - {"A1"}
    )


def test_v3_list_count_follows_the_filter(seeded: Seeded) -> None:
    r = seeded.client.post("/v3/memories/", json={"filters": {"user_id": "*"}, "page_size": 2})
    body = r.json()
    assert body["count"] == len(ALL_USERS)
    assert len(body["results"]) == 2


def test_v2_list_and_search_use_the_same_language(seeded: Seeded) -> None:
    f = {"AND": [{"user_id": "alice"}, {"NOT": {"categories": {"in": ["spam"]}}}]}
    r = seeded.client.post("/v2/memories/", json={"filters": f})
    assert r.status_code == 200, r.text
    assert {seeded.labels[m["id"]] for m in r.json()} == {"A1", "A3"}
    r = seeded.client.post("/v2/memories/search/", json={"query": "x", "filters": f, "threshold": 0})
    assert r.status_code == 200, r.text
    assert {seeded.labels[m["id"]] for m in r.json()} == {"A1", "A3"}


# ----------------------------------------------------------------------------------------------
# invalid filters: 400
# ----------------------------------------------------------------------------------------------
BAD: list[tuple[str, Any, str | None]] = [
    (
        "unknown top-level key",
        {"user_id": "alice", "colour": "red"},
        "Top-level key must be a logical operator or an allowed field",
    ),
    (
        "lower-case logical key",
        {"and": [{"user_id": "alice"}]},
        "Top-level key must be a logical operator or an allowed field",
    ),
    ("unknown key inside AND", {"AND": [{"user_id": "alice"}, {"colour": "red"}]}, "Top-level key"),
    ("unknown operator", {"user_id": {"regex": "al.*"}}, None),
    ("SQL operator", {"user_id": "alice", "created_at": {">=": "2024-01-01"}}, None),
    ("nin is not on the platform", {"user_id": {"nin": ["bob"]}}, None),
    ("unknown date operator", {"user_id": "alice", "created_at": {"after": "2024-01-01"}}, None),
    ("eq on a date", {"user_id": "alice", "created_at": {"eq": "2024-07-01"}}, "eq"),
    ("contains on a date", {"user_id": "alice", "created_at": {"contains": "2024"}}, None),
    ("invalid date", {"user_id": "alice", "created_at": {"gte": "yesterday"}}, "date"),
    ("unix seconds out of range", {"user_id": "alice", "created_at": {"gte": 1e20}}, "date"),
    (
        "instant past year 9999",
        {"user_id": "alice", "created_at": {"gte": "9999-12-31T23:00:00-05:00"}},
        "date",
    ),
    ("in on metadata", {"user_id": "alice", "metadata": {"source": {"in": ["email", "chat"]}}}, "metadata"),
    ("gt on metadata", {"user_id": "alice", "metadata": {"priority": {"gt": 1}}}, "metadata"),
    ("metadata not an object", {"user_id": "alice", "metadata": "email"}, "metadata"),
    ("eq on categories", {"user_id": "alice", "categories": {"eq": "food"}}, "categories"),
    ("ne on categories", {"user_id": "alice", "categories": {"ne": "food"}}, "categories"),
    ("gt on entity id", {"user_id": {"gt": "a"}}, None),
    ("in with a string", {"user_id": {"in": "alice"}}, None),
    ("in with an empty list", {"user_id": {"in": []}}, None),
    ("entity id a list", {"user_id": ["alice"]}, None),
    ("keywords regex", {"user_id": "alice", "keywords": {"regex": "a"}}, None),
    ("memory_ids not uuids", {"user_id": "alice", "memory_ids": ["not-a-uuid"]}, None),
    ("AND not a list", {"AND": "user_id=alice"}, None),
    ("NOT a string", {"user_id": "alice", "NOT": "bob"}, None),
    ("only NOT", {"NOT": {"user_id": "alice"}}, None),
    ("only ne", {"user_id": {"ne": "alice"}}, None),
    ("only metadata", {"metadata": {"source": "email"}}, None),
    ("only categories", {"categories": {"in": ["food"]}}, None),
    ("OR with an unscoped branch", {"OR": [{"user_id": "alice"}, {"metadata": {"source": "email"}}]}, None),
    ("empty AND", {"AND": []}, None),
    ("empty OR", {"OR": []}, None),
    ("null entity id", {"user_id": None}, None),
    ("empty filters", {}, None),
    ("filters not an object", "user_id=alice", None),
    ("filters a list", [{"user_id": "alice"}], None),
]


@pytest.mark.parametrize("endpoint", ENDPOINTS)
@pytest.mark.parametrize(("name", "filters", "needle"), BAD, ids=[c[0] for c in BAD])
def test_invalid_filters_are_400(seeded: Seeded, endpoint: str, name: str, filters: Any, needle: str | None) -> None:
    r = getattr(seeded, endpoint)(filters)
    assert r.status_code == 400, r.text
    assert r.headers["content-type"].startswith("application/json")
    body = r.json()
    assert isinstance(body["detail"], str)
    assert body["detail"]
    assert body["error"] == body["detail"]
    if needle:
        assert needle in body["detail"]


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_missing_filters_is_400(seeded: Seeded, endpoint: str) -> None:
    path = "/v3/memories/" if endpoint == "list" else "/v3/memories/search/"
    r = seeded.client.post(path, json={"query": "x"})
    assert_error(r, 400)
