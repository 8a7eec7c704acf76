"""The exact answer to a bad add, on every add path: status, body and error precedence.

Mem0's clients show `detail` (and, for adds, `details.message`) to users, and some match on it, so the
text of each refusal is part of the contract. The add routes answer a 400 in the add shape
`{"error": "400 Bad Request", "details": {"message": "<INVALID_ADD_INPUT> (<why>)"}, "detail": "<why>"}`.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from memserver.domain.limits import Limits
from tests.api.helpers import ADD_V3

INVALID_ADD_INPUT = (
    "Invalid input data. Please refer to the memory creation documentation at "
    "https://docs.mem0.ai/platform/quickstart#4-1-create-memories for correct formatting and required fields."
)
ADD_V1 = "/v1/memories/"
LIST_V3 = "/v3/memories/"  # pre-release clients (2.0.0b1, ts-v3.0.0-beta.1) sent adds here
MESSAGES = [{"role": "user", "content": "hi"}]
TEXT_DOCS = [{"type": "txt_url", "txt_url": {"url": f"https://docs.example.com/{i}.txt"}} for i in range(6)]
LIMITS = Limits()  # the server under test runs with the defaults


def add_400(why: str) -> dict[str, Any]:
    return {"error": "400 Bad Request", "details": {"message": f"{INVALID_ADD_INPUT} ({why})"}, "detail": why}


def error_400(why: str) -> dict[str, Any]:
    return {"error": why, "detail": why}


# name -> (body, the reason every add path gives). Bodies are sent as JSON.
BAD_ADDS: dict[str, tuple[Any, str]] = {
    "messages missing": ({"user_id": "u"}, "messages: Field required"),
    "messages a number": (
        {"messages": 5, "user_id": "u"},
        "messages.list[any]: Input should be a valid list; messages.dict[str,any]: Input should be a valid "
        "dictionary; messages.str: Input should be a valid string",
    ),
    "messages empty": ({"messages": [], "user_id": "u"}, "messages must not be empty"),
    "no entity id": ({"messages": MESSAGES}, "at least one of user_id, agent_id, app_id, run_id is required"),
    "a wildcard as the id": ({"messages": MESSAGES, "user_id": "*"}, "'*' is a filter wildcard, not an entity id"),
    "a wildcard in filters": (
        {"messages": MESSAGES, "filters": {"user_id": "*"}},
        "at least one of user_id, agent_id, app_id, run_id is required",
    ),
    "an id in filters, an operator it does not take": (
        {"messages": MESSAGES, "filters": {"user_id": {"gt": "a"}}},
        "filters: Operator 'gt' is not supported for user_id; use eq, ne, in or '*'",
    ),
    "filters that do not parse": (
        {"messages": MESSAGES, "filters": {"AND": "x"}},
        "filters: AND takes a list of filter objects",
    ),
    "a message without content": ({"messages": [{"role": "user"}], "user_id": "u"}, "every message needs a content"),
    "content a number": (
        {"messages": [{"role": "user", "content": 3}], "user_id": "u"},
        "every message needs a content",
    ),
    "blank content only": (
        {"messages": [{"role": "user", "content": "  "}, "\n"], "user_id": "u"},
        "messages have no content to store",
    ),
    "a message too long": (
        {"messages": [{"role": "user", "content": "w" * (LIMITS.max_text_chars + 1)}], "user_id": "u"},
        f"a message is longer than {LIMITS.max_text_chars} characters (MEMSERVER_LIMITS__MAX_TEXT_CHARS)",
    ),
    "timestamp not a time": (
        {"messages": MESSAGES, "user_id": "u", "timestamp": "yesterday"},
        "invalid timestamp 'yesterday': use unix seconds or ISO-8601",
    ),
    "timestamp out of range": (
        {"messages": MESSAGES, "user_id": "u", "timestamp": 1e20},
        "invalid timestamp 1e+20: use unix seconds or ISO-8601",
    ),
    "timestamp a boolean": (
        {"messages": MESSAGES, "user_id": "u", "timestamp": True},
        "timestamp: Value error, timestamp must be unix seconds or an ISO-8601 string, not a boolean",
    ),
    "custom_categories a string": (
        {"messages": MESSAGES, "user_id": "u", "custom_categories": "food"},
        'custom_categories: Expected a list of dictionaries but got type "str"',
    ),
    "custom_categories of strings": (
        {"messages": MESSAGES, "user_id": "u", "custom_categories": ["food"]},
        'custom_categories: Expected a dictionary of items but got type "str"',
    ),
    "too many documents": (
        {"messages": [{"role": "user", "content": TEXT_DOCS}], "user_id": "u"},
        "an add may carry at most 5 document parts (pdf_url, txt_url, mdx_url) (MEMSERVER_DOCUMENTS__MAX_PARTS)",
    ),
    "metadata not an object": (
        {"messages": MESSAGES, "user_id": "u", "metadata": [1]},
        "metadata: Input should be a valid dictionary",
    ),
    "infer not a boolean": (
        {"messages": MESSAGES, "user_id": "u", "infer": "maybe"},
        "infer: Input should be a valid boolean, unable to interpret input",
    ),
}
# Refused by the add model itself; on the list route the list model refuses them first, in its own shape.
BAD_FOR_BOTH_MODELS: dict[str, tuple[Any, str]] = {
    "NUL in a message": (
        {"messages": [{"role": "user", "content": "a\u0000b"}], "user_id": "u"},
        "Value error, NUL characters are not allowed",
    ),
    "an entity id too long": (
        {"messages": MESSAGES, "user_id": "u" * 300},
        "user_id: Value error, entity id is longer than 255 characters (MEMSERVER_LIMITS__MAX_ENTITY_ID_CHARS)",
    ),
    "the body a list": ([1, 2], "Input should be a valid dictionary or object to extract fields from"),
}
# The list route reads its pre-release add with the first error only.
PRE_RELEASE_FIRST_ERROR = {
    "messages a number": "messages.list[any]: Input should be a valid list",
}


def _body(r: httpx.Response) -> dict[str, Any]:
    body: dict[str, Any] = r.json()
    assert body.pop("request_id") == r.headers["x-request-id"], body  # every error names its request
    return body


@pytest.mark.parametrize("path", [ADD_V3, ADD_V1])
@pytest.mark.parametrize("name", [*BAD_ADDS, *BAD_FOR_BOTH_MODELS])
def test_a_bad_add_is_refused_with_its_reason(api: httpx.Client, path: str, name: str) -> None:
    body, why = {**BAD_ADDS, **BAD_FOR_BOTH_MODELS}[name]
    r = api.post(path, json=body)
    assert (r.status_code, _body(r)) == (400, add_400(why))


@pytest.mark.parametrize("name", [n for n in BAD_ADDS if n != "messages missing"])
def test_a_bad_pre_release_add_on_the_v3_list_route_is_refused_in_the_add_shape(api: httpx.Client, name: str) -> None:
    body, why = BAD_ADDS[name]
    r = api.post(LIST_V3, json=body)
    assert (r.status_code, _body(r)) == (400, add_400(PRE_RELEASE_FIRST_ERROR.get(name, why)))


@pytest.mark.parametrize("name", list(BAD_FOR_BOTH_MODELS))
def test_the_list_model_refuses_first_on_the_v3_list_route(api: httpx.Client, name: str) -> None:
    body, why = BAD_FOR_BOTH_MODELS[name]
    r = api.post(LIST_V3, json=body)
    assert (r.status_code, _body(r)) == (400, error_400(why))


@pytest.mark.parametrize("path", [ADD_V3, ADD_V1])
def test_a_body_that_is_not_json(api: httpx.Client, path: str) -> None:
    headers = {"content-type": "application/json"}
    r = api.post(path, content=b'{"messages": ', headers=headers)
    assert (r.status_code, _body(r)) == (400, add_400("13: JSON decode error"))
    r = api.post(path, content=b"", headers=headers)
    assert (r.status_code, _body(r)) == (400, add_400("Field required"))


# -- precedence -----------------------------------------------------------------------------------
@pytest.mark.parametrize("path", [ADD_V3, ADD_V1, LIST_V3])
def test_a_missing_key_is_refused_before_the_body_is_validated(live_server: str, path: str) -> None:
    r = httpx.post(f"{live_server}{path}", json={"messages": 5, "user_id": "*"}, timeout=30)
    why = "Invalid API key. Create one with `memserver keys create` and send it as `Authorization: Token <key>`."
    assert (r.status_code, _body(r)) == (401, error_400(why))


@pytest.mark.parametrize("path", [ADD_V3, ADD_V1])
def test_a_body_that_is_not_json_is_refused_before_the_key_is_read(live_server: str, path: str) -> None:
    r = httpx.post(f"{live_server}{path}", content=b"{", headers={"content-type": "application/json"}, timeout=30)
    assert (r.status_code, _body(r)) == (400, add_400("1: JSON decode error"))


def test_the_first_problem_of_an_add_is_the_one_reported(api: httpx.Client) -> None:
    """The parse order: entity ids (filters first), then messages, then dates and categories."""
    cases = [
        ({"messages": [], "filters": {"user_id": {"gt": 1}}}, "filters: Operator 'gt' is not supported"),
        ({"messages": [], "user_id": "*", "timestamp": "x"}, "'*' is a filter wildcard"),
        ({"messages": [], "user_id": "u", "timestamp": "x"}, "messages must not be empty"),
        ({"messages": MESSAGES, "user_id": "u", "timestamp": "x", "custom_categories": 1}, "invalid timestamp 'x'"),
        ({"messages": MESSAGES, "user_id": "u", "custom_categories": 1}, "custom_categories: Expected a list"),
    ]
    for body, start in cases:
        r = api.post(ADD_V3, json=body)
        assert r.status_code == 400, r.text
        assert r.json()["detail"].startswith(start), (body, r.json()["detail"])


def test_top_level_ids_win_over_ids_in_filters(api: httpx.Client) -> None:
    r = api.post(ADD_V3, json={"messages": MESSAGES, "infer": False, "user_id": "top", "filters": {"user_id": "in"}})
    assert r.status_code == 200, r.text
    mid = r.json()["results"][0]["id"]
    assert api.get(f"/v1/memories/{mid}/").json()["user_id"] == "top"
    r = api.post(ADD_V3, json={"messages": MESSAGES, "infer": False, "filters": {"AND": [{"agent_id": "a"}]}})
    assert r.status_code == 200, r.text
    assert api.get(f"/v1/memories/{r.json()['results'][0]['id']}/").json()["agent_id"] == "a"
