"""Review findings 1 and 2: every request does a bounded amount of work, and bad input is a 400, never a 500.

Each probe is one request against a real `memserver serve` (loopback only) with its default limits.
"""

from __future__ import annotations

import re
import socket
import time
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import orjson
import pytest

from harness.server import LiveServer, served
from memserver.domain.limits import Limits
from tests.api.helpers import ADD_V3, verbatim_add_body

LIMITS = Limits()  # the server under test runs with the defaults
README = Path(__file__).resolve().parents[2] / "README.md"
SEARCH = "/v3/memories/search/"


def _json_error(r: httpx.Response, status: int) -> dict[str, Any]:
    assert r.status_code == status, (r.status_code, r.text[:300])
    assert r.headers["content-type"].startswith("application/json")
    body: dict[str, Any] = r.json()
    assert body["detail"]
    return body


# ---------------------------------------------------------------------------------------------
# 1. request bodies are limited at the edge, streamed ones included
# ---------------------------------------------------------------------------------------------
def test_oversized_body_with_content_length_is_413(api: httpx.Client) -> None:
    big = "x" * (LIMITS.max_body_bytes + 1)
    r = api.post(SEARCH, json={"query": big, "filters": {"user_id": "u"}})
    body = _json_error(r, 413)
    assert str(LIMITS.max_body_bytes) in body["detail"]


