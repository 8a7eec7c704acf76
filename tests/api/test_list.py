"""Listing memories over raw HTTP: v1 GET, v2 POST, v3 POST (contract §2.2 list, §2.3, §9)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from tests.api.helpers import add_verbatim as add
from tests.api.helpers import assert_error, token_client

ENVELOPE = {"count", "next", "previous", "results"}


def ts(iso: str) -> int:
    return int(datetime.fromisoformat(iso).replace(tzinfo=UTC).timestamp())


def v3(api: httpx.Client, body: dict[str, Any], **params: Any) -> httpx.Response:
    return api.post("/v3/memories/", json=body, params=params)


def texts(items: list[dict[str, Any]]) -> list[str]:
    return [m["memory"] for m in items]


# ----------------------------------------------------------------------------------------------
# GET /v1/memories/
# ----------------------------------------------------------------------------------------------
def test_v1_get_returns_a_bare_array_newest_first(api: httpx.Client) -> None:
    add(api, "one", "two", "three", user_id="alice")
    add(api, "other user", user_id="bob")
    r = api.get("/v1/memories/", params={"user_id": "alice"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert isinstance(body, list)
    assert texts(body) == ["three", "two", "one"]
    item = body[0]
    for key in (
        "id",
        "memory",
        "user_id",
        "agent_id",
        "app_id",
        "run_id",
        "session_id",
        "metadata",
        "categories",
        "created_at",
        "updated_at",
        "expiration_date",
        "immutable",
    ):
        assert key in item, key
    assert item["user_id"] == "alice"
    datetime.fromisoformat(item["created_at"])


def test_v1_get_user_id_test_on_an_empty_project_is_200_empty(api: httpx.Client) -> None:
    r = api.get("/v1/memories/", params={"user_id": "test"})
    assert r.status_code == 200
    assert r.json() == []


def test_v1_get_without_any_entity_id_is_400(api: httpx.Client) -> None:
    add(api, "x", user_id="alice")
    r = api.get("/v1/memories/")
    assert r.status_code == 400
    assert "user_id" in r.json()["detail"]
    ping = api.get("/v1/ping/").json()
    r = api.get(
        "/v1/memories/", params={"org_id": ping["org_id"], "project_id": ping["project_id"], "categories": "food"}
    )
    assert r.status_code == 400


def test_v1_get_envelope_only_when_page_and_page_size(api: httpx.Client) -> None:
    add(api, "a", "b", "c", user_id="u")
    r = api.get("/v1/memories/", params={"user_id": "u", "page": 1, "page_size": 2})
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) == ENVELOPE
    assert body["count"] == 3
    assert texts(body["results"]) == ["c", "b"]
    assert body["previous"] is None
    nxt = urlsplit(body["next"])
    assert nxt.path == "/v1/memories/"
    assert parse_qs(nxt.query) == {"user_id": ["u"], "page": ["2"], "page_size": ["2"]}
    page2 = api.get(body["next"]).json()
    assert texts(page2["results"]) == ["a"]
    assert page2["next"] is None
    assert page2["previous"] is not None
    # only one of them: still a bare array
    assert isinstance(api.get("/v1/memories/", params={"user_id": "u", "page": 1}).json(), list)
    assert isinstance(api.get("/v1/memories/", params={"user_id": "u", "page_size": 2}).json(), list)


def test_v1_get_page_past_the_end_is_404(api: httpx.Client) -> None:
    add(api, "a", user_id="u")
    r = api.get("/v1/memories/", params={"user_id": "u", "page": 2, "page_size": 10})
    assert r.status_code == 404
    assert r.json()["detail"] == "Invalid page."


def test_v1_get_limit(api: httpx.Client) -> None:
    add(api, "a", "b", "c", user_id="u")
    r = api.get("/v1/memories/", params={"user_id": "u", "limit": 2})
    assert r.status_code == 200, r.text
    assert texts(r.json()) == ["c", "b"]
    r = api.get("/v1/memories/", params={"user_id": "u", "limit": 201})
    assert r.status_code == 400
    assert "200" in r.json()["detail"]
    for bad in (0, -1):
        r = api.get("/v1/memories/", params={"user_id": "u", "limit": bad})
        assert r.status_code == 400
        assert "limit" in r.json()["detail"]


def test_v1_get_by_each_entity_id(api: httpx.Client) -> None:
    add(api, "agent memory", agent_id="a1")
    add(api, "app memory", app_id="p1")
    add(api, "run memory", user_id="u", run_id="r1")
    assert texts(api.get("/v1/memories/", params={"agent_id": "a1"}).json()) == ["agent memory"]
    assert texts(api.get("/v1/memories/", params={"app_id": "p1"}).json()) == ["app memory"]
    assert texts(api.get("/v1/memories/", params={"run_id": "r1"}).json()) == ["run memory"]
    # several ids are ANDed
    assert api.get("/v1/memories/", params={"user_id": "u", "run_id": "other"}).json() == []


def test_v1_get_categories_param_repeated_or_comma_separated(api: httpx.Client) -> None:
    add(api, "pizza", user_id="u", categories=["food"])
    add(api, "flight", user_id="u", categories=["travel"])
    add(api, "nothing", user_id="u")
    got = api.get("/v1/memories/", params={"user_id": "u", "categories": "food"}).json()
    assert texts(got) == ["pizza"]
    got = api.get("/v1/memories/", params=[("user_id", "u"), ("categories", "food"), ("categories", "travel")]).json()
    assert sorted(texts(got)) == ["flight", "pizza"]
    got = api.get("/v1/memories/", params={"user_id": "u", "categories": "food,travel"}).json()
    assert sorted(texts(got)) == ["flight", "pizza"]


def test_v1_get_metadata_param_is_a_json_object(api: httpx.Client) -> None:
    add(api, "from email", user_id="u", metadata={"source": "email", "n": 1})
    add(api, "from chat", user_id="u", metadata={"source": "chat"})
    got = api.get("/v1/memories/", params={"user_id": "u", "metadata": '{"source": "email"}'}).json()
    assert texts(got) == ["from email"]
    r = api.get("/v1/memories/", params={"user_id": "u", "metadata": "source=email"})
    assert r.status_code == 400
    r = api.get("/v1/memories/", params={"user_id": "u", "metadata": "[1, 2]"})
    assert r.status_code == 400


def test_v1_get_fields_projection(api: httpx.Client) -> None:
    add(api, "projected", user_id="u", metadata={"k": 1})
    [item] = api.get("/v1/memories/", params=[("user_id", "u"), ("fields", "memory")]).json()
    assert item.keys() == {"id", "memory"}


def test_v1_get_accepts_the_keys_own_org_and_project_and_refuses_others(api: httpx.Client) -> None:
    """The 1.0.x/0.1.x clients send the org and project ids they got from ping; naming another is a 403."""
    add(api, "x", user_id="u")
    ping = api.get("/v1/ping/").json()
    r = api.get("/v1/memories/", params={"user_id": "u", "org_id": ping["org_id"], "project_id": ping["project_id"]})
    assert r.status_code == 200
    assert texts(r.json()) == ["x"]
    r = api.get("/v1/memories/", params={"user_id": "u", "org_id": "o1", "project_id": "p1"})
    assert r.status_code == 403, r.text
    assert r.json()["detail"]


def test_listing_is_confined_to_the_keys_project(
    api: httpx.Client, live_server: str, new_api_key: Callable[[], str]
) -> None:
    add(api, "mine", user_id="shared-user")
    with token_client(live_server, new_api_key()) as other:
        add(other, "theirs", user_id="shared-user")
        assert texts(other.get("/v1/memories/", params={"user_id": "shared-user"}).json()) == ["theirs"]
    assert texts(api.get("/v1/memories/", params={"user_id": "shared-user"}).json()) == ["mine"]
    assert texts(v3(api, {"filters": {"user_id": "*"}}).json()["results"]) == ["mine"]


# ----------------------------------------------------------------------------------------------
# POST /v2/memories/
# ----------------------------------------------------------------------------------------------
def test_v2_list_with_filters_or_top_level_ids_is_a_bare_array(api: httpx.Client) -> None:
    add(api, "one", "two", user_id="u")
    add(api, "else", user_id="v")
    r = api.post("/v2/memories/", json={"filters": {"user_id": "u"}})
    assert r.status_code == 200, r.text
    assert texts(r.json()) == ["two", "one"]
    ping = api.get("/v1/ping/").json()
    r = api.post("/v2/memories/", json={"user_id": "u", "org_id": ping["org_id"], "project_id": ping["project_id"]})
    assert r.status_code == 200, r.text
    assert texts(r.json()) == ["two", "one"]
    r = api.post("/v2/memories/", json={"filters": {"OR": [{"user_id": "u"}, {"user_id": "v"}]}})
    assert sorted(texts(r.json())) == ["else", "one", "two"]


def test_v2_list_envelope_with_page_and_page_size(api: httpx.Client) -> None:
    add(api, "a", "b", "c", user_id="u")
    r = api.post("/v2/memories/", json={"filters": {"user_id": "u"}}, params={"page": 2, "page_size": 2})
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) == ENVELOPE
    assert body["count"] == 3
    assert texts(body["results"]) == ["a"]
    assert body["next"] is None
    assert body["previous"] is not None
    r = api.post("/v2/memories/", json={"filters": {"user_id": "u"}, "page": 1, "page_size": 1})
    assert set(r.json()) == ENVELOPE
    r = api.post("/v2/memories/", json={"filters": {"user_id": "u"}}, params={"page": 1})
    assert isinstance(r.json(), list)


def test_v2_list_without_entity_scope_is_400_with_message(api: httpx.Client) -> None:
    for body in ({}, {"filters": {}}, {"filters": {"categories": {"in": ["food"]}}}):
        r = api.post("/v2/memories/", json=body)
        assert r.status_code == 400, body
        assert "required" in r.json()["message"]
        assert r.json()["detail"]


# ----------------------------------------------------------------------------------------------
# POST /v3/memories/
# ----------------------------------------------------------------------------------------------
def test_v3_list_is_always_an_envelope(api: httpx.Client) -> None:
    r = v3(api, {"filters": {"user_id": "nobody"}})
    assert r.status_code == 200, r.text
    assert r.json() == {"count": 0, "next": None, "previous": None, "results": []}
    add(api, "a", "b", user_id="u")
    body = v3(api, {"filters": {"user_id": "u"}}).json()
    assert set(body) == ENVELOPE
    assert body["count"] == 2
    assert body["next"] is None
    assert body["previous"] is None
    assert texts(body["results"]) == ["b", "a"]
    item = body["results"][0]
    assert item["session_id"] is None
    assert "run_id" in item


@pytest.mark.parametrize("key", ["user_id", "agent_id", "app_id", "run_id"])
def test_v3_list_rejects_top_level_entity_ids(api: httpx.Client, key: str) -> None:
    add(api, "x", user_id="u", agent_id="u", app_id="u", run_id="u")
    r = v3(api, {key: "u"})
    assert r.status_code == 400
    assert "filters" in r.json()["detail"]
    r = v3(api, {key: "u", "filters": {"user_id": "u"}})
    assert r.status_code == 400


def test_v3_list_without_filters_is_400(api: httpx.Client) -> None:
    for body in ({}, {"filters": {}}, {"filters": None}):
        r = v3(api, body)
        assert r.status_code == 400, body
        assert r.json()["detail"]


def test_v3_pagination_links_and_query_wins_over_body(api: httpx.Client) -> None:
    add(api, "m1", "m2", "m3", "m4", "m5", user_id="u")
    body = {"filters": {"user_id": "u"}, "page": 3, "page_size": 1}
    r = v3(api, body, page=1, page_size=2)
    assert r.status_code == 200, r.text
    page1 = r.json()
    assert page1["count"] == 5
    assert texts(page1["results"]) == ["m5", "m4"]
    assert page1["previous"] is None
    nxt = urlsplit(page1["next"])
    assert nxt.path == "/v3/memories/"
    assert parse_qs(nxt.query) == {"page": ["2"], "page_size": ["2"]}
    page2 = api.post(page1["next"], json=body).json()
    assert texts(page2["results"]) == ["m3", "m2"]
    assert parse_qs(urlsplit(page2["previous"]).query) == {"page": ["1"], "page_size": ["2"]}
    page3 = api.post(page2["next"], json=body).json()
    assert texts(page3["results"]) == ["m1"]
    assert page3["next"] is None
    # the body alone paginates too
    only_body = v3(api, body).json()
    assert texts(only_body["results"]) == ["m3"]
    assert only_body["count"] == 5


def test_v3_page_past_the_end_is_404_invalid_page(api: httpx.Client) -> None:
    add(api, "a", "b", user_id="u")
    r = v3(api, {"filters": {"user_id": "u"}}, page=2, page_size=2)
    assert r.status_code == 404
    assert r.json()["detail"] == "Invalid page."
    r = v3(api, {"filters": {"user_id": "u"}}, page=0)
    assert r.status_code == 404
    assert r.json()["detail"] == "Invalid page."
    for huge in (10**12, 10**30):  # no OFFSET overflow in the database
        r = v3(api, {"filters": {"user_id": "u"}, "page": huge})
        assert r.status_code == 404
        assert r.json()["detail"] == "Invalid page."
    # page 1 of an empty result is not an error
    assert v3(api, {"filters": {"user_id": "nobody"}}, page=1, page_size=5).status_code == 200


@pytest.mark.parametrize("size", [0, 201, 1000])
def test_v3_page_size_out_of_range_is_400(api: httpx.Client, size: int) -> None:
    r = v3(api, {"filters": {"user_id": "u"}}, page_size=size)
    assert r.status_code == 400
    assert "page_size" in r.json()["detail"]
    r = v3(api, {"filters": {"user_id": "u"}, "page_size": size})
    assert r.status_code == 400


def test_v3_page_size_200_is_allowed(api: httpx.Client) -> None:
    assert v3(api, {"filters": {"user_id": "u"}}, page_size=200).status_code == 200


def test_v3_show_expired(api: httpx.Client) -> None:
    yesterday = (datetime.now(UTC).date() - timedelta(days=1)).isoformat()
    add(api, "expired", user_id="u", expiration_date=yesterday)
    add(api, "current", user_id="u")
    assert texts(v3(api, {"filters": {"user_id": "u"}}).json()["results"]) == ["current"]
    body = v3(api, {"filters": {"user_id": "u"}, "show_expired": True}).json()
    assert texts(body["results"]) == ["current", "expired"]
    assert body["count"] == 2


def test_v3_start_and_end_date_are_inclusive_days(api: httpx.Client) -> None:
    for iso, label in [
        ("2024-06-30T23:59:59", "before"),
        ("2024-07-01T00:00:00", "first second"),
        ("2024-07-15T12:00:00", "middle"),
        ("2024-07-31T23:59:59", "last second"),
        ("2024-08-01T00:00:00", "after"),
    ]:
        add(api, label, user_id="u", timestamp=ts(iso))
    body = v3(api, {"filters": {"user_id": "u"}, "start_date": "2024-07-01", "end_date": "2024-07-31"}).json()
    assert texts(body["results"]) == ["last second", "middle", "first second"]
    assert body["count"] == 3
    body = v3(api, {"filters": {"user_id": "u"}, "start_date": "2024-07-31"}).json()
    assert texts(body["results"]) == ["after", "last second"]
    body = v3(api, {"filters": {"user_id": "u"}, "end_date": "2024-06-30"}).json()
    assert texts(body["results"]) == ["before"]


def test_v3_invalid_start_date_is_400(api: httpx.Client) -> None:
    r = v3(api, {"filters": {"user_id": "u"}, "start_date": "last week"})
    assert_error(r, 400)


def test_v3_categories_shortcut_is_any_of(api: httpx.Client) -> None:
    add(api, "pizza", user_id="u", categories=["food"])
    add(api, "flight", user_id="u", categories=["travel", "work"])
    add(api, "plain", user_id="u")
    got = v3(api, {"filters": {"user_id": "u"}, "categories": ["food", "work"]}).json()["results"]
    assert sorted(texts(got)) == ["flight", "pizza"]
    got = v3(api, {"filters": {"user_id": "u"}, "categories": ["travel"]}).json()["results"]
    assert texts(got) == ["flight"]


def test_v3_keywords_shortcut_is_case_insensitive_substring(api: httpx.Client) -> None:
    add(api, "Paid the Invoice #42", "booked a flight", "50% off_sale", user_id="u")
    got = v3(api, {"filters": {"user_id": "u"}, "keywords": "invoice"}).json()["results"]
    assert texts(got) == ["Paid the Invoice #42"]
    # LIKE wildcards in the keyword are literal characters
    assert texts(v3(api, {"filters": {"user_id": "u"}, "keywords": "%"}).json()["results"]) == ["50% off_sale"]
    assert texts(v3(api, {"filters": {"user_id": "u"}, "keywords": "f_s"}).json()["results"]) == ["50% off_sale"]


def test_v3_fields_projection(api: httpx.Client) -> None:
    add(api, "projected", user_id="u")
    [item] = v3(api, {"filters": {"user_id": "u"}, "fields": ["memory", "user_id"]}).json()["results"]
    assert item == {"id": item["id"], "memory": "projected", "user_id": "u"}


def test_v3_list_newest_first_across_requests_with_timestamps(api: httpx.Client) -> None:
    add(api, "2021", user_id="u", timestamp=ts("2021-01-01T00:00:00"))
    add(api, "now", user_id="u")
    add(api, "2023", user_id="u", timestamp=ts("2023-01-01T00:00:00"))
    assert texts(v3(api, {"filters": {"user_id": "u"}}).json()["results"]) == ["now", "2023", "2021"]