def test_oversized_chunked_body_is_413(api: httpx.Client) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"filters": {"user_id": "u"}, "query": "'
        for _ in range(LIMITS.max_body_bytes // 65536 + 2):
            yield b"y" * 65536
        yield b'"}'

    # a generator body is sent with Transfer-Encoding: chunked, no Content-Length
    r = api.post(SEARCH, content=chunks(), headers={"content-type": "application/json"})
    _json_error(r, 413)


def test_oversized_body_without_a_key_is_refused_without_reading_it(live_server: str) -> None:
    """A huge declared body gets its answer before the body is sent (413 or 401, JSON, fast)."""
    parts = urlsplit(live_server)
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as s:
        s.sendall(
            f"POST {SEARCH} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"Content-Length: {60 * 1024 * 1024}\r\n\r\n".encode()
        )
        s.sendall(b'{"query": "')
        started = time.monotonic()
        reply = s.recv(65536)
        assert time.monotonic() - started < 10
    head = reply.split(b"\r\n", 1)[0]
    assert head.split()[1] in (b"401", b"413"), reply[:300]


def test_body_within_the_limit_is_served(api: httpx.Client) -> None:
    r = api.post(SEARCH, json={"query": "hello", "filters": {"user_id": "u"}})
    assert r.status_code == 200, r.text


# ---------------------------------------------------------------------------------------------
# 2. per-request work is bounded: each limit is a documented 400
# ---------------------------------------------------------------------------------------------
def _nested(depth: int) -> dict[str, Any]:
    node: dict[str, Any] = {"leaf": 1}
    for _ in range(depth):
        node = {"k": node}
    return node


def _not_filter(depth: int) -> dict[str, Any]:
    node: dict[str, Any] = {"user_id": "u"}
    for _ in range(depth):
        node = {"NOT": node}
    return {"AND": [{"user_id": "u"}, node]}


ADD_PROBES: dict[str, dict[str, Any]] = {
    "too many messages": verbatim_add_body(*[f"m{i}" for i in range(LIMITS.max_messages + 1)]),
    "message too long": verbatim_add_body("w" * (LIMITS.max_text_chars + 1)),
    "metadata nested 300 deep": verbatim_add_body("hi", metadata=_nested(300)),
    "metadata too large": verbatim_add_body("hi", metadata={"blob": "b" * (LIMITS.max_metadata_bytes + 1)}),
    "integer over 2^64": verbatim_add_body("hi", metadata={"n": 2**70}),
    "entity id of 3 KB": verbatim_add_body("hi", user_id="u" * 3000),
    "entity id of 3 KB in filters": verbatim_add_body("hi", filters={"user_id": "u" * 3000}),
}


@pytest.mark.parametrize("probe", list(ADD_PROBES))
def test_add_limits(api: httpx.Client, probe: str) -> None:
    _json_error(api.post(ADD_V3, json=ADD_PROBES[probe]), 400)


def test_lone_surrogate_is_400(api: httpx.Client) -> None:
    raw = b'{"messages": [{"role": "user", "content": "bad \\ud800 text"}], "user_id": "u", "infer": false}'
    _json_error(api.post(ADD_V3, content=raw, headers={"content-type": "application/json"}), 400)
    raw = b'{"query": "x", "filters": {"user_id": "u", "metadata": {"\\udfff": 1}}}'
    _json_error(api.post(SEARCH, content=raw, headers={"content-type": "application/json"}), 400)


SEARCH_PROBES: dict[str, dict[str, Any]] = {
    "NOT filter 300 deep": {"query": "x", "filters": _not_filter(300)},
    "40k-item in list": {"query": "x", "filters": {"user_id": {"in": [f"u{i}" for i in range(40_000)]}}},
    "40k memory_ids": {
        "query": "x",
        "filters": {"user_id": "u", "memory_ids": ["00000000-0000-0000-0000-000000000000"] * 40_000},
    },
    "query too long": {"query": "q " * LIMITS.max_query_chars, "filters": {"user_id": "u"}},
    "entity id of 3 KB": {"query": "x", "filters": {"user_id": "u" * 3000}},
    "top_k over 2^64": {"query": "x", "filters": {"user_id": "u"}, "top_k": 2**70},
}


@pytest.mark.parametrize("probe", list(SEARCH_PROBES))
def test_search_limits(api: httpx.Client, probe: str) -> None:
    _json_error(api.post(SEARCH, json=SEARCH_PROBES[probe]), 400)


def test_moderate_filters_still_work(api: httpx.Client) -> None:
    ok = {"query": "x", "filters": {"user_id": "u", "OR": [{"AND": [{"OR": [{"user_id": "u"}]}]}]}}
    assert api.post(SEARCH, json=ok).status_code == 200
    ok = {"query": "x", "filters": {"user_id": {"in": [f"u{i}" for i in range(LIMITS.max_list_items)]}}}
    assert api.post(SEARCH, json=ok).status_code == 200


def test_list_in_and_depth_limits(api: httpx.Client) -> None:
    _json_error(api.post("/v3/memories/", json={"filters": _not_filter(300)}), 400)
    big_in = {"filters": {"AND": [{"user_id": "u"}, {"categories": {"in": ["c"] * 40_000}}]}}
    _json_error(api.post("/v3/memories/", json=big_in), 400)


def _json_depth(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + max(map(_json_depth, value.values()), default=0)
    if isinstance(value, list):
        return 1 + max(map(_json_depth, value), default=0)
    return 0


@pytest.mark.parametrize("path", [SEARCH, "/v3/memories/"])
def test_the_filter_depth_limit_holds_on_its_own(api: httpx.Client, path: str) -> None:
    """Filters nested past MEMSERVER_LIMITS__MAX_FILTER_DEPTH but well within the JSON-depth limit: the
    filter limit alone refuses them, and filters at the limit are served."""
    deepest_ok = LIMITS.max_filter_depth - 1  # the AND is the first level
    for depth, status in ((deepest_ok, 200), (deepest_ok + 1, 400)):
        body = {"query": "x", "filters": _not_filter(depth)} if path == SEARCH else {"filters": _not_filter(depth)}
        assert _json_depth(body) < LIMITS.max_json_depth - 5
        r = api.post(path, json=body)
        assert r.status_code == status, (depth, r.text[:300])
    assert "MEMSERVER_LIMITS__MAX_FILTER_DEPTH" in r.json()["detail"]
    assert str(LIMITS.max_filter_depth) in r.json()["detail"]


# The setting each field of `Limits` comes from: the media bounds of an add are documents settings.
SETTING = {field: f"MEMSERVER_LIMITS__{field.upper()}" for field in asdict(LIMITS)} | {
    "max_document_parts": "MEMSERVER_DOCUMENTS__MAX_PARTS",
    "max_document_bytes": "MEMSERVER_DOCUMENTS__MAX_BYTES",
    "max_images": "MEMSERVER_DOCUMENTS__MAX_IMAGES",
    "max_image_bytes": "MEMSERVER_DOCUMENTS__MAX_IMAGE_BYTES",
}


def _media_add(kind: str, n: int, data: str = "aGk=") -> dict[str, Any]:
    """An add whose one message carries `n` inline parts of `kind` (base64 `data`): refused before any work."""
    part = {"type": kind, kind: {"url": f"data:text/plain;base64,{data}"}}
    return {"messages": [{"role": "user", "content": [part] * n}], "user_id": "alice", "infer": False}


# Every limit of the README's table, each probe past that limit alone: (setting, status, method, path, body).
# MEMSERVER_DOCUMENTS__MAX_BYTES (5 MB inline) cannot be probed over HTTP: the 4 MiB body limit refuses first;
# `test_the_inline_document_limit_names_its_limit` checks its message without a server.
LIMIT_PROBES: dict[str, tuple[str, int, str, str, Any]] = {
    "body bytes": (
        "max_body_bytes",
        413,
        "POST",
        SEARCH,
        {"query": "x" * (LIMITS.max_body_bytes + 1), "filters": {"user_id": "u"}},
    ),
    "messages": (
        "max_messages",
        400,
        "POST",
        ADD_V3,
        verbatim_add_body(*[f"m{i}" for i in range(LIMITS.max_messages + 1)]),
    ),
    "text chars": ("max_text_chars", 400, "POST", ADD_V3, verbatim_add_body("w" * (LIMITS.max_text_chars + 1))),
    "query chars": (
        "max_query_chars",
        400,
        "POST",
        SEARCH,
        {"query": "q" * (LIMITS.max_query_chars + 1), "filters": {"user_id": "u"}},
    ),
    "metadata bytes": (
        "max_metadata_bytes",
        400,
        "POST",
        ADD_V3,
        verbatim_add_body("hi", metadata={"blob": "b" * LIMITS.max_metadata_bytes}),
    ),
    "JSON depth": (
        "max_json_depth",
        400,
        "POST",
        ADD_V3,
        verbatim_add_body("hi", metadata=_nested(LIMITS.max_json_depth)),
    ),
    "filter depth": (
        "max_filter_depth",
        400,
        "POST",
        SEARCH,
        {"query": "x", "filters": _not_filter(LIMITS.max_filter_depth)},
    ),
    "list items (in)": (
        "max_list_items",
        400,
        "POST",
        SEARCH,
        {"query": "x", "filters": {"user_id": {"in": [f"u{i}" for i in range(LIMITS.max_list_items + 1)]}}},
    ),
    "list items (categories)": (
        "max_list_items",
        400,
        "POST",
        ADD_V3,
        verbatim_add_body("hi", categories=[f"c{i}" for i in range(LIMITS.max_list_items + 1)]),
    ),
    "entity id chars (body)": (
        "max_entity_id_chars",
        400,
        "POST",
        ADD_V3,
        verbatim_add_body("hi", user_id="u" * (LIMITS.max_entity_id_chars + 1)),
    ),
    "entity id chars (filters)": (
        "max_entity_id_chars",
        400,
        "POST",
        SEARCH,
        {"query": "x", "filters": {"user_id": "u" * (LIMITS.max_entity_id_chars + 1)}},
    ),
    "entity id chars (query parameter)": (
        "max_entity_id_chars",
        400,
        "GET",
        "/v1/memories/?user_id=" + "u" * (LIMITS.max_entity_id_chars + 1),
        None,
    ),
    "custom categories": (
        "max_categories",
        400,
        "POST",
        ADD_V3,
        verbatim_add_body("hi", custom_categories=[{f"c{i}": "d"} for i in range(LIMITS.max_categories + 1)]),
    ),
    "custom category chars": (
        "max_category_chars",
        400,
        "POST",
        ADD_V3,
        verbatim_add_body("hi", custom_categories=[{"c": "d" * LIMITS.max_category_chars}]),
    ),
    "document parts": ("max_document_parts", 400, "POST", ADD_V3, _media_add("txt_url", LIMITS.max_document_parts + 1)),
    "images": ("max_images", 400, "POST", ADD_V3, _media_add("image_url", LIMITS.max_images + 1)),
    "image bytes": (
        "max_image_bytes",
        400,
        "POST",
        ADD_V3,
        _media_add("image_url", 1, "A" * (LIMITS.max_image_bytes * 4 // 3 + 8)),
    ),
}


def test_every_limit_of_the_readme_is_probed() -> None:
    readme = README.read_text()
    documented = set(re.findall(r"`MEMSERVER_LIMITS__(\w+)`", readme))
    assert documented == {name.removeprefix("MEMSERVER_LIMITS__") for name in SETTING.values() if "_LIMITS__" in name}
    assert all(f"`{name}`" in readme for name in SETTING.values())
    # the import's own limit (512 MiB) is probed on a server configured lower: test_the_import_has_its_own_body_limit
    assert {probe[0] for probe in LIMIT_PROBES.values()} == set(asdict(LIMITS)) - {
        "max_document_bytes",
        "max_import_bytes",
    }


def test_the_inline_document_limit_names_its_limit() -> None:
    from memserver.domain.add import check_media

    big = "A" * (LIMITS.max_document_bytes * 4 // 3 + 8)
    part = {"type": "pdf_url", "pdf_url": {"url": f"data:application/pdf;base64,{big}"}}
    with pytest.raises(ValueError, match="MEMSERVER_DOCUMENTS__MAX_BYTES") as err:
        check_media(
            [[part]],
            max_documents=LIMITS.max_document_parts,
            max_document_bytes=LIMITS.max_document_bytes,
            max_images=LIMITS.max_images,
            max_image_bytes=LIMITS.max_image_bytes,
        )
    assert str(LIMITS.max_document_bytes) in str(err.value)


@pytest.mark.parametrize("probe", list(LIMIT_PROBES))
def test_each_limit_error_names_its_limit(api: httpx.Client, probe: str) -> None:
    """The `detail` of a refused request says which setting refused it, and its value."""
    field, status, method, path, body = LIMIT_PROBES[probe]
    detail = _json_error(api.request(method, path, json=body), status)["detail"]
    assert SETTING[field] in detail, detail
    assert str(getattr(LIMITS, field)) in detail, detail


def test_the_update_text_limit_names_its_limit(api: httpx.Client) -> None:
    mid = api.post(ADD_V3, json=verbatim_add_body("to update")).json()["results"][0]["id"]
    r = api.put(f"/v1/memories/{mid}/", json={"text": "t" * (LIMITS.max_text_chars + 1)})
    assert "MEMSERVER_LIMITS__MAX_TEXT_CHARS" in _json_error(r, 400)["detail"]


def test_nul_in_a_path_segment_is_400(api: httpx.Client) -> None:
    _json_error(api.get("/v2/entities/user/ab%00cd/"), 400)
    _json_error(api.delete("/v2/entities/user/ab%00cd/"), 400)


def test_nul_in_the_metadata_query_parameter_is_400(api: httpx.Client) -> None:
    meta = orjson.dumps({"k": "a\x00b"}).decode()  # JSON escapes it as \u0000
    _json_error(api.get("/v1/memories/", params={"user_id": "u", "metadata": meta}), 400)
    _json_error(api.get("/v1/memories/", params={"user_id": "u", "metadata": '{"k": "\\ud800"}'}), 400)


def test_long_entity_id_in_a_query_parameter_is_400(api: httpx.Client) -> None:
    _json_error(api.get("/v1/memories/", params={"user_id": "u" * 3000}), 400)


def test_update_limits(api: httpx.Client) -> None:
    r = api.post(ADD_V3, json=verbatim_add_body("to update"))
    mid = r.json()["results"][0]["id"]
    _json_error(api.put(f"/v1/memories/{mid}/", json={"text": "t" * (LIMITS.max_text_chars + 1)}), 400)
    _json_error(api.put(f"/v1/memories/{mid}/", json={"metadata": _nested(300)}), 400)
    _json_error(api.put(f"/v1/memories/{mid}/", json={"metadata": {"n": -(2**70)}}), 400)


def test_limit_defaults_match_the_settings() -> None:
    from memserver.config import LimitsSettings

    assert Limits(**LimitsSettings().model_dump()) == Limits()


def test_huge_numbers_read_back_from_jsonb(api: httpx.Client) -> None:
    """Found by schemathesis: jsonb prints 1e135 as a 136-digit integer, which the JSON encoder refused (500)."""
    r = api.post("/v1/users/", json={"user_id": "big-numbers", "metadata": {"x": 3.1e135}})
    assert r.status_code == 201, r.text
    add = api.post(ADD_V3, json=verbatim_add_body("hi", user_id="big-numbers", metadata={"x": -2.6e200}))
    assert add.status_code == 200, add.text
    for path in ("/v1/entities/", "/v1/events/", "/v1/memories/?user_id=big-numbers"):
        r = api.get(path)
        assert r.status_code == 200, (path, r.text[:300])


PROJECT_STRINGS = (
    "custom_instructions",
    "agent_custom_instructions",
    "inclusion_prompt",
    "exclusion_prompt",
    "description",
    "name",
    "memory_depth",
    "version",
)


def test_project_level_instructions_are_bounded_like_an_adds(api: httpx.Client) -> None:
    """Project settings go into every extraction prompt of the project: each string is bounded by
    MEMSERVER_LIMITS__MAX_TEXT_CHARS as an add's `custom_instructions` is, and nothing is stored past it.
    The other stored values (`usecase_setting`, `retrieval_criteria`) are bounded like metadata."""
    ping = api.get("/v1/ping/").json()
    path = f"/api/v1/orgs/organizations/{ping['org_id']}/projects/{ping['project_id']}/"
    limit = LIMITS.max_text_chars
    before = api.get(path).json()
    for key in PROJECT_STRINGS:
        detail = _json_error(api.patch(path, json={key: "i" * (limit + 1)}), 400)["detail"]
        assert all(word in detail for word in ("MEMSERVER_LIMITS__MAX_TEXT_CHARS", str(limit), key)), detail
        # the spec's string[] spelling is joined first, then bounded
        _json_error(api.patch(path, json={key: ["i" * (limit // 2)] * 3}), 400)
    for key, value in (
        ("usecase_setting", "u" * LIMITS.max_metadata_bytes),
        ("retrieval_criteria", [{"name": "r", "description": "d" * LIMITS.max_metadata_bytes}]),
    ):
        detail = _json_error(api.patch(path, json={key: value}), 400)["detail"]
        assert all(word in detail for word in ("MEMSERVER_LIMITS__MAX_METADATA_BYTES", key)), detail
    assert api.get(path).json() == before  # nothing was stored
    at_limit = {"custom_instructions": "c" * limit, "inclusion_prompt": "p" * limit}
    assert api.patch(path, json=at_limit).status_code == 200
    assert api.get(path).json()["custom_instructions"] == "c" * limit
    # profile settings: each entity type's instructions, nested or flat
    for body in (
        {"entities": {"user": {"custom_instructions": "p" * (limit + 1)}}},
        {"entities": {"agent": {"custom_instructions": "p" * (limit + 1)}}},
        {"custom_instructions": "p" * (limit + 1)},
    ):
        r = api.post("/v2/profiles/settings/", json=body)
        assert r.status_code == 400, r.text
        assert all(word in r.text for word in ("MEMSERVER_LIMITS__MAX_TEXT_CHARS", str(limit)))
    assert api.get("/v2/profiles/settings/").json()["entities"]["user"]["custom_instructions"] is None


@pytest.mark.parametrize(
    "path",
    ["/v1/graph/entities/{id}/", "/v1/entities/user/{id}/", "/v1/entities/agent/{id}/"],
)
@pytest.mark.parametrize("bad_id", ["99999999999999999999", "9223372036854775808", "-9223372036854775809", "0", "-1"])
def test_a_numeric_id_out_of_range_is_not_found_never_a_500(api: httpx.Client, path: str, bad_id: str) -> None:
    """An integer no row can have (past Postgres bigint, or not positive) is "not found", like any unknown id."""
    body = _json_error(api.delete(path.format(id=bad_id)), 404)
    assert "not found" in body["detail"].lower()


@pytest.mark.parametrize("path", ["/v1/graph/entities/{id}/", "/v1/entities/user/{id}/"])
@pytest.mark.parametrize("bad_id", ["abc", "1.5", "1e5", "0x10", "%20"])
def test_a_malformed_numeric_id_is_a_400(api: httpx.Client, path: str, bad_id: str) -> None:
    r = api.delete(path.format(id=bad_id))
    assert r.status_code in (400, 422), r.text
    _json_error(r, r.status_code)


# ---------------------------------------------------------------------------------------------
# the import of a project's backup has its own body limit (MEMSERVER_LIMITS__MAX_IMPORT_BYTES), larger
# ---------------------------------------------------------------------------------------------
SMALL_IMPORT = 6 * 1024 * 1024


@pytest.fixture(scope="module")
def small_import_server(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    log = tmp_path_factory.mktemp("import-limit") / "api.log"
    with served(database_url, log, MEMSERVER_LIMITS__MAX_IMPORT_BYTES=str(SMALL_IMPORT)) as server:
        yield server


def test_the_import_has_its_own_body_limit(small_import_server: LiveServer, make_tenant: Any) -> None:
    _, key = make_tenant()
    five_mib = b" " * (5 * 1024 * 1024) + b"[]"  # an empty Mem0 dump, padded past the general limit
    with httpx.Client(base_url=small_import_server.url, headers={"Authorization": f"Token {key}"}, timeout=60) as c:
        r = c.post("/v1/memserver/import/", content=five_mib)
        assert r.status_code == 200, r.text
        # every other route keeps the general limit
        detail = _json_error(c.post(SEARCH, content=five_mib, headers={"content-type": "application/json"}), 413)
        assert "MEMSERVER_LIMITS__MAX_BODY_BYTES" in detail["detail"]

        def chunks() -> Iterator[bytes]:
            yield b"["
            for _ in range(SMALL_IMPORT // 65536 + 2):
                yield b" " * 65536
            yield b"]"

        detail = _json_error(c.post("/v1/memserver/import", content=chunks()), 413)["detail"]
        assert "MEMSERVER_LIMITS__MAX_IMPORT_BYTES" in detail
        assert str(SMALL_IMPORT) in detail
    # a declared length past it is refused before the body is read
    parts = urlsplit(small_import_server.url)
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as s:
        s.sendall(
            f"POST /v1/memserver/import/ HTTP/1.1\r\nHost: x\r\nAuthorization: Token {key}\r\n"
            f"Content-Length: {SMALL_IMPORT + 1}\r\n\r\n".encode()
        )
        reply = s.recv(65536)
        while b"}" not in reply and (more := s.recv(65536)):  # the JSON body may come in its own segment
            reply += more
    assert reply.split(b"\r\n", 1)[0].split()[1] == b"413", reply[:300]
    assert b"MEMSERVER_LIMITS__MAX_IMPORT_BYTES" in reply
